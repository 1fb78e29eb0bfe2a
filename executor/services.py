"""What the executor's parts share: config, clock, stop flag, durable state, journals, notifications.

Built once by the worker and handed to the engine, the window tracker, reconciliation and
settlement, so each of them is a small class that can be built in a test from real files.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from core.durable_files import touch_heartbeat
from executor.journal import DecisionLog, TradeJournal
from executor.state import ExecutorState

log = logging.getLogger("executor")

HEARTBEAT_EVERY_S = 0.5
SAVE_EVERY_S = 1.0


class StopFlag:
    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def set(self, reason: str = "stop requested") -> None:
        self.reason = reason
        self._event.set()

    def wait(self, seconds: float) -> bool:
        return self._event.wait(seconds)

    def __bool__(self) -> bool:
        return self._event.is_set()


@dataclass
class Services:
    cfg: object
    clock: Callable[[], float]
    stop: StopFlag
    state: ExecutorState
    journal: TradeJournal
    decisions: DecisionLog
    notify: Callable[[str, str], None] = field(default=lambda event, text: None)
    save_failing: bool = False
    _last_hb: float = 0.0
    _last_save: float = 0.0

    @classmethod
    def build(cls, cfg, clock=time.time, stop: StopFlag | None = None,
              notify: Callable[[str, str], None] | None = None) -> Services:
        return cls(cfg=cfg, clock=clock, stop=stop if stop is not None else StopFlag(),
                   state=ExecutorState(cfg.executor_state_path, cfg.mode, clock),
                   journal=TradeJournal(cfg.trades_path, cfg.mode, clock),
                   decisions=DecisionLog(cfg.decisions_path, cfg.mode, clock),
                   notify=notify or (lambda event, text: None))

    def tick(self, force: bool = False) -> None:
        """Heartbeat (every 0.5 s) and executor.json (every 1 s); both cheap, both from the loop."""
        now = time.monotonic()
        if force or now - self._last_hb >= HEARTBEAT_EVERY_S:
            touch_heartbeat(self.cfg.heartbeat_path("executor"))
            self._last_hb = now
        if force or now - self._last_save >= SAVE_EVERY_S:
            self._last_save = now
            try:
                self.state.save()
            except OSError as exc:   # disk full or unwritable state/: keep the heartbeat, say it in the log
                if not self.save_failing:
                    log.error("could not save %s (%s); retrying every second", self.cfg.executor_state_path, exc)
                self.save_failing = True
            else:
                if self.save_failing:
                    log.warning("%s is saved again", self.cfg.executor_state_path)
                self.save_failing = False
