"""The exactly-once journal (logs/trades.jsonl) and the per-window decision log (logs/decisions.jsonl).

trades.jsonl: every line has ts, event, mode, asset, window_start, trade_id. `intent` is
appended (fsynced, under a lock) before the first click. Terminal outcomes: filled, failed,
wallet_rejected. `submitted` and `unknown` are not terminal: such an intent is open and is
reconciled from the page's orders panel (found -> reconciled + filled; not found -> failed).
An (asset, window) with any intent is never traded again, across restarts.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from core.durable_files import append_jsonl, iter_jsonl
from core.window_grid import iso_utc

TERMINAL = ("filled", "failed", "wallet_rejected")
EVENTS = ("intent", "submitted", "filled", "failed", "unknown", "reconciled", "wallet_rejected", "settled")


def new_trade_id(slug: str) -> str:
    return f"{slug}-{uuid.uuid4().hex[:8]}"


class TradeJournal:
    def __init__(self, path: Path, mode: str, clock=time.time):
        self.path = Path(path)
        self.mode = mode
        self.clock = clock

    def append(self, event: str, asset: str, window_start: int, trade_id: str, **fields) -> dict:
        if event not in EVENTS:
            raise ValueError(f"unknown journal event {event!r}")
        now = self.clock()
        record = {"ts": iso_utc(now), "event": event, "mode": self.mode, "asset": asset,
                  "window_start": int(window_start), "trade_id": trade_id}
        record.update({k: v for k, v in fields.items() if v is not None})
        append_jsonl(self.path, record)
        return record

    def events(self) -> list[dict]:
        return [r for r in iter_jsonl(self.path) if isinstance(r.get("trade_id"), str)]

    def by_trade(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for r in self.events():
            out.setdefault(r["trade_id"], []).append(r)
        return out

    def open_intents(self) -> list[dict]:
        """Intents (of this mode) without a terminal outcome, oldest first."""
        out = []
        for events in self.by_trade().values():
            intent = next((e for e in events if e.get("event") == "intent"), None)
            if intent is None or intent.get("mode") != self.mode:
                continue
            if not any(e.get("event") in TERMINAL for e in events):
                out.append(intent)
        return out

    def traded_windows(self) -> set[tuple[str, int]]:
        return {(r["asset"], int(r["window_start"])) for r in self.events()
                if r.get("event") == "intent" and r.get("mode") == self.mode}

    def unsettled_fills(self) -> list[dict]:
        """`filled` events (of this mode) with no `settled` yet, each merged with its intent."""
        out = []
        for events in self.by_trade().values():
            fill = next((e for e in events if e.get("event") == "filled"), None)
            if fill is None or fill.get("mode") != self.mode:
                continue
            if any(e.get("event") == "settled" for e in events):
                continue
            intent = next((e for e in events if e.get("event") == "intent"), {})
            out.append({**intent, **fill})
        return out


class DecisionLog:
    """One line per (asset, window): traded or skipped, and why."""

    def __init__(self, path: Path, mode: str, clock=time.time):
        self.path = Path(path)
        self.mode = mode
        self.clock = clock
        self._done: set[tuple[str, int]] = {
            (r.get("asset"), int(r.get("window_start", 0))) for r in iter_jsonl(self.path)
            if r.get("mode") == mode and isinstance(r.get("window_start"), int)}

    def done(self, asset: str, window_start: int) -> bool:
        return (asset, int(window_start)) in self._done

    def write(self, asset: str, window_start: int, slug: str, action: str, reason: str, **fields) -> bool:
        key = (asset, int(window_start))
        if key in self._done:
            return False
        record = {"ts": iso_utc(self.clock()), "mode": self.mode, "asset": asset, "window_start": int(window_start),
                  "slug": slug, "action": action, "reason": reason}
        record.update({k: v for k, v in fields.items() if v is not None})
        append_jsonl(self.path, record)
        self._done.add(key)
        return True
