"""The executor killed and restarted (real SIGKILLs), a changed site markup, paper mode, the probe,
and live mode's refusal, against the replica."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.durable_files import file_age
from tests.executor_support import (
    REPO,
    ExecutorProc,
    SignalWriter,
    arm_for_next_window,
    decisions,
    events_for,
    executor_env,
    json_dump,
    state,
    trades,
    wait_for_decision,
    wait_for_outcome,
)
from tests.replica_support import start_replica, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

W = 10
TERMINAL = ("filled", "failed", "wallet_rejected")


@pytest.fixture(scope="module")
def rep(tmp_path_factory):
    r = start_replica(tmp_path_factory.mktemp("replica"), window_seconds=W, assets=("BTC",))
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture
def env(rep, tmp_path, browser_path):
    base = {k: v for k, v in os.environ.items() if k not in ("METAMASK_PASSWORD", "MODE", "LIVE_CONFIRM")}
    base.update({"STATE_DIR": str(tmp_path / "state"), "LOG_DIR": str(tmp_path / "logs"),
                 "PROFILE_DIR": str(tmp_path / "profiles"), "DOTENV_PATH": str(tmp_path / "no.env"),
                 "PYTHONPATH": str(REPO), "BROWSER_PATH": browser_path})
    return executor_env(base, rep, STEP_TIMEOUT="6", ENTRY_END="8", MIN_PRICE="0.01", MAX_PRICE="0.99",
                        MAX_OPEN_EXPOSURE="100000", MAX_CONSECUTIVE_LOSSES="100000", MAX_DAILY_LOSS="100000")


@pytest.fixture
def signals(env):
    sw = SignalWriter({"BTC": Path(env["STATE_DIR"]) / "signal.json"}, W).start()
    try:
        yield sw
    finally:
        sw.stop()


@pytest.fixture
def procs(tmp_path):
    started: list[ExecutorProc] = []

    def start(env: dict, args: tuple[str, ...] = ()) -> ExecutorProc:
        p = ExecutorProc(env, tmp_path / f"run{len(started)}", args).start()
        started.append(p)
        return p

    try:
        yield start
    finally:
        for p in started:
            p.kill()


def orders_for(rep, start: int) -> list[dict]:
    return [o for o in rep.orders() if o["asset"] == "BTC" and o["window_start"] == start]


def last_event(env: dict, start: int) -> str | None:
    ev = events_for(env, "BTC", start)
    return ev[-1] if ev else None


def test_sigkill_between_intent_and_outcome_is_reconciled_never_duplicated(rep, env, signals, procs):
    ex = procs(env)
    wait_until(lambda: state(env).get("status") == "watching", 30, what="the executor to watch the page")

    # A: killed after Buy, while the wallet popup is delayed: the venue holds a pending request only.
    s1 = arm_for_next_window(env, rep, ("BTC",), W, {"BTC": {"kind": "popup_delay", "ms": 5000}})
    wait_until(lambda: any(r["slug"].endswith(str(s1)) and r["status"] == "pending"
                           for r in rep.wallet()["requests"]), W + 5, what="the wallet request of window A")
    assert last_event(env, s1) == "intent"
    ex.kill()
    ex = procs(env)
    ev = wait_for_outcome(env, "BTC", s1, 30, events=("failed",))
    assert ev == ["intent", "failed"], json_dump(trades(env))
    assert orders_for(rep, s1) == []

    # B: killed after the wallet confirm, before the outcome was read: reconciled as filled.
    s2 = arm_for_next_window(env, rep, ("BTC",), W)
    got = wait_until(lambda: (lambda e: e if e in ("submitted", "filled", "failed") else None)(last_event(env, s2)),
                     W + 10, what="window B's submitted")
    ex.kill()
    killed_at_submitted = got == "submitted"
    ex = procs(env)
    ev = wait_for_outcome(env, "BTC", s2, 30, events=("filled", "failed"))
    assert len(orders_for(rep, s2)) == 1
    if killed_at_submitted:
        assert ev == ["intent", "submitted", "reconciled", "filled"], json_dump(trades(env))
    assert ev.count("filled") == 1

    # C: killed as soon as the intent is journaled (mid-click): whatever happened, never two orders,
    # and the journal agrees with the venue.
    s3 = arm_for_next_window(env, rep, ("BTC",), W)
    wait_until(lambda: last_event(env, s3), W + 10, what="window C's intent")
    ex.kill()
    ex = procs(env)
    ev = wait_for_outcome(env, "BTC", s3, 30, events=("filled", "failed"))
    orders = orders_for(rep, s3)
    assert len(orders) <= 1
    assert (ev.count("filled") == 1) == (len(orders) == 1), json_dump(trades(env))

    assert ex.stop() == 0
    # (trading going on after a restart is shown by the markup test and the demo module)

    for s in (s1, s2, s3):
        ev = events_for(env, "BTC", s)
        assert ev.count("intent") == 1 and sum(ev.count(t) for t in TERMINAL) == 1, json_dump(trades(env))
        assert len([d for d in decisions(env) if d["window_start"] == s]) == 1
    assert state(env)["counters"]["reconciled"] >= 1 or not killed_at_submitted


def test_markup_variant_names_the_selector_keeps_watching_and_recovers(rep, env, signals, procs):
    before = {o["id"] for o in rep.orders()}
    rep.faults({"kind": "markup_variant", "mode": "persistent"})
    try:
        ex = procs(env)
        st = wait_until(lambda: (lambda s: s if s.get("status") == "selector_error" else None)(state(env)), 30,
                        what="the executor to report the selector error")
        assert st["selector_error"]["selector"] == "widget.root"
        assert "widget.root" in st["reason"] and "#trade-widget" in st["reason"]
        shots = wait_until(lambda: list((Path(env["LOG_DIR"]) / "screenshots").glob("selector-*.png")), 10,
                           what="the selector error's screenshot")
        assert shots
        start = int(time.time() // W) * W
        line = wait_for_decision(env, "BTC", start, W + 5)
        assert line["action"] == "skipped" and "widget.root" in line["reason"]
        assert "widget.root" in ex.log_text()
        # the probe says the same, selector by selector (its own browser profile)
        probe = subprocess.run([sys.executable, "-m", "executor", "--probe"], cwd=str(REPO), capture_output=True,
                               text=True, timeout=60, env={**env, "CHROME_PROFILE": "probe"})
        assert probe.returncode == 1, probe.stdout + probe.stderr
        assert "MISSING  widget.root[BTC]" in probe.stdout
        assert ex.running() and file_age(Path(env["STATE_DIR"]) / "heartbeat" / "executor") < 3
        assert trades(env) == [] and {o["id"] for o in rep.orders()} == before
    finally:
        rep.clear_faults()
    # the site is fixed: the executor reloads at the next window and trades again
    got = wait_until(lambda: [t for t in trades(env) if t["event"] == "filled"], 3 * W,
                     what="a trade after the markup came back")
    assert got and state(env)["status"] in ("watching", "trading")
    probe = subprocess.run([sys.executable, "-m", "executor", "--probe"], cwd=str(REPO), capture_output=True,
                           text=True, timeout=60, env={**env, "CHROME_PROFILE": "probe"})
    assert probe.returncode == 0, probe.stdout + probe.stderr
    assert "OK       widget.outcome_button[BTC/Up]" in probe.stdout
    assert ex.stop() == 0


def test_paper_mode_journals_simulated_fills_and_sends_no_order(tmp_path, env, procs):
    paper_rep = start_replica(tmp_path / "paper-replica", window_seconds=900, assets=("BTC",))
    try:
        market = paper_rep.markets()[0]
        prob = 0.999 if market["up"] < 0.9 else 0.001
        penv = {**env, "MODE": "paper", "MARKET_URL": paper_rep.market_url, "SITE_PROFILE": "polymarket",
                "WINDOW_SECONDS": "900", "STRATEGY": "edge", "ENTRY_START": "0", "ENTRY_END": "900",
                "SIGNAL_MAX_AGE": "5", "GAMMA_URL": paper_rep.base_url + "/gamma",
                "CLOB_URL": paper_rep.base_url + "/clob"}
        penv.pop("METAMASK_PASSWORD")
        sw = SignalWriter({"BTC": Path(penv["STATE_DIR"]) / "signal.json"}, 900).start()
        sw.set("BTC", prob_up=prob)
        try:
            ex = procs(penv)
            fill = wait_until(lambda: [t for t in trades(penv) if t["event"] == "filled"], 40,
                              what="a simulated fill")[0]
            assert ex.stop() == 0
        finally:
            sw.stop()
        assert fill["simulated"] is True and fill["mode"] == "paper" and 0 < fill["price"] < 1
        assert fill["side"] == ("UP" if prob > 0.5 else "DOWN")
        assert paper_rep.orders() == [] and paper_rep.wallet()["requests"] == []
        assert [t["event"] for t in trades(penv)] == ["intent", "filled"]
    finally:
        paper_rep.stop()


def test_live_without_password_refuses_with_one_line(env, tmp_path):
    lenv = {**env, "MODE": "live", "LIVE_CONFIRM": "I_UNDERSTAND", "WINDOW_SECONDS": "900",
            "SITE_PROFILE": "polymarket", "MARKET_URL": "http://127.0.0.1:9/crypto/15M", "ENTRY_END": "600",
            "CHROME_PROFILE": "live-test"}
    lenv.pop("METAMASK_PASSWORD")
    for var in ("MAX_OPEN_EXPOSURE", "MAX_CONSECUTIVE_LOSSES", "MAX_DAILY_LOSS"):   # live keeps its guard caps
        lenv.pop(var)
    out = subprocess.run([sys.executable, "-m", "executor"], cwd=str(REPO), capture_output=True, text=True,
                         timeout=60, env=lenv)
    assert out.returncode == 2, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if "METAMASK_PASSWORD" in ln]
    assert len(lines) == 1 and "live mode" in lines[0]
    assert not list((Path(env["LOG_DIR"])).glob("trades.jsonl"))


def test_a_second_executor_on_the_same_state_refuses_naming_the_first(env, signals, procs):
    first = procs(env)
    wait_until(lambda: state(env).get("status") in ("watching", "trading"), 90, what="the first executor watching")
    second = procs(env)
    assert second.wait(60) == 2
    text = second.log_text()
    lines = [ln for ln in text.splitlines() if "already in use" in ln]
    assert len(lines) == 1 and f"pid {first.pid}" in lines[0], text
    assert first.running() and state(env).get("pid") == first.pid     # the second never touched executor.json
    # paper/live: another state directory but the same browser profile (the wallet) is refused too
    other = {**env, "MODE": "paper", "WINDOW_SECONDS": "900", "ENTRY_END": "600", "SITE_PROFILE": "polymarket",
             "STATE_DIR": env["STATE_DIR"] + "-2", "LOG_DIR": env["LOG_DIR"] + "-2", "CHROME_PROFILE": "wallet"}
    paper = procs(other)
    wait_until(lambda: state(other).get("status") in ("watching", "trading"), 90, what="the paper executor")
    clash = procs({**other, "STATE_DIR": env["STATE_DIR"] + "-3", "LOG_DIR": env["LOG_DIR"] + "-3"})
    assert clash.wait(60) == 2 and f"pid {paper.pid}" in clash.log_text() and "browser profile" in clash.log_text()
    assert first.stop() == 0 and paper.stop() == 0
    third = procs(env)                                                  # the lock went with the first process
    wait_until(lambda: state(env).get("pid") == third.pid, 90, what="a new executor taking over")
