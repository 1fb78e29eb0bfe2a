"""The steps' shared parts: the Waiter (polls with a deadline, heartbeat and SIGTERM live), the step
errors, and small Playwright helpers. Used by the page objects (executor/pages.py,
executor/wallet_page.py) and the click-through (executor/trade.py)."""

from __future__ import annotations

import time
from collections.abc import Callable

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page

from core.window_grid import parse_iso_utc

QUICK_MS = 1500  # timeout for one quick read (text, attribute) of an element already expected present
SLICE_MS = 500   # one attempt of an action; repeated until the step's timeout


class StepTimeout(Exception):
    """A step did not complete in time; `step` names it."""

    def __init__(self, step: str, message: str):
        super().__init__(message)
        self.step = step


class SelectorMissing(Exception):
    """A profile selector matched nothing; the message names the selector key and its value."""

    def __init__(self, key: str, selector: str, where: str = "the market page"):
        super().__init__(f"selector {key} ({selector}) matched nothing on {where}")
        self.key, self.selector = key, selector


class NotAnOrder(Exception):
    """The widget would not place the intended order (Deposit, Log in, Unavailable, Sell, another
    window...): a clear refusal before any order exists; `step` names where it was seen."""

    def __init__(self, step: str, message: str):
        super().__init__(message)
        self.step = step


class Interrupted(Exception):
    """The process was asked to stop (SIGTERM) while a step was waiting."""


class Waiter:
    """Polls a condition with a deadline; each poll gives Playwright a few ms to dispatch events,
    calls `tick` (heartbeat) and checks `should_stop`."""

    def __init__(self, page_for_wait: Callable[[], Page], tick: Callable[[], None] = lambda: None,
                 should_stop: Callable[[], bool] = lambda: False, interval_ms: int = 50):
        self._page = page_for_wait
        self.tick = tick
        self.should_stop = should_stop
        self.interval_ms = interval_ms

    def pause(self, ms: int | None = None) -> None:
        self._page().wait_for_timeout(ms if ms is not None else self.interval_ms)
        self.tick()

    def until(self, predicate: Callable[[], object], timeout: float, step: str, what: str,
              interruptible: bool = True):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if interruptible and self.should_stop():
                raise Interrupted(f"stopped while waiting for {what}")
            if time.monotonic() >= deadline:
                raise StepTimeout(step, f"{what} did not happen within {timeout:g}s")
            self.pause()


def _count(loc: Locator) -> int:
    try:
        return loc.count()
    except PlaywrightError:
        return 0


def _visible(loc: Locator) -> bool:
    try:
        return loc.first.is_visible()
    except PlaywrightError:
        return False


def parse_window_start(raw: str | None) -> int | None:
    if not raw:
        return None
    raw = raw.strip()
    try:
        return int(float(raw))
    except ValueError:
        pass
    try:
        return int(round(parse_iso_utc(raw)))
    except ValueError:
        return None


def first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]
