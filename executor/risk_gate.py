"""The risk gate: the engine's only door to the risk book, and it fails closed.

- At start the book is rebuilt from the journals (`risk.replay.rebuild`). If that fails (an
  unreadable or locked `risk.json`, an unwritable state directory), the gate is *faulted*: every
  `check` refuses with the cause, and `state/executor.json` says `risk_error` with the reason.
- A `check` that raises (lock held past its timeout, I/O) refuses the trade and faults the gate.
- An error recording a fill or a settlement faults the gate: no new order until the book has
  been rebuilt from the journal (which replays what was missed) and a halt with that reason has
  been written to it; the halt then stays until `./supervisor.sh resume`.
A faulted gate retries the rebuild at most every RETRY_S, so an unlocked or repaired book
recovers without a restart, but never without the halt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from risk import replay
from risk.guards import RiskBook
from risk.sizing import position_size

log = logging.getLogger("executor.risk")

RETRY_S = 5.0


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"


class RiskGate:
    def __init__(self, cfg, clock: Callable[[], float], events: Callable[[], Iterable[dict]],
                 on_fault: Callable[[str | None], None]):
        self.cfg, self.clock, self.events, self.on_fault = cfg, clock, events, on_fault
        self.book: RiskBook | None = None
        self.fault: str | None = None
        self.pending_halt: str | None = None   # written to the book as soon as it works again
        self._last_try = float("-inf")

    # ---- start and recovery -----------------------------------------------------------------
    def start(self) -> None:
        try:
            self.book = RiskBook(self.cfg, clock=self.clock)
            replay.rebuild(self.book, self.events(), self.clock())
        except Exception as exc:  # noqa: BLE001 - any failure of the book means: do not trade
            self._set_fault(f"the risk book could not start ({_why(exc)}); not trading until it can", halt=False)
            return
        self._set_fault(None)

    def _recover(self) -> bool:
        if time.monotonic() - self._last_try < RETRY_S:
            return False
        self._last_try = time.monotonic()
        try:
            if self.book is None:
                self.book = RiskBook(self.cfg, clock=self.clock)
            replay.rebuild(self.book, self.events(), self.clock())
            if self.pending_halt:
                self.book.halt(self.pending_halt, kind="error")
        except Exception as exc:  # noqa: BLE001 - still broken: stay closed, say why
            log.error("risk book still unavailable (%s); still not trading", _why(exc))
            return False
        log.warning("risk book available again%s", f"; halted: {self.pending_halt}" if self.pending_halt else "")
        self.pending_halt = None
        self._set_fault(None)
        return True

    def _set_fault(self, reason: str | None, halt: bool = True) -> None:
        if reason is not None:
            log.error("RISK FAULT: %s", reason)
            if halt:
                self.pending_halt = reason
                self._last_try = float("-inf")   # try to write the halt at once
        self.fault = reason
        self.on_fault(reason)

    # ---- the guard ----------------------------------------------------------------------------
    def size(self, prob_up: float | None, price: float | None, side: str) -> tuple[float | None, str | None]:
        try:
            return position_size(self.cfg, prob_up, price, side)
        except Exception as exc:  # noqa: BLE001 - a sizing bug must skip the window, not crash the loop
            return None, f"sizing failed: {_why(exc)}"

    def check(self, asset: str, window_start: int, amount: float, now: float) -> str | None:
        """Why this trade must not happen, or None. Never None while faulted."""
        if self.fault is not None and not self._recover():
            return f"risk book unavailable: {self.fault}"
        try:
            return self.book.check(asset, window_start, amount, now)
        except Exception as exc:  # noqa: BLE001 - a guard that cannot answer says no
            reason = f"the risk check failed ({_why(exc)})"
            self._set_fault(reason)
            return reason

    def on_fill(self, trade_id: str, asset: str, window_start: int, fill: dict) -> None:
        amount, price, shares, fee = replay.fill_numbers(fill, self.cfg)
        try:
            if self.book is None:
                raise RuntimeError("no risk book")
            self.book.on_fill(trade_id, asset, window_start, str(fill.get("side", "")), amount, price, shares, fee,
                              self.clock())
        except Exception as exc:  # noqa: BLE001 - the journal holds the fill; halt until it is counted
            self._set_fault(f"could not record fill {trade_id} in the risk book ({_why(exc)})")

    def on_settled(self, trade_id: str, pnl: float, outcome: str | None) -> str | None:
        """The halt reason if this settlement tripped one."""
        try:
            if self.book is None:
                raise RuntimeError("no risk book")
            return self.book.on_settled(trade_id, pnl, self.clock(), outcome=outcome)
        except Exception as exc:  # noqa: BLE001 - the journal holds the settlement; halt until it is counted
            self._set_fault(f"could not record settlement {trade_id} in the risk book ({_why(exc)})")
            return None   # the fault is notified (once) by the worker's fault callback

    def status(self, now: float) -> dict | None:
        if self.fault is not None or self.book is None:
            return None
        try:
            return self.book.status(now)
        except Exception as exc:  # noqa: BLE001 - the summary is optional; the next check will fault
            log.warning("risk status unavailable: %s", _why(exc))
            return None
