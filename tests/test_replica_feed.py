"""The replica's Binance-shaped price endpoints, and the signal engine's `replica` feed reading them.

Unit tests drive replica/binance_api.py on a ReplicaState with a fixed clock; the process tests
run a real replica (tests/replica_support.py) and the real feed / `python -m signal_engine --once`
against it, and check the engine sees the very path the replica settles on.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from core.config import load_config
from core.window_grid import parse_iso_utc, window_at
from replica import binance_api
from replica.pricing import PricePath
from replica.state import ReplicaState, Settings
from signal_engine.feeds import BinanceFeed, build_feed
from signal_engine.publisher import HISTORY_KEEP_S
from tests.replica_support import REPO, start_replica

NOW = 1_795_325_753.25          # a fixed clock, 53.25 s into a minute
WINDOW_S = 60                   # the demo's default window
SEED = 7


@pytest.fixture
def state() -> ReplicaState:
    return ReplicaState(Settings(window_seconds=WINDOW_S, seed=SEED), clock=lambda: NOW)


def path_range(path: PricePath, t0: float, t1: float) -> tuple[float, float]:
    """The lowest and highest price of the path between t0 and t1 (10 ms samples)."""
    prices = [path.price(t) for t in np.arange(t0, t1 + 0.01, 0.01)]
    return min(prices), max(prices)


# ---- unit: the endpoints' shapes and semantics ----------------------------------------------


def test_ticker_is_the_path_price_now_and_unknown_symbols_are_binance_errors(state):
    status, doc = binance_api.ticker_price(state, {"symbol": "BTCUSDT"})
    assert status == 200 and doc == {"symbol": "BTCUSDT", "price": f"{state.paths['BTC'].price(NOW):.2f}"}
    assert float(doc["price"]) == PricePath("BTC", SEED, WINDOW_S).price(NOW)
    assert binance_api.ticker_price(state, {"symbol": "DOGEUSDT"}) == (400, {"code": -1121, "msg": "Invalid symbol."})
    assert binance_api.ticker_price(state, {"symbol": "BTCUSD"})[0] == 400
    status, docs = binance_api.ticker_price(state, {})
    assert status == 200 and [d["symbol"] for d in docs] == ["BTCUSDT", "ETHUSDT"]


def test_klines_are_binance_rows_ending_with_the_open_candle(state):
    path = state.paths["BTC"]
    status, rows = binance_api.klines(state, {"symbol": "BTCUSDT", "interval": "1m", "limit": "5"})
    assert status == 200 and len(rows) == 5
    current = int(NOW // 60 * 60)
    assert [r[0] for r in rows] == [(current - 60 * k) * 1000 for k in range(4, -1, -1)]
    for i, r in enumerate(rows):
        assert len(r) == 12 and isinstance(r[0], int) and r[6] == r[0] + 59_999
        assert all(isinstance(x, str) for x in r[1:6])
        o, h, lo, c = (float(x) for x in r[1:5])
        assert lo <= min(o, c) <= max(o, c) <= h
        assert o == path.price(r[0] / 1000)
        if i < 4:    # a completed candle closes at the path's price at its close time = the next open
            assert c == path.price(r[0] / 1000 + 60) == float(rows[i + 1][1])
    assert float(rows[-1][4]) == path.price(NOW)            # the open candle's close is the price now


def test_klines_time_range_limit_and_errors(state):
    def ask(**q):
        return binance_api.klines(state, {"symbol": "ETHUSDT", "interval": "1m", **q})

    current_ms = int(NOW // 60 * 60) * 1000
    start = current_ms - 10 * 60_000
    status, rows = ask(startTime=str(start), limit="3")
    assert status == 200 and [r[0] for r in rows] == [start, start + 60_000, start + 120_000]
    _, rows = ask(startTime=str(start + 1), endTime=str(start + 3 * 60_000))
    assert [r[0] for r in rows] == [start + 60_000, start + 120_000, start + 180_000]
    _, rows = ask(endTime=str(start), limit="2")
    assert [r[0] for r in rows] == [start - 60_000, start]
    assert ask(startTime=str(current_ms + 3_600_000)) == (200, [])        # nothing from the future
    assert len(ask(limit="5000")[1]) == 1000 and len(ask()[1]) == 500     # Binance's cap and default
    _, hourly = binance_api.klines(state, {"symbol": "BTCUSDT", "interval": "1h", "limit": "2"})
    assert hourly[-1][0] % 3_600_000 == 0 and hourly[-1][6] == hourly[-1][0] + 3_599_999
    assert ask(interval="7m") == (400, {"code": -1120, "msg": "Invalid interval."})
    assert ask(limit="ten")[0] == 400 and ask(limit="ten")[1]["code"] == -1100
    assert binance_api.klines(state, {"symbol": "XYZUSDT", "interval": "1m"})[1]["code"] == -1121


# ---- process: a real replica, the real feed and engine -----------------------------------------


@pytest.fixture(scope="module")
def rep(tmp_path_factory: pytest.TempPathFactory):
    r = start_replica(tmp_path_factory.mktemp("replica-feed"), window_seconds=WINDOW_S, price_to_beat_delay=0,
                      seed=SEED)
    try:
        yield r
    finally:
        r.stop()


def test_http_routes_answer_binance_shapes(rep):
    status, doc = rep.request("GET", "/api/v3/ticker/price?symbol=BTCUSDT")
    assert status == 200 and doc["symbol"] == "BTCUSDT" and float(doc["price"]) > 0
    assert rep.request("GET", "/api/v3/ticker/price?symbol=NOPEUSDT") == (400, {"code": -1121,
                                                                                "msg": "Invalid symbol."})
    status, rows = rep.request("GET", "/api/v3/klines?symbol=ETHUSDT&interval=1m&limit=3")
    assert status == 200 and len(rows) == 3 and len(rows[0]) == 12
    assert rep.request("GET", "/api/v3/nothing")[0] == 404


def test_replica_feed_tick_is_the_venue_price_and_backfill_is_its_path(rep, tmp_path):
    cfg = load_config({"FEEDS": "replica", "REPLICA_PORT": str(rep.port), "STATE_DIR": str(tmp_path),
                       "LOG_DIR": str(tmp_path), "PROFILE_DIR": str(tmp_path)}, dotenv_path=tmp_path / "no.env")
    chain = build_feed(cfg)
    assert isinstance(chain.feeds[0], BinanceFeed) and chain.feeds[0].name == "replica"
    path = PricePath("BTC", SEED, WINDOW_S)
    t0 = time.time()
    before = next(m for m in rep.markets() if m["asset"] == "BTC")["price"]
    tick = chain.latest("BTC")
    after = next(m for m in rep.markets() if m["asset"] == "BTC")["price"]
    t1 = time.time()
    assert tick.source == "replica" and tick.asset == "BTC"
    lo, hi = path_range(path, t0 - 0.05, t1 + 0.05)
    assert lo <= before <= hi and lo <= after <= hi       # the venue's price follows this path ...
    assert lo <= tick.price <= hi                         # ... and so does the engine's tick
    assert abs(tick.price - before) <= hi - lo and abs(tick.price - after) <= hi - lo

    times, prices, source = chain.history("ETH", HISTORY_KEEP_S)
    eth = PricePath("ETH", SEED, WINDOW_S)
    assert source == "replica" and times.size >= HISTORY_KEEP_S / 60 and times[-1] <= time.time()
    assert np.all(np.diff(times) == 60.0)
    assert list(prices) == [eth.price(t) for t in times]   # each 1-minute close is the path at that time


def test_engine_once_reads_the_replica_and_knows_the_venues_price_to_beat(rep, iso_env):
    env = {**iso_env, "FEEDS": "replica", "REPLICA_PORT": str(rep.port), "ASSETS": "BTC,ETH",
           "WINDOW_SECONDS": str(WINDOW_S)}
    proc = subprocess.run([sys.executable, "-m", "signal_engine", "--once"], cwd=REPO, env=env,
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    docs = {d["asset"]: d for d in map(json.loads, proc.stdout.decode().strip().splitlines())}
    assert set(docs) == {"BTC", "ETH"}
    markets = {m["asset"]: m for m in rep.markets()}
    for asset, doc in docs.items():
        path = PricePath(asset, SEED, WINDOW_S)
        assert doc["source"] == "replica" and doc["stale"] is False and doc["prob_up"] is not None, \
            (doc["reason"], proc.stderr.decode()[-3000:])
        assert (doc["model"], doc["vol_input"]) == ("prob_up-v2", "range"), \
            proc.stderr.decode()[-3000:]                                      # the replica serves candles
        ts = parse_iso_utc(doc["price_time"])
        # price_time is the receive time (ms): the replica priced it earlier, by the request's round
        # trip (over 50 ms on a loaded machine), within the feed's timeout
        lo, hi = path_range(path, ts - 2.0, ts + 0.05)
        assert lo <= doc["price"] <= hi
        window = window_at(asset, ts, WINDOW_S)
        assert doc["window"]["open_price"] == path.price(window.start)
        m = markets[asset]
        if m["window_start"] == window.start:                # same window still open on the venue
            assert doc["window"]["open_price"] == m["price_to_beat"]
