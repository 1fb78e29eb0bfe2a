"""Price feeds behind one small interface (see base.py), and `build_feed(cfg)`.

Sources: `binance`, `coinbase` (REST), `replica` (the demo replica's own price path, over the
same Binance client), `replay` (a candle file), `sim` (seeded random walk).
`build_feed` returns a FallbackChain over cfg.feeds in order.
"""

from __future__ import annotations

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


def build_feed(cfg: Config) -> FallbackChain:
    """The fallback chain over cfg.feeds. OSError/ValueError if the replay file is unusable."""
    return FallbackChain([build_source(name, cfg) for name in cfg.feeds])


__all__ = [
    "MAX_JUMP",
    "AllFeedsFailed",
    "BadPayload",
    "BinanceFeed",
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
    "Tick",
    "build_feed",
    "build_source",
    "check_price",
]
