"""The wallet guard on what the replica's wallet really asks to sign (pure and fast: no browser).

- replica/typed_order.py builds the request the way Polymarket's SDKs do (Safe `Order` or deposit-wallet
  `TypedDataSign`, exchange V2 or V3), with the token id the replica's Gamma API serves for that side;
- executor/wallet_guard.py judges it: origin, the copied typed data through executor/order_guard.py, the page's
  rows cross-checked (executor/order_rows.py cross_check), the user's address pinned in STATE_DIR/wallet.json;
- each adversarial request of the replica, in the real shape, is refused naming the field.
The browser path (the popup, the copy button, the modal, the reject ids) is tests/test_wallet_popup_browser.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from executor.order_guard import Allowed, Intended, check_order
from executor.order_rows import cross_check
from executor.wallet_guard import AddressPin, GuardUnavailable, OrderCheck, WalletRequest, check, order_check
from replica import market_api, typed_order
from replica.state import OTHER_ORIGIN, ReplicaState, Settings

REPO = Path(__file__).resolve().parent.parent
PROFILE = json.loads((REPO / "profiles/wallets/metamask.json").read_text())
ALLOWED = Allowed.from_profile(PROFILE["order_guard"], "0.02", "0.02")
ORIGIN = "http://127.0.0.1:8765"
NOW = 1_780_449_120.0
SLUG = "btc-updown-15m-1780448400"
TOKENS = typed_order.side_tokens(7, SLUG)
REQ = {"asset": "BTC", "slug": SLUG, "side": "UP", "amount": 10.0, "price": 0.53, "up": 0.53, "down": 0.49,
       "origin": ORIGIN, "adversary": None}


def shown(adversary=None, **settings) -> dict:
    s = typed_order.WalletSettings().updated(settings)
    return typed_order.wallet_request({**REQ, "adversary": adversary}, s, 7, NOW, OTHER_ORIGIN, 1000.0)


def want(maker=None, signer=None, token=TOKENS["UP"], price="0.53") -> Intended:
    return Intended(token, 10, price, maker=maker, signer=signer, now_ms=int(NOW * 1000) + 500)


def page_rows(typed: dict, parent: str = "", message=None, struct=None) -> dict[str, str]:
    """The rows MetaMask 13 renders: one per field in the struct's order, 'Label:' then the value;
    addresses shortened (0x1234567...abcde); a struct nests its rows."""
    message = typed["message"] if message is None else message
    struct = typed["types"][typed["primaryType"]] if struct is None else struct
    rows = {}
    for i, f in enumerate(struct):
        own = f"confirmation_data-{f['name']}-index-{i}"
        key = f"{parent}/{own}" if parent else own
        value = message[f["name"]]
        label = f["name"][0].upper() + f["name"][1:] + ":"
        if f["type"] in typed["types"]:
            rows[key] = label + "(nested)"
            rows.update(page_rows(typed, key, value, typed["types"][f["type"]]))
        elif f["type"] == "address":
            rows[key] = label + value[:7] + "..." + value[-5:]
        else:
            rows[key] = label + str(value)
    return rows


def request_of(view: dict, **over) -> WalletRequest:
    typed = view["typed"]
    fields = {"origin": view["origin"].replace("http://", ""), "title": view["title"],
              "primary_type": typed["primaryType"] if typed else None, "rows": page_rows(typed) if typed else {},
              "typed_json": json.dumps(typed) if typed else None, "copy_error": None if typed else "no copy button"}
    fields.update(over)
    return WalletRequest(**fields)


# ---- the replica's request is the real order, with the API's token id ------------------------------------
@pytest.mark.parametrize("account,version,maker,signer", [
    ("safe", "2", typed_order.SAFE_ADDRESS, typed_order.SIGNER_ADDRESS),
    ("safe", "3", typed_order.SAFE_ADDRESS, typed_order.SIGNER_ADDRESS),
    ("deposit", "2", typed_order.DEPOSIT_ADDRESS, typed_order.DEPOSIT_ADDRESS),
    ("deposit", "3", typed_order.DEPOSIT_ADDRESS, typed_order.DEPOSIT_ADDRESS),
])
def test_the_replicas_request_is_the_order_the_guard_confirms(account, version, maker, signer):
    view = shown(account=account, exchange_version=version)
    typed = view["typed"]
    assert typed["primaryType"] == ("Order" if account == "safe" else "TypedDataSign")
    assert typed["domain"]["version"] == version
    order = typed["message"] if account == "safe" else typed["message"]["contents"]
    assert (order["makerAmount"], order["takerAmount"]) == ("10000000", "18867900")   # $10 at 0.53, the SDK's rounding
    assert check_order(typed, want(maker, signer), ALLOWED) is None
    assert check(request_of(view), want(maker, signer), ALLOWED, ORIGIN) is None
    assert typed_order.signed_order(view, REQ, 7) == ("UP", 10.0)


def test_the_token_ids_are_the_ones_the_gamma_api_serves():
    state = ReplicaState(Settings(window_seconds=900, assets=("BTC",)), clock=lambda: NOW)
    w = state.window("BTC", NOW)
    market = market_api.gamma_market(state, w)
    ids = dict(zip(json.loads(market["outcomes"]), json.loads(market["clobTokenIds"]), strict=True))
    assert typed_order.side_tokens(7, w.slug) == {"UP": ids["Up"], "DOWN": ids["Down"]}
    answer = state.create_request("BTC", "DOWN", "10", w.slug, ORIGIN)
    typed = state.requests[answer["request_id"]]["display"]["typed"]
    assert typed["message"]["tokenId"] == ids["Down"]


# ---- each adversary of the replica, in the real shape ----------------------------------------------------
ADVERSARIES = [
    ("wallet_opposite_side", {}, "message.tokenId", ("DOWN", 10.0)),
    ("wallet_larger_amount", {}, "message.makerAmount", ("UP", 100.0)),
    ("wallet_worse_price", {}, "MAX_SLIPPAGE", ("UP", 10.0)),
    ("wallet_sell", {}, "message.side 1 is not BUY (0) but SELL", "not enough shares"),
    ("wallet_other_contract", {}, "domain.verifyingContract", "invalid signature"),
    ("wallet_other_chain", {}, "domain.chainId", "invalid signature"),
    ("wallet_other_maker", {}, "message.maker", "invalid signature"),
    ("wallet_other_maker", {"account": "deposit"}, "message.contents.maker", "invalid signature"),
    ("wallet_bad_contents", {}, "message.contents.tokenId", ("DOWN", 10.0)),
    ("wallet_approve", {}, "primaryType 'Permit'", "signed a Permit"),
    ("wallet_clob_auth", {}, "primaryType 'ClobAuth'", "signed a ClobAuth"),
    ("wallet_transfer", {}, "no typed data to copy", "a transaction"),
    ("wallet_other_origin", {}, "origin", None),
]


@pytest.mark.parametrize("kind,settings,field,signed", ADVERSARIES, ids=[f"{a[0]}-{a[1]}" for a in ADVERSARIES])
def test_each_adversarial_request_is_refused_naming_the_field(kind, settings, field, signed):
    view = shown(kind, **settings)
    deposit = (view["typed"] or {}).get("primaryType") == "TypedDataSign"
    maker = typed_order.DEPOSIT_ADDRESS if deposit else typed_order.SAFE_ADDRESS
    why = check(request_of(view), want(maker, None if deposit else typed_order.SIGNER_ADDRESS), ALLOWED, ORIGIN)
    assert why is not None and field in why, why
    if signed is None:
        return
    got = typed_order.signed_order(view, REQ, 7)          # what the venue would do with the signature
    assert got == signed if isinstance(signed, tuple) else signed in got, got


def test_every_adversary_kind_is_covered_and_armable():
    from replica.faults import ADVERSARY_KINDS, KINDS
    assert set(ADVERSARY_KINDS) == {k for k, *_ in ADVERSARIES} == set(typed_order.ADVERSARIES)
    assert set(ADVERSARY_KINDS) <= set(KINDS)


def test_the_replicas_exchanges_are_in_the_profiles_allow_list():
    assert set(typed_order.EXCHANGES.values()) <= ALLOWED.exchanges
    assert typed_order.V1_EXCHANGE not in ALLOWED.exchanges


def test_wallet_settings_are_validated_naming_the_key():
    for bad, key in (({"account": "eoa"}, "account"), ({"exchange_version": "1"}, "exchange_version"),
                     ({"cancel_id": "x"}, "cancel_id"), ({"colour": "red"}, "colour"), ("safe", "JSON object")):
        with pytest.raises(ValueError, match=key):
            typed_order.WalletSettings().updated(bad)


# ---- the page's rows against the copied request ----------------------------------------------------------
def test_rows_that_disagree_with_the_copied_request_are_refused():
    view = shown()
    good = request_of(view)
    maker, signer = typed_order.SAFE_ADDRESS, typed_order.SIGNER_ADDRESS
    key = "confirmation_data-makerAmount-index-4"
    cases = [
        ({**good.rows, key: "MakerAmount:100000000"}, "message.makerAmount reads"),
        ({k: v for k, v in good.rows.items() if "tokenId" not in k}, "skip or repeat an index"),
        ({k: v for k, v in good.rows.items() if "builder" not in k}, "no row for message.builder"),
        ({**good.rows, "confirmation_data-maker-index-1": "Maker:0x9b1f7...91a2b"}, "message.maker reads"),
        ({**good.rows, "confirmation_data-spender-index-11": "Spender:0x1"}, "message.spender"),
        ({}, "no row for message.salt"),
    ]
    for rows, reason in cases:
        why = check(WalletRequest(good.origin, good.title, good.primary_type, rows, good.typed_json),
                    want(maker, signer), ALLOWED, ORIGIN)
        assert why is not None and "disagrees" in why and reason in why, why
    named = {**good.rows, "confirmation_data-signer-index-2": "Signer:Account 1"}   # MetaMask's own account name
    assert cross_check(named, "Order", view["typed"]) is None
    assert "primary type" in cross_check(good.rows, "Permit", view["typed"])


def test_a_request_without_typed_data_or_from_elsewhere_is_refused():
    good = request_of(shown())
    for req, reason in ((WalletRequest(None, "x", None, {}, None), "no origin"),
                        (WalletRequest("127.0.0.1:9999", "x", "Order", good.rows, good.typed_json), "origin"),
                        (WalletRequest(good.origin, "x", "Order", good.rows, None, "no copy button"), "no copy button"),
                        (WalletRequest(good.origin, "x", "Order", good.rows, "{not json"), "unreadable")):
        why = check(req, want(), ALLOWED, ORIGIN)
        assert why is not None and reason in why, why


# ---- the user's address: WALLET_ADDRESS, else pinned by the first good order ----------------------------
def guard_for(tmp_path: Path, configured: str = "") -> OrderCheck:
    return OrderCheck(ALLOWED, ORIGIN, TOKENS["UP"], 10.0, 0.53, AddressPin(tmp_path / "wallet.json", configured),
                      "btc-updown-15m-1780448400-0001")


def test_the_first_good_order_pins_the_address_and_another_one_is_refused_until_deleted(tmp_path, monkeypatch):
    monkeypatch.setattr("executor.wallet_guard.time.time", lambda: NOW)
    guard = guard_for(tmp_path)
    assert guard.check(request_of(shown())) is None
    pin = tmp_path / "wallet.json"
    assert oct(os.stat(pin).st_mode & 0o777) == "0o600"
    assert json.loads(pin.read_text())["maker"] == typed_order.SAFE_ADDRESS
    assert guard.check(request_of(shown())) is None                             # the same account again
    other = guard.check(request_of(shown(account="deposit")))                  # another account: refused
    assert other is not None and "message.contents.maker" in other and "delete that file" in other, other
    assert guard.check(request_of(shown("wallet_other_maker"))).startswith("message.maker")
    pin.unlink()                                                               # the user confirms the change
    assert guard.check(request_of(shown(account="deposit"))) is None
    assert json.loads(pin.read_text())["maker"] == typed_order.DEPOSIT_ADDRESS


def test_wallet_address_is_the_maker_and_a_bad_pin_file_refuses(tmp_path, monkeypatch):
    monkeypatch.setattr("executor.wallet_guard.time.time", lambda: NOW)
    why = guard_for(tmp_path, typed_order.DEPOSIT_ADDRESS.upper().replace("0X", "0x")).check(request_of(shown()))
    assert why is not None and "message.maker" in why and "delete" not in why, why
    assert guard_for(tmp_path, typed_order.SAFE_ADDRESS).check(request_of(shown())) is None
    (tmp_path / "wallet.json").write_text("{broken")
    why = guard_for(tmp_path).check(request_of(shown()))
    assert why is not None and "wallet.json" in why and "delete it" in why, why


def test_the_guard_needs_the_market_datas_token_id(tmp_path):
    from core.market_shapes import ApiUnavailable
    from executor.profiles import WalletProfile
    from executor.trade import Order

    class DownView:   # the market-data API is unreachable
        def market(self, asset, start):
            raise ApiUnavailable("GET /gamma/markets: 503", "http://127.0.0.1:1/gamma")

    class Cfg:
        amount_tolerance, max_slippage, state_dir, wallet_address = 0.02, 0.02, tmp_path, ""

    wallet = WalletProfile.load(REPO / "profiles/wallets/metamask.json")
    order = Order("t-1", "BTC", 1780448400, SLUG, "UP", 10.0, 0.53)
    with pytest.raises(GuardUnavailable, match="no token id for UP"):
        order_check(Cfg, wallet, DownView(), order, ORIGIN)
