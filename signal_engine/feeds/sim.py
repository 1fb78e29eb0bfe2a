"""A simulated feed for demo: a seeded random walk with realistic volatility, offline.

Per asset, log-price moves by sigma * sqrt(dt) * N(0, 1) for the wall-clock time dt since the
previous draw, with sigma around 0.08% per minute (BTC's typical 1-minute volatility) and a
slowly wandering volatility regime (x0.6 .. x1.7) so the `volatility_state` of the signal moves
too. Starting levels are realistic (BTC ~90,000, ETH ~3,000). `history()` returns the hour
that led to the first price (1 s samples over the last hour, 1 minute samples before), so features
work from the first tick.
The walk is deterministic for a seed and the same sequence of clock readings.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Callable

import numpy as np

from .base import FeedUnavailable, Tick, WallClockMixin

SIGMA_PER_MIN = 0.0008
SIGMA_PER_SQRT_S = SIGMA_PER_MIN / math.sqrt(60.0)
START_LEVELS = {"BTC": 90_000.0, "ETH": 3_000.0, "SOL": 200.0, "XRP": 2.5, "DOGE": 0.35}
REGIME_TAU_S = 600.0      # the volatility regime's memory (Ornstein-Uhlenbeck on log sigma)
REGIME_SD = 0.3           # stationary sd of log(sigma multiplier)
BACKFILL_STEP_S = 1.0
FINE_BACKFILL_S = 3600.0
COARSE_STEP_S = 60.0


class _Walk:
    def __init__(self, rng: np.random.Generator, price: float):
        self.rng = rng
        self.price = price
        self.log_mult = 0.0
        self.t: float | None = None

    def step(self, dt: float) -> float:
        if dt > 0:
            a = math.exp(-dt / REGIME_TAU_S)
            z_regime, z_price = self.rng.standard_normal(2)
            self.log_mult = a * self.log_mult + REGIME_SD * math.sqrt(1 - a * a) * z_regime
            sigma = SIGMA_PER_SQRT_S * math.exp(self.log_mult)
            self.price *= math.exp(sigma * math.sqrt(dt) * z_price - 0.5 * sigma * sigma * dt)
        return self.price


class SimFeed(WallClockMixin):
    name = "sim"
    supports_history = True

    def __init__(self, seed: int, clock: Callable[[], float] = time.time):
        self.seed = seed
        self._clock = clock
        self._walks: dict[str, _Walk] = {}

    def _walk(self, asset: str) -> _Walk:
        asset = asset.upper()
        walk = self._walks.get(asset)
        if walk is None:
            rng = np.random.default_rng([self.seed, zlib.crc32(asset.encode())])
            base = START_LEVELS.get(asset, 100.0) * math.exp(0.02 * rng.standard_normal())
            walk = self._walks[asset] = _Walk(rng, base)
        return walk

    def history(self, asset: str, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        """The walk's past `seconds` up to now, 1 s apart; only before the first `latest`."""
        walk = self._walk(asset)
        if walk.t is not None:
            raise FeedUnavailable(self.name, asset, "history is only available before the first price")
        now = self.clock()
        # 1 s samples over the last hour (the features' lookbacks), 1 minute samples before it (all the
        # slow volatility component of prob_up v2 looks at): a long backfill stays quick.
        fine = min(seconds, FINE_BACKFILL_S)
        coarse = max(0.0, seconds - fine)
        t_coarse = now - fine - COARSE_STEP_S * np.arange(int(coarse / COARSE_STEP_S), 0, -1, dtype=float)
        t_fine = now - BACKFILL_STEP_S * np.arange(max(1, int(fine / BACKFILL_STEP_S)), -1, -1, dtype=float)
        times = np.concatenate((t_coarse, t_fine))
        prices = np.empty(times.size)
        prices[0] = walk.price
        for i in range(1, times.size):
            prices[i] = walk.step(times[i] - times[i - 1])
        walk.t = now
        return times, prices

    def latest(self, asset: str) -> Tick:
        walk = self._walk(asset)
        now = self.clock()
        price = walk.step(0.0 if walk.t is None else now - walk.t)
        walk.t = now if walk.t is None else max(walk.t, now)
        return Tick(asset.upper(), price, now, self.name)
