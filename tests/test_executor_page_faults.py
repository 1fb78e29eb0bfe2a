"""The Polymarket venue (executor/event_tabs.py, executor/pages.py) against the rebuilt replica's page
faults: one executor process, four assets side by side (20 s windows), each asset a different fault.

- the hidden duplicate widget first in the page, and a late price to beat: traded anyway, once;
- a trade button reading "Deposit" or "Log in": the window is refused, no intent, no wallet request;
- a remembered Limit + Sell preference: switched to Buy + Market before typing, then traded;
- page and API disagreeing on the window, the token or the price: the window refused, the reason logged;
- an event page answering 500: the hub's link to the window is followed, and the window traded.
The faults are persistent for their asset (the 500 one-shot), so a window whose page was opened
after they were armed shows them. Tests run in file order on one timeline (module-scoped rig)."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.executor_support import (
    ExecutorProc,
    SignalWriter,
    decisions,
    events_for,
    executor_env,
    json_dump,
    state,
    trades,
    wait_for_outcome,
)
from tests.replica_support import Replica, start_replica, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

W = 20
ASSETS = ("BTC", "ETH", "SOL", "XRP")
FILLED = ["intent", "submitted", "filled"]
FIRST_FAULTS = {"BTC": ["widget_hidden_first", "price_to_beat_late"], "ETH": ["widget_deposit"],
                "SOL": ["logged_out"], "XRP": ["widget_limit_sell"]}


@dataclass
class Rig:
    rep: Replica
    env: dict
    ex: ExecutorProc
    armed_at: float


def arm(rep: Replica, faults: dict[str, list[str]], once: dict[str, list[str]] | None = None) -> float:
    rep.clear_faults()
    specs = [{"kind": k, "mode": "persistent", "asset": a} for a, kinds in faults.items() for k in kinds]
    specs += [{"kind": k, "asset": a} for a, kinds in (once or {}).items() for k in kinds]
    rep.faults(*specs)
    return time.time()


@pytest.fixture(scope="module")
def rig(tmp_path_factory, browser_path):
    wd = tmp_path_factory.mktemp("page_faults")
    rep = start_replica(wd / "replica", window_seconds=W, assets=ASSETS)
    base = {k: v for k, v in os.environ.items() if k not in ("METAMASK_PASSWORD", "MODE", "LIVE_CONFIRM")}
    base.update({"STATE_DIR": str(wd / "state"), "LOG_DIR": str(wd / "logs"), "PROFILE_DIR": str(wd / "profiles"),
                 "DOTENV_PATH": str(wd / "no.env"), "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
                 "BROWSER_PATH": browser_path})
    env = executor_env(base, rep, ASSETS=",".join(ASSETS), ENTRY_END="17", MIN_PRICE="0.01", MAX_PRICE="0.99",
                       MAX_OPEN_EXPOSURE="100000", MAX_CONSECUTIVE_LOSSES="100000", MAX_DAILY_LOSS="100000",
                       MAX_TRADES_PER_DAY="100000")
    paths = {a: wd / "state" / ("signal.json" if a == ASSETS[0] else f"signal-{a.lower()}.json") for a in ASSETS}
    sw = SignalWriter(paths, W).start()
    armed_at = arm(rep, FIRST_FAULTS)            # before the executor opens any page
    ex = ExecutorProc(env, wd).start()
    try:
        yield Rig(rep, env, ex, armed_at)
    finally:
        ex.stop()
        sw.stop()
        rep.stop()


def first_full_window(rig: Rig, after: float) -> int:
    """The first window that started after `after` while the executor was watching."""
    wait_until(lambda: state(rig.env).get("status") in ("watching", "trading"), 90, what="the executor watching")
    t = max(after, time.time())
    return (int(t // W) + 1) * W


def decided(rig: Rig, start: int) -> dict[str, dict]:
    """Each asset's decision line of the window (and, when traded, its outcome in the journal)."""
    def lines():
        got = {d["asset"]: d for d in decisions(rig.env) if d["window_start"] == start}
        return got if set(got) == set(ASSETS) else None
    got = wait_until(lines, 3 * W, what=f"the decision lines of window {start}")
    for a, d in got.items():
        if d["action"] == "traded":
            wait_for_outcome(rig.env, a, start, 2 * W)
    return got


def wallet_requests(rig: Rig, asset: str, start: int) -> list[dict]:
    return [r for r in rig.rep.wallet()["requests"] if r["asset"] == asset and r["slug"].endswith(f"-{start}")]


def orders(rig: Rig, asset: str, start: int) -> list[dict]:
    return [o for o in rig.rep.orders() if o["asset"] == asset and o["window_start"] == start]


def test_hidden_copy_late_price_to_beat_deposit_log_in_and_limit_sell(rig: Rig):
    start = first_full_window(rig, rig.armed_at)
    got = decided(rig, start)
    for a in ("BTC", "XRP"):      # hidden copy first + no price to beat / Limit+Sell switched back: traded once
        assert events_for(rig.env, a, start) == FILLED, json_dump(trades(rig.env))
        assert len(orders(rig, a, start)) == 1 and got[a]["action"] == "traded"
    for a, word in (("ETH", "Deposit"), ("SOL", "Log in")):   # not an order: refused before any intent
        assert got[a]["action"] == "skipped" and "refused" in got[a]["reason"] and word in got[a]["reason"], got[a]
        assert events_for(rig.env, a, start) == [] and wallet_requests(rig, a, start) == []


def test_page_and_api_disagree_and_a_failing_event_page(rig: Rig):
    armed = arm(rig.rep, {"BTC": ["page_other_window"], "ETH": ["page_other_token"], "SOL": ["page_price_skew"]},
                once={"XRP": ["page_500"]})
    start = first_full_window(rig, armed + W)    # the window after next: its pages open after the faults
    got = decided(rig, start)
    for a, what in (("BTC", "window"), ("ETH", "token"), ("SOL", "price")):
        line = got[a]
        assert line["action"] == "skipped" and f"disagree on the {what}" in line["reason"], line
        assert events_for(rig.env, a, start) == [] and wallet_requests(rig, a, start) == []
    rig.rep.clear_faults()
    hub = re.findall(r"XRP: opened xrp-updown-20s-(\d+) through the hub", rig.ex.log_text())
    assert hub, rig.ex.log_text()[-3000:]
    via_hub = int(hub[-1])
    assert "answered HTTP 500" in rig.ex.log_text()
    assert wait_for_outcome(rig.env, "XRP", via_hub, 3 * W) == FILLED, json_dump(trades(rig.env))
    assert len(orders(rig, "XRP", via_hub)) == 1
