"""Paper mode on the real APIs and settlement from the market's own resolution (issue 12, part 4).

The paper venue (executor/venue_paper.py), the market view and the resolution watch
(executor/resolution.py) called directly against a real replica process (10 s windows, resolution
published 3 s after the end): book-walked fills at the market's fee, each refusal with its cause
(Gamma/CLOB down, slow, 429, 403, HTML; empty book, too little depth, slippage, closed market),
outcomes listed Down first (a local proxy in front of the replica's Gamma), settlement late (none,
then the market's), never (the feed's estimate after RESOLUTION_WAIT, marked), API errors logged
once, the browser venue's market path, the replica's own ledger, and `status` showing the fills
that wait for their resolution. No browser: the venues are never opened.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from core import fees
from core.config import load_config
from core.durable_files import read_jsonl
from core.market_shapes import Book, Level, Market
from core.window_grid import Window, window_slug
from executor import resolution
from executor.outcomes import Recorder
from executor.risk_gate import RiskGate
from executor.services import Services
from executor.settlement import Settler
from executor.trade import Order
from executor.venue_browser import BrowserVenue
from executor.venue_paper import PaperVenue, WindowPrices, simulate_fill
from monitor import status
from replica import market_api
from replica.pricing import PricePath
from tests.replica_support import start_replica, wait_until

W = 10          # window seconds
DELAY = 3.0     # the replica publishes each resolution this long after the window's end
SEED = 7


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def rep(tmp_path_factory):
    r = start_replica(tmp_path_factory.mktemp("paper-replica"), window_seconds=W, assets=("BTC",), state_file=False,
                      extra_args=["--resolution-delay", str(DELAY)])
    try:
        yield r
    finally:
        r.stop()


OPENED: list = []    # the venues a test made: closed after it (their resolution pollers end)


@pytest.fixture(autouse=True)
def _clean_up(request):
    yield
    while OPENED:
        venue = OPENED.pop()
        venue.close()
        for watch in (getattr(venue, "resolutions", None), venue.view.resolution_watch):
            if watch is not None:
                watch.stop()
        venue.view.close()
    if "rep" in request.fixturenames:
        request.getfixturevalue("rep").clear_faults()


def make_cfg(tmp_path: Path, rep, api: str | None = None, **over: str):
    """Demo settings (10 s windows) with the replica's APIs; the config's fee differs from the
    market's on purpose (FEE_RATE 0.02, FEE_EXPONENT 2) to show which one a fill used."""
    base = api or rep.base_url
    env = {"MODE": "demo", "MARKET_URL": rep.market_url, "WINDOW_SECONDS": str(W), "ASSETS": "BTC",
           "GAMMA_URL": base + "/gamma", "CLOB_URL": base + "/clob", "MARKET_DATA_TIMEOUT": "2",
           "RESOLUTION_WAIT": "60", "MAX_SLIPPAGE": "0.05", "FEE_RATE": "0.02", "FEE_EXPONENT": "2",
           "STATE_DIR": str(tmp_path / "state"), "LOG_DIR": str(tmp_path / "logs"),
           "PROFILE_DIR": str(tmp_path / "profiles")}
    env.update(over)
    return load_config(env, dotenv_path=tmp_path / "no.env")


def paper(cfg, clock=time.time, prices: WindowPrices | None = None) -> PaperVenue:
    OPENED.append(PaperVenue(cfg, lambda: None, lambda: False, prices or WindowPrices(), clock))
    return OPENED[-1]


def never_submitted() -> None:
    raise AssertionError("a paper fill never reaches the wallet's confirm")


def grid_start(now: float | None = None) -> int:
    return int(math.floor((time.time() if now is None else now) / W) * W)


def upcoming() -> int:
    """The next window: listed, accepting orders, unresolved for at least W + DELAY seconds."""
    return grid_start() + W


def order(start: int, side: str = "UP", amount: float = 10.0, price: float = 0.99) -> Order:
    return Order(f"t-{side}-{start}", "BTC", start, window_slug("BTC", start, W), side, amount, price)


def fill_for(start: int, side: str, token: str | None, shares: float = 19.0) -> dict:
    return {"asset": "BTC", "window_start": start, "trade_id": f"t-{side}-{start}",
            "slug": window_slug("BTC", start, W), "side": side, "amount": 10.0, "price": 0.5, "shares": shares,
            "fee": 0.1, "token_id": token}


def winner_of(start: int) -> str:
    o, c = PricePath("BTC", SEED, W).open_close(Window("BTC", start, W))
    return "UP" if fees.up_wins(o, c) else "DOWN"


# ---- the fill: pure (a constructed book and market) -----------------------------------------------------
def a_market(**over) -> Market:
    m = dict(slug="btc-updown-15m-1767225600", condition_id="0x" + "ab" * 32, question="q", start=1767225600.0,
             end=1767226500.0, active=True, closed=False, accepting_orders=True, token_up="11", token_down="22",
             outcome_prices=None, fees_enabled=True, fee_rate=0.07, fee_exponent=1.0, fee_taker_only=True,
             fee_rate_bps=1000, tick_size=0.01, min_order_size=5.0)
    m.update(over)
    return Market(**m)


CFG = SimpleNamespace(max_slippage=0.05, fee_rate=0.02, fee_exponent=2.0)
BOOK = Book("11", bids=(), asks=(Level(0.40, 10.0), Level(0.42, 100.0)))
ORDER = Order("t", "BTC", 1767225600, "btc-updown-15m-1767225600", "UP", 10.0, 0.40)


def test_fill_walks_the_asks_and_pays_each_levels_fee_from_the_market():
    out = simulate_fill(ORDER, a_market(), BOOK, CFG)
    assert out.event == "filled", out.reason
    f = out.fields
    sh1, sh2 = 10.0, 6.0 / 0.42                       # $4 at 0.40, the other $6 at 0.42
    fee1, fee2 = 0.07 * 0.40 * 0.60 * sh1, 0.07 * 0.42 * 0.58 * sh2
    assert f["levels"] == 2 and f["worst_price"] == 0.42 and f["best_ask"] == 0.40 and f["token_id"] == "11"
    assert f["price"] == pytest.approx(10.0 / (sh1 + sh2), abs=1e-6)
    assert f["shares"] == pytest.approx(sh1 + sh2 - fee1 - fee2, abs=1e-6)
    assert f["fee"] == pytest.approx(fee1 * 0.40 + fee2 * 0.42, abs=1e-6)
    assert (f["fee_source"], f["fee_rate"], f["fee_exponent"]) == ("market", 0.07, 1.0)
    assert f["simulated"] is True and f["amount"] == 10.0 and f["side"] == "UP"


@pytest.mark.parametrize("over, source, rate, exponent", [
    ({"fee_rate": None, "fee_exponent": None}, "config", 0.02, 2.0),          # the market publishes none
    ({"fee_rate": 0.0, "fees_enabled": False, "fee_exponent": None}, "market", 0.0, 2.0),   # fees off: none
    ({"fee_exponent": None}, "market_rate_config_exponent", 0.07, 2.0),
])
def test_the_fee_source_is_recorded(over, source, rate, exponent):
    f = simulate_fill(ORDER, a_market(**over), BOOK, CFG).fields
    assert (f["fee_source"], f["fee_rate"], f["fee_exponent"]) == (source, rate, exponent)
    assert (f["fee"] == 0.0) == (rate == 0.0)


def test_thin_empty_book_and_slippage_are_refused_with_their_cause():
    thin = simulate_fill(order(1767225600, amount=100.0, price=0.42), a_market(), BOOK, CFG)
    assert (thin.event, thin.fields["cause"]) == ("failed", "thin_book") and "$46.00" in thin.reason
    empty = simulate_fill(ORDER, a_market(), Book("11", (), ()), CFG)
    assert (empty.event, empty.fields["cause"]) == ("failed", "empty_book") and "no asks" in empty.reason
    dear = simulate_fill(Order("t", "BTC", 0, "s", "UP", 10.0, 0.35), a_market(), BOOK, CFG)   # walks to ~0.412
    assert (dear.event, dear.fields["cause"]) == ("failed", "slippage") and "MAX_SLIPPAGE=0.05" in dear.reason


# ---- the fill against the replica ---------------------------------------------------------------------
def test_paper_fill_from_the_replicas_book_at_the_markets_fee(tmp_path, rep):
    v = paper(make_cfg(tmp_path, rep))
    start = upcoming()
    m = v.view.market("BTC", start)
    ask = v.view.book("BTC", start, "DOWN").best_ask()
    out = v.place(order(start, "DOWN", 10.0, ask), never_submitted)
    assert out.event == "filled", out.reason
    f = out.fields
    assert f["token_id"] == m.token_down == market_api.token_id(SEED, m.slug, "Down") and f["side"] == "DOWN"
    assert (f["fee_source"], f["fee_rate"], f["fee_exponent"]) == ("market", 0.07, 1.0)   # not the config's
    assert f["best_ask"] == ask and ask <= f["price"] <= f["worst_price"] and f["levels"] >= 1
    pq = [p * (1 - p) for p in (ask, f["worst_price"])]
    assert 0.07 * min(pq) - 1e-6 <= f["fee"] / 10.0 <= 0.07 * max(pq) + 1e-6
    assert f["shares"] < 10.0 / f["price"]                    # the fee is taken in shares
    assert rep.orders() == [] and rep.wallet()["requests"] == []


@pytest.mark.parametrize("api", ["gamma", "clob"])
@pytest.mark.parametrize("kind, cause, words", [
    ("api_unavailable", "api_down", "down or unreachable"), ("api_slow", "api_slow", "did not answer in time"),
    ("api_rate_limited", "api_rate_limited", "429"), ("api_geoblock", "api_geoblock", "403"),
    ("api_html", "api_html", "HTML page instead of JSON"),
])
def test_api_faults_refuse_the_fill_and_say_which(tmp_path, rep, api, kind, cause, words):
    v = paper(make_cfg(tmp_path, rep, MARKET_DATA_TIMEOUT="1"))
    start = upcoming()
    if api == "clob":
        v.view.market("BTC", start)      # the market is cached: the next request is the CLOB's /book
    rep.faults({"kind": kind, "mode": "once", **({"ms": 2500} if kind == "api_slow" else {})})
    out = v.place(order(start), never_submitted)
    assert (out.event, out.fields.get("cause")) == ("failed", cause), out
    assert words in out.reason and f"/{api}/" in out.reason and out.reason.startswith("no simulated fill")
    assert rep.faults() == []                                  # it fired on that request
    assert v.place(order(start), never_submitted).event == "filled"   # and the next one fills


def test_an_unreachable_api_refuses_the_fill(tmp_path, rep):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    v = paper(make_cfg(tmp_path, rep, api=closed))
    out = v.place(order(upcoming()), never_submitted)
    assert (out.event, out.fields["cause"]) == ("failed", "api_down") and "cannot reach" in out.reason


def test_empty_thin_dear_and_closed_markets_are_refused_on_the_replica(tmp_path, rep):
    v = paper(make_cfg(tmp_path, rep))
    start = upcoming()
    rep.faults({"kind": "api_empty_book", "mode": "once"})
    assert v.place(order(start), never_submitted).fields["cause"] == "empty_book"
    assert v.place(order(start, amount=1e6), never_submitted).fields["cause"] == "thin_book"
    assert v.place(order(start, price=0.01), never_submitted).fields["cause"] == "slippage"
    closed = v.place(order(grid_start() - 3 * W), never_submitted)       # resolved long ago
    assert closed.fields["cause"] == "market_closed" and "not accepting orders" in closed.reason


# ---- outcomes listed Down first ------------------------------------------------------------------------
class ReversingProxy:
    """The replica behind a local proxy whose Gamma lists every market's outcomes Down first (the
    pairs kept: `outcomes`, `clobTokenIds`, `outcomePrices` all reversed). CLOB passes through."""

    def __init__(self, upstream: str):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                return None

            def do_GET(self) -> None:  # noqa: N802 - stdlib naming
                try:
                    with urllib.request.urlopen(upstream + self.path, timeout=5) as resp:
                        status, body, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
                except urllib.error.HTTPError as exc:
                    status, body, ctype = exc.code, exc.read(), exc.headers.get("Content-Type", "")
                if self.path.startswith("/gamma/") and status == 200 and "json" in ctype:
                    body = json.dumps(reverse_outcomes(json.loads(body))).encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)


def reverse_outcomes(data: object) -> object:
    for item in data if isinstance(data, list) else [data]:
        for m in item.get("markets", [item]) if isinstance(item, dict) else []:
            for key in ("outcomes", "clobTokenIds", "outcomePrices"):
                if isinstance(m.get(key), str):
                    m[key] = json.dumps(json.loads(m[key])[::-1])
    return data


@pytest.fixture
def proxy(rep) -> Iterator[ReversingProxy]:
    p = ReversingProxy(rep.base_url)
    p.thread.start()
    try:
        yield p
    finally:
        p.server.shutdown()
        p.server.server_close()


def test_outcomes_listed_down_first_fill_and_settle_by_name(tmp_path, rep, proxy):
    v = paper(make_cfg(tmp_path, rep, api=proxy.base))
    start = upcoming()
    slug = window_slug("BTC", start, W)
    with urllib.request.urlopen(f"{proxy.base}/gamma/events?slug={slug}", timeout=5) as resp:
        raw = json.loads(resp.read())[0]["markets"][0]
    assert json.loads(raw["outcomes"]) == ["Down", "Up"]                     # the proxy did reverse them
    assert json.loads(raw["clobTokenIds"])[1] == market_api.token_id(SEED, slug, "Up")
    for side, name in (("UP", "Up"), ("DOWN", "Down")):
        out = v.place(order(start, side), never_submitted)
        assert out.event == "filled" and out.fields["token_id"] == market_api.token_id(SEED, slug, name), out
    past = grid_start() - 3 * W                                                # resolved long ago
    m = v.view.market("BTC", past)
    assert m.token_up == market_api.token_id(SEED, m.slug, "Up")
    res = wait_until(lambda: v.window_result(fill_for(past, "UP", m.token_up)), 10, what="the settlement")
    assert res["resolution"] == "market" and res["winner"] == winner_of(past)
    assert res["outcome"] == ("won" if winner_of(past) == "UP" else "lost")


# ---- settlement from the market's resolution --------------------------------------------------------
def test_a_late_resolution_settles_when_it_appears_in_the_api_and_the_replicas_ledger(tmp_path, rep):
    v = paper(make_cfg(tmp_path, rep))
    start = grid_start()   # the current window: it resolves at its end + DELAY, at least DELAY s from now
    m = v.view.market("BTC", start)
    up, down = fill_for(start, "UP", m.token_up), fill_for(start, "DOWN", m.token_down)
    assert v.window_result(up) is None                                          # nothing known yet
    wait_until(lambda: v.resolutions.asked[("BTC", start)] >= 1, 5, what="the poller's first answer")
    assert v.window_result(up) is None and v.window_result(down) is None      # asked: no winner yet, wait
    assert m.slug not in {s["slug"] for s in rep.settlements()}               # the replica has not settled it
    res = wait_until(lambda: v.window_result(up), timeout=W + DELAY + 5, interval=0.2,
                     what="the settlement once the market resolves")
    want = winner_of(start)
    ledger = next(s for s in rep.settlements() if s["slug"] == m.slug)       # published at end + delay
    assert ledger["outcome"] == want and ledger["resolved_at"] == pytest.approx(start + W + DELAY)
    assert time.time() >= start + W + DELAY - 0.05
    won = want == "UP"
    assert res == {"outcome": "won" if won else "lost", "payout": 19.0 if won else 0.0, "fee": 0.1,
                   "pnl": 9.0 if won else -10.0, "winner": want, "resolution": "market",
                   "resolution_source": "clob", "estimated": False}
    other = v.window_result(down)
    assert other["outcome"] == ("lost" if won else "won") and other["payout"] == (0.0 if won else 19.0)


def test_a_resolution_that_never_comes_settles_from_the_feed_marked_estimated(tmp_path, rep):
    clock, prices = Clock(0.0), WindowPrices()
    v = paper(make_cfg(tmp_path, rep, RESOLUTION_WAIT="5"), clock, prices)
    start = upcoming()                  # unresolved at the replica for the whole test, as is the one after it
    prices.set("BTC", start, open=100.0)
    prices.set("BTC", start + W, open=99.5)                    # the next window's open: Down
    fill = fill_for(start, "UP", None)
    clock.t = start + W + 1.0
    assert v.window_result(fill) is None
    wait_until(lambda: v.resolutions.asked[("BTC", start)] >= 1, 5, what="the poller's first answer")
    assert v.window_result(fill) is None            # the market has not resolved; RESOLUTION_WAIT not over yet
    clock.t = start + W + 5.5
    res = v.window_result(fill)
    assert res["estimated"] is True and res["resolution"] == "feed" and res["winner"] == "DOWN"
    assert (res["outcome"], res["payout"], res["pnl"], res["fee"]) == ("lost", 0.0, -10.0, 0.1)
    assert (res["open_price"], res["close_price"]) == (100.0, 99.5)
    assert "had not resolved 5s after the window's end" in res["resolution_problem"]
    later = fill_for(start + W, "UP", None)                     # no close price known for this one
    clock.t = start + 2 * W + 6.0
    assert v.window_result(later) is None                       # no estimate either: still waiting
    prices.set("BTC", start + W, last=99.9)
    assert v.window_result(later)["outcome"] == "won"          # 99.9 >= 99.5, seen 5 s after the end


def test_api_errors_while_waiting_are_logged_once_and_back_off(tmp_path, rep, caplog, monkeypatch):
    monkeypatch.setattr(resolution, "POLL_S", 0.05)
    monkeypatch.setattr(resolution, "ERROR_BACKOFF_S", 0.3)
    clock, prices = Clock(0.0), WindowPrices()
    v = paper(make_cfg(tmp_path, rep, RESOLUTION_WAIT="30"), clock, prices)
    start = upcoming()
    rep.faults({"kind": "api_unavailable", "mode": "persistent"})
    fill = fill_for(start, "DOWN", None)
    caplog.set_level(logging.WARNING, logger="executor.resolution")
    clock.t = start + W + 1.0
    t0 = time.monotonic()
    assert v.window_result(fill) is None
    wait_until(lambda: rep.faults()[0]["fired"] >= 3, 10, what="three failed asks")
    assert time.monotonic() - t0 >= 2 * 0.3                     # backed off between them (polls are 0.05 s apart)
    assert v.window_result(fill) is None                        # still waiting
    errors = [r for r in caplog.records if "cannot read the market's resolution" in r.getMessage()]
    assert len(errors) == 1 and "api_down" in errors[0].getMessage()   # logged once for the window
    prices.set("BTC", start, open=100.0, last=100.0)            # a tie: Up
    clock.t = start + W + 31.0
    res = v.window_result(fill)
    assert res["estimated"] is True and res["resolution"] == "feed" and res["outcome"] == "lost"
    assert res["resolution_problem"].startswith("api_down: HTTP 503")


def test_the_browser_venue_settles_from_the_market_too(tmp_path, rep):
    venue = BrowserVenue(make_cfg(tmp_path, rep), lambda: None, lambda: False)   # never opened: no page
    OPENED.append(venue)
    past = grid_start() - 3 * W
    m = venue.view.market("BTC", past)
    res = wait_until(lambda: venue.window_result(fill_for(past, "DOWN", m.token_down, shares=20.0)), 10,
                     what="the settlement from the market")
    won = winner_of(past) == "DOWN"
    assert res["resolution"] == "market" and res["estimated"] is False and res["winner"] == winner_of(past)
    assert res["payout"] == (20.0 if won else 0.0) and res["pnl"] == (10.0 if won else -10.0)


def test_a_fill_whose_token_is_not_the_markets_is_not_settled(tmp_path, rep):
    v = paper(make_cfg(tmp_path, rep))
    past = grid_start() - 3 * W
    assert v.window_result(fill_for(past, "UP", "12345")) is None
    wait_until(lambda: v.resolutions.known("BTC", past), 10, what="the market's resolution")
    assert v.window_result(fill_for(past, "UP", "12345")) is None             # whose token is that?
    m = v.view.market("BTC", past)
    assert v.window_result(fill_for(past, "UP", m.token_down)) is None       # the Down token, side UP


def test_the_settled_line_carries_the_resolution(tmp_path, rep):
    cfg = make_cfg(tmp_path, rep)
    svc = Services.build(cfg)
    gate = RiskGate(cfg, svc.clock, svc.journal.events, lambda reason: None)
    gate.start()
    v = paper(cfg)
    past = grid_start() - 3 * W
    m = v.view.market("BTC", past)
    svc.journal.append("intent", "BTC", past, "t1", slug=m.slug, side="UP", amount=10.0, price=0.5)
    svc.journal.append("filled", "BTC", past, "t1", simulated=True, side="UP", amount=10.0, price=0.5, shares=19.3,
                       fee=0.17, token_id=m.token_up)
    settler = Settler(svc, v, Recorder(svc, gate))

    def settled() -> list[dict]:
        settler.run()
        return [r for r in read_jsonl(cfg.trades_path) if r["event"] == "settled"]

    (line,) = wait_until(settled, 10, what="the settled line")
    assert line["resolution"] == "market" and line["estimated"] is False and line["winner"] == winner_of(past)
    assert line["payout"] == (19.3 if winner_of(past) == "UP" else 0.0) and line["fee"] == 0.17


# ---- status: fills waiting for their resolution -------------------------------------------------------
def test_status_shows_fills_awaiting_resolution(tmp_path):
    cfg = load_config({"MODE": "demo", "WINDOW_SECONDS": str(W), "STATE_DIR": str(tmp_path / "state"),
                       "LOG_DIR": str(tmp_path / "logs"), "PROFILE_DIR": str(tmp_path / "profiles")},
                      dotenv_path=tmp_path / "no.env")
    now = 1_800_000_005.0
    old, cur = 1_799_999_980, 1_800_000_000
    lines = []
    for tid, start, events in (("a", old, ("intent", "filled")), ("b", old, ("intent", "filled", "settled")),
                               ("c", cur, ("intent", "filled"))):
        for ev in events:
            lines.append({"ts": "2027-01-15T08:00:00Z", "event": ev, "mode": "demo", "asset": "BTC",
                          "window_start": start, "trade_id": tid, "side": "UP", "amount": 10.0,
                          **({"slug": window_slug("BTC", start, W)} if ev == "intent" else {})})
    cfg.trades_path.parent.mkdir(parents=True, exist_ok=True)
    cfg.trades_path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    held = status._trades(cfg, now)["open"]
    assert [(p["trade_id"], p["state"]) for p in held] == [("a", "awaiting resolution"), ("c", "window running")]
    assert held[0]["slug"] == window_slug("BTC", old, W) and held[0]["ended_s_ago"] == 15.0
    doc = {"mode": "demo", "market_url": "-", "monitor": {"state": "stopped"}, "ok": False, "processes": {},
           "signals": {}, "executor": None, "risk": None,
           "trades": {"last": None, "today": {"filled": 0, "wins": 0, "losses": 0, "pnl": 0.0}, "path": "-",
                      "open": held}}
    line = next(ln for ln in status.render(doc).splitlines() if ln.startswith("open "))
    assert "2 position(s)" in line and f"{window_slug('BTC', old, W)} awaiting resolution (ended 15s ago)" in line
    assert "window running" in line
