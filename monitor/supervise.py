"""The monitor: starts the children, restarts them when they exit or hang, stops them all.

One loop, one thread. Each child is a small state machine (monitor/states.py holds the one table
of legal transitions; every change goes through `Child.to`, and an illegal one raises):

    starting --start--> running --exit / stale heartbeat / down file--> stopping --all gone-->
        exited --> backoff (0 s after a healthy run; 1, 2, 4 ... 60 s after failed starts) --> running ...
               --> FATAL   (after MAX_FAILS failed starts in a row: logged, notified, and tried again
                            every SUPERVISOR_FATAL_RETRY s (300), notified each time: FATAL -> starting)
        down    (a `down` file holds it down on purpose; removing the file starts it again)

Each start writes a header line to logs/<name>.log, "---- supervisor: starting NAME (start #N: why) at
TIME": N counts every start in this STATE_DIR, across monitor runs (supervisor.json's starts_total).
`restarts` counts only the starts the user did not ask for (after an exit, a hang, an automatic FATAL
retry); `up` after `down`, or on a FATAL child, counts in `requested_restarts` instead.

A child that exits 2 (ExitStatus.REFUSED: its own config check refused) is FATAL at once and
never retried automatically: the same config would refuse again (`up` or `restart` retries it).
A start "failed" when the child died within MIN_UPTIME seconds, or was killed as hung without
ever having beaten since it started. Secrets reach the children in STATE_DIR/secrets.json (0600,
removed at shutdown; SECRETS_FILE in their environment), never as environment variables. Every child runs in its own
session and process group; processes it starts in groups of their own (Chromium, via Playwright)
are recorded from the process table every couple of seconds and signalled too, so a stop or a
restart leaves no orphan.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from pathlib import Path

from core.config import REPO_ROOT, SECRET_VARS, SECRETS_FILE_VAR, Config, secrets_of
from core.durable_files import atomic_write_json, read_json
from core.exit_codes import ExitStatus

from . import pidfiles
from .child import Child, Notify, StartCause
from .pidfiles import PidRecord
from .procs import (
    TAG_VAR,
    Ident,
    descendants,
    ident_of,
    process_table,
    run_tag,
    signal_group,
    signal_leader,
    signal_members,
    tagged,
)
from .rotate import rotate_logs
from .sd_notify import ENV_VARS as SYSTEMD_VARS
from .sd_notify import ServiceNotifier
from .settings import ChildSpec, Knobs, Paths
from .states import ACTIVE, ChildState

log = logging.getLogger("monitor")

DESC_REFRESH_S = 2.0  # how often the process tree under each child is recorded
REAP_GRACE_S = 3.0  # after a child exits: how long its leftovers get before SIGKILL
STARTUP_GATE_S = 10.0  # initial start: wait this long for a child's first beat before the next
STATUS_EVERY_S = 5.0
ROTATE_EVERY_S = 10.0
PRIVATE = 0o600  # files the monitor writes (state, logs, secrets): the owner's only (umask 077 as well)
# Never passed on in a child's environment (secrets reach them through SECRETS_FILE instead; systemd's
# notify variables are the monitor's own).
SCRUBBED_VARS = frozenset((*SECRET_VARS, "REPLICA_WALLET_PASSWORD", SECRETS_FILE_VAR, *SYSTEMD_VARS))


class Monitor:
    def __init__(self, cfg: Config, specs: list[ChildSpec], knobs: Knobs, paths: Paths,
                 clock=time.time, base_env: dict[str, str] | None = None):
        self.cfg, self.knobs, self.paths, self.clock = cfg, knobs, paths, clock
        self.children = [Child(s) for s in specs]
        for c in self.children:
            c.to(ChildState.STARTING)  # autostart
        self._carry_over_start_counts()
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.shutdown_requested = False
        self.started_at = clock()
        self.initial_phase = True
        self._last_desc = 0.0
        self._last_status = 0.0
        self._last_rotate = 0.0
        self._status_cache: dict | None = None
        self.ident = ident_of(os.getpid())
        self.notify = Notify(cfg)
        self.service = ServiceNotifier(self.base_env)  # systemd (Type=notify): READY, STATUS, WATCHDOG
        self.secrets_file: Path | None = None  # written by write_secrets(); given to children as SECRETS_FILE

    def _carry_over_start_counts(self) -> None:
        """Each child's start count goes on from the last monitor's supervisor.json (kept by `stop`), so
        the "start #N" headers in logs/<name>.log keep counting across `restart`, `stop`/`start`, a
        service restart and a reboot instead of saying #1 after each (a missing or unreadable file: 1)."""
        res = read_json(self.paths.status_file)
        kids = res.data.get("children") if res.ok and res.data else None
        for c in self.children:
            info = kids.get(c.name) if isinstance(kids, dict) else None
            n = info.get("starts_total") if isinstance(info, dict) else None
            if isinstance(n, int) and not isinstance(n, bool) and n > 0:
                c.starts_total = n

    # ---- secrets ------------------------------------------------------------------
    def write_secrets(self) -> None:
        """Secrets go to the children in a 0600 file, never in their environment (which other tools,
        core dumps and /proc/<pid>/environ expose, and which Chromium and its helpers inherit)."""
        secrets = secrets_of(self.cfg)
        if not secrets:
            self.remove_secrets()
            return
        atomic_write_json(self.paths.secrets_file, secrets, mode=PRIVATE)
        self.secrets_file = self.paths.secrets_file

    def remove_secrets(self) -> None:
        self.paths.secrets_file.unlink(missing_ok=True)
        self.secrets_file = None

    # ---- starting -----------------------------------------------------------------
    def _spawn(self, c: Child) -> None:
        now = self.clock()
        self.paths.log_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in self.base_env.items() if k not in SCRUBBED_VARS}
        if self.secrets_file is not None:
            env[SECRETS_FILE_VAR] = str(self.secrets_file)
        env.update(c.spec.env)
        env["SUPERVISED_BY"] = str(os.getpid())
        env.setdefault("PYTHONUNBUFFERED", "1")  # lines reach logs/<name>.log as they are written
        if self.ident is not None:
            env[TAG_VAR] = run_tag(self.ident)
        fd = os.open(self.paths.log_file(c.name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE)
        c.starts_total += 1
        why = c.start_reason(os.getpid())
        try:
            os.write(fd, f"---- supervisor: starting {c.name} (start #{c.starts_total}: {why}) at "
                         f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(now))}\n".encode())
            proc = subprocess.Popen(list(c.spec.argv), cwd=str(REPO_ROOT), env=env, stdin=subprocess.DEVNULL,
                                    stdout=fd, stderr=fd, start_new_session=True, close_fds=True)
        except OSError as exc:
            os.close(fd)
            c.cause = StartCause.RESTART  # the next attempt is the monitor's own
            log.error("%s: could not start %s: %s", c.name, c.spec.argv[0], exc)
            c.started_at, c.exit_code = now, None
            self._exited(c, now, f"could not start: {exc.strerror or exc}")  # STARTING/BACKOFF -> EXITED
            return
        os.close(fd)
        ident = ident_of(proc.pid) or Ident(proc.pid, "unknown", proc.pid)
        c.proc, c.ident, c.started_at, c.desc, c.exited_at = proc, ident, now, [], 0.0
        c.to(ChildState.RUNNING)
        c.stop_reason, c.exit_code = "", None
        c.count_start()  # a restart, or one the user asked for with `up`; the next start is a restart
        self._write_pid(c)
        log.info("%s: started pid %d (start #%d: %s)", c.name, proc.pid, c.starts_total, why)

    def _write_pid(self, c: Child) -> None:
        if c.ident is None:
            return
        pidfiles.write(self.paths.pid_file(c.name),
                       PidRecord(c.name, c.ident, list(c.spec.argv), c.started_at, c.desc), mode=PRIVATE)

    # ---- stopping -----------------------------------------------------------------
    def _begin_stop(self, c: Child, reason: str, now: float, timeout: float | None = None) -> None:
        self._refresh_desc([c])
        if c.state != ChildState.STOPPING:  # already stopping (a shutdown during a restart): new reason only
            c.to(ChildState.STOPPING)
        c.stop_reason = reason
        c.kill_at = now + (self.knobs.stop_timeout if timeout is None else timeout)
        if c.ident is not None:
            # TERM to the child itself, so it can shut down cleanly: a TERM to its whole group would
            # also hit helpers it manages (Playwright's driver under the executor) and pull the rug
            # out from under its own shutdown. The group and every recorded descendant get KILL at the
            # deadline. CONT: a stopped (SIGSTOP) process must run to act on the TERM.
            signal_leader(c.ident, signal.SIGTERM)
            signal_group(c.ident, signal.SIGCONT)

    def _poll_exit(self, c: Child) -> bool:
        if c.proc is None:
            return True
        if c.exit_code is None:
            rc = c.proc.poll()
            if rc is None:
                return False
            c.exit_code, c.exited_at = rc, self.clock()
        return True

    def _leftovers(self, c: Child) -> list[Ident]:
        return [d for d in c.desc if d.alive()] + ([c.ident] if c.ident and c.ident.alive() else [])

    def _step_stopping(self, c: Child, now: float) -> None:
        exited = self._poll_exit(c)
        left = [d for d in c.desc if d.alive()]
        group_alive = c.ident is not None and c.ident.alive()
        if exited and not left and not group_alive:
            self._finish_stop(c, now)
            return
        if exited and c.kill_at > now + REAP_GRACE_S:
            c.kill_at = now + REAP_GRACE_S  # the leader is gone: its leftovers get a short grace only
        if exited and (left or group_alive) and not c.termed_leftovers:
            # The child is gone: what it left (recorded descendants, their groups) gets TERM, then KILL.
            signal_members(left, signal.SIGTERM)
            signal_members(left, signal.SIGCONT)
            c.termed_leftovers = True
        if now >= c.kill_at:
            log.warning("%s: still running after TERM and its grace period; sending KILL to its process group%s",
                        c.name, " and leftovers" if left else "")
            if c.ident is not None:
                signal_group(c.ident, signal.SIGKILL)
            signal_members(left, signal.SIGKILL)
            c.kill_at = now + 1.0

    def _finish_stop(self, c: Child, now: float) -> None:
        c.termed_leftovers = False
        reason = c.stop_reason
        pidfiles.remove(self.paths.pid_file(c.name))
        code = c.exit_code
        c.proc, c.desc = None, []
        if reason in ("down", "shutdown"):
            c.to(ChildState.DOWN if reason == "down" else ChildState.STOPPED)
            c.last_exit = {"code": code, "at": now, "reason": reason}
            log.info("%s: stopped (%s, exit code %s)", c.name, reason, code)
            return
        self._exited(c, now, reason)

    def _exited(self, c: Child, now: float, reason: str) -> None:
        c.to(ChildState.EXITED)
        # How long it ran: until it exited (not until its leftovers were reaped).
        uptime = (c.exited_at if c.exited_at >= c.started_at else now) - c.started_at
        hung = reason.startswith("hung")
        failed = uptime < self.knobs.min_uptime or (hung and not c.beat_since_start()) \
            or reason.startswith("could not start")
        c.failures = c.failures + 1 if failed else 0
        c.last_exit = {"code": c.exit_code, "at": now, "reason": reason, "uptime": round(uptime, 2)}
        refused = c.exit_code == ExitStatus.REFUSED and not hung
        if refused or c.failures >= self.knobs.max_fails:
            # Exit 2: the child refused on its own config check; the same config refuses again, so
            # a restart only fills the log. Left down until the config is fixed and `up` is run.
            # Any other FATAL is tried again on a slow schedule (a full disk, a network outage
            # end by themselves: an unattended machine recovers without `up`).
            c.to(ChildState.FATAL)
            retry = self.knobs.fatal_retry if not refused and self.knobs.fatal_retry > 0 else None
            c.retry_at = None if retry is None else now + retry
            when = f"tried again every {retry:g} s" if retry is not None else "left down"
            c.fatal_reason = (f"refused to run (exit {int(ExitStatus.REFUSED)}: its configuration check failed);"
                              f" not restarted: fix what the last line of {self.paths.log_file(c.name)} names"
                              if refused else
                              f"{c.failures} failed starts in a row (last: {reason} after {uptime:.1f} s);"
                              f" {when}, see {self.paths.log_file(c.name)}")
            log.error("%s: FATAL: %s. The other processes carry on; ./supervisor.sh up %s retries it now.",
                      c.name, c.fatal_reason, c.name)
            self.notify.send("fatal", f"{c.name} FATAL: {c.fatal_reason}")
            return
        # A child that ran healthily (longer than MIN_UPTIME) is restarted at once; failed starts
        # in a row wait 1, 2, 4 ... BACKOFF_MAX seconds. So a crash costs ~nothing, a crash loop
        # is slowed down, and at most one restart per MIN_UPTIME happens without back-off.
        delay = self.knobs.backoff(c.failures) if failed else 0.0
        c.to(ChildState.BACKOFF)
        c.next_start_at = now + delay
        log.warning("%s: %s after %.1f s%s; restarting in %g s", c.name, reason, uptime,
                    f" (failed start {c.failures}/{self.knobs.max_fails})" if failed else "", delay)

    # ---- watching -----------------------------------------------------------------
    def _refresh_desc(self, kids: list[Child]) -> None:
        table = process_table()
        for c in kids:
            if c.ident is None or c.proc is None:
                continue
            known = {(d.pid, d.start) for d in c.desc}
            fresh = [d for d in descendants(c.ident.pid, table) if (d.pid, d.start) not in known]
            kept = [d for d in c.desc if d.alive()]
            if fresh or len(kept) != len(c.desc):
                c.desc = kept + fresh
                self._write_pid(c)

    def _down(self, c: Child) -> bool:
        return self.paths.down_file(c.name).exists()

    def tick(self) -> None:
        now = self.clock()
        if now - self._last_desc >= DESC_REFRESH_S:
            self._last_desc = now
            self._refresh_desc([c for c in self.children if c.state == ChildState.RUNNING])
        gate_closed = False
        for c in self.children:
            if c.state == ChildState.RUNNING:
                if self._poll_exit(c):
                    self._begin_stop(c, f"exited with code {c.exit_code}", now, REAP_GRACE_S)
                    self._step_stopping(c, now)
                elif self._down(c):
                    log.info("%s: down file present; stopping it", c.name)
                    self._begin_stop(c, "down", now)
                else:
                    age = c.heartbeat_age(now)
                    if age is not None and age > c.spec.stale_after:
                        log.warning("%s: hung: no heartbeat for %.1f s (limit %g s); killing it", c.name, age,
                                    c.spec.stale_after)
                        self._begin_stop(c, f"hung (no heartbeat for {age:.0f} s)", now, REAP_GRACE_S)
                    elif self.initial_phase and not c.beat_since_start() and c.spec.heartbeat \
                            and now - c.started_at < STARTUP_GATE_S:
                        gate_closed = True
            elif c.state == ChildState.STOPPING:
                self._step_stopping(c, now)
            elif c.state in (ChildState.STARTING, ChildState.BACKOFF):
                if self._down(c):
                    c.to(ChildState.DOWN)
                    log.info("%s: held down by %s", c.name, self.paths.down_file(c.name))
                elif now >= c.next_start_at and not gate_closed:
                    self._spawn(c)
                    gate_closed = self.initial_phase and bool(c.spec.heartbeat) and c.state == ChildState.RUNNING
            retry = self.paths.down_dir / f"{c.name}.retry"
            if c.state == ChildState.FATAL:
                if retry.exists():
                    retry.unlink(missing_ok=True)
                    log.info("%s: retry requested (./supervisor.sh up %s); starting it again", c.name, c.name)
                    c.to(ChildState.STARTING)
                    c.failures, c.fatal_reason, c.next_start_at, c.retry_at = 0, None, now, None
                    c.cause = StartCause.REQUESTED
                elif c.retry_at is not None and now >= c.retry_at:
                    self._retry_fatal(c, now)
            elif retry.exists():
                retry.unlink(missing_ok=True)  # a retry only means something for a FATAL child
            if c.state == ChildState.DOWN:
                if not self._down(c):
                    log.info("%s: down file removed; starting it", c.name)
                    c.to(ChildState.STARTING)
                    c.failures, c.next_start_at, c.cause = 0, now, StartCause.REQUESTED
            if c.state == ChildState.STARTING and self.initial_phase:
                gate_closed = True
        if self.initial_phase and all(c.state != ChildState.STARTING for c in self.children) and not gate_closed:
            self.initial_phase = False
        if now - self._last_rotate >= ROTATE_EVERY_S:
            self._last_rotate = now
            rotate_logs(self.paths.log_dir, self.knobs.log_max_bytes, self.knobs.log_keep)
        self.write_status(now)

    def _retry_fatal(self, c: Child, now: float) -> None:
        """The slow schedule: a FATAL child (never one that exited 2) gets MAX_FAILS fresh starts."""
        c.fatal_retries += 1
        c.to(ChildState.STARTING)
        c.cause = StartCause.FATAL_RETRY
        c.failures, c.next_start_at, c.retry_at = 0, now, None  # fatal_reason stays: status shows "was FATAL"
        log.warning("%s: FATAL for %g s; trying it again by itself (automatic retry #%d, every"
                    " SUPERVISOR_FATAL_RETRY=%g s)", c.name, self.knobs.fatal_retry, c.fatal_retries,
                    self.knobs.fatal_retry)
        self.notify.send("fatal", f"{c.name} was FATAL ({c.fatal_reason}); trying it again now"
                         f" (automatic retry #{c.fatal_retries}, every {self.knobs.fatal_retry:g} s)")

    # ---- status -------------------------------------------------------------------
    def status_doc(self, now: float, monitor_state: str = "running") -> dict:
        kids = {}
        for c in self.children:
            kids[c.name] = {
                "state": c.state.value, "pid": c.ident.pid if c.ident and c.state in ACTIVE else None,
                "started_at": c.started_at or None, "restarts": c.restarts, "failed_starts": c.failures,
                "requested_restarts": c.requested_restarts, "starts_total": c.starts_total,
                "next_start_at": c.next_start_at if c.state == ChildState.BACKOFF else None,
                "last_exit": c.last_exit, "fatal_reason": c.fatal_reason,
                "retry_at": c.retry_at if c.state == ChildState.FATAL else None, "fatal_retries": c.fatal_retries,
                "heartbeat": [str(p) for p in c.spec.heartbeat], "stale_after": c.spec.stale_after,
            }
        return {"monitor": {"pid": os.getpid(), "state": monitor_state, "started_at": self.started_at},
                "mode": self.cfg.mode, "market_url": self.cfg.market_url,
                "order": [c.name for c in self.children], "children": kids}

    def write_status(self, now: float, monitor_state: str = "running", force: bool = False) -> None:
        doc = self.status_doc(now, monitor_state)
        if force or doc != self._status_cache or now - self._last_status >= STATUS_EVERY_S:
            doc["updated_at"] = now
            atomic_write_json(self.paths.status_file, doc, mode=PRIVATE)
            doc.pop("updated_at")
            self._status_cache, self._last_status = doc, now

    # ---- lifetime -----------------------------------------------------------------
    def request_shutdown(self, signum: int, _frame=None) -> None:
        if not self.shutdown_requested:
            log.info("monitor: %s received; stopping every child", signal.Signals(signum).name)
        self.shutdown_requested = True

    def run(self) -> ExitStatus:
        self.paths.pid_dir.mkdir(parents=True, exist_ok=True)
        if self.ident:
            pidfiles.write(self.paths.pid_file("monitor"), PidRecord("monitor", self.ident, [], self.started_at),
                           mode=PRIVATE)
        try:
            self.write_secrets()
        except OSError as exc:  # a full disk: the children start, and find their secrets in .env or not at all
            log.error("monitor: could not write %s (%s); children get no secrets from the monitor",
                      self.paths.secrets_file, exc)
        log.info("monitor: pid %d supervising %s (mode %s)", os.getpid(),
                 ", ".join(c.name for c in self.children), self.cfg.mode)
        try:
            while not self.shutdown_requested:
                try:
                    self.tick()
                    self.service.update(self.clock(), self.children, not self.initial_phase)
                except Exception:  # noqa: BLE001 - nothing restarts the monitor: log, pause, carry on
                    log.exception("monitor: unexpected error in the watch loop; retrying in 1 s")
                    time.sleep(1.0)
                time.sleep(self.knobs.tick)
        finally:
            self.shutdown()
        return ExitStatus.OK

    def shutdown(self) -> None:
        """TERM each child's group in reverse start order, wait, KILL; then clear our pid files."""
        self.service.stopping()
        for c in reversed(self.children):
            if c.state in ACTIVE:
                self._begin_stop(c, "shutdown", self.clock())
                give_up = self.clock() + self.knobs.stop_timeout + 10.0
                while c.state == ChildState.STOPPING:
                    self._step_stopping(c, self.clock())
                    if c.state == ChildState.STOPPING:
                        if self.clock() > give_up:
                            # Survived KILL (uninterruptible sleep?): keep its pid file so `stop` and
                            # `status` can still name it, and go on with the others.
                            log.error("%s: still alive after KILL (pid %s); leaving its pid file", c.name,
                                      c.ident.pid if c.ident else "?")
                            c.to(ChildState.STOPPED)
                            break
                        time.sleep(0.05)
            elif c.state not in (ChildState.DOWN, ChildState.STOPPED):
                c.to(ChildState.STOPPED)  # a FATAL child keeps its fatal_reason in the status file
        if self.ident is not None:
            stray = tagged(run_tag(self.ident))
            if stray:
                log.warning("monitor: %d process(es) started under this run outlived their parents (pids %s);"
                            " killing them", len(stray), ", ".join(str(i.pid) for i in stray))
                signal_members(stray, signal.SIGKILL)
        self.remove_secrets()
        self.write_status(self.clock(), "stopped", force=True)
        self.notify.close()
        pidfiles.remove(self.paths.pid_file("monitor"))
        log.info("monitor: every child stopped; exiting")


def leftover_children(paths: Paths) -> list[tuple[str, int]]:
    """Children from an earlier run still alive (their monitor is gone): (name, pid)."""
    out = []
    if not paths.pid_dir.is_dir():
        return out
    for f in sorted(paths.pid_dir.glob("*.json")):
        rec, _problem = pidfiles.read(f)
        if rec and rec.name != "monitor" and rec.ident.alive():
            out.append((rec.name, rec.ident.pid))
    return out


def read_status(paths: Paths) -> dict | None:
    res = read_json(paths.status_file)
    return res.data if res.ok else None


def status_path(paths: Paths) -> Path:
    return paths.status_file
