"""Polymarket's public market-data shapes, parsed: the failures, Market, Book, Resolution.

Pure (no I/O), shared by the executor's client (executor/market_data.py) and anything else that
reads recorded answers (the quote recorder, the backtest, doctor). The recorded shapes and their
public sources are documented in replica/market_api.py, which serves them to the demo and tests:
Gamma markets carry `outcomes` and `clobTokenIds` as JSON-encoded array strings paired by index
(paired here by outcome NAME, never by position), `conditionId`, `eventStartTime`, `endDate`,
`closed`, `outcomePrices`, `feesEnabled`, `feeSchedule {rate, exponent, takerOnly}`,
`takerBaseFee`; CLOB book levels are {price, size} strings, in any order here.

Failures say what to do next: ApiUnavailable (down, timeout, 5xx, 429 with `retry_after`): try
later; ApiForbidden (403, geoblocked): refuse, tell the user; ApiMalformed (HTML instead of JSON,
a missing or inconsistent field, an event without markets, token ids missing, outcomes other than
Up and Down): refuse this window; MarketNotFound (its subclass): the slug is not listed, or 404.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from core.window_grid import parse_iso_utc, parse_slug

_CONDITION_RE = re.compile(r"0x[0-9a-fA-F]{64}")
OUTCOME_NAMES = {"up": "UP", "down": "DOWN"}


class MarketDataError(Exception):
    """`kind` names the failure for journals and refusals: api_down, api_slow, api_rate_limited,
    api_geoblock, api_html, api_malformed or market_not_found."""

    default_kind = "api_malformed"

    def __init__(self, message: str, url: str = "", kind: str | None = None):
        super().__init__(f"{message} ({url})" if url else message)
        self.url = url
        self.kind = kind or self.default_kind


class ApiUnavailable(MarketDataError):
    """Down, timed out, 5xx or 429: try again later (after `retry_after` seconds when given)."""

    default_kind = "api_down"

    def __init__(self, message: str, url: str = "", retry_after: float | None = None, status: int | None = None,
                 kind: str | None = None):
        super().__init__(message, url, kind or ("api_rate_limited" if status == 429 else None))
        self.retry_after = retry_after
        self.status = status


class ApiForbidden(MarketDataError):
    """403: the API refuses this machine (geoblocking). Refuse to trade; the user must know."""

    default_kind = "api_geoblock"


class ApiMalformed(MarketDataError):
    """The answer is not the recorded shape: refuse this window."""


class MarketNotFound(ApiMalformed):
    """No event/market listed for this slug, or a 404 (a resolved market's book is gone)."""

    default_kind = "market_not_found"


@dataclass(frozen=True)
class Level:
    price: float
    size: float     # shares


@dataclass(frozen=True)
class BookFill:
    """A market BUY of amount_usd walked through the asks (fees not included)."""

    amount_usd: float
    shares: float
    avg_price: float
    worst_price: float      # the last level touched: a marketable order's limit price
    levels: int
    parts: tuple[tuple[float, float], ...] = ()   # (price, shares) taken at each level touched


@dataclass(frozen=True)
class Book:
    """One token's order book, best first on both sides (the API's own order is not relied on)."""

    token_id: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    tick_size: float | None = None
    min_order_size: float | None = None
    timestamp_ms: int | None = None

    def best_ask(self) -> float | None:
        return self.asks[0].price if self.asks else None

    def best_bid(self) -> float | None:
        return self.bids[0].price if self.bids else None

    def ask_for(self, amount_usd: float) -> BookFill | None:
        """The fill of a market BUY of `amount_usd`; None when the asks are too thin for it."""
        if not (isinstance(amount_usd, (int, float)) and math.isfinite(amount_usd) and amount_usd > 0):
            return None
        left, shares, worst, parts = float(amount_usd), 0.0, 0.0, []
        for lv in self.asks:
            if left <= 1e-9:
                break
            take = min(left, lv.price * lv.size)
            shares, left, worst = shares + take / lv.price, left - take, lv.price
            parts.append((lv.price, take / lv.price))
        if left > 1e-9 or not parts:
            return None
        return BookFill(float(amount_usd), shares, float(amount_usd) / shares, worst, len(parts), tuple(parts))

    def depth_usd(self) -> float:
        """What buying every ask would cost."""
        return sum(lv.price * lv.size for lv in self.asks)


@dataclass(frozen=True)
class Market:
    """One Up/Down market: its outcome tokens paired by NAME, its window and fee schedule."""

    slug: str
    condition_id: str
    question: str
    start: float                 # eventStartTime (the slug's timestamp when absent); epoch seconds
    end: float
    active: bool
    closed: bool
    accepting_orders: bool | None
    token_up: str
    token_down: str
    outcome_prices: dict[str, float] | None   # {"UP": p, "DOWN": q}; {"UP": 1, "DOWN": 0} once resolved
    fees_enabled: bool | None
    fee_rate: float | None       # feeSchedule.rate (0 if fees are disabled; None: not published)
    fee_exponent: float | None
    fee_taker_only: bool | None
    fee_rate_bps: int | None     # takerBaseFee (in 2026 a flag, not the rate)
    tick_size: float | None
    min_order_size: float | None

    def token_for(self, side: str) -> str:
        return {"UP": self.token_up, "DOWN": self.token_down}[side.upper()]

    def side_of(self, token: str) -> str | None:
        return "UP" if token == self.token_up else "DOWN" if token == self.token_down else None


@dataclass(frozen=True)
class Resolution:
    winner: str | None       # "UP" | "DOWN" | None (not resolved yet)
    closed: bool
    source: str              # "clob" | "gamma"


def _json_list(value: object, what: str, url: str) -> list:
    """Gamma's JSON-encoded array strings (a real array is accepted too)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ApiMalformed(f"{what} is not a JSON array string: {value[:80]!r}", url) from None
    if not isinstance(value, list):
        raise ApiMalformed(f"{what} missing or not an array: {value!r:.80}", url)
    return value


def number(value: object, what: str = "", url: str = "") -> float | None:
    """A finite number from a number or numeric string; with `what`, ApiMalformed instead of None."""
    out = None
    if not isinstance(value, bool):
        try:
            out = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            out = None
    if out is None or not math.isfinite(out):
        if what:
            raise ApiMalformed(f"{what} is not a number: {value!r:.40}", url)
        return None
    return out


def _flag(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _time(value: object) -> float:
    """Epoch seconds from an ISO time; NaN when absent or unreadable (every comparison then fails)."""
    try:
        return parse_iso_utc(value) if isinstance(value, str) and value else math.nan
    except ValueError:
        return math.nan


def _tokens_by_name(raw: dict, url: str) -> tuple[dict[str, str], list]:
    names = _json_list(raw.get("outcomes"), "outcomes", url)
    tokens = _json_list(raw.get("clobTokenIds"), "clobTokenIds", url)
    if len(names) != 2 or len(tokens) != 2:
        raise ApiMalformed(f"outcomes {names!r:.60} and clobTokenIds ({len(tokens)}) do not pair up", url)
    by_name: dict[str, str] = {}
    for name, tok in zip(names, tokens, strict=True):
        key = OUTCOME_NAMES.get(name.strip().lower()) if isinstance(name, str) else None
        if key is None or key in by_name:
            raise ApiMalformed(f"outcomes must be exactly Up and Down, got {names!r:.60}", url)
        if not isinstance(tok, str) or not tok.isdigit():
            raise ApiMalformed(f"token id for {name} missing or not a decimal uint256: {tok!r:.90}", url)
        by_name[key] = tok
    if by_name["UP"] == by_name["DOWN"]:
        raise ApiMalformed("Up and Down have the same token id", url)
    return by_name, names


def parse_market(raw: object, slug: str, url: str = "") -> Market:
    """A Market from one Gamma market object of the window `slug` (a window slug: ValueError
    otherwise); ApiMalformed naming the first thing wrong. The window is checked by time
    (eventStartTime against the slug's start), not by the market's own slug."""
    if not isinstance(raw, dict):
        raise ApiMalformed("market is not an object", url)
    by_name, names = _tokens_by_name(raw, url)
    cid = raw.get("conditionId")
    if not isinstance(cid, str) or not _CONDITION_RE.fullmatch(cid):
        raise ApiMalformed(f"conditionId missing or not 32-byte hex: {cid!r:.80}", url)
    slug_start = float(parse_slug(slug)[1])
    start = _time(raw.get("eventStartTime")) if raw.get("eventStartTime") else slug_start
    if not abs(start - slug_start) <= 1:
        raise ApiMalformed(f"eventStartTime {raw.get('eventStartTime')!r:.40} disagrees with the slug", url)
    end = _time(raw.get("endDate"))
    if not end > start:
        raise ApiMalformed(f"endDate {raw.get('endDate')!r:.40} missing or not after the start", url)
    prices = None
    if raw.get("outcomePrices") not in (None, ""):
        values = _json_list(raw.get("outcomePrices"), "outcomePrices", url)
        if len(values) != 2:
            raise ApiMalformed(f"outcomePrices has {len(values)} entries", url)
        prices = {OUTCOME_NAMES[n.strip().lower()]: number(v, "outcomePrices", url)
                  for n, v in zip(names, values, strict=True)}
    sched = raw.get("feeSchedule") if isinstance(raw.get("feeSchedule"), dict) else {}
    enabled = _flag(raw.get("feesEnabled"))
    if not isinstance(raw.get("closed"), bool):
        raise ApiMalformed(f"closed missing or not a boolean: {raw.get('closed')!r:.20}", url)
    base = number(raw.get("takerBaseFee"))
    return Market(
        slug=slug, condition_id=cid, question=str(raw.get("question") or ""), start=start, end=end,
        active=raw.get("active") is not False, closed=raw["closed"], accepting_orders=_flag(raw.get("acceptingOrders")),
        token_up=by_name["UP"], token_down=by_name["DOWN"], outcome_prices=prices, fees_enabled=enabled,
        fee_rate=0.0 if enabled is False else number(sched.get("rate")), fee_exponent=number(sched.get("exponent")),
        fee_taker_only=_flag(sched.get("takerOnly")), fee_rate_bps=int(base) if base is not None else None,
        tick_size=number(raw.get("orderPriceMinTickSize")), min_order_size=number(raw.get("orderMinSize")))


def parse_levels(raw: object, what: str, url: str) -> list[Level]:
    if not isinstance(raw, list):
        raise ApiMalformed(f"book {what} is not a list", url)
    out = []
    for item in raw:
        if not isinstance(item, dict):
            raise ApiMalformed(f"book {what} level is not an object: {item!r:.60}", url)
        price = number(item.get("price"), f"book {what} price", url)
        size = number(item.get("size"), f"book {what} size", url)
        if not 0 < price < 1:
            raise ApiMalformed(f"book {what} price out of (0, 1): {price}", url)
        if size > 0:
            out.append(Level(price, size))
    return out
