"""Event-driven publishing (issue 14, "Streaming prices"): the real `python -m signal_engine` against a
local WebSocket server speaking Binance's recorded aggTrade shape (tests/ws_server.py) and a local REST
server (tests/feed_server.py) behind it. SIGNAL_INTERVAL is 5 s, so only the event path can explain a
streamed price in signal.json well before the next scheduled tick; a burst is coalesced (PUBLISH_BURST
writes, then one per PUBLISH_MIN_GAP_S) and its last price is the one published; a stream that stops leaves the
schedule (REST fallback, then staleness) working as before."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.durable_files import read_json
from signal_engine.schedule import PUBLISH_BURST, PUBLISH_MIN_GAP_S, next_tick_at
from tests.feed_server import FeedServer
from tests.waiting import wait_for
from tests.ws_server import WsServer

REPO = Path(__file__).resolve().parent.parent
INTERVAL = 5.0
WINDOW = 900


@pytest.fixture
def start_engine(iso_env, tmp_path):
    """start(interval) -> (ws server, REST server, signal.json path, log path): a paper engine streaming BTC."""
    ws, rest = WsServer().start(), FeedServer().start()
    procs: list[subprocess.Popen] = []
    log = tmp_path / "engine.log"

    def start(interval: float):
        env = dict(iso_env, MODE="paper", ASSETS="BTC", FEEDS="binance", BINANCE_URL=rest.url, PRICE_STREAM="binance",
                   BINANCE_WS_URL=ws.url, CHAINLINK_WS_URL="off", SIGNAL_INTERVAL=str(interval), STALE_AFTER="2",
                   WINDOW_SECONDS=str(WINDOW))
        with open(log, "wb") as fh:
            procs.append(subprocess.Popen([sys.executable, "-m", "signal_engine"], cwd=REPO, env=env,
                                          stdout=subprocess.DEVNULL, stderr=fh))
        return ws, rest, Path(iso_env["STATE_DIR"]) / "signal.json", log

    try:
        yield start
    finally:
        t0 = time.monotonic()
        for proc in procs:
            proc.terminate()              # SIGTERM while it waits for a wake-up: exit 0 within 2 s, as before
        rcs = [proc.wait(timeout=10) for proc in procs]
        took = time.monotonic() - t0
        ws.stop()
        rest.stop()
        assert rcs == [0] * len(procs) and took < 2.0, (rcs, took, log.read_text()[-2000:])


def _doc(path: Path) -> dict | None:
    r = read_json(path)
    return r.data if r.ok and r.data.get("price") is not None else None


def _published(path: Path, price: float):
    d = _doc(path)
    return (d, time.time()) if d and d["price"] == price and d["source"] == "binance_ws" else None


def _ms() -> int:
    return int(time.time() * 1000)


def test_a_streamed_price_is_in_signal_json_long_before_the_next_tick_and_a_burst_is_coalesced(start_engine):
    ws, _rest, path, _log = start_engine(INTERVAL)
    wait_for(lambda: _doc(path), 20, "the first signal (REST)")
    wait_for(lambda: ws.clients == 1, 10, "the stream to connect")
    clean, price = 0, 89600.0
    while clean < 3:                              # three messages far enough from a scheduled tick to prove it
        price += 1.25
        sent = time.time()
        ws.send_trade("BTCUSDT", f"{price:.2f}", _ms())
        doc, seen = wait_for(lambda p=price: _published(path, p), 3, f"the streamed price {price} in signal.json")
        if next_tick_at(sent, INTERVAL, WINDOW) - sent < 0.5:
            continue                              # a scheduled tick was due anyway: not evidence either way
        assert seen < next_tick_at(sent, INTERVAL, WINDOW), "published by the schedule, not by the message"
        assert seen - sent < 0.4 and doc["stale"] is False and doc["prob_up"] is not None
        clean += 1

    last = {"price": price}

    def streaming_and_far_from_a_tick():
        """Trades keep flowing (a stream silent for STALE_AFTER / 2 is cut) until the last one is published
        at least 1.2 s before a scheduled tick: the burst's writes are then all the event path's."""
        d = _doc(path)
        if ws.clients == 1 and d and d["price"] == last["price"] \
                and next_tick_at(time.time(), INTERVAL, WINDOW) - time.time() > 1.2:
            return d
        last["price"] += 0.5
        ws.send_trade("BTCUSDT", f"{last['price']:.2f}", _ms())
        return None

    before = wait_for(streaming_and_far_from_a_tick, 2 * INTERVAL, "a streamed price 1.2 s before a tick")["seq"]
    price = last["price"]
    t0 = time.monotonic()
    for k in range(150):                          # a burst: 150 trades as fast as the server sends them
        price += 0.5
        ws.send_trade("BTCUSDT", f"{price:.2f}", _ms() + k)
    burst_s = time.monotonic() - t0
    doc, _ = wait_for(lambda: _published(path, price), 3, "the burst's last price in signal.json")
    writes = doc["seq"] - before
    assert 1 <= writes <= PUBLISH_BURST + burst_s / PUBLISH_MIN_GAP_S + 1, (writes, burst_s)   # coalesced
    assert writes < 150


def test_a_stream_that_stops_leaves_the_schedule_rest_then_staleness_then_recovery(start_engine):
    ws, rest, path, log = start_engine(1.0)
    wait_for(lambda: ws.clients == 1, 20, "the stream to connect")
    ws.send_trade("BTCUSDT", "89700.50", _ms())
    wait_for(lambda: _published(path, 89700.5), 5, "the streamed price")
    ws.silent = True                              # the stream stops: REST (89617.01) takes over on the schedule
    doc = wait_for(lambda: (d := _doc(path)) and d["source"] == "binance" and d, 5, "REST on the schedule")
    assert doc["stale"] is False and doc["price"] == 89617.01
    rest.set_fault("binance", "http500")          # and now REST fails too: stale within STALE_AFTER + a tick
    doc = wait_for(lambda: (d := _doc(path)) and d["stale"] and d, 2 + 2.0, "a stale signal")
    assert doc["prob_up"] is None and doc["direction"] == "NO_TRADE"
    ws.silent = False
    wait_for(lambda: ws.clients >= 1, 10, "the stream to reconnect")
    price = 89720.0

    def streamed_again():
        nonlocal price
        price += 0.25                             # a new price each try (the reconnect may eat the first)
        ws.send_trade("BTCUSDT", f"{price:.2f}", _ms())
        return wait_for(lambda: _published(path, price), 1, "the price after the reconnect")

    doc, _ = wait_for(_as_none_on_timeout(streamed_again), 10, "a fresh streamed signal")
    assert doc["stale"] is False
    text = log.read_text()
    assert "signal is STALE" in text and "fresh again" in text


def _as_none_on_timeout(fn):
    def go():
        try:
            return fn()
        except AssertionError:
            return None
    return go
