"""The engine's publishing schedule: on the wall-clock grid, and just after every window start."""

from __future__ import annotations

import pytest

from signal_engine.schedule import ALIGN_S, next_tick_at, run_schedule


@pytest.mark.parametrize(("now", "interval", "window", "want"), [
    (1000.3, 1.0, 900, 1001.0 + ALIGN_S),            # the next whole second
    (1000.0 + ALIGN_S, 1.0, 900, 1001.0 + ALIGN_S),  # strictly after now
    (1799.9, 1.0, 900, 1800.0 + ALIGN_S),            # a window boundary is a whole second too
    (1799.2, 0.7, 900, 1799.7 + ALIGN_S),            # 0.7 s grid: 1799.7 = 2571 * 0.7
    (1799.8, 0.7, 900, 1800.0 + ALIGN_S),            # ... then 1800.4, but the window start comes first
    (1799.5, 5.0, 900, 1800.0 + ALIGN_S),
    (1000.3, 1.0, 20, 1001.0 + ALIGN_S),
])
def test_next_tick_is_the_grid_or_the_window_start_whichever_first(now, interval, window, want):
    assert next_tick_at(now, interval, window) == pytest.approx(want)


class FakeClock:
    """Wall time that moves only when the schedule sleeps, or when a tick takes time."""

    def __init__(self, t: float):
        self.t = t
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        assert s >= 0
        self.sleeps.append(s)
        self.t += s


def test_ticks_land_on_boundaries_and_a_late_tick_skips_slots_without_a_burst():
    clock = FakeClock(1795.37)
    ticks: list[float] = []
    cost = {3: 2.5}                       # the 4th tick takes 2.5 s

    def tick():
        ticks.append(clock.t)
        clock.t += cost.get(len(ticks) - 1, 0.01)

    skipped = run_schedule(tick, 1.0, 900, clock=clock, sleep=clock.sleep, stop=lambda: len(ticks) >= 8)
    assert ticks[0] == pytest.approx(1795.37)
    assert ticks[1:4] == pytest.approx([1796.005, 1797.005, 1798.005])
    # the slow tick ended at 1800.505: the slots at 1799 and 1800 are gone, the next is 1801
    assert ticks[4:] == pytest.approx([1801.005, 1802.005, 1803.005, 1804.005])
    assert skipped == 2
    assert 1800.005 not in [round(t, 3) for t in ticks]
    assert max(clock.sleeps) <= 1.0


def test_a_wall_clock_jumping_back_moves_only_the_next_tick():
    clock = FakeClock(5000.2)
    ticks: list[float] = []

    def tick():
        ticks.append(clock.t)
        if len(ticks) == 2:
            clock.t -= 3600.0             # NTP steps the clock back an hour

    run_schedule(tick, 1.0, 900, clock=clock, sleep=clock.sleep, stop=lambda: len(ticks) >= 4)
    assert ticks[2] == pytest.approx(1402.005) and ticks[3] == pytest.approx(1403.005)
    assert max(clock.sleeps) <= 1.0
