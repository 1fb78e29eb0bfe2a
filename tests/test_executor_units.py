"""Unit tests of the executor's pure parts: decision, origin normalisation, journal, profiles, signal watcher."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from core.durable_files import atomic_write_json, read_jsonl
from core.window_grid import iso_utc
from executor import decision, wallet_guard
from executor.journal import DecisionLog, TradeJournal
from executor.orders import OrderEvent
from executor.profiles import ProfileError, SiteProfile, WalletProfile, fill
from executor.signals import SignalWatcher
from executor.trade import Outcome

REPO = Path(__file__).resolve().parent.parent
W0 = 1_767_225_600  # a window start on the 900 s grid


def params(**kw) -> decision.Params:
    base = dict(strategy="edge", confidence=60, min_edge=0.03, entry_start=0, entry_end=720, signal_max_age=5,
                min_price=0.05, max_price=0.95, fee_rate=0.07, fee_exponent=1.0)
    base.update(kw)
    return decision.Params(**base)


def sig(now: float, start: int = W0, **kw) -> dict:
    s = {"timestamp": iso_utc(now - 0.5), "direction": "UP", "confidence": 74, "asset": "BTC", "prob_up": 0.70,
         "window": {"start": iso_utc(start), "end": iso_utc(start + 900), "open_price": 100.0}, "stale": False,
         "seq": 3, "price": 101.0}
    s.update(kw)
    return s


def run(p, now, s, up=0.55, down=0.46, problem=None, traded=False):
    return decision.decide(p, "BTC", W0, W0 + 900, now, s, problem, up, down, traded)


# ---- decision ---------------------------------------------------------------------------------
def test_edge_trades_up_when_edge_clears_min_edge():
    now = W0 + 30
    d = run(params(), now, sig(now))
    assert d.action == "trade" and d.side == "UP" and d.price == 0.55
    # prob 0.70, ask 0.55, fee 0.70 * 0.07 * 0.55 * 0.45 = 0.0121 -> edge 0.1379
    assert d.edge == pytest.approx(0.70 - 0.55 - 0.70 * 0.07 * 0.55 * 0.45)


def test_edge_trades_down_in_mirror():
    now = W0 + 30
    d = run(params(), now, sig(now, prob_up=0.30), up=0.70, down=0.31)
    assert d.action == "trade" and d.side == "DOWN" and d.price == 0.31


def test_edge_waits_without_edge_and_explains():
    now = W0 + 30
    d = run(params(), now, sig(now, prob_up=0.56), up=0.55, down=0.46)
    assert d.action == "wait" and "MIN_EDGE" in d.reason


def test_edge_just_below_and_above_threshold():
    now = W0 + 30
    p = params(min_edge=0.05)
    ask = 0.50
    fee = 0.07 * 0.25
    prob_exact = (0.05 + ask) / (1 - fee)   # edge == min_edge exactly
    assert run(p, now, sig(now, prob_up=prob_exact + 1e-6), up=ask, down=0.9).action == "trade"
    assert run(p, now, sig(now, prob_up=prob_exact - 1e-3), up=ask, down=0.9).action == "wait"


def test_seed_trades_direction_when_confident():
    now = W0 + 1
    d = run(params(strategy="seed"), now, sig(now, direction="DOWN", confidence=61))
    assert d.action == "trade" and d.side == "DOWN" and d.price == 0.46


def test_seed_skips_low_confidence_and_no_trade():
    now = W0 + 1
    assert run(params(strategy="seed"), now, sig(now, confidence=59)).action == "skip"
    d = run(params(strategy="seed"), now, sig(now, direction="NO_TRADE"))
    assert d.action == "skip" and "NO_TRADE" in d.reason


@pytest.mark.parametrize("strategy", ["seed", "edge"])
@pytest.mark.parametrize("case,expect", [
    ("missing", "signal missing"),
    ("corrupt", "signal corrupt"),
    ("stale_flag", "stale"),
    ("old", "old"),
    ("other_window", "another window"),
    ("other_asset", "for ETH"),
])
def test_refuses_bad_signals(strategy, case, expect):
    now = W0 + 10
    s, problem = sig(now), None
    if case == "missing":
        s, problem = None, "missing"
    elif case == "corrupt":
        s, problem = None, "corrupt: Expecting value"
    elif case == "stale_flag":
        s["stale"] = True
    elif case == "old":
        s["timestamp"] = iso_utc(now - 6)
    elif case == "other_window":
        s["window"]["start"] = iso_utc(W0 - 900)
    elif case == "other_asset":
        s["asset"] = "ETH"
    d = run(params(strategy=strategy), now, s, problem=problem)
    assert d.action == "wait" and expect in d.reason


@pytest.mark.parametrize("strategy", ["seed", "edge"])
def test_refuses_ask_outside_price_band(strategy):
    now = W0 + 10
    d = run(params(strategy=strategy, max_price=0.90), now, sig(now, prob_up=0.99), up=0.93, down=0.08)
    assert d.action == "wait" and "outside" in d.reason


def test_entry_interval_and_one_trade_per_window():
    p = params(entry_start=5, entry_end=20)
    assert run(p, W0 + 2, sig(W0 + 2)).action == "wait"
    assert run(p, W0 + 21, sig(W0 + 21)).action == "skip"
    assert run(p, W0 + 10, sig(W0 + 10)).action == "trade"
    assert run(p, W0 + 10, sig(W0 + 10), traded=True).action == "skip"


def test_parse_cents():
    assert decision.parse_cents("53¢") == 0.53
    assert decision.parse_cents(" 7¢ ") == 0.07
    assert decision.parse_cents("$0.41") == 0.41
    assert decision.parse_cents("—") is None
    assert decision.parse_cents("100¢") is None


# ---- wallet guard: the real order signature, tests/test_wallet_typed_data.py and tests/test_wallet_guard.py ----
def test_normalize_origin():
    assert wallet_guard.normalize_origin("https://Polymarket.com:443/x") == "polymarket.com"
    assert wallet_guard.normalize_origin("polymarket.com") == "polymarket.com"
    assert wallet_guard.normalize_origin("http://127.0.0.1:8765") == "127.0.0.1:8765"


# ---- journal ----------------------------------------------------------------------------------
def test_journal_open_intents_and_windows(tmp_path):
    j = TradeJournal(tmp_path / "trades.jsonl", "demo")
    j.append("intent", "BTC", W0, "a", slug="s", side="UP", amount=10)
    j.append("submitted", "BTC", W0, "a")
    j.append("intent", "BTC", W0 + 900, "b", slug="s2")
    j.append("filled", "BTC", W0 + 900, "b", price=0.5, amount=10, side="UP")
    j.append("intent", "BTC", W0 + 1800, "c")
    j.append("unknown", "BTC", W0 + 1800, "c")
    assert [i["trade_id"] for i in j.open_intents()] == ["a", "c"]
    assert all(j.traded("BTC", W0 + k * 900) for k in range(3)) and not j.traded("BTC", W0 + 2700)
    assert [f["trade_id"] for f in j.unsettled_fills()] == ["b"]
    j.append("settled", "BTC", W0 + 900, "b", outcome="won")
    assert j.unsettled_fills() == []
    for line in read_jsonl(tmp_path / "trades.jsonl"):
        assert {"ts", "event", "mode", "asset", "window_start", "trade_id"} <= set(line)
    with pytest.raises(ValueError):
        j.append("bogus", "BTC", W0, "a")
    # another mode's intents are not ours to reconcile
    assert TradeJournal(tmp_path / "trades.jsonl", "paper").open_intents() == []


def test_decision_log_one_line_per_window_across_restarts(tmp_path):
    path = tmp_path / "decisions.jsonl"
    d = DecisionLog(path, "demo")
    assert d.write("BTC", W0, "s", "skipped", "why")
    assert not d.write("BTC", W0, "s", "traded", "again")
    assert not DecisionLog(path, "demo").write("BTC", W0, "s", "skipped", "after restart")
    assert len(read_jsonl(path)) == 1


# ---- profiles ---------------------------------------------------------------------------------
def test_profiles_load_and_fill():
    site = SiteProfile.load(REPO / "profiles/sites/polymarket.json")
    assert site.widget["root"] == "#trade-widget" and not site.verified
    assert fill(site.widget["outcome_button"], value="1").endswith("[value='1']")
    assert site.event_path("btc-updown-15m-1767225600") == "/event/btc-updown-15m-1767225600"
    assert set(site.sources) >= set(site.required_selectors())    # every required selector names its source
    wallet = WalletProfile.load(REPO / "profiles/wallets/metamask.json")
    assert wallet.is_popup_url("http://127.0.0.1:9/notification.html?request=x")
    assert not wallet.is_popup_url("http://127.0.0.1:9/crypto/15M")
    assert not (REPO / "profiles/sites/replica.json").exists()      # one site map: the real site's


def test_profile_missing_key_is_named(tmp_path):
    data = json.loads((REPO / "profiles/sites/polymarket.json").read_text())
    del data["widget"]["amount_input"]
    p = tmp_path / "broken.json"
    p.write_text(json.dumps(data))
    with pytest.raises(ProfileError, match="widget.amount_input"):
        SiteProfile.load(p)
    with pytest.raises(ProfileError, match="does not exist"):
        WalletProfile.load(tmp_path / "nope.json")


def test_no_selector_literals_in_python():
    """Selectors live in the JSON profiles: no CSS-looking literal in the executor's code."""
    import re
    pattern = re.compile(r"""["'][^"']*(data-testid|\[data-|button\.|input\[|:has-text|#your-orders|#trade-widget"""
                         r"""|#outcome-buttons|#market-order|__NEXT_DATA__|aria-label=)[^"']*["']""")
    for py in (REPO / "executor").glob("*.py"):
        hits = pattern.findall(py.read_text())
        assert not hits, f"{py.name} contains selector literals: {hits}"


# ---- signal watcher ---------------------------------------------------------------------------
def test_signal_watcher_sees_atomic_replace_quickly(tmp_path):
    path = tmp_path / "signal.json"
    seen = threading.Event()
    got = {}

    def on_change(asset, held):
        if held.data and held.data.get("seq") == 2:
            got["t"] = time.time()
            seen.set()

    atomic_write_json(path, {"seq": 1})
    w = SignalWatcher({"BTC": path}, on_change=on_change)
    assert w.held("BTC").data == {"seq": 1}
    w.start()
    try:
        t0 = time.time()
        atomic_write_json(path, {"seq": 2})
        assert seen.wait(5), "the watcher never saw the replace"
        assert got["t"] - t0 < 1.0
        assert w.held("BTC").data == {"seq": 2}
        path.write_text("{not json")
        assert w.read_fresh("BTC").problem.startswith("corrupt")
    finally:
        w.stop()


def test_signal_watcher_reacts_once_per_replace_not_to_its_own_reads(tmp_path):
    """Regression: reacting to the `opened`/`closed_no_write` events of its own reads made the
    watcher re-read forever (thousands of callbacks per replace, a memory leak in long runs)."""
    path = tmp_path / "signal.json"
    calls = []
    held_seq = threading.Condition()

    def on_change(asset, held):
        with held_seq:
            calls.append((held.data or {}).get("seq"))
            held_seq.notify_all()

    atomic_write_json(path, {"seq": 0})
    w = SignalWatcher({"BTC": path}, on_change=on_change)
    w.start()
    try:
        n = 20
        for seq in range(1, n + 1):
            atomic_write_json(path, {"seq": seq})
            with held_seq:
                assert held_seq.wait_for(lambda s=seq: s in calls, timeout=5), f"replace {seq} never seen"
        # A few events per replace are fine (create/move, an atime change); an endless loop is not.
        assert len(calls) <= 3 * n, f"{len(calls)} callbacks for {n} replaces"
    finally:
        w.stop()


# ---- paper settlement (no browser: the paper venue's window result through the settler) -------
class PaperDesk:
    """The executor's bookkeeping parts on tmp dirs in paper, with a settable clock."""

    def __init__(self, tmp_path):
        from core.config import load_config
        from executor.outcomes import Recorder
        from executor.risk_gate import RiskGate
        from executor.services import Services
        from executor.settlement import Settler
        from executor.venue_paper import PaperVenue, WindowPrices

        env = {"MODE": "paper", "STATE_DIR": str(tmp_path / "state"), "LOG_DIR": str(tmp_path / "logs"),
               "PROFILE_DIR": str(tmp_path / "profiles"), "RESOLUTION_WAIT": "0",
               "GAMMA_URL": "http://127.0.0.1:9/gamma", "CLOB_URL": "http://127.0.0.1:9/clob"}  # never the internet
        self.cfg = load_config(env, dotenv_path=tmp_path / "no.env")
        self.now = W0 + 905.0
        self.svc = Services.build(self.cfg, clock=lambda: self.now)
        self.prices = WindowPrices()
        self.faults: list[str | None] = []
        self.gate = RiskGate(self.cfg, self.svc.clock, self.svc.journal.events, self.faults.append)
        self.gate.start()
        self.recorder = Recorder(self.svc, self.gate)
        venue = PaperVenue(self.cfg, self.svc.tick, lambda: False, self.prices, self.svc.clock)
        self.settler = Settler(self.svc, venue, self.recorder)

    def settled(self) -> list[dict]:
        return [t for t in read_jsonl(self.cfg.trades_path) if t["event"] == "settled"]


def test_paper_settlement_from_signal_prices(tmp_path):
    d = PaperDesk(tmp_path)
    j = d.svc.journal
    j.append("intent", "BTC", W0, "t-up", slug="s", side="UP", amount=10.0, price=0.5)
    j.append("filled", "BTC", W0, "t-up", simulated=True, side="UP", amount=10.0, price=0.5, shares=19.65, fee=0.175)
    d.prices.set("BTC", W0, open=100.0, last=101.0)
    d.settler.run()
    assert d.settled() == []                                          # next window's open not known yet, < 5 s
    d.prices.set("BTC", W0 + 900, open=100.0)                         # close == open: ties go Up
    d.settler.run()
    settled = d.settled()
    assert len(settled) == 1 and settled[0]["outcome"] == "won"
    assert settled[0]["pnl"] == pytest.approx(settled[0]["payout"] - 10.0)
    assert settled[0]["payout"] == pytest.approx(20.0 * (1 - 0.07 * 0.25))
    d.settler.run()
    assert len(d.settled()) == 1                                      # once
    assert d.gate.book.status(d.now)["pnl_today"] == pytest.approx(settled[0]["pnl"])


def test_a_settlement_the_risk_book_cannot_record_halts_until_resume(tmp_path, monkeypatch):
    from executor import risk_gate
    from risk.guards import RiskBook

    d = PaperDesk(tmp_path)
    gate, now = d.gate, d.now
    d.svc.journal.append("intent", "BTC", W0, "t1", slug="s", side="UP", amount=10.0, price=0.5)
    d.recorder.outcome("BTC", W0, "t1", Outcome("filled", "simulated", "paper", {"side": "UP", "amount": 10.0,
                                                                                "price": 0.5}))
    assert gate.book.status(now)["open_positions"] == 1 and gate.fault is None

    def broken(*args, **kwargs):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(RiskBook, "on_settled", broken)
    d.prices.set("BTC", W0, open=100.0)
    d.prices.set("BTC", W0 + 900, open=90.0)                                # the UP position lost
    d.settler.run()
    assert len(d.settled()) == 1                                            # the journal has it
    assert gate.fault and "could not record settlement t1" in gate.fault and d.faults[-1] == gate.fault
    monkeypatch.setattr(risk_gate.replay, "rebuild", broken)                # the book cannot be rebuilt: closed
    assert gate.check("BTC", W0 + 900, 10.0, now).startswith("risk book unavailable: could not record")
    monkeypatch.undo()                                                      # the book works again
    monkeypatch.setattr(risk_gate, "RETRY_S", 0.0)
    why = gate.check("BTC", W0 + 900, 10.0, now)
    assert why.startswith("halted: could not record settlement t1") and d.faults[-1] is None
    status = RiskBook(d.cfg).status(now)
    assert status["halted"] and status["losses"] == 1 and status["open_positions"] == 0   # replayed from the journal
    RiskBook(d.cfg).resume(now)
    assert gate.check("BTC", W0 + 900, 10.0, now + 200) is None   # after the cooldown: free again


def test_a_trade_left_reconciled_completes_as_filled_never_reconciled_twice(tmp_path):
    from executor.reconcile import Reconciler

    d = PaperDesk(tmp_path)
    d.svc.journal.append("intent", "BTC", W0, "t1", slug="s", side="UP", amount=10.0, price=0.5)
    d.svc.journal.append("reconciled", "BTC", W0, "t1", slug="s", found=True, order_id="o-1")
    # a restart: the journal read back, the venue never asked again (it already said "found")
    from executor.services import Services
    svc = Services.build(d.cfg, clock=lambda: d.now)
    Reconciler(svc, venue=None, recorder=type(d.recorder)(svc, d.gate)).run(min_age=0.0)
    assert [e["event"] for e in svc.journal.events()] == ["intent", "reconciled", "filled"]
    assert svc.journal.trades["t1"].first(OrderEvent.FILLED)["order_id"] == "o-1"
    assert svc.journal.open_intents() == []


def test_a_wallet_rejected_trade_says_no_order_placed_in_its_decision_line(tmp_path):
    """Found in a user's trial: the decision line of an order the wallet guard refused (nothing placed)
    read just `"action": "traded"` and the decision's reason. The line is written after the order:
    `action` stays the decision (the window's one intent), and the reason now says what came of it."""
    from executor.windows import WindowCtx, WindowTracker

    d = PaperDesk(tmp_path)
    tracker = WindowTracker(d.svc, d.settler.venue)
    why = "seed: UP with confidence 74 >= 60"
    guard = "wallet guard: the request's origin https://evil.example is not the market's"
    for asset, tid, out in (
            ("BTC", "t-rej", Outcome("wallet_rejected", guard, "reject", {"request": {"origin": "https://evil.example"}})),
            ("ETH", "t-ok", Outcome("filled", "order accepted", "outcome_wait", {"side": "UP", "amount": 10.0,
                                                                               "price": 0.5}))):
        d.svc.journal.append("intent", asset, W0, tid, slug=f"{asset}-s", side="UP", amount=10.0, price=0.5)
        d.recorder.outcome(asset, W0, tid, out)
        tracker.decide_line(WindowCtx(asset, W0, W0 + 900, f"{asset}-s"), decision.Logged.TRADED, why,
                            outcome=str(out.event), trade_id=tid, side="UP", price=0.5, amount=10.0)
    got = {line["asset"]: line for line in read_jsonl(d.cfg.decisions_path)}
    assert got["BTC"]["action"] == "traded" and got["BTC"]["outcome"] == "wallet_rejected"
    assert got["BTC"]["reason"] == f"{why}; outcome wallet_rejected, no order placed: {guard}"
    assert got["ETH"]["reason"] == why and got["ETH"]["outcome"] == "filled"      # a fill's line is unchanged
    counters = d.svc.state.data["counters"]   # `traded` counts tried windows; the outcomes break it down
    assert (counters["traded"], counters["filled"], counters["wallet_rejected"]) == (2, 1, 1)
    handled = {e["asset"]: e for e in d.svc.state.data["windows_handled"]}
    assert handled["BTC"]["outcome"] == "wallet_rejected" and handled["ETH"]["outcome"] == "filled"
    from monitor import status  # `status` reads the saved state: "last window ... traded (outcome)"

    d.svc.state.save()
    doc = {"mode": "paper", "market_url": "-", "monitor": {"state": "stopped"}, "ok": False, "processes": {},
           "signals": {}, "executor": status._executor(d.cfg), "risk": None,
           "trades": {"last": None, "today": {"filled": 0, "wins": 0, "losses": 0, "pnl": 0.0}, "path": "-",
                      "open": []}}
    assert "last window ETH-s traded (filled)" in status.render(doc)


def test_bad_browser_path_refuses_with_one_line(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("METAMASK_PASSWORD", "MODE", "LIVE_CONFIRM")}
    env.update({"STATE_DIR": str(tmp_path / "s"), "LOG_DIR": str(tmp_path / "l"), "PROFILE_DIR": str(tmp_path / "p"),
                "DOTENV_PATH": str(tmp_path / "no.env"), "PYTHONPATH": str(REPO),
                "BROWSER_PATH": str(tmp_path / "no-such-chrome")})
    out = subprocess.run([sys.executable, "-m", "executor"], cwd=str(REPO), env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2
    assert "BROWSER_PATH" in out.stderr and "not an executable" in out.stderr
