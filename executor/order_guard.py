"""The wallet guard on the real order signature (pure: no browser, no float comparisons).

`check_order(typed, want, allowed)` returns None when the EIP-712 request may be confirmed, else the
reason to reject it, naming the field. What the site asks MetaMask to sign, with sources:
- CLOB V2 `Order` (and V3: same struct), in this order: salt uint256, maker address, signer address,
  tokenId uint256, makerAmount uint256, takerAmount uint256, side uint8, signatureType uint8,
  timestamp uint256 (ms), metadata bytes32, builder bytes32. Polymarket/clob-client-v2
  src/order-utils/model/ctfExchangeV2TypedData.ts (CTF_EXCHANGE_V2_ORDER_STRUCT); the same in
  Polymarket/py-clob-client-v2 py_clob_client_v2/order_utils/model/ctf_exchange_v2_typed_data.py.
  V1's taker/expiration/nonce/feeRateBps are no longer signed (expiration travels beside the order:
  clob-client-v2 src/order-utils/model/orderDataV2.ts); if they appear they are sanity-checked.
- side BUY = 0, SELL = 1: clob-client-v2 src/order-utils/exchangeOrderBuilderV2.ts
  (`side: order.side === "BUY" ? 0 : 1`); py-clob-client-v2 order_utils/model/side.py (IntEnum).
- signatureType 0 EOA, 1 POLY_PROXY, 2 POLY_GNOSIS_SAFE, 3 POLY_1271 (deposit wallet):
  clob-client-v2 src/order-utils/model/signatureTypeV2.ts.
- Domain {name "Polymarket CTF Exchange", version "2" (V3 "3"), chainId, verifyingContract}:
  ctfExchangeV2TypedData.ts, tests/order-utils/exchangeOrderBuilderV2.test.ts. Polygon (137)
  exchanges: exchangeV2 0xE111180000d2663C0091e4f400237545B87B996B, negRiskExchangeV2
  0xe2222d279d744050d28e00520010520000310F59, exchangeV3 0xe3333700cA9d93003F00f0F71f8515005F6c00Aa
  (clob-client-v2 src/config.ts MATIC_CONTRACTS; py-clob-client-v2 py_clob_client_v2/config.py).
- Deposit wallets (signatureType 3; maker = signer = the wallet, createOrder.ts): primaryType
  `TypedDataSign {contents Order, name string, version string, chainId uint256, verifyingContract
  address, salt bytes32}` under the exchange's domain, with name "DepositWallet", version "1",
  verifyingContract = order.signer, salt = bytes32 zero (ERC-7739 nested typed data):
  exchangeOrderBuilderV2.ts buildOrderSignature; py-clob-client-v2
  order_utils/exchange_order_builder_v2.py (SOLADY_TYPE_STRING, DEPOSIT_WALLET_NAME_HASH).
- Units: 6 decimals for collateral and shares (config.ts COLLATERAL_TOKEN_DECIMALS); a market BUY
  signs makerAmount = USD and takerAmount = USD / price, rounded down to 4 decimals at tick 0.01
  (src/order-builder/helpers/getMarketOrderRawAmounts.ts, roundingConfig.ts), hence the implied
  price makerAmount / (takerAmount + taker_rounding_units) and a small rounding allowance.
- The API-key sign-in is primaryType `ClobAuth` under domain `ClobAuthDomain`
  (src/signing/eip712.ts): rejected, like approvals, permits and every other primaryType.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction

BASE_UNITS = 10 ** 6
ZERO_BYTES32 = "0x" + "0" * 64
ZERO_ADDRESS = "0x" + "0" * 40
DOMAIN_STRUCT = (("name", "string"), ("version", "string"), ("chainId", "uint256"), ("verifyingContract", "address"))
ORDER_STRUCT = (("salt", "uint256"), ("maker", "address"), ("signer", "address"), ("tokenId", "uint256"),
                ("makerAmount", "uint256"), ("takerAmount", "uint256"), ("side", "uint8"), ("signatureType", "uint8"),
                ("timestamp", "uint256"), ("metadata", "bytes32"), ("builder", "bytes32"))
TYPED_DATA_SIGN_STRUCT = (("contents", "Order"), ("name", "string"), ("version", "string"), ("chainId", "uint256"),
                          ("verifyingContract", "address"), ("salt", "bytes32"))
LEGACY_FIELDS = ("taker", "expiration", "nonce", "feeRateBps")   # V1 only; checked when present
KIND_HINTS = {"ClobAuth": " (a CLOB API-key sign-in)", "Permit": " (a token approval)",
              "PermitSingle": " (a Permit2 approval)", "PermitBatch": " (a Permit2 approval)"}
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_BYTES32 = re.compile(r"^0x[0-9a-fA-F]{64}$")


class _Reject(Exception):
    pass


def _decimal(value, name: str) -> Decimal:
    try:
        return Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"{name} {value!r} is not a number") from None


@dataclass(frozen=True)
class Intended:
    """What the decision meant to buy. amount_usd/price as str, int or Decimal (a float goes via str)."""
    token_id: str | int              # the intended side's token id (decimal)
    amount_usd: Decimal | str | int | float
    price: Decimal | str | float | None = None   # the ask the decision was made on
    maker: str | None = None         # the user's trading address (Safe or deposit wallet), when known
    signer: str | None = None        # the MetaMask key, for a plain Order (Safe/EOA accounts), when known
    fee_rate_bps: int | None = None  # the market's, when known (only V1-shaped orders carry it)
    now_ms: int | None = None        # the clock, for the timestamp/expiration sanity checks


@dataclass(frozen=True)
class Allowed:
    exchanges: frozenset[str]        # lower-case verifyingContract addresses
    domain_name: str = "Polymarket CTF Exchange"
    versions: frozenset[str] = frozenset({"2", "3"})
    chain_id: int = 137
    wallet_domain_name: str = "DepositWallet"
    wallet_domain_version: str = "1"
    signature_types: frozenset[int] = frozenset({0, 1, 2})   # for a plain Order; TypedDataSign needs 3
    amount_tolerance: Decimal = Decimal("0.02")              # a fraction of the intended amount
    max_slippage: Decimal | None = None                      # None: no price check
    max_clock_skew_ms: int = 600_000
    max_fee_rate_bps: int = 1000
    taker_rounding_units: int = 100                          # 1e-4 share: the SDK's rounding down

    @classmethod
    def from_profile(cls, cfg: dict, amount_tolerance, max_slippage=None) -> Allowed:
        """From the wallet profile's `order_guard` object; ValueError names a bad key."""
        exchanges = cfg.get("exchanges")
        if not isinstance(exchanges, list) or not exchanges or not all(
                isinstance(a, str) and _ADDRESS.match(a) for a in exchanges):
            raise ValueError("order_guard.exchanges must be a non-empty list of 0x addresses")
        wallet = cfg.get("deposit_wallet_domain", {})
        versions = cfg.get("domain_versions", ["2", "3"])
        if not isinstance(wallet, dict) or not isinstance(versions, list):
            raise ValueError("order_guard.deposit_wallet_domain must be an object, domain_versions a list")
        try:
            chain_id, kinds = int(cfg.get("chain_id", 137)), frozenset(int(t) for t in cfg.get("signature_types", [2]))
        except (TypeError, ValueError):
            raise ValueError("order_guard.chain_id/signature_types must be integers") from None
        return cls(frozenset(a.lower() for a in exchanges), str(cfg.get("domain_name", cls.domain_name)),
                   frozenset(str(v) for v in versions), chain_id, str(wallet.get("name", cls.wallet_domain_name)),
                   str(wallet.get("version", cls.wallet_domain_version)), kinds,
                   _decimal(amount_tolerance, "AMOUNT_TOLERANCE"),
                   None if max_slippage is None else _decimal(max_slippage, "MAX_SLIPPAGE"))


def _uint(value, name: str, bits: int = 256) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _Reject(f"{name} {value!r} is not an unsigned integer")
    text = value.strip() if isinstance(value, str) else None
    if text is not None and re.fullmatch(r"[0-9]+", text):
        value = int(text)
    elif text is not None and re.fullmatch(r"0x[0-9a-fA-F]+", text):
        value = int(text, 16)
    elif text is not None:
        raise _Reject(f"{name} {value!r} is not an unsigned integer")
    if not 0 <= value < 2 ** bits:
        raise _Reject(f"{name} {value} is out of range for uint{bits}")
    return value


def _address(value, name: str) -> str:
    if not isinstance(value, str) or not _ADDRESS.match(value.strip()):
        raise _Reject(f"{name} {value!r} is not a full 0x address")
    return value.strip().lower()


def _equal(value, want, name: str) -> None:
    if value != want:
        raise _Reject(f"{name} {value!r} is not {want!r}")


def _fields(obj, struct, name: str, optional=()) -> dict:
    if not isinstance(obj, dict):
        raise _Reject(f"{name} is missing or not a struct")
    for key, _ in struct:
        if key not in obj:
            raise _Reject(f"{name}.{key} is missing")
    known = {k for k, _ in struct} | set(optional)
    for key in obj:
        if key not in known:
            raise _Reject(f"{name}.{key} is not an expected field")
    return obj


def _check_types(types, primary: str) -> None:
    """When the request carries `types` (the JSON does, page rows do not), they must be exactly ours."""
    if types is None:
        return
    want = {"Order": ORDER_STRUCT, "EIP712Domain": DOMAIN_STRUCT}
    if primary == "TypedDataSign":
        want["TypedDataSign"] = TYPED_DATA_SIGN_STRUCT
    if not isinstance(types, dict):
        raise _Reject("types is not an object")
    for key, value in types.items():
        if key not in want:
            raise _Reject(f"types.{key} is not an expected type")
        got = tuple((f.get("name"), f.get("type")) for f in value) if isinstance(value, list) and all(
            isinstance(f, dict) for f in value) else None
        if got != want[key]:
            raise _Reject(f"types.{key} differs from the CLOB V2 definition")
    for key in want:
        if key != "EIP712Domain" and key not in types:
            raise _Reject(f"types.{key} is missing")


def _check_domain(domain, allowed: Allowed) -> None:
    _fields(domain, DOMAIN_STRUCT, "domain")
    _equal(domain["name"], allowed.domain_name, "domain.name")
    if domain["version"] not in allowed.versions:
        raise _Reject(f"domain.version {domain['version']!r} is not one of {sorted(allowed.versions)}")
    _equal(_uint(domain["chainId"], "domain.chainId"), allowed.chain_id, "domain.chainId")
    contract = _address(domain["verifyingContract"], "domain.verifyingContract")
    if contract not in allowed.exchanges:
        raise _Reject(f"domain.verifyingContract {domain['verifyingContract']} is not an allowed exchange contract")


def _check_amounts(msg: dict, want: Intended, allowed: Allowed, name: str) -> None:
    maker_amount = _uint(msg["makerAmount"], f"{name}.makerAmount")
    taker_amount = _uint(msg["takerAmount"], f"{name}.takerAmount")
    intended = _decimal(want.amount_usd, "intended amount") * BASE_UNITS
    if abs(maker_amount - intended) > allowed.amount_tolerance * intended:
        raise _Reject(f"{name}.makerAmount {maker_amount} ({Decimal(maker_amount) / BASE_UNITS} USD) is not within "
                      f"{allowed.amount_tolerance * 100:g}% of the intended {intended:.0f}")
    if maker_amount == 0 or taker_amount == 0:
        raise _Reject(f"{name}.makerAmount/takerAmount must both be positive")
    price = Fraction(maker_amount, taker_amount + allowed.taker_rounding_units)
    if price > 1:
        raise _Reject(f"{name}.makerAmount/takerAmount implies a price {float(price):.4f} above 1")
    if allowed.max_slippage is None:
        return
    if want.price is None:
        raise _Reject(f"{name}.makerAmount/takerAmount: no decision price to check the implied price against")
    limit = Fraction(_decimal(want.price, "decision price")) + Fraction(allowed.max_slippage)
    if price > limit:
        raise _Reject(f"{name}.makerAmount/takerAmount implies a price {float(price):.4f}, worse than the decision's "
                      f"ask {want.price} by more than MAX_SLIPPAGE {allowed.max_slippage}")


def _check_legacy(msg: dict, want: Intended, allowed: Allowed, name: str) -> None:
    if "taker" in msg and _address(msg["taker"], f"{name}.taker") != ZERO_ADDRESS:
        raise _Reject(f"{name}.taker {msg['taker']} is not the zero address (a private order)")
    if "nonce" in msg and _uint(msg["nonce"], f"{name}.nonce") >= 2 ** 64:
        raise _Reject(f"{name}.nonce {msg['nonce']} is not a sane nonce")
    if "expiration" in msg:
        expiration = _uint(msg["expiration"], f"{name}.expiration")
        now_s = None if want.now_ms is None else want.now_ms // 1000
        if expiration and now_s is not None and not now_s < expiration <= now_s + 86_400:
            raise _Reject(f"{name}.expiration {expiration} is not within the next day")
    if "feeRateBps" in msg:
        fee = _uint(msg["feeRateBps"], f"{name}.feeRateBps")
        if (want.fee_rate_bps is not None and fee != want.fee_rate_bps) or fee > allowed.max_fee_rate_bps:
            market = want.fee_rate_bps if want.fee_rate_bps is not None else f"<= {allowed.max_fee_rate_bps}"
            raise _Reject(f"{name}.feeRateBps {fee} is not the market's ({market})")


def _check_order(msg, want: Intended, allowed: Allowed, name: str, deposit: bool) -> dict:
    _fields(msg, ORDER_STRUCT, name, LEGACY_FIELDS)
    token = _uint(msg["tokenId"], f"{name}.tokenId")
    if token != _uint(str(want.token_id), "intended token id"):
        raise _Reject(f"{name}.tokenId {token} is not the intended side's token {want.token_id}")
    side = _uint(msg["side"], f"{name}.side", 8)
    if side != 0:
        raise _Reject(f"{name}.side {side} is not BUY (0)" + (" but SELL" if side == 1 else ""))
    kind = _uint(msg["signatureType"], f"{name}.signatureType", 8)
    if (deposit and kind != 3) or (not deposit and kind not in allowed.signature_types):
        raise _Reject(f"{name}.signatureType {kind} is not allowed for {'TypedDataSign' if deposit else 'Order'}")
    maker, signer = _address(msg["maker"], f"{name}.maker"), _address(msg["signer"], f"{name}.signer")
    if want.maker and maker != want.maker.lower():
        raise _Reject(f"{name}.maker {msg['maker']} is not the user's address {want.maker}")
    if deposit and signer != maker:
        raise _Reject(f"{name}.signer {msg['signer']} is not the deposit wallet (the maker) {msg['maker']}")
    if not deposit and want.signer and signer != want.signer.lower():
        raise _Reject(f"{name}.signer {msg['signer']} is not the user's signing address {want.signer}")
    _check_amounts(msg, want, allowed, name)
    stamp = _uint(msg["timestamp"], f"{name}.timestamp")
    if want.now_ms is not None and abs(stamp - want.now_ms) > allowed.max_clock_skew_ms:
        raise _Reject(f"{name}.timestamp {stamp} is {abs(stamp - want.now_ms) / 1000:.0f} s away from now")
    _uint(msg["salt"], f"{name}.salt")
    for key in ("metadata", "builder"):
        if not isinstance(msg[key], str) or not _BYTES32.match(msg[key].strip()):
            raise _Reject(f"{name}.{key} {msg[key]!r} is not a bytes32")
    _check_legacy(msg, want, allowed, name)
    return msg


def _check_wrapper(msg, want: Intended, allowed: Allowed) -> None:
    """ERC-7739 TypedDataSign: the app domain is the outer domain, the wallet's domain is in the message."""
    _fields(msg, TYPED_DATA_SIGN_STRUCT, "message")
    _equal(msg["name"], allowed.wallet_domain_name, "message.name")
    _equal(msg["version"], allowed.wallet_domain_version, "message.version")
    _equal(_uint(msg["chainId"], "message.chainId"), allowed.chain_id, "message.chainId")
    wallet = _address(msg["verifyingContract"], "message.verifyingContract")
    if not isinstance(msg["salt"], str) or msg["salt"].strip().lower() != ZERO_BYTES32:
        raise _Reject(f"message.salt {msg['salt']!r} is not bytes32 zero")
    contents = _check_order(msg["contents"], want, allowed, "message.contents", deposit=True)
    if wallet != contents["signer"].strip().lower():
        raise _Reject(f"message.verifyingContract {msg['verifyingContract']} is not the order's deposit wallet "
                      f"{contents['signer']}")


def check_order(typed, want: Intended, allowed: Allowed) -> str | None:
    """None when `typed` (EIP-712 typed data) is the intended order; else the reason to reject."""
    try:
        if not isinstance(typed, dict):
            raise _Reject("the request is not EIP-712 typed data (a transfer, transaction or plain message)")
        kind = typed.get("primaryType")
        if kind not in ("Order", "TypedDataSign"):
            hint = KIND_HINTS.get(kind, " (not an order)") if kind else " (a transfer, transaction or plain message)"
            raise _Reject(f"primaryType {kind!r} is not an order signature{hint}")
        _check_types(typed.get("types"), kind)
        _check_domain(typed.get("domain"), allowed)
        if kind == "Order":
            _check_order(typed.get("message"), want, allowed, "message", deposit=False)
        else:
            _check_wrapper(typed.get("message"), want, allowed)
    except _Reject as why:
        return str(why)
    except ValueError as exc:   # a malformed Intended/Allowed value: never confirm
        return f"guard input: {exc}"
    return None
