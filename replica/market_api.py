"""Polymarket's public read-only market-data APIs, served from the replica's own state.

Base URLs are configurable in the client (executor/market_data.py): the real hosts map onto path
prefixes of the replica's market port,

    https://gamma-api.polymarket.com  ->  http://127.0.0.1:<port>/gamma
    https://clob.polymarket.com       ->  http://127.0.0.1:<port>/clob

so a client pointed at `<replica>/gamma` and `<replica>/clob` issues the same requests as against
the real site. Nothing here was checked against the live hosts (this machine has no internet);
each shape names its public source, and the field names are copied from those sources.

Gamma (`/gamma`)
  GET /events?slug=<slug>      -> [event] (or [] for an unknown slug: Gamma answers 200 with an
                                  empty list, not 404). An event carries `markets: [market]`.
  GET /events/slug/<slug>      -> event, or 404
  GET /markets?slug=<slug>     -> [market] (or [])
  GET /markets/slug/<slug>     -> market, or 404
  Sources: docs.polymarket.com "Get event by id" / "List events" (the Gamma OpenAPI: event
  fields id, ticker, slug, title, startDate, endDate, active, closed, markets[...]; market fields
  id, question, conditionId, slug, startDate, endDate, outcomes, outcomePrices, clobTokenIds,
  active, closed, acceptingOrders, enableOrderBook, orderPriceMinTickSize, orderMinSize,
  makerBaseFee, takerBaseFee, questionID, umaResolutionStatus, eventStartTime); docs "Prices and
  Order Books" (`clobTokenIds` is a JSON-encoded array string, as are `outcomes` and
  `outcomePrices`); `feesEnabled` and `feeSchedule {rate, exponent, takerOnly, rebateRate}` as
  public 2026 fee code reads them from Gamma markets; ../shared/design/real-site-notes.md.
  For the Up/Down markets `startDate` is when the market was listed (before the window) and
  `eventStartTime` the window's start; the slug's timestamp is the same start (real-site notes:
  trust the slug).

CLOB (`/clob`)
  GET /book?token_id=          -> {market, asset_id, timestamp (ms, string), hash, bids, asks,
                                  min_order_size, tick_size, neg_risk, last_trade_price}; levels
                                  are {price, size} strings; bids ascending and asks descending by
                                  price, so the best of each is the LAST entry (docs "Prices and
                                  Order Books"; Polymarket/clob-client-v2 src/types/clob.ts
                                  OrderBookSummary; docs OpenAPI get-book). 404 {"error": "No
                                  orderbook exists for the requested token id"} once resolved.
  GET /price?token_id=&side=   -> {"price": <number>}: BUY = the best BID, SELL = the best ASK
                                  (docs "Get market price": "Returns the best bid price for BUY
                                  side or best ask price for SELL side"; confirmed against
                                  production in Vex-Foundation/Vex PR #72, Jul 2026).
  GET /midpoint?token_id=      -> {"mid_price": "0.45"} (docs "Get midpoint price"; older
                                  clients read `mid`).
  GET /fee-rate?token_id=      -> {"base_fee": <int bps>} (py-clob-client-v2 client.get_fee_rate_bps
  GET /fee-rate/<token_id>        and tests/test_client_fee_cache.py; docs "Get fee rate" / "Get fee
                                  rate by path parameter"). In 2026 base_fee is a flag, not the
                                  rate: the rate is the market's feeSchedule.
  GET /version                 -> {"version": 2} (py-clob-client-v2 client.get_version; real-site
                                  notes: V2 since 2026-04-28).
  GET /markets/<conditionId>   -> {condition_id, question_id, market_slug, question, active,
                                  closed, archived, accepting_orders, enable_order_book,
                                  minimum_order_size, minimum_tick_size, maker_base_fee,
                                  taker_base_fee, end_date_iso, game_start_time, neg_risk,
                                  tokens: [{token_id, outcome, price, winner}], ...} (docs
                                  "Public methods: getMarket"; nautilus_trader ClobMarketResponse).
  Errors are {"error": "..."} (docs examples: "Invalid token id", "No orderbook exists ...").

Ground truth: one market per asset per window of the replica's grid; the slug is
core.window_grid.window_slug (`btc-updown-15m-<start>`, `-5m-` on a 300 s grid, `-1m-`/`-30s-`
in demo and tests). Token ids are deterministic uint256 decimal strings per (seed, slug,
outcome); the condition id a 0x-prefixed 32-byte hex. The book is built around the page's own
quote (so the API and the page agree): Up ask = the page's Up price, Up bid = 1 - Down price,
five levels a side. Resolution: the window's open and close on the replica's price path, ties
Up (core.fees.up_wins), published `resolution_delay` seconds after the end (real: median ~28 s;
`--resolution-delay`, replica/resolution.py): then Gamma `closed: true`, `outcomePrices`
'["1", "0"]' / '["0", "1"]', CLOB `closed` and `winner`, and the book is gone. The replica's own
ledger settles its orders at that same moment (replica/state.py settle_due).

Faults (armed through POST /api/faults like the others, replica/faults.py): api_unavailable (503),
api_slow (ms), api_rate_limited (429 + Retry-After), api_geoblock (403), api_html (an HTML page
with status 200) on every /gamma and /clob route; api_empty_book: the next /book has no levels.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from typing import NamedTuple

from core import fees
from core.window_grid import ASSET_NAMES, Window, iso_utc, parse_slug, window_slug

from . import resolution as rules
from .pricing import MAX_PRICE, MIN_PRICE, TICK, tick_round, window_title
from .state import ReplicaState

GAMMA_PREFIX = "/gamma"
CLOB_PREFIX = "/clob"
DEFAULT_RESOLUTION_DELAY = rules.DEFAULT_RESOLUTION_DELAY   # seconds after the end (real: median ~28 s)
RESOLUTION_DELAY_ENV = rules.RESOLUTION_DELAY_ENV
LISTED_AHEAD = 4                  # windows listed (and resolvable by slug) ahead of the current one
LOOKBACK_WINDOWS = 500            # token/condition ids found by search this far back
BOOK_LEVELS = 5
CLOB_VERSION = 2
BASE_FEE_BPS = 1000               # the `base_fee` flag of fee-enabled markets (py-clob-client-v2 tests)
REBATE_RATE = 0.25
MIN_ORDER_SIZE = 5
API_FAULTS = ("api_unavailable", "api_slow", "api_rate_limited", "api_geoblock", "api_html")
CLOUDFLARE_HTML = (b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>"
                   b"<h1>Checking your browser before accessing the site.</h1></body></html>")


class Reply(NamedTuple):
    status: int
    body: bytes
    content_type: str
    headers: dict


def _json(obj: object, status: int = 200, headers: dict | None = None) -> Reply:
    return Reply(status, json.dumps(obj).encode(), "application/json", headers or {})


def _error(status: int, message: str) -> Reply:
    return _json({"error": message}, status)


# ---- identities ---------------------------------------------------------------------------------
def _digest(*parts: object) -> bytes:
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()


def token_id(seed: int, slug: str, outcome: str) -> str:
    """A deterministic uint256 as a decimal string (the real ids look the same: ~77 digits)."""
    return str(int.from_bytes(_digest("replica-token", seed, slug, outcome), "big"))


def condition_id(seed: int, slug: str) -> str:
    return "0x" + _digest("replica-condition", seed, slug).hex()


def _small_id(seed: int, slug: str, kind: str) -> str:
    return str(100_000 + int.from_bytes(_digest(kind, seed, slug)[:4], "big") % 9_000_000)


def resolution_delay(state: ReplicaState) -> float:
    """Seconds from a window's end to its published resolution (replica/resolution.py: the same
    rule settles the replica's own orders): Settings.resolution_delay (`--resolution-delay`), else
    $REPLICA_RESOLUTION_DELAY, else min(28, window / 4)."""
    return rules.resolution_delay(state.s)


class _Lookup:
    """token id / condition id -> (window, outcome), found by search over the replica's windows."""

    def __init__(self, state: ReplicaState):
        self.state = state
        self.tokens: dict[str, tuple[Window, str]] = {}
        self.conditions: dict[str, Window] = {}

    def remember(self, w: Window) -> None:
        seed = self.state.s.seed
        for outcome in ("Up", "Down"):
            self.tokens[token_id(seed, w.slug, outcome)] = (w, outcome)
        self.conditions[condition_id(seed, w.slug)] = w
        if len(self.tokens) > 8 * LOOKBACK_WINDOWS:   # bounded: forget all, the search rebuilds it
            self.tokens.clear()
            self.conditions.clear()
            self.remember(w)

    def _search(self) -> None:
        st = self.state
        now = st.clock()
        length = st.s.window_seconds
        for asset in st.s.assets:
            current = st.window(asset, now)
            for k in range(-LOOKBACK_WINDOWS, LISTED_AHEAD + 1):
                self.remember(Window(asset, current.start + k * length, length))

    def token(self, tid: str) -> tuple[Window, str] | None:
        if tid not in self.tokens:
            self._search()
        return self.tokens.get(tid)

    def condition(self, cid: str) -> Window | None:
        if cid not in self.conditions:
            self._search()
        return self.conditions.get(cid)


_lookups: dict[int, _Lookup] = {}


def _lookup(state: ReplicaState) -> _Lookup:
    found = _lookups.get(id(state))
    if found is None or found.state is not state:
        found = _Lookup(state)
        _lookups[id(state)] = found
    return found


# ---- the market's life ------------------------------------------------------------------------
def window_for_slug(state: ReplicaState, slug: str) -> Window | None:
    """The replica's window for this slug, or None (unknown asset, other grid, not listed yet)."""
    try:
        asset, start = parse_slug(slug)
    except ValueError:
        return None
    length = state.s.window_seconds
    if asset not in state.paths or start % length or window_slug(asset, start, length) != slug:
        return None
    if start > state.window(asset, state.clock()).start + LISTED_AHEAD * length:
        return None
    return Window(asset, start, length)


class _Status(NamedTuple):
    now: float
    resolved: bool
    winner: str | None          # "Up" / "Down" once resolved
    up_ask: float
    down_ask: float
    open_price: float
    close_price: float | None


def _status(state: ReplicaState, w: Window) -> _Status:
    now = state.clock()
    path = state.paths[w.asset]
    q = path.quote(w, min(max(now, w.start), w.end), state.s.spread)   # a listed future window: fair 0.5
    resolved = now >= w.end + resolution_delay(state)
    o, c = path.open_close(w)
    winner = ("Up" if fees.up_wins(o, c) else "Down") if resolved else None
    return _Status(now, resolved, winner, q.up, q.down, o, c if now >= w.end else None)


def _outcome_prices(s: _Status) -> list[str]:
    if s.resolved:
        return ["1", "0"] if s.winner == "Up" else ["0", "1"]
    up_mid = (s.up_ask + (1.0 - s.down_ask)) / 2
    return [f"{up_mid:.3f}".rstrip("0").rstrip("."), f"{1.0 - up_mid:.3f}".rstrip("0").rstrip(".")]


def _fee_schedule(state: ReplicaState) -> dict:
    return {"exponent": state.s.fee_exponent, "rate": state.s.fee_rate, "takerOnly": True,
            "rebateRate": REBATE_RATE}


def gamma_market(state: ReplicaState, w: Window) -> dict:
    seed, slug = state.s.seed, w.slug
    _lookup(state).remember(w)
    s = _status(state, w)
    listed = w.start - LISTED_AHEAD * w.length
    up_bid = _bid_ask(s, "Up")[0] or 0.0
    base_fee = BASE_FEE_BPS if state.s.fee_rate > 0 else 0
    name = ASSET_NAMES.get(w.asset, w.asset)
    market = {
        "id": _small_id(seed, slug, "market"),
        "question": window_title(w),
        "conditionId": condition_id(seed, slug),
        "slug": slug,
        "resolutionSource": f"https://data.chain.link/streams/{w.asset.lower()}-usd",
        "endDate": iso_utc(w.end),
        "startDate": iso_utc(listed),
        "image": "", "icon": "",
        "description": (f"This market will resolve to \"Up\" if the {name} price at the end of the time range"
                        " specified in the title is greater than or equal to the price at the beginning of"
                        " that range. Otherwise, it will resolve to \"Down\". The resolution source is the"
                        f" Chainlink {w.asset}/USD data stream."),
        "outcomes": json.dumps(["Up", "Down"]),
        "outcomePrices": json.dumps(_outcome_prices(s)),
        "clobTokenIds": json.dumps([token_id(seed, slug, "Up"), token_id(seed, slug, "Down")]),
        "volume": "0", "volumeNum": 0, "liquidity": "0", "liquidityNum": 0,
        "active": True,
        "closed": s.resolved,
        "archived": False,
        "restricted": True,
        "new": False, "featured": False,
        "marketMakerAddress": "",
        "createdAt": iso_utc(listed), "updatedAt": iso_utc(s.now),
        "closedTime": iso_utc(w.end + resolution_delay(state)) if s.resolved else None,
        "questionID": "0x" + _digest("replica-question", seed, slug).hex(),
        "enableOrderBook": True,
        "orderPriceMinTickSize": TICK,
        "orderMinSize": MIN_ORDER_SIZE,
        "umaResolutionStatus": "resolved" if s.resolved else "",
        "endDateIso": iso_utc(w.end)[:10], "startDateIso": iso_utc(listed)[:10],
        "makerBaseFee": base_fee, "takerBaseFee": base_fee,
        "acceptingOrders": not s.resolved,
        "acceptingOrdersTimestamp": iso_utc(listed),
        "negRisk": False,
        "feesEnabled": state.s.fee_rate > 0,
        "feeSchedule": _fee_schedule(state),
        "bestBid": None if s.resolved else up_bid,
        "bestAsk": None if s.resolved else s.up_ask,
        "spread": None if s.resolved else round(s.up_ask - up_bid, 2),
        "lastTradePrice": round((s.up_ask + up_bid) / 2, 3),
        "automaticallyResolved": True,
        "eventStartTime": iso_utc(w.start),
    }
    return market


def gamma_event(state: ReplicaState, w: Window) -> dict:
    seed, slug = state.s.seed, w.slug
    market = gamma_market(state, w)
    listed = w.start - LISTED_AHEAD * w.length
    span = slug.split("-")[2]
    return {
        "id": _small_id(seed, slug, "event"),
        "ticker": slug,
        "slug": slug,
        "title": market["question"],
        "description": market["description"],
        "resolutionSource": market["resolutionSource"],
        "startDate": iso_utc(listed),
        "creationDate": iso_utc(listed),
        "endDate": iso_utc(w.end),
        "image": "", "icon": "",
        "active": True,
        "closed": market["closed"],
        "archived": False,
        "new": False, "featured": False,
        "restricted": True,
        "liquidity": 0, "volume": 0, "openInterest": 0,
        "category": "Crypto",
        "createdAt": iso_utc(listed), "updatedAt": market["updatedAt"],
        "enableOrderBook": True,
        "negRisk": False,
        "commentCount": 0,
        "markets": [market],
        "series": [{"id": _small_id(seed, f"{w.asset}-{span}", "series"),
                    "slug": f"{w.asset.lower()}-up-or-down-{span}", "ticker": f"{w.asset.lower()}-updown-{span}",
                    "title": f"{ASSET_NAMES.get(w.asset, w.asset)} Up or Down {span}", "recurrence": span,
                    "active": True, "closed": False}],
        "tags": [{"id": "21", "label": "Crypto", "slug": "crypto"}, {"id": "102127", "label": "Up or Down",
                                                                      "slug": "up-or-down"}],
        "startTime": iso_utc(w.start),
    }


def _bid_ask(s: _Status, outcome: str) -> tuple[float | None, float]:
    """This outcome's best bid and ask: ask = the page's price, bid = 1 - the other side's ask,
    kept one tick below the ask (None: no bid above the minimum price)."""
    ask = s.up_ask if outcome == "Up" else s.down_ask
    bid = min(round(1.0 - (s.down_ask if outcome == "Up" else s.up_ask), 2), round(ask - TICK, 2))
    return (bid if bid >= MIN_PRICE else None), ask


def _levels(state: ReplicaState, tid: str, best: float, direction: int, now: float) -> list[dict]:
    """BOOK_LEVELS levels from `best` moving away by one tick each (direction -1 for bids, +1 for
    asks), sizes pseudo-random per (token, second); clamped to 0.01..0.99, no duplicates."""
    out, seen = [], set()
    second = math.floor(now)
    for k in range(BOOK_LEVELS):
        price = tick_round(best + direction * k * TICK)
        if price in seen or not MIN_PRICE <= price <= MAX_PRICE:
            continue
        seen.add(price)
        size = 20 + int.from_bytes(_digest("size", state.s.seed, tid, direction, second, k)[:2], "big") % 380
        out.append({"price": f"{price:.2f}", "size": f"{size:.2f}"})
    return out


def _open_book(state: ReplicaState, tid: str):
    """(window, status, (bid, ask)) of an open token's book, or the 404 Reply the CLOB gives."""
    found = _lookup(state).token(tid)
    s = _status(state, found[0]) if found is not None else None
    if found is None or s.resolved:
        return _error(404, "No orderbook exists for the requested token id")
    return found[0], s, _bid_ask(s, found[1])


def clob_book(state: ReplicaState, tid: str, empty: bool = False) -> Reply:
    opened = _open_book(state, tid)
    if isinstance(opened, Reply):
        return opened
    w, s, (bid, ask) = opened
    bids = [] if empty or bid is None else _levels(state, tid, bid, -1, s.now)
    asks = [] if empty else _levels(state, tid, ask, +1, s.now)
    bids.sort(key=lambda lv: float(lv["price"]))                 # ascending: best bid last
    asks.sort(key=lambda lv: float(lv["price"]), reverse=True)   # descending: best ask last
    cid = condition_id(state.s.seed, w.slug)
    timestamp = str(int(s.now * 1000))
    digest = hashlib.sha1(json.dumps([cid, tid, timestamp, bids, asks]).encode()).hexdigest()  # noqa: S324
    return _json({"market": cid, "asset_id": tid, "timestamp": timestamp, "hash": digest, "bids": bids,
                  "asks": asks, "min_order_size": str(MIN_ORDER_SIZE), "tick_size": f"{TICK}",
                  "neg_risk": False, "last_trade_price": f"{(ask + (bid or ask)) / 2:.3f}"})


def _best(state: ReplicaState, tid: str) -> tuple[float | None, float] | Reply:
    opened = _open_book(state, tid)
    return opened if isinstance(opened, Reply) else opened[2]


def clob_market(state: ReplicaState, cid: str) -> Reply:
    w = _lookup(state).condition(cid)
    if w is None:
        return _error(404, "market not found")
    seed, slug = state.s.seed, w.slug
    s = _status(state, w)
    base_fee = BASE_FEE_BPS if state.s.fee_rate > 0 else 0
    up_mid = (s.up_ask + (1.0 - s.down_ask)) / 2
    tokens = []
    for outcome in ("Up", "Down"):
        if s.resolved:
            price, winner = (1.0 if s.winner == outcome else 0.0), s.winner == outcome
        else:
            price, winner = round(up_mid if outcome == "Up" else 1.0 - up_mid, 3), False
        tokens.append({"token_id": token_id(seed, slug, outcome), "outcome": outcome, "price": price,
                       "winner": winner})
    listed = w.start - LISTED_AHEAD * w.length
    return _json({
        "enable_order_book": True, "active": True, "closed": s.resolved, "archived": False,
        "accepting_orders": not s.resolved, "accepting_order_timestamp": iso_utc(listed),
        "minimum_order_size": MIN_ORDER_SIZE, "minimum_tick_size": TICK,
        "condition_id": cid, "question_id": "0x" + _digest("replica-question", seed, slug).hex(),
        "question": window_title(w), "description": "", "market_slug": slug,
        "end_date_iso": iso_utc(w.end), "game_start_time": None, "seconds_delay": 0, "fpmm": "",
        "maker_base_fee": base_fee, "taker_base_fee": base_fee, "notifications_enabled": True,
        "neg_risk": False, "neg_risk_market_id": "", "neg_risk_request_id": "", "icon": "", "image": "",
        "rewards": {"rates": None, "min_size": 0, "max_spread": 0}, "is_50_50_outcome": False,
        "tokens": tokens, "tags": ["Crypto", "Up or Down"],
    })


# ---- routing ------------------------------------------------------------------------------------
def _gamma(state: ReplicaState, path: str, query: dict[str, str]) -> Reply | None:
    if path in ("/events", "/markets"):
        slug = query.get("slug", "")
        w = window_for_slug(state, slug) if slug else None
        if w is None:
            return _json([])
        return _json([gamma_event(state, w) if path == "/events" else gamma_market(state, w)])
    for kind in ("/events/slug/", "/markets/slug/"):
        if path.startswith(kind):
            w = window_for_slug(state, path[len(kind):])
            if w is None:
                return _error(404, "not found")
            return _json(gamma_event(state, w) if kind == "/events/slug/" else gamma_market(state, w))
    return None


def _clob(state: ReplicaState, path: str, query: dict[str, str]) -> Reply | None:
    if path == "/version":
        return _json({"version": CLOB_VERSION})
    if path.startswith("/markets/"):
        return clob_market(state, path[len("/markets/"):])
    if path.startswith("/fee-rate"):
        tid = path[len("/fee-rate/"):] if path.startswith("/fee-rate/") else query.get("token_id", "")
        if not tid or _lookup(state).token(tid) is None:
            return _error(400, "Invalid token id")
        return _json({"base_fee": BASE_FEE_BPS if state.s.fee_rate > 0 else 0})
    if path not in ("/book", "/price", "/midpoint"):
        return None
    tid = query.get("token_id", "")
    if not tid:
        return _error(400, "Invalid token id")
    if path == "/book":
        return clob_book(state, tid, empty=state.take_fault("api_empty_book") is not None)
    best = _best(state, tid)
    if isinstance(best, Reply):
        return best
    bid, ask = best
    if path == "/midpoint":
        mid = ask if bid is None else (bid + ask) / 2
        return _json({"mid_price": f"{mid:.3f}".rstrip("0").rstrip(".")})
    side = query.get("side", "").upper()
    if side not in ("BUY", "SELL"):
        return _error(400, "Invalid side")
    return _json({"price": (bid or 0) if side == "BUY" else ask})   # an empty bid side: 0 (unverified)


def _fault(state: ReplicaState) -> Reply | None:
    """An armed API fault, fired here (a one-shot one is consumed)."""
    fault = state.take_fault(API_FAULTS)
    if fault is None:
        return None
    if fault.kind == "api_slow":
        time.sleep(fault.ms / 1000.0)   # the fault itself: a deliberately slow answer
        return None
    if fault.kind == "api_unavailable":
        return _error(503, "Service Unavailable")
    if fault.kind == "api_rate_limited":
        return _json({"error": "Too Many Requests"}, 429, {"Retry-After": "1"})
    if fault.kind == "api_geoblock":
        return _error(403, "Trading restricted in your region, please refer to available regions"
                           " - https://help.polymarket.com/en/articles/13364163-geographic-restrictions")
    return Reply(200, CLOUDFLARE_HTML, "text/html; charset=UTF-8", {})


def answer(state: ReplicaState, path: str, query: dict[str, str]) -> Reply | None:
    """The answer for a GET under /gamma/ or /clob/, or None when the path is not one of these
    (the server then answers its own 404)."""
    for prefix, route in ((GAMMA_PREFIX, _gamma), (CLOB_PREFIX, _clob)):
        if path == prefix or path.startswith(prefix + "/"):
            faulted = _fault(state)
            if faulted is not None:
                return faulted
            reply = route(state, path[len(prefix):] or "/", query)
            return reply if reply is not None else _error(404, "not found")
    return None
