"""Closed 1-minute candles for prob_up v2's range blend: the feeds' candles(), the book, the refresher."""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import pytest

from signal_engine import model
from signal_engine.candles import CANDLE_KEEP, REFRESH_MINUTES, CandleBook, CandleRefresher, candle_source
from signal_engine.feeds import BadPayload, BinanceFeed, CoinbaseFeed, FeedHTTPError, SimFeed
from signal_engine.vol_params import load_param_file
from tests.feed_server import running as feed_server_running
from tests.waiting import wait_for

TIMEOUT = 0.5


server = pytest.fixture(scope="module", name="server")(feed_server_running)


@pytest.fixture(autouse=True)
def _reset(server):
    for ex in ("binance", "coinbase"):
        server.set_fault(ex, "ok")


@pytest.mark.parametrize("cls", [BinanceFeed, CoinbaseFeed])
def test_both_exchanges_give_closed_candles_oldest_first_with_their_high_and_low(server, cls):
    mo, hi, lo = cls(server.url, TIMEOUT).candles("BTC", 30)
    assert mo.size == 30 and np.all(np.diff(mo) == 60.0)
    assert mo[-1] + 60.0 <= time.time()                       # the candle still forming is left out
    assert np.all(lo < hi) and np.allclose(hi / lo, 1.0005 / 0.9995)   # Coinbase's [t, low, high, ...] read right


def test_a_bad_answer_is_a_feed_error_and_the_book_keeps_what_it_had(server, caplog):
    book = CandleBook()
    src = BinanceFeed(server.url, TIMEOUT)
    ref = CandleRefresher(src, ["BTC"], book)
    assert ref.refresh("BTC") and book.snapshot("BTC")[0].size == CANDLE_KEEP
    before = book.snapshot("BTC")
    for fault, err in (("html", BadPayload), ("http500", FeedHTTPError)):
        server.set_fault("binance", fault)
        with pytest.raises(err):
            src.candles("BTC", 5)
        with caplog.at_level(logging.WARNING, logger="signal_engine.candles"):
            assert not ref.refresh("BTC")
        assert all(np.array_equal(a, b) for a, b in zip(book.snapshot("BTC"), before, strict=True))
    assert sum("cannot fetch 1-minute candles" in r.message for r in caplog.records) == 1   # once per episode
    server.set_fault("binance", "ok")
    with caplog.at_level(logging.WARNING, logger="signal_engine.candles"):
        assert ref.refresh("BTC")
    assert any("candles from binance again" in r.message for r in caplog.records)


def test_the_book_is_bounded_drops_insane_rows_and_a_refresh_asks_only_for_what_is_missing(server):
    book = CandleBook(keep=10)
    mo = np.arange(20) * 60.0 + 6_000_000.0
    hi = np.full(20, 101.0)
    lo = np.full(20, 99.0)
    lo[3], hi[4] = 102.0, math.nan                              # low above high, NaN high: dropped
    assert book.merge("btc", (mo, hi, lo)) == 10
    got = book.snapshot("BTC")
    assert got[0].tolist() == mo[10:].tolist() and book.last_minute("BTC") == mo[-1]

    asked = []

    class Counting:
        name = "counting"

        def candles(self, asset, minutes):
            asked.append(minutes)
            return BinanceFeed(server.url, TIMEOUT).candles(asset, minutes)

    fresh = CandleBook()
    ref = CandleRefresher(Counting(), ["BTC"], fresh)
    assert ref.refresh("BTC") and ref.refresh("BTC")
    assert asked[0] == CANDLE_KEEP and asked[1] <= REFRESH_MINUTES + 1


def test_only_feeds_with_candles_are_sources(server):
    sim = SimFeed(seed=1)
    assert candle_source([sim]) is None
    b = BinanceFeed(server.url, TIMEOUT)
    src = candle_source([sim, b])          # the same exchange, on an HTTP session of its own (its own thread)
    assert type(src) is BinanceFeed and src.http.base_url == b.http.base_url and src.http.timeout == b.http.timeout
    assert src.http.session is not b.http.session and b.http.requests_made == 0
    src.candles("BTC", 3)
    assert src.http.requests_made == 1 and b.http.requests_made == 0


def test_the_refresher_thread_fills_the_book_and_stops(server):
    book = CandleBook()
    ref = CandleRefresher(BinanceFeed(server.url, TIMEOUT), ["BTC", "ETH"], book)
    ref.start()
    try:
        wait_for(lambda: book.snapshot("BTC") is not None and book.snapshot("ETH") is not None, 10,
                 "the refresher's first fill")
    finally:
        ref.stop()
    assert not ref.is_alive()


def test_prob_up_says_which_volatility_input_it_used(server):
    """With the candles the model's range blend ("range"), without them its close-only blend ("close")."""
    vol = load_param_file(model.__file__.replace("model.py", "params/prob_up-v2.json"))["BTC"]
    mo, hi, lo = BinanceFeed(server.url, TIMEOUT).candles("BTC", CANDLE_KEEP)
    now = mo[-1] + 60.0
    times = np.concatenate((mo, [now]))
    rng = np.random.default_rng(3)
    prices = 89_000.0 * np.exp(np.cumsum(rng.normal(0, 3e-4, times.size)))
    start = math.floor(now / 900) * 900
    with_hl = model.evaluate(times, prices, now, start, 900, vol=vol, minute_hl=(mo, hi, lo))
    without = model.evaluate(times, prices, now, start, 900, vol=vol)
    assert (with_hl["model"], with_hl["vol_input"]) == ("prob_up-v2", "range")
    assert (without["model"], without["vol_input"]) == ("prob_up-v2", "close")
    assert with_hl["sigma"] != without["sigma"]
    assert model.evaluate(times, prices, now, start, 900)["vol_input"] is None     # v1
