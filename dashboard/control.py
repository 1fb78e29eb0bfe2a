"""The three actions the dashboard's buttons and the Telegram bot share: pause, unpause, resume.

Each returns one line for the user and raises ControlError (a line too) when it could not be done.
`pause` stops new trades only (core.pause; the executor checks it before every new intent);
`resume` clears a risk halt exactly like `./supervisor.sh resume` (risk.guards.RiskBook.resume,
journaled in logs/risk.jsonl with who asked).
"""

from __future__ import annotations

import time

from filelock import Timeout

from core.config import Config
from core.pause import read_pause, set_pause


class ControlError(Exception):
    """An action that could not be done; the message says what and what next (no secrets)."""


def pause(cfg: Config, by: str) -> str:
    before = read_pause(cfg.state_dir)
    try:
        set_pause(cfg.state_dir, True, by)
    except OSError as exc:
        raise ControlError(f"could not write the pause flag ({exc.strerror or exc}); trading is NOT paused") from None
    if before.paused and not before.problem:
        return f"already paused (by {before.by}); no new trades"
    return "paused: no new trades; running processes and settlement carry on (unpause to trade again)"


def unpause(cfg: Config, by: str) -> str:
    before = read_pause(cfg.state_dir)
    try:
        set_pause(cfg.state_dir, False, by)
    except OSError as exc:
        raise ControlError(f"could not write the pause flag ({exc.strerror or exc}); still paused") from None
    if not before.paused:
        return "was not paused; nothing changed"
    return "unpaused: new trades allowed again (the risk guards still apply)"


def resume(cfg: Config, by: str) -> str:
    from risk.guards import RiskBook
    from risk.texts import cleared_text

    try:
        cleared = RiskBook(cfg).resume(time.time(), by=by)
    except Timeout:
        raise ControlError("the risk state is locked by another process; nothing changed, try again") from None
    except OSError as exc:
        raise ControlError(f"the risk state could not be read or written ({exc.strerror or exc});"
                           " nothing changed") from None
    if cleared is None:
        return "not halted; nothing to clear"
    return cleared_text(cleared, lead="cleared the halt")


__all__ = ["ControlError", "pause", "resume", "unpause"]
