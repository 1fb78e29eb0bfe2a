"""Price feeds behind one small interface (see base.py), and `build_feed(cfg)`.

Sources: `binance`, `coinbase` (REST), `replica` (the demo replica's own price path, over the
same Binance client), `replay` (a candle file), `sim` (seeded random walk).
`build_feed` returns a FallbackChain over cfg.feeds in order, preceded by a WebSocket trade stream
when PRICE_STREAM=binance (stream.py; not started: the caller starts it, `start_streams`).
`build_chainlink(cfg)`: the Chainlink reference stream when CHAINLINK_WS_URL is set, else None.
`start_streams(chain, chainlink, on_message=..., loop=...)` starts them (`stop_streams` ends them);
`on_message` hears every accepted message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from core.config import Config

from .base import (
    MAX_JUMP,
    BadPayload,
    FeedConnectionError,
    FeedError,
    FeedHTTPError,
    FeedTimeout,
    FeedUnavailable,
    ImplausiblePrice,
    PriceFeed,
    Tick,
    check_price,
)
from .chain import AllFeedsFailed, FallbackChain
from .replay import ReplayFeed
from .rest import BinanceFeed, CoinbaseFeed
from .sim import SimFeed
from .stream import BinanceTrades, ChainlinkPrices, StreamFeed

log = logging.getLogger("signal_engine.feeds")


def build_source(name: str, cfg: Config) -> PriceFeed:
    if name == "binance":
        return BinanceFeed(cfg.binance_url, cfg.feed_timeout)
    if name == "replica":
        # The demo venue's own price path, served in Binance's shape (replica/binance_api.py).
        return BinanceFeed(f"http://127.0.0.1:{cfg.replica_port}", cfg.feed_timeout, name="replica")
    if name == "coinbase":
        return CoinbaseFeed(cfg.coinbase_url, cfg.feed_timeout)
    if name == "sim":
        return SimFeed(cfg.sim_seed)
    if name == "replay":
        if cfg.replay_file is None:
            raise ValueError("FEEDS includes replay but REPLAY_FILE is not set")
        return ReplayFeed(cfg.replay_file, cfg.assets[0], cfg.replay_speed)
    raise ValueError(f"unknown feed {name!r}")


OWN_PRICE_FEEDS = {"replay", "sim", "replica"}


def stream_silence(cfg: Config) -> float:
    """How long a price stream may say nothing before it counts as stopped: half of STALE_AFTER, so
    REST takes over (and the stream reconnects) well before the signal would go stale."""
    return max(0.5, cfg.stale_after / 2.0)


def build_feed(cfg: Config, streams: bool = True) -> FallbackChain:
    """The fallback chain over cfg.feeds (after the price stream, if any and `streams`).
    OSError/ValueError if the replay file is unusable."""
    sources: list[PriceFeed] = []
    # A live exchange stream only in front of live exchanges: replay runs on data time (the chain's
    # clock is its first source's) and sim/replica are prices of their own.
    if streams and cfg.price_stream == "binance" and not set(cfg.feeds) & OWN_PRICE_FEEDS:
        sources.append(StreamFeed(BinanceTrades(), cfg.binance_ws_url, cfg.assets, stream_silence(cfg)))
    sources += [build_source(name, cfg) for name in cfg.feeds]
    return FallbackChain(sources)


def build_chainlink(cfg: Config) -> StreamFeed | None:
    if not cfg.chainlink_ws_url:
        return None
    return StreamFeed(ChainlinkPrices(), cfg.chainlink_ws_url, cfg.assets, max(1.0, cfg.stale_after))


def start_streams(chain: FallbackChain, *others: StreamFeed | None,
                  on_message: Callable[[list[str]], None] | None = None,
                  loop: asyncio.AbstractEventLoop | None = None) -> list[StreamFeed]:
    """Start the chain's streams and `others`: as tasks on `loop` (the engine's main thread runs it,
    schedule.LoopWakeup), or each on a thread of its own. `on_message(assets)`, if given, hears each
    accepted message (on the stream's loop: it must only signal, e.g. LoopWakeup.notify)."""
    streams = [f for f in chain.feeds if isinstance(f, StreamFeed)] + [o for o in others if o is not None]
    for s in streams:
        if on_message is not None:
            s.on_message = on_message
        if loop is None:
            s.start()
        else:
            s.attach(loop)
    return streams


def stop_streams(streams: list[StreamFeed], loop: asyncio.AbstractEventLoop | None, timeout: float = 1.5) -> None:
    """End the streams started by start_streams: their tasks cancelled and given up to `timeout` s on the
    loop to close their connections (then the loop is closed), or their threads stopped."""
    if loop is None:
        for s in streams:
            s.stop()
        return
    tasks = [t for t in (s.cancel() for s in streams) if t is not None]
    try:
        if tasks and not loop.is_closed():
            loop.run_until_complete(asyncio.wait(tasks, timeout=timeout))
    except SystemExit as exc:
        # The stop request (shutdown.ShutdownRequested) that ended the engine can surface once more from a
        # task it interrupted, when that task finishes closing: we are stopping already.
        log.info("streams stopped (%s)", exc)
    finally:
        loop.close()


__all__ = [
    "MAX_JUMP",
    "AllFeedsFailed",
    "BadPayload",
    "BinanceFeed",
    "BinanceTrades",
    "ChainlinkPrices",
    "CoinbaseFeed",
    "FallbackChain",
    "FeedConnectionError",
    "FeedError",
    "FeedHTTPError",
    "FeedTimeout",
    "FeedUnavailable",
    "ImplausiblePrice",
    "PriceFeed",
    "ReplayFeed",
    "SimFeed",
    "StreamFeed",
    "Tick",
    "build_chainlink",
    "build_feed",
    "build_source",
    "check_price",
    "start_streams",
    "stop_streams",
]
