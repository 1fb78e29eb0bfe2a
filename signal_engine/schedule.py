"""When the engine publishes: on a wall-clock grid, and always just after a window starts.

The executor acts on a new window only once signal.json names that window; an engine ticking on a
grid of its own phase would leave it waiting up to SIGNAL_INTERVAL (on average half of it) at every
window start. So ticks fall on wall-clock multiples of the interval plus ALIGN_S, and on every
window boundary plus ALIGN_S even when the interval does not divide the window. A late tick skips
the slots it missed (never a burst); a wall clock that jumps (NTP, suspend) only moves the next
tick, which is never more than one interval away.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

ALIGN_S = 0.005   # after the boundary: the new window has started on every clock that agrees within 5 ms


def next_tick_at(now: float, interval: float, window_seconds: float, align: float = ALIGN_S) -> float:
    """The first tick strictly after `now` (epoch seconds): the interval grid or a window boundary."""
    grid = (math.floor((now - align) / interval) + 1) * interval + align
    boundary = (math.floor((now - align) / window_seconds) + 1) * window_seconds + align
    return min(grid, boundary)


def run_schedule(tick: Callable[[], object], interval: float, window_seconds: float,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 stop: Callable[[], bool] = lambda: False) -> int:
    """Call `tick` at every next_tick_at until `stop()`; returns how many interval slots were skipped
    because a tick ran late (a measure of an overloaded machine)."""
    skipped = 0
    planned = clock()
    while not stop():
        tick()
        now = clock()
        if now - planned > interval:      # the tick (or the wake-up) overran whole slots
            skipped += int((now - planned) // interval)
        planned = next_tick_at(now, interval, window_seconds)
        sleep(max(0.0, planned - now))
    return skipped
