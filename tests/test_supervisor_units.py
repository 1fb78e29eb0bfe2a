"""Unit-level checks of the supervisor's Python half: back-off, rotation, process identity."""

from __future__ import annotations

import os
import subprocess
import sys

from monitor.procs import Ident, descendants, ident_of, signal_group
from monitor.rotate import rotate_logs
from monitor.settings import Knobs, knobs_from_env


def test_backoff_doubles_from_one_second_up_to_sixty():
    k = Knobs()
    assert [k.backoff(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert knobs_from_env({}).max_fails == 5


def test_rotation_rotates_logs_never_journals(tmp_path):
    big = b"x" * 5000
    (tmp_path / "executor.log").write_bytes(big)
    (tmp_path / "small.log").write_bytes(b"ok\n")
    (tmp_path / "trades.jsonl").write_bytes(big)
    (tmp_path / "decisions.jsonl").write_bytes(big)
    assert rotate_logs(tmp_path, 1024, 2) == [tmp_path / "executor.log"]
    assert (tmp_path / "executor.log").stat().st_size == 0
    assert (tmp_path / "executor.log.1").read_bytes() == big
    (tmp_path / "executor.log").write_bytes(b"y" * 2000)
    rotate_logs(tmp_path, 1024, 2)
    assert (tmp_path / "executor.log.2").read_bytes() == big
    assert (tmp_path / "executor.log.1").read_bytes() == b"y" * 2000
    assert (tmp_path / "trades.jsonl").read_bytes() == big and (tmp_path / "decisions.jsonl").read_bytes() == big
    assert not (tmp_path / "trades.jsonl.1").exists() and (tmp_path / "small.log").read_bytes() == b"ok\n"


def test_identity_tells_a_reused_pid_from_ours():
    p = subprocess.Popen([sys.executable, "-c", "import time\nwhile True: time.sleep(1)"], start_new_session=True)
    try:
        me = ident_of(p.pid)
        assert me is not None and me.alive() and me.pgid == p.pid
        assert not Ident(p.pid, "linux:1", p.pid).alive()
        assert not Ident(p.pid, me.start, os.getpgrp()).alive()
        assert not signal_group(Ident(p.pid, "ps:never", p.pid), 9)
        assert p.poll() is None
        assert descendants(os.getpid()) and any(d.pid == p.pid for d in descendants(os.getpid()))
    finally:
        p.kill()
        p.wait(timeout=10)
    assert not me.alive()


def test_identity_without_proc_uses_ps(monkeypatch):
    """The macOS path (no /proc): start times from `ps -o lstart=`, the tree from `ps -A`."""
    import monitor.procs as procs

    p = subprocess.Popen([sys.executable, "-c", "import time\nwhile True: time.sleep(1)"], start_new_session=True)
    try:
        monkeypatch.setattr(procs, "_HAVE_PROC", False)
        me = procs.ident_of(p.pid)
        assert me is not None and me.start.startswith("ps:") and me.alive()
        assert any(d.pid == p.pid for d in procs.descendants(os.getpid()))
        assert not procs.Ident(p.pid, "ps:Thu Jan  1 00:00:00 1970", p.pid).alive()
    finally:
        p.kill()
        p.wait(timeout=10)
    assert procs.start_time(p.pid) is None


def test_status_does_not_show_yesterdays_risk_counters_as_today(tmp_path):
    import json as _json

    from core.config import load_config
    from monitor import status as status_mod

    cfg = load_config({"STATE_DIR": str(tmp_path), "LOG_DIR": str(tmp_path), "PROFILE_DIR": str(tmp_path)},
                      dotenv_path=tmp_path / "no.env")
    (tmp_path / "risk.json").write_text(_json.dumps({
        "day": "2026-01-01", "trades_today": 3, "wins": 1, "losses": 2, "pnl_today": -5.0,
        "halted": True, "halt_reason": "5 consecutive losses", "consecutive_losses": 5}))
    same_day = status_mod._risk(cfg, 1767268800.0)        # 2026-01-01T12:00Z
    next_day = status_mod._risk(cfg, 1767268800.0 + 86400)
    assert same_day["trades_today"] == 3 and same_day["pnl_today"] == -5.0
    assert next_day["day"] == "2026-01-02" and next_day["trades_today"] == 0 and next_day["pnl_today"] == 0
    assert next_day["halted"] and next_day["consecutive_losses"] == 5   # a halt never lapses by itself


def test_demo_signal_engine_reads_the_replica_unless_the_user_chose_feeds(tmp_path):
    """Demo: FEEDS=replica for the signal engine child by default; a FEEDS from env or .env is kept."""
    from core.config import load_config
    from monitor.settings import default_children

    base = {"STATE_DIR": str(tmp_path), "LOG_DIR": str(tmp_path), "PROFILE_DIR": str(tmp_path),
            "DOTENV_PATH": str(tmp_path / "no.env")}

    def engine_env(env: dict[str, str]) -> dict:
        cfg = load_config(env)
        return dict(next(c for c in default_children(cfg, env) if c.name == "signal_engine").env)

    assert engine_env(base)["FEEDS"] == "replica"
    assert engine_env({**base, "FEEDS": " "})["FEEDS"] == "replica"          # blank = not set, as load_config
    assert "FEEDS" not in engine_env({**base, "FEEDS": "sim"})                # the environment's choice stays
    dotenv = tmp_path / "user.env"
    dotenv.write_text("FEEDS=binance,coinbase\n")
    assert "FEEDS" not in engine_env({**base, "DOTENV_PATH": str(dotenv)})    # so does the .env's
    assert "FEEDS" not in engine_env({**base, "MODE": "paper"})               # paper/live: real exchanges
    replica = next(c for c in default_children(load_config(base), base) if c.name == "replica")
    assert "--port" in replica.argv and str(load_config(base).replica_port) in replica.argv
