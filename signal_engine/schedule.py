"""When the engine publishes: on a wall-clock grid, just after a window starts, and at once when a
stream brings a new price.

The executor acts on a new window only once signal.json names that window; an engine ticking on a
grid of its own phase would leave it waiting up to SIGNAL_INTERVAL (on average half of it) at every
window start. So ticks fall on wall-clock multiples of the interval plus ALIGN_S, and on every
window boundary plus ALIGN_S even when the interval does not divide the window. A late tick skips
the slots it missed (never a burst); a wall clock that jumps (NTP, suspend) only moves the next
tick, which is never more than one interval away.

Between ticks the main thread waits on a `LoopWakeup` instead of sleeping: it runs the streams' asyncio
loop until a stream accepts a message (which names its asset there) or the wait is over, and the
schedule publishes that asset at once (`publish`, a partial tick), on the same thread: a message costs
one wake-up, not one on a stream thread plus a hand-over to the main thread (`Wakeup` is the
thread-safe variant, for streams on threads of their own). Publishes are coalesced by a token bucket
per asset (`Coalescer`): PUBLISH_BURST writes back to back, then at most one per
PUBLISH_MIN_GAP_S; a message that finds the bucket empty is published when the next token comes
(within PUBLISH_MIN_GAP_S, with the latest price then), never dropped. A full tick takes a token of
every asset it wrote. So an asset's file is written at most PUBLISH_BURST + T / PUBLISH_MIN_GAP_S
times in any T seconds by events, plus the schedule's ticks.
A signal handler's exception ends the wait at once (the loop's select, or Wakeup's lock wait, is
interrupted as a sleep is: tests/test_signal_schedule.py), so SIGTERM still exits at once.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable, Iterable

ALIGN_S = 0.005   # after the boundary: the new window has started on every clock that agrees within 5 ms
PUBLISH_MIN_GAP_S = 0.05   # event publishing: 20 writes a second per asset at most, sustained ...
PUBLISH_BURST = 2          # ... after up to 2 back to back; a held-back message waits <= 50 ms


def next_tick_at(now: float, interval: float, window_seconds: float, align: float = ALIGN_S) -> float:
    """The first tick strictly after `now` (epoch seconds): the interval grid or a window boundary."""
    grid = (math.floor((now - align) / interval) + 1) * interval + align
    boundary = (math.floor((now - align) / window_seconds) + 1) * window_seconds + align
    return min(grid, boundary)


class Wakeup:
    """Asset names stream threads ask to have published; the main thread waits on it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._assets: set[str] = set()
        self._event = threading.Event()

    def notify(self, assets: Iterable[str]) -> None:
        """From any thread: these assets have news."""
        with self._lock:
            self._assets.update(assets)
            self._event.set()

    def wait(self, timeout: float) -> set[str]:
        """The assets named since the last call, waiting up to `timeout` s for one (0: do not wait)."""
        if timeout > 0:
            self._event.wait(timeout)
        with self._lock:
            self._event.clear()
            out, self._assets = self._assets, set()
        return out


class LoopWakeup:
    """Wakeup's interface over an asyncio loop run by the waiting thread itself: `wait` runs the loop (the
    streams' tasks) until a message's `notify` (called on that loop, i.e. this thread) or the timeout;
    between waits the loop does not run (the streams' data waits in the sockets). A signal handler's
    exception leaves the wait as it left the lock wait (shutdown.ShutdownRequested is a SystemExit,
    which asyncio passes on from tasks and callbacks)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._assets: set[str] = set()

    def notify(self, assets: Iterable[str]) -> None:
        """On the loop: these assets have news; the wait ends after this turn of the loop."""
        self._assets.update(assets)
        self.loop.stop()

    def wait(self, timeout: float) -> set[str]:
        """The assets named since the last call, running the loop up to `timeout` s for one (0: one turn
        of the loop, for what is already in the sockets)."""
        if not self._assets:
            timer = self.loop.call_later(timeout, self.loop.stop) if timeout > 0 else None
            if timer is None:
                self.loop.call_soon(self.loop.stop)
            try:
                self.loop.run_forever()
            finally:
                if timer is not None:
                    timer.cancel()
        out, self._assets = self._assets, set()
        return out


class Coalescer:
    """A token bucket per asset: PUBLISH_BURST writes back to back, then one per `min_gap` (monotonic
    seconds). A write that finds no token waits for the next one (`due`), and then carries the latest
    price: a burst of messages becomes one write per gap, none is lost. Every write takes a token,
    the schedule's too (it cannot wait: it leaves the bucket empty, never in debt), so a scheduled
    tick or a Chainlink update just before a trade does not hold the trade back."""

    def __init__(self, min_gap: float, mono: Callable[[], float], burst: int = PUBLISH_BURST):
        self.min_gap, self.mono, self.burst = min_gap, mono, float(burst)
        self._tokens: dict[str, tuple[float, float]] = {}    # asset -> (tokens, at)
        self.due: dict[str, float] = {}

    def tokens(self, asset: str, now: float) -> float:
        have, at = self._tokens.get(asset, (self.burst, now))
        return have if self.min_gap <= 0 else min(self.burst, have + (now - at) / self.min_gap)

    def add(self, assets: Iterable[str]) -> None:
        now = self.mono()
        for a in assets:
            if a not in self.due:
                self.due[a] = now + max(0.0, 1.0 - self.tokens(a, now)) * self.min_gap

    def next_in(self) -> float:
        """Seconds until the earliest pending publish may go (inf: none pending)."""
        return max(0.0, min(self.due.values()) - self.mono()) if self.due else math.inf

    def take_ready(self) -> set[str]:
        now = self.mono()
        ready = {a for a, t in self.due.items() if t <= now}
        for a in ready:
            del self.due[a]
        return ready

    def published(self, assets: Iterable[str]) -> None:
        now = self.mono()
        for a in assets:
            self._tokens[a] = (max(0.0, self.tokens(a, now) - 1.0), now)
            self.due.pop(a, None)     # that write carried the latest price: nothing left pending


def run_schedule(tick: Callable[[], Iterable[str] | None], interval: float, window_seconds: float,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 stop: Callable[[], bool] = lambda: False, wake: Wakeup | None = None,
                 publish: Callable[[set[str]], Iterable[str] | None] | None = None,
                 min_gap: float = PUBLISH_MIN_GAP_S, mono: Callable[[], float] = time.monotonic) -> int:
    """Call `tick` (all assets; returns the assets it published) at every next_tick_at until `stop()`,
    and between ticks `publish(assets)` (returns those it published) for the assets `wake` names,
    coalesced per asset by `min_gap`. Without `wake`, `sleep` waits. Returns how many interval
    slots were skipped because a tick ran late (a measure of an overloaded machine)."""
    skipped = 0
    planned = clock()
    gate = Coalescer(min_gap, mono)
    while not stop():
        gate.published(tick() or ())
        now = clock()
        if now - planned > interval:      # the tick (or the wake-up) overran whole slots
            skipped += int((now - planned) // interval)
        planned = next_tick_at(now, interval, window_seconds)
        deadline = mono() + max(0.0, planned - now)     # measured once: a wall-clock jump moves no wait
        while not stop():
            left = deadline - mono()
            if left <= 0:
                break
            wait = min(left, gate.next_in())
            if wake is None:
                sleep(wait)
                continue
            gate.add(wake.wait(wait))
            ready = gate.take_ready()
            if ready and publish is not None:
                gate.published(publish(ready) or ())
    return skipped
