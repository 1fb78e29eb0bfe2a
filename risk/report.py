"""Accounting views from `logs/trades.jsonl`: a per-UTC-day table and an equity-curve PNG.

Only `settled` events move the books (their `pnl` already includes the fee, which the venue
takes in shares on the buy); `filled` events without a settlement are listed as open.
A day's worst drawdown is the largest fall of cumulative P&L from its running peak during that
day (the peak carried in from earlier days counts), in USD, reported as a positive number.
"""

from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.durable_files import iter_jsonl
from core.window_grid import timestamp_of, utc_day

log = logging.getLogger("risk.report")


@dataclass
class DayRow:
    day: str
    trades: int = 0
    wins: int = 0
    losses: int = 0
    fees: float = 0.0
    pnl: float = 0.0
    worst_drawdown: float = 0.0

    @property
    def win_rate(self) -> float | None:
        decided = self.wins + self.losses
        return self.wins / decided if decided else None


@dataclass
class Report:
    days: list[DayRow]
    curve: list[tuple[float, float]]  # (settlement epoch seconds, cumulative P&L)
    open_trades: list[str] = field(default_factory=list)
    skipped_lines: int = 0

    @property
    def total(self) -> DayRow:
        t = DayRow("total")
        for d in self.days:
            t.trades += d.trades
            t.wins += d.wins
            t.losses += d.losses
            t.fees += d.fees
            t.pnl += d.pnl
        t.worst_drawdown = _max_drawdown([p for _, p in self.curve])
        return t


def _ts(value: Any) -> float | None:
    return timestamp_of(value)


def _max_drawdown(values: list[float], start: float = 0.0, peak: float | None = None) -> float:
    peak = start if peak is None else peak
    worst = 0.0
    for v in values:
        peak = max(peak, v)
        worst = max(worst, peak - v)
    return worst


def build_report(trades_path: Path) -> Report:
    settled: list[tuple[float, dict]] = []
    filled: set[str] = set()
    seen_settled: set[str] = set()
    skipped = 0
    for rec in iter_jsonl(trades_path):
        event = rec.get("event")
        if event == "filled" and rec.get("trade_id"):
            filled.add(str(rec["trade_id"]))
        elif event == "settled":
            ts = _ts(rec.get("ts"))
            tid = str(rec.get("trade_id", ""))
            try:
                pnl = float(rec["pnl"])
            except (KeyError, TypeError, ValueError):
                skipped += 1
                continue
            if ts is None or (tid and tid in seen_settled):
                skipped += 1  # no usable time, or a duplicate settlement line
                continue
            seen_settled.add(tid)
            settled.append((ts, {**rec, "pnl": pnl}))
    settled.sort(key=lambda x: x[0])

    days: dict[str, DayRow] = {}
    curve: list[tuple[float, float]] = []
    equity = peak = 0.0
    day_dd: dict[str, float] = {}
    for ts, rec in settled:
        day = utc_day(ts)
        row = days.setdefault(day, DayRow(day))
        row.trades += 1
        outcome = rec.get("outcome")
        won = outcome == "won" if outcome in ("won", "lost") else (rec["pnl"] > 0 if rec["pnl"] != 0 else None)
        if won is True:
            row.wins += 1
        elif won is False:
            row.losses += 1
        try:
            row.fees += float(rec.get("fee") or 0.0)
        except (TypeError, ValueError):
            log.warning("settled %s has an unreadable fee %r; counted as 0", rec.get("trade_id"), rec.get("fee"))
        row.pnl += rec["pnl"]
        equity += rec["pnl"]
        peak = max(peak, equity)
        day_dd[day] = max(day_dd.get(day, 0.0), peak - equity)
        curve.append((ts, equity))
    for day, dd in day_dd.items():
        days[day].worst_drawdown = dd
    open_trades = sorted(filled - seen_settled)
    return Report(sorted(days.values(), key=lambda d: d.day), curve, open_trades, skipped)


def format_table(rep: Report) -> str:
    head = (f"{'day (UTC)':<12} {'trades':>6} {'wins':>5} {'losses':>6} {'win%':>5} {'fees':>9}"
            f" {'P&L':>10} {'worst DD':>9}")
    lines = [head, "-" * len(head)]

    def line(d: DayRow) -> str:
        wr = "-" if d.win_rate is None else f"{100 * d.win_rate:.0f}"
        return (f"{d.day:<12} {d.trades:>6} {d.wins:>5} {d.losses:>6} {wr:>5} {d.fees:>9.2f}"
                f" {d.pnl:>+10.2f} {d.worst_drawdown:>9.2f}")

    lines.extend(line(d) for d in rep.days)
    lines.append("-" * len(head))
    lines.append(line(rep.total))
    if rep.open_trades:
        lines.append(f"{len(rep.open_trades)} filled trade(s) not settled yet: {', '.join(rep.open_trades[:10])}"
                     + (" ..." if len(rep.open_trades) > 10 else ""))
    if rep.skipped_lines:
        lines.append(f"{rep.skipped_lines} settled line(s) skipped (duplicate, or no usable ts/pnl)")
    return "\n".join(lines)


def write_equity_png(rep: Report, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    try:
        if rep.curve:
            first = rep.curve[0][0]
            xs = [_dt.datetime.fromtimestamp(t, tz=_dt.timezone.utc) for t in [first, *(t for t, _ in rep.curve)]]
            ys = [0.0, *(p for _, p in rep.curve)]  # equity starts at 0 before the first settlement
            ax.step(xs, ys, where="post", color="tab:blue", linewidth=1.5)
            ax.axhline(0.0, color="grey", linewidth=0.8)
            tot = rep.total
            ax.set_title(f"Equity (cumulative P&L): {tot.pnl:+.2f} USD over {tot.trades} trades,"
                         f" worst drawdown {tot.worst_drawdown:.2f}")
            ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d %H:%M", tz=_dt.timezone.utc))
            fig.autofmt_xdate()
        else:
            ax.text(0.5, 0.5, "no settled trades yet", ha="center", va="center", transform=ax.transAxes)
            ax.set_title("Equity (cumulative P&L)")
        ax.set_xlabel("settlement time (UTC)")
        ax.set_ylabel("USD")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        tmp = path.with_name(f".{path.name}.tmp")
        fig.savefig(tmp, format="png")
        tmp.replace(path)
    finally:
        plt.close(fig)
    return path
