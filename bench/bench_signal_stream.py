"""`bench/bench_signal.py --stream`: the signal engine streaming (issue 14, "Figures"); see
bench_signal.py's doc for what is measured. Local servers in this process only: a WebSocket server
speaking Binance's combined aggTrade stream and Polymarket RTDS's crypto_prices_chainlink topic, and a
REST server answering Binance's klines/ticker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.bench_signal import REPO, cpu_seconds, kill_leftover, percentile, report, rss_mb, stop_engine

STREAM_TARGETS = {"cpu_percent": 3.0, "rss_mb": 100.0, "latency_p99_ms": 50.0}   # issue 14, two assets streaming
STREAM_ASSETS = {"BTC": 90000.0, "ETH": 3000.0}


# ---- --stream: local exchange servers, the engine streaming, the executor's reader timing each price ----


class RestServer:
    """Binance's /api/v3/klines and /api/v3/ticker/price (recorded shapes), a steady price per symbol."""

    def __init__(self, prices: dict[str, float]):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs, urlparse

        def answer(h: BaseHTTPRequestHandler) -> None:
            url = urlparse(h.path)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            price = prices.get(q.get("symbol", "").removesuffix("USDT"))
            if price is None:
                body, status = json.dumps({"code": -1121, "msg": "Invalid symbol."}), 400
            elif url.path == "/api/v3/ticker/price":
                body, status = json.dumps({"symbol": q["symbol"], "price": f"{price:.2f}"}), 200
            else:
                cur = int(time.time()) // 60 * 60000
                rows = [[cur - k * 60000, f"{price:.2f}", f"{price * 1.0004:.2f}", f"{price * 0.9996:.2f}",
                         f"{price * (1 + 0.0002 * ((k % 5) - 2)):.2f}", "12.3", cur - k * 60000 + 59999, "1.1e6",
                         1234, "6.1", "5.5e5", "0"] for k in range(int(q.get("limit", "500")) - 1, -1, -1)]
                body, status = json.dumps(rows), 200
            data = body.encode()
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                return  # quiet

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                answer(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, name="bench-rest", daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class StreamServer:
    """One WebSocket server: Binance combined aggTrade streams on /stream?streams=..., RTDS on any other
    path. Sends `rate` trades a second per asset (evenly spaced, a fresh price each) to every Binance
    client and `chainlink_rate` updates a second per asset to every RTDS client; `sent[asset][price
    text]` = time.monotonic() just before the send."""

    def __init__(self, prices: dict[str, float], rate: float, chainlink_rate: float, seed: int = 7):
        self.prices, self.rate, self.chainlink_rate = dict(prices), rate, chainlink_rate
        self.rng = random.Random(seed)
        self.sent: dict[str, dict[str, float]] = {a: {} for a in prices}
        self.binance: set = set()
        self.rtds: set = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Future | None = None
        self._thread = threading.Thread(target=lambda: self._loop.run_until_complete(self._main()),
                                        name="bench-ws", daemon=True)
        self.url = ""

    def start(self) -> StreamServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise SystemExit("the bench's WebSocket server did not start within 10 s")
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(lambda: self._stop.done() or self._stop.set_result(None))
        self._thread.join(timeout=5)

    async def _main(self) -> None:
        from websockets.asyncio.server import serve

        self._stop = self._loop.create_future()
        async with serve(self._handler, "127.0.0.1", 0) as server:
            self.url = f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}"
            self._ready.set()
            tasks = [self._loop.create_task(self._trades(a, k / (len(self.prices) * self.rate)))
                     for k, a in enumerate(self.prices)]
            if self.chainlink_rate > 0:
                tasks += [self._loop.create_task(self._chainlink(a)) for a in self.prices]
            await self._stop
            for t in tasks:
                t.cancel()

    async def _handler(self, ws) -> None:
        group = self.binance if ws.request.path.startswith("/stream") else self.rtds
        group.add(ws)
        try:
            async for msg in ws:
                if msg == "PING":
                    await ws.send("PONG")
        except Exception:  # noqa: BLE001 - a client that vanishes ends its handler, nothing else
            return
        finally:
            group.discard(ws)

    def _next_price(self, asset: str) -> str:
        sent = self.sent[asset]
        p = self.prices[asset] * (1 + self.rng.gauss(0, 2e-5))
        text = f"{p:.2f}"
        while text in sent:                           # each message a price of its own
            p += 0.01
            text = f"{p:.2f}"
        self.prices[asset] = p
        return text

    async def _trades(self, asset: str, phase: float) -> None:
        step, t_next = 1.0 / self.rate, time.monotonic() + phase
        while True:
            await asyncio.sleep(max(0.0, t_next - time.monotonic()))
            t_next += step
            if not self.binance:
                continue
            price, ms = self._next_price(asset), int(time.time() * 1000)
            msg = json.dumps({"stream": f"{asset.lower()}usdt@aggTrade", "data": {
                "e": "aggTrade", "E": ms + 2, "s": f"{asset}USDT", "a": 12345, "p": price, "q": "0.010",
                "f": 100, "l": 105, "T": ms, "m": True, "M": True}})
            self.sent[asset][price] = time.monotonic()
            for ws in list(self.binance):
                await ws.send(msg)

    async def _chainlink(self, asset: str) -> None:
        while True:
            await asyncio.sleep(1.0 / self.chainlink_rate)
            ms = int(time.time() * 1000)
            msg = json.dumps({"topic": "crypto_prices_chainlink", "type": "update", "timestamp": ms + 24,
                              "payload": {"symbol": f"{asset.lower()}/usd", "timestamp": ms,
                                          "value": round(self.prices[asset] * 1.0001, 4)}})
            for ws in list(self.rtds):
                await ws.send(msg)


class FirstSeen:
    """The executor's reader (executor.signals.SignalWatcher, inotify): when each price first appeared."""

    def __init__(self, paths: dict[str, Path]):
        from executor.signals import SignalWatcher

        self.seen: dict[str, dict[float, float]] = {a: {} for a in paths}
        self.writes = 0
        self.models: set[str] = set()
        self.watcher = SignalWatcher(paths, on_change=self._change, clock=time.monotonic)

    def _change(self, asset: str, held) -> None:
        data = held.data or {}
        price, src = data.get("price"), data.get("source")
        if src == "binance_ws" and isinstance(price, float):
            self.writes += 1
            self.models.add(str(data.get("model")))
            self.seen[asset].setdefault(price, held.seen_at)


def _engine_env(state_dir: str, tmp: str, interval: float, rest: RestServer, ws: StreamServer) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("MODE", "FEEDS", "LIVE_CONFIRM")}
    env.update({"STATE_DIR": state_dir, "LOG_DIR": f"{tmp}/logs", "PROFILE_DIR": f"{tmp}/profiles",
                "DOTENV_PATH": f"{tmp}/no.env", "SIGNAL_INTERVAL": str(interval), "PYTHONPATH": str(REPO),
                "MODE": "paper", "ASSETS": ",".join(STREAM_ASSETS), "FEEDS": "binance", "BINANCE_URL": rest.url,
                "PRICE_STREAM": "binance", "BINANCE_WS_URL": ws.url,
                "CHAINLINK_WS_URL": ws.url if ws.chainlink_rate > 0 else "off"})
    return env


def _latencies(ws: StreamServer, seen: FirstSeen, since: float, until: float) -> tuple[list[float], int]:
    """(ms per published price sent in [since, until - 1 s]), how many of those were superseded)."""
    lat, superseded = [], 0
    for asset, sent in ws.sent.items():
        for text, t_sent in list(sent.items()):
            if not since <= t_sent <= until - 1.0:
                continue
            t_seen = seen.seen[asset].get(float(text))
            if t_seen is None:
                superseded += 1
            else:
                lat.append((t_seen - t_sent) * 1000.0)
    return lat, superseded


def run_stream(duration: float, interval: float, rate: float, chainlink_rate: float,
               state_parent: str | None = None) -> dict:
    rest, ws = RestServer(STREAM_ASSETS), StreamServer(STREAM_ASSETS, rate, chainlink_rate).start()
    with tempfile.TemporaryDirectory(prefix="bench-signal-") as tmp, \
            tempfile.TemporaryDirectory(prefix="bench-signal-state-", dir=state_parent) as state_dir:
        paths = {"BTC": Path(state_dir) / "signal.json", "ETH": Path(state_dir) / "signal-eth.json"}
        seen = FirstSeen(paths)
        seen.watcher.start()
        log = open(f"{tmp}/engine.log", "wb")     # noqa: SIM115 - closed in finally
        proc = subprocess.Popen([sys.executable, "-m", "signal_engine"], cwd=REPO, stdout=subprocess.DEVNULL,
                                stderr=log, env=_engine_env(state_dir, tmp, interval, rest, ws))
        try:
            deadline = time.monotonic() + 60
            while not all(seen.seen[a] for a in paths):      # both assets priced by the stream
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the engine did not publish streamed prices (rc={proc.poll()}):\n"
                                     + Path(f"{tmp}/engine.log").read_text()[-2000:])
                time.sleep(0.05)
            cpu0, wall0, writes0 = cpu_seconds(proc.pid), time.monotonic(), seen.writes
            rss: list[float] = []
            while time.monotonic() - wall0 < duration:
                rss.append(rss_mb(proc.pid))
                time.sleep(0.25)
            cpu1, wall1, writes1 = cpu_seconds(proc.pid), time.monotonic(), seen.writes
            rc, stop_s = stop_engine(proc)
        finally:
            kill_leftover(proc)
            log.close()
            seen.watcher.stop()
            ws.stop()
            rest.stop()
        lat, superseded = _latencies(ws, seen, wall0, wall1)
        load = os.getloadavg()
        return {
            "mode": "stream", "duration_s": round(wall1 - wall0, 2), "interval_s": interval,
            "assets": ",".join(STREAM_ASSETS), "models": sorted(seen.models), "rate_per_asset": rate,
            "chainlink_rate_per_asset": chainlink_rate,
            "state_dir_parent": state_parent or tempfile.gettempdir(),
            "streamed_writes_seen_per_s": round((writes1 - writes0) / (wall1 - wall0), 2),
            "cpu_percent": round(100.0 * (cpu1 - cpu0) / (wall1 - wall0), 3),
            "rss_mb_max": round(max(rss), 1), "rss_mb_last": round(rss[-1], 1),
            "latency_ms": {"n": len(lat), "superseded": superseded, "p50": round(percentile(lat, 0.5), 3),
                           "p99": round(percentile(lat, 0.99), 3), "max": round(max(lat), 3) if lat else None,
                           "slowest": [round(x, 1) for x in sorted(lat)[-5:]]},
            "loadavg_at_end": [round(x, 2) for x in load],
            "sigterm_exit_code": rc, "sigterm_exit_s": round(stop_s, 3), "targets": STREAM_TARGETS,
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "system": platform.platform()},
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }


def main_stream(args: argparse.Namespace) -> int:
    r = run_stream(args.duration, args.interval, args.rate, args.chainlink_rate, args.state_parent)
    t = STREAM_TARGETS
    ok = {"cpu_percent": r["cpu_percent"] < t["cpu_percent"], "rss_mb": r["rss_mb_max"] < t["rss_mb"],
          "latency_p99_ms": r["latency_ms"]["p99"] <= t["latency_p99_ms"]}
    r["pass"] = ok
    lat = r["latency_ms"]
    rows = [("CPU (% of one core)", f"{r['cpu_percent']:.2f}", f"< {t['cpu_percent']:g}", ok["cpu_percent"]),
            ("RSS max (MB)", f"{r['rss_mb_max']:.1f}", f"< {t['rss_mb']:g}", ok["rss_mb"]),
            ("message-to-file p50 (ms)", f"{lat['p50']:.2f}", "", None),
            ("message-to-file p99 (ms)", f"{lat['p99']:.2f}", f"<= {t['latency_p99_ms']:g}", ok["latency_p99_ms"]),
            ("message-to-file max (ms)", f"{lat['max']:.2f}" if lat["max"] is not None else "-", "", None)]
    print(f"signal engine streaming {r['assets']} at {r['rate_per_asset']:g} trades/s per asset (+ Chainlink"
          f" {r['chainlink_rate_per_asset']:g}/s), interval {r['interval_s']:g} s, {r['duration_s']:.0f} s:"
          f" model {'/'.join(r['models'])}, {lat['n']} prices timed, {lat['superseded']} superseded before a write,"
          f" {r['streamed_writes_seen_per_s']:g} streamed writes/s; SIGTERM exit {r['sigterm_exit_code']}"
          f" in {r['sigterm_exit_s']:.2f} s; load average {r['loadavg_at_end']}")
    return report(rows, r, ok, args.out, 26)


