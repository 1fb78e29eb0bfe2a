"""state/executor.json: the executor's durable status, replaced atomically.

Holds: status (an `ExecutorStatus`), the reason,
windows handled, the last window and trade, counters, the last signal seen (seq and when), so
`./supervisor.sh status` can show what the executor is doing.
"""

from __future__ import annotations

import threading
import time
from enum import Enum
from pathlib import Path

from core.durable_files import atomic_write_json, read_json
from core.window_grid import iso_utc


class ExecutorStatus(str, Enum):
    """`status` in state/executor.json (shown by ./supervisor.sh status)."""

    STARTING = "starting"
    WATCHING = "watching"
    TRADING = "trading"
    SELECTOR_ERROR = "selector_error"
    BROWSER_DOWN = "browser_down"
    RISK_ERROR = "risk_error"       # the risk book failed: no new orders until it works again
    WRITE_ERROR = "write_error"     # a journal write failed: no new orders until writes succeed
    REFUSED = "refused"
    STOPPED = "stopped"

    def __str__(self) -> str:
        return self.value


COUNTERS = ("windows", "traded", "skipped", "filled", "failed", "unknown", "wallet_rejected", "reconciled",
            "settled", "browser_relaunches", "browser_recycles", "selector_errors", "risk_errors")


class ExecutorState:
    def __init__(self, path: Path, mode: str, clock=time.time):
        self.path = Path(path)
        self.clock = clock
        self._lock = threading.Lock()
        old = read_json(self.path)
        prev = old.data if old.ok and old.data else {}
        counters = {k: int(prev.get("counters", {}).get(k, 0)) for k in COUNTERS}
        self.data: dict = {
            "mode": mode, "status": ExecutorStatus.STARTING, "reason": None, "pid": None,
            "windows_handled": list(prev.get("windows_handled", []))[-200:],
            "last_window": prev.get("last_window"), "last_trade": prev.get("last_trade"),
            "counters": counters, "selector_error": None, "signal": prev.get("signal"),
            "updated": None,
        }

    def set(self, **fields) -> None:
        with self._lock:
            self.data.update(fields)

    def bump(self, counter: str, n: int = 1) -> None:
        with self._lock:
            self.data["counters"][counter] = self.data["counters"].get(counter, 0) + n

    def window_handled(self, asset: str, window_start: int, slug: str, action: str, outcome: str | None = None) -> None:
        """`outcome`: what came of a traded window's order (filled, failed, unknown, wallet_rejected)."""
        with self._lock:
            entry = {"asset": asset, "window_start": int(window_start), "slug": slug, "action": action}
            if outcome is not None:
                entry["outcome"] = outcome
            self.data["windows_handled"] = (self.data["windows_handled"] + [entry])[-200:]
            self.data["last_window"] = entry

    def save(self) -> None:
        with self._lock:
            self.data["updated"] = iso_utc(self.clock())
            snapshot = dict(self.data)
        atomic_write_json(self.path, snapshot)
