"""Exchange REST feeds: Binance spot and Coinbase Exchange (public endpoints, no key).

Each request has a timeout (connect and read) and bounded retries: a connection error, an
HTTP 5xx or 429 is tried again after a short pause, up to `retries` more times; a timeout is
not (it has already spent the budget, the next source is the better bet); a bad payload is not
(the same server would answer the same).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import time
from collections.abc import Callable

import numpy as np
import requests

from .base import (
    BadPayload,
    FeedConnectionError,
    FeedError,
    FeedHTTPError,
    FeedTimeout,
    FeedUnavailable,
    Tick,
    WallClockMixin,
    check_series,
    parse_price,
)

STEP_S = 60.0             # backfill candles are 1 minute
BULK_ROWS = 60            # more candles than this in one answer: a bulk request (backfill, first fill)
BULK_TIMEOUT_S = 6.0      # ... whose timeout is at least this (hundreds of rows; a slow answer beats none)
Candles1m = tuple[np.ndarray, np.ndarray, np.ndarray]   # (minute_open epoch s, high, low), oldest first
MAX_TRADE_AGE_S = 120.0   # Coinbase: a last trade older than this means a frozen book


def _snippet(text: str) -> str:
    return " ".join(text.split())[:60]


class RestClient:
    """GET a JSON document with a timeout and bounded retries; typed errors only."""

    def __init__(self, source: str, base_url: str, timeout: float, retries: int = 1,
                 backoff: float = 0.1, sleep: Callable[[float], None] = time.sleep):
        self.source = source
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "updown-agent-signal-engine/0.1"
        self.requests_made = 0

    def twin(self) -> RestClient:
        """The same server, timeout and retries on a session of its own (a requests.Session is not
        for two threads: the candle refresher asks on its own)."""
        return RestClient(self.source, self.base_url, self.timeout, self.retries, self.backoff, self.sleep)

    def get_json(self, path: str, params: dict, asset: str, bulk: bool = False) -> object:
        """`bulk`: hundreds of candles (the backfill, the candle book's first fill): the timeout is at
        least BULK_TIMEOUT_S (a slow answer is still worth having; nothing trades without it)."""
        attempt = 0
        while True:
            try:
                return self._get_once(path, params, asset, max(self.timeout, BULK_TIMEOUT_S) if bulk else self.timeout)
            except FeedError as exc:
                if not exc.retryable or attempt >= self.retries:
                    raise
                attempt += 1
                self.sleep(self.backoff * attempt)

    def _get_once(self, path: str, params: dict, asset: str, timeout: float) -> object:
        url = f"{self.base_url}{path}"
        self.requests_made += 1
        try:
            resp = self.session.get(url, params=params, timeout=(timeout, timeout))
        except requests.Timeout:
            raise FeedTimeout(self.source, asset, f"no answer from {url} within {timeout:g} s") from None
        except requests.RequestException as exc:
            raise FeedConnectionError(self.source, asset, f"cannot reach {url}: {type(exc).__name__}") from None
        if resp.status_code != 200:
            raise FeedHTTPError(self.source, asset, f"HTTP {resp.status_code} from {url}: {_snippet(resp.text)!r}",
                                resp.status_code)
        try:
            return json.loads(resp.content)
        except (ValueError, UnicodeDecodeError):
            raise BadPayload(self.source, asset, f"not JSON from {url} (content-type"
                                                 f" {resp.headers.get('content-type', '?')}): {_snippet(resp.text)!r}"
                             ) from None

    def close(self) -> None:
        self.session.close()


def _completed(times: np.ndarray, prices: np.ndarray, now: float) -> tuple[np.ndarray, np.ndarray]:
    """Keep candles whose close is already known (sample time = open + 1 min <= now)."""
    keep = times <= now
    return times[keep], prices[keep]


class BinanceFeed(WallClockMixin):
    """Binance spot: `/api/v3/ticker/price` (latest) and `/api/v3/klines` 1m (backfill)."""

    name = "binance"
    supports_history = True

    def __init__(self, base_url: str, timeout: float, retries: int = 1, quote: str = "USDT",
                 clock: Callable[[], float] = time.time, name: str | None = None):
        if name is not None:
            self.name = name   # another server speaking Binance's API (the demo replica: "replica")
        self.http = RestClient(self.name, base_url, timeout, retries)
        self.quote = quote
        self._clock = clock

    def symbol(self, asset: str) -> str:
        return f"{asset.upper()}{self.quote}"

    def latest(self, asset: str) -> Tick:
        sym = self.symbol(asset)
        doc = self.http.get_json("/api/v3/ticker/price", {"symbol": sym}, asset)
        if not isinstance(doc, dict) or "price" not in doc:
            raise BadPayload(self.name, asset, f"ticker has no 'price' field: {_snippet(str(doc))!r}")
        if doc.get("symbol", sym) != sym:
            raise BadPayload(self.name, asset, f"ticker is for {doc.get('symbol')!r}, asked {sym}")
        return Tick(asset.upper(), parse_price(self.name, asset, doc["price"]), self.clock(), self.name)

    def history(self, asset: str, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        limit = int(min(1000, math.ceil(seconds / STEP_S) + 2))
        rows = self.http.get_json("/api/v3/klines", {"symbol": self.symbol(asset), "interval": "1m",
                                                     "limit": limit}, asset, bulk=limit > BULK_ROWS)
        if not isinstance(rows, list):
            raise BadPayload(self.name, asset, f"klines is not a list: {_snippet(str(rows))!r}")
        try:
            t = np.array([float(r[0]) / 1000.0 + STEP_S for r in rows], dtype=float)
            p = np.array([parse_price(self.name, asset, r[4]) for r in rows], dtype=float)
        except (TypeError, IndexError, ValueError):
            raise BadPayload(self.name, asset, f"klines rows are not [openTime, o, h, l, c, ...]:"
                                               f" {_snippet(str(rows[:1]))!r}") from None
        t, p = _completed(t, p, self.clock())
        return check_series(self.name, asset, t, p)

    def candles(self, asset: str, minutes: int) -> Candles1m:
        """The last `minutes` closed 1-minute candles' (minute_open, high, low), oldest first."""
        rows = self.http.get_json("/api/v3/klines", {"symbol": self.symbol(asset), "interval": "1m",
                                                     "limit": int(min(1000, minutes + 1))}, asset,
                                  bulk=minutes > BULK_ROWS)
        return _candle_rows(self.name, asset, rows, lambda r: (float(r[0]) / 1000.0, r[2], r[3]), self.clock())


def _candle_rows(source: str, asset: str, rows: object, pick: Callable, now: float) -> Candles1m:
    """(minute_open, high, low) of the rows' closed candles (the one still forming is left out),
    sorted; BadPayload when the rows are not candles or a high/low is not a sane price."""
    if not isinstance(rows, list):
        raise BadPayload(source, asset, f"candles is not a list: {_snippet(str(rows))!r}")
    try:
        got = sorted((t, parse_price(source, asset, h), parse_price(source, asset, lo))
                     for t, h, lo in (pick(r) for r in rows) if t + STEP_S <= now)
    except (TypeError, IndexError, KeyError, ValueError):
        raise BadPayload(source, asset, f"candle rows have no time/high/low: {_snippet(str(rows[:1]))!r}") from None
    if any(lo > h for _, h, lo in got):
        raise BadPayload(source, asset, "a candle's low is above its high")
    mo, hi, lo = (np.array(col, dtype=float) for col in zip(*got, strict=True)) if got else (np.empty(0),) * 3
    return mo, hi, lo


def _parse_time(source: str, asset: str, text: object) -> float:
    if not isinstance(text, str):
        raise BadPayload(source, asset, f"time field is not a string: {text!r}")
    try:
        t = text[:-1] + "+00:00" if text.endswith("Z") else text
        dt = _dt.datetime.fromisoformat(t)
    except ValueError:
        raise BadPayload(source, asset, f"time field is not ISO-8601: {text[:40]!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_dt.timezone.utc)
    return dt.timestamp()


class CoinbaseFeed(WallClockMixin):
    """Coinbase Exchange: `/products/<A>-USD/ticker` (latest) and `/candles?granularity=60`."""

    name = "coinbase"
    supports_history = True

    def __init__(self, base_url: str, timeout: float, retries: int = 1, quote: str = "USD",
                 clock: Callable[[], float] = time.time):
        self.http = RestClient(self.name, base_url, timeout, retries)
        self.quote = quote
        self._clock = clock

    def product(self, asset: str) -> str:
        return f"{asset.upper()}-{self.quote}"

    def latest(self, asset: str) -> Tick:
        doc = self.http.get_json(f"/products/{self.product(asset)}/ticker", {}, asset)
        if not isinstance(doc, dict) or "price" not in doc:
            raise BadPayload(self.name, asset, f"ticker has no 'price' field: {_snippet(str(doc))!r}")
        price = parse_price(self.name, asset, doc["price"])
        now = self.clock()
        if "time" in doc:
            trade_ts = _parse_time(self.name, asset, doc["time"])
            if now - trade_ts > MAX_TRADE_AGE_S:
                raise FeedUnavailable(self.name, asset, f"last trade is {now - trade_ts:.0f} s old"
                                                        f" ({doc['time']}): the book looks frozen")
        return Tick(asset.upper(), price, now, self.name)

    def history(self, asset: str, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        rows = self.http.get_json(f"/products/{self.product(asset)}/candles", {"granularity": 60}, asset,
                                  bulk=seconds > BULK_ROWS * STEP_S)
        if not isinstance(rows, list):
            raise BadPayload(self.name, asset, f"candles is not a list: {_snippet(str(rows))!r}")
        try:
            pairs = sorted((float(r[0]) + STEP_S, parse_price(self.name, asset, r[4])) for r in rows)
        except (TypeError, IndexError, ValueError):
            raise BadPayload(self.name, asset, f"candles rows are not [time, low, high, open, close, volume]:"
                                               f" {_snippet(str(rows[:1]))!r}") from None
        now = self.clock()
        t = np.array([a for a, _ in pairs], dtype=float)
        p = np.array([b for _, b in pairs], dtype=float)
        t, p = _completed(t, p, now)
        keep = t >= now - seconds - STEP_S
        return check_series(self.name, asset, t[keep], p[keep])

    def candles(self, asset: str, minutes: int) -> Candles1m:
        """The latest closed 1-minute candles' (minute_open, high, low), oldest first (Coinbase sends
        up to 300, newest first, as [time, low, high, open, close, volume])."""
        rows = self.http.get_json(f"/products/{self.product(asset)}/candles", {"granularity": 60}, asset,
                                  bulk=minutes > BULK_ROWS)
        mo, hi, lo = _candle_rows(self.name, asset, rows, lambda r: (float(r[0]), r[2], r[1]), self.clock())
        return mo[-minutes:], hi[-minutes:], lo[-minutes:]
