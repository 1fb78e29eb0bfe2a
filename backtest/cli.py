"""Replay 1-minute history through the live model and measure it honestly.

    python -m backtest [--data FILE ...] [--out DIR] [--asset BTC]
    python -m backtest --quotes logs/quotes [--data FILE ...] [--min-edge 0.03] [--out DIR]
    python -m backtest fit [--out signal_engine/params/prob_up-v2.json]   (prob_up v2: backtest/fit_cli.py)
    (python -m signal_engine.backtest is an alias)

Writes DIR/report.json (report["assets"][ASSET]["prob_up"][MINUTE] has n, brier, log_loss,
hit_rate, ece for MINUTE in "0", "1", "5", "10", "13"), reliability_<ASSET>.png and
equity_<ASSET>.png, and prints a summary. Default data: every candle file in
REPO/../shared/data; default DIR: logs/backtest. Exit codes: 0 done, 2 bad input (no data).

With --quotes (a folder of the executor's quote files, or files): the edge strategy against the
RECORDED quotes instead of an assumed market (backtest/quotes.py), prob_up from the candles of
the same time range; writes DIR/quotes_report.json and prints trades, hit rate, P&L net of fees
and the average edge.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from dataclasses import asdict
from pathlib import Path

from backtest import quotes as recorded
from backtest.engine import REPORT_MINUTES, StrategySettings, asset_report
from backtest.report import plots, summary
from backtest.strategy import MarketAssumption
from core.durable_files import atomic_write_json
from core.fees import DEFAULT_FEE_EXPONENT, DEFAULT_FEE_RATE
from signal_engine import model
from signal_engine.history import concat, load_candles, segments

log = logging.getLogger("backtest")
REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
QUALITY_BARS = {"5": {"brier": 0.200, "ece": 0.015}, "0": {"brier": 0.2500}}


class InputError(Exception):
    """Bad input the user can fix (missing data, unknown asset): exit 2."""


def asset_of(path: Path) -> str:
    """BTC from btcusdt_1m_dev.csv.gz, ETH from ETHUSDT-1m-2024-01.csv, else the name's first word."""
    name = path.name.lower()
    m = re.match(r"([a-z0-9]+?)(usdt|usdc|busd|usd)[^a-z]", name)
    return (m.group(1) if m else re.split(r"[^a-z0-9]", name)[0]).upper()


def default_files(data_dir: Path) -> list[Path]:
    if not data_dir.is_dir():
        raise InputError(f"no data folder at {data_dir}: pass --data FILE (a 1-minute candle CSV, "
                         "e.g. from python -m signal_engine.fetch_history)")
    files = sorted(p for p in data_dir.iterdir() if p.name.endswith((".csv", ".csv.gz")))
    if not files:
        raise InputError(f"no *.csv or *.csv.gz candle file in {data_dir}: pass --data FILE")
    return files


def verdicts(report: dict) -> list[str]:
    """Plain sentences on the quality bars, the heuristic and the strategies, from the figures."""
    out = []
    for asset, a in report["assets"].items():
        if not a["windows"]:
            out.append(f"[SKIP] {asset}: no usable window (each needs {model.HISTORY_NEEDED_S / 60:.0f} minutes of "
                       "gap-free history before its start and its 15 minutes)")
            continue
        for minute, bars in QUALITY_BARS.items():
            r = a["prob_up"][minute]
            for k, lim in bars.items():
                ok = r[k] is not None and r[k] <= lim
                out.append(f"[{'PASS' if ok else 'FAIL'}] {asset} prob_up +{minute} min {k} {r[k]} <= {lim}")
        h = a["heuristic"]["0"]
        if h["hit_rate"] is not None:
            out.append(f"{asset}: the seed heuristic states a mean confidence of {h['mean_confidence']:.1f}% at the "
                       f"open and is right {h['hit_rate'] * 100:.1f}% of the time: its confidence is "
                       f"{'NOT ' if h['mean_confidence'] / 100 - h['hit_rate'] > 0.05 else ''}a calibrated "
                       "probability.")
        e = a["strategies"]["edge"]
        lag, nolag = e["lagged_market"], e["market_without_lag"]
        if lag["pnl"] > 0 and nolag["pnl"] <= 0:
            out.append(f"{asset}: the edge strategy's profit ({lag['pnl']:.2f}) exists only because the assumed "
                       f"market lags by a minute; against a market without lag it makes {nolag['pnl']:.2f} "
                       f"in {nolag['trades']} trades.")
    return out


def run(files: list[Path], out_dir: Path, only_asset: str | None, market: MarketAssumption,
        settings: StrategySettings, params: model.ModelParams, progress: bool, make_plots: bool,
        folds: int = 5) -> dict:
    t0 = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    report: dict = {
        "generated_by": "python -m backtest",
        "window_seconds": 900.0,
        "decision_minutes": list(REPORT_MINUTES),
        "params": asdict(params),
        "params_short": {"vol_lookback_s": params.vol_lookback_s, "vol_scale": params.vol_scale,
                         "tilt_weight": params.tilt_weight},
        "params_in_sample": params == model.DEFAULT_PARAMS,
        "assumptions": {
            "labels": "Up when the close of the window's last candle >= the open of its first candle (ties Up)",
            "decision_instants": "start + 60 m: candle close times, so the model sees only closed candles",
            "windows": "on the 900 s UTC grid, whole window and the model's lookback inside one gap-free segment",
            "market": market.describe(),
            "strategies": asdict(settings),
            "in_sample": ("prob_up/heuristic/strategy figures over all windows use fixed defaults; the defaults "
                          "were chosen from this dev set's walk-forward, so they are in-sample. Only "
                          "walk_forward.*out_of_sample figures are out of sample."),
        },
        "assets": {},
        "plots": [],
    }
    by_asset: dict[str, list[Path]] = {}
    for path in files:
        by_asset.setdefault(asset_of(path), []).append(path)
    for asset, paths in by_asset.items():
        if only_asset and asset != only_asset.upper():
            continue
        t = time.monotonic()
        parts = [load_candles(p) for p in paths]
        c = concat(parts)
        log.info("%s: %d candles from %s (%d bad or duplicate rows dropped)", asset, len(c),
                 ", ".join(map(str, paths)), c.dropped_rows)
        section, r, trades = asset_report(c, params, market, settings, progress=progress, label=asset, folds=folds)
        section["data"] = {"file": ", ".join(map(str, paths)), "files": [str(p) for p in paths], "candles": len(c),
                           "dropped_rows": c.dropped_rows, "segments": len(segments(c.open_time, c.step_s))}
        section["runtime_s"] = round(time.monotonic() - t, 3)
        if make_plots and len(r.windows):
            report["plots"] += plots(out_dir, asset, r, r.prob(params), trades)
        report["assets"][asset] = section
    if not report["assets"]:
        raise InputError(f"no data file for asset {only_asset} among {', '.join(map(str, files))}")
    report["verdicts"] = verdicts(report)
    report["runtime_s"] = round(time.monotonic() - t0, 3)
    atomic_write_json(out_dir / "report.json", report)
    return report


def run_quotes(a: argparse.Namespace, files: list[Path], settings: StrategySettings) -> int:
    """--quotes: the report of the edge strategy against the recorded quotes."""
    for q in a.quotes:
        if not q.exists():
            raise InputError(f"quotes {q} do not exist (the executor records them into LOG_DIR/quotes in paper/live)")
    report = recorded.evaluate(a.quotes, files, asset_of, settings, a.fee_rate, a.fee_exponent, a.asset)
    if not report["lines"]:
        raise InputError(f"no recorded quote in {', '.join(map(str, a.quotes))}")
    a.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(a.out / "quotes_report.json", report)
    if not a.quiet:
        print(recorded.summary(report))
    print(f"report: {a.out / 'quotes_report.json'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m backtest", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", action="append", type=Path,
                   help="candle CSV (repeatable; files of one asset, e.g. monthly dumps, are joined); "
                        "default: ../shared/data/*")
    p.add_argument("--out", type=Path, default=REPO / "logs" / "backtest", help="output folder")
    p.add_argument("--asset", help="only this asset (BTC, ETH, ...)")
    p.add_argument("--confidence", type=float, default=60.0, help="seed strategy threshold (CONFIDENCE)")
    p.add_argument("--min-edge", type=float, default=0.03, help="edge strategy threshold (MIN_EDGE)")
    p.add_argument("--entry-start", type=float, default=0.0, help="edge entry interval start, s (ENTRY_START)")
    p.add_argument("--entry-end", type=float, default=720.0, help="edge entry interval end, s (ENTRY_END)")
    p.add_argument("--amount", type=float, default=10.0, help="USD per trade (POSITION_SIZE)")
    p.add_argument("--lag", type=int, default=1, help="assumed market lag in minutes")
    p.add_argument("--spread", type=float, default=0.01, help="assumed spread added to the ask")
    p.add_argument("--folds", type=int, default=5, help="walk-forward blocks")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--quotes", action="append", type=Path,
                   help="evaluate the edge strategy against recorded quotes instead of an assumed market: a folder "
                        "of quotes-YYYY-MM-DD.jsonl (e.g. logs/quotes) or files (repeatable); the amount is the "
                        "recorded size (POSITION_SIZE), --lag/--spread/--amount do not apply")
    p.add_argument("--fee-rate", type=float, default=DEFAULT_FEE_RATE, help="taker fee rate (FEE_RATE)")
    p.add_argument("--fee-exponent", type=float, default=DEFAULT_FEE_EXPONENT, help="fee exponent (FEE_EXPONENT)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no summary")
    return p


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["fit"]:        # python -m backtest fit ...: prob_up v2 (backtest/fit_cli.py)
        from backtest.fit_cli import main as fit_main

        return fit_main(args[1:])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    a = build_parser().parse_args(argv)
    try:
        files = a.data or default_files(DEFAULT_DATA_DIR)
        for f in files:
            if not f.is_file():
                raise InputError(f"data file {f} does not exist")
        if not (0 <= a.fee_rate <= 1 and 0 <= a.fee_exponent <= 5):
            raise InputError(f"--fee-rate must be in [0, 1] and --fee-exponent in [0, 5], got {a.fee_rate:g},"
                             f" {a.fee_exponent:g}")
        settings = StrategySettings(a.confidence, a.min_edge, a.entry_start, a.entry_end)
        if a.quotes:
            return run_quotes(a, files, settings)
        market = MarketAssumption(lag_minutes=a.lag, spread=a.spread, amount=a.amount, fee_rate=a.fee_rate,
                                  fee_exponent=a.fee_exponent)
        report = run(files, a.out, a.asset, market, settings, model.DEFAULT_PARAMS,
                     progress=not a.quiet, make_plots=not a.no_plots, folds=a.folds)
    except (InputError, ValueError, OSError) as e:
        print(f"backtest: {e}; nothing written", file=sys.stderr)
        return 2
    if not a.quiet:
        print(summary(report))
    print(f"report: {a.out / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
