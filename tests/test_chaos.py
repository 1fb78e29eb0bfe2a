"""The chaos harness: the audit's rules on hand-made records, the seeded plan, and one short real run
(about 10 SIGKILLs of the executor, its browser, the signal engine and the replica, plus feed
outages and replica faults) whose four bad counts must be zero."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.audit import audit, bad_total
from chaos.run import FAULT_KINDS, KILL_WEIGHTS, Plan
from core.window_grid import iso_utc

REPO = Path(__file__).resolve().parent.parent
ORIGIN = "http://127.0.0.1:5000"
W0 = 1_800_000_000


def order(oid: str, start: int = W0, asset: str = "BTC", request_id: str = "r1", origin: str = ORIGIN) -> dict:
    return {"id": oid, "asset": asset, "window_start": start, "request_id": request_id, "origin": origin}


def ev(event: str, tid: str, ts: float, start: int = W0, **kw) -> dict:
    return {"ts": iso_utc(ts), "event": event, "mode": "demo", "asset": "BTC", "window_start": start,
            "trade_id": tid, **kw}


def sig(ts: float, start: int = W0, stale: bool = False) -> dict:
    return {"ts": ts, "stale": stale, "asset": "BTC", "window_start": start}


SIGNALS = {1: sig(W0 + 1), 2: sig(W0 + 2), 3: sig(W0 + 3)}


def run_audit(orders, journal, signals=SIGNALS, events=(), requests=None) -> dict:
    return audit(orders, journal, signals, list(events), requests or {}, ORIGIN, max_age=5.0, tolerance=1.0)


def clean_trade(tid: str = "t1", oid: str = "ORD-1") -> list[dict]:
    return [ev("intent", tid, W0 + 3.5, signal_seq=3), ev("submitted", tid, W0 + 4),
            ev("filled", tid, W0 + 4.5, order_id=oid)]


def test_audit_clean_run_has_no_bad_count():
    r = run_audit([order("ORD-1")], clean_trade())
    assert bad_total(r) == 0 and r["orders_placed"] == 1 and r["filled"] == 1


def test_audit_reconciled_order_is_not_lost():
    journal = [ev("intent", "t1", W0 + 3.5, signal_seq=3), ev("reconciled", "t1", W0 + 9, order_id="ORD-1"),
               ev("filled", "t1", W0 + 9, order_id="ORD-1", reconciled=True)]
    assert bad_total(run_audit([order("ORD-1")], journal)) == 0


def test_audit_counts_duplicates_on_the_venue_and_in_the_journal():
    r = run_audit([order("ORD-1"), order("ORD-2", request_id="r2")], clean_trade())
    assert r["duplicates_venue"] == 1
    # the second order has no filled record naming it: also a lost record
    assert r["lost_records"] == 1 and r["details"]["lost_records"][0]["order_id"] == "ORD-2"
    journal = clean_trade("t1", "ORD-1") + clean_trade("t2", "ORD-1")
    r = run_audit([order("ORD-1")], journal)
    assert r["duplicates_journal"] == 1 and r["duplicates"] == 1


def test_audit_counts_lost_records_both_ways():
    journal = [ev("intent", "t1", W0 + 3.5, signal_seq=3), ev("failed", "t1", W0 + 9, reason="x")]
    r = run_audit([order("ORD-1")], journal)
    assert r["lost_records"] == 1 and r["details"]["lost_records"][0]["kind"].startswith("order without")
    r = run_audit([], clean_trade())
    assert r["lost_records"] == 1 and r["details"]["lost_records"][0]["trade_id"] == "t1"
    r = run_audit([order("ORD-9")], clean_trade(oid="ORD-1"))
    assert r["lost_records"] == 2  # the order is unnamed and the fill names an order the venue lacks


def test_audit_counts_stale_signal_trades():
    old = [ev("intent", "t1", W0 + 9, signal_seq=1), ev("filled", "t1", W0 + 9.5, order_id="ORD-1")]
    r = run_audit([order("ORD-1")], old)
    assert r["stale_trades"] == 1 and "old at the intent" in r["details"]["stale_trades"][0]["why"][0]
    flagged = {**SIGNALS, 3: sig(W0 + 3, stale=True)}
    assert run_audit([order("ORD-1")], clean_trade(), signals=flagged)["stale_trades"] == 1
    other_window = {**SIGNALS, 3: sig(W0 + 3, start=W0 - 10)}
    assert run_audit([order("ORD-1")], clean_trade(), signals=other_window)["stale_trades"] == 1
    # no seq in the intent, but no signal newer than 5 s existed: stale all the same
    blind = [ev("intent", "t1", W0 + 12), ev("filled", "t1", W0 + 12.5, order_id="ORD-1")]
    r = run_audit([order("ORD-1")], blind)
    assert r["stale_trades"] == 1 and r["unverified_signals"] == 1


def test_audit_counts_malicious_confirmations():
    events = [{"request_id": "r7", "action": "confirmed", "adversary": "wallet_transfer"},
              {"request_id": "r8", "action": "rejected", "adversary": "wallet_approve"}]
    assert run_audit([order("ORD-1")], clean_trade(), events=events)["malicious_confirmed"] == 1
    reqs = {"r1": {"id": "r1", "adversary": "wallet_larger_amount"}}
    assert run_audit([order("ORD-1")], clean_trade(), requests=reqs)["malicious_confirmed"] == 1
    r = run_audit([order("ORD-1", origin="https://evil.example")], clean_trade())
    assert r["malicious_confirmed"] == 1


def test_plan_is_seeded_and_covers_every_kill_kind_first():
    a, b = Plan(5, 2, 8), Plan(5, 2, 8)
    steps_a = [a.next_step() for _ in range(30)]
    assert steps_a == [b.next_step() for _ in range(30)]
    assert {s.action for s in steps_a[:len(KILL_WEIGHTS)]} == set(KILL_WEIGHTS)
    assert all(2 <= s.gap <= 8 for s in steps_a)
    assert {a.next_fault()["kind"] for _ in FAULT_KINDS} == set(FAULT_KINDS)
    assert [s.action for s in steps_a] != [s.action for s in (Plan(6, 2, 8).next_step() for _ in range(30))]


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(420)
def test_short_chaos_run_has_no_bad_count(tmp_path: Path):
    out = tmp_path / "chaos.json"
    proc = subprocess.run(
        [sys.executable, "-m", "chaos", "--kills", "10", "--seed", "3", "--window-seconds", "10",
         "--gap-min", "1.5", "--gap-max", "4", "--fault-probability", "1", "--max-minutes", "5",
         "--system-fault-every", "2",
         "--keep", str(tmp_path / "run"), "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=400)
    assert out.exists(), f"no report; exit {proc.returncode}; stderr tail:\n{proc.stderr[-3000:]}"
    report = json.loads(out.read_text())
    summary = proc.stdout + "\n" + proc.stderr[-2000:]
    a = report["audit"]
    assert report["kills"] == 10, summary
    assert {k: a[k] for k in ("duplicates", "lost_records", "stale_trades", "malicious_confirmed")} == \
        {"duplicates": 0, "lost_records": 0, "stale_trades": 0, "malicious_confirmed": 0}, summary
    assert proc.returncode == 0, summary
    assert a["orders_placed"] >= 1 and a["intents"] >= 3, summary
    assert any("during" in k for k in report["kill_log"]), "no kill landed inside a trade or a wallet popup"
    assert sum(v or 0 for v in report["restarts"].values()) >= 5, report["restarts"]
    assert not report["fatal"], report["fatal"]
    sf = report["system_faults"]           # disk full, held risk lock, second executor, malformed lines
    assert (sf["intents_while_risk_locked"], sf["second_executor_not_refused"]) == (0, 0), sf
    assert len([f for f in sf["armed"] if not f.get("skipped")]) >= 2, sf["armed"]


# ---- bench.run_all and the long run's arithmetic (fast: small stand-in scripts) -----------------------
def _bench(script: Path, name: str = "fake"):
    from bench.run_all import Bench, rows_signal

    return Bench(name, str(script), [], [], 30, 30, extract=rows_signal)


def test_run_all_reports_missing_failing_and_timed_out_benchmarks(tmp_path: Path):
    from bench.run_all import last_json, run_bench

    assert last_json('noise\n{"a": 1}\nmore\n{"b": {"c": 2}}\ntrailer') == {"b": {"c": 2}}
    missing = run_bench(_bench(tmp_path / "nope.py"), quick=False, extra=[], timeout=30)
    assert missing["status"] == "not available" and all(r["value"] is None for r in missing["rows"])
    missed = tmp_path / "missed.py"
    missed.write_text("import json, sys\nprint('table')\n"
                      "print(json.dumps({'latency_ms': {'p50': 3, 'p99': 40}, 'targets': {'latency_p99_ms': 20}}))\n"
                      "sys.exit(1)\n")
    res = run_bench(_bench(missed), quick=False, extra=[], timeout=30)
    p99 = next(r for r in res["rows"] if r["figure"].endswith("p99"))
    assert res["status"] == "target missed" and p99["value"] == 40 and p99["ratio"] == 2.0 and p99["ok"] is False
    crash = tmp_path / "crash.py"
    crash.write_text("raise SystemExit(3)\n")
    assert run_bench(_bench(crash), quick=False, extra=[], timeout=30)["status"] == "error"
    hang = tmp_path / "hang.py"
    hang.write_text("import signal, sys\nif '--help' not in sys.argv:\n    signal.pause()\n")   # killed by the timeout
    assert run_bench(_bench(hang), quick=False, extra=[], timeout=1)["status"] == "timeout"


def test_longrun_growth_compares_late_and_early_medians():
    from bench.bench_longrun import growth

    samples = [{"window": w, "total_pss_mb": 100.0 + (10.0 if w >= 90 else 0.0)} for w in range(100)]
    g = growth(samples, 100)
    assert g["early_mb"] == 100.0 and g["late_mb"] == 110.0 and g["growth_percent"] == 10.0
    flat = growth([{"window": w, "total_pss_mb": 50.0} for w in range(100)], 100)
    assert flat["growth_percent"] == 0.0 and flat["slope_mb_per_100_windows"] == 0.0
