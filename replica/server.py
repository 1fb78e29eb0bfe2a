"""The replica's two HTTP servers (standard library): the market site and the wallet origin.

Market port: the site's pages (replica/site_pages.py: the hub `/crypto/15M`, the event pages
`/event/<slug>`, `/portfolio`), its static files, the pages' own JSON (`/api/state[?slug=]`,
`/api/intents`, `/api/requests/<id>`) and the test/demo API
(`/api/health`, `/api/markets`, `/api/orders`, `/api/settlements`, `/api/reset`,
`/api/faults`, `/api/wallet`, `/api/wallet/settings`), and Binance-shaped price endpoints over the replica's own price
path (`/api/v3/ticker/price`, `/api/v3/klines`: see binance_api.py; the demo's signal engine
reads them), and Polymarket's public Gamma and CLOB read-only APIs under `/gamma/...` and
`/clob/...` (see market_api.py). Wallet port (another origin, as an extension is): the popup
`/notification.html` and its JSON under `/wallet/api/`. Both bind 127.0.0.1 only.

The request surface (origin, content type, Content-Length, JSON depth) is checked by the
shared handler base in http_base.py.
"""

from __future__ import annotations

import logging
import os
import time

from . import binance_api, market_api, site_pages
from .faults import KINDS, FaultError
from .http_base import CONTENT_TYPES, STATIC, BadRequest, QuietServer, Refused, _Handler  # noqa: F401
from .state import OrderError, ReplicaState

log = logging.getLogger("replica.http")
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


class MarketHandler(_Handler):
    def own_port(self) -> int:
        return self.app.port

    def route(self, method: str, path: str) -> None:
        st = self.app.state
        if method in ("GET", "HEAD"):
            if path == "/":
                self._send(302, b"", "text/plain", {"Location": "/crypto/15M"})
            elif path in site_pages.HUB_PATHS or path == "/portfolio" or path.startswith(site_pages.EVENT_PREFIX):
                self.page(path)
            elif path.startswith("/static/"):
                self.cached_static(path[len("/static/"):])
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
                self.json(site_pages.state_for(st, self.query.get("slug")))
            elif path == "/api/wallet":
                self.json(st.wallet_summary())
            elif path == "/api/wallet/settings":
                self.json(st.wallet_settings.to_dict())
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
            elif path == "/api/wallet/settings":   # account type, exchange version, danger alert, reject id
                try:
                    self.json({"ok": True, "settings": st.set_wallet_settings(self.body_json())})
                except OrderError as exc:
                    self.error_json(400, str(exc))
            else:
                self.not_found()
        elif method == "DELETE" and path == "/api/faults":
            self.json({"ok": True, "cleared": st.clear_faults()})
        else:
            self.not_found()

    def cached_static(self, name: str) -> None:
        """A static file, cacheable: the pages link it with `?v=<mtime>` (site_pages.static_url), so a
        tab moving from event page to event page does not fetch it again."""
        path = (STATIC / name).resolve()
        if path.parent != STATIC or not path.is_file():
            self.not_found()
            return
        self._send(200, path.read_bytes(), CONTENT_TYPES.get(path.suffix, "application/octet-stream"),
                   {"Cache-Control": "public, max-age=3600"})

    def page(self, path: str) -> None:
        st = self.app.state
        if path != "/portfolio":
            asset = site_pages.page_asset(path)   # an event page takes the faults armed for its asset
            if st.take_fault("page_500", asset):
                self._send(500, b"<!doctype html><title>500</title><h1>500 Internal Server Error</h1>",
                           CONTENT_TYPES[".html"])
                return
            slow = st.take_fault("slow_page", asset)
            if slow and slow.ms:
                time.sleep(slow.ms / 1000.0)  # the fault itself: a deliberately slow answer
        rendered = site_pages.render(st, path, self.app.wallet_origin)
        if rendered is None:
            self.not_found()
            return
        self._send(rendered.status, rendered.html, CONTENT_TYPES[".html"])


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
