"""Page objects: MarketPage (one asset's card, the toasts, the orders panel); the wallet popup's
is executor.wallet_page.WalletPopup.

Every selector comes from the profiles (executor.profiles); every wait has an explicit timeout.
Waits are short polls through a `Waiter` so the heartbeat keeps ticking and SIGTERM is noticed
within ~100 ms even in the middle of a step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from core.window_grid import parse_iso_utc
from executor.decision import parse_cents
from executor.profiles import SiteProfile, fill

SIDE_LABEL = {"UP": "Up", "DOWN": "Down"}
QUICK_MS = 1500  # timeout for one quick read (text, attribute) of an element already expected present
SLICE_MS = 500   # one attempt of an action; repeated until the step's timeout



class StepTimeout(Exception):
    """A step did not complete in time; `step` names it."""

    def __init__(self, step: str, message: str):
        super().__init__(message)
        self.step = step


class SelectorMissing(Exception):
    """A profile selector matched nothing; the message names the selector key and its value."""

    def __init__(self, key: str, selector: str, where: str = "the market page"):
        super().__init__(f"selector {key} ({selector}) matched nothing on {where}")
        self.key, self.selector = key, selector


class Interrupted(Exception):
    """The process was asked to stop (SIGTERM) while a step was waiting."""


class Waiter:
    """Polls a condition with a deadline; each poll gives Playwright a few ms to dispatch events,
    calls `tick` (heartbeat) and checks `should_stop`."""

    def __init__(self, page_for_wait: Callable[[], Page], tick: Callable[[], None] = lambda: None,
                 should_stop: Callable[[], bool] = lambda: False, interval_ms: int = 50):
        self._page = page_for_wait
        self.tick = tick
        self.should_stop = should_stop
        self.interval_ms = interval_ms

    def pause(self, ms: int | None = None) -> None:
        self._page().wait_for_timeout(ms if ms is not None else self.interval_ms)
        self.tick()

    def until(self, predicate: Callable[[], object], timeout: float, step: str, what: str,
              interruptible: bool = True):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if interruptible and self.should_stop():
                raise Interrupted(f"stopped while waiting for {what}")
            if time.monotonic() >= deadline:
                raise StepTimeout(step, f"{what} did not happen within {timeout:g}s")
            self.pause()


def _count(loc: Locator) -> int:
    try:
        return loc.count()
    except PlaywrightError:
        return 0


def _visible(loc: Locator) -> bool:
    try:
        return loc.first.is_visible()
    except PlaywrightError:
        return False


def parse_window_start(raw: str | None) -> int | None:
    if not raw:
        return None
    raw = raw.strip()
    try:
        return int(float(raw))
    except ValueError:
        pass
    try:
        return int(round(parse_iso_utc(raw)))
    except ValueError:
        return None


@dataclass(frozen=True)
class OrderRow:
    attrs: dict[str, str | None]

    def get(self, key: str) -> str | None:
        return self.attrs.get(key)

    def number(self, key: str) -> float | None:
        try:
            return float(str(self.attrs.get(key)).lstrip("$"))
        except (TypeError, ValueError):
            return None


class MarketPage:
    def __init__(self, page: Page, site: SiteProfile, asset: str, waiter: Waiter, step_timeout: float):
        self.page, self.site, self.asset, self.waiter, self.timeout = page, site, asset, waiter, step_timeout

    # ---- locators ----------------------------------------------------------------------------
    def card(self) -> Locator:
        return self.page.locator(fill(self.site.card["root"], asset=self.asset)).first

    def in_card(self, key: str, **values: str) -> Locator:
        return self.card().locator(fill(self.site.card[key], asset=self.asset, **values))

    def page_loc(self, key: str, **values: str) -> Locator:
        return self.page.locator(fill(self.site.page[key], asset=self.asset, **values))

    # ---- reads -------------------------------------------------------------------------------
    def window(self) -> tuple[str, int] | None:
        """(slug, start) shown by the card now, or None when the card is not there."""
        card = self.card()
        try:
            if card.count() == 0:
                return None
            slug = card.get_attribute(self.site.card["slug_attribute"], timeout=QUICK_MS)
            raw = card.get_attribute(self.site.card["window_start_attribute"], timeout=QUICK_MS)
        except PlaywrightError:
            return None
        start = parse_window_start(raw)
        if not slug or start is None:
            return None
        return slug, start

    def ask(self, side: str) -> float | None:
        loc = self.in_card("outcome_price", side=SIDE_LABEL[side])
        try:
            texts = loc.all_text_contents()   # one round trip; [] when absent (no wait)
        except PlaywrightError:
            return None
        return parse_cents(texts[0]) if texts else None

    def asks(self) -> tuple[float | None, float | None]:
        return self.ask("UP"), self.ask("DOWN")

    def missing_selectors(self) -> list[tuple[str, str]]:
        """Required card/page selectors that match nothing now: [(key, selector)]."""
        missing: list[tuple[str, str]] = []
        root = fill(self.site.card["root"], asset=self.asset)
        if _count(self.page.locator(root)) == 0:
            return [("card.root", root)]
        for key in ("outcome_button", "outcome_price"):
            for side in ("Up", "Down"):
                if _count(self.in_card(key, side=side)) == 0:
                    missing.append((f"card.{key}", fill(self.site.card[key], side=side)))
        if _count(self.in_card("amount_input")) == 0:
            missing.append(("card.amount_input", self.site.card["amount_input"]))
        if _count(self.page_loc("orders_panel")) == 0:
            missing.append(("page.orders_panel", self.site.page["orders_panel"]))
        return missing

    def mark_toasts(self) -> None:
        """Mark every toast shown now, so `new_toasts` reports only the ones that appear after."""
        for kind in ("success", "error"):
            try:
                self.page_loc(f"toast_{kind}").evaluate_all("els => els.forEach(e => e.dataset.executorSeen = '1')")
            except PlaywrightError:
                pass  # no toast layer right now: nothing to mark

    def new_toasts(self, kind: str) -> list[str]:
        """Texts of the toasts of `kind` that appeared since `mark_toasts`."""
        try:
            return self.page_loc(f"toast_{kind}").evaluate_all(
                "els => els.filter(e => !e.dataset.executorSeen).map(e => (e.innerText || e.textContent || '').trim())")
        except PlaywrightError:
            return []

    def order_row(self, slug: str) -> OrderRow | None:
        loc = self.page_loc("order_row_for_slug", slug=slug)
        try:
            if loc.count() == 0:
                return None
            row = loc.last
            attrs = {name: row.get_attribute(attr, timeout=QUICK_MS) for name, attr in self.site.row_attrs.items()}
        except PlaywrightError:
            return None
        return OrderRow(attrs)

    # ---- actions -----------------------------------------------------------------------------
    def _act(self, loc: Locator, key: str, selector: str, step: str, action: Callable[[Locator], None]) -> None:
        """Do `action` on the element, retrying in short slices (heartbeat and SIGTERM stay live) until
        the step timeout; a selector that matches nothing by then is reported as SelectorMissing."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                action(loc.first)
                return
            except PlaywrightTimeoutError:
                pass  # not there or not actionable yet: retry until the step's deadline
            if self.waiter.should_stop():
                raise Interrupted(f"stopped while trying {key}")
            if time.monotonic() >= deadline:
                if _count(loc) == 0:
                    raise SelectorMissing(key, selector)
                raise StepTimeout(step, f"{key} ({selector}) was on the page but not actionable within"
                                        f" {self.timeout:g}s")
            self.waiter.tick()

    def click_outcome(self, side: str) -> None:
        label = SIDE_LABEL[side]
        button = self.in_card("outcome_button", side=label)
        if self.site.card.get("buy_tab") and not _visible(button) and _visible(self.in_card("buy_tab")):
            self.in_card("buy_tab").first.click(timeout=self.timeout * 1000)
        self._act(button, "card.outcome_button", fill(self.site.card["outcome_button"], side=label), "outcome",
                  lambda el: el.click(timeout=SLICE_MS))

    def fill_amount(self, amount: float) -> None:
        text = f"{amount:.2f}".rstrip("0").rstrip(".")
        self._act(self.in_card("amount_input"), "card.amount_input", self.site.card["amount_input"], "amount",
                  lambda el: el.fill(text, timeout=SLICE_MS))

    def submit(self, side: str) -> None:
        label = SIDE_LABEL[side]
        self._act(self.in_card("submit_button", side=label), "card.submit_button",
                  fill(self.site.card["submit_button"], side=label), "submit", lambda el: el.click(timeout=SLICE_MS))
