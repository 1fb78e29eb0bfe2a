"""`./supervisor.sh install | uninstall` and the monitor's systemd notifications (issue 16).

Real processes and files; the service managers are stood in for only where the real one cannot run
here: the crontab through SUPERVISOR_CRONTAB (a script keeping a temporary file: the real user's
crontab is never touched), systemctl through SUPERVISOR_SYSTEMCTL (a script that runs the unit's
ExecStart the way systemd would, without systemd). The unit file itself goes through the real
`systemd-analyze verify`, and the notify messages through a real datagram socket.
"""

from __future__ import annotations

import json
import os
import plistlib
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from core import procfs
from monitor import service as svc
from monitor import service_cli
from tests.supervisor_support import (
    FAST_KNOBS,
    REPO,
    Tracker,
    pid_record,
    process_alive,
    run_sup,
    stub_child,
    write_children,
)
from tests.waiting import wait_for

FAKE_CRONTAB = """#!/bin/sh
# A stand-in for crontab(1) keeping the table in one file (-l, -r, FILE), logging each call.
store={store}
echo "$*" >> {calls}
case "$1" in
  -l) if [ -f "$store" ]; then cat "$store"; else echo "no crontab for $(id -un)" >&2; exit 1; fi ;;
  -r) rm -f "$store" ;;
  *) cat "$1" > "$store" ;;
esac
"""

# systemctl --user, as far as the supervisor uses it: `start` runs the unit's command detached the
# way systemd's ExecStart would and returns once the monitor has written its pid file.
FAKE_SYSTEMCTL = """#!{python}
import json, os, signal, subprocess, sys, time
from pathlib import Path
state, log = Path({state!r}), Path({log!r})
args = [a for a in sys.argv[1:] if a != "--user"]
with open({calls!r}, "a") as fh:
    fh.write(" ".join(args) + "\\n")
def main_pid():
    try:
        pid = json.loads((state / "pids" / "monitor.json").read_text())["pid"]
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError, KeyError):
        return 0
def until(cond, what):
    # Woken by the state directory's file events (inotify, watchdog), never by a timer: the pid file
    # the monitor writes when it is up, and removes when it is gone.
    import threading
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer
    changed = threading.Event()
    class Changed(FileSystemEventHandler):
        def on_any_event(self, event):
            changed.set()
    state.mkdir(parents=True, exist_ok=True)
    observer = Observer()
    observer.schedule(Changed(), str(state), recursive=True)
    observer.start()
    try:
        deadline = time.monotonic() + 60
        while not cond():
            if not changed.wait(max(0.0, deadline - time.monotonic())):
                sys.exit("fake systemctl: timed out waiting for " + what)
            changed.clear()
    finally:
        observer.stop()
        observer.join(5)
def exited(pid, what):
    # The monitor is no child of this program: a pidfd becomes readable when it exits.
    import select
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        if not select.select([fd], [], [], 60)[0]:
            sys.exit("fake systemctl: timed out waiting for " + what)
    finally:
        os.close(fd)
cmd = args[0] if args else ""
if cmd == "is-system-running":
    print("running")
elif cmd == "is-active":
    print("active" if main_pid() else "inactive")
    sys.exit(0 if main_pid() else 3)
elif cmd == "is-enabled":
    print("enabled")
elif cmd == "show":
    print(main_pid())
elif cmd == "start":
    with open(log, "ab") as out:
        subprocess.Popen([{repo!r} + "/supervisor.sh", "service-run"], cwd={repo!r}, stdin=subprocess.DEVNULL,
                         stdout=out, stderr=out, start_new_session=True)
    until(main_pid, "the monitor's pid file")
elif cmd == "stop":
    pid = main_pid()
    if pid:
        os.kill(pid, signal.SIGTERM)
        exited(pid, "the monitor to exit")
"""

# A child that beats for a while, then hangs: alive, ignoring TERM, no more beats. It writes down
# what of systemd's notify variables reached it (none should).
HANGING_CHILD = """import json, os, signal, sys, threading, time
from pathlib import Path
beat, dump, beats_for = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
signal.signal(signal.SIGTERM, signal.SIG_IGN)
dump.write_text(json.dumps({k: os.environ.get(k) for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}))
beat.parent.mkdir(parents=True, exist_ok=True)
t0, pace = time.monotonic(), threading.Event()
while True:
    if time.monotonic() - t0 < beats_for:
        beat.touch()
        os.utime(beat)
    pace.wait(0.05)   # its workload's pace, not a wait for anything
"""


def _script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o700)
    return path


@pytest.fixture
def svc_env(iso_env, tmp_path):
    """(env, state_dir, tracker): a private .env, fast knobs, stub children, fake service managers
    and a private HOME/XDG_CONFIG_HOME, so nothing outside tmp_path is written."""
    env = dict(iso_env)
    dotenv = tmp_path / "test.env"
    dotenv.write_text("MODE=demo\n")
    dotenv.chmod(0o600)
    env.update(FAST_KNOBS, DOTENV_PATH=str(dotenv), HOME=str(tmp_path / "home"),
               XDG_CONFIG_HOME=str(tmp_path / "config"))
    (tmp_path / "home").mkdir()
    env["SUPERVISOR_CHILDREN_FILE"] = str(write_children(tmp_path, [stub_child("alpha", "--env-dump",
                                                                               str(tmp_path / "alpha-env.json"))]))
    env["SUPERVISOR_CRONTAB"] = str(_script(tmp_path / "crontab", FAKE_CRONTAB.format(
        store=tmp_path / "crontab.txt", calls=tmp_path / "crontab.calls")))
    state = Path(env["STATE_DIR"])
    tracker = Tracker(state)
    try:
        yield env, state, tracker
    finally:
        tracker.note_all()
        if tracker.anything_recorded():
            env.pop("SUPERVISOR_SERVICE_MANAGER", None)
            env.pop("SUPERVISOR_SYSTEMCTL", None)
            run_sup(env, "stop", timeout=60)
        leftovers = tracker.kill_leftovers()
        assert not leftovers, f"processes left running: {leftovers}"


def _ok(r: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert r.returncode == 0, f"exit {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r


def _json(path: Path) -> dict | None:
    """The file's JSON once it is complete (None while missing or half written)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _in_process(what, env: dict, *args) -> str:
    """install/uninstall/start_unit called directly (what the shell calls, without a second bootstrap)."""
    from core.config import load_config

    lines: list[str] = []
    assert what(load_config(env), *args, env, lines.append) == 0, lines
    return "\n".join(lines)


# ---- the unit file --------------------------------------------------------------------------------
def test_unit_file_passes_systemd_analyze_verify(tmp_path):
    carried = {"PATH": "/usr/local/bin:/usr/bin:/bin", "DOTENV_PATH": 'my "odd" 100% .env', "STATE_DIR": "/tmp/a b"}
    text = svc.unit_text(REPO, carried)
    keys = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    assert keys["Type"] == "notify" and keys["NotifyAccess"] == "main" and keys["Restart"] == "on-failure"
    assert keys["WatchdogSec"] == str(svc.WATCHDOG_SEC) and keys["ExecStart"].endswith("service-run")
    assert keys["WantedBy"] == "default.target" and keys["KillMode"] == "mixed"
    exe = shutil.which("systemd-analyze")
    if not exe:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd); the unit's keys were"
                    " checked above, not by systemd")
    unit = tmp_path / svc.UNIT
    unit.write_text(text)
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}

    def verify(path: Path) -> subprocess.CompletedProcess:
        return subprocess.run([exe, "--user", "verify", str(path)], capture_output=True, text=True, timeout=60,
                              env=env, cwd=tmp_path)

    r = verify(unit)
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr
    # The check can fail: a misspelt key and a missing ExecStart are reported.
    bad = tmp_path / "bad.service"
    bad.write_text(text.replace("WatchdogSec=", "WatchdogSecs=").replace("supervisor.sh", "no-such.sh"))
    r = verify(bad)
    assert "WatchdogSecs" in r.stderr and "no-such.sh" in r.stderr


def test_the_shell_prechecks_name_what_service_py_writes():
    """supervisor.sh looks for these names without Python (start/stop stay cheap when nothing is installed)."""
    text = (REPO / "supervisor.sh").read_text()
    for name in (f"systemd/user/{svc.UNIT}", f"LaunchAgents/{svc.LABEL}.plist", f'"{svc.CRON_MARK}"'):
        assert name in text, name


# ---- crontab ----------------------------------------------------------------------------------------
def test_cron_install_twice_leaves_one_line_and_uninstall_removes_exactly_it(svc_env, tmp_path):
    env, state, _tracker = svc_env
    env.update(SUPERVISOR_SERVICE_MANAGER="cron", METAMASK_PASSWORD="not-for-the-crontab")
    store = tmp_path / "crontab.txt"
    mine = "# my own jobs\nMAILTO=me@example.org\n*/5 * * * * /usr/bin/true  # clobbot-like, not ours\n"
    store.write_text(mine)
    first = _ok(run_sup(env, "install"))
    assert "@reboot line added" in first.stdout
    assert "not carried" in first.stdout and "METAMASK_PASSWORD" in first.stdout
    assert "already installed and unchanged" in _in_process(service_cli.install, env)
    table = store.read_text()
    ours = [line for line in table.splitlines() if svc.CRON_MARK in line]
    assert len(ours) == 1, table
    assert table.startswith(mine) and ours[0].startswith("@reboot ") and "service-run --detach" in ours[0]
    assert "not-for-the-crontab" not in table and "METAMASK_PASSWORD" not in table
    assert f"STATE_DIR={state}" in ours[0] and "SUPERVISOR_CHILDREN_FILE=" in ours[0]
    status = run_sup(env, "status")
    assert "@reboot line in the crontab" in status.stdout, status.stdout

    out = _ok(run_sup(env, "uninstall")).stdout
    assert "removed from your crontab" in out and store.read_text() == mine
    assert "not installed" in _in_process(service_cli.uninstall, env) and store.read_text() == mine


def test_cron_install_refuses_a_crontab_it_cannot_read(svc_env, tmp_path):
    env, _state, _tracker = svc_env
    env["SUPERVISOR_SERVICE_MANAGER"] = "cron"
    env["SUPERVISOR_CRONTAB"] = str(_script(tmp_path / "broken-crontab",
                                            "#!/bin/sh\necho 'crontab: permission denied' >&2\nexit 1\n"))
    with pytest.raises(svc.ServiceError, match="left as it was"):
        _in_process(service_cli.install, env)


def test_live_cron_service_starts_live_from_the_stored_confirmation(svc_env, tmp_path):
    """install --live: the phrase is asked now and stored 0600 in STATE_DIR, never in the crontab; the
    @reboot command, run as cron would (a bare environment), starts the same children in live mode."""
    env, state, tracker = svc_env
    env["SUPERVISOR_SERVICE_MANAGER"] = "cron"
    store = tmp_path / "crontab.txt"
    Path(env["DOTENV_PATH"]).write_text("MODE=live\n")       # live needs MODE=live and the phrase
    r = run_sup(env, "install", "--live", stdin="yes\n")
    assert r.returncode == 2 and "not confirmed" in r.stderr and not store.exists()
    _ok(run_sup(env, "install", "--live", stdin="I_UNDERSTAND\n"))
    stored = state / svc.LIVE_FILE
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600 and json.loads(stored.read_text())["confirm"] == "I_UNDERSTAND"
    line = next(ln for ln in store.read_text().splitlines() if svc.CRON_MARK in ln)
    assert "I_UNDERSTAND" not in line and "LIVE_CONFIRM" not in line and "MODE=live" not in line

    bare = {"HOME": env["HOME"], "LOGNAME": "test", "SHELL": "/bin/sh", "PATH": "/usr/bin:/bin"}
    subprocess.run(["/bin/sh", "-c", line.removeprefix("@reboot ")], env=bare, timeout=90, check=True)
    seen = wait_for(lambda: _json(tmp_path / "alpha-env.json"), 30, "the child's environment dump")
    tracker.note_all()
    assert seen["MODE"] == "live" and seen["LIVE_CONFIRM"] == "I_UNDERSTAND"
    for name in ("monitor", "alpha"):
        assert "I_UNDERSTAND" not in procfs.cmdline(pid_record(state, name)["pid"])
    log = Path(env["LOG_DIR"]) / "service.log"
    assert "started in live mode" in log.read_text() and stat.S_IMODE(log.stat().st_mode) == 0o600
    status = run_sup(env, "status")
    assert status.returncode == 0 and "live (confirmed at install time)" in status.stdout, status.stdout

    out = _ok(run_sup(env, "stop")).stdout
    assert "everything stopped" in out and "@reboot line starts it at the next boot" in out
    # (the CLI's uninstall reads the config leniently: a MODE=live .env without the phrase in this shell)
    lenient = {**env, "LIVE_CONFIRM": "I_UNDERSTAND"}
    assert "live confirmation was removed" in _in_process(service_cli.uninstall, lenient)
    assert not stored.exists() and svc.CRON_MARK not in store.read_text()


# ---- systemd (systemctl stood in for) and launchd -------------------------------------------------
def test_systemd_install_start_stop_uninstall(svc_env, tmp_path):
    env, state, tracker = svc_env
    calls = tmp_path / "systemctl.calls"
    env.update(SUPERVISOR_SERVICE_MANAGER="systemd", SUPERVISOR_SYSTEMCTL=str(_script(
        tmp_path / "systemctl", FAKE_SYSTEMCTL.format(python=sys.executable, state=str(state), repo=str(REPO),
                                                      log=str(tmp_path / "unit.log"), calls=str(calls)))))
    out = _ok(run_sup(env, "install")).stdout
    assert "already installed and unchanged" in _in_process(service_cli.install, env)
    unit = tmp_path / "config" / "systemd" / "user" / svc.UNIT
    assert unit.is_file() and len(list(unit.parent.iterdir())) == 1
    assert "enable-linger" in out or svc.linger_on(svc.user_name())
    assert calls.read_text().count(f"enable {svc.UNIT}") == 2
    from core.config import load_config

    # a shell with another set-up (here: another STATE_DIR) never drives the unit
    assert service_cli._systemd_here(env) and not service_cli._systemd_here({**env, "STATE_DIR": str(tmp_path)})
    # not a live service: start --live is refused, nothing started
    assert service_cli.start_unit(load_config(env), True, env) == 2 and "start " not in calls.read_text()

    started = _ok(run_sup(env, "start")).stdout
    tracker.note_all()
    assert "started in demo mode" in started and f"start {svc.UNIT}" in calls.read_text()
    assert "(enabled, active)" in run_sup(env, "status").stdout
    stopped = _ok(run_sup(env, "stop")).stdout
    assert f"stop {svc.UNIT}" in calls.read_text() and "everything stopped" in stopped
    assert "will not start it again until ./supervisor.sh start" in stopped
    assert not pid_record(state, "monitor") and not pid_record(state, "alpha")

    assert "disabled and removed" in _in_process(service_cli.uninstall, env)
    assert not unit.exists() and f"disable {svc.UNIT}" in calls.read_text() and svc.installed(env) is None


def test_launchd_plist_is_valid_and_uninstall_removes_it(svc_env, tmp_path):
    from core.config import load_config

    env, state, _tracker = svc_env
    env.update(SUPERVISOR_SERVICE_MANAGER="launchd", CLOBBOT_DISCORD_WEBHOOK_URL="https://secret.example/hook")
    cfg = load_config(env)
    lines = [_in_process(service_cli.install, env)]
    assert "unchanged" in _in_process(service_cli.install, env)
    path = tmp_path / "home" / "Library" / "LaunchAgents" / f"{svc.LABEL}.plist"
    doc = plistlib.loads(path.read_bytes())
    assert doc["Label"] == svc.LABEL and doc["ProgramArguments"] == [str(REPO / "supervisor.sh"), "service-run",
                                                                     "--detach"]
    assert os.access(doc["ProgramArguments"][0], os.X_OK) and doc["WorkingDirectory"] == str(REPO)
    assert doc["RunAtLoad"] is True and doc["AbandonProcessGroup"] is True
    assert doc["EnvironmentVariables"]["STATE_DIR"] == str(state)
    assert "secret.example" not in path.read_text() and "CLOBBOT_DISCORD_WEBHOOK_URL" in "\n".join(lines)
    assert svc.installed(env)["kind"] == "launchd" and len(list(path.parent.iterdir())) == 1
    assert "launchd agent removed" in _in_process(service_cli.uninstall, env)
    assert not path.exists() and svc.installed(env) is None and cfg.mode == "demo"


# ---- the monitor's notify messages ------------------------------------------------------------------
def test_notify_send_to_a_socket_file_and_a_missing_socket_warned_once(tmp_path, caplog):
    from monitor.sd_notify import ServiceNotifier, send

    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(5)
        assert send("READY=1\nSTATUS=x", path)
        assert sock.recv(4096) == b"READY=1\nSTATUS=x"
    assert not send("READY=1", None) and not send("READY=1", "vsock:2:3")
    gone = ServiceNotifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock"), "WATCHDOG_USEC": "1000"})
    for _ in range(5):
        gone.update(time.time(), [], True)  # every tick: the monitor carries on, one warning in all
    assert gone.failing and len([r for r in caplog.records if "notify message" in r.getMessage()]) == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract-namespace sockets are Linux's")
def test_monitor_notifies_ready_status_and_pauses_watchdog_while_a_heartbeat_is_stale(iso_env, tmp_path):
    """A real monitor: READY=1 once the children are up, WATCHDOG=1 at half WATCHDOG_USEC while every
    heartbeat is fresh, none from the moment a child's heartbeat goes stale until the monitor has
    replaced it, STOPPING=1 on TERM; the children never see systemd's variables."""
    state = Path(iso_env["STATE_DIR"])
    hang = tmp_path / "hang.py"
    hang.write_text(HANGING_CHILD)
    dump = tmp_path / "hang-env.json"
    kids = [stub_child("steady"),
            {"name": "hangs", "argv": ["{python}", str(hang), "{state_dir}/heartbeat/hangs", str(dump), "1.5"],
             "heartbeat": ["{state_dir}/heartbeat/hangs"], "stale_after": 1}]
    name = f"clobbot-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    env = {**iso_env, **FAST_KNOBS, "SUPERVISOR_CHILDREN_FILE": str(write_children(tmp_path, kids)),
           "NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "400000"}
    tracker = Tracker(state)
    msgs: list[tuple[float, str]] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        with open(tmp_path / "monitor.out", "wb") as out:
            mon = subprocess.Popen([sys.executable, "-m", "monitor", "run", "--foreground"], cwd=REPO, env=env,
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        try:
            def recovered() -> bool:
                sock.settimeout(0.5)
                try:
                    data = sock.recv(4096).decode()
                except TimeoutError:
                    return False
                msgs.extend((time.monotonic(), m) for m in data.splitlines())
                texts = [m for _, m in msgs]
                stale = next((i for i, m in enumerate(texts) if "STALE" in m), None)
                return stale is not None and any(m == "WATCHDOG=1" for m in texts[stale:]) \
                    and any("heartbeats fresh" in m for m in texts[stale:])

            wait_for(recovered, 30, "a stale heartbeat, then the monitor's recovery, in the notify messages")
            tracker.note_all()
            mon.send_signal(signal.SIGTERM)
            sock.settimeout(20)
            while not any(m == "STOPPING=1" for _, m in msgs):
                msgs.extend((time.monotonic(), m) for m in sock.recv(4096).decode().splitlines())
            assert mon.wait(30) == 0
        finally:
            if mon.poll() is None:
                mon.kill()
                mon.wait(10)
            tracker.kill_leftovers()
    texts = [m for _, m in msgs]
    assert texts.count("READY=1") == 1 and texts.index("READY=1") < texts.index("WATCHDOG=1")
    stale = next(i for i, m in enumerate(texts) if "STALE" in m)
    fresh = next(i for i in range(stale, len(texts)) if "heartbeats fresh" in texts[i])
    assert "hangs" in texts[stale] and "WATCHDOG=1" in texts[:stale]
    assert "WATCHDOG=1" not in texts[stale:fresh], texts[stale:fresh]
    # The pause was real: the monitor took its TERM/KILL grace (3 s) to replace the hung child.
    before = max(t for t, m in msgs[:stale] if m == "WATCHDOG=1")
    after = min(t for t, m in msgs[fresh:] if m == "WATCHDOG=1")
    assert after - before >= 2.0, after - before
    # Healthy, the pings come at half of WATCHDOG_USEC (0.2 s), never much slower.
    pings = [t for t, m in msgs[:stale] if m == "WATCHDOG=1"]
    assert len(pings) >= 3 and max(b - a for a, b in zip(pings, pings[1:], strict=False)) < 1.5
    assert _json(dump) == {"NOTIFY_SOCKET": None, "WATCHDOG_USEC": None, "WATCHDOG_PID": None}
    assert not process_alive(mon.pid)
