"""The paper venue: the browser venue's market data (the same page, windows and asks), a simulated
fill that walks the market's order book (CLOB `/book`) at decision time, never a click on Buy, and
settlement from the market's own resolution (executor.resolution), the feed's prices being the
estimate when the market is late.

The fill: the token of the side bought (Gamma's market, paired by outcome name), its asks walked
for the order's amount (`Book.ask_for`), the fee of each level touched from the market's
`feeSchedule` (FEE_RATE/FEE_EXPONENT only when the market publishes none: `fee_source` says which),
taken in shares as the venue does. No fill, a `failed` with `cause`, when the market data cannot be
read (api_down, api_slow, api_rate_limited, api_geoblock, api_html, api_malformed,
market_not_found), the market is closed (market_closed), the book has no asks (empty_book) or too
little depth for the amount (thin_book), or the walk averages worse than the decision's price by
more than MAX_SLIPPAGE (slippage).

A paper intent whose simulated fill was never journaled (a crash between the two lines) has no
order anywhere: `find_order` says so at once and reconciliation marks it failed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from core import fees
from core.market_shapes import Book, Market, MarketDataError
from executor.resolution import ResolutionWatch, settle_fields
from executor.trade import Order, Outcome
from executor.venue_browser import BrowserVenue

SETTLE_LAST_PRICE_AFTER_S = 5.0   # without the next window's open, the last price this long after the end
API_PROBLEMS = {
    "api_down": "the market-data API is down or unreachable",
    "api_slow": "the market-data API did not answer in time (MARKET_DATA_TIMEOUT)",
    "api_rate_limited": "the market-data API is rate limiting us (HTTP 429)",
    "api_geoblock": "the market-data API refuses this machine (HTTP 403: geoblocked?)",
    "api_html": "the market-data API answered an HTML page instead of JSON",
    "api_malformed": "the market data is not in the expected shape",
    "market_not_found": "the market is not listed",
}


class WindowPrices:
    """Open and last price per (asset, window_start), fed by the signal watcher's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._prices: dict[tuple[str, int], dict] = {}

    def note(self, asset: str, start: int, open_price: float | None, price: float | None, seen_at: float) -> None:
        with self._lock:
            rec = self._prices.setdefault((asset, start), {})
            if open_price is not None:
                rec.setdefault("open", float(open_price))
            if price is not None:
                rec["last"], rec["last_seen"] = float(price), seen_at
            if len(self._prices) > 64:   # bounded: a day of 15-minute windows for a few assets is far less
                for key in sorted(self._prices, key=lambda k: k[1])[: len(self._prices) - 64]:
                    del self._prices[key]

    def set(self, asset: str, start: int, **values: float) -> None:
        with self._lock:
            self._prices.setdefault((asset, start), {}).update(values)

    def get(self, asset: str, start: int) -> dict:
        with self._lock:
            return dict(self._prices.get((asset, start), {}))


def refused(cause: str, reason: str) -> Outcome:
    return Outcome("failed", f"no simulated fill: {reason}", "book", {"simulated": True, "cause": cause})


def fee_terms(market: Market, cfg) -> tuple[float, float, str]:
    """(rate, exponent, fee_source): the market's feeSchedule, FEE_RATE/FEE_EXPONENT where it has none."""
    if market.fee_rate is None:
        return cfg.fee_rate, cfg.fee_exponent, "config"
    if market.fee_exponent is None and market.fee_rate > 0:
        return market.fee_rate, cfg.fee_exponent, "market_rate_config_exponent"
    return market.fee_rate, market.fee_exponent if market.fee_exponent is not None else cfg.fee_exponent, "market"


def simulate_fill(order: Order, market: Market, book: Book, cfg) -> Outcome:
    """A market BUY of order.amount walked through `book`'s asks, or the refusal saying why not."""
    side = order.side.upper()
    if not book.asks:
        return refused("empty_book", f"the {side} order book of {market.slug} has no asks")
    walk = book.ask_for(order.amount)
    if walk is None:
        return refused("thin_book", f"the {side} asks of {market.slug} hold ${book.depth_usd():.2f}, less than"
                                    f" the ${order.amount:.2f} order")
    if walk.avg_price > order.price + cfg.max_slippage + 1e-9:
        return refused("slippage", f"walking the {side} book averages {walk.avg_price:.4f}, worse than the"
                                   f" decision's {order.price:.4f} by more than MAX_SLIPPAGE={cfg.max_slippage:g}")
    rate, exponent, source = fee_terms(market, cfg)
    fee_shares = [fees.fee_shares(shares, price, rate, exponent) for price, shares in walk.parts]
    fee_usd = sum(f * price for f, (price, _) in zip(fee_shares, walk.parts, strict=True))
    return Outcome("filled", f"simulated fill walking {walk.levels} level(s) of the {side} book", "paper", {
        "simulated": True, "side": side, "amount": order.amount, "price": round(walk.avg_price, 6),
        "shares": round(walk.shares - sum(fee_shares), 6), "fee": round(fee_usd, 6),
        "worst_price": walk.worst_price, "levels": walk.levels, "best_ask": book.best_ask(),
        "token_id": book.token_id, "fee_source": source, "fee_rate": rate, "fee_exponent": exponent})


class PaperVenue(BrowserVenue):
    kind = "paper"

    def __init__(self, cfg, tick: Callable[[], None], should_stop: Callable[[], bool], prices: WindowPrices,
                 clock: Callable[[], float], notify=None):
        super().__init__(cfg, tick, should_stop, notify)
        self.prices = prices
        self.clock = clock
        self.resolutions = ResolutionWatch(self.view, cfg, clock)

    def place(self, order: Order, on_submitted: Callable[[], None]) -> Outcome:
        try:
            market = self.view.market(order.asset, order.window_start)
            if market.closed or market.accepting_orders is False:
                return refused("market_closed", f"the market {market.slug} is not accepting orders")
            book = self.view.book(order.asset, order.window_start, order.side)
        except MarketDataError as exc:
            return refused(exc.kind, f"{API_PROBLEMS.get(exc.kind, exc.kind)}: {exc}")
        return simulate_fill(order, market, book, self.cfg)

    def find_order(self, asset: str, slug: str, order: Order, wait: float) -> dict | None:
        return None   # nothing is ever placed on the venue in paper

    def existing_order(self, asset: str, slug: str) -> dict | None:
        return None

    def housekeeping(self) -> None:
        return None   # no wallet is used in paper

    def after_failed_trade(self) -> None:
        return None   # a refused simulated fill leaves nothing on the page to clear

    def close(self) -> None:
        super().close()
        self.resolutions.stop()   # the resolution poller; it starts again when a window is awaited

    def window_result(self, fill: dict) -> dict | None:
        return self.resolutions.result(fill, lambda: self.feed_result(fill), "feed")

    def feed_result(self, fill: dict) -> dict | None:
        """The estimate from the signal's prices: open = the window's open, close = the next window's
        open, or the last price seen SETTLE_LAST_PRICE_AFTER_S after the end; ties Up."""
        asset, start = str(fill.get("asset")), int(fill["window_start"])
        rec = self.prices.get(asset, start)
        nxt = self.prices.get(asset, start + self.cfg.window_seconds)
        open_price = rec.get("open")
        late = self.clock() > start + self.cfg.window_seconds + SETTLE_LAST_PRICE_AFTER_S
        close = nxt.get("open") or (rec.get("last") if late else None)
        if open_price is None or close is None:
            return None
        up = fees.up_wins(open_price, close)
        fields = settle_fields(fill, up == (str(fill.get("side", "")).upper() == "UP"), self.cfg)
        if fields is None:
            return None
        return {**fields, "winner": "UP" if up else "DOWN", "open_price": open_price, "close_price": close}
