"""Price feeds against a local HTTP server speaking the Binance/Coinbase shapes, each fault a test."""

from __future__ import annotations

import gzip
import math
import time

import numpy as np
import pytest

from signal_engine import model
from signal_engine.feeds import (
    AllFeedsFailed,
    BadPayload,
    BinanceFeed,
    CoinbaseFeed,
    FallbackChain,
    FeedHTTPError,
    FeedTimeout,
    FeedUnavailable,
    ImplausiblePrice,
    ReplayFeed,
    SimFeed,
    check_price,
)
from tests.feed_server import running as feed_server_running

TIMEOUT = 0.3


server = pytest.fixture(scope="module", name="server")(feed_server_running)


@pytest.fixture(autouse=True)
def _reset(server):
    for ex in ("binance", "coinbase"):
        server.set_price(ex, {"binance": 89617.01, "coinbase": 89620.55}[ex])
        server.requests[ex] = 0


def chain_for(server) -> FallbackChain:
    return FallbackChain([BinanceFeed(server.url, TIMEOUT), CoinbaseFeed(server.url, TIMEOUT)])


# ---- each source, normal answers ----------------------------------------------------------


def test_binance_latest_parses_the_ticker(server):
    tick = BinanceFeed(server.url, TIMEOUT).latest("btc")
    assert (tick.asset, tick.price, tick.source) == ("BTC", 89617.01, "binance")
    assert abs(tick.ts - time.time()) < 2


def test_coinbase_latest_parses_the_ticker(server):
    tick = CoinbaseFeed(server.url, TIMEOUT).latest("ETH")
    assert (tick.asset, tick.price, tick.source) == ("ETH", 89620.55, "coinbase")


def test_binance_history_drops_the_open_candle_and_is_ascending(server):
    times, prices = BinanceFeed(server.url, TIMEOUT).history("BTC", 3600)
    assert times.size == 61                      # limit 62, the still-open candle dropped
    assert np.all(np.diff(times) == 60.0)
    assert times[-1] <= time.time() < times[-1] + 60.5
    assert np.all(np.abs(prices / 89617.01 - 1) < 0.001)


def test_coinbase_history_sorts_newest_first_candles_and_keeps_the_span(server):
    times, prices = CoinbaseFeed(server.url, TIMEOUT).history("BTC", 3600)
    assert np.all(np.diff(times) == 60.0)
    assert times[-1] <= time.time()
    assert 3600 <= times[-1] - times[0] <= 3720
    assert times.size == prices.size


# ---- each fault: typed error at the source, fallback in the chain -------------------------


def test_timeout_is_typed_and_falls_back(server):
    server.set_fault("binance", "hang")
    t0 = time.monotonic()
    with pytest.raises(FeedTimeout):
        BinanceFeed(server.url, TIMEOUT).latest("BTC")
    assert time.monotonic() - t0 < 4 * TIMEOUT          # no retry on timeout: one budget spent
    chain = chain_for(server)
    tick = chain.latest("BTC")
    assert (tick.source, tick.price) == ("coinbase", 89620.55)
    assert chain.dropped["timeout"] == 1


def test_a_backfill_waits_longer_than_a_price_does(server):
    """Hundreds of candles (the backfill, the candle book's first fill) get BULK_TIMEOUT_S: a slow
    answer is worth having (nothing trades without it); a price never waits past FEED_TIMEOUT."""
    from signal_engine.feeds.rest import BULK_TIMEOUT_S

    server.set_fault("binance", "slow")
    server.hang_s = 1.0
    try:
        assert TIMEOUT < server.hang_s < BULK_TIMEOUT_S
        with pytest.raises(FeedTimeout):
            BinanceFeed(server.url, TIMEOUT).latest("BTC")
        times, prices = BinanceFeed(server.url, TIMEOUT).history("BTC", 3600)
        assert times.size >= 60 and np.all(np.isfinite(prices))
        minute_open, high, low = BinanceFeed(server.url, TIMEOUT).candles("BTC", 780)
        assert minute_open.size >= 60 and np.all(high >= low)
        with pytest.raises(FeedTimeout):                       # a few candles (the minute's refresh): not bulk
            BinanceFeed(server.url, TIMEOUT).candles("BTC", 3)
    finally:
        server.hang_s = 5.0
        server.set_fault("binance", "ok")


def test_http_5xx_is_retried_a_bounded_number_of_times_then_falls_back(server):
    server.set_fault("binance", "http500")
    with pytest.raises(FeedHTTPError) as err:
        BinanceFeed(server.url, TIMEOUT, retries=2).latest("BTC")
    assert err.value.status == 500 and server.requests["binance"] == 3
    chain = chain_for(server)
    assert chain.latest("BTC").source == "coinbase"
    assert chain.dropped["http"] == 1


def test_a_single_503_is_absorbed_by_the_retry(server):
    server.set_fault("binance", "http503_once")
    tick = BinanceFeed(server.url, TIMEOUT, retries=1).latest("BTC")
    assert tick.price == 89617.01 and server.requests["binance"] == 2


def test_html_instead_of_json_is_a_bad_payload(server):
    server.set_fault("binance", "html")
    with pytest.raises(BadPayload, match="not JSON"):
        BinanceFeed(server.url, TIMEOUT).latest("BTC")
    chain = chain_for(server)
    assert chain.latest("BTC").source == "coinbase"
    assert chain.dropped["bad_payload"] == 1


@pytest.mark.parametrize("fault", ["zero", "negative", "nan"])
def test_impossible_prices_are_dropped_and_counted(server, fault):
    server.set_fault("binance", fault)
    chain = chain_for(server)
    tick = chain.latest("BTC")
    assert (tick.source, tick.price) == ("coinbase", 89620.55)
    assert chain.dropped["implausible"] == 1 and chain.accepted["binance"] == 0


@pytest.mark.parametrize("fault", ["zero", "negative", "nan"])
def test_impossible_prices_on_the_last_source_leave_no_price(server, fault):
    server.set_fault("binance", fault)
    server.set_fault("coinbase", fault)
    chain = chain_for(server)
    with pytest.raises(AllFeedsFailed) as err:
        chain.latest("BTC")
    assert [type(e) for e in err.value.errors] == [ImplausiblePrice, ImplausiblePrice]
    assert chain.dropped["implausible"] == 2


def test_a_fifty_percent_jump_is_dropped_and_the_next_source_used(server):
    chain = chain_for(server)
    assert chain.latest("BTC").source == "binance"
    server.set_price("binance", 89617.01 * 1.55)
    chain._cool_until.clear()
    tick = chain.latest("BTC")
    assert (tick.source, tick.price) == ("coinbase", 89620.55)
    assert chain.dropped["implausible"] == 1
    # a 10% move is a big move, not an impossible one
    server.set_price("binance", 89617.01 * 1.10)
    chain._cool_until.clear()
    assert chain.latest("BTC").source == "binance"


def test_check_price_bounds():
    assert check_price("x", "BTC", 100.0, 150.0) == 100.0          # -33%: allowed
    with pytest.raises(ImplausiblePrice):
        check_price("x", "BTC", 100.0, 201.0)                    # -50.2%
    with pytest.raises(ImplausiblePrice):
        check_price("x", "BTC", math.inf)


def test_failed_source_cools_down_and_chain_reports_each_error(server):
    server.set_fault("binance", "http500")
    chain = chain_for(server)
    assert chain.latest("BTC").source == "coinbase"
    before = server.requests["binance"]
    assert chain.latest("BTC").source == "coinbase"             # binance cooling down: not asked
    assert server.requests["binance"] == before
    server.set_fault("coinbase", "html")
    with pytest.raises(AllFeedsFailed) as err:
        chain.latest("BTC")                                       # all cooling: all tried anyway
    assert "binance" in str(err.value) and "coinbase" in str(err.value)


def test_unknown_symbol_is_an_http_error(server):
    feed = BinanceFeed(server.url, TIMEOUT, quote="EUR")
    with pytest.raises(FeedHTTPError) as err:
        feed.latest("BTC")
    assert err.value.status == 400 and server.requests["binance"] == 1   # 4xx: no retry


def test_chain_history_falls_back(server):
    server.set_fault("binance", "html")
    times, prices, source = chain_for(server).history("BTC", 3600)
    assert source == "coinbase" and times.size > 50


# ---- simulated feed -----------------------------------------------------------------------


class FakeClock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_sim_is_seeded_realistic_and_backfills_an_hour():
    def run(seed):
        clock = FakeClock(1_767_225_600.0)
        feed = SimFeed(seed, clock=clock)
        times, prices = feed.history("BTC", model.HISTORY_NEEDED_S)
        ticks = []
        for _ in range(5):
            clock.t += 1.0
            ticks.append(feed.latest("BTC").price)
        return times, prices, ticks, feed

    times, prices, ticks, feed = run(7)
    assert times[-1] - times[0] >= model.HISTORY_NEEDED_S - 1
    assert 70_000 < prices[-1] < 110_000
    assert run(7)[2] == ticks and run(8)[2] != ticks
    # 1-minute log-return volatility ~0.08% (regimes wander it between ~0.05% and ~0.14%)
    minute = prices[::60]
    sd = float(np.std(np.diff(np.log(minute))))
    assert 0.0004 < sd < 0.0016, sd
    # features work from the first tick
    ev = model.evaluate(times, prices, times[-1], times[-1] - 30, 60)
    assert ev["basis"]["momentum_120s"] is not None and ev["prob_up"] is not None
    eth = SimFeed(7, clock=FakeClock(1_767_225_600.0)).latest("ETH")
    assert 2_000 < eth.price < 4_500
    with pytest.raises(FeedUnavailable):
        feed.history("BTC", 60)                                   # only before the first price


# ---- replay -----------------------------------------------------------------------------------


def _write_candles(path, opens_ms, closes):
    lines = ["open_time,open,high,low,close,volume"]
    lines += [f"{t},{c},{c},{c},{c},1.0" for t, c in zip(opens_ms, closes, strict=True)]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))


def test_replay_plays_at_speed_respects_gaps_and_no_feature_spans_one(tmp_path):
    t0 = 1_700_000_000_000 // 60000 * 60000
    first = [t0 + 60000 * k for k in range(90)]                    # 90 minutes
    second = [first[-1] + 60000 * (30 + k) for k in range(30)]      # a 29-minute hole, then 30 more
    opens = first + second
    closes = [30000.0 + k for k in range(len(opens))]
    path = tmp_path / "btc.csv.gz"
    _write_candles(path, opens, closes)
    wall = FakeClock(0.0)
    feed = ReplayFeed(path, "BTC", speed=60.0, wall=wall)
    assert feed.clock() == t0 / 1000 + 60 + 3660                    # an hour of data behind the start
    times, prices = feed.history("BTC", 3600)
    assert times.size == 61 and times[-1] == feed.clock()            # both ends of the hour included
    tick = feed.latest("BTC")
    assert tick.ts == times[-1] and tick.price == prices[-1]
    wall.t = 1.0                                                     # one wall second = one data minute
    assert feed.latest("BTC").ts == tick.ts + 60
    with pytest.raises(FeedUnavailable, match="ETH|for BTC"):
        feed.latest("ETH")
    # walk through the hole: unavailable inside it, never an invented price
    hole_start = (first[-1] / 1000 + 60)
    wall.t = (hole_start + 300 - feed.start) / 60.0
    with pytest.raises(FeedUnavailable, match="gap"):
        feed.latest("BTC")
    resume = second[0] / 1000 + 60
    wall.t = (resume + 60 - feed.start) / 60.0
    after = feed.latest("BTC")
    assert after.ts == resume + 60
    # the engine's history holds both sides; no momentum/volatility across the hole
    all_t = np.array([t / 1000 + 60 for t in opens])
    all_p = np.array(closes)
    keep = all_t <= after.ts
    ev = model.evaluate(all_t[keep], all_p[keep], after.ts, after.ts - 30, 60)
    assert ev["basis"]["momentum_120s"] is None and ev["basis"]["volatility_state"] == "unknown"
    assert ev["basis"]["momentum_60s"] is not None                   # inside the new segment: computed
    wall.t = 10_000.0
    with pytest.raises(FeedUnavailable, match="end of replay"):
        feed.latest("BTC")
