"""The dashboard's HTTP server (stdlib ThreadingHTTPServer; no build step, no framework).

    GET  /                    the page (static/index.html + app.js + uPlot, vendored)
    GET  /static/<file>       the page's files (a fixed list)
    GET  /api/state?since=T   everything the page shows, as JSON (series points after T only)
    GET  /metrics             Prometheus text format (dashboard/metrics.py)
    GET  /healthz             "ok"
    POST /api/control/{pause,unpause,resume}   needs the X-Dashboard-Token header (STATE_DIR/dashboard_token)

Every request must carry a Host header naming this server by IP address or `localhost` with its
port: a DNS name (what a DNS-rebinding page would send) is refused with 403. A POST whose Origin
is another site is refused too. Nothing is served beyond loopback unless DASHBOARD_BIND says so.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from core.config import Config

from . import control, views
from .metrics import registry_for
from .series import Sampler
from .token import token_matches

log = logging.getLogger("dashboard")

STATIC = Path(__file__).resolve().parent / "static"
FILES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
         "app.css": "text/css; charset=utf-8", "uPlot.iife.min.js": "text/javascript; charset=utf-8",
         "uPlot.min.css": "text/css; charset=utf-8", "uPlot.LICENSE": "text/plain; charset=utf-8"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self';"
       " base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
MAX_BODY = 4096
EQUITY_POINTS = 2000
ACTIONS = {"pause": control.pause, "unpause": control.unpause, "resume": control.resume}


def host_allowed(host_header: str | None, port: int) -> bool:
    """True for `localhost:<port>` or `<IP address>:<port>`; DNS names (DNS rebinding) are refused."""
    if not host_header:
        return False
    try:
        parts = urlsplit("//" + host_header.strip())
        name, got_port = parts.hostname, parts.port
    except ValueError:
        return False
    if not name or got_port != port:
        return False
    if name == "localhost":
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class App:
    """What the handler serves: the config, the sampler, the metrics registry, the token."""

    def __init__(self, cfg: Config, token: str, sampler: Sampler | None = None):
        self.cfg, self.token = cfg, token
        self.sampler = sampler or Sampler(cfg)
        self.reports = views.ReportCache(cfg)   # one per-day report, rebuilt when trades.jsonl changes
        self.registry = registry_for(cfg, self.reports)
        self.refused: dict[str, float] = {}   # reason -> last time logged (at most once a minute each)

    def state(self, since: float) -> dict:
        now = time.time()
        st = views.status(self.cfg, now)
        series = self.sampler.current(since)
        sigs = views.signals(self.cfg, now)
        curve = self.reports.equity()
        if len(curve) > EQUITY_POINTS:
            step = len(curve) / EQUITY_POINTS
            curve = [curve[int(i * step)] for i in range(EQUITY_POINTS - 1)] + [curve[-1]]
        if curve:   # from 0 before the first settlement to the last value now, as a step line
            curve = [(curve[0][0] - 1.0, 0.0), *curve, (max(now, curve[-1][0]), curve[-1][1])]
        return {
            "at": now, "mode": st["mode"], "market_url": st["market_url"], "ok": st["ok"],
            "monitor": st["monitor"], "processes": st["processes"], "executor": st.get("executor"),
            "pause": st["pause"], "risk": st.get("risk"), "today": st["trades"]["today"],
            "open": st["trades"].get("open", []),
            "assets": {a: {"signal": sigs.get(a), "series": series.get(a)} for a in self.cfg.assets},
            "trades": views.recent_trades(self.cfg, 10), "decisions": views.recent_decisions(self.cfg, 10),
            "equity": [[round(t, 3), round(p, 4)] for t, p in curve],
            "window_seconds": self.cfg.window_seconds,
        }

    def note_refusal(self, reason: str, detail: str) -> None:
        now = time.monotonic()
        if now - self.refused.get(reason, -1e9) >= 60.0:
            self.refused[reason] = now
            log.warning("refused a request: %s (%s); further ones of this kind are not logged for a minute",
                        reason, detail[:120])


class Handler(BaseHTTPRequestHandler):
    server_version = "updown-dashboard"
    sys_version = ""
    timeout = 15   # seconds a client may take to send its request
    app: App   # set on the subclass made by make_server

    # ---- plumbing -------------------------------------------------------------------------------
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's signature
        return   # one line a second per open page would fill the log: refusals and errors are logged instead

    def _send(self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy", CSP)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: dict) -> None:
        self._send(status, json.dumps(obj, default=str, allow_nan=False).encode(), "application/json")

    def _refuse(self, status: int, reason: str, detail: str) -> None:
        self.app.note_refusal(reason, detail)
        self._json(status, {"ok": False, "error": reason})

    def _host_ok(self) -> bool:
        host = self.headers.get("Host")
        if host_allowed(host, self.server.server_address[1]):
            return True
        self._refuse(HTTPStatus.FORBIDDEN, "the Host header does not name this dashboard by address"
                     " (DNS rebinding protection)", repr(host))
        return False

    # ---- GET ------------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        if not self._host_ok():
            return
        url = urlsplit(self.path)
        try:
            if url.path in ("/", "/index.html"):
                self._file("index.html")
            elif url.path.startswith("/static/"):
                self._file(url.path[len("/static/"):])
            elif url.path == "/api/state":
                self._json(HTTPStatus.OK, self.app.state(_since(url.query)))
            elif url.path == "/metrics":
                self._send(HTTPStatus.OK, generate_latest(self.app.registry), CONTENT_TYPE_PLAIN_0_0_4)
            elif url.path == "/healthz":
                self._send(HTTPStatus.OK, b"ok\n", "text/plain; charset=utf-8")
            else:
                self._json(HTTPStatus.NOT_FOUND, {"ok": False, "error": f"no such page: {url.path[:80]}"})
        except (BrokenPipeError, ConnectionResetError):
            return   # the browser went away mid-answer
        except Exception as exc:  # noqa: BLE001 - one bad read must not take the dashboard down
            log.exception("GET %s failed", url.path[:80])
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"ok": False, "error": f"{type(exc).__name__}: see the log"})

    do_HEAD = do_GET

    def _file(self, name: str) -> None:
        ctype = FILES.get(name)
        if ctype is None:
            self._json(HTTPStatus.NOT_FOUND, {"ok": False, "error": "no such file"})
            return
        self._send(HTTPStatus.OK, (STATIC / name).read_bytes(), ctype)

    # ---- POST -----------------------------------------------------------------------------------
    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        if not self._host_ok():
            return
        origin = self.headers.get("Origin")
        if origin and not host_allowed(urlsplit(origin).netloc, self.server.server_address[1]):
            self._refuse(HTTPStatus.FORBIDDEN, "cross-site request (Origin is not this dashboard)", repr(origin))
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request body too large", str(length))
            return
        if length:
            self.rfile.read(length)   # the body is not used: the action is in the path
        url = urlsplit(self.path)
        action = url.path.removeprefix("/api/control/")
        if not url.path.startswith("/api/control/") or action not in ACTIONS:
            self._json(HTTPStatus.NOT_FOUND, {"ok": False, "error": "no such action"})
            return
        if not token_matches(self.app.token, self.headers.get("X-Dashboard-Token")):
            self._refuse(HTTPStatus.FORBIDDEN, "missing or wrong dashboard token (shown by ./supervisor.sh start;"
                         " state/dashboard_token)", action)
            return
        try:
            message = ACTIONS[action](self.app.cfg, f"the dashboard ({self.client_address[0]})")
        except control.ControlError as exc:
            log.error("dashboard %s failed: %s", action, exc)
            self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"ok": False, "error": str(exc)})
            return
        log.warning("dashboard: %s by %s: %s", action, self.client_address[0], message)
        self._json(HTTPStatus.OK, {"ok": True, "message": message})


def _since(query: str) -> float:
    try:
        value = float(parse_qs(query).get("since", ["0"])[0])
    except ValueError:
        return 0.0
    return value if value == value and abs(value) != float("inf") else 0.0


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 32


def make_server(app: App, bind: str, port: int) -> Server:
    """Bound and listening (raises OSError when the port is taken); serve_forever() runs it."""
    handler = type("BoundHandler", (Handler,), {"app": app})
    server = type("BoundServer", (Server,), {"address_family": socket.AF_INET6 if ":" in bind else socket.AF_INET})
    return server((bind, port), handler)


def is_loopback(bind: str) -> bool:
    try:
        return ipaddress.ip_address(bind).is_loopback
    except ValueError:
        return False


__all__ = ["App", "Handler", "Server", "host_allowed", "is_loopback", "make_server"]
