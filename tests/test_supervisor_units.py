"""Unit-level checks of the supervisor's Python half: back-off, rotation, process identity, the
child state machine's transition table, SUPERVISOR_* knobs from the config (and .env)."""

from __future__ import annotations

import itertools
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.config import ConfigError, load_config
from core.exit_codes import ExitStatus
from monitor.child import Child
from monitor.procs import Ident, descendants, ident_of, signal_group
from monitor.rotate import rotate_logs
from monitor.settings import ChildSpec, Knobs, children_for, default_children, knobs_of
from monitor.states import TRANSITIONS, ChildState, IllegalTransition, check_transition

REPO = Path(__file__).resolve().parent.parent


def _dirs(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"STATE_DIR": str(tmp_path), "LOG_DIR": str(tmp_path), "PROFILE_DIR": str(tmp_path), **extra}


def test_backoff_doubles_from_one_second_up_to_sixty(tmp_path):
    k = Knobs()
    assert [k.backoff(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    knobs = knobs_of(load_config(_dirs(tmp_path), dotenv_path=tmp_path / "no.env", check_dirs=False))
    assert knobs == Knobs() and knobs.max_fails == 5


# ---- the child state machine ---------------------------------------------------------------

LEGAL = {
    ("stopped", "starting"),
    ("starting", "running"), ("starting", "exited"), ("starting", "down"), ("starting", "stopped"),
    ("running", "stopping"),
    ("stopping", "exited"), ("stopping", "down"), ("stopping", "stopped"),
    ("exited", "backoff"), ("exited", "FATAL"),
    ("backoff", "running"), ("backoff", "exited"), ("backoff", "down"), ("backoff", "stopped"),
    ("FATAL", "starting"), ("FATAL", "stopped"),
    ("down", "starting"),
}
ALL_PAIRS = list(itertools.product(ChildState, ChildState))


def test_the_states_are_supervisords_plus_down_with_the_contract_spellings():
    assert {s.name for s in ChildState} == {"STOPPED", "STARTING", "RUNNING", "BACKOFF", "STOPPING", "EXITED",
                                             "FATAL", "DOWN"}
    # What state/supervisor.json and `status` show (README, docs/supervisor.md): unchanged spellings.
    assert {s.name: s.value for s in ChildState if s.value in ("running", "backoff", "FATAL", "down", "stopped")} \
        == {"RUNNING": "running", "BACKOFF": "backoff", "FATAL": "FATAL", "DOWN": "down", "STOPPED": "stopped"}
    assert set(TRANSITIONS) == set(ChildState)
    assert {(a.value, b.value) for a, bs in TRANSITIONS.items() for b in bs} == LEGAL


@pytest.mark.parametrize("old,new", [p for p in ALL_PAIRS if (p[0].value, p[1].value) in LEGAL],
                         ids=lambda s: s.name)
def test_every_legal_transition_is_taken(old, new):
    c = Child(ChildSpec("alpha", ("true",), (), 30.0), old)
    c.to(new)
    assert c.state is new


@pytest.mark.parametrize("old,new", [p for p in ALL_PAIRS if (p[0].value, p[1].value) not in LEGAL],
                         ids=lambda s: s.name)
def test_every_illegal_transition_raises_and_is_logged(old, new, caplog):
    c = Child(ChildSpec("alpha", ("true",), (), 30.0), old)
    with caplog.at_level(logging.ERROR, logger="monitor"), pytest.raises(IllegalTransition, match=old.name):
        c.to(new)
    assert c.state is old
    assert f"alpha: illegal state transition {old.name} -> {new.name}" in caplog.text
    with pytest.raises(IllegalTransition):
        check_transition("alpha", old, new)


def test_a_childs_state_changes_only_through_the_table():
    c = Child(ChildSpec("alpha", ("true",), (), 30.0))
    assert c.state is ChildState.STOPPED
    with pytest.raises(AttributeError):
        c.state = ChildState.RUNNING  # type: ignore[misc]  # no setter: every change goes through .to()


def test_a_monitor_walks_a_crashing_child_through_the_table(tmp_path, monkeypatch):
    """The real Monitor: autostart, run, exit, back-off, FATAL, shutdown; every change through the table."""
    import monitor.child as child
    import monitor.supervise as supervise
    from monitor.settings import paths_of

    taken: list[tuple[str, str]] = []

    def recording(name, old, new):
        taken.append((old.value, new.value))
        return check_transition(name, old, new)

    monkeypatch.setattr(child, "check_transition", recording)
    cfg = load_config(_dirs(tmp_path, SUPERVISOR_MAX_FAILS="2", SUPERVISOR_MIN_UPTIME="60",
                            SUPERVISOR_BACKOFF_BASE="0.01"), dotenv_path=tmp_path / "no.env")
    spec = ChildSpec("crash", (sys.executable, "-c", "raise SystemExit(1)"), (), 30.0)
    mon = supervise.Monitor(cfg, [spec], knobs_of(cfg), paths_of(cfg))
    c = mon.children[0]
    deadline = time.monotonic() + 30
    while c.state is not ChildState.FATAL and time.monotonic() < deadline:
        mon.tick()
        if c.proc is not None:
            c.proc.wait(timeout=10)  # it exits at once: wait for that, no sleep
    mon.shutdown()
    run = [("running", "stopping"), ("stopping", "exited")]
    assert taken == [("stopped", "starting"), ("starting", "running"), *run, ("exited", "backoff"),
                     ("backoff", "running"), *run, ("exited", "FATAL"), ("FATAL", "stopped")]
    assert c.failures == 2 and "2 failed starts in a row" in c.fatal_reason
    assert mon.status_doc(0.0)["children"]["crash"]["state"] == "stopped"


@pytest.mark.parametrize("code,fatal_after_starts", [(2, 1), (1, 3)])
def test_a_child_exiting_2_is_not_restarted(tmp_path, code, fatal_after_starts):
    """Exit 2 (ExitStatus.REFUSED: its own config check refused): FATAL at once, never restarted.
    Any other failing exit goes through the back-off until MAX_FAILS (3 here)."""
    from monitor.settings import paths_of
    from monitor.supervise import Monitor

    cfg = load_config(_dirs(tmp_path, SUPERVISOR_MAX_FAILS="3", SUPERVISOR_MIN_UPTIME="60",
                            SUPERVISOR_BACKOFF_BASE="0.01"), dotenv_path=tmp_path / "no.env")
    spec = ChildSpec("picky", (sys.executable, "-c", f"raise SystemExit({code})"), (), 30.0)
    mon = Monitor(cfg, [spec], knobs_of(cfg), paths_of(cfg))
    c = mon.children[0]
    deadline = time.monotonic() + 30
    while c.state is not ChildState.FATAL and time.monotonic() < deadline:
        mon.tick()
        if c.proc is not None:
            c.proc.wait(timeout=10)
    for _ in range(5):
        mon.tick()  # FATAL stays FATAL: nothing restarts it
    assert c.state is ChildState.FATAL and c.starts == fatal_after_starts and c.last_exit["code"] == code
    doc = mon.status_doc(0.0)["children"]["picky"]
    assert doc["state"] == "FATAL"
    if code == 2:
        assert "refused to run (exit 2" in doc["fatal_reason"] and "not restarted" in doc["fatal_reason"]
    else:
        assert "3 failed starts in a row" in doc["fatal_reason"]
    mon.shutdown()


def test_exit_status_values_are_the_documented_contract():
    assert [int(s) for s in ExitStatus] == [0, 1, 2, 3]
    assert (ExitStatus.OK, ExitStatus.ERROR, ExitStatus.REFUSED, ExitStatus.NOT_ALL_UP) == (0, 1, 2, 3)


# ---- SUPERVISOR_* knobs are config -----------------------------------------------------------

def test_supervisor_knobs_in_a_dotenv_file_take_effect(tmp_path):
    dotenv = tmp_path / "user.env"
    dotenv.write_text("SUPERVISOR_TICK=0.5\nSUPERVISOR_STOP_TIMEOUT=7\nSUPERVISOR_MAX_FAILS=9\n"
                      "SUPERVISOR_BACKOFF_BASE=2\nSUPERVISOR_BACKOFF_MAX=30\nSUPERVISOR_MIN_UPTIME=3\n"
                      "SUPERVISOR_LOG_MAX_BYTES=4096\nSUPERVISOR_LOG_KEEP=5\nSUPERVISOR_START_TIMEOUT=90\n"
                      "SUPERVISOR_STALE_EXECUTOR=123\n")
    cfg = load_config(_dirs(tmp_path), dotenv_path=dotenv)
    assert knobs_of(cfg) == Knobs(backoff_base=2, backoff_max=30, min_uptime=3, max_fails=9, stop_timeout=7,
                                  tick=0.5, log_max_bytes=4096, log_keep=5)
    assert cfg.supervisor_start_timeout == 90
    kids = {c.name: c for c in default_children(cfg, _dirs(tmp_path))}
    assert kids["executor"].stale_after == 123
    assert kids["replica"].stale_after == 30  # unset: the default
    # The environment wins over .env, as for every other variable.
    cfg = load_config(_dirs(tmp_path, SUPERVISOR_TICK="0.1", SUPERVISOR_STALE_EXECUTOR="50"), dotenv_path=dotenv)
    assert knobs_of(cfg).tick == 0.1 and cfg.stale_after_for("executor", 1.0) == 50


def test_children_file_from_dotenv_applies(tmp_path):
    children = tmp_path / "children.json"
    children.write_text('{"children": [{"name": "solo", "argv": ["{python}", "-c", "pass"], "stale_after": 4}]}')
    dotenv = tmp_path / "user.env"
    dotenv.write_text(f"SUPERVISOR_CHILDREN_FILE={children}\nSUPERVISOR_STALE_SOLO=8\n")
    cfg = load_config(_dirs(tmp_path), dotenv_path=dotenv)
    specs = children_for(cfg)
    assert [s.name for s in specs] == ["solo"] and specs[0].stale_after == 8


@pytest.mark.parametrize("var,value,needle", [
    ("SUPERVISOR_TICK", "nan", "SUPERVISOR_TICK must be a finite number"),
    ("SUPERVISOR_STOP_TIMEOUT", "nan", "SUPERVISOR_STOP_TIMEOUT must be a finite number"),
    ("SUPERVISOR_STOP_TIMEOUT", "inf", "SUPERVISOR_STOP_TIMEOUT must be a finite number"),
    ("SUPERVISOR_TICK", "0", "SUPERVISOR_TICK must be >= 0.01"),
    ("SUPERVISOR_BACKOFF_BASE", "-1", "SUPERVISOR_BACKOFF_BASE must be >= 0.01"),
    ("SUPERVISOR_BACKOFF_MAX", "0.5", "SUPERVISOR_BACKOFF_MAX must be >= SUPERVISOR_BACKOFF_BASE"),
    ("SUPERVISOR_MIN_UPTIME", "-inf", "SUPERVISOR_MIN_UPTIME must be a finite number"),
    ("SUPERVISOR_MAX_FAILS", "0", "SUPERVISOR_MAX_FAILS must be >= 1"),
    ("SUPERVISOR_MAX_FAILS", "2.5", "SUPERVISOR_MAX_FAILS is not a whole number"),
    ("SUPERVISOR_LOG_MAX_BYTES", "10", "SUPERVISOR_LOG_MAX_BYTES must be >= 1024"),
    ("SUPERVISOR_LOG_KEEP", "0", "SUPERVISOR_LOG_KEEP must be >= 1"),
    ("SUPERVISOR_START_TIMEOUT", "nan", "SUPERVISOR_START_TIMEOUT must be a finite number"),
    ("SUPERVISOR_STALE_EXECUTOR", "nan", "SUPERVISOR_STALE_EXECUTOR must be a finite number"),
    ("SUPERVISOR_STALE_EXECUTOR", "0", "SUPERVISOR_STALE_EXECUTOR must be >= 0.5"),
])
def test_a_bad_supervisor_knob_is_refused_naming_it(tmp_path, var, value, needle):
    with pytest.raises(ConfigError) as err:
        load_config(_dirs(tmp_path, **{var: value}), dotenv_path=tmp_path / "no.env", check_dirs=False)
    assert err.value.var == var and needle in str(err.value)


@pytest.mark.parametrize("line", ["SUPERVISOR_TICK=nan", "SUPERVISOR_STOP_TIMEOUT=nan"])
def test_preflight_refuses_a_nan_knob_from_dotenv_with_one_line_exit_2(iso_env, tmp_path, line):
    dotenv = tmp_path / "bad.env"
    dotenv.write_text(line + "\n")
    dotenv.chmod(0o600)
    r = subprocess.run([sys.executable, "-m", "monitor", "preflight"], cwd=REPO, capture_output=True, text=True,
                       env={**iso_env, "DOTENV_PATH": str(dotenv)}, timeout=60)
    assert r.returncode == ExitStatus.REFUSED, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"config error: {line.split('=')[0]} must be a finite number")
    assert r.stdout == ""  # nothing for supervisor.sh to start with


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
    p = subprocess.Popen([sys.executable, "-c", "import signal\nsignal.pause()"], start_new_session=True)
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

    p = subprocess.Popen([sys.executable, "-c", "import signal\nsignal.pause()"], start_new_session=True)
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


# ---- FATAL retried on a slow schedule (issue 13, item 5) -------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.t = 1_000.0

    def __call__(self) -> float:
        return self.t


class _Sent:
    """Stands in for the monitor's notifier: records (event, text)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, event: str, text: str) -> None:
        self.sent.append((event, text))

    def close(self, timeout: float = 5.0) -> None:
        return None


def render_line(mon, clock: _Clock, name: str) -> str:
    """`status`'s line for one child, from the monitor's own status document."""
    from monitor.status import render

    doc = mon.status_doc(clock.t)
    st = {"mode": "demo", "market_url": "-", "monitor": {"state": "stopped"}, "ok": False,
          "processes": {n: {"state": c["state"], "fatal_reason": c["fatal_reason"]}
                        for n, c in doc["children"].items()},
          "signals": {}, "executor": None, "trades": {"last": None, "today": {"filled": 0, "wins": 0, "losses": 0,
                                                                            "pnl": 0.0}, "path": "-"}, "risk": None}
    return next(ln for ln in render(st).splitlines() if ln.startswith(name + " "))


def _tick_until(mon, c, want: ChildState, clock: _Clock, limit: int = 200) -> None:
    """Tick a monitor (with a fake clock that advances 0.01 s a tick) until `c` is in `want`; the
    stub exits at once, so waiting for it is a wait on the process, never a sleep."""
    for _ in range(limit):
        if c.state is want:
            return
        mon.tick()
        clock.t += 0.01
        if c.proc is not None:
            c.proc.wait(timeout=10)
    raise AssertionError(f"{c.name} never reached {want.name} (state {c.state.name})")


def test_a_fatal_child_is_retried_on_the_slow_schedule_with_a_notification_each_time(tmp_path, monkeypatch):
    """MAX_FAILS failed starts -> FATAL; after SUPERVISOR_FATAL_RETRY the monitor tries it again by
    itself (FATAL -> starting, through the table) and notifies; FATAL again -> retried again. A child
    that exited 2 (refused its config) stays FATAL however long one waits."""
    import monitor.child as child
    import monitor.supervise as supervise
    from monitor.settings import paths_of
    from tests.supervisor_support import STUB

    taken: list[tuple[str, str, str]] = []

    def recording(name, old, new):
        taken.append((name, old.value, new.value))
        return check_transition(name, old, new)

    monkeypatch.setattr(child, "check_transition", recording)
    cfg = load_config(_dirs(tmp_path, SUPERVISOR_MAX_FAILS="2", SUPERVISOR_MIN_UPTIME="60",
                            SUPERVISOR_BACKOFF_BASE="0.01", SUPERVISOR_FATAL_RETRY="30"),
                      dotenv_path=tmp_path / "no.env")
    assert knobs_of(cfg).fatal_retry == 30
    broken = ChildSpec("broken", (sys.executable, str(STUB), "--beat", str(tmp_path / "hb"), "--fail-fast"), (), 30.0)
    picky = ChildSpec("picky", (sys.executable, "-c", "raise SystemExit(2)"), (), 30.0)
    clock = _Clock()
    mon = supervise.Monitor(cfg, [broken, picky], knobs_of(cfg), paths_of(cfg), clock=clock)
    mon.notify = _Sent()
    b, p = mon.children
    try:
        _tick_until(mon, b, ChildState.FATAL, clock)
        _tick_until(mon, p, ChildState.FATAL, clock)
        fatal_at = clock.t
        assert b.starts == 2 and b.retry_at is not None and p.retry_at is None and p.starts == 1
        doc = mon.status_doc(clock.t)["children"]
        assert doc["broken"]["retry_at"] == b.retry_at and doc["picky"]["retry_at"] is None
        assert "tried again every 30 s" in b.fatal_reason and "not restarted" in p.fatal_reason
        for _ in range(5):                      # not before its time
            mon.tick()
        assert b.state is ChildState.FATAL and b.starts == 2
        clock.t = b.retry_at                    # five minutes by default; 30 s here, on a fake clock
        mon.tick()
        assert b.state is ChildState.STARTING and b.fatal_retries == 1 and b.failures == 0
        assert ("broken", "FATAL", "starting") in taken
        assert "was FATAL" in render_line(mon, clock, "broken")
        mon.tick()                              # spawned on the next tick
        assert b.starts == 3
        _tick_until(mon, b, ChildState.FATAL, clock)
        assert b.starts == 4 and b.failures == 2  # MAX_FAILS fresh starts, then FATAL again
        clock.t = b.retry_at
        mon.tick()
        mon.tick()
        assert b.fatal_retries == 2 and b.starts == 5
        # Exit 2 never comes back by itself, however long one waits.
        clock.t = fatal_at + 10 * 3600
        _tick_until(mon, b, ChildState.FATAL, clock)
        mon.tick()
        assert p.state is ChildState.FATAL and p.starts == 1
        assert ("picky", "FATAL", "starting") not in taken
    finally:
        mon.shutdown()
    retries = [t for e, t in mon.notify.sent if e == "fatal" and "trying it again" in t]
    assert len(retries) == 2 and all(t.startswith("broken was FATAL") for t in retries)
    assert "automatic retry #1" in retries[0] and "automatic retry #2" in retries[1]
    fatals = [t for e, t in mon.notify.sent if e == "fatal" and t.startswith("broken FATAL")]
    assert len(fatals) >= 3 and [t for e, t in mon.notify.sent if t.startswith("picky FATAL")]
    assert not [t for e, t in mon.notify.sent if t.startswith("picky was FATAL")]


def test_start_counts_carry_over_and_up_on_a_fatal_child_is_not_a_crash_restart(tmp_path):
    """starts_total goes on from the last monitor's supervisor.json (a bad value there: from 1); `up` on
    a FATAL child is counted in requested_restarts, the automatic FATAL retry in restarts."""
    import monitor.supervise as supervise
    from monitor.settings import paths_of

    cfg = load_config(_dirs(tmp_path, SUPERVISOR_MAX_FAILS="1", SUPERVISOR_MIN_UPTIME="60",
                            SUPERVISOR_FATAL_RETRY="30"), dotenv_path=tmp_path / "no.env")
    paths = paths_of(cfg)
    paths.status_file.write_text(json.dumps({"children": {"crash": {"starts_total": 7},
                                                          "other": {"starts_total": True}}}))
    crash = ChildSpec("crash", (sys.executable, "-c", "raise SystemExit(1)"), (), 30.0)
    other = ChildSpec("other", (sys.executable, "-c", "raise SystemExit(1)"), (), 30.0)
    clock = _Clock()
    mon = supervise.Monitor(cfg, [crash, other], knobs_of(cfg), paths, clock=clock)
    mon.notify = _Sent()
    c, o = mon.children
    assert (c.starts_total, o.starts_total) == (7, 0)
    try:
        _tick_until(mon, c, ChildState.FATAL, clock)
        (paths.down_dir / "crash.retry").parent.mkdir(parents=True, exist_ok=True)
        (paths.down_dir / "crash.retry").write_text("retry requested by ./supervisor.sh up\n")
        _tick_until(mon, c, ChildState.STARTING, clock)  # the retry file taken: FATAL -> starting
        _tick_until(mon, c, ChildState.FATAL, clock)  # -> running -> stopping -> exited -> FATAL
        assert c.starts == 2 and (c.restarts, c.requested_restarts) == (0, 1)
        clock.t = c.retry_at
        _tick_until(mon, c, ChildState.STARTING, clock)
        _tick_until(mon, c, ChildState.FATAL, clock)
        assert c.starts == 3 and (c.restarts, c.requested_restarts) == (1, 1)
        assert mon.status_doc(clock.t)["children"]["crash"]["starts_total"] == 10
    finally:
        mon.shutdown()
    head = "---- supervisor: starting crash (start #"
    headers = [ln.rsplit(" at ", 1)[0] for ln in (tmp_path / "crash.log").read_text().splitlines()
               if ln.startswith(head)]
    assert headers == [f"{head}8: first start by monitor pid {os.getpid()})",
                       f"{head}9: asked for with ./supervisor.sh up)",
                       f"{head}10: automatic retry #1 of a FATAL process)"]
    assert "(start #1: first start" in (tmp_path / "other.log").read_text()


def test_status_shows_the_next_automatic_retry_of_a_fatal_child(tmp_path):
    from monitor.settings import paths_of
    from monitor.status import build, render

    cfg = load_config(_dirs(tmp_path), dotenv_path=tmp_path / "no.env", check_dirs=False)
    paths = paths_of(cfg)
    now = time.time()
    paths.status_file.write_text(json.dumps({
        "monitor": {"pid": 1, "state": "stopped"}, "mode": "demo", "market_url": "http://x", "order": ["a", "b"],
        "children": {"a": {"state": "FATAL", "fatal_reason": "5 failed starts in a row", "retry_at": now + 125,
                           "fatal_retries": 2},
                     "b": {"state": "FATAL", "fatal_reason": "refused to run (exit 2", "retry_at": None}}}))
    st = build(cfg, paths, [], now=now)
    assert 120 <= st["processes"]["a"]["retry_in_s"] <= 125 and st["processes"]["a"]["fatal_retries"] == 2
    assert "retry_in_s" not in st["processes"]["b"]
    text = render(st)
    line_a = next(ln for ln in text.splitlines() if ln.startswith("a "))
    line_b = next(ln for ln in text.splitlines() if ln.startswith("b "))
    assert "next automatic retry in 2m0" in line_a and "automatic retry" not in line_b


def test_status_shows_the_executors_journal_problems_text_and_json(tmp_path):
    """executor.json's `journal` block: a line when bad_lines > 0 or an asset is blocked; none otherwise."""
    from monitor.settings import paths_of
    from monitor.status import build, render

    cfg = load_config(_dirs(tmp_path), dotenv_path=tmp_path / "no.env", check_dirs=False)
    paths = paths_of(cfg)

    def status_with(journal):
        cfg.executor_state_path.write_text(json.dumps({"status": "risk_error", "reason": "risk.json is locked",
                                                       "journal": journal}))
        st = build(cfg, paths, [])
        lines = [ln for ln in render(st).splitlines() if ln.startswith("journal ")]
        return st, lines

    st, lines = status_with({"bad_lines": 0, "first_bad": [], "blocked_assets": {}})
    assert "journal" not in st["executor"] and lines == []
    assert st["executor"]["status"] == "risk_error" and "risk_error (risk.json is locked)" in render(st)
    why = "an unreadable intent at trades.jsonl line 7 (missing asset): fix or remove the line; " + "x" * 200
    st, lines = status_with({"bad_lines": 4, "first_bad": ["line 3: not a JSON object", "line 7: missing asset"],
                             "blocked_assets": {"ETH": why}})
    assert st["executor"]["journal"] == {"bad_lines": 4, "first_bad": ["line 3: not a JSON object",
                                                                       "line 7: missing asset"],
                                         "blocked_assets": {"ETH": why}}
    assert json.loads(json.dumps(st, default=str))["executor"]["journal"]["bad_lines"] == 4   # --json carries it
    assert len(lines) == 1
    assert "4 unreadable journal line(s) skipped: line 3: not a JSON object, line 7: missing asset" in lines[0]
    assert "no new orders for ETH (an unreadable intent at trades.jsonl line 7" in lines[0]
    assert "x" * 150 not in lines[0]
    st, lines = status_with({"bad_lines": 0, "first_bad": [], "blocked_assets": {"BTC": "journal: disk full"}})
    assert lines == ["journal        no new orders for BTC (journal: disk full) until reconciled"]
    st, lines = status_with({"bad_lines": 2, "first_bad": ["line 1: torn"], "blocked_assets": {}})
    assert lines == ["journal        2 unreadable journal line(s) skipped: line 1: torn"]
    st, lines = status_with("garbage")       # a malformed block is ignored, never a crash
    assert "journal" not in st["executor"] and lines == []


def test_a_misspelled_setting_in_dotenv_is_named_with_the_closest_setting(tmp_path):
    """A typo in a name leaves the default in force: every start (and doctor) says so."""
    from monitor.preflight import check_dotenv

    dotenv = tmp_path / "typo.env"
    dotenv.write_text("MODE=demo\nPOSITON_SIZE=777\nMAX_DAILY_LOS=10\nSUPERVISOR_STALE_EXECUTOR=60\nFOO_BAR=1\n"
                      "max_daily_loss=20\n")
    dotenv.chmod(0o600)
    notes: list[str] = []
    check_dotenv({"DOTENV_PATH": str(dotenv)}, notes.append)
    assert len(notes) == 4, notes
    assert "max_daily_loss" in notes[3] and "did you mean MAX_DAILY_LOSS?" in notes[3]   # names are upper case
    assert "POSITON_SIZE" in notes[0] and "did you mean POSITION_SIZE?" in notes[0] and "ignored" in notes[0]
    assert "did you mean MAX_DAILY_LOSS?" in notes[1]
    assert "FOO_BAR" in notes[2] and "did you mean" not in notes[2]
    assert not any("777" in n for n in notes)                       # names only, never a value
