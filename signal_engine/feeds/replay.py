"""Replay of a 1-minute candle file at `speed` x real time (signal_engine.history.load_candles).

The replay has its own clock: data time = start + (wall - wall0) * speed, where `start` leaves
an hour of data behind it for the backfill. Each candle's close is a sample at its close time
(open + 1 min), as the backtest uses it. Gaps are respected, never bridged: inside a gap
(no candle closed within 1.5 steps before the data time) `latest` raises FeedUnavailable, so the
engine goes stale there, and the model computes no feature whose lookback spans the hole. At
the end of the file it raises FeedUnavailable too.

One file holds one market; it serves the asset it was made for (the first of ASSETS).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..history import load_candles
from .base import FeedUnavailable, Tick

GAP_FACTOR = 1.5


class ReplayFeed:
    name = "replay"
    supports_history = True

    def __init__(self, path: Path | str, asset: str, speed: float = 1.0, lead_s: float = 3660.0,
                 wall: Callable[[], float] = time.monotonic, start: float | None = None):
        candles = load_candles(path)
        self.path = Path(path)
        self.asset = asset.upper()
        self.times, self.prices = candles.price_series()
        self.step = candles.step_s
        self.speed = float(speed)
        self.wall = wall
        if start is None:
            start = min(self.times[0] + lead_s, float(self.times[-1]))
        self.start = float(start)
        self.wall0 = wall()

    def clock(self) -> float:
        return self.start + (self.wall() - self.wall0) * self.speed

    def _check_asset(self, asset: str) -> None:
        if asset.upper() != self.asset:
            raise FeedUnavailable(self.name, asset, f"replay file {self.path.name} is for {self.asset}")

    def latest(self, asset: str) -> Tick:
        self._check_asset(asset)
        now = self.clock()
        i = int(np.searchsorted(self.times, now, side="right")) - 1
        if i < 0:
            raise FeedUnavailable(self.name, asset, f"replay time {now:.0f} is before the file's first candle")
        age = now - self.times[i]
        if i == self.times.size - 1 and age > self.step * GAP_FACTOR:
            raise FeedUnavailable(self.name, asset, f"end of replay file {self.path.name}")
        if age > self.step * GAP_FACTOR:
            raise FeedUnavailable(self.name, asset, f"gap in replay data: no candle for {age:.0f} s"
                                                    f" (next at {self.times[i + 1]:.0f})")
        return Tick(self.asset, float(self.prices[i]), float(self.times[i]), self.name)

    def history(self, asset: str, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        self._check_asset(asset)
        now = self.clock()
        lo = int(np.searchsorted(self.times, now - seconds, side="left"))
        hi = int(np.searchsorted(self.times, now, side="right"))
        if hi <= lo:
            raise FeedUnavailable(self.name, asset, "no replay data in the backfill span")
        return self.times[lo:hi].copy(), self.prices[lo:hi].copy()
