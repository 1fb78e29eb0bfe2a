"""The price-feed interface: one `Tick` type, typed errors, and tick validation.

A feed answers two questions for an asset:
- `latest(asset) -> Tick`: the current price, or a `FeedError` saying why not;
- `history(asset, seconds) -> (times, prices)`: recent samples (ascending epoch seconds) for
  backfill, where the source can (`supports_history`).

Failure classes (freqtrade style): every error is a `FeedError` with `kind` (a short counter
key) and `retryable` (worth a second attempt at the same source within the same tick).
Whatever the class, the fallback chain moves on to the next source.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

MAX_JUMP = 0.5  # a tick more than 50% away from the last accepted price is implausible


@dataclass(frozen=True)
class Tick:
    asset: str
    price: float
    ts: float        # epoch seconds of the observation (receive time, or the candle's close time)
    source: str


class FeedError(Exception):
    """A feed could not give a usable price. The message names the source, asset and cause."""

    kind = "error"
    retryable = False

    def __init__(self, source: str, asset: str, detail: str):
        self.source, self.asset, self.detail = source, asset, detail
        super().__init__(f"{source} {asset}: {detail}")


class FeedTimeout(FeedError):
    kind = "timeout"
    retryable = False  # the timeout already spent the budget: the next source is the better bet


class FeedConnectionError(FeedError):
    kind = "connection"
    retryable = True


class FeedHTTPError(FeedError):
    kind = "http"

    def __init__(self, source: str, asset: str, detail: str, status: int):
        super().__init__(source, asset, detail)
        self.status = status
        self.retryable = status >= 500 or status == 429


class BadPayload(FeedError):
    """The body is not the JSON shape the source documents (HTML error page, wrong fields)."""

    kind = "bad_payload"


class ImplausiblePrice(FeedError):
    """Zero, negative, NaN/inf, or a jump of more than MAX_JUMP against the last accepted price."""

    kind = "implausible"


class FeedUnavailable(FeedError):
    """No data here: an asset the source does not serve, a gap in replay data, end of file."""

    kind = "unavailable"


@runtime_checkable
class PriceFeed(Protocol):
    name: str
    supports_history: bool

    def latest(self, asset: str) -> Tick: ...

    def history(self, asset: str, seconds: float) -> tuple[np.ndarray, np.ndarray]: ...

    def clock(self) -> float: ...


class WallClockMixin:
    """Feeds of live data tell time by the wall clock (replay has its own clock)."""

    _clock: Callable[[], float] = time.time

    def clock(self) -> float:
        return self._clock()


def parse_price(source: str, asset: str, raw: object) -> float:
    """A price field (string or number) as float; BadPayload if it is not a number at all."""
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise BadPayload(source, asset, f"price field is {type(raw).__name__}, not a number: {str(raw)[:40]!r}")
    try:
        return float(raw)
    except ValueError:
        raise BadPayload(source, asset, f"price field is not a number: {str(raw)[:40]!r}") from None


def check_price(source: str, asset: str, price: float, last: float | None = None,
                max_jump: float = MAX_JUMP) -> float:
    """The price if plausible, else ImplausiblePrice (0, negative, NaN/inf, or a jump > max_jump)."""
    if not math.isfinite(price):
        raise ImplausiblePrice(source, asset, f"price is not finite ({price!r})")
    if price <= 0:
        raise ImplausiblePrice(source, asset, f"price must be > 0 (got {price!r})")
    if last is not None and last > 0 and abs(price / last - 1.0) > max_jump:
        raise ImplausiblePrice(source, asset, f"price {price:g} jumps {100 * (price / last - 1):+.1f}%"
                                              f" from the last accepted {last:g} in one tick")
    return price


def check_series(source: str, asset: str, times: np.ndarray, prices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A backfill series: finite positive prices, strictly ascending times; BadPayload otherwise."""
    times = np.asarray(times, dtype=float)
    prices = np.asarray(prices, dtype=float)
    if times.shape != prices.shape or times.ndim != 1:
        raise BadPayload(source, asset, "history: times and prices differ in shape")
    if times.size == 0:
        raise FeedUnavailable(source, asset, "history: no samples")
    if not (np.all(np.isfinite(prices)) and np.all(prices > 0)):
        raise ImplausiblePrice(source, asset, "history contains a zero, negative or non-finite price")
    if times.size > 1 and not np.all(np.diff(times) > 0):
        raise BadPayload(source, asset, "history timestamps are not strictly ascending")
    return times, prices
