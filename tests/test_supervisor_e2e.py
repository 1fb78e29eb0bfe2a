"""End to end: `./supervisor.sh start` brings the real demo up (replica, signal engine, executor with
real Chromium), a trade is journaled within two accelerated windows, `stop` leaves nothing behind."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from core import procfs
from core.durable_files import read_jsonl
from monitor.procs import TAG_VAR, Ident
from tests.supervisor_support import Tracker, process_alive, run_sup
from tests.waiting import wait_for

WINDOW = 12

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tagged_anywhere(tag: str) -> list[int]:
    """Pids of live processes carrying this run's environment tag (Linux)."""
    out = []
    needle = f"{TAG_VAR}={tag}".encode()
    for pid in procfs.pids():
        env = procfs.environ(pid)  # None: exited, or not ours
        if env is not None and needle in env and procfs.state(pid) not in (None, "Z"):
            out.append(pid)
    return out


@pytest.mark.skipif(not procfs.HAVE_PROC, reason="checks leftovers through /proc")
def test_demo_start_trades_and_stop_leaves_nothing(iso_env, tmp_path):
    env = dict(iso_env)
    env.update(DOTENV_PATH=str(tmp_path / "e2e.env"), WINDOW_SECONDS=str(WINDOW),
               REPLICA_PORT=str(_free_port()), REPLICA_WALLET_PORT=str(_free_port()),
               DASHBOARD_PORT=str(_free_port()))
    # MAX_SLIPPAGE: the replica's quotes are noisy; this test is about the lifecycle, not the guard.
    (tmp_path / "e2e.env").write_text("MODE=demo\nMAX_SLIPPAGE=0.98\n")
    state, logs = Path(env["STATE_DIR"]), Path(env["LOG_DIR"])
    tracker = Tracker(state)
    t0 = time.time()
    try:
        r = run_sup(env, "start", timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert time.time() - t0 < 30, "start should return within seconds"
        for name in ("replica", "signal_engine", "executor"):
            assert f"{name}" in r.stdout
        wait_for(lambda: run_sup(env, "status").returncode == 0, 30, "status exit 0 (all running)")
        tracker.note_all()
        mon = tracker.note("monitor")
        tag = f"{mon['pid']}-{mon['start']}"

        def fresh_signal():
            try:
                return time.time() - (state / "signal.json").stat().st_mtime < 3
            except OSError:
                return False

        wait_for(fresh_signal, 15, "a fresh signal.json")
        started = wait_for(lambda: json.loads((state / "executor.json").read_text()).get("status")
                           in ("watching", "trading") if (state / "executor.json").exists() else None,
                           45, "executor watching the market page")
        assert started
        t_watch = time.time()
        filled = wait_for(lambda: [e for e in read_jsonl(logs / "trades.jsonl") if e.get("event") == "filled"],
                          2 * WINDOW + 10, "a filled trade in logs/trades.jsonl within two windows")
        assert filled[0]["mode"] == "demo"
        assert time.time() - t_watch <= 2 * WINDOW + 10

        st = json.loads(run_sup(env, "status", "--json").stdout)
        assert st["ok"] and st["signal"]["direction"] in ("UP", "DOWN", "NO_TRADE")
        assert st["trades"]["last"] is not None
        tracker.note_all()
        assert any(tracker.note("executor")["descendants"]), "Chromium recorded under the executor"
        assert _tagged_anywhere(tag), "children carry the run tag"

        r = run_sup(env, "stop", timeout=120)
        assert r.returncode == 0, r.stderr
        left = [i.pid for i in tracker.seen if isinstance(i, Ident) and i.alive()]
        assert not left, f"left running after stop: {left}"
        assert not _tagged_anywhere(tag), "a process of this run (Chromium helper?) survived stop"
        assert not list((state / "pids").glob("*.json"))
        assert not process_alive(mon["pid"])
        assert run_sup(env, "status").returncode == 3
    finally:
        run_sup(env, "stop", timeout=120)
        tracker.kill_leftovers()
