"""A local stand-in for the Binance and Coinbase public REST APIs (127.0.0.1, a free port).

It answers the documented JSON shapes (recorded field sets) and, per exchange, can be told to
misbehave: `hang` (answers later than any client timeout), `slow` (answers normally after
`hang_s`), `http500`, `http503_once` (one 503,
then normal), `html` (an HTML error page with status 200), `zero`, `negative`, `nan`, or any
price (`set_price`) — e.g. a 50% jump. `requests[exchange]` counts the calls.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

FAULTS = ("ok", "hang", "slow", "http500", "http503_once", "html", "zero", "negative", "nan")
HTML_PAGE = ("<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
             "<body><h1>502 Bad Gateway</h1><p>cloudflare</p></body></html>")


class FeedServer:
    def __init__(self, binance_price: float = 89617.01, coinbase_price: float = 89620.55):
        self.price = {"binance": binance_price, "coinbase": coinbase_price}
        self.fault = {"binance": "ok", "coinbase": "ok"}
        self.requests = {"binance": 0, "coinbase": 0}
        self.hang_s = 5.0
        self._release = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                return  # keep test output quiet; the counters tell what happened

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                server._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="feed-server", daemon=True)

    # ---- control -------------------------------------------------------------------

    def start(self) -> FeedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()          # let hanging handlers finish now
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def set_fault(self, exchange: str, fault: str) -> None:
        assert fault in FAULTS, fault
        with self._lock:
            self.fault[exchange] = fault

    def set_price(self, exchange: str, price: float) -> None:
        with self._lock:
            self.price[exchange] = price
            self.fault[exchange] = "ok"

    # ---- answers -------------------------------------------------------------------

    def _send(self, h: BaseHTTPRequestHandler, status: int, body: str, ctype: str = "application/json") -> None:
        data = body.encode()
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        try:
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            return  # the client gave up (timeout test): nothing to deliver

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        url = urlparse(h.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        exchange = "binance" if url.path.startswith("/api/v3/") else "coinbase"
        with self._lock:
            self.requests[exchange] += 1
            fault = self.fault[exchange]
            price = self.price[exchange]
            if fault == "http503_once":
                self.fault[exchange] = "ok"
        if fault == "hang":
            self._release.wait(self.hang_s)
            return self._send(h, 200, "{}")
        if fault == "slow":
            self._release.wait(self.hang_s)
        if fault in ("http500", "http503_once"):
            status = 500 if fault == "http500" else 503
            return self._send(h, status, json.dumps({"code": -1001, "msg": "Internal error; unable to process"}))
        if fault == "html":
            return self._send(h, 200, HTML_PAGE, "text/html; charset=utf-8")
        price_text = {"zero": "0.00000000", "negative": "-89617.01", "nan": "NaN"}.get(fault, f"{price:.2f}")
        if exchange == "binance":
            return self._binance(h, url.path, q, price_text, price)
        return self._coinbase(h, url.path, q, price_text, price)

    def _binance(self, h, path: str, q: dict, price_text: str, price: float) -> None:
        symbol = q.get("symbol", "")
        if not symbol.endswith("USDT"):
            return self._send(h, 400, json.dumps({"code": -1121, "msg": "Invalid symbol."}))
        if path == "/api/v3/ticker/price":
            return self._send(h, 200, json.dumps({"symbol": symbol, "price": price_text}))
        if path == "/api/v3/klines":
            limit = int(q.get("limit", "500"))
            now_ms = int(time.time() * 1000)
            cur = now_ms // 60000 * 60000
            rows = []
            for k in range(limit - 1, -1, -1):                      # oldest first, the open one last
                o = cur - k * 60000
                p = price * (1 + 0.0001 * ((k % 7) - 3))
                rows.append([o, f"{p:.2f}", f"{p * 1.0005:.2f}", f"{p * 0.9995:.2f}", f"{p:.2f}", "12.345",
                             o + 59999, "1106000.1", 1234, "6.1", "550000.2", "0"])
            return self._send(h, 200, json.dumps(rows))
        return self._send(h, 404, json.dumps({"code": -5, "msg": "not found"}))

    def _coinbase(self, h, path: str, q: dict, price_text: str, price: float) -> None:
        parts = path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "products" or not parts[1].endswith("-USD"):
            return self._send(h, 404, json.dumps({"message": "NotFound"}))
        if parts[2] == "ticker":
            now = time.time()
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"
            return self._send(h, 200, json.dumps({
                "ask": price_text, "bid": price_text, "volume": "7711.80215883", "trade_id": 912346215,
                "price": price_text, "size": "0.00172", "time": stamp, "rfq_volume": "12.9"}))
        if parts[2] == "candles":
            cur = int(time.time()) // 60 * 60
            rows = []
            for k in range(300):                                      # newest first, the open one first
                p = price * (1 + 0.0001 * ((k % 5) - 2))
                rows.append([cur - k * 60, p * 0.9995, p * 1.0005, p, p, 3.21])
            return self._send(h, 200, json.dumps(rows))
        return self._send(h, 404, json.dumps({"message": "NotFound"}))


def running() -> Iterator[FeedServer]:
    """A started FeedServer, stopped afterwards: `server = pytest.fixture(scope="module", name="server")(running)`."""
    srv = FeedServer().start()
    try:
        yield srv
    finally:
        srv.stop()
