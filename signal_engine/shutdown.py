"""SIGTERM/SIGINT handling that never interrupts a write.

Outside a critical section the signal handler raises `ShutdownRequested` at once, which
also breaks out of a blocking sleep or HTTP read (PEP 475: a handler's exception propagates),
so the process exits well within 2 s whatever it was waiting for. Inside a critical section
(an atomic replace, a journal append) the handler only records the request; the section
finishes and raises on exit. `ShutdownRequested` is a SystemExit so no `except Exception` on the
way swallows it.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


class ShutdownRequested(SystemExit):
    """A SystemExit (so a BaseException no `except Exception` swallows, and one asyncio passes on from a
    task or callback the handler happened to interrupt: the engine's loop runs on the main thread)."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"stop requested by {signal.Signals(signum).name}")


class Stopper:
    def __init__(self) -> None:
        self.signum: int | None = None
        self._depth = 0

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame) -> None:
        if self.signum is None:
            self.signum = signum
        if self._depth == 0:
            raise ShutdownRequested(signum)

    @contextmanager
    def critical(self) -> Iterator[None]:
        """A section the signal handler must not interrupt (it runs to its end first)."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if self._depth == 0 and self.signum is not None:
            raise ShutdownRequested(self.signum)
