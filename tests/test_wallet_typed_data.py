"""The wallet guard on the real CLOB V2 order signature (executor.order_guard, executor.order_rows): pure, fast.

The sample documents follow what Polymarket's SDKs build and sign:
- Order: Polymarket/clob-client-v2 src/order-utils/exchangeOrderBuilderV2.ts (buildOrderTypedData) with the struct of
  src/order-utils/model/ctfExchangeV2TypedData.ts; salt and timestamp from tests/order-utils/
  exchangeOrderBuilderV2.test.ts ("479249096354", "1780449126930"); the EOA is that test's key
  (0xac09...ff80 -> 0xf39F...2266); token ids from Polymarket/py-clob-client-v2 examples/account/get_open_orders.py.
- Amounts: a market BUY of $10 at 0.53 = makerAmount 10000000, takerAmount 18867900 (10 / 0.53 rounded down to
  4 decimals: src/order-builder/helpers/getMarketOrderRawAmounts.ts, ROUNDING_CONFIG["0.01"]).
- TypedDataSign: exchangeOrderBuilderV2.ts buildOrderSignature (POLY_1271): the exchange's domain outside,
  {contents, name "DepositWallet", version "1", chainId, verifyingContract = signer, salt 0} inside; the deposit
  wallet 0x1111...1111 from tests/order-builder/helpers/createExchangeV3OrderFromAmounts.test.ts.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from decimal import Decimal
from pathlib import Path

import pytest

from executor.order_guard import ORDER_STRUCT, TYPED_DATA_SIGN_STRUCT, Allowed, Intended, check_order
from executor.order_rows import RowsError, check_rows, typed_from_json, typed_from_rows
from executor.profiles import ProfileError, WalletProfile

REPO = Path(__file__).resolve().parent.parent
EXCHANGE_V2 = "0xE111180000d2663C0091e4f400237545B87B996B"
NEG_RISK_V2 = "0xe2222d279d744050d28e00520010520000310F59"
EXCHANGE_V3 = "0xe3333700cA9d93003F00f0F71f8515005F6c00Aa"
EXCHANGE_V1 = "0x4bFb41d5B3570DeFd03C39a9A4D8dE6Bd8B8982E"
EOA = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
SAFE = "0x6e0c80c90ea6c15917308F820Eac91Ce2724B5b5"
DEPOSIT = "0x1111111111111111111111111111111111111111"
UP_TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
DOWN_TOKEN = "52114319501245915516055106046884209969926127482827954674443846427813813222426"
ZERO32 = "0x" + "0" * 64
NOW_MS = 1780449126930 + 800

PROFILE = json.loads((REPO / "profiles/wallets/metamask.json").read_text())
ALLOWED = Allowed.from_profile(PROFILE["order_guard"], "0.02", "0.02")
WANT = Intended(UP_TOKEN, 10, "0.53", maker=SAFE, signer=EOA, now_ms=NOW_MS)
WANT_DEPOSIT = Intended(UP_TOKEN, 10, "0.53", maker=DEPOSIT, signer=EOA, now_ms=NOW_MS)


def _types(*names):
    defs = {"EIP712Domain": [("name", "string"), ("version", "string"), ("chainId", "uint256"),
                             ("verifyingContract", "address")],
            "Order": ORDER_STRUCT, "TypedDataSign": TYPED_DATA_SIGN_STRUCT}
    return {n: [{"name": f, "type": t} for f, t in defs[n]] for n in names}


def order_message(maker=SAFE, signer=EOA, signature_type=2, **over):
    msg = {"salt": "479249096354", "maker": maker, "signer": signer, "tokenId": UP_TOKEN, "makerAmount": "10000000",
           "takerAmount": "18867900", "side": 0, "signatureType": signature_type, "timestamp": "1780449126930",
           "metadata": ZERO32, "builder": ZERO32}
    msg.update(over)
    return msg


def safe_order(contract=EXCHANGE_V2, version="2", **over) -> dict:
    """A Safe account's (signatureType 2) market BUY of $10 of Up at 0.53, as the SDK builds it."""
    return {"primaryType": "Order", "types": _types("EIP712Domain", "Order"),
            "domain": {"name": "Polymarket CTF Exchange", "version": version, "chainId": 137,
                       "verifyingContract": contract},
            "message": order_message(**over)}


def deposit_order(**over) -> dict:
    """A deposit wallet's (signatureType 3) order: TypedDataSign under the exchange's domain."""
    return {"primaryType": "TypedDataSign", "types": _types("EIP712Domain", "TypedDataSign", "Order"),
            "domain": {"name": "Polymarket CTF Exchange", "version": "2", "chainId": 137,
                       "verifyingContract": EXCHANGE_V2},
            "message": {"contents": order_message(DEPOSIT, DEPOSIT, 3), "name": "DepositWallet", "version": "1",
                        "chainId": 137, "verifyingContract": DEPOSIT, "salt": ZERO32, **over}}


def edit(doc: dict, path: str, value) -> dict:
    """A copy of doc with doc[a][b]... = value ('a.b'); value DELETE removes the key."""
    out = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node = out
    for p in parents:
        node = node[p]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return out


DELETE = object()


# ---- legal requests -----------------------------------------------------------------------------
def test_a_safe_accounts_order_is_confirmed():
    assert check_order(safe_order(), WANT, ALLOWED) is None


def test_a_deposit_wallets_typed_data_sign_is_confirmed():
    assert check_order(deposit_order(), WANT_DEPOSIT, ALLOWED) is None


@pytest.mark.parametrize("doc", [
    safe_order(NEG_RISK_V2),
    safe_order(EXCHANGE_V3, "3"),
    safe_order(EXCHANGE_V2.lower()),                                    # addresses compare case-insensitively
    edit(safe_order(), "types", DELETE),                                # page rows carry no types
    edit(safe_order(), "message.tokenId", int(UP_TOKEN)),               # a JSON integer, exact
    edit(safe_order(), "message.tokenId", hex(int(UP_TOKEN))),          # a hex string, as eth-sig-util accepts
    edit(safe_order(), "message.maker", SAFE.upper().replace("0X", "0x")),
    edit(safe_order(), "message.makerAmount", "10150000"),              # within 2 %
])
def test_legal_variants_are_confirmed(doc):
    assert check_order(doc, WANT, ALLOWED) is None


def test_the_sdk_rounding_of_the_taker_amount_does_not_count_as_slippage():
    exact = Allowed.from_profile(PROFILE["order_guard"], "0.02", "0")
    assert check_order(safe_order(), WANT, exact) is None                # 10 / 18.8679 = 0.530001 > 0.53
    worse = safe_order(takerAmount="18518518")                           # 0.54
    assert "MAX_SLIPPAGE" in check_order(worse, WANT, exact)
    assert check_order(worse, WANT, ALLOWED) is None                     # within 0.02


def test_unknown_address_or_fee_is_not_checked_but_a_missing_decision_price_is_refused():
    loose = Intended(UP_TOKEN, Decimal("10"), 0.53)
    assert check_order(safe_order(maker=DEPOSIT, signer=DEPOSIT), loose, ALLOWED) is None
    no_price = Intended(UP_TOKEN, 10, None, maker=SAFE)
    assert "no decision price" in check_order(safe_order(), no_price, ALLOWED)
    no_slippage = Allowed.from_profile(PROFILE["order_guard"], "0.02", None)
    assert check_order(safe_order(), no_price, no_slippage) is None


# ---- adversarial requests: each rejected, the reason naming the field ------------------------------
SIGN_IN = {"primaryType": "ClobAuth", "domain": {"name": "ClobAuthDomain", "version": "1", "chainId": 137},
           "message": {"address": EOA, "timestamp": "1780449126", "nonce": 0,
                       "message": "This message attests that I control the given wallet"}}
PERMIT = {"primaryType": "Permit", "domain": {"name": "USD Coin", "version": "2", "chainId": 137,
                                              "verifyingContract": "0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359"},
          "message": {"owner": SAFE, "spender": EXCHANGE_V2, "value": str(2 ** 256 - 1), "nonce": 0,
                      "deadline": str(2 ** 256 - 1)}}
ALTERED_TYPES = _types("EIP712Domain", "Order")
ALTERED_TYPES["Order"][4] = {"name": "makerAmount", "type": "uint128"}

ADVERSARIAL = [
    ("the other outcome's token", safe_order(tokenId=DOWN_TOKEN), "message.tokenId"),
    ("a SELL", safe_order(side=1), "message.side 1 is not BUY (0) but SELL"),
    ("side as text", safe_order(side="BUY"), "message.side"),
    ("makerAmount x10", safe_order(makerAmount="100000000", takerAmount="188679000"), "message.makerAmount"),
    ("makerAmount 3 % larger", safe_order(makerAmount="10300000", takerAmount="19433900"), "message.makerAmount"),
    ("a price worse than asked", safe_order(takerAmount="16666666"), "MAX_SLIPPAGE"),
    ("a price above 1", safe_order(takerAmount="9000000"), "above 1"),
    ("zero shares", safe_order(takerAmount="0"), "positive"),
    ("a float amount", safe_order(makerAmount=10000000.0), "message.makerAmount"),
    ("an unknown exchange", safe_order("0x000000000000000000000000000000000000dEaD"), "domain.verifyingContract"),
    ("the V1 exchange", safe_order(EXCHANGE_V1, "1"), "domain.version"),
    ("a version that is not a string", safe_order(version=2), "domain.version"),
    ("another chain", edit(safe_order(), "domain.chainId", 1), "domain.chainId"),
    ("another domain name", edit(safe_order(), "domain.name", "Polymarket CTF Exchange V9"), "domain.name"),
    ("an extra domain field", edit(safe_order(), "domain.salt", ZERO32), "domain.salt"),
    ("a maker that is not the user", safe_order(maker=DEPOSIT), "message.maker"),
    ("a signer that is not the user's key", safe_order(signer=DEPOSIT), "message.signer"),
    ("signatureType 3 in a plain Order", safe_order(signature_type=3), "message.signatureType"),
    ("a stale timestamp", safe_order(timestamp=str(NOW_MS - 3_600_000)), "message.timestamp"),
    ("a foreign field", safe_order(spender=EOA), "message.spender"),
    ("a missing field", edit(safe_order(), "message.takerAmount", DELETE), "message.takerAmount is missing"),
    ("a bad bytes32", safe_order(builder="0x1234"), "message.builder"),
    ("a V1 fee other than the market's", safe_order(feeRateBps="1000"), "message.feeRateBps"),
    ("a V1 private order", safe_order(taker=EOA), "message.taker"),
    ("altered types", edit(safe_order(), "types", ALTERED_TYPES), "types.Order"),
    ("an extra type", edit(safe_order(), "types.Transfer", [{"name": "to", "type": "address"}]), "types.Transfer"),
    ("a CLOB sign-in", SIGN_IN, "primaryType 'ClobAuth'"),
    ("an approval/permit", PERMIT, "primaryType 'Permit'"),
    ("a plain message or transfer", {"message": "Sign in to polymarket.com"}, "primaryType None"),
    ("a transaction", "0xa9059cbb000000000000000000000000", "not EIP-712 typed data"),
    ("deposit: the other token", deposit_order(contents=order_message(DEPOSIT, DEPOSIT, 3, tokenId=DOWN_TOKEN)),
     "message.contents.tokenId"),
    ("deposit: makerAmount x10", deposit_order(contents=order_message(DEPOSIT, DEPOSIT, 3, makerAmount="100000000")),
     "message.contents.makerAmount"),
    ("deposit: a SELL", deposit_order(contents=order_message(DEPOSIT, DEPOSIT, 3, side=1)), "message.contents.side"),
    ("deposit: another maker", deposit_order(contents=order_message(SAFE, DEPOSIT, 3)), "message.contents.maker"),
    ("deposit: signer not the wallet", deposit_order(contents=order_message(DEPOSIT, EOA, 3)),
     "message.contents.signer"),
    ("deposit: signatureType 2", deposit_order(contents=order_message(DEPOSIT, DEPOSIT, 2)),
     "message.contents.signatureType"),
    ("deposit: contents not an Order", deposit_order(contents="0xdeadbeef"), "message.contents is missing"),
    ("deposit: inner name", deposit_order(name="Permit2"), "message.name"),
    ("deposit: inner version", deposit_order(version="2"), "message.version"),
    ("deposit: inner chain", deposit_order(chainId=1), "message.chainId"),
    ("deposit: inner contract not the wallet", deposit_order(verifyingContract=SAFE), "message.verifyingContract"),
    ("deposit: inner salt", deposit_order(salt="0x" + "1" * 64), "message.salt"),
    ("deposit: outer domain is the wallet's",
     edit(deposit_order(), "domain", {"name": "DepositWallet", "version": "1", "chainId": 137,
                                      "verifyingContract": DEPOSIT}), "domain.name"),
    ("deposit: outer chain", edit(deposit_order(), "domain.chainId", 10), "domain.chainId"),
    ("deposit: types without TypedDataSign", edit(deposit_order(), "types.TypedDataSign", DELETE),
     "types.TypedDataSign is missing"),
]


@pytest.mark.parametrize("doc,field", [(d, f) for _, d, f in ADVERSARIAL], ids=[n for n, _, _ in ADVERSARIAL])
def test_adversarial_requests_are_rejected_naming_the_field(doc, field):
    want = WANT_DEPOSIT if isinstance(doc, dict) and doc.get("primaryType") == "TypedDataSign" else WANT
    want = dataclasses.replace(want, fee_rate_bps=0) if "feeRateBps" in field else want
    why = check_order(doc, want, ALLOWED)
    assert why is not None and field in why, why


def test_a_v1_fee_equal_to_the_markets_passes_that_check():
    want = Intended(UP_TOKEN, 10, "0.53", maker=SAFE, signer=EOA, fee_rate_bps=1000, now_ms=NOW_MS)
    assert check_order(safe_order(feeRateBps="1000"), want, ALLOWED) is None


# ---- the wallet profile's allow-list ------------------------------------------------------------
def test_the_profile_allows_the_v2_and_v3_exchanges_only():
    wallet = WalletProfile.load(REPO / "profiles/wallets/metamask.json")
    allowed = Allowed.from_profile(wallet.order_guard, 0.02, 0.02)
    assert allowed.exchanges == {EXCHANGE_V2.lower(), NEG_RISK_V2.lower(), EXCHANGE_V3.lower()}
    assert allowed.chain_id == 137 and allowed.versions == {"2", "3"}
    assert allowed.amount_tolerance == Decimal("0.02") and allowed.max_slippage == Decimal("0.02")


@pytest.mark.parametrize("cfg,key", [
    ({}, "exchanges"),
    ({"exchanges": ["0x1234"]}, "exchanges"),
    ({"exchanges": [EXCHANGE_V2], "chain_id": "polygon"}, "chain_id"),
    ({"exchanges": [EXCHANGE_V2], "deposit_wallet_domain": "DepositWallet"}, "deposit_wallet_domain"),
])
def test_a_bad_allow_list_is_named(cfg, key):
    with pytest.raises(ValueError, match=key):
        Allowed.from_profile(cfg, "0.02")


def test_a_wallet_profile_with_a_bad_order_guard_is_refused(tmp_path):
    p = tmp_path / "w.json"
    p.write_text(json.dumps({**PROFILE, "order_guard": ["0x"]}))
    with pytest.raises(ProfileError, match="order_guard"):
        WalletProfile.load(p)
    p.write_text(json.dumps({k: v for k, v in PROFILE.items() if k != "order_guard"}))
    assert WalletProfile.load(p).order_guard == {}


def test_a_bad_intended_amount_is_a_rejection_not_a_crash():
    assert "guard input" in check_order(safe_order(), Intended(UP_TOKEN, "ten", "0.53"), ALLOWED)


# ---- the signature page's rows ------------------------------------------------------------------
def row(field, index, parent=""):
    key = f"confirmation_data-{field}-index-{index}"
    return f"{parent}/{key}" if parent else key


def order_rows(msg: dict, parent="") -> dict[str, str]:
    """The rows MetaMask 13 shows for an Order struct, in the struct's order, with its 'Label:' prefix."""
    return {row(f, i, parent): f"{f[0].upper()}{f[1:]}:\n{msg[f]}" for i, (f, _) in enumerate(ORDER_STRUCT)}


def page(doc: dict) -> dict[str, str]:
    rows = {"primaryType": doc["primaryType"], **{f"domain.{k}": str(v) for k, v in doc["domain"].items()}}
    msg = doc["message"]
    if doc["primaryType"] == "Order":
        return {**rows, **order_rows(msg)}
    outer = row("contents", 0)
    rows[outer] = "Contents: (the nested rows' text)"
    rows.update(order_rows(msg["contents"], outer))
    for i, (f, _) in enumerate(TYPED_DATA_SIGN_STRUCT[1:], start=1):
        rows[row(f, i)] = str(msg[f])
    return rows


def test_rows_of_an_order_read_back_as_its_typed_data():
    typed = typed_from_rows(page(safe_order()))
    assert typed["primaryType"] == "Order"
    assert typed["domain"]["verifyingContract"] == EXCHANGE_V2
    assert typed["message"] == {k: str(v) for k, v in order_message().items()}
    assert list(typed["message"]) == [f for f, _ in ORDER_STRUCT]
    assert check_rows(page(safe_order()), WANT, ALLOWED) is None


def test_nested_rows_of_a_typed_data_sign_read_back_and_pass():
    typed = typed_from_rows(page(deposit_order()))
    assert typed["message"]["contents"]["tokenId"] == UP_TOKEN
    assert typed["message"]["salt"] == ZERO32 and typed["message"]["contents"]["salt"] == "479249096354"
    assert check_rows(page(deposit_order()), WANT_DEPOSIT, ALLOWED) is None


@pytest.mark.parametrize("key,text,field", [
    (row("makerAmount", 4), "100000000", "message.makerAmount"),
    (row("tokenId", 3), DOWN_TOKEN, "message.tokenId"),
    (row("side", 6), "1", "message.side"),
    (row("makerAmount", 4), "10,000,000", "message.makerAmount"),            # formatted text is not a number
    (row("maker", 1), "0x6e0c8...B5b5", "message.maker"),                    # a shortened address proves nothing
    (row("signer", 2), "Account 1", "message.signer"),                       # a pet name neither
    ("domain.verifyingContract", "0x000000000000000000000000000000000000dEaD", "domain.verifyingContract"),
    ("domain.chainId", "1", "domain.chainId"),
    ("primaryType", "Permit", "primaryType 'Permit'"),
])
def test_adversarial_rows_are_rejected(key, text, field):
    rows = {**page(safe_order()), key: text}
    why = check_rows(rows, WANT, ALLOWED)
    assert why is not None and field in why, why


def test_page_without_domain_name_and_version_is_rejected():
    rows = {k: v for k, v in page(safe_order()).items() if k not in ("domain.name", "domain.version")}
    assert "domain.name is missing" in check_rows(rows, WANT, ALLOWED)


def test_nested_rows_without_their_path_do_not_pass():
    rows = page(deposit_order())
    flat = {k.split("/")[-1]: v for k, v in rows.items()}
    assert check_rows(flat, WANT_DEPOSIT, ALLOWED) is not None


@pytest.mark.parametrize("rows,match", [
    ({"confirmation_data-tokenId": "1"}, "is not confirmation_data"),
    ({row("salt", 0): "1", row("maker", 2): SAFE}, "skip or repeat an index"),
    ({row("salt", 0): "1", row("salt", 1, row("contents", 1)): "1", row("contents", 2): "x"}, "appears at index"),
    ({"domain.salt": ZERO32}, "unknown domain row"),
    ({row("salt", 0): None}, "has no text"),
])
def test_malformed_rows_raise_and_check_rows_rejects(rows, match):
    with pytest.raises(RowsError, match=match):
        typed_from_rows(rows)
    assert "unreadable signature page" in check_rows(rows, WANT, ALLOWED)


def test_typed_data_json_keeps_big_integers_and_refuses_floats():
    doc = safe_order(tokenId=int(UP_TOKEN), makerAmount=10000000)
    typed = typed_from_json(json.dumps(doc))
    assert typed["message"]["tokenId"] == int(UP_TOKEN)
    assert check_order(typed, WANT, ALLOWED) is None
    with pytest.raises(RowsError, match="non-integer"):
        typed_from_json(json.dumps(safe_order(makerAmount=1e7)))
    with pytest.raises(RowsError, match="not JSON"):
        typed_from_json("{")
    with pytest.raises(RowsError, match="not a JSON object"):
        typed_from_json("[1]")
