"""The replica through real headless Chromium, as a user acts: trade, cancel, faults, adversaries.

Selectors come from the shipped profiles (profiles/sites/polymarket.json, the real site's map,
and profiles/wallets/metamask.json): the replica's event pages are tested against the same
contract the executor uses. Trade widget parts are looked up inside the VISIBLE `#trade-widget`
(each page holds a hidden copy too).
One browser and one replica per module; each test gets a fresh browser context and a reset replica.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.replica_support import REPLICA_PASSWORD, Replica, launched_chromium, start_replica, wait_until

pytestmark = [pytest.mark.browser]

REPO = Path(__file__).resolve().parent.parent
SITE = json.loads((REPO / "profiles/sites/polymarket.json").read_text())
VALUE = {"Up": "0", "Down": "1"}    # the outcome buttons' values (the market's outcomes order)
WALLET = json.loads((REPO / "profiles/wallets/metamask.json").read_text())
STEP_MS = 10_000


def fill(template: str, **values: str) -> str:
    for key, value in values.items():
        template = template.replace("{" + key + "}", str(value))
    return template


def widget_sel(key: str, **values: str) -> str:
    return fill(SITE["widget"][key], **values)


def widget(page: Page) -> Locator:
    """The visible trade widget (never its hidden copy)."""
    return page.locator(SITE["widget"]["root"]).filter(visible=True)


def submit_button(page: Page) -> Locator:
    return widget(page).locator(widget_sel("submit_button"))


def records(page: Page, title: str) -> Locator:
    """The rows of the panel under the h3 `title` (History or Positions)."""
    r = SITE["records"]
    return page.locator(f"{r['container']}:has({r['heading']}:text-is('{title}')) {r['row']}")


def event_url(rep: Replica, slug: str) -> str:
    return rep.base_url + fill(SITE["urls"]["event"], slug=slug)


def slug_of(rep: Replica, asset: str = "BTC") -> str:
    return next(m["slug"] for m in rep.markets() if m["asset"] == asset)


def wallet_sel(key: str) -> str:
    return ", ".join(WALLET[key])


def data_row(field: str) -> str:
    """The signature page's row of a message field (MetaMask 13: confirmation_data-<field>-index-<i>)."""
    return WALLET["data_row"].replace("confirmation_data-", f"confirmation_data-{field}-index-")


def side_token(rep: Replica, slug: str, outcome: str) -> str:
    """The token id the replica's Gamma API serves for that outcome of that market."""
    market = rep.api("GET", f"/gamma/markets?slug={slug}")[0]
    return dict(zip(json.loads(market["outcomes"]), json.loads(market["clobTokenIds"]), strict=True))[outcome]


@pytest.fixture(scope="module")
def browser():
    with launched_chromium() as b:
        yield b


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


def open_market(page: Page, rep: Replica, min_left: float = 5.0, asset: str = "BTC") -> str:
    """Open the asset's current event page early enough in a window that a whole trade fits before
    the end; returns its slug."""
    wait_until(lambda: all(m["seconds_left"] >= min_left for m in rep.markets()),
               timeout=rep.window_seconds + 2, interval=0.2, what=f"a window with >= {min_left} s left")
    slug = slug_of(rep, asset)
    page.goto(event_url(rep, slug))
    expect(page.locator(SITE["page"]["logged_in"]).first).to_be_visible()
    return slug


def start_buy(page: Page, asset: str, side: str, amount: str) -> Page:
    """On the asset's event page: choose the side by value, type the amount, press the trade button
    (it reads "Buy <side>"); returns the wallet popup."""
    base = page.url.split("/event/")[0]
    if f"/event/{asset.lower()}-updown-" not in page.url:
        markets = page.request.get(base + "/api/markets").json()["markets"]
        page.goto(base + fill(SITE["urls"]["event"], slug=next(m["slug"] for m in markets if m["asset"] == asset)))
    w = widget(page)
    w.locator(widget_sel("outcome_button", value=VALUE[side])).click()
    w.locator(widget_sel("amount_input")).fill(amount)
    expect(submit_button(page)).to_have_text(f"Buy {side}")
    with page.context.expect_page() as popup_info:
        submit_button(page).click()
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
    slug = open_market(page, rep)
    start = int(slug.rsplit("-", 1)[1])
    assert slug == f"btc-updown-1m-{start}" and start % 60 == 0
    expect(page.locator("h1")).to_contain_text("Bitcoin Up or Down - ")
    popup = start_buy(page, "BTC", "Up", "10")
    assert "/notification.html" in popup.url and popup.url.startswith(rep.wallet_origin)
    expect(popup.locator(wallet_sel("unlock_password"))).to_be_visible()   # a fresh wallet is locked
    unlock_if_locked(popup)
    expect(popup.locator(wallet_sel("origin"))).to_have_text(rep.base_url.replace("http://", ""))   # as MetaMask
    expect(popup.locator(wallet_sel("primary_type"))).to_have_text("Order")       # the real CLOB V2 order
    expect(popup.locator(data_row("tokenId"))).to_have_text("TokenId:" + side_token(rep, slug, "Up"))
    expect(popup.locator(data_row("makerAmount"))).to_have_text("MakerAmount:10000000")   # base units
    expect(popup.locator(data_row("side"))).to_have_text("Side:0")                       # BUY
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
    row = records(page, SITE["records"]["history_title"])        # the venue's own record of the order
    expect(row).to_have_count(1)
    for text in (order["id"], "Up", "$10.00", f"{round(order['price'] * 100)}¢", f"{order['shares']:.4f}",
                 f"${order['fee']:.4f}", "Filled"):
        expect(row).to_contain_text(text)
    expect(row.locator(f"a[href$='/event/{slug}']")).to_have_count(1)
    expect(records(page, SITE["records"]["positions_title"])).to_contain_text("Up")

    # The wallet stays unlocked: the second order goes straight to the signature request.
    popup2 = start_buy(page, "ETH", "Down", "12")
    expect(popup2.locator(wallet_sel("confirm"))).to_be_visible()
    assert popup2.locator(wallet_sel("unlock_password")).count() == 0
    eth_slug = next(m["slug"] for m in rep.markets() if m["asset"] == "ETH")
    expect(popup2.locator(data_row("tokenId"))).to_have_text("TokenId:" + side_token(rep, eth_slug, "Down"))
    popup2.locator(wallet_sel("confirm")).click()
    expect(page.locator(SITE["page"]["toast_success"])).to_have_count(1)    # on ETH's own event page
    assert len(rep.orders()) == 2

    page.reload()                                                 # right after a reload too
    expect(records(page, SITE["records"]["history_title"])).to_have_count(1)    # this market's order
    page.locator(SITE["page"]["logged_in"]).first.click()         # the portfolio lists every order
    expect(page).to_have_url(rep.base_url + "/portfolio")
    expect(records(page, SITE["records"]["history_title"])).to_have_count(2)
    expect(page.locator(f"a[href$='/event/{slug}']").first).to_be_visible()


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
    widget(page).locator(widget_sel("amount_input")).fill("10")
    opened: list[Page] = []
    page.context.on("page", lambda p: opened.append(p))
    with page.context.expect_page() as popup_info:
        submit_button(page).dblclick()
    popup = popup_info.value
    submit_button(page).click()                                   # a third click while the wallet is open
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
    widget(page).locator(widget_sel("amount_input")).fill(amount)
    expect(widget(page).get_by_role("alert")).to_contain_text(message)
    expect(submit_button(page)).to_be_disabled()
    status, body = rep.request("POST", "/api/intents", {"asset": "BTC", "side": "UP", "amount": amount})
    assert status == 422 and message.lower() in body["error"].lower()
    assert rep.orders() == []


def test_presets_and_max_fill_the_amount(page: Page, rep: Replica):
    open_market(page, rep, min_left=2)
    w = widget(page)
    expect(submit_button(page)).to_have_text("Trade")             # no amount yet
    for label in ("+$1", "+$5", "+$10"):
        w.get_by_role("button", name=label, exact=True).click()
    expect(w.locator(widget_sel("amount_input"))).to_have_value("16")
    expect(submit_button(page)).to_be_enabled()
    expect(submit_button(page)).to_have_text("Buy Up")
    w.get_by_role("button", name="Max", exact=True).click()
    expect(w.locator(widget_sel("amount_input"))).to_have_value("1000")


# ---- faults, each observed from the browser ----------------------------------------------------------

def test_fault_page_500_and_slow_page(page: Page, rep: Replica):
    rep.faults({"kind": "page_500"})
    assert page.goto(rep.market_url).status == 500
    assert page.goto(rep.market_url).status == 200               # one-shot: gone after one answer
    rep.faults({"kind": "page_500"})                                # the event pages too
    assert page.goto(event_url(rep, slug_of(rep))).status == 500
    assert page.goto(event_url(rep, slug_of(rep))).status == 200
    rep.faults({"kind": "slow_page", "ms": 1500})
    t0 = time.monotonic()
    page.goto(rep.market_url)
    assert time.monotonic() - t0 >= 1.4


def test_fault_popup_delay(page: Page, rep: Replica):
    open_market(page, rep)
    rep.faults({"kind": "popup_delay", "ms": 1500})
    widget(page).locator(widget_sel("amount_input")).fill("10")
    t0 = time.monotonic()
    with page.context.expect_page() as popup_info:
        submit_button(page).click()
    assert time.monotonic() - t0 >= 1.4
    assert "/notification.html" in popup_info.value.url


def test_fault_popup_never_opens(page: Page, rep: Replica):
    open_market(page, rep)
    rep.faults({"kind": "popup_never"})
    widget(page).locator(widget_sel("amount_input")).fill("10")
    submit_button(page).click()
    wait_until(lambda: rep.wallet()["requests"], what="the wallet request")
    with pytest.raises(PlaywrightTimeout):
        page.context.wait_for_event("page", timeout=1500)
    assert rep.orders() == []
    assert rep.faults() == []
    # Pressing Buy again brings up the same request (one request, one order in the end).
    with page.context.expect_page() as popup_info:
        submit_button(page).click()
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
    expect(widget(page)).to_have_count(1)
    rep.faults({"kind": "markup_variant", "mode": "persistent"})
    expect(page.locator(SITE["widget"]["root"])).to_have_count(0)   # no reload needed: neither copy matches
    expect(page.locator(widget_sel("amount_input"))).to_have_count(0)
    expect(page.locator(widget_sel("submit_button"))).to_have_count(0)
    expect(page.get_by_role("button", name="Trade")).to_have_count(1)   # a person can still trade
    rep.clear_faults()
    expect(widget(page)).to_have_count(1)
    rep.faults({"kind": "markup_variant"})                          # one-shot: the next page load
    page.reload()
    expect(page.locator("h1")).to_be_visible()
    expect(page.locator(SITE["widget"]["root"])).to_have_count(0)
    page.reload()
    expect(widget(page)).to_have_count(1)


def test_fault_market_unavailable(page: Page, rep: Replica):
    open_market(page, rep, min_left=2)
    rep.faults({"kind": "market_unavailable", "mode": "persistent", "asset": "BTC"})
    expect(submit_button(page)).to_have_text("Unavailable")      # not an order
    expect(submit_button(page)).to_be_disabled()
    expect(widget(page).locator(widget_sel("outcome_button", value="0"))).to_be_disabled()
    page.goto(event_url(rep, slug_of(rep, "ETH")))
    expect(submit_button(page)).to_have_text("Trade")
    status, body = rep.request("POST", "/api/intents", {"asset": "BTC", "side": "UP", "amount": "10"})
    assert status == 422 and "unavailable" in body["error"].lower()


@pytest.mark.parametrize("kind, key, shows", [
    ("wallet_other_origin", "origin", lambda v, rep, slug: v != rep.base_url.replace("http://", "")),
    ("wallet_transfer", "title", lambda v, rep, slug: v == "Transfer request"),
    ("wallet_approve", "primary_type", lambda v, rep, slug: v == "Permit"),
    ("wallet_larger_amount", "makerAmount", lambda v, rep, slug: v == "MakerAmount:100000000"),
    ("wallet_opposite_side", "tokenId", lambda v, rep, slug: v == "TokenId:" + side_token(rep, slug, "Down")),
])
def test_adversarial_wallet_requests_are_visible_and_can_be_refused(page: Page, rep: Replica, kind, key, shows):
    slug = open_market(page, rep)
    rep.faults({"kind": kind})
    popup = start_buy(page, "BTC", "Up", "10")
    unlock_if_locked(popup)
    where = popup.locator(wallet_sel(key) if key in WALLET else data_row(key))
    value = (where.first.text_content() or "").strip()
    assert shows(value, rep, slug), f"{kind}: the popup shows {key}={value!r}"
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


# ---- the clock: a window's end, the next event page, the price to beat, settlement -------------------

def test_window_end_go_to_live_market_price_to_beat_and_settlement(browser, tmp_path):
    with start_replica(tmp_path / "fast", window_seconds=10, price_to_beat_delay=2.0) as fast:
        ctx = browser.new_context()
        ctx.set_default_timeout(STEP_MS)
        try:
            pg = ctx.new_page()
            slug = open_market(pg, fast, min_left=1.5)
            start = int(slug.rsplit("-", 1)[1])
            fast.place_order("BTC", "UP", "10")                  # placed elsewhere: the page shows it live
            history = records(pg, SITE["records"]["history_title"])
            expect(history).to_contain_text("Filled")
            go_live = pg.locator(SITE["page"]["go_live"])
            expect(go_live).to_have_count(0)                     # the window is live
            expect(go_live).to_be_visible(timeout=12_000)        # it ended: the page says so, no reload
            expect(submit_button(pg)).to_have_text("Unavailable")
            go_live.click()
            nxt = f"btc-updown-10s-{start + 10}"
            expect(pg).to_have_url(event_url(fast, nxt))
            label = pg.get_by_text("Price to beat", exact=True)
            if time.time() < start + 10 + 1.5:                   # the price to beat is not shown yet...
                assert label.count() == 0
            expect(label.locator("xpath=..").locator(SITE["page"]["price_to_beat_value"])).to_be_visible()

            pg.goto(event_url(fast, slug))                       # the ended market keeps its own record
            status = wait_until(lambda: next((s for s in fast.settlements() if s["slug"] == slug), None),
                                timeout=15, what="the window's resolution")
            expected = "Won" if status["outcome"] == "UP" else "Lost"
            expect(history).to_contain_text(expected, timeout=12_000)
            order = fast.orders()[0]
            payout = order["shares"] if expected == "Won" else 0.0
            expect(history).to_contain_text(f"${payout:.4f}" if payout else "$0.0000")
        finally:
            ctx.close()
