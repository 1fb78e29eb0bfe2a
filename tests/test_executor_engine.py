"""The engine in-process with a real venue: the browser venue (demo) and the paper venue run the
same tests against the replica in real Chromium; the risk gate fails closed.

Each test builds the executor's real parts (executor.worker.Worker) on its own state and log
directories, opens the venue, and steps the engine until what it waits for is journaled.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from core.config import DEMO_WALLET_PASSWORD, load_config
from core.durable_files import read_json, read_jsonl
from core.strikes import read_strikes
from executor.worker import Worker
from risk.guards import RiskBook
from tests.executor_support import SignalWriter
from tests.fs_support import (
    fill_up,
    tiny_fs,  # noqa: F401 - a fixture
)
from tests.replica_support import start_replica

pytestmark = [pytest.mark.browser, pytest.mark.slow]

W = 900


@pytest.fixture
def rep(tmp_path_factory):
    # One per test: no test sees another's orders in the same window. The replica with its default
    # wallet password, as `python -m replica` starts without one.
    r = start_replica(tmp_path_factory.mktemp("engine-replica"), window_seconds=W, assets=("BTC", "ETH"),
                      password=DEMO_WALLET_PASSWORD)
    try:
        yield r
    finally:
        r.stop()


def edge_prob(rep, asset: str) -> float:
    market = next(m for m in rep.markets() if m["asset"] == asset)
    return 0.999 if market["up"] < 0.9 else 0.001


def make_env(tmp_path: Path, rep, browser_path: str, mode: str, assets: tuple[str, ...], **over: str) -> dict:
    env = {"MODE": mode, "MARKET_URL": rep.market_url, "SITE_PROFILE": "polymarket", "WINDOW_SECONDS": str(W),
           "ASSETS": ",".join(assets), "STRATEGY": "edge", "ENTRY_START": "0", "ENTRY_END": str(W),
           "SIGNAL_MAX_AGE": "5", "STEP_TIMEOUT": "6", "HEADLESS": "1", "POSITION_SIZE": "10",
           "MAX_SLIPPAGE": "0.98", "MIN_PRICE": "0.01", "MAX_PRICE": "0.99",
           "STATE_DIR": str(tmp_path / "state"), "LOG_DIR": str(tmp_path / "logs"),
           "PROFILE_DIR": str(tmp_path / "profiles"), "BROWSER_PATH": browser_path,
           "GAMMA_URL": rep.base_url + "/gamma", "CLOB_URL": rep.base_url + "/clob"}
    env.update(over)
    return env


class Rig:
    """A Worker's parts, opened on the replica; `run_until` steps the engine (no METAMASK_PASSWORD:
    in demo the replica's default wallet password applies, as for a standalone executor)."""

    def __init__(self, env: dict, rep):
        self.env, self.rep = env, rep
        self.cfg = load_config(env, dotenv_path=Path(env["STATE_DIR"]) / "no.env")
        self.sw = SignalWriter({a: self.cfg.signal_path_for(a) for a in self.cfg.assets}, W)
        for a in self.cfg.assets:
            self.sw.fields[a]["prob_up"] = edge_prob(rep, a)

    def __enter__(self) -> Rig:
        self.sw.start()
        self.worker = Worker(self.cfg)
        self.pw = sync_playwright().start()
        w = self.worker
        w.risk.start()
        w.signals.start()
        w.venue.open(self.pw, w.engine.windows.on_event)
        w._opened()
        return self

    def __exit__(self, *exc) -> None:
        self.worker.venue.close()
        self.worker.signals.stop()
        self.pw.stop()
        self.sw.stop()

    def run_until(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        w = self.worker
        while time.monotonic() < deadline:
            w.venue.check_alive()
            w.svc.tick()
            w.engine.step()
            value = predicate()
            if value:
                return value
            w.venue.pause(50)
        raise AssertionError(f"{what} did not happen within {timeout:g}s")

    def decided(self, asset: str):
        cur = self.worker.engine.windows.current.get(asset)
        return cur is not None and cur.decided and self.worker.svc.decisions.done(asset, cur.start) and cur

    def events(self, asset: str) -> list[str]:
        return [e["event"] for e in self.worker.svc.journal.events() if e["asset"] == asset]

    def orders(self, asset: str) -> list[dict]:
        return [o for o in self.rep.orders() if o["asset"] == asset and o["window_start"] == int(time.time() // W) * W]


# ---- the same engine tests for both venues ---------------------------------------------------------
@pytest.mark.parametrize("mode", ["demo", "paper"])
def test_one_order_per_window_and_none_after_a_restart(tmp_path, rep, browser_path, mode):
    env = make_env(tmp_path, rep, browser_path, mode, ("BTC",))
    with Rig(env, rep) as rig:
        before, requests = len(rig.orders("BTC")), len(rep.wallet()["requests"])
        rig.run_until(lambda: rig.decided("BTC"), 60, "the window's decision")
        events = rig.events("BTC")
        assert events == (["intent", "submitted", "filled"] if mode == "demo" else ["intent", "filled"])
        placed = rig.orders("BTC")[before:]
        if mode == "demo":
            assert len(placed) == 1
        else:
            assert placed == [] and len(rep.wallet()["requests"]) == requests   # paper never clicks Buy
        risk = rig.worker.risk.book.status(time.time())
        assert risk["trades_today"] == 1 and risk["open_exposure"] == pytest.approx(10.0)
        rig.worker.svc.state.save()
        assert read_json(rig.cfg.executor_state_path).data["status"] == "watching"
        # the window's price to beat went on to the signal engine (STATE_DIR/strikes.json), from the page
        cur = rig.worker.engine.windows.current["BTC"]
        rig.run_until(lambda: "BTC" in read_strikes(rig.cfg.state_dir)[0], 30, "the price to beat recorded")
        strike = read_strikes(rig.cfg.state_dir)[0]["BTC"]
        assert strike.window_start in (cur.start, cur.start + W) and strike.source == "page"
        assert strike.price_to_beat > 0
    with Rig(env, rep) as again:                                  # a restart inside the traded window
        again.run_until(lambda: again.decided("BTC"), 60, "the restarted engine seeing the window")
        assert again.events("BTC") == events and len(again.orders("BTC")) == before + len(placed)


# ---- risk fails closed ------------------------------------------------------------------------------
def _no_order(rig: Rig, asset: str) -> str:
    cur = rig.run_until(lambda: rig.decided(asset), 60, "the window's decision")
    assert rig.events(asset) == []
    line = [d for d in _decisions(rig) if d["asset"] == asset and d["window_start"] == cur.start]
    assert len(line) == 1 and line[0]["action"] == "skipped"
    return line[0]["reason"]


def _decisions(rig: Rig) -> list[dict]:
    return read_jsonl(rig.cfg.decisions_path)


def test_unusable_risk_json_means_no_order_and_status_says_why(tmp_path, rep, browser_path):
    env = make_env(tmp_path, rep, browser_path, "demo", ("ETH",))
    (tmp_path / "state" / "risk.json").mkdir(parents=True)          # cannot be read nor replaced
    with Rig(env, rep) as rig:
        assert rig.worker.risk.fault and "could not start" in rig.worker.risk.fault
        reason = _no_order(rig, "ETH")
        assert "risk book unavailable" in reason
        rig.worker.svc.state.save()
        st = read_json(rig.cfg.executor_state_path).data
        assert st["status"] == "risk_error" and "risk book could not start" in st["reason"]


def test_risk_lock_held_past_its_timeout_means_no_order(tmp_path, rep, browser_path, monkeypatch):
    import risk.guards
    monkeypatch.setattr(risk.guards, "LOCK_TIMEOUT_S", 0.5)
    env = make_env(tmp_path, rep, browser_path, "demo", ("ETH",))
    lock = tmp_path / "state" / "risk.json.lock"
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from filelock import FileLock;"
                               " l = FileLock(sys.argv[1]); l.acquire(); print('held', flush=True); sys.stdin.read()",
                               str(lock)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with Rig(env, rep) as rig:
            assert "Timeout" in (rig.worker.risk.fault or "")
            assert "risk book unavailable" in _no_order(rig, "ETH")
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)


def test_a_fill_the_risk_book_cannot_record_halts_until_resume(tmp_path, rep, browser_path, monkeypatch):
    calls = []

    def broken_on_fill(self, trade_id, *args, **kwargs):
        calls.append(trade_id)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(RiskBook, "on_fill", broken_on_fill)
    env = make_env(tmp_path, rep, browser_path, "demo", ("BTC", "ETH"))
    with Rig(env, rep) as rig:
        rig.run_until(lambda: rig.decided("BTC") and rig.decided("ETH"), 90, "both windows' decisions")
        traded = [a for a in ("BTC", "ETH") if rig.events(a)]
        assert len(traded) == 1 and len(calls) == 1, "exactly one trade, then the halt"
        other = "ETH" if traded == ["BTC"] else "BTC"
        assert rig.events(other) == []
        book = RiskBook(rig.cfg).status(time.time())
        assert book["halted"] and "could not record fill" in book["halt_reason"]
        assert book["trades_today"] == 1         # the rebuild replayed the fill from the journal
    assert RiskBook(rig.cfg).check("BTC", 0, 1.0).startswith("halted: could not record fill")
    RiskBook(rig.cfg).resume()
    assert RiskBook(rig.cfg).check("BTC", 0, 1.0) is None


# ---- disk full is a state, not a crash -------------------------------------------------------------
def test_disk_full_means_no_order_then_trading_resumes_by_itself(tmp_path, rep, browser_path, tiny_fs,  # noqa: F811
                                                                 monkeypatch):
    import executor.engine

    monkeypatch.setattr(executor.engine, "WRITE_RETRY_S", 0.2)
    env = make_env(tmp_path, rep, browser_path, "demo", ("ETH",), LOG_DIR=str(tiny_fs))
    filler = tiny_fs / "filler"
    assert fill_up(filler) > 0
    with Rig(env, rep) as rig:
        before = len(rig.orders("ETH"))
        rig.run_until(lambda: rig.worker.engine.write_fault, 60, "the failed intent write")
        assert rig.events("ETH") == [] and len(rig.orders("ETH")) == before   # no intent on disk: no click
        assert rig.worker.svc.state.data["status"] == "write_error"
        assert not (tiny_fs / "trades.jsonl").exists() or (tiny_fs / "trades.jsonl").read_bytes() == b""
        filler.unlink()                                                        # space comes back
        rig.run_until(lambda: rig.decided("ETH"), 60, "the trade after the disk was freed")
        assert rig.events("ETH") == ["intent", "submitted", "filled"] and len(rig.orders("ETH")) == before + 1
        assert rig.worker.engine.write_fault is None and rig.worker.svc.state.data["status"] == "watching"


# ---- defence in depth: the venue's own record before the first click --------------------------------
def test_an_order_the_venue_already_holds_is_adopted_not_bought_again(tmp_path, rep, browser_path):
    env = make_env(tmp_path, rep, browser_path, "demo", ("ETH",))
    with Rig(env, rep) as rig:
        placed = rep.place_order("ETH", "UP", "7")          # e.g. a run that died before its intent was durable
        before = rig.orders("ETH")
        assert placed and any(o["amount"] == 7 or str(o["amount"]) in ("7", "7.0", "7.00") for o in before)
        slug = next(m["slug"] for m in rep.markets() if m["asset"] == "ETH")
        venue, deadline = rig.worker.venue, time.monotonic() + 30
        while venue.existing_order("ETH", slug) is None:   # the venue's own record shows it, live
            assert time.monotonic() < deadline, "the event page's History never showed the order placed by hand"
            venue.pause(100)
        rig.run_until(lambda: rig.decided("ETH"), 60, "the window's decision")
        assert rig.events("ETH") == ["intent", "reconciled", "filled"]
        assert rig.orders("ETH") == before                                # nothing bought
        intent = rig.worker.svc.journal.intent_for("ETH", rig.decided("ETH").start)
        fill = rig.worker.svc.journal.trades[intent["trade_id"]].first(rig.worker.svc.journal.trades[
            intent["trade_id"]].state)
        assert intent["adopted"] is True and fill["order_id"] in {o["id"] for o in before}
        assert rig.worker.risk.book.status(time.time())["open_positions"] == 1   # its exposure is counted
