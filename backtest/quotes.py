"""`python -m backtest --quotes DIR`: the edge strategy against RECORDED quotes, not an assumed market.

The executor's quote recorder (executor/quote_recorder.py) writes, once a second per window, each
asset's best bid/ask and the ask for POSITION_SIZE walked through the book (`up_ask_for_size`,
`down_ask_for_size`: avg_price, worst_price, or null when the book was too thin). This replays
the edge strategy over those windows:

- decision instants: each minute of the window inside [ENTRY_START, ENTRY_END) (start + 60 m),
  the instants where 1-minute candles tell the model, honestly, what was known: the same
  instants as the rest of the backtest;
- prob_up at that instant: `signal_engine.model`, from the candles (--data, as the backtest
  always does), through backtest.engine.compute_run;
- the price: the first quote recorded AT OR AFTER the instant (what an order sent then would
  have met), no later than QUOTE_MAX_DELAY_S; a side whose ask for the size was null (too little
  depth) cannot be bought; no quote in time: that instant is counted and passed over;
- the rule: executor/decision.py's `decide` itself (STRATEGY=edge: the side whose
  prob - ask - expected fee, core.fees.edge, is >= MIN_EDGE, the larger edge winning, its ask
  inside [MIN_PRICE, MAX_PRICE]), once per window, at the first instant that says trade, at the
  average price of the walked book;
- the fill and settlement: core.fees.buy of the recorded size at that price (the fee taken in
  shares at the average price), paid 1 per kept share when the side wins; the outcome from the
  candles (Up when the window's last close >= its first open; ties Up). The real markets resolve
  on Chainlink: Binance's candles disagree in about 0.6 % of windows.

Windows whose candles are missing (or lack the model's ~61 minutes of history) are counted, not
scored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backtest.engine import StrategySettings, compute_run, entry_columns
from backtest.metrics import max_drawdown
from core import fees
from core.durable_files import iter_jsonl
from core.window_grid import iso_utc, parse_slug
from executor.decision import Action, Params, decide
from signal_engine import model
from signal_engine.history import Candles, concat, load_candles

QUOTE_MAX_DELAY_S = 5.0
FILE_GLOB = "quotes-*.jsonl"


@dataclass(frozen=True)
class Quote:
    t: float                     # seconds into the window
    size: float                  # USD the asks were walked for (POSITION_SIZE when recorded)
    up: float | None             # average price of a BUY of `size` Up; None: too thin / no ask
    down: float | None


@dataclass
class RecordedWindow:
    asset: str
    start: int
    length: int
    quotes: list[Quote]


def span_seconds(slug: str) -> int | None:
    """900 from btc-updown-15m-..., 30 from ...-30s-...; None for anything else."""
    parts = slug.split("-")
    span = parts[2] if len(parts) == 4 else ""
    if span[:-1].isdigit() and span[-1:] in ("m", "s"):
        return int(span[:-1]) * (60 if span[-1] == "m" else 1)
    return None


def _avg(value: object) -> float | None:
    if not isinstance(value, dict):
        return None
    p = value.get("avg_price")
    return float(p) if isinstance(p, (int, float)) and not isinstance(p, bool) and 0 < p < 1 else None


def parse_row(row: dict) -> tuple[tuple[str, int, int], Quote] | None:
    """((asset, window_start, length), Quote) from one recorded line; None when it is not one."""
    try:
        asset, start = parse_slug(str(row.get("slug")))
    except ValueError:
        return None
    length = span_seconds(str(row["slug"]))
    t, size = row.get("seconds_into_window"), row.get("size")
    if (length is None or asset != row.get("asset") or start != row.get("window_start")
            or not isinstance(t, (int, float)) or not isinstance(size, (int, float)) or isinstance(size, bool)
            or not (math.isfinite(t) and 0 <= t < length) or not (math.isfinite(size) and size > 0)):
        return None
    return (asset, start, length), Quote(float(t), float(size), _avg(row.get("up_ask_for_size")),
                                         _avg(row.get("down_ask_for_size")))


def quote_files(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        out += sorted(p.glob(FILE_GLOB)) if p.is_dir() else [p]
    return out


def load_quotes(files: list[Path]) -> tuple[list[RecordedWindow], int, int]:
    """(windows in time order, lines read, lines that were not a quote)."""
    by_window: dict[tuple[str, int, int], list[Quote]] = {}
    lines = bad = 0
    for f in files:
        for row in iter_jsonl(f):
            lines += 1
            parsed = parse_row(row)
            if parsed is None:
                bad += 1
                continue
            by_window.setdefault(parsed[0], []).append(parsed[1])
    windows = [RecordedWindow(a, s, n, sorted(q, key=lambda x: x.t)) for (a, s, n), q in by_window.items()]
    return sorted(windows, key=lambda w: (w.start, w.asset)), lines, bad


def quote_at(quotes: list[Quote], t: float, max_delay: float = QUOTE_MAX_DELAY_S) -> Quote | None:
    """The first quote at or after `t` seconds into the window, if within `max_delay`."""
    for q in quotes:
        if q.t >= t - 1e-9:
            return q if q.t <= t + max_delay else None
    return None


def candles_for(asset: str, files: list[Path], asset_of, windows: list[RecordedWindow]) -> Candles | None:
    """The asset's candles, cut to the recorded windows' span plus the model's history."""
    paths = [p for p in files if asset_of(p) == asset]
    if not paths:
        return None
    c = concat([load_candles(p) for p in paths])
    lo = min(w.start for w in windows) - model.HISTORY_NEEDED_S - 3600.0 - 120.0
    hi = max(w.start + w.length for w in windows) + 120.0
    keep = (c.open_time >= lo) & (c.open_time <= hi)
    return Candles(c.open_time[keep], c.open[keep], c.high[keep], c.low[keep], c.close[keep], c.volume[keep],
                   c.dropped_rows, c.step_s)


def decision_params(s: StrategySettings, fee_rate: float, fee_exponent: float) -> Params:
    return Params("edge", 0.0, s.min_edge, s.entry_start, s.entry_end, 5.0, s.min_price, s.max_price,
                  fee_rate, fee_exponent)


def _signal(asset: str, start: int, at: float, prob: float) -> dict:
    return {"timestamp": iso_utc(at), "asset": asset, "prob_up": prob, "direction": "NO_TRADE",
            "window": {"start": iso_utc(start)}, "stale": False}


def trade_window(w: RecordedWindow, probs: np.ndarray, minutes: np.ndarray, up_won: bool, p: Params,
                 missed: list[int]) -> dict | None:
    """The window's one trade (or None): the first decision instant whose quote says trade."""
    for m, prob in zip(minutes.tolist(), probs.tolist(), strict=True):
        at = 60.0 * m
        q = quote_at(w.quotes, at)
        if q is None:
            missed[0] += 1
            continue
        d = decide(p, w.asset, w.start, w.start + w.length, w.start + at, _signal(w.asset, w.start, w.start + at, prob),
                   None, q.up, q.down, False)
        if d.action == Action.SKIP:
            return None
        if d.action != Action.TRADE or d.side is None or d.price is None:
            continue
        fill = fees.buy(q.size, d.price, p.fee_rate, p.fee_exponent)
        won = (d.side == "UP") == up_won
        pnl = (fill.shares if won else 0.0) - fill.amount
        return {"asset": w.asset, "window_start": w.start, "window": iso_utc(w.start), "minute": m,
                "quote_seconds": q.t, "side": d.side, "price": d.price, "prob_up": round(prob, 6),
                "edge": round(float(d.edge or 0.0), 6), "amount": q.size, "shares": round(fill.shares, 6),
                "fee": round(fill.fee_usd, 6), "won": won, "pnl": round(pnl, 6)}
    return None


def evaluate_group(windows: list[RecordedWindow], c: Candles | None, s: StrategySettings, p: Params,
                   params: model.ModelParams) -> tuple[list[dict], dict]:
    """Trades and counts for windows of one asset and one length."""
    counts = {"windows": len(windows), "evaluated": 0, "without_candles": 0, "instants_without_quote": 0}
    if c is None or not len(c):
        counts["without_candles"] = len(windows)
        return [], counts
    run = compute_run(c, params, window_seconds=float(windows[0].length))
    index = {int(st): i for i, st in enumerate(run.windows.start.tolist())}
    cols = entry_columns(run, s)
    q = run.prob(params)
    missed = [0]
    trades = []
    for w in windows:
        i = index.get(w.start)
        if i is None:
            counts["without_candles"] += 1
            continue
        counts["evaluated"] += 1
        t = trade_window(w, q[i, cols], run.minutes[cols], bool(run.windows.up[i]), p, missed)
        if t is not None:
            trades.append(t)
    counts["instants_without_quote"] = missed[0]
    return trades, counts


def stats(trades: list[dict]) -> dict:
    n = len(trades)
    pnl = np.array([t["pnl"] for t in trades], dtype=float)

    def mean(key: str, nd: int = 6) -> float | None:
        return round(float(np.mean([t[key] for t in trades])), nd) if n else None

    return {"trades": n, "wins": sum(t["won"] for t in trades),
            "hit_rate": round(sum(t["won"] for t in trades) / n, 6) if n else None,
            "pnl": round(float(pnl.sum()), 4), "fees": round(sum(t["fee"] for t in trades), 4),
            "avg_edge": mean("edge"), "avg_price": mean("price"), "mean_pnl_per_trade": mean("pnl", 4),
            "max_drawdown": round(max_drawdown(pnl), 4)}


def evaluate(quote_paths: list[Path], candle_files: list[Path], asset_of, s: StrategySettings,
             fee_rate: float = fees.DEFAULT_FEE_RATE, fee_exponent: float = fees.DEFAULT_FEE_EXPONENT,
             only_asset: str | None = None, params: model.ModelParams = model.DEFAULT_PARAMS) -> dict:
    files = quote_files(quote_paths)
    windows, lines, bad = load_quotes(files)
    if only_asset:
        windows = [w for w in windows if w.asset == only_asset.upper()]
    p = decision_params(s, fee_rate, fee_exponent)
    groups: dict[tuple[str, int], list[RecordedWindow]] = {}
    for w in windows:
        groups.setdefault((w.asset, w.length), []).append(w)
    report: dict = {"generated_by": "python -m backtest --quotes", "quote_files": [str(f) for f in files],
                    "lines": lines, "bad_lines": bad, "assets": {}, "trades": [],
                    "assumptions": {"strategy": "edge (executor/decision.py decide)", "min_edge": s.min_edge,
                                    "entry": [s.entry_start, s.entry_end], "price_range": [s.min_price, s.max_price],
                                    "fee_rate": fee_rate, "fee_exponent": fee_exponent,
                                    "decision_instants": "window start + 60 m inside the entry interval",
                                    "price": f"avg price of the recorded ask for the size, first quote at or after "
                                             f"the instant, within {QUOTE_MAX_DELAY_S:g} s",
                                    "outcome": "candles: last close >= first open (ties Up)"}}
    for (asset, length), ws in sorted(groups.items()):
        c = candles_for(asset, candle_files, asset_of, ws)
        trades, counts = evaluate_group(ws, c, s, p, params)
        section = report["assets"].setdefault(asset, {"windows": 0, "evaluated": 0, "without_candles": 0,
                                                      "instants_without_quote": 0, "window_seconds": []})
        for k, v in counts.items():
            section[k] += v
        section["window_seconds"].append(length)
        report["trades"] += trades
    for asset, section in report["assets"].items():
        section.update(stats([t for t in report["trades"] if t["asset"] == asset]))
    report["total"] = stats(report["trades"])
    return report


def summary(report: dict) -> str:
    lines = [f"Edge strategy against recorded quotes: {report['lines']} line(s) in {len(report['quote_files'])}"
             f" file(s) ({report['bad_lines']} not a quote)"]
    for asset, a in report["assets"].items():
        lines.append(f"{asset}: {a['windows']} window(s) recorded, {a['evaluated']} evaluated, {a['without_candles']}"
                     " without candles or the model's hour of history before them (fetch those days with"
                     f" python -m signal_engine.fetch_history), {a['instants_without_quote']} decision instant(s)"
                     " without a quote")
        lines.append(_stats_line(asset, a))
    lines.append(_stats_line("all", report["total"]))
    return "\n".join(lines)


def _stats_line(label: str, st: dict) -> str:
    def f(x, nd: int) -> str:
        return "-" if x is None else f"{x:.{nd}f}"

    return (f"  {label}: trades {st['trades']}, hit rate {f(st['hit_rate'], 3)}, P&L net of fees {st['pnl']:.2f} "
            f"(fees {st['fees']:.2f}), average edge {f(st['avg_edge'], 4)}, average price {f(st['avg_price'], 3)}, "
            f"max drawdown {st['max_drawdown']:.2f}")
