"""Read-only views of the running agent, from its files only (the dashboard and the Telegram bot).

Every reader is tolerant (a missing, torn or corrupt file is a `problem`, never an exception) and
bounded (journals are read from their tail, or incrementally; the per-day report is rebuilt only
when trades.jsonl changed). Nothing here writes, and nothing here is on the executor's path.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from core.config import Config
from core.durable_files import read_json
from core.jsonl_follow import tail_jsonl
from core.pause import read_pause
from core.signal_doc import parse
from core.window_grid import timestamp_of, utc_day
from risk.report import Report, build_report

TRADE_TAIL_BYTES = 512 * 1024


def status(cfg: Config, now: float | None = None) -> dict:
    """`./supervisor.sh status --json`'s document (monitor.status.build) plus the pause flag."""
    from monitor.settings import SettingsError, children_for, paths_of
    from monitor.status import build

    try:
        specs = children_for(cfg)
    except SettingsError:
        specs = []   # a broken SUPERVISOR_CHILDREN_FILE: the processes the monitor reports still show
    st = build(cfg, paths_of(cfg), specs, now)
    st.setdefault("pause", read_pause(cfg.state_dir).as_dict())   # monitor.status.build includes it
    return st


def signal_of(path: Path, now: float) -> dict:
    """One asset's signal file as the views show it: the fields, the strike, its age, or the problem."""
    res = read_json(path)
    if not res.ok or res.data is None:
        return {"problem": res.problem, "path": str(path)}
    doc, problem = parse(res.data)
    if doc is None:
        return {"problem": problem, "path": str(path)}
    ts = doc.timestamp
    if ts is None:
        try:
            ts = path.stat().st_mtime
        except OSError:
            ts = None
    w = doc.window
    return {"asset": doc.asset, "direction": doc.direction, "confidence": doc.confidence, "prob_up": doc.prob_up,
            "price": doc.price, "strike": w.open_price if w else None, "source": doc.source, "seq": doc.seq,
            "stale": doc.stale, "timestamp": ts, "age_s": round(now - ts, 2) if ts is not None else None,
            "window_start": w.start if w else None, "window_end": w.end if w else None,
            "seconds_left": w.seconds_left if w else None, "slug": w.slug if w else None}


def signals(cfg: Config, now: float | None = None) -> dict[str, dict]:
    now = time.time() if now is None else now
    return {a: signal_of(cfg.signal_path_for(a), now) for a in cfg.assets}


def recent_trades(cfg: Config, n: int, max_bytes: int = TRADE_TAIL_BYTES) -> list[dict]:
    """The last `n` trades (newest first), each the merge of its journal lines: what, and where it stands."""
    trades: dict[str, dict] = {}
    for rec in tail_jsonl(cfg.trades_path, max_bytes):
        tid = rec.get("trade_id")
        if not isinstance(tid, str) or rec.get("mode", cfg.mode) != cfg.mode:
            continue
        t = trades.setdefault(tid, {"trade_id": tid, "events": []})
        event = str(rec.get("event"))
        t["events"].append(event)
        t["state"] = event
        for key in ("asset", "slug", "side", "amount", "price", "window_start", "outcome", "pnl", "fee",
                    "payout", "reason", "estimated"):
            if rec.get(key) is not None and (key != "reason" or event != "intent"):
                t[key] = rec[key]
        if event == "intent":
            t["ts"] = rec.get("ts")
            t["intent_reason"] = rec.get("reason")
        t["last_ts"] = rec.get("ts")
    out = list(trades.values())[-max(0, n):] if n > 0 else []
    return out[::-1]


def recent_decisions(cfg: Config, n: int) -> list[dict]:
    """The last `n` lines of decisions.jsonl (newest first): one per window, traded or skipped and why."""
    keep = ("ts", "asset", "slug", "window_start", "action", "reason", "prob_up", "edge", "side", "price", "outcome")
    recs = tail_jsonl(cfg.decisions_path, 128 * 1024)[-max(0, n):] if n > 0 else []
    return [{k: r.get(k) for k in keep if r.get(k) is not None} for r in reversed(recs)]


@dataclass
class _Cached:
    key: tuple[int, int, int] | None
    report: Report | None


class ReportCache:
    """risk.report.build_report over trades.jsonl, rebuilt only when the file changed (size, mtime, inode)."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self._lock = threading.Lock()
        self._c = _Cached(None, None)

    def get(self) -> Report:
        path = self.cfg.trades_path
        try:
            st = os.stat(path)
            key = (st.st_size, st.st_mtime_ns, st.st_ino)
        except OSError:
            key = (0, 0, 0)
        with self._lock:
            if self._c.report is None or self._c.key != key:
                self._c = _Cached(key, build_report(path))
            return self._c.report

    def equity(self) -> list[tuple[float, float]]:
        return list(self.get().curve)

    def profit(self, days: int | None, now: float | None = None) -> dict:
        """Totals over the last `days` UTC days (today included), or all time when None."""
        now = time.time() if now is None else now
        rep = self.get()
        rows = rep.days if days is None else [d for d in rep.days if d.day >= utc_day(now - 86400 * (days - 1))]
        trades = sum(d.trades for d in rows)
        wins = sum(d.wins for d in rows)
        losses = sum(d.losses for d in rows)
        return {"days": days, "since": rows[0].day if rows else None, "trades": trades, "wins": wins,
                "losses": losses, "win_rate": wins / (wins + losses) if wins + losses else None,
                "fees": round(sum(d.fees for d in rows), 4), "pnl": round(sum(d.pnl for d in rows), 4),
                "worst_day_drawdown": round(max((d.worst_drawdown for d in rows), default=0.0), 4),
                "open_trades": len(rep.open_trades)}

    def daily(self, n: int) -> list[dict]:
        """The last `n` days with settled trades, newest first."""
        rows = self.get().days[-max(0, n):] if n > 0 else []
        return [{"day": d.day, "trades": d.trades, "wins": d.wins, "losses": d.losses, "fees": round(d.fees, 4),
                 "pnl": round(d.pnl, 4), "worst_drawdown": round(d.worst_drawdown, 4)} for d in reversed(rows)]


def journal_ts(rec: dict) -> float | None:
    return timestamp_of(rec.get("ts"))


__all__ = ["ReportCache", "journal_ts", "recent_decisions", "recent_trades", "signal_of", "signals", "status"]
