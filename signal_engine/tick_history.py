"""A bounded, time-ordered price history per asset (numpy buffer, amortised O(1) append)."""

from __future__ import annotations

import numpy as np


class TickHistory:
    """Samples (t, price) with strictly increasing t, keeping about the last `keep_s` seconds."""

    def __init__(self, keep_s: float, capacity: int = 8192, min_spacing_s: float = 0.5):
        self.keep_s = float(keep_s)
        self.min_spacing_s = float(min_spacing_s)
        self._t = np.empty(capacity)
        self._p = np.empty(capacity)
        self._lo = 0
        self._hi = 0

    def __len__(self) -> int:
        return self._hi - self._lo

    @property
    def last_time(self) -> float | None:
        return float(self._t[self._hi - 1]) if self._hi > self._lo else None

    @property
    def first_time(self) -> float | None:
        return float(self._t[self._lo]) if self._hi > self._lo else None

    def add(self, t: float, price: float) -> bool:
        """Append a sample; False (ignored) if it is not newer than the last one.

        Samples closer than `min_spacing_s` to the one before the last replace the last one, so
        the buffer stays bounded at any tick rate (the model's shortest lookback is 30 s) while
        its last sample is always the latest price.
        """
        last = self.last_time
        if last is not None and t <= last:
            return False
        if len(self) >= 2 and t - self._t[self._hi - 2] < self.min_spacing_s:
            self._t[self._hi - 1] = t
            self._p[self._hi - 1] = price
            return True
        if self._hi == self._t.size:
            self._compact(extra=1)
        self._t[self._hi] = t
        self._p[self._hi] = price
        self._hi += 1
        self._trim()
        return True

    def extend(self, times: np.ndarray, prices: np.ndarray) -> int:
        """Append a backfill series (ascending); samples not newer than the last are skipped."""
        times = np.asarray(times, dtype=float)
        prices = np.asarray(prices, dtype=float)
        last = self.last_time
        if last is not None:
            keep = times > last
            times, prices = times[keep], prices[keep]
        n = int(times.size)
        if n == 0:
            return 0
        if self._hi + n > self._t.size:
            self._compact(extra=n)
        self._t[self._hi:self._hi + n] = times
        self._p[self._hi:self._hi + n] = prices
        self._hi += n
        self._trim()
        return n

    def merge_older(self, times: np.ndarray, prices: np.ndarray) -> int:
        """Put a backfill series (ascending) before the history (a backfill that succeeded only after
        prices had arrived); samples not older than the first are skipped. Returns how many were added."""
        times = np.asarray(times, dtype=float)
        prices = np.asarray(prices, dtype=float)
        first = self.first_time
        if first is None:
            return self.extend(times, prices)
        keep = times < first
        times, prices = times[keep], prices[keep]
        n = int(times.size)
        if n == 0:
            return 0
        cur_t, cur_p = self.arrays()
        self._t = np.concatenate((times, cur_t, np.empty(max(len(cur_t), 1024))))
        self._p = np.concatenate((prices, cur_p, np.empty(max(len(cur_p), 1024))))
        self._lo, self._hi = 0, n + len(cur_t)
        self._trim()
        return n

    def _trim(self) -> None:
        cutoff = self._t[self._hi - 1] - self.keep_s
        # Keep one sample at or before the cutoff so a lookback of exactly keep_s interpolates.
        lo = int(np.searchsorted(self._t[self._lo:self._hi], cutoff, side="right")) - 1 + self._lo
        self._lo = max(self._lo, lo)

    def _compact(self, extra: int) -> None:
        n = len(self)
        cap = max(self._t.size, 2 * (n + extra))
        t, p = np.empty(cap), np.empty(cap)
        t[:n] = self._t[self._lo:self._hi]
        p[:n] = self._p[self._lo:self._hi]
        self._t, self._p, self._lo, self._hi = t, p, 0, n

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Views (do not keep them across appends)."""
        return self._t[self._lo:self._hi], self._p[self._lo:self._hi]
