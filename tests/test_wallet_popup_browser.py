"""The replica's MetaMask 13 signature page driven by the executor's wallet code, in real headless Chromium.

Each test opens a wallet request on the replica (`POST /api/intents`, as the page's Buy does), opens its popup,
and runs the executor's own pieces on it: `WalletPopup` (unlock, read the rows and the copied typed data,
confirm, reject by the profile's ids) and `wallet_guard.order_check` (the side's token id read from the
replica's Gamma API through `MarketView`, the wallet profile's allow-list, the address pin). What the
replica then holds (orders, the wallet's confirmed/rejected events) is the proof. The market page is not
involved: its own tests drive the Buy button (tests/test_replica_browser.py, tests/test_executor_demo.py).
The 46 typed-data cases stay unit tests (tests/test_wallet_typed_data.py, tests/test_wallet_guard.py).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from executor.market_data import MarketData
from executor.market_view import MarketView
from executor.pages import Waiter
from executor.profiles import WalletProfile
from executor.trade import Order
from executor.wallet_guard import order_check
from executor.wallet_page import WalletAlert, WalletPopup
from replica import typed_order
from tests.replica_support import Replica, launched_chromium, start_replica, wait_until

pytestmark = [pytest.mark.browser]

REPO = Path(__file__).resolve().parent.parent
WALLET = WalletProfile.load(REPO / "profiles/wallets/metamask.json")
W = 900
STEP_S = 15.0


@pytest.fixture(scope="module")
def rep(tmp_path_factory):
    r = start_replica(tmp_path_factory.mktemp("wallet_popup"), window_seconds=W, assets=("BTC",))
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="module")
def browser(browser_path):
    with launched_chromium(browser_path) as b:
        yield b


@pytest.fixture(scope="module")
def shared(browser, rep: Replica):
    """One context (its blank page is the waiters' page: a popup closes when it signs) and one market view."""
    ctx = browser.new_context()
    ctx.set_default_timeout(STEP_S * 1000)
    view = MarketView(MarketData(rep.base_url + "/gamma", rep.base_url + "/clob", timeout=5), W)
    try:
        yield ctx, ctx.new_page(), view
    finally:
        view.close()
        ctx.close()


@pytest.fixture
def wallet(shared, rep: Replica, tmp_path):
    """open_request(side, adversary=None, **settings) -> (popup, order, guard), the pin file in tmp_path."""
    ctx, idle, view = shared
    cfg = SimpleNamespace(amount_tolerance=0.02, max_slippage=0.02, state_dir=tmp_path, wallet_address="")
    pages = []

    def open_request(side: str = "UP", adversary: str | None = None, **settings):
        rep.api("POST", "/api/wallet/settings", {"account": "safe", "exchange_version": "2", "danger_alert": "",
                                                 "cancel_id": "confirm-footer-cancel-button", **settings})
        market = wait_until(lambda: next((m for m in rep.markets() if m["seconds_left"] > 10), None), W,
                            what="a window with time left")
        if adversary:
            rep.faults({"kind": adversary})
        answer = rep.api("POST", "/api/intents", {"asset": "BTC", "side": side, "amount": "10",
                                                  "slug": market["slug"]})
        req = next(r for r in rep.wallet()["requests"] if r["id"] == answer["request_id"])
        order = Order(f"{market['slug']}-test", "BTC", market["window_start"], market["slug"], side, 10.0,
                      req["price"])
        page = ctx.new_page()
        pages.append(page)
        page.goto(answer["popup"]["url"])
        popup = WalletPopup(page, WALLET, Waiter(lambda: idle), STEP_S)
        if popup.wait_ready() == "locked":
            popup.unlock(rep.password)
        return popup, order, order_check(cfg, WALLET, view, order, rep.base_url)

    try:
        yield open_request
    finally:
        for page in pages:
            if not page.is_closed():
                page.close()
        rep.clear_faults()


def events(rep: Replica, order: Order) -> list[tuple]:
    return [(e["adversary"], e["action"]) for e in rep.wallet()["events"] if e["slug"] == order.slug
            and e["request_id"] == rep.wallet()["requests"][-1]["id"]]


def orders(rep: Replica) -> list[dict]:
    return rep.orders()


def test_a_safe_accounts_order_is_read_checked_and_confirmed(wallet, rep: Replica, tmp_path):
    before = len(orders(rep))
    popup, order, guard = wallet("UP")
    request = popup.read_request()
    shown = rep.wallet()["requests"][-1]["display"]["typed"]
    assert json.loads(request.typed_json) == shown                       # the copy button's JSON is the request
    assert request.primary_type == "Order" and request.origin == rep.base_url.replace("http://", "")
    assert request.rows["confirmation_data-tokenId-index-3"] == "TokenId:" + shown["message"]["tokenId"]
    assert request.rows["confirmation_data-maker-index-1"] == "Maker:0x5afe0...fe001"   # shortened, as MetaMask does
    assert guard.token_id == shown["message"]["tokenId"]               # the API's id for Up is what is signed
    assert guard.check(request) is None
    assert json.loads((tmp_path / "wallet.json").read_text())["maker"] == typed_order.SAFE_ADDRESS
    popup.confirm()
    placed = wait_until(lambda: orders(rep)[before:], 5, what="the order")
    assert [(o["side"], o["amount"]) for o in placed] == [("UP", 10.0)]
    assert events(rep, order) == [(None, "confirmed")]


def test_a_deposit_wallets_typed_data_sign_on_exchange_v3_is_confirmed(wallet, rep: Replica):
    before = len(orders(rep))
    popup, order, guard = wallet("DOWN", account="deposit", exchange_version="3")
    request = popup.read_request()
    assert request.primary_type == "TypedDataSign"
    nested = "confirmation_data-contents-index-0/confirmation_data-tokenId-index-3"
    assert request.rows[nested] == "TokenId:" + guard.token_id          # the contents' rows nest
    assert json.loads(request.typed_json)["domain"]["version"] == "3"
    assert guard.check(request) is None
    popup.confirm()
    placed = wait_until(lambda: orders(rep)[before:], 5, what="the order")
    assert [(o["side"], o["amount"]) for o in placed] == [("DOWN", 10.0)]


@pytest.mark.parametrize("adversary,reason", [
    ("wallet_opposite_side", "message.tokenId"),
    ("wallet_larger_amount", "message.makerAmount"),
    ("wallet_other_contract", "domain.verifyingContract"),
    ("wallet_transfer", "no typed data to copy"),
])
def test_adversarial_requests_are_rejected_with_the_wallets_button(wallet, rep: Replica, adversary, reason):
    before = len(orders(rep))
    popup, order, guard = wallet("UP", adversary)
    why = guard.check(popup.read_request())
    assert why is not None and reason in why, why
    popup.reject()
    wait_until(lambda: events(rep, order), 5, what="the wallet's answer")
    assert events(rep, order) == [(adversary, "rejected")]
    assert len(orders(rep)) == before


def test_a_danger_alert_is_never_acknowledged(wallet, rep: Replica):
    before = len(orders(rep))
    popup, order, guard = wallet("UP", danger_alert="This is a deceptive request")
    assert guard.check(popup.read_request()) is None                    # the order itself is the intended one
    with pytest.raises(WalletAlert, match="deceptive request"):
        popup.confirm()                                                 # "Review alert" opens the modal
    assert not popup.visible("alert_modal_submit")                      # the modal was cancelled
    popup.reject()
    wait_until(lambda: events(rep, order), 5, what="the wallet's answer")
    assert events(rep, order) == [(None, "rejected")] and len(orders(rep)) == before


def test_cancel_btn_rejects_and_the_scroll_button_gates_nothing(wallet, rep: Replica):
    popup, order, guard = wallet("UP", "wallet_sell", cancel_id="cancel-btn")
    assert popup.visible("scroll_button")
    assert "message.side 1 is not BUY (0) but SELL" in guard.check(popup.read_request())
    t0 = time.monotonic()
    popup.reject()
    wait_until(lambda: events(rep, order), 5, what="the wallet's answer")
    assert events(rep, order) == [("wallet_sell", "rejected")] and time.monotonic() - t0 < STEP_S
