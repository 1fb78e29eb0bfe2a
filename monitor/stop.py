"""`stop`: ask the monitor to stop everything, then sweep whatever its pid files still name.

Safe by construction: a process is signalled only when its pid, start time and process group
match its pid file. A corrupt pid file, or a pid now used by an unrelated process, is reported
and removed, and nothing is signalled. Idempotent: with nothing running it says so and exits 0.
"""

from __future__ import annotations

import fcntl
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from core.durable_files import atomic_write_json, read_json
from core.exit_codes import ExitStatus

from . import pidfiles
from .procs import Ident, run_tag, signal_group, signal_leader, signal_members, tagged
from .settings import Knobs, Paths
from .states import ChildState

POLL_S = 0.05
_ALIVE_STATES = {s.value for s in (ChildState.RUNNING, ChildState.STOPPING, ChildState.BACKOFF, ChildState.STARTING,
                                   ChildState.EXITED)} | {"waiting"}


def lock_held(paths: Paths) -> bool:
    """True when some process holds the start lock (a monitor is running)."""
    try:
        fd = os.open(paths.lock_file, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases our probe lock, if we got it
    return False


def _wait(cond: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(POLL_S)
    return cond()


def stop_group(ident: Ident, desc: list[Ident], timeout: float) -> bool:
    """TERM the leader (and CONT its group), wait, then KILL the group and recorded leftovers. True if gone.

    TERM goes to the leader only so it can shut down cleanly (see supervise.Monitor._begin_stop)."""
    signal_leader(ident, signal.SIGTERM)
    signal_group(ident, signal.SIGCONT)

    def gone() -> bool:
        return not ident.alive() and not any(d.alive() for d in desc)

    if not _wait(lambda: not ident.alive(), timeout):
        signal_group(ident, signal.SIGKILL)
    # Leftovers (Chromium and its helpers live in groups of their own): a short grace, then KILL.
    if not _wait(gone, 3.0):
        signal_members([d for d in desc if d.alive()], signal.SIGKILL)
    return _wait(gone, 5.0)


def _child_files(paths: Paths) -> list[Path]:
    files = [f for f in paths.pid_dir.glob("*.json") if f.stem != "monitor"] if paths.pid_dir.is_dir() else []
    doc = read_json(paths.status_file)
    order = doc.data.get("order", []) if doc.ok and doc.data else []
    rank = {name: i for i, name in enumerate(order)}
    return sorted(files, key=lambda f: (-rank.get(f.stem, -1), f.name))  # reverse start order; unknown last


def stop_all(paths: Paths, knobs: Knobs, out: Callable[[str], None] = print) -> ExitStatus:
    did = survived = False
    mon_file = paths.pid_file("monitor")
    mon, problem = pidfiles.read(mon_file)
    if mon is None and lock_held(paths):
        # A monitor holds the lock but has not written its pid file yet (a start in progress).
        _wait(lambda: pidfiles.read(mon_file)[0] is not None or not lock_held(paths), 10.0)
        mon, problem = pidfiles.read(mon_file)
    n_children = len(_child_files(paths))
    if mon is not None and mon.ident.alive():
        did = True
        out(f"stop: asking the monitor (pid {mon.ident.pid}) to stop its processes")
        os.kill(mon.ident.pid, signal.SIGTERM)
        limit = (n_children + 1) * (knobs.stop_timeout + 4.0) + 5.0
        if not _wait(lambda: not mon.ident.alive(), limit):
            out(f"stop: the monitor did not exit within {limit:.0f} s; killing it and stopping its processes here")
            if mon.ident.alive():
                os.kill(mon.ident.pid, signal.SIGKILL)
            _wait(lambda: not mon.ident.alive(), 5.0)
    elif mon is not None:
        out(f"stop: the monitor (pid {mon.ident.pid}) was already gone; stopping what it left")
    elif problem not in (None, "missing"):
        out(f"stop: ignoring the monitor's pid file ({problem}); nothing signalled from it")
    if lock_held(paths) and (mon is None or not mon.ident.alive()):
        out(f"stop: warning: {paths.lock_file} is still locked by a process this pid file does not name;"
            " find it with `fuser` or `lsof` on that file")
    pidfiles.remove(mon_file)

    for f in _child_files(paths):
        rec, problem = pidfiles.read(f)
        if rec is None:
            out(f"stop: {f.name} is unreadable ({problem}); removed it, signalled nothing")
            pidfiles.remove(f)
            continue
        left = [d for d in rec.descendants if d.alive()]
        if rec.ident.alive():
            did = True
            out(f"stop: {rec.name} (pid {rec.ident.pid}): TERM to its process group")
            if not stop_group(rec.ident, rec.descendants, knobs.stop_timeout):
                out(f"stop: {rec.name}: some process survived KILL (pid {rec.ident.pid}); see `ps -g {rec.ident.pgid}`")
                survived = True
                continue
        else:
            if left:
                did = True
                out(f"stop: {rec.name}: its process is gone; stopping {len(left)} process(es) it left")
                signal_members(left, signal.SIGTERM)
                if not _wait(lambda lf=left: not any(d.alive() for d in lf), 3.0):
                    signal_members([d for d in left if d.alive()], signal.SIGKILL)
            if _pid_exists(rec.ident.pid):
                out(f"stop: {rec.name}: pid {rec.ident.pid} now belongs to another process (start time or group"
                    " differ); left alone, stale pid file removed")
            else:
                out(f"stop: {rec.name}: not running; stale pid file removed")
        pidfiles.remove(f)

    if mon is not None:
        stray = tagged(run_tag(mon.ident))
        if stray:
            did = True
            out(f"stop: killing {len(stray)} leftover process(es) of that run: pids "
                + ", ".join(str(i.pid) for i in stray))
            signal_members(stray, signal.SIGKILL)
    if not lock_held(paths):
        paths.secrets_file.unlink(missing_ok=True)  # a killed monitor could not remove it itself
    _mark_stopped(paths)
    if survived:
        out("stop: not everything could be stopped (see above)")
        return ExitStatus.ERROR
    out("stop: everything stopped" if did else "stop: nothing was running")
    return ExitStatus.OK


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _mark_stopped(paths: Paths) -> None:
    res = read_json(paths.status_file)
    if not res.ok or not res.data:
        return
    doc = res.data
    changed = False
    if doc.get("monitor", {}).get("state") != "stopped":
        doc.setdefault("monitor", {})["state"] = "stopped"
        changed = True
    for info in doc.get("children", {}).values():
        # ("waiting": what an older monitor wrote for STARTING.)
        if isinstance(info, dict) and info.get("state") in _ALIVE_STATES:
            info["state"], info["pid"] = ChildState.STOPPED.value, None
            changed = True
    if changed:
        doc["updated_at"] = time.time()
        atomic_write_json(paths.status_file, doc, mode=0o600)
