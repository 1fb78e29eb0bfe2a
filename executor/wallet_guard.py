"""The wallet guard: confirm only the request we meant (pure, unit-tested).

A request is accepted only when: its origin is the market's origin; it is an order signature
(primaryType == the wallet profile's order_primary_type); its side equals the intent's side;
its amount is within AMOUNT_TOLERANCE (a fraction) of the intended amount; its price is not
worse than the price the decision was made on by more than MAX_SLIPPAGE; its market slug is the
intent's slug. Anything else is rejected with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class WalletRequest:
    origin: str | None
    title: str | None
    fields: dict[str, str]   # canonical names (primary_type, side, amount, market, ...) -> text


@dataclass(frozen=True)
class Intended:
    side: str                # UP | DOWN
    amount: float
    slug: str
    price: float | None = None   # the ask the decision was made on


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


def _side(text: str | None) -> str | None:
    t = (text or "").strip().upper()
    if t in ("UP", "YES"):
        return "UP"
    if t in ("DOWN", "NO"):
        return "DOWN"
    return None


def _amount(text: str | None) -> float | None:
    try:
        return float((text or "").strip().lstrip("$").replace(",", ""))
    except ValueError:
        return None


def check(request: WalletRequest, intended: Intended, market_origin: str, order_primary_type: str,
          tolerance: float, max_slippage: float | None = None) -> str | None:
    """None when the request may be confirmed, else why it must be rejected."""
    want_origin = normalize_origin(market_origin)
    got_origin = normalize_origin(request.origin)
    if got_origin is None:
        return "request shows no origin"
    if got_origin != want_origin:
        return f"origin {got_origin} is not the market's origin {want_origin}"
    kind = (request.fields.get("primary_type") or "").strip()
    if kind != order_primary_type:
        return f"request kind {kind or 'unknown'!r} is not an order signature ({order_primary_type})"
    side = _side(request.fields.get("side"))
    if side != intended.side:
        return f"side {request.fields.get('side')!r} differs from the intended {intended.side}"
    amount = _amount(request.fields.get("amount"))
    if amount is None:
        return f"amount {request.fields.get('amount')!r} is not a number"
    if abs(amount - intended.amount) > tolerance * intended.amount + 1e-9:
        return f"amount {amount:g} is not within {tolerance:.0%} of the intended {intended.amount:g}"
    if max_slippage is not None and intended.price is not None:
        price = _amount(request.fields.get("price"))
        if price is None:
            return f"price {request.fields.get('price')!r} is not a number"
        if price > intended.price + max_slippage + 1e-9:
            return (f"price {price:.2f} is worse than the decision's {intended.price:.2f}"
                    f" by more than MAX_SLIPPAGE {max_slippage:.2f}")
    market = (request.fields.get("market") or "").strip()
    if market != intended.slug:
        return f"market {market or 'missing'!r} is not the intended {intended.slug}"
    return None
