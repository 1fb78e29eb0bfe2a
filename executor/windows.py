"""Each asset's current window: from the venue's window events, cross-checked with the UTC grid.

The venue reports window changes as they happen (`on_event`, any thread); the loop drains them
(`drain`), and once per pass `cross_check` compares with the UTC grid: when the grid says a new
window began and the venue has not reported it within GRID_GRACE_S, the venue is read directly,
and if it still shows an older window the grid's window is tracked anyway (never traded until
the venue shows it). A window the venue refuses (`venue.refusal`: its page and the APIs disagree on
the window, the token or the price, or its trade button would place no order) gets its skip line
with that reason at once and is never traded. Every window ends with exactly one line in
logs/decisions.jsonl.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

from core.window_grid import window_at, window_slug
from executor.decision import Logged
from executor.orders import OrderEvent
from executor.services import Services
from executor.state import ExecutorStatus
from executor.venue import Venue

log = logging.getLogger("executor.windows")

GRID_GRACE_S = 2.0   # the venue should show a new window this soon after the grid says it began


@dataclass
class WindowCtx:
    asset: str
    start: int
    end: int
    slug: str
    page_seen: bool = False
    decided: bool = False
    last_reason: str = ""
    selector_error: str | None = None
    markup_checked: bool = False


class WindowTracker:
    def __init__(self, svc: Services, venue: Venue, on_grid_miss=None):
        self.svc = svc
        self.venue = venue
        self.current: dict[str, WindowCtx] = {}
        self.events: deque = deque(maxlen=1000)
        self.on_grid_miss = on_grid_miss or (lambda asset, start: None)

    def on_event(self, asset: str, start: int, slug: str, seen: float, via: str) -> None:
        """From the venue (its thread): a window change; handled by the loop in `drain`."""
        self.events.append((asset, start, slug, seen if seen >= 0 else self.svc.clock(), via))

    def drain(self) -> None:
        while self.events:
            self._on_window(*self.events.popleft())

    def _on_window(self, asset: str, start: int, slug: str, seen: float, via: str) -> None:
        cur = self.current.get(asset)
        if cur is not None and cur.start == start:
            if not cur.page_seen:
                cur.page_seen, cur.slug, cur.last_reason = True, slug, ""
                log.info("%s window %s now shown by the page (%s)", asset, slug, via)
            return
        if cur is not None and start < cur.start:
            return  # an older window (e.g. a reload racing the clock): ignore
        if cur is not None:
            self.finish(cur, "window ended")
        w = WindowCtx(asset, start, start + self.svc.cfg.window_seconds, slug, page_seen=True)
        self.current[asset] = w
        self.svc.state.bump("windows")
        grid = window_at(asset, seen, self.svc.cfg.window_seconds)
        when = f"{seen - start:.3f}s after its start" if seen >= start else \
            f"{start - seen:.3f}s before its start: the page opened it ahead"
        log.info("%s new window %s (via %s, %s; grid %s)", asset, slug, via, when,
                 "agrees" if grid.start == start else f"says {grid.start}")

    def refusal(self, asset: str, start: int) -> str | None:
        """Why the venue refuses this window (None: it does not, or this venue never refuses)."""
        return self.venue.refusal(asset, start)

    def cross_check(self, asset: str, now: float) -> None:
        cfg = self.svc.cfg
        g = window_at(asset, now, cfg.window_seconds)
        cur = self.current.get(asset)
        refused = self.refusal(asset, g.start)
        if cur is not None and cur.start >= g.start:
            if cur.start > g.start:
                cur.last_reason = f"page shows window {cur.start}, the UTC grid says {g.start}"
            elif refused:
                self._refuse(cur, refused)
            return
        if now - g.start < GRID_GRACE_S and cur is not None and not refused:
            return
        self.on_grid_miss(asset, g.start)
        shown = self.venue.shown_window(asset)
        if shown is not None and shown[1] >= g.start:
            self._on_window(asset, shown[1], shown[0], now, via="direct read")
            return
        if cur is not None and cur.start == g.start:
            return
        if cur is not None:
            self.finish(cur, "window ended")
        w = WindowCtx(asset, g.start, g.end, window_slug(asset, g.start, cfg.window_seconds), page_seen=False)
        w.last_reason = ("the page does not show this window (it shows "
                         f"{shown[0] if shown else 'no checked event page'})")
        self.current[asset] = w
        self.svc.state.bump("windows")
        if refused:
            self._refuse(w, refused)
        else:
            log.warning("%s: the UTC grid says window %s began but %s", asset, w.slug, w.last_reason)

    def _refuse(self, w: WindowCtx, why: str) -> None:
        """The venue refuses this window: its skip line now (a window with an intent keeps its own)."""
        if not w.decided and not self.svc.journal.traded(w.asset, w.start):
            self.decide_line(w, Logged.SKIPPED, f"refused: {why}")

    def finish(self, w: WindowCtx, why: str) -> None:
        if not w.decided:
            refused = self.refusal(w.asset, w.start)
            self.decide_line(w, Logged.SKIPPED, f"refused: {refused}" if refused else (w.last_reason or why))

    def decide_line(self, w: WindowCtx, action: Logged, reason: str, **fields) -> None:
        """The window's one line in decisions.jsonl (idempotent across restarts)."""
        w.decided = True
        self.venue.window_done(w.asset, w.start)   # the venue may get the next window's page ready now
        if action == Logged.TRADED:
            reason = self._with_outcome(reason, fields.get("outcome"), fields.get("trade_id"))
        if self.svc.decisions.write(w.asset, w.start, w.slug, action, reason, strategy=self.svc.cfg.strategy,
                                    **fields):
            outcome = fields.get("outcome")
            self.svc.state.window_handled(w.asset, w.start, w.slug, str(action),
                                          None if outcome is None else str(outcome))
            self.svc.state.bump("traded" if action == Logged.TRADED else "skipped")
            log.info("%s %s: %s (%s)", w.asset, w.slug, action, reason)

    def _with_outcome(self, reason: str, outcome: str | None, trade_id: str | None) -> str:
        """A traded line is written after the order: `action` says the window's one trade was tried (its
        intent journaled), `outcome` what came of it. When that is not a fill, the reason says so too, so
        the line never reads as an order placed when none was (a wallet_rejected order never left)."""
        if outcome is None or str(outcome) == OrderEvent.FILLED:
            return reason
        tr = self.svc.journal.trades.get(str(trade_id))
        line = next((e for e in reversed(tr.events) if e.get("event") == str(outcome)), {}) if tr else {}
        why = f": {line['reason']}" if line.get("reason") else ""
        placed = ", no order placed" if str(outcome) == OrderEvent.WALLET_REJECTED else ""
        return f"{reason}; outcome {outcome}{placed}{why}"


def status_is(svc: Services, status: ExecutorStatus) -> bool:
    return svc.state.data.get("status") == status
