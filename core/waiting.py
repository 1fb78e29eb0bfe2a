"""One bounded polling loop: wait until a condition holds, or say what did not happen in time.

    poll_until(predicate, timeout, what, interval=0.02) -> the predicate's first truthy value

Raises `TimeoutError` naming `what`, the timeout and the last value seen. For conditions
nothing can be hooked on (another process's files, an HTTP server coming up); tests use it
through `tests/waiting.py`'s `wait_for`, which fails the test instead (AssertionError).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
DEFAULT_INTERVAL = 0.02


def poll_until(predicate: Callable[[], T], timeout: float, what: str, interval: float = DEFAULT_INTERVAL) -> T:
    """Call `predicate` every `interval` s until it returns something truthy, and return that;
    TimeoutError after `timeout` s (the predicate is always called at least once)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what} (last value: {value!r})")
        time.sleep(interval)  # the polling interval of a deadline-bounded wait, not a synchronisation sleep
