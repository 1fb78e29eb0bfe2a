"""The pause flag: no new trades while set; every process keeps running and settlement goes on.

    read_pause(state_dir) -> PauseState       # what the executor checks before every new intent
    set_pause(state_dir, paused, by, now)      # `/pause`, `/unpause`, the dashboard, `./supervisor.sh pause`

`STATE_DIR/pause.json` (atomic replace, mode 0600) holds `{"paused": true|false, "by": "...",
"at": "2026-...Z", "at_epoch": 1777...}`; it survives restarts of every process. Missing means
not paused. **Fails closed**: a file that exists but cannot be read or parsed counts as paused
(with the problem as the reason), so a damaged flag never lets trades through; writing it again
(pause or unpause) repairs it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from core.durable_files import atomic_write_json, read_json
from core.window_grid import iso_utc

PAUSE_NAME = "pause.json"
PRIVATE = 0o600
MAX_BY = 120  # characters of `by` kept (a chat name, "dashboard", "./supervisor.sh pause")


def pause_path(state_dir: Path | str) -> Path:
    return Path(state_dir) / PAUSE_NAME


@dataclass(frozen=True)
class PauseState:
    paused: bool
    by: str | None = None
    at: float | None = None
    problem: str | None = None  # set when the file is unreadable (and so counts as paused)

    def reason(self) -> str | None:
        """Why no new trades (for decisions.jsonl and `status`), or None when not paused."""
        if not self.paused:
            return None
        if self.problem:
            return (f"paused: the pause flag cannot be read ({self.problem}); counted as paused until"
                    " ./supervisor.sh unpause rewrites it")
        since = f" since {iso_utc(self.at)}" if self.at else ""
        return f"paused by {self.by or 'someone'}{since}: no new trades (./supervisor.sh unpause)"

    def as_dict(self) -> dict:
        return {"paused": self.paused, "by": self.by, "at": self.at, "problem": self.problem,
                "reason": self.reason()}


def read_pause(state_dir: Path | str) -> PauseState:
    """The flag as the executor sees it: never raises; unreadable counts as paused (fail closed)."""
    res = read_json(pause_path(state_dir))
    if res.problem == "missing":
        return PauseState(False)
    if not res.ok or res.data is None:
        return PauseState(True, problem=res.problem)
    doc = res.data
    flag = doc.get("paused")
    if not isinstance(flag, bool):
        return PauseState(True, problem="'paused' is not true or false")
    at = doc.get("at_epoch")
    return PauseState(flag, by=str(doc.get("by") or "")[:MAX_BY] or None,
                      at=float(at) if isinstance(at, (int, float)) and not isinstance(at, bool) else None)


def set_pause(state_dir: Path | str, paused: bool, by: str, now: float | None = None) -> PauseState:
    """Write the flag atomically (0600). Raises OSError when it cannot be written (the caller says so).
    Pausing what is paused already keeps when and by whom it was paused ("paused since" stays true)."""
    now = time.time() if now is None else now
    by = " ".join(str(by).split())[:MAX_BY] or "unknown"
    before = read_pause(state_dir)
    if paused and before.paused and before.problem is None and before.at is not None:
        return before
    path = pause_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"paused": bool(paused), "by": by, "at": iso_utc(now), "at_epoch": round(now, 3)},
                      mode=PRIVATE)
    return PauseState(bool(paused), by=by, at=round(now, 3))


__all__ = ["PAUSE_NAME", "PauseState", "pause_path", "read_pause", "set_pause"]
