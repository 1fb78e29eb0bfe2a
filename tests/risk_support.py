"""Helpers for the risk area's tests: a config on tmp dirs, a local webhook server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from core.config import Config, load_config

T0 = 1767229200.0  # 2026-01-01T01:00:00Z
DAY = 86400.0


def risk_cfg(base_env: dict[str, str], **over: object) -> Config:
    env = dict(base_env)
    env.update({k: str(v) for k, v in over.items()})
    return load_config(env)


class WebhookServer(ThreadingHTTPServer):
    """A Discord-like webhook on 127.0.0.1:<free port>.

    `script` lists how to answer successive POSTs (an HTTP status, or "hang" = hold the request
    until `release` is set); the last entry repeats. Received JSON bodies go to `received`.
    """

    daemon_threads = True

    def __init__(self, script: list):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = list(script)
        self.received: list[dict] = []
        self.hits = 0
        self.hanging = 0
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api/webhooks/123456789/tok3nS3cretAbcdefGHIJ0123"

    def next_answer(self):
        with self.lock:
            self.hits += 1
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    def start(self) -> WebhookServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    server: WebhookServer

    def log_message(self, format, *args):  # noqa: A002 - silence the default stderr access log
        return

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        answer = self.server.next_answer()
        if answer == "hang":
            with self.server.lock:
                self.server.hanging += 1
            self.server.release.wait(timeout=30)
            return  # close without an answer
        if isinstance(answer, int) and 200 <= answer < 300:
            with self.server.lock:
                self.server.received.append({"body": json.loads(body), "ctype": self.headers.get("Content-Type")})
        self.send_response(answer)
        if answer == 429:
            self.send_header("Retry-After", "0.05")
        self.send_header("Content-Length", "0")
        self.end_headers()


def write_trades(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        for r in records:
            fh.write(json.dumps(r) + "\n")
