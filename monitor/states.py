"""The states of a supervised child and the one table of legal transitions between them.

As supervisord's process states (STOPPED, STARTING, RUNNING, BACKOFF, STOPPING, EXITED, FATAL),
plus DOWN: held down on purpose by `./supervisor.sh down NAME` (a `state/down/NAME` file).
The values are what `state/supervisor.json` and `status` show (a contract: FATAL is upper case).

    STOPPED  --autostart--> STARTING --spawned--> RUNNING --exit / hung / down / shutdown--> STOPPING
    STOPPING --gone--> EXITED (it exited or was killed as hung) | DOWN | STOPPED (shutdown)
    EXITED   --> BACKOFF (restarted after 0, 1, 2, 4 ... s) | FATAL (MAX_FAILS failed starts in a row)
    BACKOFF  --> RUNNING (spawned again)
    FATAL    --`up`, or the automatic retry every SUPERVISOR_FATAL_RETRY s (never after exit 2)--> STARTING
    DOWN     --down file removed--> STARTING

A spawn that fails (no such program) goes from STARTING or BACKOFF straight to EXITED. Anything
not in the table raises IllegalTransition (and is logged): never silently accepted.
"""

from __future__ import annotations

import logging
from enum import Enum

log = logging.getLogger("monitor")


class ChildState(str, Enum):
    STOPPED = "stopped"    # not running, not to be started (before autostart; after a shutdown)
    STARTING = "starting"  # to be started now (first start, after `up`, after a FATAL retry)
    RUNNING = "running"    # its process runs
    BACKOFF = "backoff"    # it exited; started again at next_start_at
    STOPPING = "stopping"  # TERM sent (KILL at the deadline); waiting for it and its leftovers to go
    EXITED = "exited"      # gone on its own (or killed as hung): about to be restarted or marked FATAL
    FATAL = "FATAL"        # MAX_FAILS failed starts in a row (retried on a slow schedule), or exit 2 (until `up`)
    DOWN = "down"          # held down by a down file

    def __str__(self) -> str:
        return self.value


S = ChildState
TRANSITIONS: dict[ChildState, frozenset[ChildState]] = {
    S.STOPPED: frozenset({S.STARTING}),
    S.STARTING: frozenset({S.RUNNING, S.EXITED, S.DOWN, S.STOPPED}),
    S.RUNNING: frozenset({S.STOPPING}),
    S.STOPPING: frozenset({S.EXITED, S.DOWN, S.STOPPED}),
    S.EXITED: frozenset({S.BACKOFF, S.FATAL}),
    S.BACKOFF: frozenset({S.RUNNING, S.EXITED, S.DOWN, S.STOPPED}),
    S.FATAL: frozenset({S.STARTING, S.STOPPED}),
    S.DOWN: frozenset({S.STARTING}),
}
# States in which the child's process (may) exist: what a stop or a shutdown has to signal.
ACTIVE = frozenset({S.RUNNING, S.STOPPING})


class IllegalTransition(RuntimeError):
    """A state change the table does not allow: a bug in the monitor, never silently accepted."""


def check_transition(name: str, old: ChildState, new: ChildState) -> ChildState:
    """`new` if the table allows old -> new; otherwise log it and raise IllegalTransition."""
    if new not in TRANSITIONS[old]:
        msg = f"{name}: illegal state transition {old.name} -> {new.name}"
        log.error("%s", msg)
        raise IllegalTransition(msg)
    return new


__all__ = ["ACTIVE", "TRANSITIONS", "ChildState", "IllegalTransition", "check_transition"]
