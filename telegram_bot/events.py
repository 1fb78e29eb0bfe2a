"""The bot's notifications: the Discord notifier's event policy (notify/discord.py: fills,
settlements, halts, FATAL, wallet rejections, summaries), read from the agent's files.

The executor and the monitor are not touched: the watcher follows logs/trades.jsonl (filled,
settled, failed, unknown, wallet_rejected) and logs/risk.jsonl (halt, resume) from where it last
stopped (offsets kept in STATE_DIR/telegram_bot.json), and compares supervisor.json (a child
turning FATAL), executor.json (write_error, risk_error, selector_error) and the pause flag with
what it saw a second before. Lines older than MAX_EVENT_AGE_S (a bot that was down for long) are
not announced. A daily summary of the UTC day that ended is sent once after midnight.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable

from core.config import Config
from core.durable_files import read_json
from core.jsonl_follow import JsonlFollower
from core.pause import read_pause
from core.window_grid import timestamp_of, utc_day
from notify.discord import LABELS

MAX_EVENT_AGE_S = 3600.0
INTENTS_KEPT = 500
TRADE_EVENTS = {"filled": "fill", "settled": "settled", "failed": "failed", "unknown": "unknown",
                "wallet_rejected": "wallet_rejected"}
EXECUTOR_ALERTS = {"write_error": "halt", "risk_error": "halt", "selector_error": "selector_error"}
EXTRA_LABELS = {"resume": "RESUMED", "failed": "FAILED", "unknown": "UNKNOWN OUTCOME",
                "selector_error": "SELECTOR ERROR", "pause": "PAUSE", "unpause": "UNPAUSE"}


def label(event: str) -> str:
    return LABELS.get(event) or EXTRA_LABELS.get(event) or event.upper()


def _follower(path, saved: object) -> JsonlFollower:
    """Resume from a saved [inode, offset] when it still describes the file; else start at its end."""
    f = JsonlFollower(path, from_end=True)
    if isinstance(saved, list) and len(saved) == 2 and all(isinstance(x, int) for x in saved):
        try:
            st = os.stat(path)
        except OSError:
            return f
        if st.st_ino == saved[0] and 0 <= saved[1] <= st.st_size:
            f.inode, f.offset = saved[0], saved[1]
    return f


class EventWatcher:
    def __init__(self, cfg: Config, saved: dict | None = None, clock=time.time):
        self.cfg, self.clock = cfg, clock
        saved = saved or {}
        self.trades = _follower(cfg.trades_path, saved.get("trades"))
        self.risk = _follower(cfg.log_dir / "risk.jsonl", saved.get("risk"))
        self.intents: OrderedDict[str, dict] = OrderedDict()
        self.children: dict[str, str] | None = None
        self.executor_status: str | None = None
        self.paused: bool | None = None
        day = saved.get("summary_day")
        self.summary_day = day if isinstance(day, str) else utc_day(clock())

    def saved(self) -> dict:
        return {"trades": [self.trades.inode, self.trades.offset] if self.trades.inode is not None else None,
                "risk": [self.risk.inode, self.risk.offset] if self.risk.inode is not None else None,
                "summary_day": self.summary_day}

    def _fresh(self, rec: dict, now: float) -> bool:
        ts = timestamp_of(rec.get("ts"))
        return ts is None or now - ts <= MAX_EVENT_AGE_S

    def poll(self, summary: Callable[[str], str] | None = None) -> list[tuple[str, str]]:
        """The notifications due since the last call: (event, text)."""
        now = self.clock()
        out: list[tuple[str, str]] = []
        for rec in self.trades.read_all_new():
            if rec.get("mode", self.cfg.mode) == self.cfg.mode:
                item = self._trade(rec)
                if item and self._fresh(rec, now):
                    out.append(item)
        for rec in self.risk.read_all_new():
            item = self._risk(rec)
            if item and self._fresh(rec, now) and rec.get("mode", self.cfg.mode) == self.cfg.mode:
                out.append(item)
        out.extend(self._children())
        out.extend(self._executor())
        out.extend(self._pause())
        today = utc_day(now)
        if today != self.summary_day:
            ended, self.summary_day = self.summary_day, today
            if summary is not None:
                out.append(("summary", summary(ended)))
        return out

    def _trade(self, rec: dict) -> tuple[str, str] | None:
        tid, event, asset = str(rec.get("trade_id")), str(rec.get("event")), rec.get("asset")
        if event == "intent":
            self.intents[tid] = rec
            while len(self.intents) > INTENTS_KEPT:
                self.intents.popitem(last=False)
            return None
        kind = TRADE_EVENTS.get(event)
        if kind is None:
            return None
        merged = {**self.intents.get(tid, {}), **rec}
        if event == "filled":
            return kind, (f"{asset} {merged.get('side')} ${float(merged.get('amount') or 0):.2f} at"
                          f" {float(merged.get('price') or 0):.2f} ({tid})")
        if event == "settled":
            self.intents.pop(tid, None)
            pnl = rec.get("pnl")
            return kind, (f"{asset} {tid}: {rec.get('outcome')}, pnl "
                          + (f"{pnl:+.2f}" if isinstance(pnl, (int, float)) else "?")
                          + (" (estimated)" if rec.get("estimated") else ""))
        return kind, f"{asset} trade {tid}: {event}: {rec.get('reason')}"

    @staticmethod
    def _risk(rec: dict) -> tuple[str, str] | None:
        if rec.get("event") == "halt":
            return ("error halt" if rec.get("kind") == "error" else "halt"), f"trading halted: {rec.get('reason')}"
        if rec.get("event") == "resume":
            return "resume", f"halt cleared by {rec.get('by')}: was {rec.get('cleared')}"
        return None

    def _children(self) -> list[tuple[str, str]]:
        res = read_json(self.cfg.state_dir / "supervisor.json")
        kids = res.data.get("children") if res.ok and res.data else None
        if not isinstance(kids, dict):
            return []
        now = {str(k): str(v.get("state")) for k, v in kids.items() if isinstance(v, dict)}
        before, self.children = self.children, now
        if before is None:
            return []   # the first look is the baseline
        out = []
        for name, state in now.items():
            if state == "FATAL" and before.get(name) != "FATAL":
                out.append(("fatal", f"{name} FATAL: {kids[name].get('fatal_reason')}"))
        return out

    def _executor(self) -> list[tuple[str, str]]:
        res = read_json(self.cfg.executor_state_path)
        if not res.ok or not res.data:
            return []
        status, reason = str(res.data.get("status")), res.data.get("reason")
        before, self.executor_status = self.executor_status, status
        if before is None or status == before:
            return []
        if status in EXECUTOR_ALERTS:
            return [(EXECUTOR_ALERTS[status], f"executor {status}: {reason}; no new orders until it clears")]
        if before in EXECUTOR_ALERTS and status == "watching":
            return [("resume", f"executor watching again (was {before})")]
        return []

    def _pause(self) -> list[tuple[str, str]]:
        p = read_pause(self.cfg.state_dir)
        before, self.paused = self.paused, p.paused
        if before is None or before == p.paused:
            return []
        return [("pause", p.reason() or "paused")] if p.paused else \
            [("unpause", f"unpaused by {p.by}: new trades allowed again")]


__all__ = ["EventWatcher", "label"]
