"""The browser venue (Polymarket's site, or the replica that copies it): event pages, public APIs, wallet popup.

One persistent Chromium context on the user's profile, one tab per asset on its window's event page
(executor/event_tabs.py: the window from the UTC grid and the deterministic slug, the page checked
against Gamma, the tab sent to the next event page when its window ends); quotes from the CLOB
book with the page's prices as the cross-check; orders through `ClickThrough` (the visible trade
widget's outcome `value`, Buy + Market, the amount, the trade button only when it reads "Buy Up" /
"Buy Down", the wallet popup with the wallet guard); success, reconciliation and the settlement
estimate read the venue's own History rows (executor/records.py). Used in demo (against the
replica) and live; the paper venue reuses everything but the click.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

from executor.browser import launch
from executor.event_tabs import EventTabs
from executor.market_view import MarketView
from executor.pages import Interrupted, MarketPage, StepTimeout, Waiter
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
        self.tabs: EventTabs | None = None
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
        self.page = page
        self.tabs = EventTabs(self.cfg, self.site, self.view, self.waiter, self._window_seen, self.notify,
                              clicks=self.kind == "browser")
        log.info("opening the event pages of %s on %s", ",".join(self.cfg.assets), self.tabs.origin)
        self.tabs.open(ctx, page)
        for tab_page in self.tabs.pages():
            tab_page.on("crash", lambda *_: self._gone.set())
            tab_page.on("close", lambda *_: self._gone.set())
        self.markets = {a: t.market for a, t in self.tabs.tabs.items()}

    def _window_seen(self, asset: str, start: int, slug: str, seen: float, via: str) -> None:
        """A tab's event page was checked against the APIs: its window is on the page."""
        if self._on_window is not None:
            self._on_window(asset, start, slug, seen, via)

    def close(self) -> None:
        ctx, self.ctx, self.page = self.ctx, None, None
        if ctx is None:
            return
        try:
            ctx.close()
        except PlaywrightError as exc:
            log.debug("closing the browser: %s", exc)  # already gone: nothing more to close

    def check_alive(self) -> None:
        if self._gone.is_set() or self.page is None or any(p.is_closed() for p in self.markets_pages()):
            raise VenueGone("the browser or one of its event pages closed")

    def markets_pages(self) -> list[Page]:
        return self.tabs.pages() if self.tabs is not None else []

    def pause(self, ms: int) -> None:
        """Let the pages' reports arrive, then follow them (check a page, or go to the next window)."""
        if self.page is not None:
            self.page.wait_for_timeout(ms)
        if self.tabs is not None:
            self.tabs.follow()

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
                self.page.locator(logged_in).first.wait_for(state="visible", timeout=self.cfg.step_timeout * 1000)
                ok = True
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
        """(slug, start) of the event page the asset's tab shows, once checked against the APIs."""
        return self.markets[asset].window()

    def refusal(self, asset: str, start: int) -> str | None:
        """Why the window starting at `start` is refused (page and API disagree...), or None."""
        return self.tabs.refusal(asset, start) if self.tabs is not None else None

    def window_done(self, asset: str, start: int) -> None:
        """The engine decided this window: the asset's tab may go to the next window's page now."""
        if self.tabs is not None:
            self.tabs.window_done(asset, start)

    def page_ready(self, asset: str) -> bool:
        """False while the asset's tab is on its way to a checked event page (no verdict on selectors)."""
        return not self.markets[asset].loading

    def missing_selectors(self, asset: str) -> list[tuple[str, str]]:
        return self.markets[asset].missing_selectors()

    def asks(self, asset: str) -> tuple[float | None, float | None]:
        """The best asks of Up and Down from the CLOB book, cross-checked with the page."""
        return self.tabs.asks(asset) if self.tabs is not None else (None, None)

    # ---- orders ------------------------------------------------------------------------------
    def place(self, order: Order, on_submitted: Callable[[], None]) -> Outcome:
        from executor.wallet_guard import GuardUnavailable, order_check  # here: only this method is ours

        cfg = self.cfg
        try:   # the guard first: the intended side's token id from the market data, the allow-list, the address
            guard = order_check(cfg, self.wallet, self.view, order, self.market_origin)
        except GuardUnavailable as exc:
            return Outcome("failed", str(exc), "wallet_guard", {"reason": str(exc), "step": "wallet_guard"})
        self.in_trade = True
        try:
            ct = ClickThrough(self.ctx, self.markets[order.asset], self.wallet, self.waiter(), cfg.step_timeout,
                              str(cfg.metamask_password), guard, self._screenshot, on_submitted)
            return ct.run(order)
        finally:
            self.in_trade = False

    def find_order(self, asset: str, slug: str, order: Order, wait: float) -> dict | None:
        """Our order of window `slug` in the venue's own record (History rows: the asset's event page
        when it shows that window, else the portfolio); NotReadable when no History can be read."""
        market = self.markets.get(asset) or MarketPage(self.page, self.site, asset, self.waiter(),
                                                       self.cfg.step_timeout, self.tabs.records_page if self.tabs
                                                       else None)
        try:
            self.waiter().until(lambda: market.rows(slug) is not None, wait, "reconcile", "the History panel",
                                interruptible=True)
        except StepTimeout:
            rec = self.site.records
            raise NotReadable(f"no History panel ({rec['heading']} {rec['history_title']!r}) could be read") from None
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
        """The market's own resolution (executor.resolution); the orders panel's result is the
        estimate once RESOLUTION_WAIT has passed without one."""
        from executor.resolution import ResolutionWatch  # here: only this method is this module's part of it

        def panel() -> dict | None:
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

        return ResolutionWatch.of(self.view, self.cfg).result(fill, panel, "panel")

    # ---- housekeeping ------------------------------------------------------------------------
    def housekeeping(self) -> None:
        """Reject wallet requests that no intent asked for (never while a trade is in progress)."""
        if self.in_trade or self.ctx is None:
            return
        for p in list(self.ctx.pages):
            if p in self.markets_pages() or p.is_closed() or not self.wallet.is_popup_url(p.url):
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
        if self.tabs is not None:
            self.tabs.reload()

    def screenshot(self, name: str, step: str) -> str | None:
        """The tab of the asset the name's slug belongs to (else the first tab)."""
        page = next((m.page for a, m in self.markets.items() if f"{a.lower()}-updown-" in name), self.page)
        return self._screenshot(name, step, page, None)

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
