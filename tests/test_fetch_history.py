"""fetch_history against a local stand-in for Binance's /api/v3/klines (127.0.0.1, a free port)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from signal_engine import fetch_history as fh
from signal_engine.history import load_candles

REPO = Path(__file__).resolve().parent.parent
T0 = 1_700_000_040_000 // 60_000 * 60_000      # a minute boundary, ms
MISSING = {T0 + 60_000 * 1500}                  # one minute Binance "does not have"


def kline(open_ms: int) -> list:
    """A row in Binance's exact shape: 12 fields, prices and volumes as strings."""
    k = (open_ms - T0) // 60_000
    o = 30000.0 + k * 0.5
    c = o + (0.25 if k % 2 else -0.25)
    return [open_ms, f"{o:.2f}", f"{max(o, c) + 1:.2f}", f"{min(o, c) - 1:.2f}", f"{c:.2f}", "12.5",
            open_ms + 59_999, "375000.0", 321, "6.2", "186000.0", "0"]


class KlineServer:
    """Answers klines for any range up to `now_ms`; `script` holds faults consumed one per request."""

    def __init__(self, now_ms: int):
        self.now_ms = now_ms
        self.script: list[str] = []
        self.calls: list[dict] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                return  # quiet: the test inspects `calls`

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                server.handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def _send(self, h: BaseHTTPRequestHandler, status: int, body: str, ctype: str = "application/json",
              headers: dict | None = None) -> None:
        data = body.encode()
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        u = urlparse(h.path)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        self.calls.append(q)
        fault = self.script.pop(0) if self.script else "ok"
        if u.path != "/api/v3/klines":
            return self._send(h, 404, json.dumps({"code": -1, "msg": "not found"}))
        if fault == "429":
            return self._send(h, 429, json.dumps({"code": -1003, "msg": "Too many requests"}),
                              headers={"Retry-After": "7"})
        if fault == "418":
            return self._send(h, 418, json.dumps({"code": -1003, "msg": "IP banned"}),
                              headers={"Retry-After": "9999"})
        if fault == "500":
            return self._send(h, 500, "Internal error", "text/plain")
        if fault == "html":
            return self._send(h, 200, "<html><body>502 Bad Gateway</body></html>", "text/html")
        if fault == "badrow":
            return self._send(h, 200, json.dumps([[1, "x", "y"]]))
        if fault == "hang":
            self.release.wait(5.0)   # longer than the client's timeout; released at teardown
            return None
        if q.get("symbol") != "BTCUSDT":
            return self._send(h, 400, json.dumps({"code": -1121, "msg": "Invalid symbol."}))
        start = int(q["startTime"])
        end = int(q.get("endTime", self.now_ms))
        limit = min(int(q.get("limit", 500)), 1000)
        first = -(-start // 60_000) * 60_000
        rows = []
        t = first
        while t <= min(end, self.now_ms) and len(rows) < limit:
            if t not in MISSING:
                rows.append(kline(t))
            t += 60_000
        return self._send(h, 200, json.dumps(rows))


@pytest.fixture
def server() -> Iterator[KlineServer]:
    s = KlineServer(now_ms=T0 + 60_000 * 5000)
    try:
        yield s
    finally:
        s.close()


FAST = fh.RetryPolicy(attempts=4, backoff_s=0.5, timeout_s=0.5)


def test_paging_order_and_gaps(server):
    waits: list[float] = []
    rows = fh.fetch(server.url, "BTCUSDT", T0, T0 + 60_000 * 2500, FAST, sleep=waits.append)
    assert waits == []
    assert len(server.calls) == 3                                     # 1000 + 1000 + 499 rows
    assert [int(c["startTime"]) for c in server.calls] == [T0, T0 + 60_000 * 1000, T0 + 60_000 * 2001]
    assert all(c["interval"] == "1m" and c["limit"] == "1000" for c in server.calls)
    opens = [r[0] for r in rows]
    assert opens[0] == T0 and opens[-1] == T0 + 60_000 * 2499        # the candle open at end_ms is not closed
    assert len(rows) == 2499 and T0 + 60_000 * 1500 not in opens     # the missing minute stays missing
    assert opens == sorted(set(opens))


def test_rate_limit_honours_retry_after_then_succeeds(server):
    server.script = ["429", "418"]
    waits: list[float] = []
    rows = fh.fetch(server.url, "BTCUSDT", T0, T0 + 60_000 * 10, FAST, sleep=waits.append)
    assert len(rows) == 10
    assert waits == [7.0, FAST.max_retry_after_s]                    # 418's 9999 s is capped
    assert len(server.calls) == 3


def test_5xx_html_bad_rows_and_timeout_are_retried_with_backoff(server):
    server.script = ["500", "html", "badrow"]
    waits: list[float] = []
    rows = fh.fetch(server.url, "BTCUSDT", T0, T0 + 60_000 * 10, FAST, sleep=waits.append)
    assert len(rows) == 10 and waits == [0.5, 1.0, 2.0]
    server.calls.clear()
    server.script = ["hang"]
    rows = fh.fetch(server.url, "BTCUSDT", T0, T0 + 60_000 * 3, FAST, sleep=waits.append)
    assert len(rows) == 3 and len(server.calls) == 2


def test_gives_up_after_bounded_retries(server):
    server.script = ["500"] * 10
    waits: list[float] = []
    with pytest.raises(fh.FetchError, match="after 4 tries: HTTP 500"):
        fh.fetch(server.url, "BTCUSDT", T0, T0 + 60_000 * 10, FAST, sleep=waits.append)
    assert len(waits) == 3 and len(server.calls) == 4


def test_unknown_symbol_is_bad_input_not_retried(server):
    with pytest.raises(fh.BadRequest, match="Invalid symbol"):
        fh.fetch(server.url, "NOPE", T0, T0 + 60_000 * 10, FAST, sleep=lambda s: None)
    assert len(server.calls) == 1


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "signal_engine.fetch_history", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(tmp_path)})


def test_cli_writes_a_file_the_backtest_loads(server, tmp_path):
    # The stand-in serves candles up to its own clock, which is in the past: the CLI asks for the
    # last day up to now, so shift the server's clock to "now" for this test.
    import time

    server.now_ms = int(time.time() * 1000)
    out = tmp_path / "btcusdt_1m.csv.gz"
    r = _cli(tmp_path, "--symbol", "btcusdt", "--days", "1", "--out", str(out), "--base-url", server.url)
    assert r.returncode == 0, r.stderr
    assert "wrote 1440 candles" in r.stdout
    text = gzip.decompress(out.read_bytes()).decode()
    assert text.startswith("open_time,open,high,low,close,volume\n")
    c = load_candles(out)
    assert len(c) == 1440 and c.dropped_rows == 0
    assert (c.open_time[1:] - c.open_time[:-1] == 60).all()
    first = kline(int(c.open_time[0] * 1000))
    assert c.open[0] == float(first[1]) and c.close[0] == float(first[4])
    assert len(server.calls) == 2


def test_cli_exit_codes(server, tmp_path):
    r = _cli(tmp_path, "--symbol", "NOPE", "--days", "1", "--out", str(tmp_path / "x.csv"), "--base-url", server.url)
    assert r.returncode == 2 and "Invalid symbol" in r.stderr and not (tmp_path / "x.csv").exists()
    r = _cli(tmp_path, "--symbol", "BTCUSDT", "--days", "-3", "--base-url", server.url)
    assert r.returncode == 2 and "--days" in r.stderr
    server.script = ["500"] * 20
    r = _cli(tmp_path, "--symbol", "BTCUSDT", "--days", "1", "--out", str(tmp_path / "y.csv"),
             "--base-url", server.url, "--retries", "3", "--backoff", "0")
    assert r.returncode == 1 and "after 3 tries: HTTP 500" in r.stderr and not (tmp_path / "y.csv").exists()
