"""The replica's two HTTP servers (standard library): the market site and the wallet origin.

Market port: the page `/crypto/15M` (and `/portfolio`), its static files, the page's own
JSON (`/api/state`, `/api/intents`, `/api/requests/<id>`) and the test/demo API
(`/api/health`, `/api/markets`, `/api/orders`, `/api/settlements`, `/api/reset`,
`/api/faults`, `/api/wallet`), and Binance-shaped price endpoints over the replica's own price
path (`/api/v3/ticker/price`, `/api/v3/klines`: see binance_api.py; the demo's signal engine
reads them), and Polymarket's public Gamma and CLOB read-only APIs under `/gamma/...` and
`/clob/...` (see market_api.py). Wallet port (another origin, as an extension is): the popup
`/notification.html` and its JSON under `/wallet/api/`. Both bind 127.0.0.1 only.

The local surface (issue 13): every mutating request (POST, PUT, DELETE) whose `Origin` is
present and not the server's own origin is refused with 403 (so a page on another origin in the
user's browser cannot place or confirm orders, arm faults or reset the replica); a body must be
`Content-Type: application/json` (415); a `Content-Length` that is not a plain non-negative
number, is repeated with different values, or exceeds MAX_BODY gets 400 and the connection
closed, never a handler blocked on a read; JSON nested deeper than MAX_JSON_DEPTH gets 400.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from . import binance_api, market_api
from .faults import KINDS, FaultError
from .state import OrderError, ReplicaState

log = logging.getLogger("replica.http")
STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY = 64 * 1024          # bytes; a larger Content-Length is refused (400) before reading anything
MAX_JSON_DEPTH = 32           # nested arrays/objects; deeper bodies are refused (400), never a 500
SOCKET_TIMEOUT_S = 30.0       # a client that stalls mid-request (or idles on keep-alive) is dropped
MUTATING = frozenset({"POST", "PUT", "DELETE", "PATCH"})
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
_DIGITS = re.compile(r"[0-9]{1,12}")
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


class BadRequest(Exception):
    """The request body is malformed; answered with 400 and this message."""


class Refused(Exception):
    """A request refused before routing: answered with `status` and the message, connection closed."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def json_depth(obj: object) -> int:
    """How deeply arrays/objects nest in a parsed JSON value (a scalar is 0); iterative, so safe
    on any value json.loads returned."""
    deepest = 0
    stack = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


class App:
    """What both servers share: the state and the two origins (known once both are bound)."""

    def __init__(self, state: ReplicaState):
        self.state = state
        self.port = 0
        self.wallet_port = 0
        self.started = time.time()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def wallet_origin(self) -> str:
        return f"http://127.0.0.1:{self.wallet_port}"


class _Handler(BaseHTTPRequestHandler):
    app: App
    server_version = "replica/1"
    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT_S  # StreamRequestHandler sets it on the socket: no read blocks forever

    def own_port(self) -> int:
        raise NotImplementedError

    def own_origins(self) -> set[str]:
        """The origins this server answers as: http://127.0.0.1:<port> (and localhost:<port>)."""
        return {f"http://{host}:{self.own_port()}" for host in LOOPBACK_HOSTS}

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    # ---- answers ----------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def json(self, obj: object, status: int = 200) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def error_json(self, status: int, message: str, headers: dict | None = None) -> None:
        self._send(status, json.dumps({"ok": False, "error": message}).encode(), "application/json", headers)

    def not_found(self) -> None:
        self.error_json(404, f"no such route: {self.command} {urlsplit(self.path).path}")

    def static(self, name: str) -> None:
        path = (STATIC / name).resolve()
        if path.parent != STATIC or not path.is_file():
            self.not_found()
            return
        self._send(200, path.read_bytes(), CONTENT_TYPES.get(path.suffix, "application/octet-stream"))

    def content_length(self) -> int:
        """The declared body length: 0 when absent; Refused(400) for anything but one sane number."""
        values = self.headers.get_all("Content-Length") or []
        if self.headers.get("Transfer-Encoding"):
            raise Refused(411, "chunked or encoded request bodies are not supported: send a Content-Length")
        if not values:
            return 0
        if len({v.strip() for v in values}) != 1:
            raise Refused(400, "conflicting Content-Length headers")
        value = values[0].strip()
        if not _DIGITS.fullmatch(value):
            raise Refused(400, f"Content-Length must be a non-negative whole number, got {value[:20]!r}")
        length = int(value)
        if length > MAX_BODY:
            raise Refused(400, f"body too large ({length} bytes, limit {MAX_BODY})")
        return length

    def check_mutation(self) -> None:
        """Before a POST/PUT/DELETE is routed: same origin only, sane length, JSON bodies only.
        The body is then read in full here, so no route can leave it unread on the connection."""
        origin = self.headers.get("Origin")
        if origin is not None and origin.strip().rstrip("/") not in self.own_origins():
            raise Refused(403, f"cross-origin request refused (Origin {origin[:80]!r} is not this server's)")
        if origin is None and self.headers.get("Sec-Fetch-Site", "").strip().lower() in ("cross-site", "same-site"):
            raise Refused(403, "cross-site request refused (Sec-Fetch-Site)")
        length = self.content_length()
        if length:
            ctype = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
            if ctype != "application/json":
                raise Refused(415, f"request bodies must be Content-Type: application/json, got {ctype[:60]!r}")
        self._raw_body = self.read_body(length)

    def read_body(self, length: int) -> bytes:
        try:
            raw = self.rfile.read(length) if length else b""
        except TimeoutError:
            raise Refused(408, f"timed out reading a {length}-byte body") from None
        if len(raw) != length:
            raise Refused(400, f"body ended after {len(raw)} of {length} bytes")
        return raw

    def body_json(self) -> object:
        raw = self._raw_body
        if raw is None:  # not a mutating request (check_mutation did not run): validate the same way
            raw = self.read_body(self.content_length())
        self._raw_body = b""  # the body is read once
        if not raw.strip():
            return {}
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadRequest(f"malformed JSON body: {exc}") from None
        except RecursionError:  # nesting deeper than the parser's own stack (MAX_BODY allows ~32k levels)
            raise BadRequest(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
        if json_depth(obj) > MAX_JSON_DEPTH:
            raise BadRequest(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        return obj

    # ---- dispatch ---------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        self.query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        self._raw_body: bytes | None = None
        try:
            if self.command in MUTATING:
                self.check_mutation()
            self.route(self.command, url.path.rstrip("/") or "/")
        except Refused as exc:
            # The body may not have been read: close the connection rather than parse it as a request.
            self.close_connection = True
            log.info("refused %s %s: %s", self.command, url.path, exc)
            self.error_json(exc.status, str(exc), {"Connection": "close"})
        except BadRequest as exc:
            self.error_json(400, str(exc))
        except (BrokenPipeError, ConnectionResetError):
            log.debug("client went away during %s %s", self.command, self.path)
        except Exception as exc:  # noqa: BLE001 - one bad request must not kill the server thread silently
            log.exception("internal error on %s %s", self.command, self.path)
            try:
                self.error_json(500, f"internal error: {type(exc).__name__}: {exc}")
            except OSError:
                log.debug("could not send the 500 answer: the client went away")

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch()

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch()

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch()

    def route(self, method: str, path: str) -> None:
        raise NotImplementedError


def _embed(obj: object) -> str:
    """JSON safe to place inside a <script> element."""
    return json.dumps(obj).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class MarketHandler(_Handler):
    def own_port(self) -> int:
        return self.app.port

    def route(self, method: str, path: str) -> None:
        st = self.app.state
        if method in ("GET", "HEAD"):
            if path == "/":
                self._send(302, b"", "text/plain", {"Location": "/crypto/15M"})
            elif path in ("/crypto/15M", "/portfolio"):
                self.page(portfolio=path == "/portfolio")
            elif path.startswith("/static/"):
                self.static(path[len("/static/"):])
            elif path == "/favicon.ico":
                self._send(204, b"", "image/x-icon")
            elif path == "/api/health":
                self.json({"ok": True, "pid": os.getpid(), "now": time.time(), "started": self.app.started,
                           "base_url": self.app.base_url, "market_url": self.app.base_url + "/crypto/15M",
                           "wallet_origin": self.app.wallet_origin, "window_seconds": st.s.window_seconds,
                           "assets": list(st.s.assets), "orders": len(st.orders), "balance": st.balance})
            elif path == "/api/markets":
                self.json({"markets": st.markets()})
            elif path == "/api/orders":
                st.settle_due()
                q = self.query
                with st.lock:
                    orders = [dict(o) for o in st.orders
                              if (not q.get("asset") or o["asset"] == q["asset"].upper())
                              and (not q.get("slug") or o["slug"] == q["slug"])
                              and (not q.get("window_start") or str(o["window_start"]) == q["window_start"])]
                    self.json({"orders": orders, "balance": round(st.balance, 6)})
            elif path == "/api/settlements":
                st.settle_due()
                with st.lock:
                    self.json({"settlements": list(st.settlements)})
            elif path == "/api/faults":
                self.json({"faults": st.list_faults(), "kinds": KINDS})
            elif path == "/api/state":
                self.json(st.page_state())
            elif path == "/api/wallet":
                self.json(st.wallet_summary())
            elif path.startswith("/api/v3/") and (feed := binance_api.answer(st, path, self.query)) is not None:
                self.json(feed[1], feed[0])
            elif (api := market_api.answer(st, path, self.query)) is not None:   # /gamma/..., /clob/...
                self._send(api.status, api.body, api.content_type, api.headers)
            elif path.startswith("/api/requests/"):
                status = st.request_status(path[len("/api/requests/"):])
                if status is None:
                    self.error_json(404, f"no such wallet request: {path.rsplit('/', 1)[-1]}")
                else:
                    self.json(status)
            else:
                self.not_found()
        elif method == "POST":
            if path == "/api/reset":
                self.body_json()
                st.reset()
                self.json({"ok": True})
            elif path == "/api/faults":
                body = self.body_json()
                if isinstance(body, dict) and body.get("clear"):
                    self.json({"ok": True, "cleared": st.clear_faults()})
                    return
                try:
                    self.json({"ok": True, "armed": st.add_faults(body), "faults": st.list_faults()})
                except FaultError as exc:
                    self.error_json(400, str(exc))
            elif path == "/api/intents":
                body = self.body_json()
                if not isinstance(body, dict):
                    raise BadRequest("expected a JSON object with asset, side, amount, slug")
                origin = self.headers.get("Origin") or self.app.base_url
                try:
                    answer = st.create_request(body.get("asset"), body.get("side"), body.get("amount"),
                                               body.get("slug"), origin)
                except OrderError as exc:
                    self.error_json(422, str(exc))
                    return
                answer["popup"]["url"] = f"{self.app.wallet_origin}/notification.html?request={answer['request_id']}"
                self.json(answer)
            elif path == "/api/wallet/lock":
                self.body_json()
                st.lock_wallet()
                self.json({"ok": True, "locked": True})
            else:
                self.not_found()
        elif method == "DELETE" and path == "/api/faults":
            self.json({"ok": True, "cleared": st.clear_faults()})
        else:
            self.not_found()

    def page(self, portfolio: bool) -> None:
        st = self.app.state
        if not portfolio:
            if st.take_fault("page_500"):
                self._send(500, b"<!doctype html><title>500</title><h1>500 Internal Server Error</h1>",
                           CONTENT_TYPES[".html"])
                return
            slow = st.take_fault("slow_page")
            if slow and slow.ms:
                time.sleep(slow.ms / 1000.0)  # the fault itself: a deliberately slow answer
        overrides = {"variant": False, "unavailable": []}
        if not portfolio:
            with st.lock:
                once = [f for f in st.faults if f.mode == "once" and f.kind in ("markup_variant", "market_unavailable")]
            for f in once:
                if st.consume(f):
                    if f.kind == "markup_variant":
                        overrides["variant"] = True
                    else:
                        overrides["unavailable"] = list(st.s.assets) if f.asset is None else [f.asset]
        template = (STATIC / "market.html").read_text()
        html = (template.replace("__INITIAL_STATE__", _embed(st.page_state()))
                .replace("__OVERRIDES__", _embed(overrides))
                .replace("__WALLET_ORIGIN__", _embed(self.app.wallet_origin))
                .replace("__PAGE_KIND__", _embed("portfolio" if portfolio else "market")))
        self._send(200, html.encode(), CONTENT_TYPES[".html"])


class WalletHandler(_Handler):
    def own_port(self) -> int:
        return self.app.wallet_port

    def route(self, method: str, path: str) -> None:
        st = self.app.state
        if method in ("GET", "HEAD"):
            if path in ("/notification.html", "/popup.html", "/home.html", "/"):
                self.static("wallet.html")
            elif path.startswith("/static/"):
                self.static(path[len("/static/"):])
            elif path == "/favicon.ico":
                self._send(204, b"", "image/x-icon")
            elif path == "/wallet/api/request":
                self.json(st.wallet_view(self.query.get("id")))
            else:
                self.not_found()
        elif method == "POST":
            body = self.body_json()
            if not isinstance(body, dict):
                raise BadRequest("expected a JSON object")
            if path == "/wallet/api/unlock":
                if st.unlock(body.get("password")):
                    self.json({"ok": True})
                else:
                    self.error_json(403, "Incorrect password")
            elif path in ("/wallet/api/confirm", "/wallet/api/reject"):
                try:
                    if path.endswith("confirm"):
                        self.json(st.confirm(body.get("id")))
                    else:
                        self.json(st.reject(body.get("id")))
                except OrderError as exc:
                    self.error_json(409, str(exc))
            else:
                self.not_found()
        else:
            self.not_found()


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:
        log.debug("connection error from %s", client_address, exc_info=True)


def make_servers(app: App, port: int, wallet_port: int) -> tuple[QuietServer, QuietServer]:
    """Bind both servers on 127.0.0.1 (port 0 = the OS picks); fills app.port/app.wallet_port."""
    market_cls = type("BoundMarketHandler", (MarketHandler,), {"app": app})
    wallet_cls = type("BoundWalletHandler", (WalletHandler,), {"app": app})
    market = QuietServer(("127.0.0.1", port), market_cls)
    try:
        wallet = QuietServer(("127.0.0.1", wallet_port), wallet_cls)
    except OSError:
        market.server_close()
        raise
    app.port = market.server_address[1]
    app.wallet_port = wallet.server_address[1]
    return market, wallet
