"""The click-through of one trade, after its `intent` is journaled and fsynced.

the page shows the order's window -> Buy + Market mode -> outcome button (by value) -> amount ->
the trade button, only when it reads "Buy Up"/"Buy Down" (Deposit, Log in, Unavailable: a clear
refusal, nothing submitted) -> wallet popup (unlock, read, guard, confirm | reject) -> a new
History row (the venue's own record; the toast is recorded, never enough alone). Returns an
Outcome: filled, failed, wallet_rejected or unknown.
`submitted` is journaled by the caller's callback when the wallet's confirm has been clicked.
Never retries: an order whose outcome is unknown is left for reconciliation from the page.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from playwright.sync_api import BrowserContext, Page
from playwright.sync_api import Error as PlaywrightError

from executor.pages import Interrupted, MarketPage, NotAnOrder, SelectorMissing, StepTimeout, Waiter
from executor.profiles import WalletProfile
from executor.wallet_guard import OrderCheck, WalletRequest
from executor.wallet_page import WalletAlert, WalletPopup

log = logging.getLogger("executor.trade")

# An orders-panel row with one of these statuses is no order (nothing filled, nothing to hold).
NOT_PLACED = ("rejected", "failed", "cancelled", "canceled")
# After SIGTERM, how long we keep waiting for the outcome of an order already confirmed.
STOP_GRACE_S = 4.0
# Once the order's History row is there, how long its toast may lag (it is recorded, never required).
TOAST_GRACE_S = 1.0


@dataclass
class Outcome:
    event: str                 # filled | failed | wallet_rejected | unknown
    reason: str
    step: str
    fields: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Order:
    trade_id: str
    asset: str
    window_start: int
    slug: str
    side: str
    amount: float
    price: float


def find_popup(context: BrowserContext, wallet: WalletProfile, exclude: set[int]) -> Page | None:
    for p in context.pages:
        if id(p) in exclude or p.is_closed():
            continue
        if wallet.is_popup_url(p.url):
            return p
    return None


class ClickThrough:
    def __init__(self, context: BrowserContext, market: MarketPage, wallet: WalletProfile, waiter: Waiter,
                 step_timeout: float, password: str, guard: OrderCheck,
                 screenshot: Callable[[str, str, Page | None, WalletPopup | None], None],
                 on_submitted: Callable[[], None]):
        self.context, self.market, self.wallet, self.waiter = context, market, wallet, waiter
        self.timeout, self.password = step_timeout, password
        self.guard = guard   # the wallet guard for this order (executor/wallet_guard.py)
        self.screenshot = screenshot
        self.on_submitted = on_submitted
        self.step = "start"
        self._known_ids: set[str | None] = set()
        self.popup: WalletPopup | None = None
        self.timings: dict[str, float] = {}
        self._t_step: float | None = None

    def run(self, order: Order) -> Outcome:
        try:
            return self._run(order)
        except SelectorMissing as exc:
            return self._fail(order, "failed", str(exc), {"selector": exc.key})
        except NotAnOrder as exc:   # the widget would not place this order: nothing was submitted
            return self._fail(order, "failed", f"{exc}; no order placed")
        except StepTimeout as exc:
            if self.step in ("outcome_wait",):
                return self._fail(order, "unknown", f"{exc}; the order's outcome could not be read")
            return self._fail(order, "failed", str(exc))
        except Interrupted as exc:
            if self.step == "outcome_wait":
                return self._fail(order, "unknown", f"{exc} (after the wallet confirm)")
            self._reject_if_open()
            return self._fail(order, "failed", f"{exc}; abandoned before the wallet confirm, no order placed")
        except PlaywrightError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if self.step in ("confirm", "outcome_wait"):
                return self._fail(order, "unknown", f"browser error at step {self.step}: {first}")
            return self._fail(order, "failed", f"browser error at step {self.step}: {first}")

    def _enter(self, step: str) -> None:
        """Start `step`, recording how long the previous one took (reported with the outcome)."""
        now = time.monotonic()
        if self._t_step is not None:
            self.timings[self.step] = round(now - self._t_step, 3)
        self.step, self._t_step = step, now

    def _timed(self, fields: dict) -> dict:
        self._enter(self.step)  # close the current step
        return {**fields, "timings": dict(self.timings)}

    def _fail(self, order: Order, event: str, reason: str, extra: dict | None = None) -> Outcome:
        shot = None
        try:
            shot = self.screenshot(order.trade_id, self.step, self.market.page, self.popup)
        except Exception as exc:  # noqa: BLE001 - a failed screenshot must not hide the trade's outcome
            log.warning("screenshot for %s at %s failed: %s", order.trade_id, self.step, exc)
        fields = {"reason": reason, "step": self.step, "screenshot": shot}
        fields.update(extra or {})
        return Outcome(event, reason, self.step, self._timed(fields))

    def _reject_if_open(self) -> None:
        if self.popup is None or self.popup.page.is_closed():
            return
        try:
            self.popup.reject()
        except (PlaywrightError, StepTimeout, Interrupted) as exc:
            log.warning("could not press the wallet's cancel button while abandoning: %s", exc)

    def _run(self, o: Order) -> Outcome:
        m = self.market
        self._enter("page_check")
        shown = m.window()
        if shown is None or shown[0] != o.slug:
            raise NotAnOrder("page_check", f"the page shows {shown[0] if shown else 'no checked event'}, not {o.slug}")
        self._enter("mode")
        m.ensure_market_buy()
        self._enter("outcome")
        m.click_outcome(o.side)
        self._enter("amount")
        m.fill_amount(o.amount)
        self._known_ids = {r.get("id") for r in (m.rows(o.slug) or [])}   # a success is a NEW History row
        before_pages = {id(p) for p in self.context.pages}
        m.mark_toasts()
        self._enter("submit")
        if self.waiter.should_stop():
            raise Interrupted("stopped before Buy")
        m.submit(o.side)
        self._enter("popup")
        page = self.waiter.until(lambda: find_popup(self.context, self.wallet, before_pages), self.timeout,
                                 "popup", "the wallet popup to open")
        self.popup = popup = WalletPopup(page, self.wallet, self.waiter, self.timeout)
        self._enter("popup_ready")
        state = popup.wait_ready()
        if state == "locked":
            self._enter("unlock")
            if not self.password:
                popup_reason = "the wallet is locked and METAMASK_PASSWORD is not set"
                try:
                    page.close()
                except PlaywrightError:
                    pass  # the popup is gone: no request can be confirmed either way
                return self._fail(o, "failed", popup_reason)
            popup.unlock(self.password)
        self._enter("read_request")
        request = popup.read_request()
        why = self.guard.check(request)
        if why:
            return self._wallet_reject(o, popup, request, f"wallet guard: {why}")
        if self.waiter.should_stop():
            raise Interrupted("stopped before the wallet confirm")
        self._enter("confirm")
        try:
            popup.confirm()
        except WalletAlert as alert:   # nothing signed: the wallet asked to acknowledge a danger alert
            return self._wallet_reject(o, popup, request, f"wallet guard: the wallet raised a danger alert: {alert}")
        self.on_submitted()
        self._enter("outcome_wait")
        return self._await_outcome(o)

    def _wallet_reject(self, o: Order, popup: WalletPopup, request: WalletRequest, reason: str) -> Outcome:
        """Reject with the wallet's own button; the screenshot (taken first) shows the request."""
        self._enter("reject")
        outcome = self._fail(o, "wallet_rejected", reason,
                             {"request": {"origin": request.origin, "title": request.title, **request.fields}})
        popup.reject()
        return outcome

    def _await_outcome(self, o: Order) -> Outcome:
        """Success is the venue's own record: a new History row for this window (a toast alone is
        never enough); an error toast with no new row is the venue's rejection."""
        m = self.market
        seen: dict = {}

        def settled() -> bool:
            if "toast" not in seen:
                errors = m.new_toasts("error")
                if errors:
                    # the toast's text ends with its dismiss button's label (e.g. a multiplication sign)
                    seen["toast"], seen["toast_text"] = "error", errors[0].rstrip("\u00d7\u2715x ").strip()
                elif m.new_toasts("success"):
                    seen["toast"] = "success"
            row = next((r for r in (m.rows(o.slug) or []) if r.get("id") not in self._known_ids), None)
            if row is not None and "row" not in seen:
                seen["row"], seen["row_at"] = row, time.monotonic()
            if seen.get("toast") == "error" and "row" not in seen:
                return True
            return "row" in seen and ("toast" in seen or time.monotonic() - seen["row_at"] > TOAST_GRACE_S)

        t0 = time.monotonic()

        def done_or_stopping() -> bool:
            if self.waiter.should_stop() and time.monotonic() - t0 > STOP_GRACE_S:
                raise Interrupted("stopped while waiting for the order's outcome")
            return settled()

        try:
            self.waiter.until(done_or_stopping, self.timeout, "outcome_wait", "the order's History row",
                              interruptible=False)
        except StepTimeout:
            pass  # judged below from what was seen
        if seen.get("toast") == "error" and "row" not in seen:
            return self._fail(o, "failed", f"venue rejected the order: {seen.get('toast_text') or 'error toast'}")
        row = seen.get("row")
        if row is not None:
            status = (row.get("status") or "").lower()
            if status in NOT_PLACED:
                return self._fail(o, "failed", f"the History panel shows the order as {status}")
            return Outcome("filled", "order accepted", self.step,
                           self._timed(row_fields(row, o, toast=seen.get("toast"))))
        return self._fail(o, "unknown", "no new History row within "
                          f"{self.timeout:g}s after the wallet confirm; left for reconciliation")


def row_fields(row, o: Order, toast: str | None = None) -> dict:
    amount = row.number("amount")
    return {
        "order_id": row.get("id"), "side": (row.get("side") or o.side).upper(),
        "amount": amount if amount is not None else o.amount,
        "price": row.number("price") if row.number("price") is not None else o.price,
        "shares": row.number("shares"), "fee": row.number("fee"), "status": row.get("status"),
        "toast": toast,
    }
