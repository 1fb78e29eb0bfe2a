"""`python -m backtest fit`: fit prob_up v2 walk-forward, report it against today's model, write the
parameter file the signal engine loads.

    python -m backtest fit [--data FILE ...] [--out signal_engine/params/prob_up-v2.json]
                           [--report DIR] [--asset BTC] [--folds 5] [--bootstrap 200] [--no-plots]

For each asset: the walk-forward (block k scored by the model fitted on blocks < k) gives the
out-of-sample figures and the quality bars; then the model is fitted once more on every window and
written to --out (one section per asset). Writes DIR/fit_report.json and DIR/reliability_v2_<ASSET>.png
and prints a summary. Exit codes: 0 written (whatever the bars say: they are in the report), 2 bad
input (no data, an asset with too few windows).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

from backtest import fit
from backtest import fit_report as fr
from core.durable_files import atomic_write_json
from core.window_grid import iso_utc
from signal_engine import vol_model as vm
from signal_engine import vol_params
from signal_engine.history import concat, load_candles

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "signal_engine" / "params" / "prob_up-v2.json"
MIN_WINDOWS = 200

log = logging.getLogger("backtest.fit")


def _rel(p: Path) -> str:
    """A path as the repository sees it (../shared/data/..., logs/backtest/...): the file is committed."""
    return os.path.relpath(Path(p).resolve(), REPO)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m backtest fit", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", action="append", type=Path, help="candle CSV (repeatable); default: ../shared/data/*")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the parameter file to write")
    p.add_argument("--report", type=Path, default=REPO / "logs" / "backtest", help="folder of the report and plots")
    p.add_argument("--asset", help="only this asset")
    p.add_argument("--folds", type=int, default=5, help="walk-forward blocks (>= 2)")
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples for the 95 %% intervals")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no summary")
    return p


def fit_one(asset: str, paths: list[Path], a: argparse.Namespace, plots: list[str]) -> tuple[dict, vm.VolModel, dict]:
    t0 = time.monotonic()
    c = concat([load_candles(p) for p in paths])
    g = fit.build_grid(c)
    n = len(g.windows)
    if n < MIN_WINDOWS:
        raise ValueError(f"{asset}: only {n} usable windows (each needs {fit.HISTORY_S / 3600:.1f} h of gap-free"
                         f" history before it); at least {MIN_WINDOWS} are needed to fit")
    wf = fit.walk_forward(asset, c, g, a.folds)
    rows = wf["rows"]
    y = g.up[rows]
    q_old = fit.v1_prob(c, g.take(rows))
    section = fr.compare(wf["q_new"], q_old, y, boot=a.bootstrap)
    if not a.no_plots and rows.size:
        a.report.mkdir(parents=True, exist_ok=True)
        plots.append(fr.plot_reliability(a.report, asset, wf["q_new"], q_old, y))
    final = fit.fit_asset(asset, c, g, np.arange(n))
    folds = [{"fold": k, "train_windows": int(tr.size), "test_windows": int(te.size),
              "test_from": iso_utc(float(g.windows.start[te[0]])),
              "test_until": iso_utc(float(g.windows.start[te[-1]])),
              "spans": [list(sp) for sp in v.spans], "close_blend": v.close_blend.to_dict(),
              "range_blend": v.range_blend.to_dict() if v.range_blend else None, "nu": v.nu,
              "kappa": round(float(v.kappa), 6),
              "scale_by_seconds_left": dict(zip((str(int(s)) for s in v.calib_seconds_left),
                                                (round(float(x), 4) for x in v.calib_scale), strict=True))}
             for k, tr, te, v in wf["fitted"]]
    fitted_on = {"files": [_rel(p) for p in paths], "windows": n, "first_window": iso_utc(float(g.windows.start[0])),
                 "last_window": iso_utc(float(g.windows.start[-1]))}
    report = {"windows": n, "fitted_on": fitted_on,
              "kappa": {"final": round(float(final.kappa), 6), "per_fold": [round(float(v.kappa), 6)
                                                                           for *_, v in wf["fitted"]]},
              "walk_forward": {"out_of_sample_windows": int(rows.size), "folds": folds, **section,
                               "per_fold_brier_change_pct": fr.per_fold(wf["q_new"], q_old, y, wf["fold_of_row"])},
              "close_only_fallback": fr.brief(wf["q_close_only"], q_old, y, wf["fold_of_row"]),
              "runtime_s": round(time.monotonic() - t0, 2)}
    report["bars"] = fr.bars(report["walk_forward"])
    return report, final, {"fitted_on": fitted_on}


def main(argv: list[str] | None = None) -> int:
    from backtest.cli import DEFAULT_DATA_DIR, InputError, asset_of, default_files

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    a = build_parser().parse_args(argv)
    t0 = time.monotonic()
    try:
        if a.folds < 2 or a.bootstrap < 10:
            raise InputError(f"--folds must be >= 2 and --bootstrap >= 10 (got {a.folds}, {a.bootstrap})")
        files = a.data or default_files(DEFAULT_DATA_DIR)
        by_asset: dict[str, list[Path]] = {}
        for f in files:
            if not f.is_file():
                raise InputError(f"data file {f} does not exist")
            by_asset.setdefault(asset_of(f), []).append(f)
        if a.asset:
            by_asset = {k: v for k, v in by_asset.items() if k == a.asset.upper()}
            if not by_asset:
                raise InputError(f"no data file for asset {a.asset.upper()} among {', '.join(map(str, files))}")
        plots: list[str] = []
        command = "python -m backtest fit " + " ".join(argv if argv is not None else sys.argv[2:])
        report: dict = {"generated_by": command.strip(),
                        "params_file": str(a.out), "model": vm.MODEL_NAME,
                        "method": f"{a.folds} chronological blocks of windows; block k >= 1 scored with the model "
                                  "fitted on blocks < k (candles closed before its first window); compared with "
                                  "today's model (signal_engine.model defaults) on the same windows",
                        "bootstrap": a.bootstrap, "assets": {}, "plots": plots}
        models, per_asset = {}, {}
        for asset, paths in by_asset.items():
            log.info("%s: fitting on %s", asset, ", ".join(map(str, paths)))
            report["assets"][asset], models[asset], per_asset[asset] = fit_one(asset, paths, a, plots)
        meta = {"created": iso_utc(time.time()), "command": report["generated_by"],
                "walk_forward_report": _rel(a.report / "fit_report.json"), "per_asset": per_asset}
        vol_params.write_param_doc(a.out, models, meta)
        report["runtime_s"] = round(time.monotonic() - t0, 2)
        a.report.mkdir(parents=True, exist_ok=True)
        atomic_write_json(a.report / "fit_report.json", report)
    except (InputError, ValueError, OSError) as e:
        print(f"backtest fit: {e}; nothing written", file=sys.stderr)
        return 2
    if not a.quiet:
        print(fr.summary(report))
    print(f"parameters: {a.out}\nreport: {a.report / 'fit_report.json'}")
    return 0
