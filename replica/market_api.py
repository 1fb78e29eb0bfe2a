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

import time

from . import clob_api, gamma_api
from .clob_api import clob_book, clob_market
from .gamma_api import gamma_event, gamma_market
from .market_common import (
    DEFAULT_RESOLUTION_DELAY,
    RESOLUTION_DELAY_ENV,
    Reply,
    Status,
    condition_id,
    error_reply,
    json_reply,
    resolution_delay,
    token_id,
    window_for_slug,
)
from .state import ReplicaState

GAMMA_PREFIX = "/gamma"
CLOB_PREFIX = "/clob"
API_FAULTS = ("api_unavailable", "api_slow", "api_rate_limited", "api_geoblock", "api_html")
CLOUDFLARE_HTML = (b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>"
                   b"<h1>Checking your browser before accessing the site.</h1></body></html>")

__all__ = ["CLOB_PREFIX", "DEFAULT_RESOLUTION_DELAY", "GAMMA_PREFIX", "RESOLUTION_DELAY_ENV", "Reply", "Status",
           "answer", "clob_book", "clob_market", "condition_id", "gamma_event", "gamma_market", "resolution_delay",
           "token_id", "window_for_slug"]


def _fault(state: ReplicaState) -> Reply | None:
    """An armed API fault, fired here (a one-shot one is consumed)."""
    fault = state.take_fault(API_FAULTS)
    if fault is None:
        return None
    if fault.kind == "api_slow":
        time.sleep(fault.ms / 1000.0)   # the fault itself: a deliberately slow answer
        return None
    if fault.kind == "api_unavailable":
        return error_reply(503, "Service Unavailable")
    if fault.kind == "api_rate_limited":
        return json_reply({"error": "Too Many Requests"}, 429, {"Retry-After": "1"})
    if fault.kind == "api_geoblock":
        return error_reply(403, "Trading restricted in your region, please refer to available regions"
                           " - https://help.polymarket.com/en/articles/13364163-geographic-restrictions")
    return Reply(200, CLOUDFLARE_HTML, "text/html; charset=UTF-8", {})


def answer(state: ReplicaState, path: str, query: dict[str, str]) -> Reply | None:
    """The answer for a GET under /gamma/ or /clob/, or None when the path is not one of these
    (the server then answers its own 404)."""
    for prefix, route in ((GAMMA_PREFIX, gamma_api.route), (CLOB_PREFIX, clob_api.route)):
        if path == prefix or path.startswith(prefix + "/"):
            faulted = _fault(state)
            if faulted is not None:
                return faulted
            reply = route(state, path[len(prefix):] or "/", query)
            return reply if reply is not None else error_reply(404, "not found")
    return None
