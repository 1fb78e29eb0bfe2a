"""Streaming prices over WebSocket: Binance trades (a price feed, first in the fallback chain) and
Chainlink prices from Polymarket's real-time data stream (the reference, signal_engine/reference.py).

Recorded message shapes (the tests' local servers speak exactly these):
- Binance spot, combined stream `wss://stream.binance.com:9443/stream?streams=btcusdt@aggTrade/...`:
  each message `{"stream": "btcusdt@aggTrade", "data": {"e": "aggTrade", "E": 123456789,
  "s": "BTCUSDT", "a": 12345, "p": "0.001", "q": "100", "f": 100, "l": 105, "T": 123456785,
  "m": true, "M": true}}` (`@trade` has the same `e`/`s`/`p`/`T` fields with `"e": "trade"`).
  Source: Binance's "Web Socket Streams" document (binance-spot-api-docs, web-socket-streams.md:
  "Aggregate Trade Streams", "Trade Streams", combined streams wrapped as {"stream", "data"}; the
  server pings every 3 minutes, a connection lives at most 24 h).
- Polymarket RTDS `wss://ws-live-data.polymarket.com`: subscribe with `{"action": "subscribe",
  "subscriptions": [{"topic": "crypto_prices_chainlink", "type": "*", "filters": ""}]}`; updates
  `{"topic": "crypto_prices_chainlink", "type": "update", "timestamp": 1753314088421,
  "payload": {"symbol": "btc/usd", "timestamp": 1753314088395, "value": 67234.5}}`; the client
  sends the text `PING` every 5 s. Source: Polymarket's documentation, "Real-Time Data Socket"
  (docs.polymarket.com/market-data/websocket/rtds). We subscribe without a symbol filter and keep
  the symbols we trade (public clients report that a filtered subscription sends one batch only).

Behaviour: an asyncio task runs the connection (websockets' asyncio client, every step with a timeout),
on the engine's main-thread loop (`attach`, see schedule.LoopWakeup) or on a thread of its own (`start`);
it reconnects after any close or error with exponential back-off and full jitter
(base 0.5 s doubling to 30 s, times a random factor in [0.5, 1]), reset by the first good message.
Staleness is keyed to the last accepted *message*, not to the connection: a stream that stays
connected but sends nothing (a silent stall) is cut and reconnected after `silence_s`, and
`latest()` refuses a price older than `silence_s` (the chain then asks the next source, REST), so a
feed that silently stops is noticed within STALE_AFTER (silence_s <= STALE_AFTER). Garbage (not
JSON, another shape) is counted and skipped; a price more than STREAM_MAX_JUMP (10 %) from the last
one accepted less than a minute ago, a timestamp older than the last accepted (a replay) or more than
MAX_MSG_AGE_S old is dropped and counted by kind (the fallback chain then applies its own 50 % rule).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from .base import FeedUnavailable, Tick

log = logging.getLogger("signal_engine.feeds.stream")

BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0
OPEN_TIMEOUT_S = 5.0
MAX_MSG_AGE_S = 60.0          # an observation older than this on arrival is history, not a price
STREAM_MAX_JUMP = 0.10        # messages a moment apart: a 10 % move between two is a broken price ...
JUMP_WINDOW_S = 60.0          # ... when the last accepted one is younger than this (then the chain's 50 % rule)
DRAIN_KEEP = 256              # observations kept per asset between two drains


class BadMessage(ValueError):
    """A message that is not the recorded shape."""


class Obs(NamedTuple):      # a tuple: made for every message, read-only
    asset: str
    price: float
    ts: float                 # the source's own timestamp, epoch seconds
    recv_wall: float
    recv_mono: float


# ---- the two recorded shapes -------------------------------------------------------------------


class BinanceTrades:
    name = "binance_ws"
    keepalive: tuple[str, float] | None = None          # the server pings; the client answers (websockets)

    def __init__(self, kind: str = "aggTrade", quote: str = "USDT"):
        self.kind, self.quote = kind, quote

    def url(self, base: str, assets: Sequence[str]) -> str:
        streams = "/".join(f"{a.lower()}{self.quote.lower()}@{self.kind}" for a in assets)
        return f"{base.rstrip('/')}/stream?streams={streams}"

    def subscribe(self, assets: Sequence[str]) -> list[str]:
        return []                                       # the URL names the streams

    def parse(self, raw: str | bytes, assets: Sequence[str]) -> list[tuple[str, float, float]]:
        doc = _json(raw)
        data = doc.get("data") if isinstance(doc, dict) and "stream" in doc else doc
        if not isinstance(data, dict) or data.get("e") not in ("aggTrade", "trade"):
            raise BadMessage(f"not a trade event: {_snip(raw)}")
        sym = data.get("s")
        asset = next((a for a in assets if isinstance(sym, str) and sym.upper() == f"{a}{self.quote}"), None)
        if asset is None:
            raise BadMessage(f"trade for an unexpected symbol {str(sym)[:20]!r}")
        return [(asset, _price(data.get("p")), _ms(data.get("T")))]


class ChainlinkPrices:
    name = "chainlink"
    keepalive: tuple[str, float] | None = ("PING", 5.0)
    topic = "crypto_prices_chainlink"

    def url(self, base: str, assets: Sequence[str]) -> str:
        return base

    def subscribe(self, assets: Sequence[str]) -> list[str]:
        return [json.dumps({"action": "subscribe",
                            "subscriptions": [{"topic": self.topic, "type": "*", "filters": ""}]})]

    def parse(self, raw: str | bytes, assets: Sequence[str]) -> list[tuple[str, float, float]]:
        if raw in ("PONG", b"PONG", "", b""):
            return []
        doc = _json(raw)
        if not isinstance(doc, dict) or doc.get("topic") != self.topic:
            raise BadMessage(f"not a {self.topic} message: {_snip(raw)}")
        p = doc.get("payload")
        if not isinstance(p, dict):
            raise BadMessage(f"payload is not an object: {_snip(raw)}")
        sym = p.get("symbol")
        asset = next((a for a in assets if isinstance(sym, str) and sym.lower() == f"{a.lower()}/usd"), None)
        if asset is None:
            return []                                   # another symbol of the unfiltered topic
        return [(asset, _price(p.get("value")), _ms(p.get("timestamp")))]


def _json(raw: str | bytes):
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadMessage(f"not JSON: {_snip(raw)}") from None


def _snip(raw: str | bytes) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return repr(" ".join(text.split())[:60])


def _price(v) -> float:
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        raise BadMessage(f"price is not a number: {str(v)[:30]!r}")
    try:
        return float(v)
    except ValueError:
        raise BadMessage(f"price is not a number: {str(v)[:30]!r}") from None


def _ms(v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise BadMessage(f"timestamp is not a number of milliseconds: {str(v)[:30]!r}")
    return float(v) / 1000.0


# ---- the connection ---------------------------------------------------------------------------------


class StreamFeed:
    """A WebSocket source behind the PriceFeed interface (latest/history/clock) plus drain().
    `on_message(assets)` is called on the stream's thread with the assets of each accepted message."""

    supports_history = False
    is_stream = True          # latest() reads memory: the fallback chain never cools it down

    def __init__(self, protocol, base_url: str, assets: Sequence[str], silence_s: float,
                 name: str | None = None, clock: Callable[[], float] = time.time,
                 mono: Callable[[], float] = time.monotonic, backoff_base: float = BACKOFF_BASE_S,
                 backoff_max: float = BACKOFF_MAX_S, rng: Callable[[], float] = random.random,
                 on_message: Callable[[list[str]], None] | None = None):
        self.protocol = protocol
        self.name = name or protocol.name
        self.assets = [a.upper() for a in assets]
        self.url = protocol.url(base_url, self.assets)
        self.silence_s = float(silence_s)
        self._clock, self.mono, self.rng = clock, mono, rng
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.on_message = on_message
        self._lock = threading.Lock()
        self._last: dict[str, Obs] = {}
        self._queues: dict[str, deque[Obs]] = {a: deque(maxlen=DRAIN_KEEP) for a in self.assets}
        self.counts: Counter[str] = Counter()
        self.last_error: str | None = None
        self.connected = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._cut: str | None = None          # why the watchdog closed the connection
        self._since_connect = -math.inf

    # ---- PriceFeed ----

    def clock(self) -> float:
        return self._clock()

    def history(self, asset: str, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        raise FeedUnavailable(self.name, asset, "a stream has no history (REST backfills)")

    def latest(self, asset: str) -> Tick:
        asset = asset.upper()
        with self._lock:
            obs = self._last.get(asset)
        if obs is None:
            raise FeedUnavailable(self.name, asset, f"no message yet ({self.last_error or 'connecting'})")
        age = self.mono() - obs.recv_mono
        if age > self.silence_s:
            raise FeedUnavailable(self.name, asset, f"no message for {age:.1f} s (stream silent;"
                                                    f" {self.last_error or 'reconnecting'})")
        return Tick(asset, obs.price, obs.recv_wall, self.name)

    def drain(self, asset: str) -> list[Obs]:
        """The observations accepted since the last drain (oldest first)."""
        with self._lock:
            q = self._queues.get(asset.upper())
            out = list(q) if q else []
            if q:
                q.clear()
        return out

    def stats(self) -> dict:
        with self._lock:
            return {"connected": self.connected, **dict(self.counts), "last_error": self.last_error}

    # ---- messages ----

    def accept(self, raw: str | bytes) -> int:
        """Parse and validate one message (also used by tests without a socket); returns how many
        observations it added."""
        try:
            items = self.protocol.parse(raw, self.assets)
        except BadMessage as exc:
            self.counts["bad_message"] += 1
            if self.counts["bad_message"] in (1, 10, 100) or self.counts["bad_message"] % 1000 == 0:
                log.warning("%s: skipped a message that is not the recorded shape (%s); %d so far",
                            self.name, exc, self.counts["bad_message"])
            return 0
        added: list[str] = []
        now_wall, now_mono = self._clock(), self.mono()
        for asset, price, ts in items:
            why = self._refuse(asset, price, ts, now_wall)
            if why:
                self.counts[why] += 1
                continue
            obs = Obs(asset, price, ts, now_wall, now_mono)
            with self._lock:
                self._last[asset] = obs
                self._queues[asset].append(obs)
            added.append(asset)
        if added:
            self.counts["messages"] += 1
            if self.on_message is not None:
                self.on_message(added)        # only signals (schedule.Wakeup.notify): the main thread publishes
        return len(added)

    def _refuse(self, asset: str, price: float, ts: float, now: float) -> str | None:
        if not math.isfinite(price) or price <= 0:
            return "implausible"
        last = self._last.get(asset)
        if last is not None and self.mono() - last.recv_mono < JUMP_WINDOW_S \
                and abs(price / last.price - 1.0) > STREAM_MAX_JUMP:
            return "implausible"
        if last is not None and ts < last.ts:
            return "old_timestamp"
        if now - ts > MAX_MSG_AGE_S:
            return "old_timestamp"
        return None

    # ---- running: on a loop of the caller's (the engine's main thread), or on a thread of its own ----

    def attach(self, loop: asyncio.AbstractEventLoop) -> StreamFeed:
        """Run on `loop` (the engine runs its streams on its main thread, schedule.LoopWakeup: a message
        is accepted and published by the same thread, no hand-over); the caller runs the loop and ends
        the feed with cancel() (then runs the loop until the task is done)."""
        self._loop = loop
        self._task = loop.create_task(self._run(), name=f"stream-{self.name}")
        return self

    def cancel(self) -> asyncio.Task | None:
        """Attached: ask the feed's task to end (closing its connection); returns the task to await."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
        return self._task

    def start(self) -> StreamFeed:
        """Run on a thread of its own (tests, tools); stop() ends it."""
        self._thread = threading.Thread(target=self._run_thread, name=f"stream-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        loop, task = self._loop, self._task
        if self._thread is not None and loop is not None and task is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError as exc:   # the loop closed in between: the thread is ending anyway
                log.debug("%s: stop found the loop closed (%s)", self.name, exc)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run_thread(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._task = loop.create_task(self._run(), name=f"stream-{self.name}")
        try:
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            log.debug("%s: stopped", self.name)
        finally:
            loop.close()

    def _delay(self, attempt: int) -> float:
        return min(self.backoff_max, self.backoff_base * 2.0 ** max(0, attempt - 1)) * (0.5 + 0.5 * self.rng())

    async def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            good = await self._session()
            attempt = 1 if good else attempt + 1
            delay = self._delay(attempt)
            self.counts["reconnects"] += 1
            log.info("%s: reconnecting in %.2f s (%s)", self.name, delay, self.last_error)
            await asyncio.sleep(delay)

    async def _session(self) -> bool:
        """One connection until it closes, errs or falls silent; True if it delivered a good message.
        Messages are read as they come (no timer per message); a watchdog task beside the reader cuts
        the connection when it falls silent and sends the protocol's keepalive."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import WebSocketException

        good = False
        self._cut = None
        try:
            # compression=None: messages of ~200 bytes; inflating each costs more CPU than it saves
            async with connect(self.url, open_timeout=OPEN_TIMEOUT_S, close_timeout=1.0, ping_interval=20.0,
                               ping_timeout=20.0, max_size=1 << 20, compression=None) as ws:
                self.counts["connects"] += 1
                self.connected = True
                self._since_connect = self.mono()
                for msg in self.protocol.subscribe(self.assets):
                    await asyncio.wait_for(ws.send(msg), OPEN_TIMEOUT_S)
                watchdog = asyncio.ensure_future(self._watch(ws))
                try:
                    async for raw in ws:
                        if self.accept(raw):
                            good = True
                finally:
                    watchdog.cancel()
                if self._cut is not None:
                    raise TimeoutError(self._cut)
                raise ConnectionError("the server closed the connection")
        except (OSError, WebSocketException, asyncio.TimeoutError, TimeoutError) as exc:
            self.last_error = f"{type(exc).__name__}: {str(exc)[:120]}"
        finally:
            self.connected = False
        return good

    async def _watch(self, ws) -> None:
        """Beside the reader: close the connection when no message came for silence_s (a silent stall);
        send the keepalive on time. Wakes only at those deadlines, not per message."""
        from websockets.exceptions import WebSocketException

        period = self.protocol.keepalive[1] if self.protocol.keepalive else math.inf
        next_ping = time.monotonic() + period
        while True:
            silent = self._silent_for()
            if silent > self.silence_s:
                self._cut = f"no message for {silent:.1f} s on an open connection"
                await ws.close()
                return
            if self.protocol.keepalive and time.monotonic() >= next_ping:
                try:
                    await asyncio.wait_for(ws.send(self.protocol.keepalive[0]), OPEN_TIMEOUT_S)
                except (OSError, WebSocketException, asyncio.TimeoutError) as exc:
                    self._cut = f"keepalive not sent: {type(exc).__name__}: {exc}"
                    await ws.close()
                    return
                next_ping = time.monotonic() + period
            wait = min(self.silence_s - silent, next_ping - time.monotonic())
            await asyncio.sleep(max(0.01, wait + 0.001))

    def _silent_for(self) -> float:
        """Seconds since the last accepted message, or since this connection opened if later."""
        with self._lock:
            newest = max((o.recv_mono for o in self._last.values()), default=-math.inf)
        return self.mono() - max(newest, self._since_connect)
