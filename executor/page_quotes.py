"""The browser venue's quotes: the CLOB book's best asks, cross-checked with what the event page shows.

    quotes = PageQuotes(view, site, refuse, notify, clicks)
    quotes.asks(market_page, "BTC", start)   # (up, down) best asks, or (None, None) while not tradable

The decision's price is the book's best ask (CLOB `/book`, read at most every BOOK_TTL_S). The page
is the cross-check: its outcome buttons' prices must stay within MAX_PRICE_GAP of the book; a gap
that lasts GAP_GRACE_S (the page refreshes its prices on its own schedule) refuses the window, a
shorter one only waits. With `clicks` (demo and live) a trade button that would not place an
order (Deposit, Log in, Unavailable) refuses the window too; paper never clicks, so it ignores it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from core.market_shapes import ApiUnavailable, MarketDataError
from executor.market_view import MarketView
from executor.pages import MarketPage
from executor.profiles import SiteProfile

log = logging.getLogger("executor.venue")

MAX_PRICE_GAP = 0.05    # the page's outcome price vs the book's best ask
GAP_GRACE_S = 2.0       # a larger gap lasting this long refuses the window (a stale page only waits)
BOOK_TTL_S = 0.5        # books are read at most this often per asset (the decision polls every 50 ms)
SAY_EVERY_S = 10.0


class PageQuotes:
    def __init__(self, view: MarketView, site: SiteProfile, refuse: Callable[[str, int, str], None],
                 notify: Callable[[str, str], None], clicks: bool):
        self.view, self.site, self.refuse, self.notify, self.clicks = view, site, refuse, notify, clicks
        self._books: dict[str, tuple[int, float, tuple[float | None, float | None]]] = {}
        self._gaps: dict[str, tuple[int, float]] = {}    # asset -> (window, when the gap was first seen)
        self._said: dict[str, float] = {}

    def asks(self, page: MarketPage, asset: str, start: int) -> tuple[float | None, float | None]:
        api = self._book_asks(asset, start)
        if api is None:
            return None, None
        shown, text = page.quotes_shown()
        word = self.site.not_an_order_word(text) if self.clicks else None
        if word:
            self.refuse(asset, start, f"the trade button reads {text!r}: not an order ({word})")
            return None, None
        gaps = [(side, shown.get(side), ask) for side, ask in zip(("UP", "DOWN"), api, strict=True)
                if ask is not None and shown.get(side) is not None and abs(shown[side] - ask) > MAX_PRICE_GAP + 1e-9]
        if gaps:
            side, seen, ask = gaps[0]
            first = self._gaps.setdefault(asset, (start, time.monotonic()))
            if first[0] != start:
                first = self._gaps[asset] = (start, time.monotonic())
            why = (f"the page shows {side} at {seen:.2f}, the book's best ask is {ask:.2f} (page and API disagree"
                   f" on the price by more than {MAX_PRICE_GAP:g}")
            if time.monotonic() - first[1] >= GAP_GRACE_S:
                self.refuse(asset, start, f"{why} for {GAP_GRACE_S:g} s)")
            else:
                self._say(f"gap-{asset}", f"{asset}: {why}); waiting up to {GAP_GRACE_S:g} s for the page")
            return None, None
        self._gaps.pop(asset, None)
        return api

    def _book_asks(self, asset: str, start: int) -> tuple[float | None, float | None] | None:
        cached = self._books.get(asset)
        if cached is not None and cached[0] == start and time.monotonic() - cached[1] < BOOK_TTL_S:
            return cached[2]
        try:
            asks = (self.view.book(asset, start, "Up").best_ask(), self.view.book(asset, start, "Down").best_ask())
        except ApiUnavailable as exc:
            self._say(f"book-{asset}", f"{asset}: no quote from the CLOB ({exc}); waiting")
            return None
        except MarketDataError as exc:
            self.refuse(asset, start, f"the CLOB book cannot be read: {exc}")
            if exc.kind == "api_geoblock":
                self.notify("halt", f"{asset}: the APIs refuse this machine (403, geoblocked?): {exc}")
            return None
        self._books[asset] = (start, time.monotonic(), asks)
        return asks

    def _say(self, key: str, message: str) -> None:
        """A warning at most every SAY_EVERY_S per key (a loop polling every 50 ms must not flood the log)."""
        if time.monotonic() - self._said.get(key, -1e9) >= SAY_EVERY_S:
            self._said[key] = time.monotonic()
            log.warning("%s", message)
