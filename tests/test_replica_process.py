"""The replica as a real process: HTTP API, bad input, faults over HTTP, heartbeat, signals, restart."""

from __future__ import annotations

import signal
import socket
import time

import pytest

from core.durable_files import file_age
from tests.replica_support import Replica, ReplicaApiError, start_replica, wait_until


@pytest.fixture(scope="module")
def rep(tmp_path_factory):
    r = start_replica(tmp_path_factory.mktemp("replica"), window_seconds=60)
    try:
        yield r
    finally:
        r.stop()


def place_via_http(rep: Replica, side: str = "UP", amount: str = "10", asset: str = "BTC") -> dict:
    return rep.place_order(asset, side, amount)


def test_health_markets_and_order_fields(rep: Replica):
    rep.reset()
    health = rep.api("GET", "/api/health")
    assert health["pid"] == rep.pid and health["wallet_origin"] == rep.wallet_origin
    markets = rep.markets()
    assert [m["asset"] for m in markets] == ["BTC", "ETH"]
    for m in markets:
        assert m["window_end"] - m["window_start"] == 60 and m["slug"].endswith(str(m["window_start"]))
    ans = place_via_http(rep, "DOWN", "12.5")
    assert ans["status"] == "confirmed"
    (order,) = rep.orders()
    for key in ("id", "asset", "window_start", "slug", "side", "amount", "price", "shares", "fee", "time"):
        assert key in order, key
    assert (order["id"], order["side"], order["amount"]) == (ans["order_id"], "DOWN", 12.5)
    assert rep.api("GET", "/api/orders")["balance"] == pytest.approx(1000 - 12.5)
    assert rep.api("GET", f"/api/orders?asset=btc&window_start={order['window_start']}")["orders"] == [order]
    assert rep.api("GET", "/api/orders?asset=ETH")["orders"] == []


def test_bad_input_answers(rep: Replica):
    for method, path, base in (("GET", "/nope", None), ("GET", "/crypto/1H", None), ("POST", "/api/nope", None),
                               ("GET", "/nope", rep.wallet_origin)):
        status, body = rep.request(method, path, {} if method == "POST" else None, base=base)
        assert status == 404 and "no such route" in body["error"], (method, path)
    for path, base in (("/api/faults", None), ("/api/intents", None), ("/wallet/api/unlock", rep.wallet_origin)):
        status, body = rep.request("POST", path, raw=b'{"kind": ', base=base)
        assert status == 400 and "malformed JSON" in body["error"], path
    status, body = rep.request("POST", "/api/faults", {"kind": "meteor"})
    assert status == 400 and "unknown fault kind" in body["error"]
    for amount in ("0", "-1", "abc", "99999"):
        with pytest.raises(ReplicaApiError) as err:
            rep.api("POST", "/api/intents", {"asset": "BTC", "side": "UP", "amount": amount})
        assert err.value.status == 422
    status, body = rep.request("POST", "/wallet/api/confirm", {"id": "req-nope"}, base=rep.wallet_origin)
    assert status == 409 and "No such wallet request" in body["error"]
    status, body = rep.request("POST", "/wallet/api/unlock", {"password": "wrong"}, base=rep.wallet_origin)
    assert status == 403


def test_faults_once_and_persistent_over_http(rep: Replica):
    rep.reset()
    rep.faults({"kind": "page_500"})
    assert [f["kind"] for f in rep.faults()] == ["page_500"]
    assert rep.request("GET", "/crypto/15M")[0] == 500
    assert rep.request("GET", "/crypto/15M")[0] == 200
    rep.faults({"kind": "page_500", "mode": "persistent"})
    assert [rep.request("GET", "/crypto/15M")[0] for _ in range(2)] == [500, 500]
    assert rep.faults()[0]["fired"] == 2
    rep.clear_faults()
    assert rep.faults() == [] and rep.request("GET", "/crypto/15M")[0] == 200


def test_heartbeat_is_touched(rep: Replica):
    def fresh() -> bool:
        age = file_age(rep.heartbeat_file)
        return age is not None and age < 1.5

    wait_until(fresh, what="a fresh heartbeat")
    first = rep.heartbeat_file.stat().st_mtime
    wait_until(lambda: rep.heartbeat_file.stat().st_mtime > first, timeout=3, what="the next heartbeat touch")


def test_killed_replica_keeps_its_orders_and_sigterm_exits_zero(tmp_path):
    r = start_replica(tmp_path / "dur", window_seconds=60)
    try:
        place_via_http(r, "UP", "10")
        place_via_http(r, "DOWN", "20", asset="ETH")
        before = r.orders()
        port, wallet_port = r.port, r.wallet_port
        assert r.kill(signal.SIGKILL) == -signal.SIGKILL
        r.start()
        assert (r.port, r.wallet_port) == (port, wallet_port)
        after = r.orders()
        assert [o["id"] for o in after] == [o["id"] for o in before]
        assert [(o["side"], o["amount"], o["shares"]) for o in after] == [(o["side"], o["amount"], o["shares"])
                                                                           for o in before]
        assert r.wallet()["locked"]                                   # a restarted wallet is locked again
        place_via_http(r, "UP", "10")
        assert r.orders()[-1]["id"] == "ORD-000003"                   # ids keep counting
        t0 = time.monotonic()
        assert r.stop() == 0
        assert time.monotonic() - t0 < 3
    finally:
        r.kill()


def test_bad_cli_arguments_exit_2(tmp_path):
    r = Replica(tmp_path / "bad", extra_args=["--window-seconds", "5"])
    with pytest.raises(RuntimeError, match="exited with code 2"):
        r.start()
    assert "--window-seconds must be 10..86400" in r.log_text()


def test_taken_port_exits_1_to_be_retried(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        r = Replica(tmp_path / "busy")
        r.port = busy.getsockname()[1]
        with pytest.raises(RuntimeError, match="exited with code 1"):
            r.start()
    assert "cannot bind" in r.log_text()
