"""The venue: the one interface between the engine and a market.

A venue knows an asset's current window and market, its quotes, how to place an order and
return its outcome, how to find an order again (reconciliation), and a finished window's
result. Two implementations today:
- `BrowserVenue` (executor.venue_browser): the market page's page objects, the wallet popup and
  the wallet guard; clicks (demo and live);
- `PaperVenue` (executor.venue_paper): the same market data from the same page, a simulated
  fill, never a click on Buy (paper).
The worker picks one by MODE; nothing else in the executor looks at MODE.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from executor.trade import Order, Outcome

WindowCallback = Callable[[str, int, str, float, str], None]   # asset, start, slug, seen_at, via


class VenueGone(Exception):
    """The venue's connection (the browser, its page) is gone; the worker reopens it with back-off."""


class VenueRefused(Exception):
    """The venue cannot be used as configured (the message is the one line shown); exit 2."""


class NotReadable(Exception):
    """The venue's record cannot be read right now: nothing can be concluded, try again later."""


class Venue(Protocol):
    kind: str

    def open(self, pw: object, on_window: WindowCallback) -> None:
        """Connect (launch the browser, open the market); window changes are reported to `on_window`."""

    def close(self) -> None: ...

    def check_alive(self) -> None:
        """Raise VenueGone when the connection is lost."""

    def pause(self, ms: int) -> None:
        """Wait up to `ms` while the venue's events (window changes) are delivered."""

    def shown_window(self, asset: str) -> tuple[str, int] | None:
        """(slug, window_start) the venue shows for `asset` now, or None."""

    def refusal(self, asset: str, start: int) -> str | None:
        """Why the venue refuses the window starting at `start` (page and API disagree on the window,
        a token or the price; a button that would not place an order), or None."""

    def window_done(self, asset: str, start: int) -> None:
        """The engine decided this window: the venue may get the next window's page ready."""

    def page_ready(self, asset: str) -> bool:
        """False while the venue is on its way to the asset's checked page (no verdict on selectors)."""

    def missing_selectors(self, asset: str) -> list[tuple[str, str]]:
        """Which parts of the market cannot be read (empty when the market is readable)."""

    def asks(self, asset: str) -> tuple[float | None, float | None]:
        """The ask of Up and of Down, or None where none is shown."""

    def place(self, order: Order, on_submitted: Callable[[], None]) -> Outcome:
        """Place `order` (its intent is durably journaled); never retries. `on_submitted` is called
        the moment the order has left our hands (the wallet's confirm)."""

    def existing_order(self, asset: str, slug: str) -> dict | None:
        """A quick look (no waiting) at the venue's own record before the first click in a window:
        the fields of an order already placed for it (by a crashed run, another instance), or None."""

    def find_order(self, asset: str, slug: str, order: Order, wait: float) -> dict | None:
        """The fields of our order for that window if the venue has one, None if it has none;
        NotReadable when the venue's record cannot be read."""

    def window_result(self, fill: dict) -> dict | None:
        """{outcome, payout, fee, pnl, ...} of a filled trade once its window is resolved, else None."""

    def housekeeping(self) -> None:
        """Between trades: e.g. reject wallet requests that no intent asked for."""

    def after_failed_trade(self) -> None:
        """A fresh market view after a failed or unknown order (no half-filled form)."""

    def screenshot(self, name: str, step: str) -> str | None:
        """Best-effort picture of the venue (never of a secret)."""
