"""The replica's HTTP handler base and server: JSON and static replies, and the local surface.

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
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

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


class _Handler(BaseHTTPRequestHandler):
    app: object   # the replica.server.App, bound by make_servers
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


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:
        log.debug("connection error from %s", client_address, exc_info=True)
