"""The chaos run's system faults: the machine misbehaving around the processes, not inside them.

One fault at a time, drawn in a seeded rotation (every kind once before any repeats), at most one
per SYSTEM_FAULT_EVERY_WINDOWS (4; --system-fault-every) windows:

  disk_full      LOG_DIR (where trades.jsonl lives) is a small tmpfs mounted by the harness; the fault
                 fills it, then frees one page (4 KiB, about ten journal lines: the next append that
                 does not fit is torn by the kernel and must be rolled back), holds 4-12 s, frees it all.
                 Not run (and said so in the report) where mounting is not permitted.
  risk_lock      holds state/risk.json.lock for 12-20 s (longer than the book's 10 s lock timeout): no
                 intent may be written while it is held (`intents_while_risk_locked`, must be 0). A halt
                 the book writes because of it ("halt when in doubt") is resumed afterwards with
                 `./supervisor.sh resume`, as a user would, and listed in `resumed_halts`.
  second_executor  `python -m executor` started on the same state: it must exit 2 (REFUSED) within
                 SECOND_EXECUTOR_WAIT_S (`second_executor_not_refused`, must be 0).
  malformed_line appends three lines the journal readers must skip (not JSON, not an object, an object
                 without trade_id/asset) under the journal's own lock; the next executor start must read
                 past them (the kills make sure there is one).
"""

from __future__ import annotations

import errno
import logging
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from core.config import REPO_ROOT
from core.durable_files import iter_jsonl, read_json
from core.exit_codes import ExitStatus
from core.window_grid import parse_iso_utc

from .system import IsolatedSystem

log = logging.getLogger("chaos.system")

KINDS = ("disk_full", "risk_lock", "second_executor", "malformed_line")
SYSTEM_FAULT_EVERY_WINDOWS = 4
LOG_FS_SIZE = "256m"
SECOND_EXECUTOR_WAIT_S = 30.0
LOCK_GUARD_MARGIN_S = 1.0     # an intent this soon after the lock was taken passed its check before
BAD_LINES = (b"chaos: not JSON at all {\n", b"[1, 2, 3]\n",
             b'{"event": "filled", "note": "chaos: an object without trade_id or asset"}\n')


@dataclass
class SystemFaultStats:
    log_fs: str = "not mounted"
    armed: list = field(default_factory=list)
    risk_locked: list = field(default_factory=list)       # [acquired_at, released_at]
    resumed_halts: list = field(default_factory=list)
    second_executor: list = field(default_factory=list)   # {"at", "rc"}
    malformed_lines: int = 0


def _run(cmd: list[str], timeout: float = 20.0) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


class SystemFaults:
    def __init__(self, system: IsolatedSystem, seed: int, every_windows: int = SYSTEM_FAULT_EVERY_WINDOWS):
        self.sys = system
        self.every_s = max(1, every_windows) * system.window_seconds
        self.rng = random.Random(seed * 104729 + 7)
        kinds = list(KINDS)
        self.rng.shuffle(kinds)
        self.kinds = kinds
        self.i = 0
        self.stats = SystemFaultStats()
        self._mounted = False
        self._next_at = 0.0
        self._active: tuple[str, float, object] | None = None   # (kind, ends at, handle)
        self._resume_tried = 0.0

    # ---- the small filesystem --------------------------------------------------------------------
    def mount_log_fs(self) -> None:
        """Mount a tmpfs on LOG_DIR (before the system starts); the report says why not otherwise."""
        d = self.sys.log_dir
        d.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            self.stats.log_fs = "not mounted: needs root (disk_full is skipped)"
            return
        try:
            r = _run(["mount", "-t", "tmpfs", "-o", f"size={LOG_FS_SIZE},mode=0700", "tmpfs", str(d)])
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.stats.log_fs = f"not mounted: {exc} (disk_full is skipped)"
            return
        if r.returncode != 0:
            self.stats.log_fs = f"not mounted: {r.stderr.strip()[:200]} (disk_full is skipped)"
            return
        self._mounted = True
        self.stats.log_fs = f"tmpfs {LOG_FS_SIZE} on {d}"

    def unmount_log_fs(self) -> None:
        """After the audit has read the journal: unmount (lazily if something still holds it)."""
        if not self._mounted:
            return
        r = _run(["umount", str(self.sys.log_dir)])
        if r.returncode != 0:
            r = _run(["umount", "-l", str(self.sys.log_dir)])
            if r.returncode != 0:
                log.error("could not unmount %s: %s", self.sys.log_dir, r.stderr.strip())
        self._mounted = False

    # ---- scheduling ------------------------------------------------------------------------------
    def maintain(self, now: float) -> None:
        if self._active is not None:
            self._maybe_end(now)
            return
        self._resume_fault_halt()
        if now < self._next_at:
            return
        if self._next_at == 0.0:      # the first fault a few windows after start
            self._next_at = now + self.every_s
            return
        kind = self.kinds[self.i % len(self.kinds)]
        self.i += 1
        self._next_at = now + self.every_s
        getattr(self, f"_start_{kind}")(now)

    def _arm(self, kind: str, now: float, seconds: float, handle: object, **info: object) -> None:
        self._active = (kind, now + seconds, handle)
        self.stats.armed.append({"kind": kind, "at": round(now, 2), "seconds": round(seconds, 1), **info})
        log.info("system fault: %s for %.1f s %s", kind, seconds, info or "")

    def _maybe_end(self, now: float, force: bool = False) -> None:
        assert self._active is not None
        kind, ends_at, handle = self._active
        if kind == "second_executor":
            if self._second_done(handle, now, force):
                self._active = None
            return
        if not force and now < ends_at:
            return
        self._active = None
        getattr(self, f"_end_{kind}")(handle)

    def busy(self) -> bool:
        """A second executor is starting: no kill now (the monitor would restart the victim into the
        second one's lock, exit 2, and leave no executor: a different experiment)."""
        return self._active is not None and self._active[0] == "second_executor"

    def wind_down(self) -> None:
        if self._active is not None:
            self._maybe_end(time.time(), force=True)
        self._resume_fault_halt()

    # ---- disk full -------------------------------------------------------------------------------
    def _start_disk_full(self, now: float) -> None:
        if not self._mounted:
            self.stats.armed.append({"kind": "disk_full", "at": round(now, 2), "skipped": self.stats.log_fs})
            return
        filler = self.sys.log_dir / "chaos-filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        total, chunk = 0, b"\0" * 65536
        try:
            while True:
                try:
                    n = os.write(fd, chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
                if n < len(chunk):
                    total += n
                    break
                total += n
            os.ftruncate(fd, max(0, total - 4096))   # one page back: room for a few lines, then a torn one
        finally:
            os.close(fd)
        self._arm("disk_full", now, self.rng.uniform(4.0, 12.0), filler, filled_mb=round(total / 2**20, 1))

    def _end_disk_full(self, filler: object) -> None:
        try:
            Path(str(filler)).unlink()
        except FileNotFoundError:
            log.warning("the disk filler %s was already gone", filler)

    # ---- the risk lock ---------------------------------------------------------------------------
    def _start_risk_lock(self, now: float) -> None:
        lock = FileLock(str(self.sys.state_dir / "risk.json") + ".lock", timeout=5.0, mode=0o600)
        try:
            lock.acquire()
        except Timeout:
            self.stats.armed.append({"kind": "risk_lock", "at": round(now, 2), "skipped": "lock busy for 5 s"})
            return
        self._arm("risk_lock", time.time(), self.rng.uniform(12.0, 20.0), lock)

    def _end_risk_lock(self, lock: object) -> None:
        assert isinstance(lock, FileLock)
        acquired = self.stats.armed[-1]["at"]
        lock.release()
        self.stats.risk_locked.append([acquired, round(time.time(), 2)])

    def _resume_fault_halt(self) -> None:
        """A halt written because of the held lock (the book fails closed) is resumed, as a user would."""
        if not self.stats.risk_locked or time.time() - self._resume_tried < 5.0:
            return
        res = read_json(self.sys.state_dir / "risk.json")
        if not (res.ok and isinstance(res.data, dict) and res.data.get("halted")):
            return
        reason = str(res.data.get("halt_reason") or "")
        self._resume_tried = time.time()
        r = subprocess.run([str(REPO_ROOT / "supervisor.sh"), "resume"], cwd=REPO_ROOT, env=self.sys.env(),
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        self.stats.resumed_halts.append({"at": round(time.time(), 2), "reason": reason[:200], "rc": r.returncode})
        log.info("resumed a halt after the risk-lock fault (rc %d): %s", r.returncode, reason[:120])

    # ---- a second executor -----------------------------------------------------------------------
    def _start_second_executor(self, now: float) -> None:
        logf = open(self.sys.root / "second-executor.log", "ab")  # noqa: SIM115 - closed in _second_done
        proc = subprocess.Popen([sys.executable, "-m", "executor"], cwd=REPO_ROOT, env=self.sys.env(),
                                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self._arm("second_executor", now, SECOND_EXECUTOR_WAIT_S, (proc, logf, now), pid=proc.pid)

    def _second_done(self, handle: object, now: float, force: bool) -> bool:
        proc, logf, started = handle  # type: ignore[misc]
        rc = proc.poll()
        if rc is None and not force and now - started < SECOND_EXECUTOR_WAIT_S:
            return False
        if rc is None:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=10)
            log.error("the second executor (pid %d) was still running after %.0f s: killed", proc.pid,
                      now - started)
        logf.close()
        self.stats.second_executor.append({"at": round(started, 2), "rc": rc})
        return True

    # ---- malformed journal lines -----------------------------------------------------------------
    def _start_malformed_line(self, now: float) -> None:
        path = self.sys.trades_path
        with FileLock(str(path) + ".lock", timeout=10.0, mode=0o600):
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                size = os.fstat(fd).st_size
                prefix = b"\n" if size and os.pread(fd, 1, size - 1) != b"\n" else b""
                os.write(fd, prefix + b"".join(BAD_LINES))
                os.fsync(fd)
            finally:
                os.close(fd)
        self.stats.malformed_lines += len(BAD_LINES)
        self.stats.armed.append({"kind": "malformed_line", "at": round(now, 2), "lines": len(BAD_LINES)})

    # ---- the verdict -----------------------------------------------------------------------------
    def verdict(self) -> dict:
        intents = [parse_iso_utc(str(r["ts"])) for r in iter_jsonl(self.sys.trades_path)
                   if r.get("event") == "intent" and isinstance(r.get("ts"), str)]
        locked = [t for t in intents for a, b in self.stats.risk_locked if a + LOCK_GUARD_MARGIN_S <= t <= b]
        refused = int(ExitStatus.REFUSED)
        not_refused = [s for s in self.stats.second_executor if s["rc"] != refused]
        return {
            "log_fs": self.stats.log_fs, "armed": self.stats.armed,
            "risk_locked": self.stats.risk_locked, "resumed_halts": self.stats.resumed_halts,
            "second_executor": self.stats.second_executor, "malformed_lines": self.stats.malformed_lines,
            "intents_while_risk_locked": len(locked),
            "second_executor_not_refused": len(not_refused),
        }


SYSTEM_BAD_KEYS = ("intents_while_risk_locked", "second_executor_not_refused")
