"""The wallet guard: confirm only the order signature we meant (pure except the address pin's file).

`OrderCheck(request)` is None when the wallet's request may be confirmed, else the reason to reject it:
- the requesting origin the wallet shows is the market's origin (scheme-less host and port);
- the request's full typed data (MetaMask's copy of the message section, `WalletRequest.typed_json`) passes
  `executor.order_guard.check_order`: primary type `Order`, or `TypedDataSign` whose `contents` is an Order;
  the exchange's domain (name, version, chainId 137, verifyingContract in the wallet profile's allow-list);
  tokenId = the intended side's token id from the venue's market data; side BUY; makerAmount within
  AMOUNT_TOLERANCE of the intended amount; implied price no worse than the decision's ask by more than
  MAX_SLIPPAGE; maker (and, for a Safe account, signer) = the user's addresses;
- every row the signature page shows agrees with that typed data (`order_rows.cross_check`): the rows
  alone cannot approve (MetaMask hides the domain's name and version and shortens addresses).

The user's addresses: the maker is WALLET_ADDRESS when set; otherwise the maker and signer of the first
order that passes every other check are pinned in STATE_DIR/wallet.json (0600, written atomically before
the confirm). A later request from another address is refused until the user confirms the change by
deleting that file (or by setting WALLET_ADDRESS).
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from core.durable_files import atomic_write_json, read_json
from core.market_shapes import MarketDataError
from executor.order_guard import Allowed, Intended, check_order
from executor.order_rows import RowsError, cross_check, typed_from_json

log = logging.getLogger("executor.wallet_guard")

DEFAULT_PORTS = {"http": 80, "https": 443}
PIN_FILE = "wallet.json"
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_WHO = re.compile(r"^message(\.contents)?\.(maker|signer) ")


@dataclass(frozen=True)
class WalletRequest:
    origin: str | None               # as the wallet shows it ("polymarket.com", "https://...", "127.0.0.1:8765")
    title: str | None
    primary_type: str | None         # the page's primary-type row
    rows: dict[str, str]             # message rows, keys as executor.order_rows documents
    typed_json: str | None           # the full request as the message section's copy button copies it
    copy_error: str | None = None    # why typed_json could not be read

    def typed(self) -> dict | None:
        try:
            return typed_from_json(self.typed_json) if self.typed_json else None
        except RowsError:
            return None

    @property
    def fields(self) -> dict:
        """What the wallet showed, for logs and the journal (no secrets: addresses, amounts, ids)."""
        typed = self.typed()
        if typed is None:
            return {"primary_type": self.primary_type, "rows": dict(list(self.rows.items())[:24]),
                    "copy_error": self.copy_error}
        return {"primary_type": typed.get("primaryType"), "domain": typed.get("domain"),
                "message": typed.get("message")}


def normalize_origin(text: str | None) -> str | None:
    """'https://Example.com:443/x' / 'example.com' -> 'example.com'; '127.0.0.1:8765' kept with port."""
    if not text:
        return None
    t = text.strip().lower()
    if "://" not in t:
        t = "http-unknown://" + t
    parts = urlsplit(t)
    host = parts.hostname
    if not host:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    if port is None or DEFAULT_PORTS.get(parts.scheme) == port:
        return host
    return f"{host}:{port}"


def check(request: WalletRequest, want: Intended, allowed: Allowed, market_origin: str) -> str | None:
    """None when the request may be confirmed, else why it must be rejected."""
    want_origin, got_origin = normalize_origin(market_origin), normalize_origin(request.origin)
    if got_origin is None:
        return "request shows no origin"
    if got_origin != want_origin:
        return f"origin {got_origin} is not the market's origin {want_origin}"
    if not request.typed_json:
        return (f"the wallet shows no typed data to copy ({request.copy_error or 'no message section'}): "
                f"{request.title or 'the request'} is not an order signature")
    try:
        typed = typed_from_json(request.typed_json)
    except RowsError as exc:
        return f"the request's copied data is unreadable: {exc}"
    why = check_order(typed, want, allowed)
    if why:
        return why
    mismatch = cross_check(request.rows, request.primary_type, typed)
    return f"the signature page disagrees with the copied request: {mismatch}" if mismatch else None


def order_of(typed: dict) -> dict:
    msg = typed.get("message") or {}
    return msg.get("contents", {}) if typed.get("primaryType") == "TypedDataSign" else msg


class AddressPin:
    """The user's trading addresses: WALLET_ADDRESS for the maker, else the pin file (maker and signer)."""

    def __init__(self, path: Path, configured: str = ""):
        self.path, self.configured = Path(path), configured.strip().lower()

    def load(self) -> dict:
        """{maker, signer} pinned so far ({} when none); an unreadable file pins nothing new and says so."""
        res = read_json(self.path)
        if not res.ok:
            if res.problem != "missing":
                raise ValueError(f"{self.path} is {res.problem}: delete it to pin the wallet's address again")
            return {}
        data = res.data if isinstance(res.data, dict) else {}
        return {k: str(data[k]).lower() for k in ("maker", "signer") if isinstance(data.get(k), str)
                and _ADDRESS.match(data[k])}

    def expected(self) -> tuple[str | None, str | None]:
        pinned = self.load()
        return (self.configured or pinned.get("maker")), pinned.get("signer")

    def explain(self, why: str) -> str:
        if _WHO.match(why) and self.path.exists():
            return (f"{why} (the address pinned in {self.path} by an earlier order; if you changed accounts,"
                    f" delete that file to accept the new address, or set WALLET_ADDRESS)")
        return why

    def remember(self, typed: dict, trade_id: str) -> None:
        """Pin the confirmed order's maker/signer when none is pinned yet (atomic, 0600). OSError: not pinned."""
        pinned = self.load()
        order = order_of(typed)
        maker, signer = str(order.get("maker", "")).lower(), str(order.get("signer", "")).lower()
        if pinned.get("maker") and pinned.get("signer"):
            return
        atomic_write_json(self.path, {"maker": maker, "signer": signer, "account": typed.get("primaryType"),
                                      "pinned_at": round(time.time(), 3), "trade_id": trade_id,
                                      "note": "the wallet guard refuses orders from other addresses; delete this"
                                              " file to accept a new account"}, mode=0o600)
        log.warning("wallet address pinned in %s: maker %s, signer %s (set WALLET_ADDRESS to state it yourself)",
                    self.path, maker, signer)


@dataclass
class OrderCheck:
    """The guard for one order: `check(request)` -> None (confirm) or the reason to reject."""
    allowed: Allowed
    market_origin: str
    token_id: str
    amount: float
    price: float | None
    pin: AddressPin
    trade_id: str

    def check(self, request: WalletRequest) -> str | None:
        try:
            maker, signer = self.pin.expected()
        except ValueError as exc:
            return f"wallet address: {exc}"
        want = Intended(self.token_id, self.amount, self.price, maker=maker, signer=signer,
                        now_ms=int(time.time() * 1000))
        why = check(request, want, self.allowed, self.market_origin)
        if why:
            return self.pin.explain(why)
        try:
            self.pin.remember(json.loads(request.typed_json or "{}"), self.trade_id)
        except (OSError, ValueError) as exc:
            return f"could not pin the wallet's address in {self.pin.path} ({exc}); not confirming"
        return None


class GuardUnavailable(Exception):
    """The guard for an order cannot be built (market data, allow-list): no click, the trade fails."""


def order_check(cfg, wallet_profile, view, order, market_origin: str) -> OrderCheck:
    """The guard for `order` (executor.trade.Order): the intended side's token id from the venue's market
    data (`view`: executor.market_view.MarketView), the wallet profile's allow-list, AMOUNT_TOLERANCE,
    MAX_SLIPPAGE, WALLET_ADDRESS or the pin file. Raises GuardUnavailable naming what is missing."""
    try:
        allowed = Allowed.from_profile(wallet_profile.order_guard, cfg.amount_tolerance, cfg.max_slippage)
    except ValueError as exc:
        raise GuardUnavailable(f"wallet profile {wallet_profile.path}: {exc}") from None
    try:
        market = view.market(order.asset, order.window_start)
        token = market.token_for(order.side)
    except (MarketDataError, KeyError) as exc:
        raise GuardUnavailable(f"no token id for {order.side} of {order.slug} from the market data ({exc});"
                               " the wallet guard cannot check the order, so none is placed") from None
    if market.slug != order.slug:
        raise GuardUnavailable(f"the market data's market {market.slug} is not the order's {order.slug}")
    pin = AddressPin(cfg.state_dir / PIN_FILE, getattr(cfg, "wallet_address", "") or "")
    return OrderCheck(allowed, market_origin, token, order.amount, order.price, pin, order.trade_id)
