"""What the replica's wallet is asked to sign: the real CLOB V2/V3 order typed data, and its adversaries.

A Buy on the replica's page opens a wallet request whose EIP-712 typed data is built here from the order,
in the shape Polymarket's SDKs build (see ../shared/design/real-site-notes.md "What the wallet is asked to
sign"; executor/order_guard.py names the same sources):
- `Order {salt, maker, signer, tokenId, makerAmount, takerAmount, side, signatureType, timestamp, metadata,
  builder}` under the domain {name "Polymarket CTF Exchange", version "2" | "3", chainId 137,
  verifyingContract: the V2 or V3 exchange} (Polymarket/clob-client-v2 src/order-utils/model/
  ctfExchangeV2TypedData.ts; exchanges from src/config.ts MATIC_CONTRACTS);
- tokenId: the side's token id, the same deterministic id the replica's Gamma/CLOB APIs serve
  (replica/market_api.py token_id), so the executor's market data and the signed order agree;
- makerAmount = the amount in base units (6 decimals); takerAmount = amount / price rounded down to
  4 decimals, in base units (src/order-builder/helpers/getMarketOrderRawAmounts.ts); side BUY = 0;
- account "safe" (accounts before 2026-05-04): primaryType `Order`, signatureType 2, maker = the Safe,
  signer = the MetaMask key; account "deposit" (deposit wallets): primaryType `TypedDataSign` wrapping the
  Order (signatureType 3, maker = signer = the deposit wallet) with {name "DepositWallet", version "1",
  chainId 137, verifyingContract: the deposit wallet, salt 0} (exchangeOrderBuilderV2.ts
  buildOrderSignature).
The replica's addresses are lower case: MetaMask renders a lower-case address as an address (a mixed-case
one must carry a valid EIP-55 checksum, which needs keccak, not in the standard library).

The wallet settings (account type, exchange version, a danger alert, the reject button's id) are
configurable at start ($REPLICA_WALLET_ACCOUNT, $REPLICA_EXCHANGE_VERSION, $REPLICA_DANGER_ALERT,
$REPLICA_CANCEL_ID) and at run time (`POST /api/wallet/settings` on the market port).

Adversaries (armed as faults, replica/faults.py): each turns the next request into a real-shaped attack.
What a confirmed request does is decided by `signed_order`: an order the venue would accept is placed as
signed (the danger is real), anything else places nothing.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import asdict, dataclass, replace
from decimal import ROUND_DOWN, Decimal

log = logging.getLogger("replica")

BASE_UNITS = 10 ** 6
CHAIN_ID = 137
ZERO_BYTES32 = "0x" + "0" * 64
EXCHANGE_DOMAIN = "Polymarket CTF Exchange"
EXCHANGES = {"2": "0xe111180000d2663c0091e4f400237545b87b996b",   # CTF Exchange V2 (clob-client-v2 config.ts)
             "3": "0xe3333700ca9d93003f00f0f71f8515005f6c00aa"}   # exchange V3 (same source)
V1_EXCHANGE = "0x4bfb41d5b3570defd03c39a9a4d8de6bd8b8982e"        # rejected by the venue since 2026-04-28
USDC_POLYGON = "0x2791bca1f2de4661ed88a30c99a7a9449aa84174"       # USDC.e on Polygon, for the permit adversary
# The replica wallet's addresses: the MetaMask account (the signer), its Safe and its deposit wallet.
SIGNER_ADDRESS = "0x7a3c5e0f1b2d4a6c8e9f0a1b2c3d4e5f6a7bc91e"
SAFE_ADDRESS = "0x5afe0c0ffee5afe0c0ffee5afe0c0ffee5afe001"
DEPOSIT_ADDRESS = "0xdeb051700000000000000000000000000000d3a1"
ATTACKER_ADDRESS = "0x9b1f7e4c2a3d5e6f708192a3b4c5d6e7f8091a2b"
ACCOUNTS = ("safe", "deposit")
CANCEL_IDS = ("confirm-footer-cancel-button", "cancel-btn")
WORSE_PRICE_STEP = Decimal("0.10")
ENV_VARS = {"account": "REPLICA_WALLET_ACCOUNT", "exchange_version": "REPLICA_EXCHANGE_VERSION",
            "danger_alert": "REPLICA_DANGER_ALERT", "cancel_id": "REPLICA_CANCEL_ID"}

ORDER_TYPE = [("salt", "uint256"), ("maker", "address"), ("signer", "address"), ("tokenId", "uint256"),
              ("makerAmount", "uint256"), ("takerAmount", "uint256"), ("side", "uint8"), ("signatureType", "uint8"),
              ("timestamp", "uint256"), ("metadata", "bytes32"), ("builder", "bytes32")]
DOMAIN_TYPE = [("name", "string"), ("version", "string"), ("chainId", "uint256"), ("verifyingContract", "address")]
TYPED_DATA_SIGN_TYPE = [("contents", "Order"), ("name", "string"), ("version", "string"), ("chainId", "uint256"),
                        ("verifyingContract", "address"), ("salt", "bytes32")]

# fault kind -> what it does (listed by GET /api/faults through replica/faults.py)
ADVERSARIES: dict[str, str] = {
    "wallet_other_origin": "the next signature request comes from another origin",
    "wallet_transfer": "the next request is a token transfer transaction (no typed data)",
    "wallet_approve": "the next request is an unlimited token approval (an EIP-2612 Permit)",
    "wallet_clob_auth": "the next request is a CLOB API-key sign-in (ClobAuth)",
    "wallet_larger_amount": "the next order's makerAmount (and takerAmount) is 10x what the page asked",
    "wallet_opposite_side": "the next order carries the other outcome's tokenId",
    "wallet_worse_price": "the next order's takerAmount implies a price 0.10 above the window's highest ask so far",
    "wallet_sell": "the next order is a SELL (side 1)",
    "wallet_other_contract": "the next order is signed for another verifyingContract (the retired V1 exchange)",
    "wallet_other_chain": "the next order's domain chainId is 1 (Ethereum), not 137",
    "wallet_other_maker": "the next order's maker (and signer) is an address that is not the user's",
    "wallet_bad_contents": "the next request is a deposit-wallet TypedDataSign whose contents carry the other token",
}


def _types(*names: str) -> dict:
    defs = {"EIP712Domain": DOMAIN_TYPE, "Order": ORDER_TYPE, "TypedDataSign": TYPED_DATA_SIGN_TYPE}
    return {n: [{"name": f, "type": t} for f, t in defs[n]] for n in names}


@dataclass(frozen=True)
class WalletSettings:
    account: str = "safe"              # "safe" (Order) | "deposit" (TypedDataSign)
    exchange_version: str = "2"        # "2" | "3"
    danger_alert: str = ""             # "" none; else the text of a danger alert the confirm must get past
    cancel_id: str = CANCEL_IDS[0]     # the reject button's test id

    @classmethod
    def from_env(cls) -> WalletSettings:
        """The defaults, with each REPLICA_* variable that is set; a bad one is logged and left at its default."""
        out = cls()
        for key, var in ENV_VARS.items():
            value = os.environ.get(var, "").strip()
            if not value:
                continue
            try:
                out = out.updated({key: value})
            except ValueError as exc:
                log.error("%s: %s; the wallet keeps %s=%r", var, exc, key, getattr(out, key))
        return out

    def updated(self, changes: object) -> WalletSettings:
        """A copy with `changes` applied; ValueError names the bad key and the accepted values."""
        if not isinstance(changes, dict):
            raise ValueError("wallet settings must be a JSON object like {\"account\": \"deposit\"}")
        unknown = set(changes) - set(asdict(self))
        if unknown:
            raise ValueError(f"unknown wallet setting(s) {sorted(unknown)}; known: {sorted(asdict(self))}")
        out = replace(self, **changes)
        if out.account not in ACCOUNTS:
            raise ValueError(f"account must be one of {ACCOUNTS}, got {out.account!r}")
        if out.exchange_version not in EXCHANGES:
            raise ValueError(f"exchange_version must be one of {tuple(EXCHANGES)}, got {out.exchange_version!r}")
        if not isinstance(out.danger_alert, str) or len(out.danger_alert) > 300:
            raise ValueError("danger_alert must be a string of at most 300 characters")
        if out.cancel_id not in CANCEL_IDS:
            raise ValueError(f"cancel_id must be one of {CANCEL_IDS}, got {out.cancel_id!r}")
        return out

    def to_dict(self) -> dict:
        return asdict(self)


def side_tokens(seed: int, slug: str) -> dict[str, str]:
    """{"UP": token id, "DOWN": token id}: the ids the replica's Gamma/CLOB APIs serve for this market."""
    from .market_common import token_id  # market_common imports replica.state, which imports this module

    return {"UP": token_id(seed, slug, "Up"), "DOWN": token_id(seed, slug, "Down")}


def base_units(usd: float | Decimal) -> int:
    return int((Decimal(str(usd)) * BASE_UNITS).to_integral_value(rounding=ROUND_DOWN))


def taker_units(amount: float, price: float | Decimal) -> int:
    """Shares for `amount` USD at `price`, rounded down to 4 decimals, in base units (the SDK's market BUY)."""
    shares = (Decimal(str(amount)) / Decimal(str(price))).quantize(Decimal("0.0001"), rounding=ROUND_DOWN)
    return int(shares * BASE_UNITS)


def order_message(token: str, amount: float, price: float, maker: str, signer: str, signature_type: int,
                  now_ms: int) -> dict:
    return {"salt": str(secrets.randbelow(2 ** 53)), "maker": maker, "signer": signer, "tokenId": token,
            "makerAmount": str(base_units(amount)), "takerAmount": str(taker_units(amount, price)), "side": 0,
            "signatureType": signature_type, "timestamp": str(now_ms), "metadata": ZERO_BYTES32,
            "builder": ZERO_BYTES32}


def order_typed_data(token: str, amount: float, price: float, settings: WalletSettings, now_ms: int,
                     account: str | None = None) -> dict:
    """The typed data the site asks the wallet to sign for a market BUY of `amount` USD at `price`."""
    domain = {"name": EXCHANGE_DOMAIN, "version": settings.exchange_version, "chainId": CHAIN_ID,
              "verifyingContract": EXCHANGES[settings.exchange_version]}
    if (account or settings.account) == "safe":
        return {"types": _types("EIP712Domain", "Order"), "primaryType": "Order", "domain": domain,
                "message": order_message(token, amount, price, SAFE_ADDRESS, SIGNER_ADDRESS, 2, now_ms)}
    contents = order_message(token, amount, price, DEPOSIT_ADDRESS, DEPOSIT_ADDRESS, 3, now_ms)
    return {"types": _types("EIP712Domain", "TypedDataSign", "Order"), "primaryType": "TypedDataSign",
            "domain": domain,
            "message": {"contents": contents, "name": "DepositWallet", "version": "1", "chainId": CHAIN_ID,
                        "verifyingContract": DEPOSIT_ADDRESS, "salt": ZERO_BYTES32}}


def _order_of(typed: dict) -> dict:
    return typed["message"]["contents"] if typed["primaryType"] == "TypedDataSign" else typed["message"]


def _other_side(req: dict) -> str:
    return "DOWN" if req["side"] == "UP" else "UP"


def _adversary_order(kind: str, req: dict, settings: WalletSettings, tokens: dict, now_ms: int) -> dict:
    """The order request, altered the way `kind` says (or as asked when kind is None)."""
    side, amount, price = req["side"], req["amount"], req["price"]
    if kind in ("wallet_opposite_side", "wallet_bad_contents"):
        side = _other_side(req)
        price = req["down"] if side == "DOWN" else req["up"]
    account = "deposit" if kind == "wallet_bad_contents" else None
    typed = order_typed_data(tokens[side], amount, price, settings, now_ms, account)
    order = _order_of(typed)
    if kind == "wallet_larger_amount":
        order["makerAmount"] = str(base_units(amount) * 10)
        order["takerAmount"] = str(taker_units(amount, price) * 10)
    elif kind == "wallet_worse_price":
        # 0.10 above the highest ask of the window so far (replica/state.py arms it only where that is <= 0.99)
        basis = Decimal(str(req.get("worse_than", price)))
        order["takerAmount"] = str(taker_units(amount, basis + WORSE_PRICE_STEP))
    elif kind == "wallet_sell":
        order["side"] = 1
    elif kind == "wallet_other_contract":
        typed["domain"]["verifyingContract"] = V1_EXCHANGE
    elif kind == "wallet_other_chain":
        typed["domain"]["chainId"] = 1
    elif kind == "wallet_other_maker":
        order["maker"] = ATTACKER_ADDRESS
        if typed["primaryType"] == "TypedDataSign":
            order["signer"] = typed["message"]["verifyingContract"] = ATTACKER_ADDRESS
    return typed


def _other_request(kind: str, now_ms: int) -> dict:
    if kind == "wallet_approve":
        return {"types": {"EIP712Domain": [{"name": f, "type": t} for f, t in DOMAIN_TYPE],
                          "Permit": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
                                     {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
                                     {"name": "deadline", "type": "uint256"}]},
                "primaryType": "Permit",
                "domain": {"name": "USD Coin (PoS)", "version": "1", "chainId": CHAIN_ID,
                           "verifyingContract": USDC_POLYGON},
                "message": {"owner": SIGNER_ADDRESS, "spender": ATTACKER_ADDRESS, "value": str(2 ** 256 - 1),
                            "nonce": "0", "deadline": str(2 ** 256 - 1)}}
    return {"types": {"EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                                       {"name": "chainId", "type": "uint256"}],
                      "ClobAuth": [{"name": "address", "type": "address"}, {"name": "timestamp", "type": "string"},
                                   {"name": "nonce", "type": "uint256"}, {"name": "message", "type": "string"}]},
            "primaryType": "ClobAuth",
            "domain": {"name": "ClobAuthDomain", "version": "1", "chainId": CHAIN_ID},
            "message": {"address": SIGNER_ADDRESS, "timestamp": str(now_ms // 1000), "nonce": "0",
                        "message": "This message attests that I control the given wallet"}}


def wallet_request(req: dict, settings: WalletSettings, seed: int, now: float, other_origin: str,
                   balance: float) -> dict:
    """What the popup shows and what confirming signs: {origin, title, kind, typed | transaction, alert,
    cancel_id, account}. `req` is the replica's wallet request (asset, slug, side, amount, price, up, down,
    origin, adversary)."""
    kind, now_ms = req["adversary"], int(now * 1000)
    shown = {"origin": other_origin if kind == "wallet_other_origin" else req["origin"],
             "title": "Signature request", "kind": "typed", "typed": None, "transaction": None,
             "alert": settings.danger_alert or None, "cancel_id": settings.cancel_id,
             "account": {"name": "Account 1", "address": SIGNER_ADDRESS}}
    if kind == "wallet_transfer":
        value = round(max(balance, req["amount"]), 2)
        shown.update(title="Transfer request", kind="transaction",
                     transaction={"to": ATTACKER_ADDRESS, "token": "USDC", "amount": f"{value:.2f}",
                                  "value_usd": value})
    elif kind in ("wallet_approve", "wallet_clob_auth"):
        shown["typed"] = _other_request(kind, now_ms)
    else:
        shown["typed"] = _adversary_order(kind, req, settings, side_tokens(seed, req["slug"]), now_ms)
    return shown


def signed_order(shown: dict, req: dict, seed: int) -> tuple[str, float] | str:
    """What the venue does with the signature of `shown`: (side, amount USD) of the BUY it accepts, or why it
    places nothing. Signatures for another contract, chain or maker do not verify; a SELL of shares the
    wallet does not hold is refused."""
    typed = shown.get("typed")
    if shown.get("kind") != "typed" or not isinstance(typed, dict):
        return "Order not placed: the wallet signed a transaction, not an order"
    if typed.get("primaryType") not in ("Order", "TypedDataSign"):
        return f"Order not placed: the wallet signed a {typed.get('primaryType')}, not an order"
    domain, order = typed["domain"], _order_of(typed)
    if domain.get("verifyingContract") not in EXCHANGES.values() or str(domain.get("chainId")) != str(CHAIN_ID):
        return "Order rejected: invalid signature (signed for another exchange contract or chain)"
    if order["maker"] not in (SAFE_ADDRESS, DEPOSIT_ADDRESS):
        return "Order rejected: invalid signature (the maker is not this wallet's account)"
    if str(order["side"]) != "0":
        return "Order rejected: not enough shares to sell"
    side = next((s for s, t in side_tokens(seed, req["slug"]).items() if t == str(order["tokenId"])), None)
    if side is None:
        return "Order rejected: unknown token id"
    return side, int(order["makerAmount"]) / BASE_UNITS
