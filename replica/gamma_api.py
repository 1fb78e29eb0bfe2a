"""Gamma (`/gamma`): the event and market documents of the replica's windows (shapes and sources:
replica/market_api.py)."""

from __future__ import annotations

import json

from core.window_grid import ASSET_NAMES, Window, iso_utc

from .market_common import (
    BASE_FEE_BPS,
    LISTED_AHEAD,
    MIN_ORDER_SIZE,
    REBATE_RATE,
    Reply,
    Status,
    bid_ask,
    condition_id,
    digest,
    error_reply,
    json_reply,
    lookup,
    resolution_delay,
    small_id,
    status_of,
    token_id,
    window_for_slug,
)
from .pricing import TICK, window_title
from .state import ReplicaState


def _outcome_prices(s: Status) -> list[str]:
    if s.resolved:
        return ["1", "0"] if s.winner == "Up" else ["0", "1"]
    up_mid = (s.up_ask + (1.0 - s.down_ask)) / 2
    return [f"{up_mid:.3f}".rstrip("0").rstrip("."), f"{1.0 - up_mid:.3f}".rstrip("0").rstrip(".")]


def _fee_schedule(state: ReplicaState) -> dict:
    return {"exponent": state.s.fee_exponent, "rate": state.s.fee_rate, "takerOnly": True,
            "rebateRate": REBATE_RATE}


def gamma_market(state: ReplicaState, w: Window) -> dict:
    seed, slug = state.s.seed, w.slug
    lookup(state).remember(w)
    s = status_of(state, w)
    listed = w.start - LISTED_AHEAD * w.length
    up_bid = bid_ask(s, "Up")[0] or 0.0
    base_fee = BASE_FEE_BPS if state.s.fee_rate > 0 else 0
    name = ASSET_NAMES.get(w.asset, w.asset)
    market = {
        "id": small_id(seed, slug, "market"),
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
        "questionID": "0x" + digest("replica-question", seed, slug).hex(),
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
        "id": small_id(seed, slug, "event"),
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
        "series": [{"id": small_id(seed, f"{w.asset}-{span}", "series"),
                    "slug": f"{w.asset.lower()}-up-or-down-{span}", "ticker": f"{w.asset.lower()}-updown-{span}",
                    "title": f"{ASSET_NAMES.get(w.asset, w.asset)} Up or Down {span}", "recurrence": span,
                    "active": True, "closed": False}],
        "tags": [{"id": "21", "label": "Crypto", "slug": "crypto"}, {"id": "102127", "label": "Up or Down",
                                                                      "slug": "up-or-down"}],
        "startTime": iso_utc(w.start),
    }


def route(state: ReplicaState, path: str, query: dict[str, str]) -> Reply | None:
    if path in ("/events", "/markets"):
        slug = query.get("slug", "")
        w = window_for_slug(state, slug) if slug else None
        if w is None:
            return json_reply([])
        return json_reply([gamma_event(state, w) if path == "/events" else gamma_market(state, w)])
    for kind in ("/events/slug/", "/markets/slug/"):
        if path.startswith(kind):
            w = window_for_slug(state, path[len(kind):])
            if w is None:
                return error_reply(404, "not found")
            return json_reply(gamma_event(state, w) if kind == "/events/slug/" else gamma_market(state, w))
    return None
