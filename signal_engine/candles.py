"""Closed 1-minute candles' high and low for prob_up v2's range blend (signal_engine/vol_model.py).

The fitted model reads each minute's range (Parkinson) as well as its close-to-close return. The
range must cover every trade of the minute, which the engine's price history (one price a tick, or
the stream's trades as they come) cannot promise, so the engine asks the exchange for its own
candles, as the backtest's data are: at start (CANDLE_KEEP minutes) and then a few seconds after
each minute closes (the last few, so a missed minute is filled in the next time), on a thread of
its own so a slow exchange never delays a publish. Every request has the feed's timeout.

Sources: the first feed of the chain that has `candles()` (Binance's or the replica's
`/api/v3/klines`, Coinbase's `/candles`). None (the simulated or replayed feed): no ranges, and the
model uses its close-only blend, as it does for any minute whose candle is missing (never bridged).
A failure is logged once per episode (and once when candles come back); the book keeps what it has.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

log = logging.getLogger("signal_engine.candles")

STEP_S = 60.0
CANDLE_KEEP = 780             # minutes kept per asset: the model's longest span (722) and some slack
AFTER_CLOSE_S = 3.0           # ask this long after a minute closes (the exchange has finished it)
REFRESH_MINUTES = 5           # each refresh asks for the last few, so one missed minute is filled later
RETRY_S = 15.0                # a failed refresh is tried again this much later

Candles1m = tuple[np.ndarray, np.ndarray, np.ndarray]


class CandleBook:
    """Per asset: minute_open -> (high, low), at most CANDLE_KEEP minutes; thread-safe."""

    def __init__(self, keep: int = CANDLE_KEEP):
        self.keep = keep
        self._rows: dict[str, dict[float, tuple[float, float]]] = {}
        self._snaps: dict[str, Candles1m] = {}      # built once per change (read up to ~20 times a second)
        self._lock = threading.Lock()

    def merge(self, asset: str, candles: Candles1m) -> int:
        mo, hi, lo = candles
        with self._lock:
            rows = self._rows.setdefault(asset.upper(), {})
            for t, h, low in zip(mo.tolist(), hi.tolist(), lo.tolist(), strict=True):
                if math.isfinite(h) and math.isfinite(low) and 0 < low <= h:
                    rows[float(t)] = (float(h), float(low))
            for t in sorted(rows)[:-self.keep]:
                del rows[t]
            self._snaps.pop(asset.upper(), None)
            return len(rows)

    def snapshot(self, asset: str) -> Candles1m | None:
        """(minute_open, high, low) arrays, oldest first, or None when there is no candle."""
        with self._lock:
            snap = self._snaps.get(asset.upper())
            rows = self._rows.get(asset.upper())
            if snap is None and rows:
                ts = sorted(rows)
                snap = (np.array(ts), np.array([rows[t][0] for t in ts]), np.array([rows[t][1] for t in ts]))
                for a in snap:
                    a.flags.writeable = False            # shared by every reader until the next merge
                self._snaps[asset.upper()] = snap
            return snap

    def last_minute(self, asset: str) -> float | None:
        with self._lock:
            rows = self._rows.get(asset.upper())
            return max(rows) if rows else None


def candle_source(feeds: Sequence[object]) -> object | None:
    """The first feed that can answer candles(asset, minutes), or None; a copy of it with an HTTP
    session of its own when it has one (the refresher asks from its own thread)."""
    feed = next((f for f in feeds if callable(getattr(f, "candles", None))), None)
    http = getattr(feed, "http", None)
    if feed is None or http is None:
        return feed
    twin = copy.copy(feed)
    twin.http = http.twin()
    return twin


class CandleRefresher(threading.Thread):
    """Fills a CandleBook: CANDLE_KEEP minutes per asset at start, then the last REFRESH_MINUTES a few
    seconds after every minute closes. Stops when `stop_event` is set."""

    def __init__(self, source, assets: Sequence[str], book: CandleBook, clock: Callable[[], float] = time.time):
        super().__init__(name="candles", daemon=True)
        self.source, self.assets, self.book, self.clock = source, [a.upper() for a in assets], book, clock
        self.stop_event = threading.Event()
        self.failing: dict[str, str] = {}

    def refresh(self, asset: str) -> bool:
        """One request for `asset`: the whole book when it is empty or behind, else the last few."""
        last = self.book.last_minute(asset)
        closed = math.floor(self.clock() / STEP_S) * STEP_S - STEP_S      # the newest closed minute
        behind = CANDLE_KEEP if last is None else int(min(CANDLE_KEEP, (closed - last) / STEP_S + REFRESH_MINUTES))
        try:
            n = self.book.merge(asset, self.source.candles(asset, max(REFRESH_MINUTES, behind)))
        except Exception as exc:  # noqa: BLE001 - any feed error: keep the book, say so once, retry later
            if asset not in self.failing:
                log.warning("%s: cannot fetch 1-minute candles from %s (%s); prob_up uses the close-only"
                            " volatility for minutes without a candle; retrying every %g s", asset,
                            getattr(self.source, "name", "?"), exc, RETRY_S)
            self.failing[asset] = str(exc)
            return False
        if self.failing.pop(asset, None) is not None:
            log.warning("%s: 1-minute candles from %s again (%d minutes held)", asset, self.source.name, n)
        return True

    def refresh_all(self) -> bool:
        return all([self.refresh(a) for a in self.assets])

    def run(self) -> None:
        while not self.stop_event.is_set():
            ok = self.refresh_all()
            now = self.clock()
            nxt = math.floor(now / STEP_S) * STEP_S + STEP_S + AFTER_CLOSE_S
            wait = nxt - now if ok else min(RETRY_S, nxt - now + STEP_S)
            self.stop_event.wait(max(0.5, wait))

    def stop(self, timeout: float = 0.5) -> None:
        """Ask the thread to end; wait briefly (a request in flight keeps its timeout, and the thread is
        a daemon: the engine's exit never waits on the exchange)."""
        self.stop_event.set()
        self.join(timeout)
