"""CLOB (`/clob`): books, prices, fee rate, version and market documents of the replica's windows (shapes
and sources: replica/market_api.py)."""

from __future__ import annotations

import hashlib
import json
import math

from core.window_grid import iso_utc

from .market_common import (
    BASE_FEE_BPS,
    BOOK_LEVELS,
    CLOB_VERSION,
    LISTED_AHEAD,
    MIN_ORDER_SIZE,
    Reply,
    bid_ask,
    condition_id,
    digest,
    error_reply,
    json_reply,
    lookup,
    status_of,
    token_id,
)
from .pricing import MAX_PRICE, MIN_PRICE, TICK, tick_round, window_title
from .state import ReplicaState


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
        size = 20 + int.from_bytes(digest("size", state.s.seed, tid, direction, second, k)[:2], "big") % 380
        out.append({"price": f"{price:.2f}", "size": f"{size:.2f}"})
    return out


def _open_book(state: ReplicaState, tid: str):
    """(window, status, (bid, ask)) of an open token's book, or the 404 Reply the CLOB gives."""
    found = lookup(state).token(tid)
    s = status_of(state, found[0]) if found is not None else None
    if found is None or s.resolved:
        return error_reply(404, "No orderbook exists for the requested token id")
    return found[0], s, bid_ask(s, found[1])


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
    return json_reply({"market": cid, "asset_id": tid, "timestamp": timestamp, "hash": digest, "bids": bids,
                  "asks": asks, "min_order_size": str(MIN_ORDER_SIZE), "tick_size": f"{TICK}",
                  "neg_risk": False, "last_trade_price": f"{(ask + (bid or ask)) / 2:.3f}"})


def _best(state: ReplicaState, tid: str) -> tuple[float | None, float] | Reply:
    opened = _open_book(state, tid)
    return opened if isinstance(opened, Reply) else opened[2]


def clob_market(state: ReplicaState, cid: str) -> Reply:
    w = lookup(state).condition(cid)
    if w is None:
        return error_reply(404, "market not found")
    seed, slug = state.s.seed, w.slug
    s = status_of(state, w)
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
    return json_reply({
        "enable_order_book": True, "active": True, "closed": s.resolved, "archived": False,
        "accepting_orders": not s.resolved, "accepting_order_timestamp": iso_utc(listed),
        "minimum_order_size": MIN_ORDER_SIZE, "minimum_tick_size": TICK,
        "condition_id": cid, "question_id": "0x" + digest("replica-question", seed, slug).hex(),
        "question": window_title(w), "description": "", "market_slug": slug,
        "end_date_iso": iso_utc(w.end), "game_start_time": None, "seconds_delay": 0, "fpmm": "",
        "maker_base_fee": base_fee, "taker_base_fee": base_fee, "notifications_enabled": True,
        "neg_risk": False, "neg_risk_market_id": "", "neg_risk_request_id": "", "icon": "", "image": "",
        "rewards": {"rates": None, "min_size": 0, "max_spread": 0}, "is_50_50_outcome": False,
        "tokens": tokens, "tags": ["Crypto", "Up or Down"],
    })


def route(state: ReplicaState, path: str, query: dict[str, str]) -> Reply | None:
    if path == "/version":
        return json_reply({"version": CLOB_VERSION})
    if path.startswith("/markets/"):
        return clob_market(state, path[len("/markets/"):])
    if path.startswith("/fee-rate"):
        tid = path[len("/fee-rate/"):] if path.startswith("/fee-rate/") else query.get("token_id", "")
        if not tid or lookup(state).token(tid) is None:
            return error_reply(400, "Invalid token id")
        return json_reply({"base_fee": BASE_FEE_BPS if state.s.fee_rate > 0 else 0})
    if path not in ("/book", "/price", "/midpoint"):
        return None
    tid = query.get("token_id", "")
    if not tid:
        return error_reply(400, "Invalid token id")
    if path == "/book":
        return clob_book(state, tid, empty=state.take_fault("api_empty_book") is not None)
    best = _best(state, tid)
    if isinstance(best, Reply):
        return best
    bid, ask = best
    if path == "/midpoint":
        mid = ask if bid is None else (bid + ask) / 2
        return json_reply({"mid_price": f"{mid:.3f}".rstrip("0").rstrip(".")})
    side = query.get("side", "").upper()
    if side not in ("BUY", "SELL"):
        return error_reply(400, "Invalid side")
    return json_reply({"price": (bid or 0) if side == "BUY" else ask})   # an empty bid side: 0 (unverified)
