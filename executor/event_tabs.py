"""The browser venue's tabs: one per asset, each on its current window's event page, checked against the APIs.

    tabs = EventTabs(cfg, site, view, waiter, on_window, notify, clicks=True)
    tabs.open(ctx)            # one tab per ASSETS entry, each sent to /event/<grid slug>
    tabs.follow()             # every loop pass (BrowserVenue.pause): page reports -> check or navigate
    tabs.asks("BTC")          # the book's best asks (CLOB /book), the page's prices as a cross-check
    tabs.refusal("BTC", start)   # why this window is refused (page and API disagree...), or None

The window comes from the UTC grid and its slug is deterministic (core.window_grid.window_slug).
A tab opens `/event/<slug>` (the hub MARKET_URL is the fallback when that page fails); when its
page reports (the observer in executor/browser.py) that its data is there, the page's embedded
event is checked against Gamma's market for the same window (executor/page_data.compare: window,
Up/Down token ids, condition id); only then is the window reported to the engine (`on_window`,
"page"). A tab moves to the next window's event page (future windows are listed ahead) as soon as
the engine has decided the current one (`window_done`), or AHEAD_S before the next one starts
once the current one is past ENTRY_END, so the page is open and checked at the start; and when
its page reports that its window ended ("Go to live market"), or the grid has moved past it, at
once. Several ASSETS: one tab each, so every asset's page is ready at its
window's start; orders still go one at a time.

A disagreement (window, token, price), an unreadable page or API answer (other than "down, try
again") refuses the window: `refusal()` says why, the window tracker (executor/windows.py) writes
the window's skip line with that reason, and no order is placed in it. With `clicks` (demo and
live), a trade button that would not place an order (Deposit, Log in, Unavailable) refuses too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from playwright.sync_api import BrowserContext, Page
from playwright.sync_api import Error as PlaywrightError

from core.market_shapes import ApiUnavailable, MarketDataError
from core.window_grid import window_at
from executor.browser import BINDING, observer_script
from executor.market_view import MarketView
from executor.page_data import PageDataError, compare, read_event
from executor.page_quotes import PageQuotes
from executor.pages import MarketPage, Waiter
from executor.profiles import SiteProfile, fill
from executor.steps import first_line
from executor.strike_reader import PriceToBeatReader

log = logging.getLogger("executor.venue")

API_RETRY_S = 1.0       # an API that is down is asked again this much later
AHEAD_S = 2.0           # a tab moves to the next window's event page this long before its start (once
                        # past ENTRY_END), so the page is open and checked when the window begins


@dataclass
class Tab:
    asset: str
    page: Page
    market: MarketPage
    slug: str | None = None       # the event the tab was sent to
    start: int | None = None
    loaded_at: float = 0.0        # monotonic
    ended: bool = False           # the page said its window ended
    check: bool = False           # the page reported its data: check it against the API
    check_after: float = 0.0      # monotonic: not before (an API that was down)
    data: str | None = None       # the data script's text, as the page reported it
    pending: str | None = None    # a URL the tab could not be sent to yet (a navigation was under way)
    http_error: int = 0           # the page's HTTP status when it was an error


class EventTabs:
    def __init__(self, cfg, site: SiteProfile, view: MarketView, waiter: Callable[[], Waiter],
                 on_window: Callable[[str, int, str, float, str], None], notify: Callable[[str, str], None],
                 clicks: bool, clock: Callable[[], float] = time.time):
        self.cfg, self.site, self.view, self.waiter = cfg, site, view, waiter
        self.on_window, self.notify, self.clicks, self.clock = on_window, notify, clicks, clock
        parts = urlsplit(cfg.market_url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.tabs: dict[str, Tab] = {}
        self.refusals: dict[str, tuple[int, str]] = {}
        self.quotes = PageQuotes(view, site, self.refuse, notify, clicks)
        self._ctx: BrowserContext | None = None
        self._records: Page | None = None
        self._said: dict[str, float] = {}
        self._prefetched: dict[str, int] = {}
        self.done: dict[str, int] = {}    # asset -> the window the engine has decided (traded or skipped)
        self.strikes = PriceToBeatReader(cfg)

    def open(self, ctx: BrowserContext, first: Page) -> None:
        self._ctx = ctx
        for i, asset in enumerate(self.cfg.assets):
            page = first if i == 0 else ctx.new_page()
            page.expose_binding(BINDING, lambda source, payload, a=asset: self._on_report(a, payload))
            page.add_init_script(observer_script(self.site))
            market = MarketPage(page, self.site, asset, self.waiter(), self.cfg.step_timeout, self.records_page)
            self.tabs[asset] = Tab(asset, page, market)
        self.follow()

    def pages(self) -> list[Page]:
        return [t.page for t in self.tabs.values()]

    def _on_report(self, asset: str, payload: object) -> None:
        """The page's observer (delivered during any Playwright call, e.g. while another asset trades):
        a page with its data is checked at once; an ended window or an HTTP error is handled in `follow`."""
        tab = self.tabs.get(asset)
        if tab is None or not isinstance(payload, dict) or payload.get("slug") != tab.slug:
            return
        tab.ended = tab.ended or bool(payload.get("ended"))
        status = payload.get("status")
        if isinstance(status, int) and status >= 400:
            tab.http_error = status
        if isinstance(payload.get("data"), str) and tab.market.event is None:
            tab.data = payload["data"]
            self.verify(tab)   # no page call needed: the data came with the report (the API is one GET)
        word = self.site.not_an_order_word(payload.get("button")) if self.clicks else None
        if word and tab.start is not None and not tab.ended and self.clock() < tab.start + self.cfg.window_seconds:
            self.refuse(asset, tab.start, f"the trade button reads {payload.get('button')!r}: not an order ({word})")

    def follow(self) -> None:
        """Each tab: on to the grid's window when its own is over; then check the pages that are ready
        (all tabs navigate first, so their pages load side by side)."""
        now = self.clock()
        for tab in self.tabs.values():
            grid = window_at(tab.asset, now, self.cfg.window_seconds)
            over = tab.start is None or now >= tab.start + self.cfg.window_seconds or tab.ended
            if tab.slug != grid.slug and over:
                self.navigate(tab, grid.slug, grid.start)
            elif tab.slug == grid.slug and (self.done.get(tab.asset) == grid.start or
                                            now >= max(grid.start + self.cfg.entry_end, grid.end - AHEAD_S)):
                nxt = grid.next()   # nothing more to trade here: the next window's page, ready at its start
                self.navigate(tab, nxt.slug, nxt.start)
        for tab in self.tabs.values():
            if tab.pending:
                self._go(tab)
            elif tab.http_error:
                url, code, tab.http_error = self.origin + self.site.event_path(str(tab.slug)), tab.http_error, 0
                log.warning("%s: %s answered HTTP %d; trying the hub %s", tab.asset, url, code, self.cfg.market_url)
                self._via_hub(tab, f"{url} answered HTTP {code}")
            elif tab.check and time.monotonic() >= tab.check_after:
                self.verify(tab)
            elif tab.market.loading and time.monotonic() - tab.loaded_at > self.cfg.step_timeout:
                self._no_data(tab)
            elif tab.start is not None and now > tab.start + self.cfg.window_seconds / 2:
                self._prefetch(tab.asset, tab.start + self.cfg.window_seconds)
            self.strikes.poll(tab.asset, tab.market)   # the price to beat, on to the signal engine

    def navigate(self, tab: Tab, slug: str, start: int) -> None:
        """Send the tab to the event page without waiting for it: the page reports when its data is
        there (or its HTTP error), so all tabs load side by side while the loop goes on."""
        tab.slug, tab.start, tab.ended, tab.check, tab.data, tab.http_error = slug, start, False, False, None, 0
        tab.loaded_at = time.monotonic()
        tab.market.loaded_slug, tab.market.event, tab.market.loading, tab.market.dirty = slug, None, True, False
        tab.pending = self.origin + self.site.event_path(slug)
        self._go(tab)

    def _go(self, tab: Tab) -> None:
        """Assign the tab's location; while another navigation holds the page, try again on the next
        pass, and after STEP_TIMEOUT the long way (goto, then the hub)."""
        url = str(tab.pending)
        try:
            tab.page.evaluate("url => { window.location.assign(url); }", url)
            tab.pending = None
            return
        except PlaywrightError as exc:
            if time.monotonic() - tab.loaded_at < self.cfg.step_timeout:
                log.debug("%s: the page is busy (%s); going to %s on the next pass", tab.asset, first_line(exc), url)
                return
        tab.pending = None
        try:
            resp = tab.page.goto(url, wait_until="commit", timeout=self.cfg.step_timeout * 1000)
        except PlaywrightError as exc:
            self._via_hub(tab, f"opening {url} failed ({first_line(exc)})")
            return
        if resp is not None and resp.status >= 400:
            self._via_hub(tab, f"{url} answered HTTP {resp.status}")

    def _via_hub(self, tab: Tab, why: str) -> None:
        """The fallback: the hub's link to this window's event page (matched by its slug)."""
        link = fill(self.site.page["hub_event_link"], asset_lower=tab.asset.lower())
        try:
            tab.page.goto(self.cfg.market_url, wait_until="domcontentloaded", timeout=self.cfg.step_timeout * 1000)
            hrefs = tab.page.locator(link).evaluate_all("els => els.map(e => e.getAttribute('href'))")
        except PlaywrightError as exc:
            self.refuse(tab.asset, tab.start or 0, f"{why}, and the hub could not be read ({first_line(exc)})")
            return
        slugs = {str(h).rstrip("/").rsplit("/", 1)[-1]: str(h) for h in hrefs if h}
        if tab.slug not in slugs:
            listed = sorted(s for s in slugs if str(tab.start) in s) or sorted(slugs)[:4]
            self.refuse(tab.asset, tab.start or 0, f"{why}; the hub lists {', '.join(listed) or 'no event'} for"
                        f" {tab.asset}, not {tab.slug}")
            return
        try:
            tab.page.goto(urljoin(self.origin + "/", slugs[tab.slug]), wait_until="commit",
                          timeout=self.cfg.step_timeout * 1000)
            log.info("%s: opened %s through the hub", tab.asset, tab.slug)
        except PlaywrightError as exc:
            self.refuse(tab.asset, tab.start or 0, f"{why}; the hub's link failed too ({first_line(exc)})")

    def reload(self) -> None:
        """A fresh page (no half-filled form) in the tabs a trade touched, else in every tab; each is
        checked again when it reports."""
        touched = [t for t in self.tabs.values() if t.market.dirty]
        for tab in touched or list(self.tabs.values()):
            if tab.slug is not None and tab.start is not None:
                self.navigate(tab, tab.slug, tab.start)

    def records_page(self) -> Page | None:
        """A tab on the portfolio (every order, for windows the asset tabs no longer show)."""
        if self._records is not None and not self._records.is_closed():
            return self._records
        if self._ctx is None:
            return None
        try:
            page = self._ctx.new_page()
            page.goto(self.origin + self.site.urls["portfolio"], wait_until="domcontentloaded",
                      timeout=self.cfg.step_timeout * 1000)
        except PlaywrightError as exc:
            log.warning("the portfolio page could not be opened: %s", first_line(exc))
            return None
        self._records = page
        return page

    def verify(self, tab: Tab) -> None:
        slug, start = str(tab.slug), int(tab.start or 0)
        tab.check = False
        try:
            ev = read_event(tab.data if tab.data is not None else tab.market.data_text(), slug)
            api = self.view.market(tab.asset, start)
        except PageDataError as exc:
            self.refuse(tab.asset, start, f"the event page {slug} cannot be read: {exc}")
            return
        except ApiUnavailable as exc:
            tab.check, tab.check_after = True, time.monotonic() + max(API_RETRY_S, exc.retry_after or 0)
            self._say(tab.asset, f"{tab.asset}: the APIs cannot confirm {slug} yet ({exc}); asking again")
            return
        except MarketDataError as exc:
            self.refuse(tab.asset, start, f"the APIs do not confirm window {slug}: {exc}")
            return
        why = compare(ev, api, slug)
        if not why and (api.closed or api.accepting_orders is False):
            why = f"the APIs say market {slug} is {'closed' if api.closed else 'not accepting orders'}"
        if why:
            self.refuse(tab.asset, start, why)
            return
        tab.market.event, tab.market.loading = ev, False
        self.on_window(tab.asset, ev.start, ev.slug, -1.0, "page")

    def _no_data(self, tab: Tab) -> None:
        """No report STEP_TIMEOUT after the page was opened: read it directly; without data, refuse."""
        tab.market.loading = False   # from now on the markup check judges this page
        if tab.market.data_text() is not None:
            tab.check = True
            return
        sel = self.site.page["event_data"]
        self.refuse(tab.asset, int(tab.start or 0), f"the event page {tab.slug} shows no embedded data ({sel})"
                    f" {self.cfg.step_timeout:g}s after it was opened")

    def _prefetch(self, asset: str, start: int) -> None:
        """The next window's market (token ids) ahead of time, so its page is checked at once."""
        if self._prefetched.get(asset) == start:
            return
        self._prefetched[asset] = start
        try:
            self.view.market(asset, start)
        except MarketDataError as exc:
            log.debug("%s: the next window's market is not listed yet: %s", asset, exc)

    def window_done(self, asset: str, start: int) -> None:
        """The engine decided this window (its decision line is written): the tab may move on."""
        self.done[asset] = int(start)

    def refuse(self, asset: str, start: int, reason: str) -> None:
        tab = self.tabs.get(asset)
        if tab is not None and tab.start == start:
            tab.market.loading = False
        if self.refusals.get(asset, (None, ""))[0] == start:
            return
        self.refusals[asset] = (start, reason)
        log.error("%s window %s refused: %s", asset, start, reason)

    def refusal(self, asset: str, start: int) -> str | None:
        got = self.refusals.get(asset)
        return got[1] if got is not None and got[0] == start else None

    def asks(self, asset: str) -> tuple[float | None, float | None]:
        """The book's best asks for the window the tab shows, cross-checked with the page
        (executor/page_quotes.py); (None, None) while nothing can be traded."""
        tab = self.tabs.get(asset)
        ev = tab.market.event if tab else None
        if tab is None or ev is None or self.refusal(asset, ev.start):
            return None, None
        return self.quotes.asks(tab.market, asset, ev.start)

    def _say(self, key: str, message: str) -> None:
        """A warning at most every 10 s per key (a loop polling every 50 ms must not flood the log)."""
        if time.monotonic() - self._said.get(key, -1e9) >= 10.0:
            self._said[key] = time.monotonic()
            log.warning("%s", message)
