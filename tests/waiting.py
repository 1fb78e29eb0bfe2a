"""The tests' one waiting helper (no sleeps for synchronisation: wait for the condition itself).

    wait_for(predicate, timeout, what, interval=0.02) -> the predicate's first truthy value

Polls `predicate` every `interval` s; after `timeout` s fails the test with an AssertionError
naming `what`, the timeout and the last value seen. The loop is core/waiting.py's `poll_until`
(also used by non-test harnesses such as replica/process.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from core.waiting import DEFAULT_INTERVAL, poll_until

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = DEFAULT_INTERVAL) -> T:
    try:
        return poll_until(predicate, timeout, what, interval)
    except TimeoutError as exc:
        raise AssertionError(str(exc)) from None
