"""The engine's publishing schedule: on the wall-clock grid, just after every window start, and on a
stream's message (coalesced per asset)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest

from signal_engine.schedule import ALIGN_S, Coalescer, LoopWakeup, Wakeup, next_tick_at, run_schedule
from signal_engine.shutdown import ShutdownRequested, Stopper


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

    skipped = run_schedule(tick, 1.0, 900, clock=clock, sleep=clock.sleep, stop=lambda: len(ticks) >= 8, mono=clock)
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

    run_schedule(tick, 1.0, 900, clock=clock, sleep=clock.sleep, stop=lambda: len(ticks) >= 4, mono=clock)
    assert ticks[2] == pytest.approx(1402.005) and ticks[3] == pytest.approx(1403.005)
    assert max(clock.sleeps) <= 1.0


class FakeWake:
    """A Wakeup whose wait() advances the fake clock: `events` maps a time to the assets named then."""

    def __init__(self, clock: FakeClock, events: dict[float, set[str]]):
        self.clock, self.events = clock, dict(events)

    def wait(self, timeout: float) -> set[str]:
        nxt = min((t for t in self.events if t > self.clock.t - 1e-9), default=None)
        if nxt is not None and nxt <= self.clock.t + timeout:
            self.clock.t = max(self.clock.t, nxt)
            return self.events.pop(nxt)
        self.clock.t += timeout
        return set()


def test_a_message_publishes_its_asset_at_once_and_a_burst_is_coalesced_never_dropped():
    clock = FakeClock(1000.3)
    ticks: list[float] = []
    pubs: list[tuple[float, set[str]]] = []
    events = {1000.40: {"BTC"}, 1000.41: {"BTC"}, 1000.42: {"BTC", "ETH"}, 1000.60: {"ETH"}, 1000.99: {"BTC"},
              1001.02: {"BTC"}}
    wake = FakeWake(clock, events)

    def tick():
        ticks.append(clock.t)
        return {"BTC": {}, "ETH": {}}

    def publish(assets):
        pubs.append((round(clock.t, 3), set(assets)))
        return assets

    run_schedule(tick, 1.0, 900, clock=clock, stop=lambda: len(ticks) >= 3, wake=wake,  # type: ignore[arg-type]
                 publish=publish, min_gap=0.05, mono=clock)
    assert ticks == pytest.approx([1000.3, 1001.005, 1002.005])      # the schedule is unchanged
    assert [t for t, _ in pubs] == pytest.approx([1000.40, 1000.41, 1000.42, 1000.45, 1000.60, 1000.99, 1001.04])
    assert [a for _, a in pubs] == [{"BTC"}, {"BTC"},   # at once: the bucket holds 2 writes
                                    {"ETH"},            # ETH has its own bucket
                                    {"BTC"},            # 1000.42's BTC waits for the next token, 50 ms after .40
                                    {"ETH"}, {"BTC"},
                                    {"BTC"}]            # the full tick at 1001.005 took a token too


def test_the_coalescer_bounds_a_burst_to_one_write_per_gap_and_keeps_the_last_message():
    t = [10.0]
    gate = Coalescer(0.05, lambda: t[0])
    gate.published({"BTC", "ETH"})            # a full tick at 10.0: one token of two left
    gate.add({"BTC"})
    assert gate.take_ready() == {"BTC"}       # at once
    gate.published({"BTC"})
    t[0] = 10.01
    gate.add({"BTC"})
    assert gate.take_ready() == set() and gate.next_in() == pytest.approx(0.04)
    t[0] = 10.05
    assert gate.take_ready() == {"BTC"} and gate.next_in() == float("inf")
    gate.published({"BTC"})
    writes, last_event, last_write = 0, 0.0, 0.0
    for k in range(1000):                       # a 1 kHz burst for one second
        t[0] = 11.0 + k / 1000
        gate.add({"ETH"})
        last_event = t[0]
        if gate.take_ready():
            gate.published({"ETH"})
            writes, last_write = writes + 1, t[0]
    assert 19 <= writes <= 2 + 1.0 / 0.05       # PUBLISH_BURST + T / gap
    t[0] += gate.next_in()                      # the last message is not dropped: it goes at the next token
    assert gate.take_ready() == {"ETH"} and t[0] - last_event <= 0.05 and t[0] > last_write


def test_a_wakeup_from_another_thread_ends_the_wait_and_names_the_assets():
    wake = Wakeup()
    threading.Timer(0.05, wake.notify, args=(["ETH"],)).start()
    t0 = time.monotonic()
    assert wake.wait(5.0) == {"ETH"}
    assert time.monotonic() - t0 < 2.0
    assert wake.wait(0) == set()


def test_sigterm_interrupts_the_wait_for_a_wakeup():
    """The engine's main thread waits on the Wakeup between ticks: SIGTERM must still end it at once."""
    stopper = Stopper()
    old = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    stopper.install()
    try:
        import os
        threading.Timer(0.1, os.kill, args=(os.getpid(), signal.SIGTERM)).start()
        t0 = time.monotonic()
        with pytest.raises(ShutdownRequested):
            run_schedule(lambda: None, 30.0, 900, wake=Wakeup(), publish=lambda a: a)
        assert time.monotonic() - t0 < 2.0
    finally:
        signal.signal(signal.SIGTERM, old[0])
        signal.signal(signal.SIGINT, old[1])


def test_a_loop_wakeup_runs_the_loop_until_a_message_names_its_asset():
    """The engine's wait: the streams' loop runs on the waiting thread until a message (its notify) or the
    timeout; what arrived while the thread was busy is taken at the next wait, even a wait of 0."""
    loop = asyncio.new_event_loop()
    try:
        wake = LoopWakeup(loop)
        loop.call_later(0.05, wake.notify, ["ETH"])
        t0 = time.monotonic()
        assert wake.wait(5.0) == {"ETH"}
        assert time.monotonic() - t0 < 2.0
        t0 = time.monotonic()
        assert wake.wait(0.1) == set() and time.monotonic() - t0 >= 0.09     # nothing: the whole timeout
        loop.call_soon(wake.notify, ["BTC"])                                  # pending when the wait begins
        assert wake.wait(0) == {"BTC"}
    finally:
        loop.close()


def _with_stopper(fn):
    stopper = Stopper()
    old = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    stopper.install()
    try:
        return fn()
    finally:
        signal.signal(signal.SIGTERM, old[0])
        signal.signal(signal.SIGINT, old[1])


def test_sigterm_interrupts_the_loop_wait():
    loop = asyncio.new_event_loop()

    def run():
        threading.Timer(0.1, os.kill, args=(os.getpid(), signal.SIGTERM)).start()
        t0 = time.monotonic()
        with pytest.raises(ShutdownRequested):
            run_schedule(lambda: None, 30.0, 900, wake=LoopWakeup(loop), publish=lambda a: a)
        assert time.monotonic() - t0 < 2.0

    try:
        _with_stopper(run)
    finally:
        loop.close()


def test_sigterm_that_lands_inside_a_stream_task_still_ends_the_engine():
    """The handler runs wherever the main thread is: inside a task (a message being parsed) asyncio would
    keep an ordinary exception in the task and go on; the stop request is a SystemExit, which it passes on."""
    loop = asyncio.new_event_loop()

    async def busy_task():
        os.kill(os.getpid(), signal.SIGTERM)     # delivered to this thread: the handler runs in this task
        for _ in range(1000):
            await asyncio.sleep(0)

    def run():
        task = loop.create_task(busy_task())
        t0 = time.monotonic()
        with pytest.raises(ShutdownRequested):
            run_schedule(lambda: None, 30.0, 900, wake=LoopWakeup(loop), publish=lambda a: a)
        assert time.monotonic() - t0 < 2.0
        assert task.done() and isinstance(task.exception(), ShutdownRequested)   # (retrieved: no warning)

    try:
        _with_stopper(run)
    finally:
        loop.close()
