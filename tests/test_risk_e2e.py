"""End to end for the risk guards (issue 6's "done when"): `./supervisor.sh start` runs the real demo
(replica, signal engine, executor with real Chromium) over short windows; trades settle from the
replica's page with P&L in `status` and `report`; the first losing settlement halts trading
(MAX_CONSECUTIVE_LOSSES=1: the forced losing streak); `restart` keeps the halt and the executor journals
`halted` skips; `resume` frees it and a new intent follows; `stop` leaves nothing behind."""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path

import pytest

from core.durable_files import read_jsonl
from core.window_grid import parse_iso_utc, utc_day
from monitor.procs import Ident
from tests.supervisor_support import Tracker, process_alive, run_sup, wait_for

WINDOW = 12
# The demo trades nearly every window and loses roughly 40-50 % of them (3 wins in a row seen). The wait
# for the first loss usually ends within 1-4 windows; the bound is 14 windows so that a long winning run
# (at a 60 % win rate, 13 in a row is ~0.1 %) does not fail the test.
LOSS_WITHIN = 14 * WINDOW

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ts(rec: dict) -> float:
    return parse_iso_utc(rec["ts"])


def _status(env: dict) -> dict:
    r = run_sup(env, "status", "--json")
    assert r.stdout.strip(), f"status --json printed nothing (exit {r.returncode}): {r.stderr}"
    return json.loads(r.stdout)


def _is_halt_skip(reason: str) -> bool:
    # The executor prefixes the guard's reason ("halted: ...") with "risk: ".
    return reason.removeprefix("risk: ").startswith("halted")


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="checks leftovers through /proc")
def test_demo_losing_streak_halts_survives_restart_and_resume_frees(iso_env, tmp_path):
    env = dict(iso_env)
    env.update(DOTENV_PATH=str(tmp_path / "e2e.env"), WINDOW_SECONDS=str(WINDOW),
               REPLICA_PORT=str(_free_port()), REPLICA_WALLET_PORT=str(_free_port()),
               DASHBOARD_PORT=str(_free_port()))
    # MAX_SLIPPAGE: the replica's quotes are noisy; this test is about the risk guard, not the price check.
    (tmp_path / "e2e.env").write_text("MODE=demo\nMAX_SLIPPAGE=0.98\nMAX_CONSECUTIVE_LOSSES=1\n")
    state, logs = Path(env["STATE_DIR"]), Path(env["LOG_DIR"])
    trades_path, decisions_path = logs / "trades.jsonl", logs / "decisions.jsonl"
    tracker = Tracker(state)

    def events(name: str) -> list[dict]:
        return [e for e in read_jsonl(trades_path) if e.get("event") == name]

    def executor_watching():
        try:
            return json.loads((state / "executor.json").read_text()).get("status") in ("watching", "trading")
        except (OSError, ValueError):
            return False  # not written yet, or mid-replace

    try:
        # ---- start; trade until the first loss halts ------------------------------------------------
        r = run_sup(env, "start", timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        wait_for(lambda: run_sup(env, "status").returncode == 0, 30, "status exit 0 (all running)")
        tracker.note_all()
        wait_for(executor_watching, 45, "executor watching the market page")

        lost = wait_for(lambda: [e for e in events("settled") if e.get("outcome") == "lost"], LOSS_WITHIN,
                        "a losing settlement in logs/trades.jsonl")[0]
        assert lost["mode"] == "demo" and lost["pnl"] < 0 and lost["payout"] == 0
        halted = wait_for(lambda: (s := _status(env)).get("risk", {}).get("halted") and s, 10,
                          "status --json showing the risk guard halted")["risk"]
        assert halted["halt_kind"] == "consecutive_losses", halted
        assert "MAX_CONSECUTIVE_LOSSES=1" in halted["halt_reason"]
        assert halted["losses"] >= 1
        halted_at = float(halted["halted_at"])
        assert halted_at >= _ts(lost) - 1

        # Settled trades with P&L in status and report. Trades opened before the halt may still settle:
        # wait until every intent has an outcome and every fill is settled (halted: nothing new starts).
        def quiet():
            recs = list(read_jsonl(trades_path))
            ended = {e["trade_id"] for e in recs if e.get("event") in ("filled", "failed", "wallet_rejected")}
            done = {e["trade_id"] for e in recs if e.get("event") == "settled"}
            filled = {e["trade_id"] for e in recs if e.get("event") == "filled"}
            intents = {e["trade_id"] for e in recs if e.get("event") == "intent"}
            return intents <= ended and filled <= done

        wait_for(quiet, 2 * WINDOW + 10, "every trade opened before the halt filled/failed and settled")
        st = _status(env)
        settled = events("settled")
        today = utc_day(time.time())
        pnl_today = round(sum(s["pnl"] for s in settled if utc_day(_ts(s)) == today), 4)
        assert st["risk"]["pnl_today"] == pytest.approx(pnl_today, abs=1e-6)
        assert st["trades"]["today"]["pnl"] == pytest.approx(pnl_today, abs=1e-4)
        assert st["risk"]["losses"] == sum(1 for s in settled if s["outcome"] == "lost" and utc_day(_ts(s)) == today)
        text = run_sup(env, "status").stdout
        assert re.search(r"risk\s+HALTED \(consecutive_losses\)", text), text
        assert f"P&L {pnl_today:+.2f}" in text, text

        rep = run_sup(env, "report", timeout=60)
        assert rep.returncode == 0, rep.stdout + rep.stderr
        row = re.search(rf"^{today}\s+(\d+)\s+(\d+)\s+(\d+)\s+\S+\s+[\d.]+\s+([+-][\d.]+)\s", rep.stdout, re.M)
        assert row, rep.stdout
        day_settled = [s for s in settled if utc_day(_ts(s)) == today]
        assert int(row[1]) == len(day_settled) and int(row[3]) >= 1, rep.stdout
        assert float(row[4]) == pytest.approx(pnl_today, abs=0.006), rep.stdout
        assert (logs / "equity.png").stat().st_size > 0

        # ---- restart: still halted; the executor journals halted skips, no new intent --------------
        restarted = time.time()
        r = run_sup(env, "restart", timeout=180)
        assert r.returncode == 0, r.stdout + r.stderr
        wait_for(lambda: run_sup(env, "status").returncode == 0, 30, "status exit 0 after restart")
        tracker.note_all()
        st = _status(env)
        assert st["risk"]["halted"] and st["risk"]["halted_at"] == halted["halted_at"], st["risk"]
        halt_skips = wait_for(
            lambda: [d for d in read_jsonl(decisions_path) if _ts(d) >= restarted
                     and d.get("action") == "skipped" and _is_halt_skip(str(d.get("reason", "")))],
            45 + 3 * WINDOW, "a `halted` skip in logs/decisions.jsonl for a window after the restart")
        assert "MAX_CONSECUTIVE_LOSSES=1" in halt_skips[0]["reason"]
        assert not [d for d in read_jsonl(decisions_path) if _ts(d) >= restarted
                    and d.get("action") == "traded"], "a window after the restart was traded while halted"
        assert _status(env)["risk"]["halted"], "the halt cleared itself"
        intents_when_halted = events("intent")
        assert not [i for i in intents_when_halted if _ts(i) > halted_at + 0.001], "an intent after the halt"

        # ---- resume: free again, and the executor trades ----------------------------------------
        r = run_sup(env, "resume")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "cleared halt (consecutive_losses)" in r.stdout, r.stdout
        resumed = time.time()
        assert not _status(env)["risk"]["halted"]
        new = wait_for(lambda: [i for i in events("intent") if _ts(i) >= resumed - 0.5], 4 * WINDOW,
                       "a new intent after resume")
        assert len(events("intent")) > len(intents_when_halted) and new[0]["mode"] == "demo"
        tid = new[0]["trade_id"]
        outcome = wait_for(lambda: [e for e in read_jsonl(trades_path) if e.get("trade_id") == tid
                                    and e.get("event") in ("filled", "failed", "wallet_rejected")], 20,
                           f"the outcome of {tid}")[0]
        assert outcome["event"] == "filled", outcome

        # ---- stop leaves nothing ------------------------------------------------------------------
        tracker.note_all()
        mon = tracker.note("monitor")
        r = run_sup(env, "stop", timeout=120)
        assert r.returncode == 0, r.stderr
        left = [i.pid for i in tracker.seen if isinstance(i, Ident) and i.alive()]
        assert not left, f"left running after stop: {left}"
        assert not list((state / "pids").glob("*.json"))
        assert mon is None or not process_alive(mon["pid"])
    finally:
        run_sup(env, "stop", timeout=120)
        tracker.kill_leftovers()
