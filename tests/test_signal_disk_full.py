"""A full disk is a state for the signal engine (stop publishing, keep the heartbeat, resume by itself),
and the executor says so when an asset has had no usable signal for a while. Real tmpfs, real files."""

from __future__ import annotations

import logging
import os
import time

from core.config import load_config
from core.durable_files import atomic_write_json, read_json
from executor.signals import SignalAlarm, SignalWatcher
from signal_engine.feeds import FallbackChain, SimFeed
from signal_engine.publisher import SignalEngine
from tests.fs_support import fill_up, tiny_fs  # noqa: F401 - the fixture


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_engine_pauses_publishing_on_a_full_disk_and_resumes_by_itself(tmp_path, tiny_fs, caplog):  # noqa: F811
    cfg = load_config({"STATE_DIR": str(tiny_fs), "LOG_DIR": str(tmp_path / "logs"),
                       "PROFILE_DIR": str(tmp_path / "profiles"), "FEEDS": "sim"}, dotenv_path=tmp_path / "no.env")
    clock = Clock(time.time())
    engine = SignalEngine(cfg, FallbackChain([SimFeed(7, clock=clock)]), mono=clock)
    engine.prepare()
    first = engine.tick()["BTC"]
    assert read_json(cfg.signal_path).data["seq"] == first["seq"]
    beat = cfg.heartbeat_path("signal_engine")
    filler = tiny_fs / "filler"
    fill_up(filler)
    caplog.set_level(logging.INFO, logger="signal_engine")

    os.utime(beat, (0, 0))
    for _ in range(3):
        clock.t += 1
        engine.tick()                                   # no exception: a state, not a crash
    assert engine.write_error is not None and "No space left" in engine.write_error
    assert read_json(cfg.signal_path).data["seq"] == first["seq"]          # the last good document stays
    assert beat.stat().st_mtime > 1                                        # the heartbeat goes on
    assert sum("write_error: publishing paused" in r.message for r in caplog.records) == 1   # said once
    assert not list(tiny_fs.glob(".signal*.tmp"))                        # no temp file left behind

    filler.unlink()
    clock.t += 1
    doc = engine.tick()["BTC"]
    assert engine.write_error is None
    assert read_json(cfg.signal_path).data["seq"] == doc["seq"] > first["seq"]
    assert any("write_error cleared" in r.message for r in caplog.records)


def test_executor_alarm_says_once_when_a_signal_goes_silent_and_when_it_is_back(tmp_path):
    path = tmp_path / "signal.json"
    doc = {"timestamp": "2027-01-15T08:00:00Z", "asset": "BTC", "direction": "UP", "confidence": 60,
           "prob_up": 0.6, "price": 1.0, "window": None, "stale": False, "seq": 1}
    atomic_write_json(path, doc)
    watcher = SignalWatcher({"BTC": path})
    sent: list[tuple[str, str]] = []
    alarm = SignalAlarm(watcher, max_age=5.0, after_s=30.0, notify=lambda e, t: sent.append((e, t)))
    ts = 1_800_000_000.0   # 2027-01-15T08:00:00Z
    alarm.check(ts + 1)
    assert sent == []
    for dt in (10, 20, 35, 40, 60):        # not updated: bad from +10 s, told once at +40 s
        alarm.check(ts + dt)
    assert len(sent) == 1 and sent[0][0] == "signal" and "no usable signal for 30 s" in sent[0][1], sent
    atomic_write_json(path, {**doc, "timestamp": "2027-01-15T08:01:01Z", "seq": 2})
    watcher.read_fresh("BTC")
    alarm.check(ts + 62)
    assert sent[-1] == ("signal", "BTC: the signal is usable again") and len(sent) == 2
