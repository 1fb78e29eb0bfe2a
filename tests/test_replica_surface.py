"""The replica's local surface (issue 13, item 7), against a real replica process.

Its mutating endpoints refuse other origins (403) and non-JSON bodies (415); a negative,
non-numeric or absurd Content-Length gets 400 at once instead of a handler blocked on a read;
deeply nested JSON gets 400, not 500; a normal same-origin JSON POST still works.
"""

from __future__ import annotations

import http.client
import json
import socket
import time

import pytest

from tests.replica_support import Replica, replica_module  # noqa: F401 - the fixture

EVIL = "http://evil.example"
TIMEOUT = 10.0


def call(port: int, method: str, path: str, body: bytes | None = None,
         headers: dict | None = None) -> tuple[int, object, dict]:
    """One request with exactly these headers (plus Host/Content-Length); (status, JSON or text, headers)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        raw = resp.read()
        got = {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()
    try:
        return resp.status, json.loads(raw), got
    except json.JSONDecodeError:
        return resp.status, raw.decode(errors="replace"), got


def raw_exchange(port: int, request: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes, read until the server closes; socket.timeout if it never answers/closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                return b"".join(chunks)
            chunks.append(b)


def snapshot(rep: Replica) -> tuple:
    wallet = rep.wallet()
    return (json.dumps(rep.faults(), sort_keys=True), len(rep.orders()), len(wallet["requests"]),
            wallet["locked"])


@pytest.fixture
def rep(replica_module: Replica) -> Replica:  # noqa: F811 - the imported fixture
    replica_module.reset()
    replica_module.clear_faults()
    return replica_module


JSON = {"Content-Type": "application/json"}
INTENT = json.dumps({"asset": "BTC", "side": "UP", "amount": "10"}).encode()
FAULT = json.dumps({"kind": "popup_delay", "ms": 10}).encode()


# ---- Origin ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("origin", [EVIL, "null", "http://127.0.0.1:1", "http://127.0.0.1"])
def test_cross_origin_mutations_are_refused_and_change_nothing(rep: Replica, origin: str):
    rep.faults({"kind": "slow_page", "ms": 1, "mode": "persistent"})
    before = snapshot(rep)
    for method, path, body in (("POST", "/api/intents", INTENT), ("POST", "/api/faults", FAULT),
                               ("POST", "/api/reset", b"{}"), ("POST", "/api/wallet/lock", b"{}"),
                               ("DELETE", "/api/faults", None), ("PUT", "/api/faults", FAULT)):
        status, body_got, headers = call(rep.port, method, path, body, dict(JSON, Origin=origin))
        assert status == 403, (method, path, status, body_got)
        assert body_got["ok"] is False and "cross-origin" in body_got["error"]
        assert headers.get("connection") == "close"
    assert snapshot(rep) == before


def test_the_wallet_refuses_the_market_origin(rep: Replica):
    intent = rep.api("POST", "/api/intents", {"asset": "BTC", "side": "UP", "amount": "10"})
    for path, body in (("/wallet/api/unlock", {"password": rep.password}),
                       ("/wallet/api/confirm", {"id": intent["request_id"]})):
        status, got, _ = call(rep.wallet_port, "POST", path, json.dumps(body).encode(),
                              dict(JSON, Origin=rep.base_url))  # the market page is another origin
        assert status == 403, got
    assert rep.orders() == []
    assert rep.wallet()["locked"] is True


def test_cross_site_fetch_metadata_without_origin_is_refused(rep: Replica):
    before = snapshot(rep)
    status, got, _ = call(rep.port, "POST", "/api/faults", FAULT, dict(JSON, **{"Sec-Fetch-Site": "cross-site"}))
    assert status == 403, got
    assert snapshot(rep) == before


def test_same_origin_json_posts_still_work(rep: Replica):
    ids = []
    for origin in (rep.base_url, f"http://localhost:{rep.port}", None):
        headers = dict(JSON) if origin is None else dict(JSON, Origin=origin)
        status, got, _ = call(rep.port, "POST", "/api/intents", INTENT, headers)
        assert status == 200 and got["ok"] is True, (origin, got)
        ids.append(got["request_id"])
    wallet = dict(JSON, Origin=rep.wallet_origin)  # what the popup's own fetches carry
    status, got, _ = call(rep.wallet_port, "POST", "/wallet/api/unlock",
                          json.dumps({"password": rep.password}).encode(), wallet)
    assert status == 200 and got == {"ok": True}
    status, got, _ = call(rep.wallet_port, "POST", "/wallet/api/confirm", json.dumps({"id": ids[-1]}).encode(), wallet)
    assert status == 200 and got["status"] == "confirmed", got
    assert [o["id"] for o in rep.orders()] == [got["order_id"]]
    # A charset parameter is still JSON; a bodiless DELETE needs no content type.
    status, got, _ = call(rep.port, "POST", "/api/faults", FAULT,
                          {"Content-Type": "application/json; charset=utf-8", "Origin": rep.base_url})
    assert status == 200 and got["ok"] is True
    status, got, _ = call(rep.port, "DELETE", "/api/faults", None, {"Origin": rep.base_url})
    assert status == 200 and got["cleared"] == 1


# ---- Content-Type ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("ctype", ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data; b=x",
                                   None])
def test_non_json_bodies_get_415(rep: Replica, ctype: str | None):
    before = snapshot(rep)
    headers = {"Origin": rep.base_url}
    if ctype:
        headers["Content-Type"] = ctype
    status, got, _ = call(rep.port, "POST", "/api/faults", b"kind=popup_delay&ms=10", headers)
    assert status == 415, got
    status, got, _ = call(rep.port, "POST", "/api/intents", INTENT, {"Content-Type": "text/plain"})
    assert status == 415, got
    assert snapshot(rep) == before


def test_an_unread_refused_body_is_not_parsed_as_the_next_request(rep: Replica):
    rep.faults({"kind": "slow_page", "ms": 1, "mode": "persistent"})
    smuggled = b"DELETE /api/faults HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    head = (b"POST /api/faults HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
            b"Content-Length: %d\r\n\r\n" % len(smuggled))
    answer = raw_exchange(rep.port, head + smuggled)
    assert answer.startswith(b"HTTP/1.1 415") and answer.count(b"HTTP/1.1 ") == 1, answer
    assert len(rep.faults()) == 1


# ---- Content-Length -------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["-1", "abc", "1e3", "+5", "4294967296000", str(2 * 1024 * 1024), "0x10"])
@pytest.mark.parametrize("port_name", ["port", "wallet_port"])
def test_bad_content_length_gets_400_at_once(rep: Replica, value: str, port_name: str):
    port = getattr(rep, port_name)
    path = b"/api/faults" if port_name == "port" else b"/wallet/api/unlock"
    t0 = time.monotonic()
    answer = raw_exchange(port, b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                                b"\r\nContent-Length: " + value.encode() + b"\r\n\r\n{}")
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert b"Content-Length" in answer.split(b"\r\n\r\n", 1)[1] or b"too large" in answer
    assert time.monotonic() - t0 < 5.0
    assert rep.faults() == []


def test_conflicting_content_lengths_get_400(rep: Replica):
    answer = raw_exchange(rep.port, b"POST /api/faults HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                    b"Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}")
    assert answer.startswith(b"HTTP/1.1 400"), answer


# ---- nesting --------------------------------------------------------------------------------------------
def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("depth", [33, 200, 30000])
def test_deeply_nested_json_gets_400_not_500(rep: Replica, depth: int):
    before = snapshot(rep)
    for port, path in ((rep.port, "/api/faults"), (rep.port, "/api/intents"), (rep.port, "/api/reset"),
                       (rep.wallet_port, "/wallet/api/confirm")):
        status, got, _ = call(port, "POST", path, nested(depth), JSON)
        assert status == 400, (path, status, got)
        assert "nested deeper than 32" in got["error"]
    assert snapshot(rep) == before
    assert rep.api("GET", "/api/health")["ok"] is True


def test_nesting_up_to_the_limit_is_accepted(rep: Replica):
    rep.lock_wallet()
    status, got, _ = call(rep.port, "POST", "/api/reset", nested(32), JSON)
    assert status == 200, got
    body = {"password": rep.password, "x": json.loads(nested(31))}  # 32 levels with the outer object
    status, got, _ = call(rep.wallet_port, "POST", "/wallet/api/unlock", json.dumps(body).encode(), JSON)
    assert status == 200, got


def test_a_body_the_route_ignores_does_not_poison_the_keep_alive_connection(rep: Replica):
    rep.faults({"kind": "slow_page", "ms": 1, "mode": "persistent"})
    conn = http.client.HTTPConnection("127.0.0.1", rep.port, timeout=TIMEOUT)
    try:
        # DELETE /api/faults does not look at its body; the next request on the connection must still parse.
        conn.request("DELETE", "/api/faults", body=b'{"ignored": true}', headers=JSON)
        first = conn.getresponse()
        assert first.status == 200 and json.loads(first.read())["cleared"] == 1
        conn.request("GET", "/api/health")
        second = conn.getresponse()
        assert second.status == 200 and json.loads(second.read())["ok"] is True
    finally:
        conn.close()
