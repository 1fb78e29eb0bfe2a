"""The pause flag (core/pause.py): persisted 0600, fails closed, set by `./supervisor.sh pause|unpause`
(through `python -m monitor`), shown by `status`, and honoured by the executor before a new intent
(the real engine and browser venue against the replica in Chromium: paused -> the window is skipped
with the reason, nothing journaled; that trading goes on without the flag is every other engine test)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.durable_files import read_jsonl
from core.pause import pause_path, read_pause, set_pause

REPO = Path(__file__).resolve().parent.parent


def test_the_flag_is_private_persistent_and_fails_closed(tmp_path):
    assert read_pause(tmp_path).paused is False and read_pause(tmp_path).reason() is None
    set_pause(tmp_path, True, "telegram chat 1", now=1767225600.0)
    st = read_pause(tmp_path)
    assert st.paused and st.by == "telegram chat 1" and st.at == 1767225600.0
    assert "paused by telegram chat 1 since 2026-01-01T00:00:00Z" in st.reason()
    assert pause_path(tmp_path).stat().st_mode & 0o777 == 0o600
    set_pause(tmp_path, True, "./supervisor.sh pause", now=1767225700.0)      # paused again: "since" stays
    assert read_pause(tmp_path).at == 1767225600.0 and read_pause(tmp_path).by == "telegram chat 1"
    set_pause(tmp_path, False, "the dashboard")
    assert not read_pause(tmp_path).paused
    for bad in (b"{not json", b"[]", b'{"paused": "no"}'):
        pause_path(tmp_path).write_bytes(bad)
        st = read_pause(tmp_path)
        assert st.paused and st.problem and "cannot be read" in st.reason(), bad   # unreadable = paused
    set_pause(tmp_path, False, "./supervisor.sh unpause")                         # rewriting repairs it
    assert not read_pause(tmp_path).paused


def test_supervisor_pause_and_unpause_and_status_show_it(iso_env, tmp_path):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "monitor", *args], cwd=REPO, env=iso_env, capture_output=True,
                              text=True, timeout=60)

    r = run("pause")
    assert r.returncode == 0 and r.stdout.startswith("paused: no new trades"), r.stderr
    state = Path(iso_env["STATE_DIR"])
    assert read_pause(state).by == "./supervisor.sh pause"
    st = run("status")
    assert "PAUSED: paused by ./supervisor.sh pause since" in st.stdout
    assert run("unpause").stdout.startswith("unpaused: new trades allowed again")
    assert not read_pause(state).paused


@pytest.mark.browser
@pytest.mark.slow
def test_the_executor_makes_no_new_intent_while_paused(tmp_path, tmp_path_factory, browser_path):
    from core.config import DEMO_WALLET_PASSWORD
    from tests.replica_support import start_replica
    from tests.test_executor_engine import Rig, make_env

    W = 12
    rep = start_replica(tmp_path_factory.mktemp("pause-replica"), window_seconds=W, assets=("BTC",),
                        password=DEMO_WALLET_PASSWORD)
    try:
        env = make_env(tmp_path, rep, browser_path, "demo", ("BTC",), SITE_PROFILE="polymarket",
                       WINDOW_SECONDS=str(W), ENTRY_END=str(W))
        set_pause(Path(env["STATE_DIR"]), True, "telegram chat 1")
        import tests.test_executor_engine as eng

        old_w, eng.W = eng.W, W      # the Rig's signal writer follows the test's window length
        try:
            with Rig(env, rep) as rig:
                cur = rig.run_until(lambda: rig.decided("BTC"), 30, "the paused window's decision")
                assert rig.events("BTC") == []                                     # no intent, nothing else
                line = [d for d in read_jsonl(rig.cfg.decisions_path) if d["window_start"] == cur.start]
                assert line[0]["action"] == "skipped" and line[0]["reason"].startswith("paused by telegram chat 1")
                assert rig.worker.risk.book.status()["trades_today"] == 0            # the guards saw nothing
        finally:
            eng.W = old_w
    finally:
        rep.stop()
    assert os.stat(pause_path(env["STATE_DIR"])).st_mode & 0o777 == 0o600
