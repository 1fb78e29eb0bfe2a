"""The venue's price to beat, passed on to the signal engine (core/strikes.py, STATE_DIR/strikes.json).

The market resolves against the page's "price to beat" (Chainlink's price at the window's start), not
the exchange feed's open; the engine computes prob_up against it when it knows it (issue 14). Each
asset's event page gives it in its embedded data (`openPrice`, read when the page was checked against
the APIs) or, when the page was loaded before the price was published, in the visible "Price to
beat" value (`page.price_to_beat_value` of the site profile), which appears after a delay: read at
most once a second per asset until found, once per window.
"""

from __future__ import annotations

import logging
import time

from playwright.sync_api import Error as PlaywrightError

from core import strikes
from core.market_shapes import number
from executor.pages import MarketPage

log = logging.getLogger("executor.strikes")

POLL_S = 1.0
QUICK_MS = 300


def _price(text: str | None) -> float | None:
    cleaned = (text or "").replace("$", "").replace(",", "").strip()
    value = number(cleaned) if cleaned else None
    return value if value is not None and value > 0 else None


class PriceToBeatReader:
    def __init__(self, cfg) -> None:
        self.cfg = cfg
        self.recorded: dict[str, int] = {}      # asset -> the window whose strike is written
        self._next: dict[str, float] = {}       # asset -> monotonic time of the next visible read

    def poll(self, asset: str, market: MarketPage) -> None:
        """Record the price to beat of the window `market` shows, once, when the page has it."""
        ev = market.event
        if ev is None or market.loading or self.recorded.get(asset) == ev.start:
            return
        price, source = ev.open_price, "page"
        if price is None:
            if time.monotonic() < self._next.get(asset, 0.0):
                return
            self._next[asset] = time.monotonic() + POLL_S
            price = self._visible(market)
        if price is None:
            return
        try:
            strikes.write_strike(self.cfg.state_dir, asset, ev.start, price, source)
        except ValueError as exc:
            log.warning("%s %s: price to beat %r not recorded: %s", asset, ev.slug, price, exc)
        except OSError as exc:   # the signal engine falls back to the feed's open; the executor says so
            log.error("%s %s: cannot write the price to beat to %s: %s; the signal engine keeps the feed's"
                      " open as the strike", asset, ev.slug, strikes.strikes_path(self.cfg.state_dir), exc)
            return
        self.recorded[asset] = ev.start
        log.info("%s %s: price to beat %s (from the page)", asset, ev.slug, price)

    @staticmethod
    def _visible(market: MarketPage) -> float | None:
        """The value beside the profile's "Price to beat" label (a sibling: looked up in its parent)."""
        label = market.page.get_by_text(market.site.page["price_to_beat_label"], exact=True)
        loc = label.locator("xpath=..").locator(market.site.page["price_to_beat_value"])
        try:
            return _price(loc.first.text_content(timeout=QUICK_MS)) if loc.count() else None
        except PlaywrightError:
            return None
