"""One writer per state: an exclusive, non-blocking lock held for a process's lifetime.

`hold(path, what)` takes an fcntl lock on `path` (created 0600), writes the holder's pid into it
and returns the open file; the lock goes with the process, however it ends (SIGKILL included),
and is never inherited by children (Python opens files close-on-exec). A second process gets
`AlreadyHeld` naming the holder's pid: it must refuse with that one line and exit 2.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO


class AlreadyHeld(Exception):
    """Another process holds the lock; the message names it and what to do."""


def hold(path: Path, what: str) -> IO[str]:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+", opener=lambda p, flags: os.open(p, flags, 0o600))  # noqa: SIM115 - held for life
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        holder = fh.read().strip() or "?"
        fh.close()
        raise AlreadyHeld(f"{what} is already in use by pid {holder} ({path} is locked); stop that process"
                          " first, or give this one its own directories") from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n")
    fh.flush()
    return fh


__all__ = ["AlreadyHeld", "hold"]
