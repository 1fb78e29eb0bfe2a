"""Page objects: MarketPage (one asset's event page: its data, the visible trade widget, the toasts and
the venue's own record of orders); the wallet popup's is executor.wallet_page.WalletPopup.

Every selector comes from the site profile (executor.profiles); every widget part is looked up
inside the VISIBLE `widget.root` (the page holds a hidden copy), and clicked by stable ids and
`value`s, never by text; texts are only read to check (the submit's label, "not an order"
words). Every wait has an explicit timeout and runs through a `Waiter`, so the heartbeat keeps
ticking and SIGTERM is noticed within ~100 ms even in the middle of a step.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from executor.page_data import OrderRow, PageEvent, cents_in, money, widget_value
from executor.page_reads import read_rows, read_snapshot
from executor.profiles import SiteProfile, fill
from executor.steps import (
    QUICK_MS,
    SLICE_MS,
    Interrupted,
    NotAnOrder,
    SelectorMissing,
    StepTimeout,
    Waiter,
    _count,
    _visible,
    parse_window_start,
)

__all__ = ["QUICK_MS", "SLICE_MS", "Interrupted", "MarketPage", "NotAnOrder", "OrderRow", "SelectorMissing",
           "StepTimeout", "Waiter", "_visible", "parse_window_start"]

SIDE_LABEL = {"UP": "Up", "DOWN": "Down"}
SETTLE_S = 1.5   # how long a just-clicked control may take to show its new state


def _waiting_for(exc: BaseException) -> str:
    """The last reason Playwright gave while waiting (e.g. 'element is not enabled'), for the journal."""
    lines = [ln.strip(" -") for ln in str(exc).splitlines() if ln.strip(" -")]
    hints = [ln for ln in lines if ln.startswith(("element is", "waiting for element", "<")) or "intercepts" in ln]
    return hints[-1][:160] if hints else ""


class MarketPage:
    """One asset's tab, on the event page of its window. `loaded_slug` is the event the tab was sent
    to, `event` what its data said once the venue checked it against the APIs (executor.event_tabs);
    `records` opens the page listing every order (the portfolio) for slugs this tab does not show."""

    def __init__(self, page: Page, site: SiteProfile, asset: str, waiter: Waiter, step_timeout: float,
                 records: Callable[[], Page | None] | None = None):
        self.page, self.site, self.asset, self.waiter, self.timeout = page, site, asset, waiter, step_timeout
        self.records = records or (lambda: None)
        self.loaded_slug: str | None = None
        self.event: PageEvent | None = None
        self.loading = False   # sent to an event page that has not been checked yet: no verdict on selectors
        self.dirty = False     # the widget was touched by a trade since the page loaded
        self._typed = ""

    # ---- locators ----------------------------------------------------------------------------
    def widget(self) -> Locator:
        """The visible trade widget (never its hidden copy)."""
        return self.page.locator(self.site.widget["root"]).filter(visible=True).first

    def in_widget(self, key: str, **values: str) -> Locator:
        return self.widget().locator(fill(self.site.widget[key], **values))

    def page_loc(self, key: str, **values: str) -> Locator:
        return self.page.locator(fill(self.site.page[key], asset=self.asset, **values))

    def value_of(self, side: str) -> str:
        return widget_value(self.event.outcomes, side) if self.event else ("0" if side == "UP" else "1")

    # ---- reads -------------------------------------------------------------------------------
    def window(self) -> tuple[str, int] | None:
        """(slug, start) of the event this tab shows, once checked against the APIs; else None."""
        return (self.event.slug, self.event.start) if self.event else None

    def data_text(self) -> str | None:
        """The text of the page's embedded data script, or None when the page has none (yet)."""
        loc = self.page_loc("event_data")
        try:
            return loc.first.text_content(timeout=QUICK_MS) if loc.count() else None
        except PlaywrightError:
            return None

    def snapshot(self) -> dict:
        """The visible widget in one round trip (executor/page_reads.py read_snapshot); an empty one
        (nothing visible) when the page cannot be read right now."""
        return read_snapshot(self.page, self.site) or {"data": False, "visible": 0, "parts": {}, "outcomes": {},
                                                       "buy": None, "amount": None, "submit": None}

    def quotes_shown(self) -> tuple[dict[str, float | None], str]:
        """(the price shown on each outcome button, the trade button's text), in one round trip."""
        snap = self.snapshot()
        prices = {side: cents_in((snap["outcomes"].get(self.value_of(side)) or {}).get("text"))
                  for side in ("UP", "DOWN")}
        return prices, " ".join((snap.get("submit") or "").split())

    def missing_selectors(self) -> list[tuple[str, str]]:
        """Required selectors that match nothing on this idle event page now: [(key, selector)]; none
        while the tab is still on its way to a checked event page (loading is not a broken selector)."""
        return [] if self.loading else self._missing_in(self.snapshot())

    def _missing_in(self, snap: dict) -> list[tuple[str, str]]:
        w = self.site.widget
        if not snap.get("data"):
            return [("page.event_data", self.site.page["event_data"])]
        if not snap.get("visible"):
            return [("widget.root", w["root"])]
        missing = [("widget.outcome_button", fill(w["outcome_button"], value=v)) for v in ("0", "1")
                   if snap["outcomes"].get(v) is None]
        missing += [(f"widget.{k}", w[k]) for k in ("buy_radio", "order_type_switch", "submit_button")
                    if not snap["parts"].get(k)]
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

    def _record_page(self, slug: str) -> Page | None:
        return self.page if slug == self.loaded_slug else self.records()

    def rows(self, slug: str) -> list[OrderRow] | None:
        """The venue's own record of the orders of window `slug` (History rows, newest first): read
        on this tab when it shows that event, else on the portfolio. None when unreadable."""
        page = self._record_page(slug)
        found = read_rows(page, self.site) if page is not None else None
        if found is None:
            return None
        own = page is self.page
        return [r for r in found if r.get("slug") == slug or (own and r.get("slug") is None)]

    def order_row(self, slug: str) -> OrderRow | None:
        rows = self.rows(slug)
        return rows[0] if rows else None

    # ---- actions -----------------------------------------------------------------------------
    def _act(self, loc: Locator, key: str, selector: str, step: str, action: Callable[[Locator], None]) -> None:
        """Do `action` on the element, retrying in short slices (heartbeat and SIGTERM stay live) until
        the step timeout; a selector that matches nothing by then is reported as SelectorMissing."""
        deadline = time.monotonic() + self.timeout
        why = ""
        while True:
            try:
                action(loc.first)
                return
            except PlaywrightTimeoutError as exc:   # not there or not actionable yet: retry until the deadline
                why = _waiting_for(exc) or why
            if self.waiter.should_stop():
                raise Interrupted(f"stopped while trying {key}")
            if time.monotonic() >= deadline:
                if _count(loc) == 0:
                    raise SelectorMissing(key, selector)
                raise StepTimeout(step, f"{key} ({selector}) was on the page but not actionable within"
                                        f" {self.timeout:g}s{': ' + why if why else ''}")
            self.waiter.tick()

    def _press_once(self, loc: Locator, key: str, selector: str, step: str) -> None:
        """Click a control that must not be clicked twice (the trade button, the mode switch): wait in
        short slices until it is actionable (a trial click), then click it exactly once."""
        self._act(loc, key, selector, step, lambda el: el.click(trial=True, timeout=SLICE_MS))
        try:
            loc.first.click(timeout=self.timeout * 1000)
        except PlaywrightTimeoutError:
            raise StepTimeout(step, f"{key} ({selector}) did not take the click within {self.timeout:g}s") from None

    def _until(self, ok: Callable[[dict], bool], step: str, what: str) -> dict:
        """Snapshots until `ok(snapshot)` (SETTLE_S at most): the page's answer to a click or a key."""
        seen: dict = {}

        def check() -> bool:
            seen["snap"] = self.snapshot()
            return ok(seen["snap"])
        try:
            self.waiter.until(check, SETTLE_S, step, what)
        except StepTimeout:
            raise NotAnOrder(step, f"{what} did not happen") from None
        return seen["snap"]

    def _click(self, key: str, step: str, **values: str) -> None:
        sel = fill(self.site.widget[key], **values)
        self._act(self.in_widget(key, **values), f"widget.{key}", sel, step, lambda el: el.click(timeout=SLICE_MS))

    def ensure_market_buy(self) -> None:
        """Buy selected and Market mode on (the amount input exists only there), before typing. The tab
        is brought to the front first: a background tab gets no animation frames, so nothing in it
        would ever count as stable enough to click."""
        self.dirty = True
        self.page.bring_to_front()
        on = self.site.widget["checked_value"]
        try:
            snap = self._until(lambda s: s["visible"] > 0, "mode", "the trade widget to be visible")
        except NotAnOrder:
            raise SelectorMissing("widget.root", self.site.widget["root"]) from None
        if snap["buy"] != on:
            self._click("buy_radio", "mode")
            snap = self._until(lambda s: s["buy"] == on, "mode", "the Buy tab to be selected")
        if not snap["parts"].get("amount_input"):
            self._press_once(self.in_widget("order_type_switch"), "widget.order_type_switch",
                             self.site.widget["order_type_switch"], "mode")
            self._until(lambda s: s["parts"].get("amount_input"), "mode", "the Market form (its amount input)")

    def click_outcome(self, side: str) -> None:
        """Select the outcome by its value, and see it selected and labelled as that side."""
        value, on, label = self.value_of(side), self.site.widget["checked_value"], SIDE_LABEL[side]
        snap = self.snapshot()
        if (snap["outcomes"].get(value) or {}).get("checked") != on:
            self._click("outcome_button", "outcome", value=value)
            snap = self._until(lambda s: (s["outcomes"].get(value) or {}).get("checked") == on, "outcome",
                               f"the {label} outcome (value {value}) to be selected")
        text = (snap["outcomes"].get(value) or {}).get("text") or ""
        if label.lower() not in text.lower():
            raise NotAnOrder("outcome", f"the outcome button value {value} reads {text.strip()!r}, not {label}")

    def fill_amount(self, amount: float) -> None:
        self._typed = f"{amount:.2f}".rstrip("0").rstrip(".")
        self._act(self.in_widget("amount_input"), "widget.amount_input", self.site.widget["amount_input"], "amount",
                  lambda el: el.fill(self._typed, timeout=SLICE_MS))

    def submit_text(self) -> str:
        return " ".join((self.snapshot().get("submit") or "").split())

    def submit(self, side: str) -> None:
        """Press the trade button once, only when it would place the intended order: it reads "Buy Up"
        (not Deposit, Log in, Unavailable...) and the amount typed is still there."""
        want = fill(self.site.texts["buy_label"], side=SIDE_LABEL[side]).lower()

        def ready(snap: dict) -> bool:
            text = " ".join((snap.get("submit") or "").split())
            word = self.site.not_an_order_word(text)
            if word:
                raise NotAnOrder("submit", f"the trade button reads {text!r}: not an order ({word})")
            return text.lower() == want and money(snap.get("amount")) == money(self._typed)

        self._until(ready, "submit", f"the trade button to read {want!r} with the amount {self._typed}")
        self._press_once(self.in_widget("submit_button"), "widget.submit_button", self.site.widget["submit_button"],
                         "submit")
