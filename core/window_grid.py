"""The market's window grid: windows of a fixed length on the UTC epoch grid.

The real 15-minute markets sit on the 900 s grid (:00 :15 :30 :45 UTC); demo and tests
use shorter windows with the same arithmetic. All times are epoch seconds (float, UTC).
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass
from functools import lru_cache

REAL_WINDOW_SECONDS = 900

ASSET_NAMES = {"BTC": "Bitcoin", "ETH": "Ethereum", "SOL": "Solana", "XRP": "XRP"}


@dataclass(frozen=True)
class Window:
    """One market window [start, end) for one asset."""

    asset: str
    start: int
    length: int

    @property
    def end(self) -> int:
        return self.start + self.length

    def seconds_left(self, now: float) -> float:
        return max(0.0, self.end - now)

    def elapsed(self, now: float) -> float:
        return max(0.0, now - self.start)

    def contains(self, now: float) -> bool:
        return self.start <= now < self.end

    @property
    def slug(self) -> str:
        return window_slug(self.asset, self.start, self.length)

    def next(self) -> Window:
        return Window(self.asset, self.end, self.length)

    def start_iso(self) -> str:
        return iso_utc(self.start)

    def end_iso(self) -> str:
        return iso_utc(self.end)


def window_start(ts: float, length: int = REAL_WINDOW_SECONDS) -> int:
    """Start of the window containing `ts` (epoch seconds) on the grid of `length` seconds."""
    if length <= 0:
        raise ValueError(f"window length must be positive, got {length}")
    return int(ts // length) * length


def window_at(asset: str, ts: float, length: int = REAL_WINDOW_SECONDS) -> Window:
    return Window(asset.upper(), window_start(ts, length), int(length))


def window_slug(asset: str, start: int, length: int = REAL_WINDOW_SECONDS) -> str:
    """The event slug: `btc-updown-15m-<start>` (for other lengths, `-<N>s-` or `-<N>m-`)."""
    if length % 60 == 0:
        span = f"{length // 60}m"
    else:
        span = f"{length}s"
    return f"{asset.lower()}-updown-{span}-{int(start)}"


def parse_slug(slug: str) -> tuple[str, int]:
    """(ASSET, start) from a slug made by `window_slug`; ValueError on anything else."""
    parts = slug.split("-")
    if len(parts) != 4 or parts[1] != "updown" or not parts[3].isdigit():
        raise ValueError(f"not a window slug: {slug!r} (expected like 'btc-updown-15m-1767225600')")
    return parts[0].upper(), int(parts[3])


def iso_utc(ts: float) -> str:
    """ISO-8601 UTC with millisecond precision and a Z, as signal.json uses (milliseconds truncated,
    none shown when the microseconds are 0; datetime's rounding of ts to the microsecond)."""
    sec = math.floor(ts)
    us = round((ts - sec) * 1e6)           # exact fraction, rounded half-even as datetime.fromtimestamp does
    if us >= 1_000_000:
        sec, us = sec + 1, us - 1_000_000
    text = _second_text(sec)
    return f"{text}.{us // 1000:03d}Z" if us else text + "Z"


@lru_cache(maxsize=64)
def _second_text(sec: int) -> str:
    """The second's text (signal.json writes a few times for each second: kept, not formatted again)."""
    return _dt.datetime.fromtimestamp(sec, tz=_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def parse_iso_utc(text: str) -> float:
    """Epoch seconds from an ISO-8601 string (a trailing Z is UTC)."""
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    dt = _dt.datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_dt.timezone.utc)
    return dt.timestamp()


def timestamp_of(value: object) -> float | None:
    """Epoch seconds from a journal's `ts`: a number, or an ISO-8601 string; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return parse_iso_utc(value)
        except ValueError:
            return None
    return None


def utc_day(ts: float) -> str:
    """The UTC calendar day of `ts` as YYYY-MM-DD (daily guards reset on this)."""
    return _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc).strftime("%Y-%m-%d")
