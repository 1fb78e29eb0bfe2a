"""executor/market_data.py: the Gamma/CLOB client against a real replica process (happy path,
resolution after the window's end) and against a local server answering recorded shapes with
faults (down, slow, 429, 403, HTML, event without markets, outcomes reversed, token ids missing,
empty book, too little depth). Everything talks to 127.0.0.1 only."""

from __future__ import annotations

import json
import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from core import fees
from core.window_grid import Window, iso_utc, window_at
from executor.market_data import (
    ApiForbidden,
    ApiMalformed,
    ApiUnavailable,
    Book,
    Level,
    MarketData,
    MarketNotFound,
)
from replica import market_api
from replica.pricing import PricePath
from tests.replica_support import start_replica, wait_until

SLUG = "btc-updown-15m-1767225600"
START = 1767225600
UP = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
DOWN = "52114319501245915516055106046884209969926127482827954674443846427813813222426"
CID = "0x" + "ab" * 32


def gamma_market(**over) -> dict:
    """A Gamma market in the recorded shape (JSON strings for outcomes/clobTokenIds/outcomePrices)."""
    m = {"id": "1263088", "question": "Bitcoin Up or Down - January 1, 7:00PM-7:15PM ET", "conditionId": CID,
         "slug": SLUG, "startDate": iso_utc(START - 86400), "endDate": iso_utc(START + 900),
         "eventStartTime": iso_utc(START), "outcomes": '["Up", "Down"]', "outcomePrices": '["0.52", "0.48"]',
         "clobTokenIds": json.dumps([UP, DOWN]), "active": True, "closed": False, "acceptingOrders": True,
         "orderPriceMinTickSize": 0.01, "orderMinSize": 5, "makerBaseFee": 1000, "takerBaseFee": 1000,
         "feesEnabled": True, "feeSchedule": {"exponent": 1, "rate": 0.07, "takerOnly": True, "rebateRate": 0.25}}
    m.update(over)
    return {k: v for k, v in m.items() if v is not None}


def gamma_event(markets: list | None = None) -> list:
    return [{"id": "187013", "slug": SLUG, "title": "Bitcoin Up or Down", "active": True, "closed": False,
             "markets": [gamma_market()] if markets is None else markets}]


class FakeApi:
    """A local HTTP server answering `routes[path] = (status, body, content_type, headers)`;
    `hold` paths stall until the test ends (a slow server), bounded by HOLD_LIMIT."""

    HOLD_LIMIT = 5.0

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, object, str, dict]] = {}
        self.hold: set[str] = set()
        self.release = threading.Event()
        self.seen: list[tuple[str, dict]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - stdlib naming
                url = urlsplit(self.path)
                api.seen.append((url.path, {k: v[-1] for k, v in parse_qs(url.query).items()}))
                if url.path in api.hold:
                    api.release.wait(api.HOLD_LIMIT)
                status, body, ctype, headers = api.routes.get(url.path, (404, {"error": "not found"},
                                                                           "application/json", {}))
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(raw)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def set(self, path: str, body: object, status: int = 200, ctype: str = "application/json",
            headers: dict | None = None) -> None:
        self.routes[path] = (status, body, ctype, headers or {})

    def client(self, timeout: float = 2.0) -> MarketData:
        return MarketData(self.base + "/gamma", self.base + "/clob", timeout=timeout)


@pytest.fixture
def fake() -> Iterator[FakeApi]:
    api = FakeApi()
    api.thread.start()
    try:
        yield api
    finally:
        api.release.set()
        api.server.shutdown()
        api.server.server_close()


def book_body(asks: list[tuple[str, str]], bids: list[tuple[str, str]] = (), token: str = UP) -> dict:
    return {"market": CID, "asset_id": token, "timestamp": "1767225605000", "hash": "ab12",
            "bids": [{"price": p, "size": s} for p, s in bids], "asks": [{"price": p, "size": s} for p, s in asks],
            "min_order_size": "5", "tick_size": "0.01", "neg_risk": False, "last_trade_price": "0.5"}


# ---- the recorded shapes ----------------------------------------------------------------------------
def test_market_is_parsed_by_outcome_name(fake):
    fake.set("/gamma/events", gamma_event())
    m = fake.client().market(SLUG)
    assert (m.token_up, m.token_down, m.condition_id) == (UP, DOWN, CID)
    assert (m.start, m.end, m.closed, m.accepting_orders) == (START, START + 900, False, True)
    assert (m.fee_rate, m.fee_exponent, m.fee_taker_only, m.fee_rate_bps) == (0.07, 1.0, True, 1000)
    assert m.outcome_prices == {"UP": 0.52, "DOWN": 0.48}
    assert fake.seen[-1] == ("/gamma/events", {"slug": SLUG})


def test_outcomes_in_the_other_order_are_paired_by_name(fake):
    fake.set("/gamma/events", gamma_event([gamma_market(outcomes='["Down", "Up"]', clobTokenIds=json.dumps([DOWN, UP]),
                                                        outcomePrices='["0.3", "0.7"]')]))
    m = fake.client().market(SLUG)
    assert (m.token_up, m.token_down) == (UP, DOWN)
    assert m.outcome_prices == {"UP": 0.7, "DOWN": 0.3}
    assert m.token_for("down") == DOWN and m.side_of(UP) == "UP"


@pytest.mark.parametrize("market, why", [
    (gamma_market(clobTokenIds=None), "clobTokenIds"),
    (gamma_market(clobTokenIds="[]"), "pair up"),
    (gamma_market(clobTokenIds=json.dumps([UP, ""])), "token id"),
    (gamma_market(clobTokenIds="not json"), "clobTokenIds"),
    (gamma_market(outcomes='["Yes", "No"]'), "Up and Down"),
    (gamma_market(outcomes='["Up", "Up"]'), "Up and Down"),
    (gamma_market(conditionId=None), "conditionId"),
    (gamma_market(eventStartTime=iso_utc(START + 900)), "disagrees with the slug"),
    (gamma_market(endDate=None), "endDate"),
    (gamma_market(closed="no"), "closed"),
])
def test_malformed_markets_are_refused(fake, market, why):
    fake.set("/gamma/events", gamma_event([market]))
    with pytest.raises(ApiMalformed, match=why):
        fake.client().market(SLUG)


def test_event_without_markets_and_unknown_slug(fake):
    client = fake.client()
    fake.set("/gamma/events", gamma_event([]))
    with pytest.raises(ApiMalformed, match="no markets"):
        client.market(SLUG)
    fake.set("/gamma/events", [])
    with pytest.raises(MarketNotFound):
        client.market(SLUG)
    fake.set("/gamma/markets", [])
    with pytest.raises(MarketNotFound):
        client.market_by_slug(SLUG)
    fake.set("/gamma/markets", [gamma_market()])
    assert client.market_by_slug(SLUG).token_down == DOWN


def test_the_events_market_is_chosen_by_slug_or_being_the_only_one(fake):
    client = fake.client()
    other = gamma_market(slug="btc-updown-15m-1767226500", clobTokenIds=json.dumps(["1", "2"]),
                         eventStartTime=iso_utc(START + 900), endDate=iso_utc(START + 1800))
    fake.set("/gamma/events", gamma_event([other, gamma_market()]))
    assert client.market(SLUG).token_up == UP
    fake.set("/gamma/events", gamma_event([gamma_market(slug="bitcoin-up-or-down-jan-1-7pm")]))
    assert client.market(SLUG).token_up == UP                     # its own slug differs: times agree
    fake.set("/gamma/events", gamma_event([other, gamma_market(slug="x")]))
    with pytest.raises(ApiMalformed, match="cannot tell"):
        client.market(SLUG)
    fake.set("/gamma/events", gamma_event([other]))
    with pytest.raises(ApiMalformed, match="disagrees"):           # another window's market
        client.market(SLUG)


def test_book_sorts_levels_and_walks_depth(fake):
    # The docs' order (asks descending, bids ascending: best last); the client must not rely on it.
    fake.set("/clob/book", book_body(asks=[("0.60", "10"), ("0.55", "10"), ("0.52", "10")],
                                     bids=[("0.40", "10"), ("0.50", "0"), ("0.48", "10")]))
    book = fake.client().book(UP)
    assert book.best_ask() == 0.52 and book.best_bid() == 0.48           # the 0-size level is dropped
    assert fake.seen[-1] == ("/clob/book", {"token_id": UP})
    fill = book.ask_for(10.0)
    assert fill.levels == 2 and fill.worst_price == 0.55
    assert fill.shares == pytest.approx(10 + 4.8 / 0.55)
    assert fill.avg_price == pytest.approx(10 / fill.shares)
    assert book.ask_for(0.52 * 10 + 0.55 * 10 + 0.60 * 10 + 0.01) is None    # too little depth
    assert book.ask_for(0) is None and book.ask_for(float("nan")) is None


def test_empty_book(fake):
    fake.set("/clob/book", book_body(asks=[], bids=[]))
    book = fake.client().book(UP)
    assert book.best_ask() is None and book.best_bid() is None and book.ask_for(1.0) is None


@pytest.mark.parametrize("body, why", [
    (book_body(asks=[("1.5", "10")]), "out of"), (book_body(asks=[("x", "10")]), "not a number"),
    (book_body(asks=[("0.5", "10")], token=DOWN), "another token"), ([], "object"),
])
def test_malformed_books_are_refused(fake, body, why):
    fake.set("/clob/book", body)
    with pytest.raises(ApiMalformed, match=why):
        fake.client().book(UP)


def test_price_midpoint_fee_rate_version(fake):
    client = fake.client()
    fake.set("/clob/price", {"price": 0.53})
    assert client.price(UP, "sell") == 0.53 and fake.seen[-1] == ("/clob/price", {"token_id": UP, "side": "SELL"})
    fake.set("/clob/price", {"price": "0.47"})
    assert client.price(UP, "BUY") == 0.47
    fake.set("/clob/midpoint", {"mid_price": "0.45"})
    assert client.midpoint(UP) == 0.45
    fake.set("/clob/midpoint", {"mid": "0.46"})                   # the older field name
    assert client.midpoint(UP) == 0.46
    fake.set("/clob/fee-rate", {"base_fee": 1000})
    assert client.fee_rate_bps(UP) == 1000
    fake.set("/clob/version", {"version": 2})
    assert client.version() == 2
    fake.set("/clob/version", {"version": "two"})
    with pytest.raises(ApiMalformed):
        client.version()


def clob_market(winner: str | None, closed: bool, up: str = UP) -> dict:
    return {"condition_id": CID, "closed": closed, "active": True, "market_slug": SLUG,
            "tokens": [{"token_id": DOWN, "outcome": "Down", "price": 0.0, "winner": winner == "Down"},
                       {"token_id": up, "outcome": "Up", "price": 1.0, "winner": winner == "Up"}]}


def test_resolution_from_clob_then_gamma(fake):
    client = fake.client()
    fake.set("/gamma/events", gamma_event())
    market = client.market(SLUG)
    fake.set(f"/clob/markets/{CID}", clob_market(None, False))
    assert client.resolution(market).winner is None
    fake.set(f"/clob/markets/{CID}", clob_market("Down", True))
    res = client.resolution(market)
    assert (res.winner, res.closed, res.source) == ("DOWN", True, "clob")
    # CLOB has no winner yet, Gamma already closed with outcomePrices: Gamma's word.
    fake.set(f"/clob/markets/{CID}", clob_market(None, False))
    fake.set("/gamma/events", gamma_event([gamma_market(closed=True, outcomePrices='["1", "0"]')]))
    assert client.resolution(market) == type(res)("UP", True, "gamma")
    fake.set(f"/clob/markets/{CID}", clob_market("Up", True, up="999"))
    with pytest.raises(ApiMalformed, match="disagree"):
        client.resolution(market)


# ---- faults -------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_down_is_unavailable():
    base = f"http://127.0.0.1:{free_port()}"      # nothing listens there any more
    with pytest.raises(ApiUnavailable, match="cannot reach") as info:
        MarketData(base + "/gamma", base + "/clob", timeout=1.0).market(SLUG)
    assert info.value.kind == "api_down"


def test_slow_is_unavailable_within_the_timeout(fake):
    fake.set("/clob/book", book_body(asks=[("0.5", "10")]))
    fake.hold.add("/clob/book")
    t0 = time.monotonic()
    with pytest.raises(ApiUnavailable, match="timed out") as info:
        fake.client(timeout=0.3).book(UP)
    assert info.value.kind == "api_slow"
    assert time.monotonic() - t0 < 2.0


@pytest.mark.parametrize("status, headers, exc, retry_after, kind", [
    (429, {"Retry-After": "7"}, ApiUnavailable, 7.0, "api_rate_limited"),
    (429, {}, ApiUnavailable, None, "api_rate_limited"), (503, {}, ApiUnavailable, None, "api_down"),
    (500, {}, ApiUnavailable, None, "api_down"), (403, {}, ApiForbidden, None, "api_geoblock"),
    (400, {}, ApiMalformed, None, "api_malformed"), (404, {}, MarketNotFound, None, "market_not_found"),
])
def test_error_statuses_map_to_what_to_do(fake, status, headers, exc, retry_after, kind):
    fake.set("/gamma/events", {"error": "x"}, status=status, headers=headers)
    with pytest.raises(exc) as info:
        fake.client().market(SLUG)
    assert type(info.value) is exc and info.value.kind == kind
    if exc is ApiUnavailable:
        assert info.value.retry_after == retry_after and info.value.status == status


@pytest.mark.parametrize("ctype", ["text/html; charset=utf-8", "application/json"])
def test_html_instead_of_json_is_malformed(fake, ctype):
    fake.set("/gamma/events", b"<!DOCTYPE html><html><title>Just a moment...</title></html>", ctype=ctype)
    with pytest.raises(ApiMalformed, match="JSON") as info:
        fake.client().market(SLUG)
    assert info.value.kind == "api_html"


def test_constructor_refuses_a_timeout_that_is_not_one():
    for bad in (0, -1, float("inf"), 1000, "5"):
        with pytest.raises(ValueError):
            MarketData(timeout=bad)


def test_book_dataclass_needs_no_server():
    book = Book("t", bids=(), asks=(Level(0.5, 4.0), Level(0.6, 100.0)))
    assert book.ask_for(2.0).levels == 1 and book.ask_for(2.0).worst_price == 0.5
    assert book.ask_for(2.6).worst_price == 0.6
    walk = book.ask_for(2.6)
    assert walk.parts == ((0.5, 4.0), (0.6, pytest.approx(1.0))) and book.depth_usd() == pytest.approx(62.0)


# ---- against the replica ------------------------------------------------------------------------
def test_against_the_replica_market_book_and_resolution(tmp_path: Path):
    length = 10
    now = time.time()
    s0 = math.floor(now / length) * length
    delay = (now - s0) + 3.0              # the previous window resolves ~3 s from now
    env = dict(os.environ, **{market_api.RESOLUTION_DELAY_ENV: f"{delay:.3f}"})
    prev = Window("BTC", s0 - length, length)
    rep = start_replica(tmp_path / "replica", window_seconds=length, env=env, state_file=False)
    try:
        md = MarketData(rep.base_url + "/gamma", rep.base_url + "/clob", timeout=5.0)
        cur = window_at("BTC", time.time(), length)
        m = md.market(cur.slug)
        assert (m.start, m.end, m.closed) == (cur.start, cur.end, False)
        assert m.token_up != m.token_down
        assert m.fee_rate == pytest.approx(float(os.environ.get("FEE_RATE", fees.DEFAULT_FEE_RATE)))
        same = md.market_by_slug(cur.slug)
        assert (same.token_up, same.token_down, same.condition_id) == (m.token_up, m.token_down, m.condition_id)
        book = md.book(m.token_up)
        assert 0 < book.best_ask() < 1 and book.ask_for(0.5) is not None
        bid = book.best_bid()           # None when the quote is one-sided (an ask at 0.01-0.02)
        assert bid is None or 0 < bid < book.best_ask()
        assert 0 < md.price(m.token_down, "SELL") < 1 and 0 < md.midpoint(m.token_up) < 1
        assert md.fee_rate_bps(m.token_up) == 1000 and md.version() == 2
        assert md.resolution(m).winner is None

        pm = md.market(prev.slug)
        if time.time() < s0 + delay - 0.5:           # still before its publication: not resolved
            assert md.resolution(pm).winner is None and not pm.closed
        o, c = PricePath("BTC", 7, length).open_close(prev)
        want = "UP" if fees.up_wins(o, c) else "DOWN"
        got = wait_until(lambda: md.resolution(pm).winner, timeout=10.0, interval=0.2,
                         what="the previous window's resolution")
        assert got == want
        assert md.market(prev.slug).outcome_prices == ({"UP": 1.0, "DOWN": 0.0} if want == "UP"
                                                       else {"UP": 0.0, "DOWN": 1.0})
        with pytest.raises(MarketNotFound):
            md.book(pm.token_up)                      # a resolved market has no book

        # The replica's API faults reach the client as the right exception types.
        rep.faults({"kind": "api_geoblock"})
        with pytest.raises(ApiForbidden):
            md.version()
        rep.faults({"kind": "api_rate_limited"})
        with pytest.raises(ApiUnavailable) as info:
            md.version()
        assert info.value.retry_after == 1.0
        rep.faults({"kind": "api_html"})
        with pytest.raises(ApiMalformed):
            md.market(cur.slug)
        assert md.version() == 2
    finally:
        rep.stop()
