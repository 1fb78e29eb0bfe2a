"""The paper venue: the browser venue's market data (the same page, windows and asks), a simulated
fill at the shown ask, never a click on Buy, and settlement from the signal's window prices.

A paper intent whose simulated fill was never journaled (a crash between the two lines) has no
order anywhere: `find_order` says so at once and reconciliation marks it failed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from core import fees
from executor.trade import Order, Outcome
from executor.venue_browser import BrowserVenue

SETTLE_LAST_PRICE_AFTER_S = 5.0   # without the next window's open, the last price this long after the end


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


class PaperVenue(BrowserVenue):
    kind = "paper"

    def __init__(self, cfg, tick: Callable[[], None], should_stop: Callable[[], bool], prices: WindowPrices,
                 clock: Callable[[], float], notify=None):
        super().__init__(cfg, tick, should_stop, notify)
        self.prices = prices
        self.clock = clock

    def place(self, order: Order, on_submitted: Callable[[], None]) -> Outcome:
        cfg = self.cfg
        fill = fees.buy(order.amount, order.price, cfg.fee_rate, cfg.fee_exponent)
        return Outcome("filled", "simulated fill at the shown ask", "paper", {
            "simulated": True, "side": order.side, "amount": order.amount, "price": order.price,
            "shares": round(fill.shares, 6), "fee": round(fill.fee_usd, 6)})

    def find_order(self, asset: str, slug: str, order: Order, wait: float) -> dict | None:
        return None   # nothing is ever placed on the venue in paper

    def existing_order(self, asset: str, slug: str) -> dict | None:
        return None

    def housekeeping(self) -> None:
        return None   # no wallet is used in paper

    def window_result(self, fill: dict) -> dict | None:
        asset, start = str(fill.get("asset")), int(fill["window_start"])
        rec = self.prices.get(asset, start)
        nxt = self.prices.get(asset, start + self.cfg.window_seconds)
        open_price = rec.get("open")
        late = self.clock() > start + self.cfg.window_seconds + SETTLE_LAST_PRICE_AFTER_S
        close = nxt.get("open") or (rec.get("last") if late else None)
        price = float(fill.get("price") or 0)
        if open_price is None or close is None or not 0 < price < 1:
            return None
        bought = fees.buy(float(fill.get("amount") or 0), price, self.cfg.fee_rate, self.cfg.fee_exponent)
        res = fees.settle(bought, str(fill.get("side", "")).upper(), open_price, close)
        return {"outcome": res["outcome"], "payout": round(res["payout"], 6), "fee": round(res["fee"], 6),
                "pnl": round(res["pnl"], 6), "open_price": open_price, "close_price": close}
