"""The browser venue: the market page and the wallet popup, driven through their page objects.

One persistent Chromium context on the user's profile. The page reports window changes through a
MutationObserver bound to Python; orders go through `ClickThrough` (outcome button, amount, Buy,
wallet popup with the wallet guard); reconciliation and live settlement read the page's own
orders panel. Used in demo (against the replica) and live.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

from executor.browser import BINDING, launch, observer_script
from executor.market_view import MarketView
from executor.pages import Interrupted, MarketPage, StepTimeout, Waiter, parse_window_start
from executor.profiles import SiteProfile, WalletProfile
from executor.trade import NOT_PLACED, ClickThrough, Order, Outcome, row_fields
from executor.venue import NotReadable, VenueGone, VenueRefused, WindowCallback
from executor.wallet_page import WalletPopup

log = logging.getLogger("executor.venue")


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:120]


def first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


class BrowserVenue:
    kind = "browser"

    def __init__(self, cfg, tick: Callable[[], None], should_stop: Callable[[], bool], notify=None):
        self.cfg = cfg
        self.site = SiteProfile.load(cfg.site_profile_path)
        self.wallet = WalletProfile.load(cfg.wallet_profile_path)
        self.tick, self.should_stop = tick, should_stop
        self.notify = notify or (lambda event, text: None)
        self.market_origin = origin_of(cfg.market_url)
        self.ctx = None
        self.page: Page | None = None
        self.markets: dict[str, MarketPage] = {}
        self._gone = threading.Event()
        self._on_window: WindowCallback | None = None
        self.in_trade = False
        self.view = MarketView.from_config(cfg)   # Gamma/CLOB: token ids, books, resolutions (worker thread)

    # ---- connection --------------------------------------------------------------------------
    def waiter(self) -> Waiter:
        return Waiter(lambda: self.page, tick=self.tick, should_stop=self.should_stop)

    def open(self, pw, on_window: WindowCallback) -> None:
        self._on_window = on_window
        if self.cfg.mode == "live" and not self.cfg.metamask_password:
            self._require_unlocked_wallet(pw)
        self._launch(pw)

    def _launch(self, pw) -> None:
        self._gone.clear()
        self.ctx = ctx = launch(pw, self.cfg)
        ctx.on("close", lambda *_: self._gone.set())
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        for extra in ctx.pages[1:]:
            extra.close()
        page.on("crash", lambda *_: self._gone.set())
        page.on("close", lambda *_: self._gone.set())
        page.expose_binding(BINDING, self._on_binding)
        page.add_init_script(observer_script(self.site, self.cfg.assets))
        self.page = page
        self.markets = {a: MarketPage(page, self.site, a, self.waiter(), self.cfg.step_timeout)
                        for a in self.cfg.assets}
        log.info("opening %s", self.cfg.market_url)
        page.goto(self.cfg.market_url, timeout=self.cfg.step_timeout * 1000, wait_until="domcontentloaded")

    def _on_binding(self, source, payload) -> None:
        """Called (in the Playwright thread) by the page's MutationObserver on every window change."""
        if self._on_window is None or not isinstance(payload, dict):
            log.warning("window event from the page not understood: %r", payload)
            return
        asset = str(payload.get("asset", "")).upper()
        start = parse_window_start(str(payload.get("start")))
        slug = str(payload.get("slug") or "")
        if asset not in self.markets or start is None or not slug:
            log.warning("window event from the page not understood: %r", payload)
            return
        self._on_window(asset, start, slug, -1.0, "page")

    def close(self) -> None:
        ctx, self.ctx, self.page = self.ctx, None, None
        if ctx is None:
            return
        try:
            ctx.close()
        except PlaywrightError as exc:
            log.debug("closing the browser: %s", exc)  # already gone: nothing more to close

    def check_alive(self) -> None:
        if self._gone.is_set() or self.page is None or self.page.is_closed():
            raise VenueGone("the browser or its page closed")

    def pause(self, ms: int) -> None:
        if self.page is not None:
            self.page.wait_for_timeout(ms)

    def _require_unlocked_wallet(self, pw) -> None:
        """Live without METAMASK_PASSWORD: go on only if the page shows a connected account and no
        wallet popup asks for a password; otherwise refuse (exit 2). Checked once per launch."""
        try:
            self._launch(pw)
        except PlaywrightError as exc:
            raise VenueRefused("live mode without METAMASK_PASSWORD: could not check that the wallet is unlocked"
                               f" ({first_line(exc)}); set METAMASK_PASSWORD in .env") from None
        logged_in = self.site.page.get("logged_in")
        ok = False
        if logged_in:
            try:
                ok = self.page.locator(logged_in).first.is_visible()
            except PlaywrightError:
                ok = False
        popup = next((p for p in self.ctx.pages if self.wallet.is_popup_url(p.url)), None)
        if popup is not None and WalletPopup(popup, self.wallet, self.waiter(), 1).visible("unlock_password"):
            ok = False
        self.close()
        if not ok:
            raise VenueRefused("live mode needs METAMASK_PASSWORD or a wallet that is already unlocked and connected"
                               " (the page shows no logged-in account); set it in .env, not on the command line")

    # ---- market data -------------------------------------------------------------------------
    def shown_window(self, asset: str) -> tuple[str, int] | None:
        return self.markets[asset].window()

    def missing_selectors(self, asset: str) -> list[tuple[str, str]]:
        return self.markets[asset].missing_selectors()

    def asks(self, asset: str) -> tuple[float | None, float | None]:
        return self.markets[asset].asks()

    # ---- orders ------------------------------------------------------------------------------
    def place(self, order: Order, on_submitted: Callable[[], None]) -> Outcome:
        cfg = self.cfg
        self.in_trade = True
        try:
            ct = ClickThrough(self.ctx, self.markets[order.asset], self.wallet, self.waiter(), cfg.step_timeout,
                              str(cfg.metamask_password), self.market_origin, cfg.amount_tolerance,
                              self._screenshot, on_submitted, max_slippage=cfg.max_slippage)
            return ct.run(order)
        finally:
            self.in_trade = False

    def find_order(self, asset: str, slug: str, order: Order, wait: float) -> dict | None:
        market = self.markets.get(asset) or MarketPage(self.page, self.site, asset, self.waiter(),
                                                       self.cfg.step_timeout)
        try:
            self.waiter().until(lambda: market.page_loc("orders_panel").count() > 0, wait, "reconcile",
                                "the orders panel", interruptible=True)
        except StepTimeout:
            raise NotReadable(f"selector page.orders_panel ({self.site.page['orders_panel']}) matched nothing") \
                from None
        except Interrupted:
            raise NotReadable("stopping") from None
        try:
            row = self.waiter().until(lambda: market.order_row(slug), 1.5, "reconcile", "the order's row",
                                      interruptible=True)
        except StepTimeout:
            return None
        except Interrupted:
            raise NotReadable("stopping") from None
        return {**row_fields(row, order), "order_id": row.get("id")}

    def existing_order(self, asset: str, slug: str) -> dict | None:
        row = self.markets[asset].order_row(slug)
        if row is None or (row.get("status") or "").lower() in NOT_PLACED:
            return None
        return {"order_id": row.get("id"), "side": (row.get("side") or "").upper() or None,
                "amount": row.number("amount"), "price": row.number("price"), "shares": row.number("shares"),
                "fee": row.number("fee"), "status": row.get("status")}

    def window_result(self, fill: dict) -> dict | None:
        market = self.markets.get(str(fill.get("asset")))
        row = market.order_row(str(fill.get("slug"))) if market else None
        result = (row.get("result") or "").lower() if row else ""
        if result not in ("won", "lost"):
            return None
        amount = float(fill.get("amount") or 0)
        payout = row.number("payout")
        if payout is None:
            payout = float(fill.get("shares") or 0) if result == "won" else 0.0
        return {"outcome": result, "payout": round(payout, 6), "fee": fill.get("fee"),
                "pnl": round(payout - amount, 6)}

    # ---- housekeeping ------------------------------------------------------------------------
    def housekeeping(self) -> None:
        """Reject wallet requests that no intent asked for (never while a trade is in progress)."""
        if self.in_trade or self.ctx is None:
            return
        for p in list(self.ctx.pages):
            if p is self.page or p.is_closed() or not self.wallet.is_popup_url(p.url):
                continue
            popup = WalletPopup(p, self.wallet, self.waiter(), min(self.cfg.step_timeout, 3.0))
            try:
                if popup.visible("cancel"):
                    req = popup.read_request()
                    popup.reject()
                    log.warning("rejected a wallet request no intent asked for (origin %s, %s)", req.origin,
                                req.fields.get("primary_type"))
                    self.notify("wallet_rejected", f"rejected an unexpected wallet request from {req.origin}")
                else:
                    p.close()
            except (PlaywrightError, StepTimeout, Interrupted) as exc:
                log.warning("could not dismiss an unexpected wallet popup: %s", exc)

    def after_failed_trade(self) -> None:
        try:
            self.page.reload(wait_until="domcontentloaded", timeout=self.cfg.step_timeout * 1000)
        except PlaywrightError as exc:
            log.warning("reloading the market page failed: %s", first_line(exc))

    def screenshot(self, name: str, step: str) -> str | None:
        return self._screenshot(name, step, self.page, None)

    def _screenshot(self, trade_id: str, step: str, page: Page | None, popup: WalletPopup | None) -> str | None:
        """PNG of the market page (and of the wallet popup, password field cleared first); returns
        the market page's file. Each part is best effort: a closing popup must not lose the other."""
        d = self.cfg.screenshot_dir
        d.mkdir(parents=True, exist_ok=True)
        name = safe_name(f"{trade_id}-{step}")
        out = None
        if popup is not None and not popup.page.is_closed():
            try:
                popup.clear_password_field()
                popup.page.screenshot(path=str(d / f"{name}-wallet.png"), timeout=3000)
            except PlaywrightError as exc:
                log.warning("screenshot of the wallet popup failed: %s", first_line(exc))
        if page is not None and not page.is_closed():
            try:
                page.screenshot(path=str(d / f"{name}.png"), timeout=5000)
                out = d / f"{name}.png"
            except PlaywrightError as exc:
                log.warning("screenshot of the market page failed: %s", first_line(exc))
        return str(out) if out else None
