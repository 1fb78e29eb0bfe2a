"""The replica through real headless Chromium, as a user acts: trade, cancel, faults, adversaries.

Selectors come from the shipped profiles (profiles/sites/replica.json, profiles/wallets/
metamask.json): the replica's markup is tested against the same contract the executor uses.
One browser and one replica per module; each test gets a fresh browser context and a reset replica.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from core.browser_discovery import find_browser, launch_args
from tests.replica_support import REPLICA_PASSWORD, Replica, start_replica, wait_until

pytestmark = [pytest.mark.browser]

REPO = Path(__file__).resolve().parent.parent
SITE = json.loads((REPO / "profiles/sites/replica.json").read_text())
WALLET = json.loads((REPO / "profiles/wallets/metamask.json").read_text())
STEP_MS = 10_000


def fill(template: str, **values: str) -> str:
    for key, value in values.items():
        template = template.replace("{" + key + "}", str(value))
    return template


def card_sel(key: str, **values: str) -> str:
    return fill(SITE["card"][key], **values)


def wallet_sel(key: str) -> str:
    return ", ".join(WALLET[key])


def data_row(field: str) -> str:
    return fill(WALLET["data_row"], field=WALLET["fields"].get(field, field)) + " " + WALLET["data_row_value"]


@pytest.fixture(scope="module")
def browser():
    path = find_browser()
    if not path:
        pytest.fail("no Chrome/Chromium found: run the tests through ./supervisor.sh test")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, args=launch_args(), headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def rep(tmp_path_factory):
    r = start_replica(tmp_path_factory.mktemp("replica"), window_seconds=60, price_to_beat_delay=1.0)
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture
def page(browser, rep: Replica):
    rep.reset()
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(STEP_MS)
    pg = ctx.new_page()
    try:
        yield pg
    finally:
        ctx.close()


def open_market(page: Page, rep: Replica, min_left: float = 5.0):
    """Open the page early enough in a window that a whole trade fits before the end."""
    wait_until(lambda: all(m["seconds_left"] >= min_left for m in rep.markets()),
               timeout=rep.window_seconds + 2, interval=0.2, what=f"a window with >= {min_left} s left")
    page.goto(rep.market_url)
    expect(page.locator(SITE["page"]["logged_in"])).to_be_visible()


def start_buy(page: Page, asset: str, side: str, amount: str) -> Page:
    """Choose the side, type the amount, press Buy; returns the wallet popup."""
    card = page.locator(card_sel("root", asset=asset))
    card.locator(card_sel("outcome_button", side=side)).click()
    card.locator(card_sel("amount_input")).fill(amount)
    with page.context.expect_page() as popup_info:
        card.locator(card_sel("submit_button", side=side)).click()
    popup = popup_info.value
    popup.wait_for_load_state("domcontentloaded")
    return popup


def unlock_if_locked(popup: Page, password: str = REPLICA_PASSWORD) -> None:
    pw_box = popup.locator(wallet_sel("unlock_password"))
    confirm = popup.locator(wallet_sel("confirm"))
    expect(pw_box.or_(confirm).first).to_be_visible()
    if pw_box.is_visible():
        pw_box.fill(password)
        popup.locator(wallet_sel("unlock_submit")).click()
    expect(confirm).to_be_visible()


def test_buy_unlock_sign_places_one_order(page: Page, rep: Replica):
    open_market(page, rep)
    card = page.locator(card_sel("root", asset="BTC"))
    slug = card.get_attribute(SITE["card"]["slug_attribute"])
    start = int(card.get_attribute(SITE["card"]["window_start_attribute"]))
    assert slug == f"btc-updown-1m-{start}"
    expect(card.locator(card_sel("title"))).to_contain_text("Bitcoin Up or Down - ")
    popup = start_buy(page, "BTC", "Up", "10")
    assert "/notification.html" in popup.url and popup.url.startswith(rep.wallet_origin)
    expect(popup.locator(wallet_sel("unlock_password"))).to_be_visible()   # a fresh wallet is locked
    unlock_if_locked(popup)
    expect(popup.locator(wallet_sel("origin"))).to_have_text(rep.base_url)
    expect(popup.locator(data_row("primary_type"))).to_have_text(WALLET["order_primary_type"])
    expect(popup.locator(data_row("side"))).to_have_text("UP")
    expect(popup.locator(data_row("amount"))).to_have_text("10.00")
    expect(popup.locator(data_row("market"))).to_have_text(slug)
    assert rep.orders() == []                                     # nothing before the signature
    with popup.expect_event("close"):
        popup.locator(wallet_sel("confirm")).click()

    toast = page.locator(SITE["page"]["toast_success"])
    expect(toast).to_contain_text("Order placed")
    orders = rep.orders()
    assert len(orders) == 1
    order = orders[0]
    assert (order["asset"], order["side"], order["amount"], order["slug"]) == ("BTC", "UP", 10.0, slug)
    expect(toast).to_contain_text(order["id"])
    row = page.locator(fill(SITE["page"]["order_row_for_slug"], slug=slug))
    expect(row).to_have_count(1)
    attrs = SITE["order_row_attributes"]
    assert row.get_attribute(attrs["id"]) == order["id"]
    assert row.get_attribute(attrs["side"]) == "UP"
    assert float(row.get_attribute(attrs["amount"])) == 10.0
    assert float(row.get_attribute(attrs["price"])) == order["price"]
    assert float(row.get_attribute(attrs["fee"])) == pytest.approx(order["fee"], abs=1e-4)
    assert row.get_attribute(attrs["status"]) == "filled"

    # The wallet stays unlocked: the second order goes straight to the signature request.
    popup2 = start_buy(page, "ETH", "Down", "12")
    expect(popup2.locator(wallet_sel("confirm"))).to_be_visible()
    assert popup2.locator(wallet_sel("unlock_password")).count() == 0
    expect(popup2.locator(data_row("side"))).to_have_text("DOWN")
    popup2.locator(wallet_sel("confirm")).click()
    expect(page.locator(SITE["page"]["toast_success"])).to_have_count(2)
    assert len(rep.orders()) == 2

    page.reload()                                                 # right after a reload too
    expect(page.locator(SITE["page"]["orders_panel"] + " tr.order-row")).to_have_count(2)
    page.locator(SITE["page"]["logged_in"]).click()               # the portfolio lists them as well
    expect(page).to_have_url(rep.base_url + "/portfolio")
    expect(page.locator(fill(SITE["page"]["order_row_for_slug"], slug=slug))).to_have_count(1)


def test_cancel_in_wallet_places_no_order(page: Page, rep: Replica):
    open_market(page, rep)
    popup = start_buy(page, "BTC", "Down", "10")
    unlock_if_locked(popup)
    popup.locator(wallet_sel("cancel")).click()
    expect(page.locator(SITE["page"]["toast_error"])).to_contain_text("Order cancelled")
    assert rep.orders() == []
    assert [e["action"] for e in rep.wallet()["events"]] == ["rejected"]


def test_wrong_password_is_refused(page: Page, rep: Replica):
    open_market(page, rep)
    popup = start_buy(page, "BTC", "Up", "10")
    popup.locator(wallet_sel("unlock_password")).fill("not the password")
    popup.locator(wallet_sel("unlock_submit")).click()
    expect(popup.get_by_role("alert")).to_have_text("Incorrect password")
    expect(popup.locator(wallet_sel("confirm"))).to_have_count(0)
    unlock_if_locked(popup)
    assert REPLICA_PASSWORD not in rep.log_text()


def test_double_click_gives_one_popup_and_one_order(page: Page, rep: Replica):
    open_market(page, rep)
    card = page.locator(card_sel("root", asset="BTC"))
    card.locator(card_sel("amount_input")).fill("10")
    opened: list[Page] = []
    page.context.on("page", lambda p: opened.append(p))
    with page.context.expect_page() as popup_info:
        card.locator(card_sel("submit_button", side="Up")).dblclick()
    popup = popup_info.value
    card.locator(card_sel("submit_button", side="Up")).click()     # a third click while the wallet is open
    unlock_if_locked(popup)
    with popup.expect_event("close"):
        popup.locator(wallet_sel("confirm")).click()
    expect(page.locator(SITE["page"]["toast_success"])).to_have_count(1)
    assert opened == [popup]
    assert len(rep.orders()) == 1
    assert len(rep.wallet()["requests"]) == 1


@pytest.mark.parametrize("amount, message", [
    ("0", "greater than $0"), ("-5", "positive"), ("ten", "valid amount"), ("5000", "Insufficient balance"),
    ("0.50", "Minimum order"),
])
def test_bad_amounts_show_an_error_and_place_nothing(page: Page, rep: Replica, amount: str, message: str):
    open_market(page, rep, min_left=3)
    card = page.locator(card_sel("root", asset="BTC"))
    card.locator(card_sel("amount_input")).fill(amount)
    expect(card.get_by_role("alert")).to_contain_text(message)
    expect(card.locator(card_sel("submit_button", side="Up"))).to_be_disabled()
    status, body = rep.request("POST", "/api/intents", {"asset": "BTC", "side": "UP", "amount": amount})
    assert status == 422 and message.lower() in body["error"].lower()
    assert rep.orders() == []


def test_presets_and_max_fill_the_amount(page: Page, rep: Replica):
    open_market(page, rep, min_left=2)
    card = page.locator(card_sel("root", asset="BTC"))
    for label in ("+$1", "+$5", "+$10"):
        card.get_by_role("button", name=label, exact=True).click()
    expect(card.locator(card_sel("amount_input"))).to_have_value("16")
    expect(card.locator(card_sel("submit_button", side="Up"))).to_be_enabled()
    card.get_by_role("button", name="Max", exact=True).click()
    expect(card.locator(card_sel("amount_input"))).to_have_value("1000")


# ---- faults, each observed from the browser ----------------------------------------------------------

def test_fault_page_500_and_slow_page(page: Page, rep: Replica):
    rep.faults({"kind": "page_500"})
    assert page.goto(rep.market_url).status == 500
    assert page.goto(rep.market_url).status == 200               # one-shot: gone after one answer
    rep.faults({"kind": "slow_page", "ms": 1500})
    t0 = time.monotonic()
    page.goto(rep.market_url)
    assert time.monotonic() - t0 >= 1.4


def test_fault_popup_delay(page: Page, rep: Replica):
    open_market(page, rep)
    rep.faults({"kind": "popup_delay", "ms": 1500})
    card = page.locator(card_sel("root", asset="BTC"))
    card.locator(card_sel("amount_input")).fill("10")
    t0 = time.monotonic()
    with page.context.expect_page() as popup_info:
        card.locator(card_sel("submit_button", side="Up")).click()
    assert time.monotonic() - t0 >= 1.4
    assert "/notification.html" in popup_info.value.url


def test_fault_popup_never_opens(page: Page, rep: Replica):
    open_market(page, rep)
    rep.faults({"kind": "popup_never"})
    card = page.locator(card_sel("root", asset="BTC"))
    card.locator(card_sel("amount_input")).fill("10")
    card.locator(card_sel("submit_button", side="Up")).click()
    wait_until(lambda: rep.wallet()["requests"], what="the wallet request")
    with pytest.raises(PlaywrightTimeout):
        page.context.wait_for_event("page", timeout=1500)
    assert rep.orders() == []
    assert rep.faults() == []
    # Pressing Buy again brings up the same request (one request, one order in the end).
    with page.context.expect_page() as popup_info:
        card.locator(card_sel("submit_button", side="Up")).click()
    popup = popup_info.value
    unlock_if_locked(popup)
    popup.locator(wallet_sel("confirm")).click()
    expect(page.locator(SITE["page"]["toast_success"])).to_have_count(1)
    assert len(rep.orders()) == 1 and len(rep.wallet()["requests"]) == 1


def test_fault_order_rejected_shows_error_toast(page: Page, rep: Replica):
    open_market(page, rep)
    rep.faults({"kind": "order_reject", "message": "Order rejected: not enough liquidity"})
    popup = start_buy(page, "BTC", "Up", "10")
    unlock_if_locked(popup)
    popup.locator(wallet_sel("confirm")).click()
    expect(page.locator(SITE["page"]["toast_error"])).to_contain_text("not enough liquidity")
    assert rep.orders() == []


def test_fault_markup_variant_breaks_the_stale_map_live(page: Page, rep: Replica):
    open_market(page, rep, min_left=2)
    root = page.locator(card_sel("root", asset="BTC"))
    expect(root).to_have_count(1)
    rep.faults({"kind": "markup_variant", "mode": "persistent"})
    expect(root).to_have_count(0)                                 # no reload needed
    expect(page.locator(SITE["page"]["orders_panel"])).to_have_count(0)
    expect(page.locator(card_sel("amount_input"))).to_have_count(0)
    expect(page.get_by_role("button", name="Buy Up")).to_have_count(2)   # a person can still trade
    rep.clear_faults()
    expect(root).to_have_count(1)
    rep.faults({"kind": "markup_variant"})                          # one-shot: the next page load
    page.reload()
    expect(page.locator("h1")).to_be_visible()
    expect(root).to_have_count(0)
    page.reload()
    expect(root).to_have_count(1)


def test_fault_market_unavailable(page: Page, rep: Replica):
    open_market(page, rep, min_left=2)
    rep.faults({"kind": "market_unavailable", "mode": "persistent", "asset": "BTC"})
    btc = page.locator(card_sel("root", asset="BTC"))
    expect(btc.locator(card_sel("unavailable"))).to_be_visible()
    expect(btc.locator(card_sel("submit_button", side="Up"))).to_have_count(0)
    eth = page.locator(card_sel("root", asset="ETH"))
    expect(eth.locator(card_sel("unavailable"))).to_have_count(0)
    status, body = rep.request("POST", "/api/intents", {"asset": "BTC", "side": "UP", "amount": "10"})
    assert status == 422 and "unavailable" in body["error"].lower()


@pytest.mark.parametrize("kind, field, check", [
    ("wallet_other_origin", "origin", lambda v, rep: v != rep.base_url),
    ("wallet_transfer", "primary_type", lambda v, rep: v == "Transfer"),
    ("wallet_approve", "amount", lambda v, rep: v == "Unlimited"),
    ("wallet_larger_amount", "amount", lambda v, rep: float(v) > 10.0),
    ("wallet_opposite_side", "side", lambda v, rep: v == "DOWN"),
])
def test_adversarial_wallet_requests_are_visible_and_can_be_refused(page: Page, rep: Replica, kind, field, check):
    open_market(page, rep)
    rep.faults({"kind": kind})
    popup = start_buy(page, "BTC", "Up", "10")
    unlock_if_locked(popup)
    if field == "origin":
        value = popup.locator(wallet_sel("origin")).inner_text()
    else:
        value = popup.locator(data_row(field)).inner_text()
    assert check(value, rep), f"{kind}: the popup shows {field}={value!r}"
    if kind == "wallet_approve":
        expect(popup.locator(data_row("primary_type"))).to_have_text("Approve")
    popup.locator(wallet_sel("cancel")).click()
    expect(page.locator(SITE["page"]["toast_error"])).to_contain_text("Order cancelled")
    assert rep.orders() == []
    events = rep.wallet()["events"]
    assert [(e["adversary"], e["action"]) for e in events] == [(kind, "rejected")]


def test_signed_opposite_side_places_the_signed_order(page: Page, rep: Replica):
    """The danger is real: confirming the swapped request buys the other side."""
    open_market(page, rep)
    rep.faults({"kind": "wallet_opposite_side"})
    popup = start_buy(page, "BTC", "Up", "10")
    unlock_if_locked(popup)
    popup.locator(wallet_sel("confirm")).click()
    expect(page.locator(SITE["page"]["toast_success"])).to_be_visible()
    assert [o["side"] for o in rep.orders()] == ["DOWN"]


# ---- the clock: roll-over without reload, price to beat, settlement on the page -----------------------

def test_rollover_price_to_beat_and_settlement_without_reload(browser, tmp_path):
    with start_replica(tmp_path / "fast", window_seconds=10, price_to_beat_delay=2.0) as fast:
        ctx = browser.new_context()
        ctx.set_default_timeout(STEP_MS)
        try:
            pg = ctx.new_page()
            open_market(pg, fast, min_left=1.5)
            card = pg.locator(card_sel("root", asset="BTC"))
            slug = card.get_attribute(SITE["card"]["slug_attribute"])
            fast.place_order("BTC", "UP", "10")                  # placed elsewhere: the page shows it live
            row = pg.locator(fill(SITE["page"]["order_row_for_slug"], slug=slug))
            attrs = SITE["order_row_attributes"]
            expect(row).to_have_attribute(attrs["status"], "filled")
            assert row.get_attribute(attrs["result"]) == "" and row.get_attribute(attrs["payout"]) == ""

            expect(card).not_to_have_attribute(SITE["card"]["slug_attribute"], slug, timeout=12_000)
            new_start = int(card.get_attribute(SITE["card"]["window_start_attribute"]))
            assert new_start == int(slug.rsplit("-", 1)[1]) + 10
            if time.time() < new_start + 1.5:                   # the price to beat is not shown yet...
                assert card.locator(card_sel("price_to_beat")).count() == 0
            expect(card.locator(card_sel("price_to_beat"))).to_be_visible()   # ...then it appears

            expect(row).to_have_attribute(attrs["status"], "settled")
            settlement = next(s for s in fast.settlements() if s["slug"] == slug)
            expected = "won" if settlement["outcome"] == "UP" else "lost"
            assert row.get_attribute(attrs["result"]) == expected
            order = fast.orders()[0]
            payout = float(row.get_attribute(attrs["payout"]))
            assert payout == pytest.approx(order["shares"] if expected == "won" else 0.0, abs=1e-4)
        finally:
            ctx.close()
