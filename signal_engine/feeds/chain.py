"""The fallback chain: try the sources in order (FEEDS), validate, report who answered.

Every tick is validated here: a price of 0, negative, NaN/inf, or more than 50% away from the
last accepted price of that asset is dropped and counted, and the next source is tried. A source
that failed is put on a short cool-down (1, 2, 4 ... 30 s) during which the others are asked
first, so a hanging exchange does not cost its timeout on every tick; when every source is
cooling down they are all tried anyway, in order. A stream (`is_stream`: its latest() reads memory
and costs nothing) is never cooled down: the moment it has a fresh price again, it answers first.
`streaming(asset)` says whether the next answer would come from a stream (the engine publishes on a
stream's messages only then; on REST fallback the schedule alone publishes).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from .base import MAX_JUMP, FeedError, PriceFeed, Tick, check_price, check_series

log = logging.getLogger("signal_engine.feeds")

COOLDOWN_MAX_S = 30.0


class AllFeedsFailed(Exception):
    """No source produced a usable price; `errors` holds each source's FeedError."""

    def __init__(self, asset: str, errors: Sequence[FeedError]):
        self.asset, self.errors = asset, list(errors)
        parts = "; ".join(str(e) for e in errors) or "no source configured"
        super().__init__(f"no usable {asset} price from any source ({parts})")


class FallbackChain:
    name = "chain"

    def __init__(self, feeds: Sequence[PriceFeed], max_jump: float = MAX_JUMP,
                 mono: Callable[[], float] = time.monotonic):
        if not feeds:
            raise ValueError("a fallback chain needs at least one feed")
        self.feeds = list(feeds)
        self.max_jump = max_jump
        self.mono = mono
        self.last_price: dict[str, float] = {}
        self.last_source: dict[str, str] = {}
        self.accepted: Counter[str] = Counter()     # by source
        self.dropped: Counter[str] = Counter()      # by error kind
        self._fails: dict[str, int] = {}
        self._cool_until: dict[str, float] = {}

    @property
    def supports_history(self) -> bool:
        return any(f.supports_history for f in self.feeds)

    def clock(self) -> float:
        """The model's clock: the first source's (replay runs on data time)."""
        return self.feeds[0].clock()

    def _order(self) -> list[PriceFeed]:
        now = self.mono()
        ready = [f for f in self.feeds if getattr(f, "is_stream", False) or self._cool_until.get(f.name, 0.0) <= now]
        cooling = [f for f in self.feeds if f not in ready]
        return ready + cooling

    def _failed(self, feed: PriceFeed, exc: FeedError) -> None:
        n = self._fails.get(feed.name, 0) + 1
        self._fails[feed.name] = n
        self._cool_until[feed.name] = self.mono() + min(COOLDOWN_MAX_S, 2.0 ** min(n - 1, 16))   # n grows without end
        self.dropped[exc.kind] += 1
        if n == 1 and len(self.feeds) > 1 and getattr(feed, "is_stream", False):
            log.warning("%s failing (%s): the next sources answer until it has a fresh price again", feed.name, exc)
        elif n == 1 and len(self.feeds) > 1:
            log.warning("%s failing (%s): asking the other sources first, retrying it after a cool-down"
                        " of up to %g s", feed.name, exc, COOLDOWN_MAX_S)

    def _succeeded(self, feed: PriceFeed) -> None:
        n = self._fails.pop(feed.name, 0)
        self._cool_until.pop(feed.name, None)
        if n and len(self.feeds) > 1:
            log.info("%s answering again after %d failed attempt(s)", feed.name, n)

    def latest(self, asset: str) -> Tick:
        asset = asset.upper()
        errors: list[FeedError] = []
        for feed in self._order():
            try:
                tick = feed.latest(asset)
                check_price(feed.name, asset, tick.price, self.last_price.get(asset), self.max_jump)
            except FeedError as exc:
                self._failed(feed, exc)
                errors.append(exc)
                log.debug("tick dropped: %s; trying the next source", exc)
                continue
            self._succeeded(feed)
            self.accepted[feed.name] += 1
            previous = self.last_source.get(asset)
            if previous is not None and previous != feed.name:
                log.warning("%s price now from %s (was %s)%s", asset, feed.name, previous,
                            f" after: {errors[-1]}" if errors else "")
            self.last_price[asset] = tick.price
            self.last_source[asset] = feed.name
            return tick
        raise AllFeedsFailed(asset, errors)

    def streaming(self, asset: str) -> bool:
        """True when the next latest(asset) would be answered by a stream, from memory (no network call)."""
        first = self._order()[0]
        if not getattr(first, "is_stream", False):
            return False
        try:
            tick = first.latest(asset.upper())
            check_price(first.name, asset.upper(), tick.price, self.last_price.get(asset.upper()), self.max_jump)
        except FeedError:
            return False
        return True

    def history(self, asset: str, seconds: float) -> tuple[np.ndarray, np.ndarray, str]:
        """(times, prices, source) from the first source that can backfill; AllFeedsFailed else."""
        asset = asset.upper()
        errors: list[FeedError] = []
        for feed in self.feeds:
            if not feed.supports_history:
                continue
            try:
                times, prices = check_series(feed.name, asset, *feed.history(asset, seconds))
            except FeedError as exc:
                errors.append(exc)
                continue
            self.last_price.setdefault(asset, float(prices[-1]))
            return times, prices, feed.name
        raise AllFeedsFailed(asset, errors)

    def stats(self) -> dict:
        return {"accepted": sum(self.accepted.values()), "dropped": sum(self.dropped.values()),
                "dropped_by_kind": dict(self.dropped)}
