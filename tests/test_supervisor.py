"""supervisor.sh with real processes and real signals (stub children from tests/supervisor_stub.py).

Each test has its own STATE_DIR/LOG_DIR; SUPERVISOR_CHILDREN_FILE swaps the real children for stubs
that beat a heartbeat; short back-offs via SUPERVISOR_* knobs. Teardown stops everything and then
SIGKILLs (by recorded identity only) anything a test left behind, failing the test if it had to.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core import procfs
from tests.supervisor_support import (
    FAST_KNOBS,
    Tracker,
    group_alive,
    pid_record,
    process_alive,
    run_sup,
    stub_child,
    write_children,
)
from tests.waiting import wait_for


@pytest.fixture
def sup(iso_env, tmp_path):
    """(env, state_dir, log_dir, tracker); set env['SUPERVISOR_CHILDREN_FILE'] before starting."""
    env = dict(iso_env)
    env.pop("DOTENV_PATH", None)
    env["DOTENV_PATH"] = str(tmp_path / "test.env")
    (tmp_path / "test.env").write_text("MODE=demo\n")
    os.chmod(tmp_path / "test.env", 0o600)
    env.update(FAST_KNOBS)
    state, logs = Path(env["STATE_DIR"]), Path(env["LOG_DIR"])
    tracker = Tracker(state)
    try:
        yield env, state, logs, tracker
    finally:
        tracker.note_all()
        if tracker.anything_recorded():  # a test that stopped everything itself needs no second stop
            run_sup(env, "stop", timeout=60)
        leftovers = tracker.kill_leftovers()
        assert not leftovers, f"processes left running after stop: {leftovers}"


def _start(env, *args, stdin=None):
    r = run_sup(env, "start", *args, stdin=stdin)
    assert r.returncode == 0, f"start failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r


def _status(env) -> tuple[int, dict]:
    r = run_sup(env, "status", "--json")
    return r.returncode, json.loads(r.stdout)


def _running_pid(state: Path, name: str, not_pid: int | None = None, fresh_after: float | None = None):
    """The child's pid once it runs (a new pid if `not_pid`), beating after `fresh_after`."""
    rec = pid_record(state, name)
    if not rec or rec["pid"] == not_pid or not process_alive(rec["pid"]):
        return None
    if fresh_after is not None:
        try:
            if (state / "heartbeat" / name).stat().st_mtime <= fresh_after:
                return None
        except OSError:
            return None
    return rec["pid"]


def test_start_status_double_start_stop_leaves_nothing(sup, tmp_path):
    env, state, logs, tracker = sup
    gc_file = tmp_path / "grandchild.pid"
    env["SUPERVISOR_CHILDREN_FILE"] = str(write_children(tmp_path, [
        stub_child("alpha"),
        # Ignores TERM (stop must escalate to KILL) and starts a process in a session of its own,
        # as Playwright does with Chromium: it must not survive the stop either.
        stub_child("beta", "--ignore-term", "--grandchild", str(gc_file)),
    ]))
    r = _start(env)
    assert "started in demo mode" in r.stdout
    wait_for(lambda: _running_pid(state, "alpha", fresh_after=0) and _running_pid(state, "beta", fresh_after=0),
             10, "both children running and beating")
    alpha, beta, monitor = (tracker.note(n) for n in ("alpha", "beta", "monitor"))
    for rec in (alpha, beta):
        assert f"pid {rec['pid']}" in r.stdout
        assert rec["pgid"] == rec["pid"], "each child leads its own process group"
    assert len({alpha["pgid"], beta["pgid"], monitor["pgid"], os.getpgrp()}) == 4
    gc = int(wait_for(lambda: gc_file.exists() and gc_file.read_text(), 10, "grandchild pid file"))
    wait_for(lambda: tracker.note("beta") and tracker.note("beta")["descendants"], 10,
             "the grandchild recorded in beta's pid file")

    code, st = _status(env)
    assert code == 0, st
    assert st["monitor"]["state"] == "running" and st["monitor"]["pid"] == monitor["pid"]
    assert {n: p["state"] for n, p in st["processes"].items()} == {"alpha": "running", "beta": "running"}
    assert st["processes"]["alpha"]["pid"] == alpha["pid"]

    again = run_sup(env, "start")
    assert again.returncode == 1
    assert "already running" in again.stderr
    assert pid_record(state, "monitor")["pid"] == monitor["pid"] and process_alive(monitor["pid"])

    r = run_sup(env, "stop")
    assert r.returncode == 0, r.stderr
    for pgid in (alpha["pgid"], beta["pgid"], monitor["pgid"], gc):
        assert not group_alive(pgid), f"process group {pgid} survived stop"
    for pid in (alpha["pid"], beta["pid"], monitor["pid"], gc):
        assert not process_alive(pid)
    assert not list((state / "pids").glob("*.json")), "stale pid files left"

    r2 = run_sup(env, "stop")
    assert r2.returncode == 0 and "nothing was running" in r2.stdout
    code, st = _status(env)
    assert code == 3 and st["monitor"]["state"] == "stopped"
    assert all(p["state"] == "stopped" for p in st["processes"].values())


def test_sigkill_and_sigstop_children_are_restarted(sup, tmp_path):
    env, state, logs, tracker = sup
    gc_file = tmp_path / "gc.pid"
    env["SUPERVISOR_CHILDREN_FILE"] = str(write_children(tmp_path, [
        stub_child("alpha", stale_after=3.0),
        stub_child("beta", "--grandchild", str(gc_file), stale_after=3.0),
    ]))
    _start(env)
    old = {n: wait_for(lambda n=n: _running_pid(state, n, fresh_after=0), 10, f"{n} running")
           for n in ("alpha", "beta")}
    wait_for(lambda: (tracker.note("beta") or {}).get("descendants"), 10, "beta's grandchild recorded")
    gc_old = int(gc_file.read_text())

    # SIGKILL each child in turn: restarted within its limit (1 s back-off + start).
    for name in ("alpha", "beta"):
        t0 = time.time()
        os.kill(old[name], signal.SIGKILL)
        new = wait_for(lambda n=name, t=t0: _running_pid(state, n, not_pid=old[n], fresh_after=t), 10,
                       f"{name} restarted")
        tracker.note(name)
        assert not process_alive(old[name])
        old[name] = new
    # The killed beta's grandchild (own session, like Chromium) was reaped, not orphaned.
    wait_for(lambda: not process_alive(gc_old), 6, "the old grandchild killed")

    # Hang alpha (SIGSTOP): it still exists but stops beating; restarted once the heartbeat ages out.
    t0 = time.time()
    os.kill(old["alpha"], signal.SIGSTOP)
    new = wait_for(lambda: _running_pid(state, "alpha", not_pid=old["alpha"], fresh_after=t0), 15,
                   "hung alpha restarted")
    tracker.note("alpha")
    assert new != old["alpha"] and not process_alive(old["alpha"])
    assert time.time() - t0 >= 3.0, "restarted before its heartbeat limit"
    log = (logs / "monitor.log").read_text()
    assert "alpha: hung: no heartbeat" in log

    code, st = _status(env)
    assert code == 0
    assert st["processes"]["alpha"]["restarts"] == 2 and st["processes"]["beta"]["restarts"] == 1


class _Webhook(BaseHTTPRequestHandler):
    """A local stand-in for the Discord webhook (the internet): records each POSTed body."""

    bodies: list[str] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        n = int(self.headers.get("Content-Length", "0"))
        type(self).bodies.append(self.rfile.read(n).decode())
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args):  # keep the test output clean
        return


@pytest.fixture
def webhook():
    _Webhook.bodies = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/api/webhooks/1/tokentokentokentoken", _Webhook.bodies
    finally:
        srv.shutdown()
        srv.server_close()


def test_child_failing_at_start_goes_fatal_others_carry_on(sup, tmp_path, webhook):
    env, state, logs, tracker = sup
    env["CLOBBOT_DISCORD_WEBHOOK_URL"], posted = webhook
    env["SUPERVISOR_CHILDREN_FILE"] = str(write_children(tmp_path, [
        stub_child("alpha"),
        stub_child("broken", "--fail-fast", beat=False),
    ]))
    r = _start(env)
    alpha = wait_for(lambda: _running_pid(state, "alpha", fresh_after=0), 10, "alpha running")
    tracker.note("alpha")

    def fatal():
        code, st = _status(env)
        return (code, st) if st["processes"]["broken"]["state"] == "FATAL" else None

    code, st = wait_for(fatal, 15, "broken marked FATAL")
    assert code == 3
    assert st["processes"]["alpha"]["state"] == "running" and st["processes"]["alpha"]["pid"] == alpha
    assert st["processes"]["alpha"]["restarts"] == 0
    assert "5 failed starts in a row" in st["processes"]["broken"]["fatal_reason"]
    assert (logs / "broken.log").read_text().count("failing at start on purpose") == 5
    mlog = (logs / "monitor.log").read_text()
    # back-off doubles: 0.1, 0.2, 0.4, 0.8 s (base 0.1 in the tests; 1, 2, 4 ... 60 s by default)
    for delay in ("0.1 s", "0.2 s", "0.4 s", "0.8 s"):
        assert f"restarting in {delay}" in mlog
    assert "broken: FATAL" in mlog
    alert = wait_for(lambda: [b for b in posted if "broken FATAL" in b], 10, "the FATAL alert on the webhook")
    assert "5 failed starts" in alert[0] and "tokentoken" not in alert[0]
    human = run_sup(env, "status")
    assert human.returncode == 3 and "FATAL" in human.stdout
    assert r.returncode == 0
    # `up NAME` asks the monitor to try a FATAL child again, with a fresh count of failed starts.
    assert run_sup(env, "up", "broken").returncode == 0
    wait_for(lambda: (logs / "broken.log").read_text().count("failing at start on purpose") >= 6, 10,
             "broken started again after `up`")
    assert "retry requested" in (logs / "monitor.log").read_text()
    assert _status(env)[1]["processes"]["alpha"]["pid"] == alpha


def test_down_file_holds_a_child_down(sup, tmp_path):
    env, state, logs, tracker = sup
    env["SUPERVISOR_CHILDREN_FILE"] = str(write_children(tmp_path, [stub_child("alpha"), stub_child("beta")]))
    _start(env)
    pid = wait_for(lambda: _running_pid(state, "alpha", fresh_after=0), 10, "alpha running")
    tracker.note("alpha")
    r = run_sup(env, "down", "alpha")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: not process_alive(pid), 5, "alpha stopped by its down file")
    wait_for(lambda: _status(env)[1]["processes"]["alpha"]["state"] == "down", 5, "alpha shown as down")
    assert _status(env)[0] == 3
    assert "stopped by you" in _line(run_sup(env, "status").stdout, "alpha")
    assert run_sup(env, "up", "alpha").returncode == 0
    wait_for(lambda: _running_pid(state, "alpha", not_pid=pid), 5, "alpha started again")
    tracker.note("alpha")
    # Asked for, so not a crash-restart: counted apart, and the log says why it started.
    alpha = wait_for(lambda: _status(env)[1]["processes"]["alpha"], 5, "alpha's status")
    assert alpha["restarts"] == 0 and alpha.get("requested_restarts") == 1, alpha
    assert "restarts 0 (+1 by you with up)" in _line(run_sup(env, "status").stdout, "alpha")
    assert _headers(logs, "alpha")[-1].endswith("(start #2: asked for with ./supervisor.sh up)")
    assert run_sup(env, "down", "nosuch").returncode == 1


def _line(text: str, name: str) -> str:
    return next(ln for ln in text.splitlines() if ln.startswith(f"{name} "))


def _headers(logs: Path, name: str) -> list[str]:
    """The monitor's "---- supervisor: starting NAME (start #N: why)" lines in logs/NAME.log, without the time."""
    lines = (logs / f"{name}.log").read_text().splitlines()
    return [ln.rsplit(" at ", 1)[0] for ln in lines if ln.startswith(f"---- supervisor: starting {name} ")]


def test_start_numbers_in_a_log_go_on_across_restarts_of_the_child_and_of_the_monitor(sup, tmp_path):
    """"start #N" in logs/NAME.log counts every start in this STATE_DIR: a crash-restart is #2, and a
    `restart` (a new monitor) goes on with #3 instead of saying #1 again."""
    env, state, logs, tracker = sup
    env["SUPERVISOR_CHILDREN_FILE"] = str(write_children(tmp_path, [stub_child("alpha")]))
    _start(env)
    pid = wait_for(lambda: _running_pid(state, "alpha", fresh_after=0), 10, "alpha running")
    tracker.note_all()
    os.kill(pid, signal.SIGKILL)
    pid2 = wait_for(lambda: _running_pid(state, "alpha", not_pid=pid), 10, "alpha restarted")
    tracker.note_all()
    first_monitor = pid_record(state, "monitor")["pid"]
    r = run_sup(env, "restart")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: _running_pid(state, "alpha", not_pid=pid2), 10, "alpha running under the new monitor")
    tracker.note_all()
    second_monitor = pid_record(state, "monitor")["pid"]
    headers = wait_for(lambda: len(_headers(logs, "alpha")) == 3 and _headers(logs, "alpha"), 5, "three headers")
    assert [int(re.search(r"\(start #(\d+)", h)[1]) for h in headers] == [1, 2, 3], headers
    head = "---- supervisor: starting alpha (start #"
    assert headers == [
        f"{head}1: first start by monitor pid {first_monitor})",
        f"{head}2: restart; last run: exited with code -9)",
        f"{head}3: first start by monitor pid {second_monitor})",
    ]
    code, st = _status(env)
    assert code == 0 and st["processes"]["alpha"]["restarts"] == 0  # the new monitor's count of crash-restarts
    assert f"(start #3: first start by monitor pid {second_monitor})" in (logs / "monitor.log").read_text()


def test_corrupt_or_reused_pid_files_are_never_killed(sup, tmp_path):
    env, state, logs, tracker = sup
    env["SUPERVISOR_CHILDREN_FILE"] = str(write_children(tmp_path, [stub_child("alpha"), stub_child("beta")]))
    # An unrelated process in a group of its own, whose pid ends up in our pid files.
    victim = subprocess.Popen([sys.executable, "-c", "import signal\nsignal.pause()"],
                              start_new_session=True)
    try:
        from monitor.procs import ident_of

        real = ident_of(victim.pid)
        pids = state / "pids"
        pids.mkdir(parents=True)
        # same pid and group, different start time: the pid was reused
        (pids / "alpha.json").write_text(json.dumps({"name": "alpha", "pid": victim.pid, "start": "linux:1",
                                                     "pgid": victim.pid, "descendants": [[victim.pid, "x", 5]]}))
        # same pid and start time, another group: not the process we started either
        (pids / "monitor.json").write_text(json.dumps({"name": "monitor", "pid": victim.pid, "start": real.start,
                                                       "pgid": victim.pid + 1}))
        (pids / "beta.json").write_text("{not json")
        status = run_sup(env, "status", "--json")
        assert status.returncode == 3
        st = json.loads(status.stdout)
        assert st["processes"]["alpha"]["state"] == "stopped" and st["monitor"]["state"] != "running"

        r = run_sup(env, "stop")
        assert r.returncode == 0, r.stderr
        assert "now belongs to another process" in r.stdout and "unreadable" in r.stdout
        assert process_alive(victim.pid) and victim.poll() is None, "an unrelated process was killed"
        assert not list(pids.glob("*.json"))

        # A stale pid file does not block a start either, and the start does not touch the victim.
        (pids / "alpha.json").write_text(json.dumps({"name": "alpha", "pid": victim.pid, "start": "linux:1",
                                                     "pgid": victim.pid}))
        _start(env)
        wait_for(lambda: _running_pid(state, "alpha", not_pid=victim.pid), 10, "alpha started")
        tracker.note_all()
        assert run_sup(env, "stop").returncode == 0
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait(timeout=10)


@pytest.mark.parametrize("case", ["unparseable", "bad_value", "missing_explicit", "live_unconfirmed"])
def test_bad_config_gives_one_clear_line_and_starts_nothing(sup, tmp_path, case):
    env, state, logs, tracker = sup
    env["SUPERVISOR_CHILDREN_FILE"] = str(write_children(tmp_path, [stub_child("alpha")]))
    dotenv = Path(env["DOTENV_PATH"])
    expect = {"unparseable": "line 2 could not be parsed", "bad_value": "POSITION_SIZE",
              "missing_explicit": "does not exist", "live_unconfirmed": "needs an explicit confirmation"}[case]
    if case == "unparseable":
        dotenv.write_text('MODE=demo\nMETAMASK_PASSWORD="s3cret-unterminated\n')
    elif case == "bad_value":
        dotenv.write_text("POSITION_SIZE=ten\n")
    elif case == "missing_explicit":
        dotenv.unlink()
    else:
        dotenv.write_text("MODE=live\n")
    r = run_sup(env, "start")
    assert r.returncode == 2, r.stdout + r.stderr
    assert expect in r.stderr and "nothing started" in r.stderr
    assert "s3cret" not in r.stdout + r.stderr
    assert not (state / "pids").exists() or not list((state / "pids").glob("*.json"))
    assert not (state / "supervisor.json").exists() and not (logs / "alpha.log").exists()


def test_live_start_needs_the_phrase_and_passes_it_only_through_the_environment(sup, tmp_path):
    env, state, logs, tracker = sup
    dump = tmp_path / "env.json"
    env["SUPERVISOR_CHILDREN_FILE"] = str(write_children(tmp_path, [stub_child("alpha", "--env-dump", str(dump))]))
    r = run_sup(env, "start", "--live", stdin="I_UNDERSTAND\n")        # .env says MODE=demo: --live alone is not live
    assert r.returncode == 2 and "configuration says MODE=demo" in r.stderr and "nothing started" in r.stderr
    assert not (state / "supervisor.json").exists()
    Path(env["DOTENV_PATH"]).write_text("MODE=live\n")
    r = run_sup(env, "start", "--live", stdin="yes\n")
    assert r.returncode == 2 and "not confirmed" in r.stderr and not (state / "supervisor.json").exists()

    _start(env, "--live", stdin="I_UNDERSTAND\n")
    wait_for(dump.exists, 10, "the child's environment dump")
    tracker.note_all()
    seen = json.loads(dump.read_text())
    assert seen["MODE"] == "live" and seen["LIVE_CONFIRM"] == "I_UNDERSTAND"
    for name in ("monitor", "alpha"):
        pid = pid_record(state, name)["pid"]
        assert "I_UNDERSTAND" not in procfs.cmdline(pid)  # "" without /proc
    assert run_sup(env, "status").stdout.startswith("mode live")


def test_a_live_start_the_executor_refuses_says_so_and_leaves_nothing_running(sup, tmp_path):
    """Found in a user's trial: live, the executor refused (no METAMASK_PASSWORD, the wallet locked) a few
    seconds after `start` had said 'started in live mode'; the other processes ran on. `start` now waits
    for the executor's verdict: its reason, exit 2, everything stopped."""
    env, state, logs, tracker = sup
    env["SUPERVISOR_CHILDREN_FILE"] = str(write_children(tmp_path, [
        stub_child("alpha"), stub_child("executor", "--refuse", str(state / "executor.json"))]))
    Path(env["DOTENV_PATH"]).write_text("MODE=live\n")
    r = run_sup(env, "start", "--live", stdin="I_UNDERSTAND\n")
    tracker.note_all()
    assert r.returncode == 2, r.stdout + r.stderr
    assert "live mode refused by the executor: live mode needs METAMASK_PASSWORD (stub)" in r.stderr
    assert "started in live mode" not in r.stdout
    wait_for(lambda: not (state / "pids").exists() or not list((state / "pids").glob("*.json")), 10,
             "everything stopped")
    assert _status(env)[0] == 3


def test_restart_with_a_bad_configuration_stops_nothing(sup, tmp_path):
    """A typo in .env, then restart: the configuration is refused before anything is stopped, so the
    running agent keeps running (it used to be stopped, then not started)."""
    env, state, logs, tracker = sup
    env["SUPERVISOR_CHILDREN_FILE"] = str(write_children(tmp_path, [stub_child("alpha")]))
    _start(env)
    pid = wait_for(lambda: _running_pid(state, "alpha", fresh_after=0), 10, "alpha running")
    tracker.note_all()
    Path(env["DOTENV_PATH"]).write_text("MODE=demo\nPOSITION_SIZE=ten\n")
    r = run_sup(env, "restart")
    assert r.returncode == 2 and "POSITION_SIZE" in r.stderr and "nothing stopped" in r.stderr, r.stderr
    assert r.stderr.count("config error") == 1, r.stderr                   # the refusal once
    r = run_sup(env, "restart", "--live")                  # --live on a demo configuration: refused first too
    assert r.returncode == 2 and "configuration says MODE=demo" in r.stderr, r.stderr
    assert pid_record(state, "alpha")["pid"] == pid and run_sup(env, "status").returncode == 0
    Path(env["DOTENV_PATH"]).write_text("MODE=demo\nFOO_BAR=1\n")     # valid, with a warning: said once
    r = run_sup(env, "restart")
    tracker.note_all()
    assert r.returncode == 0 and (r.stdout + r.stderr).count("FOO_BAR in") == 1, r.stdout + r.stderr
    assert run_sup(env, "stop").returncode == 0


def test_status_says_when_the_monitor_is_gone(sup, tmp_path):
    env, state, logs, tracker = sup
    env["SUPERVISOR_CHILDREN_FILE"] = str(write_children(tmp_path, [stub_child("alpha")]))
    _start(env)
    pid = wait_for(lambda: _running_pid(state, "alpha", fresh_after=0), 10, "alpha running")
    tracker.note_all()
    mon = pid_record(state, "monitor")["pid"]
    os.kill(mon, signal.SIGKILL)
    wait_for(lambda: not process_alive(mon), 5, "monitor killed")
    code, st = _status(env)
    assert code == 3 and st["monitor"]["state"] == "gone"
    assert st["processes"]["alpha"]["state"] == "running (unwatched)"
    assert "GONE" in run_sup(env, "status").stdout
    r = run_sup(env, "start")
    assert r.returncode == 1 and "still run" in r.stderr and process_alive(pid)
    r = run_sup(env, "restart")
    assert r.returncode == 0, r.stderr
    assert not process_alive(pid)
    wait_for(lambda: _running_pid(state, "alpha", not_pid=pid), 10, "alpha running after restart")
    tracker.note_all()


CHILD_READS_ITS_SECRETS = (
    "import os, sys\n"
    "from core.config import load_config\n"
    "cfg = load_config()\n"
    "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)\n"
    "os.write(fd, (str(cfg.metamask_password) + '\\n' + str(cfg.discord_webhook_url)).encode())\n"
    "os.close(fd)\n"
    "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])\n"
)


def test_secrets_reach_children_in_a_private_file_not_their_environment_and_files_are_private(sup, tmp_path):
    """Issue 13, item 7: no secret in a child's /proc/<pid>/environ (it gets SECRETS_FILE, a 0600 file
    the monitor removes at stop); umask 077: state/ and logs/ 0700, what is created in them 0600."""
    env, state, logs, tracker = sup
    password, token = "pw-Zq9-not-in-environ", "tok-Zq9-not-in-environ"
    Path(env["DOTENV_PATH"]).write_text(f"MODE=demo\nMETAMASK_PASSWORD={password}\n")
    env["CLOBBOT_DISCORD_WEBHOOK_URL"] = f"http://127.0.0.1:9/api/webhooks/1/{token}"   # from the environment
    seen = tmp_path / "seen-by-child"
    stub = stub_child("alpha")
    stub["argv"] = ["{python}", "-c", CHILD_READS_ITS_SECRETS, str(seen), *stub["argv"][1:]]
    env["SUPERVISOR_CHILDREN_FILE"] = str(write_children(tmp_path, [stub]))
    _start(env)
    pid = wait_for(lambda: _running_pid(state, "alpha", fresh_after=0), 10, "alpha running")
    tracker.note_all()
    # The child got both secrets through core.config ...
    assert seen.read_text().splitlines() == [password, env["CLOBBOT_DISCORD_WEBHOOK_URL"]]
    # ... and neither is in its environment (nor REPLICA_WALLET_PASSWORD); SECRETS_FILE names the file.
    secrets = state / "secrets.json"
    if procfs.HAVE_PROC:
        entries = procfs.environ(pid)
        assert entries is not None
        raw = b"\0".join(entries)
        assert password.encode() not in raw and token.encode() not in raw
        assert not [e for e in entries if e.startswith((b"METAMASK_PASSWORD=", b"REPLICA_WALLET_PASSWORD=",
                                                        b"CLOBBOT_DISCORD_WEBHOOK_URL="))]
        assert f"SECRETS_FILE={secrets}".encode() in entries
    assert json.loads(secrets.read_text())["METAMASK_PASSWORD"] == password
    # Private: the directories 0700, every file the monitor and its children created 0600.
    for d in (state, logs, state / "pids", state / "heartbeat"):
        assert d.stat().st_mode & 0o777 == 0o700, d
    for f in (secrets, logs / "alpha.log", logs / "monitor.log", state / "pids" / "alpha.json",
              state / "pids" / "monitor.json", state / "supervisor.json", state / "supervisor.lock",
              state / "heartbeat" / "alpha"):
        assert f.stat().st_mode & 0o777 == 0o600, f"{f}: {f.stat().st_mode & 0o777:o}"
    assert password not in (logs / "monitor.log").read_text() + (logs / "alpha.log").read_text()
    r = run_sup(env, "stop")
    assert r.returncode == 0, r.stderr
    assert not secrets.exists() and not process_alive(pid)


def test_a_typo_in_env_never_keeps_status_or_stop_from_working(sup, tmp_path):
    env, state, logs, tracker = sup
    env["SUPERVISOR_CHILDREN_FILE"] = str(write_children(tmp_path, [stub_child("alpha")]))
    _start(env)
    wait_for(lambda: _running_pid(state, "alpha", fresh_after=0), 10, "alpha running")
    tracker.note_all()
    (tmp_path / "test.env").write_text("MODE=demo\nMAX_DAILY_LOSS=abc\n")        # the user edits .env while it runs
    status = run_sup(env, "status")
    assert status.returncode == 0, status.stdout + status.stderr               # everything is still up, and shown
    assert "MAX_DAILY_LOSS" in status.stderr and "alpha" in status.stdout
    stop = run_sup(env, "stop", timeout=60)
    assert stop.returncode == 0 and "MAX_DAILY_LOSS" in stop.stderr, stop.stdout + stop.stderr
    assert not tracker.kill_leftovers()                                        # nothing left running
    assert run_sup(env, "start").returncode == 2                               # but nothing starts on it
