"""The replica's Gamma/CLOB read-only APIs (replica/market_api.py) in process, on a fake clock:
recorded shapes, agreement with the page's quote, resolution after end + delay (ties Up), faults."""

from __future__ import annotations

import json

import pytest

from core import fees
from core.window_grid import Window, iso_utc
from replica import clob_api, market_api
from replica.state import ReplicaState, Settings

T0 = 1_795_000_020.0  # a window start on the 60 s grid
DELAY = 5.0


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def rep(monkeypatch: pytest.MonkeyPatch) -> tuple[ReplicaState, Clock]:
    monkeypatch.setenv(market_api.RESOLUTION_DELAY_ENV, str(DELAY))
    clock = Clock(T0 + 5)
    return ReplicaState(Settings(window_seconds=60, password="pw"), clock), clock


def get(state: ReplicaState, path: str, **query: str) -> tuple[int, object, market_api.Reply]:
    reply = market_api.answer(state, path, dict(query))
    assert reply is not None, path
    body = json.loads(reply.body) if reply.content_type == "application/json" else reply.body
    return reply.status, body, reply


def current(state: ReplicaState) -> Window:
    return state.window("BTC", state.clock())


def test_gamma_event_has_the_recorded_shape(rep):
    state, _ = rep
    w = current(state)
    status, events, _ = get(state, "/gamma/events", slug=w.slug)
    assert status == 200 and isinstance(events, list) and len(events) == 1
    event = events[0]
    assert event["slug"] == w.slug == "btc-updown-1m-1795000020"
    (market,) = event["markets"]
    assert isinstance(market["outcomes"], str) and json.loads(market["outcomes"]) == ["Up", "Down"]
    assert isinstance(market["clobTokenIds"], str)
    up, down = json.loads(market["clobTokenIds"])
    assert up.isdigit() and down.isdigit() and up != down and len(up) > 60
    assert market["conditionId"].startswith("0x") and len(market["conditionId"]) == 66
    assert market["eventStartTime"] == iso_utc(w.start) and market["endDate"] == iso_utc(w.end)
    assert market["startDate"] < market["eventStartTime"]      # listed ahead of its window
    assert market["closed"] is False and market["active"] is True and market["acceptingOrders"] is True
    assert market["feesEnabled"] is True
    assert market["feeSchedule"] == {"exponent": 1.0, "rate": 0.07, "takerOnly": True, "rebateRate": 0.25}
    assert len(json.loads(market["outcomePrices"])) == 2
    status, markets, _ = get(state, "/gamma/markets", slug=w.slug)
    assert status == 200 and markets[0]["clobTokenIds"] == market["clobTokenIds"]
    assert get(state, f"/gamma/events/slug/{w.slug}")[1]["slug"] == w.slug


@pytest.mark.parametrize("slug", ["btc-updown-15m-1795000020", "doge-updown-1m-1795000020", "btc-updown-1m-1795000021",
                                  "not-a-slug", "", "btc-updown-1m-1795099980"])
def test_gamma_unknown_slugs_answer_an_empty_list(rep, slug):
    state, _ = rep
    assert get(state, "/gamma/events", slug=slug)[:2] == (200, [])
    assert get(state, "/gamma/markets", slug=slug)[:2] == (200, [])
    assert get(state, f"/gamma/events/slug/{slug or 'x'}")[0] == 404


def test_token_ids_are_deterministic_per_seed_slug_and_outcome():
    a = market_api.token_id(7, "btc-updown-15m-1767225600", "Up")
    assert a == market_api.token_id(7, "btc-updown-15m-1767225600", "Up")
    assert a != market_api.token_id(8, "btc-updown-15m-1767225600", "Up")
    assert a != market_api.token_id(7, "btc-updown-15m-1767225600", "Down")
    assert a != market_api.token_id(7, "btc-updown-15m-1767226500", "Up")
    assert 0 < int(a) < 2**256


def test_book_agrees_with_the_page_and_has_best_levels_last(rep):
    state, _ = rep
    w = current(state)
    page = state.market_view("BTC", state.clock())
    market = get(state, "/gamma/events", slug=w.slug)[1][0]["markets"][0]
    up, down = json.loads(market["clobTokenIds"])
    status, book, _ = get(state, "/clob/book", token_id=up)
    assert status == 200 and book["asset_id"] == up and book["market"] == market["conditionId"]
    asks = [float(lv["price"]) for lv in book["asks"]]
    bids = [float(lv["price"]) for lv in book["bids"]]
    assert asks == sorted(asks, reverse=True) and bids == sorted(bids)      # best last (docs)
    assert asks[-1] == page["up"] and bids[-1] == pytest.approx(1 - page["down"])
    assert all(isinstance(lv["price"], str) and isinstance(lv["size"], str) for lv in book["asks"] + book["bids"])
    down_book = get(state, "/clob/book", token_id=down)[1]
    assert float(down_book["asks"][-1]["price"]) == page["down"]
    assert get(state, "/clob/price", token_id=up, side="SELL")[1] == {"price": page["up"]}
    assert get(state, "/clob/price", token_id=up, side="BUY")[1]["price"] == pytest.approx(1 - page["down"])
    mid = float(get(state, "/clob/midpoint", token_id=up)[1]["mid_price"])
    assert mid == pytest.approx((page["up"] + 1 - page["down"]) / 2, abs=1e-3)
    assert get(state, "/clob/fee-rate", token_id=up)[1] == {"base_fee": 1000}
    assert get(state, f"/clob/fee-rate/{down}")[1] == {"base_fee": 1000}
    assert get(state, "/clob/version")[1] == {"version": 2}
    assert get(state, "/clob/book", token_id="123")[0] == 404
    assert get(state, "/clob/book")[0] == 400
    assert get(state, "/clob/price", token_id=up, side="HOLD")[0] == 400


def test_an_old_windows_token_is_still_found(rep):
    state, clock = rep
    old = Window("BTC", current(state).start - 100 * 60, 60)
    tid = market_api.token_id(state.s.seed, old.slug, "Down")
    status, market, _ = get(state, f"/clob/markets/{market_api.condition_id(state.s.seed, old.slug)}")
    assert status == 200 and market["market_slug"] == old.slug and market["closed"] is True
    assert [t["token_id"] for t in market["tokens"] if t["outcome"] == "Down"] == [tid]


def test_resolution_is_published_delay_after_the_end(rep):
    state, clock = rep
    w = current(state)
    market = get(state, "/gamma/markets", slug=w.slug)[1][0]
    cid, (up, _) = market["conditionId"], json.loads(market["clobTokenIds"])
    o, c = state.paths["BTC"].open_close(w)
    want = "Up" if fees.up_wins(o, c) else "Down"
    for t in (w.end - 1, w.end + 0.1, w.end + DELAY - 0.1):   # running, ended, not yet resolved
        clock.t = t
        m = get(state, "/gamma/markets", slug=w.slug)[1][0]
        clob = get(state, f"/clob/markets/{cid}")[1]
        assert m["closed"] is False and json.loads(m["outcomePrices"]) not in (["1", "0"], ["0", "1"])
        assert clob["closed"] is False and not any(tok["winner"] for tok in clob["tokens"])
        assert get(state, "/clob/book", token_id=up)[0] == 200
    clock.t = w.end + DELAY
    m = get(state, "/gamma/markets", slug=w.slug)[1][0]
    clob = get(state, f"/clob/markets/{cid}")[1]
    assert m["closed"] is True and m["umaResolutionStatus"] == "resolved"
    assert json.loads(m["outcomePrices"]) == (["1", "0"] if want == "Up" else ["0", "1"])
    assert clob["closed"] is True and [tok["outcome"] for tok in clob["tokens"] if tok["winner"]] == [want]
    no_book = {"error": "No orderbook exists for the requested token id"}
    assert get(state, "/clob/book", token_id=up)[:2] == (404, no_book)


def test_a_tie_resolves_up(rep, monkeypatch):
    state, clock = rep
    w = current(state)
    monkeypatch.setattr(state.paths["BTC"], "open_close", lambda _w: (90_000.0, 90_000.0))
    clock.t = w.end + DELAY + 1
    assert json.loads(get(state, "/gamma/markets", slug=w.slug)[1][0]["outcomePrices"]) == ["1", "0"]
    clob = get(state, f"/clob/markets/{market_api.condition_id(state.s.seed, w.slug)}")[1]
    assert [tok["outcome"] for tok in clob["tokens"] if tok["winner"]] == ["Up"]


def test_resolution_delay_default_and_settings(monkeypatch):
    monkeypatch.delenv(market_api.RESOLUTION_DELAY_ENV, raising=False)
    assert market_api.resolution_delay(ReplicaState(Settings(window_seconds=900))) == 28.0
    assert market_api.resolution_delay(ReplicaState(Settings(window_seconds=60))) == 15.0
    monkeypatch.setenv(market_api.RESOLUTION_DELAY_ENV, "nonsense")
    assert market_api.resolution_delay(ReplicaState(Settings(window_seconds=60))) == 15.0


@pytest.mark.parametrize("kind, status, header", [
    ("api_unavailable", 503, None), ("api_rate_limited", 429, "Retry-After"), ("api_geoblock", 403, None),
    ("api_html", 200, None),
])
def test_api_faults_fire_once(rep, kind, status, header):
    state, _ = rep
    state.add_faults({"kind": kind})
    reply = market_api.answer(state, "/clob/version", {})
    assert reply.status == status
    if header:
        assert reply.headers[header] == "1"
    if kind == "api_html":
        assert reply.content_type.startswith("text/html") and reply.body.startswith(b"<!DOCTYPE html>")
    assert market_api.answer(state, "/gamma/events", {"slug": current(state).slug}).status == 200   # consumed


def test_empty_book_fault(rep):
    state, _ = rep
    up = json.loads(get(state, "/gamma/markets", slug=current(state).slug)[1][0]["clobTokenIds"])[0]
    state.add_faults({"kind": "api_empty_book"})
    assert get(state, "/clob/book", token_id=up)[1]["asks"] == []
    assert get(state, "/clob/book", token_id=up)[1]["asks"] != []


def test_a_one_sided_quote_never_crosses(rep, monkeypatch):
    state, _ = rep
    w = current(state)
    status = market_api.Status(state.clock(), False, None, 0.01, 0.99, 1.0, None)
    monkeypatch.setattr(clob_api, "status_of", lambda _state, _w: status)
    up = market_api.token_id(state.s.seed, w.slug, "Up")
    book = get(state, "/clob/book", token_id=up)[1]
    assert book["bids"] == [] and book["asks"][-1]["price"] == "0.01"
    assert get(state, "/clob/price", token_id=up, side="BUY")[1] == {"price": 0}
    assert get(state, "/clob/midpoint", token_id=up)[1] == {"mid_price": "0.01"}


def test_other_paths_are_not_answered(rep):
    state, _ = rep
    assert market_api.answer(state, "/api/markets", {}) is None
    assert market_api.answer(state, "/gammax/events", {}) is None
    assert market_api.answer(state, "/clob/nope", {}).status == 404


def test_the_resolution_delay_setting_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv(market_api.RESOLUTION_DELAY_ENV, "5")
    assert market_api.resolution_delay(ReplicaState(Settings(window_seconds=60, resolution_delay=2.0))) == 2.0
    assert market_api.resolution_delay(ReplicaState(Settings(window_seconds=60, resolution_delay=0.0))) == 0.0
    assert market_api.resolution_delay(ReplicaState(Settings(window_seconds=60))) == 5.0


def test_the_ledger_settles_orders_when_the_market_resolves_not_at_the_end(rep):
    """The replica's own orders settle at the same moment its APIs publish the winner (end + delay)."""
    state, clock = rep
    w = current(state)
    fill = fees.buy(10.0, 0.5, state.s.fee_rate, state.s.fee_exponent)
    order = {"id": "ORD-000001", "asset": "BTC", "window_start": w.start, "window_end": w.end, "slug": w.slug,
             "side": "UP", "amount": 10.0, "price": 0.5, "shares": fill.shares, "gross_shares": fill.gross_shares,
             "fee": fill.fee_usd, "fee_shares": fill.fee_shares, "status": "filled", "result": None, "payout": None}
    state.orders.append(order)
    cid = market_api.condition_id(state.s.seed, w.slug)
    for t in (w.end, w.end + DELAY - 0.1):                      # ended, not yet resolved: nothing settles
        clock.t = t
        assert state.settle_due() == 0 and order["status"] == "filled" and order["result"] is None
        assert w.slug not in {s["slug"] for s in state.settlements}
        assert get(state, f"/clob/markets/{cid}")[1]["closed"] is False
    clock.t = w.end + DELAY
    assert state.settle_due() == 1 and order["status"] == "settled"
    winner = [tok["outcome"] for tok in get(state, f"/clob/markets/{cid}")[1]["tokens"] if tok["winner"]]
    assert order["result"] == ("won" if winner == ["Up"] else "lost")
    assert order["payout"] == pytest.approx(fill.shares if winner == ["Up"] else 0.0)
    ledger = next(s for s in state.settlements if s["slug"] == w.slug)
    assert ledger["outcome"] == winner[0].upper() and ledger["resolved_at"] == w.end + DELAY
