"""The replica's market: a seeded price path per asset, the Up/Down quotes, titles.

The path is a pure function of (seed, asset, time): a sum of seeded sinusoids (periods of a
fraction of a window to several windows) plus a small interpolated per-second noise. A
restarted replica with the same seed sees the same path, so settlements do not change.

Up price = fair value of the path (P(close >= open) under a random-walk reading of the
remaining time) + half the spread + a small per-second noise, on the 0.01 tick within
0.01..0.99; Down = 1 - Up + spread, on the same tick and range.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import random
from dataclasses import dataclass

from core.window_grid import ASSET_NAMES, Window

BASE_PRICES = {"BTC": 90_000.0, "ETH": 3_000.0, "SOL": 140.0, "XRP": 2.2}
TICK = 0.01
MIN_PRICE = 0.01
MAX_PRICE = 0.99
MAX_KNOTS = 86_400

try:  # US Eastern time for titles, as the real site writes them.
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        _ET = ZoneInfo("America/New_York")
        _TZ_LABEL = "ET"
    except ZoneInfoNotFoundError:  # no tzdata on this machine: fall back to a UTC label.
        _ET = _dt.timezone.utc
        _TZ_LABEL = "UTC"
except ImportError:  # Python without zoneinfo (not expected on >= 3.9): UTC label.
    _ET = _dt.timezone.utc
    _TZ_LABEL = "UTC"


def _unit_hash(*parts: object) -> float:
    """A deterministic number in [-1, 1) from the parts."""
    digest = hashlib.blake2b(":".join(str(p) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**63 - 1.0


def tick_round(p: float) -> float:
    """Round to the 0.01 tick and clamp into 0.01..0.99."""
    return min(MAX_PRICE, max(MIN_PRICE, round(round(p / TICK) * TICK, 2)))


def _norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


@dataclass(frozen=True)
class Quote:
    up: float
    down: float
    price: float          # the asset's current path price
    fair_up: float        # the fair value of Up before spread and noise


class PricePath:
    """The seeded price path of one asset."""

    def __init__(self, asset: str, seed: int, window_seconds: int, rel_amplitude: float = 0.002,
                 noise: float = 0.0002):
        self.asset = asset.upper()
        self.seed = seed
        self.window_seconds = window_seconds
        self.base = BASE_PRICES.get(self.asset, 100.0)
        self.decimals = 2 if self.base >= 100 else 4
        self.noise = noise
        self._knots: dict[int, float] = {}
        rng = random.Random(f"replica-path:{seed}:{self.asset}")
        self.waves = []
        for _ in range(6):
            period = window_seconds * math.exp(rng.uniform(math.log(0.3), math.log(8.0)))
            amp = rel_amplitude * rng.uniform(0.2, 1.0) / 3
            self.waves.append((2 * math.pi / period, amp, rng.uniform(0, 2 * math.pi)))
        # The typical relative move over one window (measured on the path), for the fair value.
        moves = []
        for k in range(240):
            t0 = (k * 7919 % 100_000) * window_seconds
            moves.append(math.log(self.price(t0 + window_seconds) / self.price(t0)))
        self.sigma = max(1e-6, math.sqrt(sum(m * m for m in moves) / len(moves)))

    def _knot(self, s: int) -> float:
        """The noise at whole second s (kept: candles and quotes ask for the same seconds again)."""
        value = self._knots.get(s)
        if value is None:
            value = self._knots[s] = _unit_hash("n", self.seed, self.asset, s)
            if len(self._knots) > MAX_KNOTS:
                self._knots.clear()      # a full day of seconds: start over rather than grow
        return value

    def _noise_at(self, t: float) -> float:
        s = math.floor(t)
        a = self._knot(s)
        b = self._knot(s + 1)
        frac = t - s
        return self.noise * (a + (b - a) * frac)

    def price(self, t: float) -> float:
        rel = sum(amp * math.sin(w * t + ph) for w, amp, ph in self.waves) + self._noise_at(t)
        return round(self.base * (1.0 + rel), self.decimals)

    def quote(self, window: Window, now: float, spread: float = 0.01) -> Quote:
        open_price = self.price(window.start)
        current = self.price(min(now, window.end))
        left = window.seconds_left(now)
        scale = self.sigma * math.sqrt(max(left, 0.5) / window.length)
        z = math.log(current / open_price) / scale if open_price > 0 else 0.0
        fair = _norm_cdf(z)
        if left <= 0:
            fair = 1.0 if current >= open_price else 0.0
        jitter = 0.01 * round(_unit_hash("q", self.seed, self.asset, math.floor(now)))
        up = tick_round(fair + spread / 2 + jitter)
        down = tick_round(1.0 - up + spread)
        return Quote(up=up, down=down, price=current, fair_up=fair)

    def open_close(self, window: Window) -> tuple[float, float]:
        return self.price(window.start), self.price(window.end)


def _clock(dt: _dt.datetime, with_seconds: bool) -> str:
    hour = dt.hour % 12 or 12
    suffix = "AM" if dt.hour < 12 else "PM"
    if with_seconds:
        return f"{hour}:{dt.minute:02d}:{dt.second:02d}{suffix}"
    return f"{hour}:{dt.minute:02d}{suffix}"


def window_title(window: Window) -> str:
    """'Bitcoin Up or Down - November 22, 10:15AM-10:30AM ET' (seconds shown for sub-minute grids)."""
    start = _dt.datetime.fromtimestamp(window.start, tz=_ET)
    end = _dt.datetime.fromtimestamp(window.end, tz=_ET)
    with_seconds = window.length % 60 != 0
    name = ASSET_NAMES.get(window.asset, window.asset)
    day = f"{start.strftime('%B')} {start.day}"
    return f"{name} Up or Down - {day}, {_clock(start, with_seconds)}-{_clock(end, with_seconds)} {_TZ_LABEL}"
