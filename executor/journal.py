"""The exactly-once journal (logs/trades.jsonl) and the per-window decision log (logs/decisions.jsonl).

trades.jsonl: every line has ts, event, mode, asset, window_start, trade_id. `intent` is
appended (fsynced, under a lock) before the first click. Each event moves its trade through the
state machine of `executor.orders`; an illegal move is refused before it is written. An intent
without an outcome is open and is reconciled from the venue (found -> reconciled + filled; not
found -> failed). An (asset, window) with any intent is never traded again, across restarts.

The file is read once, at start, into an in-memory index (`TradeRecord` per trade_id, this
mode's lines only); every append updates the index after the line is durably on disk. Lines
that are not objects or lack a required key are skipped, logged once with their line number
and counted (`bad_lines`); an unreadable intent line blocks new orders for its asset.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from core.durable_files import append_jsonl, iter_jsonl
from core.window_grid import iso_utc
from executor.orders import NEW, IllegalTransition, OrderEvent, advance, is_open, parse_event

# Trades that need nothing more: kept only in the file once their window is old (TradeJournal.prune).
FINISHED = frozenset({OrderEvent.FAILED, OrderEvent.WALLET_REJECTED, OrderEvent.SETTLED})

log = logging.getLogger("executor.journal")

E = OrderEvent


def new_trade_id(slug: str) -> str:
    return f"{slug}-{uuid.uuid4().hex[:8]}"


@dataclass
class TradeRecord:
    trade_id: str
    asset: str
    window_start: int
    state: OrderEvent | None = NEW
    events: list[dict] = field(default_factory=list)

    def first(self, event: OrderEvent) -> dict | None:
        return next((e for e in self.events if e.get("event") == event.value), None)

    @property
    def intent(self) -> dict | None:
        return self.first(E.INTENT)

    def merged_fill(self) -> dict:
        """The `filled` event merged over its intent (side, amount, price from the intent if absent)."""
        return {**(self.intent or {}), **(self.first(E.FILLED) or {})}


def _problem(obj: object) -> str | None:
    if not isinstance(obj, dict):
        return "not a JSON object"
    for key, types in (("ts", str), ("event", str), ("mode", str), ("asset", str), ("trade_id", str)):
        if not isinstance(obj.get(key), types):
            return f"missing or mistyped {key!r}"
    ws = obj.get("window_start")
    if not isinstance(ws, int) or isinstance(ws, bool):
        return "missing or mistyped 'window_start'"
    if parse_event(obj["event"]) is None:
        return f"unknown event {obj['event']!r}"
    return None


class TradeJournal:
    def __init__(self, path: Path, mode: str, clock=time.time):
        self.path = Path(path)
        self.mode = mode
        self.clock = clock
        self.trades: dict[str, TradeRecord] = {}
        self.by_window: dict[tuple[str, int], str] = {}   # (asset, window_start) -> its first trade_id
        self.bad_lines: list[str] = []                    # "line N: why", for status
        self.blocked_assets: dict[str, str] = {}          # asset -> why new orders are refused
        self._load()

    # ---- reading (once) ---------------------------------------------------------------------
    def _load(self) -> None:
        try:
            fh = open(self.path, "rb")
        except FileNotFoundError:
            return
        with fh:
            for n, raw in enumerate(fh, start=1):
                if raw.strip():
                    self._load_line(n, raw)

    def _load_line(self, n: int, raw: bytes) -> None:
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            self._bad(n, f"not JSON ({exc.msg if isinstance(exc, json.JSONDecodeError) else exc})", None)
            return
        why = _problem(obj)
        if why is not None:
            self._bad(n, why, obj if isinstance(obj, dict) else None)
            return
        if obj["mode"] != self.mode:
            return
        try:
            self._index(obj)
        except IllegalTransition as exc:
            self._bad(n, str(exc), None)
            # Fail closed: a window with any line of ours counts as traded, even an unreadable one.
            self.by_window.setdefault((obj["asset"], int(obj["window_start"])), obj["trade_id"])

    def _bad(self, n: int, why: str, obj: dict | None) -> None:
        self.bad_lines.append(f"line {n}: {why}")
        log.error("%s line %d skipped: %s", self.path, n, why)
        if obj is not None and obj.get("event") == "intent" and isinstance(obj.get("asset"), str) \
                and obj.get("mode", self.mode) == self.mode:
            asset = obj["asset"].upper()
            self.blocked_assets[asset] = (f"an unreadable intent at {self.path.name} line {n} ({why}): fix or remove"
                                          " the line after checking the venue, then restart")
            log.error("new %s orders refused: %s", asset, self.blocked_assets[asset])

    def _index(self, rec: dict) -> None:
        tid = rec["trade_id"]
        tr = self.trades.get(tid) or TradeRecord(tid, rec["asset"], int(rec["window_start"]))
        tr.state = advance(tid, tr.state, rec["event"])
        tr.events.append(rec)
        self.trades[tid] = tr
        self.by_window.setdefault((tr.asset, tr.window_start), tid)

    # ---- writing ----------------------------------------------------------------------------
    def append(self, event: OrderEvent | str, asset: str, window_start: int, trade_id: str, **fields) -> dict:
        """Journal one event; raises IllegalTransition (nothing written) or OSError (nothing written)."""
        tr = self.trades.get(trade_id)
        advance(trade_id, tr.state if tr else NEW, event)
        record = {"ts": iso_utc(self.clock()), "event": str(event), "mode": self.mode, "asset": asset,
                  "window_start": int(window_start), "trade_id": trade_id}
        record.update({k: v for k, v in fields.items() if v is not None})
        append_jsonl(self.path, record)
        self._index(record)
        return record

    # ---- views ------------------------------------------------------------------------------
    def events(self) -> list[dict]:
        """Every event of this mode, oldest first per trade (trades in first-seen order)."""
        return [e for tr in self.trades.values() for e in tr.events]

    def state_of(self, trade_id: str) -> OrderEvent | None:
        tr = self.trades.get(trade_id)
        return tr.state if tr else NEW

    def traded(self, asset: str, window_start: int) -> bool:
        return (asset, int(window_start)) in self.by_window

    def intent_for(self, asset: str, window_start: int) -> dict | None:
        tid = self.by_window.get((asset, int(window_start)))
        return self.trades[tid].intent if tid else None

    def open_intents(self) -> list[dict]:
        """Intents without an outcome, oldest first."""
        return [tr.intent for tr in self.trades.values() if is_open(tr.state) and tr.intent is not None]

    def all_events(self) -> list[dict]:
        """Every readable event of this mode, read from the file now (the whole history, for a rebuild of
        the risk book; the in-memory index keeps only what trading still needs: see `prune`)."""
        return [r for r in iter_jsonl(self.path) if _problem(r) is None and r["mode"] == self.mode]

    def prune(self, before: float) -> int:
        """Forget finished trades (failed, rejected, settled) of windows that started before `before`:
        the file keeps them, and nothing can trade those windows again. Open intents and unsettled
        fills always stay. Keeps a 24/7 run's memory flat. Returns how many were dropped."""
        done = [tid for tid, tr in self.trades.items()
                if tr.window_start < before and tr.state in FINISHED]
        for tid in done:
            tr = self.trades.pop(tid)
            if self.by_window.get((tr.asset, tr.window_start)) == tid:
                del self.by_window[(tr.asset, tr.window_start)]
        return len(done)

    def unsettled_fills(self) -> list[dict]:
        """Filled trades with no `settled` yet, each its fill merged over its intent."""
        return [tr.merged_fill() for tr in self.trades.values() if tr.state == E.FILLED]


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

    def prune(self, before: float) -> None:
        """Forget windows that started before `before` (their lines stay in the file)."""
        self._done = {k for k in self._done if k[1] >= before}

    def write(self, asset: str, window_start: int, slug: str, action: str, reason: str, **fields) -> bool:
        key = (asset, int(window_start))
        if key in self._done:
            return False
        record = {"ts": iso_utc(self.clock()), "mode": self.mode, "asset": asset, "window_start": int(window_start),
                  "slug": slug, "action": str(action), "reason": reason}
        record.update({k: v for k, v in fields.items() if v is not None})
        append_jsonl(self.path, record)
        self._done.add(key)
        return True
