"""Streaming prices (signal_engine/feeds/stream.py) against local WebSocket servers speaking the recorded
Binance and RTDS shapes: every fault of issue 14 (close, garbage, silent stall, a price 50 % off, replayed
timestamps), the reconnect with back-off, REST taking over in the same fallback chain, and the Chainlink
reference reaching signal.json."""

from __future__ import annotations

import json
import math
import time

import pytest

from signal_engine.feeds import BinanceFeed, FallbackChain, FeedUnavailable, SimFeed, StreamFeed
from signal_engine.feeds.stream import BinanceTrades, ChainlinkPrices
from signal_engine.publisher import SignalEngine
from tests.feed_server import FeedServer
from tests.test_signal_engine import make_cfg
from tests.waiting import wait_for
from tests.ws_server import WsServer

SILENCE = 0.6


@pytest.fixture
def ws():
    srv = WsServer().start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def rest():
    srv = FeedServer().start()
    try:
        yield srv
    finally:
        srv.stop()


def binance_stream(ws: WsServer, **kw) -> StreamFeed:
    return StreamFeed(BinanceTrades(), ws.url, ["BTC", "ETH"], SILENCE, backoff_base=0.05, backoff_max=0.2, **kw)


def now_ms() -> int:
    return int(time.time() * 1000)


def test_trades_arrive_and_every_bad_message_is_dropped_and_counted(ws):
    feed = binance_stream(ws).start()
    try:
        wait_for(lambda: ws.clients == 1, 5, "the stream to connect")
        assert ws.paths == ["/stream?streams=btcusdt@aggTrade/ethusdt@aggTrade"]
        t = now_ms()
        ws.send_trade("BTCUSDT", "89617.01", t)
        tick = wait_for(lambda: _latest(feed, "BTC"), 5, "the first trade")
        assert tick.price == 89617.01 and tick.source == "binance_ws" and abs(tick.ts - time.time()) < 2
        ws.send_raw("not json at all")                                  # garbage
        ws.send_raw(json.dumps({"stream": "btcusdt@kline_1m", "data": {"e": "kline"}}))   # another shape
        ws.send_trade("BTCUSDT", str(89617.01 * 0.5), t + 10)            # 50 % off
        ws.send_trade("BTCUSDT", "89600.00", t - 5000)                  # a replayed, older trade
        ws.send_trade("ETHUSDT", "3012.5", t + 20, kind="trade")        # @trade has the same fields
        wait_for(lambda: _latest(feed, "ETH"), 5, "the ETH trade")
        stats = feed.stats()
        assert stats["bad_message"] == 2 and stats["implausible"] == 1 and stats["old_timestamp"] == 1
        assert feed.latest("BTC").price == 89617.01 and feed.latest("ETH").price == 3012.5
        assert ws.connects == 1                                          # bad messages do not cost the connection
    finally:
        feed.stop()


def test_a_silent_stall_is_noticed_rest_takes_over_and_the_stream_reconnects(ws, rest):
    stream = binance_stream(ws)
    chain = FallbackChain([stream, BinanceFeed(rest.url, 0.5)])
    stream.start()
    try:
        wait_for(lambda: ws.clients == 1, 5, "the stream to connect")
        ws.send_trade("BTCUSDT", "89000.00", now_ms())
        wait_for(lambda: _latest(stream, "BTC"), 5, "the first trade")
        assert chain.latest("BTC").source == "binance_ws"
        ws.silent = True                                                 # connected, nothing sent
        t0 = time.monotonic()
        with pytest.raises(FeedUnavailable, match="no message for"):
            wait_for(lambda: _raises(stream, "BTC"), SILENCE + 1.0, "the stream to count as silent")
            stream.latest("BTC")
        assert time.monotonic() - t0 <= SILENCE + 1.0                   # within STALE_AFTER (2 x SILENCE)
        assert chain.latest("BTC").source == "binance"                  # the same chain's REST answers
        wait_for(lambda: ws.connects >= 2, 5, "a reconnect after the silence")
        ws.silent = False
        wait_for(lambda: ws.clients >= 1, 5, "the new connection")
        ws.send_trade("BTCUSDT", "89010.00", now_ms())
        assert wait_for(lambda: _latest(stream, "BTC"), 5, "trades again").price == 89010.0
        assert stream.stats()["reconnects"] >= 1 and "no message for" in stream.last_error
    finally:
        stream.stop()


def test_a_closed_connection_reconnects_with_backoff_and_jitter(ws):
    feed = binance_stream(ws).start()
    try:
        wait_for(lambda: ws.clients == 1, 5, "the stream to connect")
        ws.close_all()
        wait_for(lambda: ws.connects == 2 and ws.clients == 1, 5, "the reconnect")
        ws.send_trade("BTCUSDT", "90000.00", now_ms())
        assert wait_for(lambda: _latest(feed, "BTC"), 5, "a trade after the reconnect").price == 90000.0
    finally:
        feed.stop()
    d = StreamFeed(BinanceTrades(), "ws://127.0.0.1:9", ["BTC"], 1.0, backoff_base=0.5, backoff_max=30.0,
                   rng=lambda: 0.0)
    assert [d._delay(n) for n in (1, 2, 3, 8, 20)] == [0.25, 0.5, 1.0, 15.0, 15.0]     # half, doubling, capped
    d.rng = lambda: 1.0
    assert [d._delay(n) for n in (1, 7, 20)] == [0.5, 30.0, 30.0]


def test_nobody_listening_is_a_feed_error_not_a_crash():
    feed = StreamFeed(BinanceTrades(), "ws://127.0.0.1:9", ["BTC"], SILENCE, backoff_base=0.05, backoff_max=0.1).start()
    try:
        wait_for(lambda: feed.stats().get("reconnects", 0) >= 2, 5, "a few refused connects")
        with pytest.raises(FeedUnavailable, match="no message yet"):
            feed.latest("BTC")
        assert feed.last_error and ("Connect" in feed.last_error or "OSError" in feed.last_error)
    finally:
        feed.stop()


def test_chainlink_subscription_keepalive_and_the_reference_in_signal_json(ws, tmp_path):
    proto = ChainlinkPrices()
    proto.keepalive = ("PING", 0.2)
    link = StreamFeed(proto, ws.url, ["BTC"], 1.0, backoff_base=0.05, backoff_max=0.2).start()
    cfg = make_cfg(tmp_path, MODE="demo", WINDOW_SECONDS="900", STALE_AFTER="1")
    sim = SimFeed(7)
    engine = SignalEngine(cfg, FallbackChain([sim]), chainlink=link)
    engine.backfill()
    try:
        wait_for(lambda: ws.received[:1], 5, "the subscription")
        assert json.loads(ws.received[0]) == {"action": "subscribe", "subscriptions": [
            {"topic": "crypto_prices_chainlink", "type": "*", "filters": ""}]}
        wait_for(lambda: "PING" in ws.received, 5, "a PING keepalive")
        doc = engine.tick(write=False)["BTC"]
        exchange = doc["price"]
        ws.send_chainlink("sol/usd", 201.5, now_ms())                   # another symbol of the topic: ignored
        ws.send_chainlink("btc/usd", exchange * 1.0002, now_ms())
        wait_for(lambda: link.stats().get("messages", 0) >= 1, 5, "the Chainlink update")
        doc = engine.tick(write=False)["BTC"]
        assert doc["reference_source"] == "chainlink" and doc["reference_price"] == exchange * 1.0002
        assert doc["reference_age_s"] < 1.0 and doc["basis_estimate"] is not None
        assert abs(doc["basis_estimate"] - math.log(1.0002)) < 2e-4   # the sim moved a little meanwhile
        ws.silent = True                                                 # the stream stops: after STALE_AFTER ...
        doc = wait_for(lambda: _ref(engine, "exchange+basis"), 4, "the reference to fall back")
        assert doc["reference_price"] == pytest.approx(doc["price"] * math.exp(doc["basis_estimate"]))
    finally:
        link.stop()


def _latest(feed: StreamFeed, asset: str):
    try:
        return feed.latest(asset)
    except FeedUnavailable:
        return None


def _raises(feed: StreamFeed, asset: str) -> bool:
    return _latest(feed, asset) is None


def _ref(engine: SignalEngine, source: str):
    doc = engine.tick(write=False)["BTC"]
    return doc if doc["reference_source"] == source else None


def test_the_engine_process_streams_trades_and_chainlink_with_rest_behind(ws, rest, iso_env, tmp_path):
    """python -m signal_engine in paper mode against local servers only: the trade stream first, REST
    behind it (backfill, and prices while the stream is silent), Chainlink as the reference."""
    import subprocess
    import sys
    from pathlib import Path

    from core.durable_files import read_json

    link = WsServer().start()
    state = Path(iso_env["STATE_DIR"])
    env = dict(iso_env, MODE="paper", FEEDS="binance", BINANCE_URL=rest.url, PRICE_STREAM="binance",
               BINANCE_WS_URL=ws.url, CHAINLINK_WS_URL=link.url, STALE_AFTER="2")
    with open(tmp_path / "engine.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "signal_engine"], cwd=Path(__file__).resolve().parent.parent,
                                env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        def doc():
            r = read_json(state / "signal.json")
            return r.data if r.ok and r.data.get("price") else None

        first = wait_for(doc, 20, "a signal from REST")
        assert first["source"] == "binance" and first["model"] == "prob_up-v2"
        wait_for(lambda: ws.clients == 1 and link.clients == 1, 10, "both streams connected")

        def streamed():
            ws.send_trade("BTCUSDT", "89650.00", now_ms())
            link.send_chainlink("btc/usd", 89660.0, now_ms())
            d = doc()
            return d if d["source"] == "binance_ws" and d["reference_source"] == "chainlink" else None

        d = wait_for(streamed, 45, "a signal priced by the stream against Chainlink")
        assert d["price"] == 89650.0 and d["reference_price"] == 89660.0 and d["stale"] is False
        assert d["strike_source"] == "feed_open" and d["prob_up"] is not None
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        link.stop()


@pytest.mark.parametrize("var,value,want", [
    ("PRICE_STREAM", "kraken", "PRICE_STREAM"),
    ("CHAINLINK_WS_URL", "https://ws-live-data.polymarket.com", "ws(s)://"),
    ("BINANCE_WS_URL", "wss://", "ws(s)://"),
    ("STRIKE_REQUIRED_AFTER", "-5", "STRIKE_REQUIRED_AFTER"),
])
def test_stream_and_strike_settings_are_checked_up_front(var, value, want):
    from core.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=want.replace("(", r"\(").replace(")", r"\)")):
        load_config({"MODE": "paper", var: value}, check_dirs=False)
    ok = load_config({"MODE": "paper", "PRICE_STREAM": "off", "CHAINLINK_WS_URL": "off"}, check_dirs=False)
    assert ok.price_stream == "off" and ok.chainlink_ws_url == ""
