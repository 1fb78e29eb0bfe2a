"""One supervised child (its state machine and heartbeat) and the monitor's FATAL notifier
(monitor/supervise.py runs them)."""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass, field
from enum import Enum

from core.config import Config

from .procs import Ident
from .settings import ChildSpec
from .states import ChildState, check_transition

log = logging.getLogger("monitor")


class StartCause(str, Enum):
    """Why the monitor starts a child next: its log's header says so, and only the starts the user did
    not ask for (RESTART, FATAL_RETRY) count as `restarts` in status."""

    AUTOSTART = "autostart"      # this monitor's first start of it (start, restart, the service, a reboot)
    RESTART = "restart"          # it exited, hung or could not start: started again by the monitor
    REQUESTED = "requested"      # ./supervisor.sh up: after `down`, or a FATAL child tried again
    FATAL_RETRY = "fatal_retry"  # the slow automatic retry of a FATAL child (SUPERVISOR_FATAL_RETRY)


@dataclass
class Child:
    spec: ChildSpec
    _state: ChildState = ChildState.STOPPED  # read through .state, changed only through .to()
    proc: subprocess.Popen | None = None
    ident: Ident | None = None
    started_at: float = 0.0
    next_start_at: float = 0.0
    failures: int = 0  # failed starts in a row
    restarts: int = 0  # starts the user did not ask for: after an exit or a hang, automatic FATAL retries
    requested_restarts: int = 0  # starts asked for with ./supervisor.sh up (after down, or of a FATAL child)
    starts: int = 0  # processes this monitor started
    # Start attempts in this STATE_DIR across monitor runs (carried over in supervisor.json): the N of
    # the "start #N" header each start writes to logs/<name>.log.
    starts_total: int = 0
    cause: StartCause = StartCause.AUTOSTART  # why the next start happens
    desc: list[Ident] = field(default_factory=list)
    stop_reason: str = ""
    kill_at: float = 0.0
    exit_code: int | None = None
    last_exit: dict | None = None
    fatal_reason: str | None = None
    termed_leftovers: bool = False
    exited_at: float = 0.0
    retry_at: float | None = None  # FATAL: when it is tried again by itself (None: only by `up`)
    fatal_retries: int = 0  # automatic retries of a FATAL child so far

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def state(self) -> ChildState:
        return self._state

    def to(self, new: ChildState) -> None:
        """Change state through the transition table; an illegal change raises IllegalTransition."""
        self._state = check_transition(self.name, self._state, new)

    def start_reason(self, monitor_pid: int) -> str:
        """Why this start happens, for the header line of its log."""
        if self.cause is StartCause.AUTOSTART:
            return f"first start by monitor pid {monitor_pid}"
        if self.cause is StartCause.REQUESTED:
            return "asked for with ./supervisor.sh up"
        if self.cause is StartCause.FATAL_RETRY:
            return f"automatic retry #{self.fatal_retries} of a FATAL process"
        return f"restart; last run: {(self.last_exit or {}).get('reason', 'unknown')}"

    def count_start(self) -> None:
        """A process of it runs: a restart, or one the user asked for (a monitor's first start is neither).
        Any later start is a restart unless `up` or the FATAL retry says otherwise."""
        if self.starts:
            if self.cause is StartCause.REQUESTED:
                self.requested_restarts += 1
            else:
                self.restarts += 1
        self.starts += 1
        self.cause = StartCause.RESTART

    def last_beat(self) -> float | None:
        best = None
        for p in self.spec.heartbeat:
            try:
                m = p.stat().st_mtime
            except OSError:
                continue  # not written yet (or being replaced): another file may still count
            best = m if best is None or m > best else best
        return best

    def beat_since_start(self) -> bool:
        b = self.last_beat()
        return b is not None and b >= self.started_at - 0.5

    def heartbeat_age(self, now: float) -> float | None:
        if not self.spec.heartbeat:
            return None
        b = self.last_beat()
        ref = self.started_at if b is None else max(b, self.started_at)
        return max(0.0, now - ref)


class Notify:
    """FATAL alerts through notify when that package exists (it is built separately): one
    non-blocking notifier for the monitor's life; never raises, never blocks the loop."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self._n = None
        self._tried = False

    def send(self, event: str, text: str) -> None:
        if not self._tried:
            self._tried = True
            try:
                from notify import Notifier
            except ImportError:
                log.info("notifications off: no notify module in this build")
                return
            try:
                self._n = Notifier(self.cfg)
            except Exception as exc:  # noqa: BLE001 - a notifier failure must never stop the monitor
                log.warning("notifications off: notify failed to start (%s)", type(exc).__name__)
        if self._n is None:
            return
        try:
            self._n.send(event, text)
        except Exception as exc:  # noqa: BLE001 - same: log and carry on
            log.warning("notification %r failed (%s); the monitor carries on", event, type(exc).__name__)

    def close(self, timeout: float = 5.0) -> None:
        if self._n is not None:
            try:
                self._n.close(timeout=timeout)
            except Exception as exc:  # noqa: BLE001 - shutting down anyway
                log.warning("notifier did not close cleanly (%s)", type(exc).__name__)
