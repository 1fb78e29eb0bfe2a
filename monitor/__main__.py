"""`python -m monitor COMMAND`: the Python half of supervisor.sh (see monitor/__init__.py).

Exit codes (core.exit_codes.ExitStatus): 0 OK; 1 ERROR, refused or failed at run time (message
on stderr); 2 REFUSED, bad configuration (one line), nothing started; 3 NOT_ALL_UP (status):
something is not running. `doctor` and `login` live in browser_tools/ (beside the browser code
they drive); they are run from here so that `./supervisor.sh doctor|login` stays one entry point.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import signal
import sys
import time

from core.config import Config, ConfigError, load_config
from core.exit_codes import ExitStatus

from .preflight import PreflightError, preflight
from .settings import SettingsError, children_for, knobs_of, paths_of
from .states import ChildState


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


# What the commands that never trade need to find the running processes, whatever else is wrong.
LOCATION_VARS = ("STATE_DIR", "LOG_DIR", "PROFILE_DIR", "MODE", "ASSETS", "REPLICA_PORT", "REPLICA_WALLET_PORT",
                 "SUPERVISOR_CHILDREN_FILE")


def _cfg(lenient: bool = False) -> Config:
    """The config. `lenient` (stop, status, down/up, paths, logs: commands that never trade) accepts a
    MODE=live .env whose confirmation came from `start --live` and so is not in this environment, and
    survives a typo elsewhere in .env: it says so, and goes on with the locations alone, so that a
    bad .env can never keep the user from seeing or stopping what runs."""
    env = {**os.environ, "LIVE_CONFIRM": "I_UNDERSTAND"} if lenient else None
    try:
        return load_config(env)
    except ConfigError as exc:
        _err(str(exc))
        if lenient:
            cfg = _locations_only(env or {})
            if cfg is not None:
                _err("supervisor: going on with STATE_DIR/LOG_DIR only; fix the line above before the next start")
                return cfg
        raise SystemExit(ExitStatus.REFUSED) from None


def _locations_only(env: dict[str, str]) -> Config | None:
    from core.config import _merged_env

    try:
        merged = _merged_env(env, None)
        keep = {k: merged[k] for k in LOCATION_VARS if k in merged}
        return load_config({**keep, "LIVE_CONFIRM": "I_UNDERSTAND", "DOTENV_PATH": os.devnull})
    except ConfigError:
        return None


def _specs(cfg: Config):
    try:
        return children_for(cfg)
    except SettingsError as exc:
        _err(f"supervisor: {exc}")
        raise SystemExit(ExitStatus.REFUSED) from None


def cmd_preflight(_a) -> ExitStatus:
    try:
        cfg = preflight(note=_err)
    except PreflightError as exc:
        _err(str(exc))
        return ExitStatus.REFUSED
    # Two lines for supervisor.sh: where the state and the logs live.
    print(cfg.state_dir)
    print(cfg.log_dir)
    return ExitStatus.OK


def cmd_paths(_a) -> ExitStatus:
    cfg = _cfg(lenient=True)
    print(cfg.state_dir)
    print(cfg.log_dir)
    return ExitStatus.OK


def cmd_leftovers(_a) -> ExitStatus:
    from .supervise import leftover_children

    cfg = _cfg(lenient=True)
    left = leftover_children(paths_of(cfg))
    if left:
        names = ", ".join(f"{n} (pid {p})" for n, p in left)
        _err(f"supervisor: the monitor is gone but {names} still run; ./supervisor.sh restart stops them and"
             " starts afresh (or ./supervisor.sh stop)")
        return ExitStatus.ERROR
    from .preflight import check_ports_free

    try:
        check_ports_free(cfg)
    except PreflightError as exc:
        _err(f"supervisor: {exc}")
        return ExitStatus.REFUSED
    return ExitStatus.OK


def _setup_logging(foreground: bool, log_path) -> None:
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S")
    fmt.converter = time.gmtime
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    h = logging.StreamHandler(sys.stderr)
    h.setFormatter(fmt)
    root.addHandler(h)
    if foreground:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(log_path)
        fh.setFormatter(fmt)
        root.addHandler(fh)


def cmd_run(a) -> ExitStatus:
    from .supervise import Monitor

    cfg = _cfg()
    paths = paths_of(cfg)
    knobs = knobs_of(cfg)
    specs = _specs(cfg)
    _setup_logging(a.foreground, paths.log_file("monitor"))
    if not a.foreground:
        try:
            os.setsid()  # detached: no terminal, no SIGHUP when the shell that started us exits
        except PermissionError:
            pass  # already a session leader (started through setsid(1)): nothing to do
    _private_dirs(paths.state_dir, paths.log_dir)
    if a.lock_fd is not None:
        lock_fd = a.lock_fd
    else:
        lock_fd = os.open(paths.lock_file, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        # Inherited from supervisor.sh: the same open file, so this succeeds and keeps it locked.
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        logging.getLogger("monitor").error("monitor: another monitor holds %s; exiting", paths.lock_file)
        return ExitStatus.ERROR
    mon = Monitor(cfg, specs, knobs, paths)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, mon.request_shutdown)
    return mon.run()


def _live_verdict(cfg, paths, timeout: float) -> str | None:
    """Live: wait (up to `timeout` s) for the executor's own checks (the wallet unlocked and connected,
    the page): its refusal (the reason it gave, in state/executor.json), or None when it went on (or
    has not decided yet: then `status` tells, and the screen says so)."""
    from core.durable_files import read_json
    from executor.state import ExecutorStatus

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = read_json(paths.status_file).data or {}
        kid = doc.get("children", {}).get("executor", {})
        ex = read_json(cfg.executor_state_path).data or {}
        mine = kid.get("pid") is not None and ex.get("pid") == kid.get("pid")
        this_run = isinstance(ex.get("started"), (int, float)) and \
            ex["started"] >= float(doc.get("monitor", {}).get("started_at") or 0)
        if (mine or this_run) and ex.get("status") == ExecutorStatus.REFUSED.value:
            return str(ex.get("reason") or "refused")
        if kid.get("state") == ChildState.FATAL.value:
            return str(kid.get("fatal_reason") or kid.get("last_exit") or "it could not start")
        if mine and ex.get("status") not in (None, ExecutorStatus.STARTING.value):
            return None
        time.sleep(0.2)
    print(f"supervisor: the executor has not finished its live checks within {timeout:.0f} s;"
          " ./supervisor.sh status tells when it has")
    return None


def cmd_started(a) -> ExitStatus:
    """Wait until the monitor has started every child (or given up on one), then print the screen."""
    from core.durable_files import read_json

    cfg = _cfg(lenient=True)
    paths = paths_of(cfg)
    from .procs import is_zombie, start_time

    timeout = cfg.supervisor_start_timeout if a.timeout is None else a.timeout
    deadline = time.monotonic() + timeout
    doc = None
    while time.monotonic() < deadline:
        res = read_json(paths.status_file)
        doc = res.data if res.ok and res.data and res.data.get("monitor", {}).get("pid") == a.pid else None
        if doc and doc.get("monitor", {}).get("state") == "running" \
                and all(c.get("state") != ChildState.STARTING.value for c in doc.get("children", {}).values()):
            break
        doc = None
        if start_time(a.pid) is None or is_zombie(a.pid):
            _err(f"supervisor: the monitor exited during start; see {paths.log_file('monitor')}")
            return ExitStatus.ERROR
        time.sleep(0.1)
    if not doc:
        _err(f"supervisor: the monitor did not report within {timeout:.0f} s; see {paths.log_file('monitor')}")
        return ExitStatus.ERROR
    kids = doc.get("children", {})
    if cfg.mode == "live" and "executor" in kids:
        refused = _live_verdict(cfg, paths, timeout)
        if refused is not None:
            _err(f"supervisor: live mode refused by the executor: {refused}; nothing traded, stopping everything")
            return ExitStatus.REFUSED
    print(f"supervisor: started in {cfg.mode} mode (monitor pid {a.pid}, log {paths.log_file('monitor')})")
    print(f"  market      {cfg.market_url}")
    if "dashboard" in doc.get("order", []):
        _print_dashboard(cfg)
    for name in doc.get("order", []):
        c = kids.get(name, {})
        state = c.get("state")
        where = f"pid {c.get('pid')}" if c.get("pid") else state
        print(f"  {name:<14} {where:<12} log {paths.log_file(name)}")
    print("watch it:")
    print("  ./supervisor.sh status           processes, current signal, last trade (--json for scripts)")
    print(f"  watch -n1 cat {cfg.signal_path}")
    print(f"  tail -f {cfg.trades_path}")
    print("  ./supervisor.sh logs [name]      follow the logs;  ./supervisor.sh stop  stops everything")
    bad = [n for n, c in kids.items() if c.get("state") in (ChildState.FATAL.value, ChildState.BACKOFF.value)]
    if bad:
        print(f"warning: {', '.join(bad)} failed to start and will be retried; see ./supervisor.sh status")
    return ExitStatus.OK


def _print_dashboard(cfg: Config) -> None:
    """The dashboard's address, with its control token as the URL fragment (never sent to a server)."""
    from dashboard.token import ensure_token

    host = cfg.dashboard_bind if cfg.dashboard_bind not in ("0.0.0.0", "::") else "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    try:
        token = ensure_token(cfg.state_dir)
    except OSError as exc:
        print(f"  dashboard   http://{host}:{cfg.dashboard_port}/  (no control token: {exc})")
        return
    print(f"  dashboard   http://{host}:{cfg.dashboard_port}/#token={token}")
    print(f"              (its buttons need that token: {cfg.state_dir / 'dashboard_token'}; metrics: /metrics)")


def cmd_pause(a) -> ExitStatus:
    """`pause`: no new trades (processes keep running, settlement goes on); `unpause`: trade again."""
    from core.pause import read_pause, set_pause

    cfg = _cfg(lenient=True)
    before = read_pause(cfg.state_dir)
    try:
        now = set_pause(cfg.state_dir, a.command == "pause", f"./supervisor.sh {a.command}")
    except OSError as exc:
        _err(f"supervisor: could not write {cfg.state_dir / 'pause.json'} ({exc.strerror or exc});"
             f" nothing changed{', trading is NOT paused' if a.command == 'pause' and not before.paused else ''}")
        return ExitStatus.ERROR
    if now.paused:
        print("paused: no new trades; the processes keep running and open positions settle"
              + (f" (was already paused by {before.by})" if before.paused and not before.problem else "")
              + "; ./supervisor.sh unpause to trade again")
    else:
        print("unpaused: new trades allowed again (the risk guards still apply)" if before.paused
              else "was not paused; nothing changed")
    return ExitStatus.OK


def cmd_stop(_a) -> ExitStatus:
    from .stop import stop_all

    cfg = _cfg(lenient=True)
    return stop_all(paths_of(cfg), knobs_of(cfg))


def cmd_status(a) -> ExitStatus:
    from .status import main_status

    cfg = _cfg(lenient=True)
    return main_status(cfg, paths_of(cfg), _specs(cfg), a.json)


def cmd_down(a) -> ExitStatus:
    cfg = _cfg(lenient=True)
    paths = paths_of(cfg)
    names = [s.name for s in _specs(cfg)]
    if a.name not in names:
        _err(f"supervisor: no process named {a.name!r} (known: {', '.join(names)})")
        return ExitStatus.ERROR
    f = paths.down_file(a.name)
    if a.command == "down":
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("held down by ./supervisor.sh down\n")
        print(f"{a.name}: held down ({f}); the monitor stops it within a second; ./supervisor.sh up {a.name}")
    else:
        try:
            f.unlink()
            print(f"{a.name}: released; the monitor starts it within a second")
        except FileNotFoundError:
            # Not held down: if it is FATAL, ask the monitor to try it again (failed starts reset).
            f.parent.mkdir(parents=True, exist_ok=True)
            (f.parent / f"{a.name}.retry").write_text("retry requested by ./supervisor.sh up\n")
            print(f"{a.name}: was not held down; if it is FATAL, the monitor starts it again within a second")
    return ExitStatus.OK


def cmd_doctor(_a) -> ExitStatus:
    from browser_tools.doctor import doctor

    return doctor()


def cmd_login(_a) -> ExitStatus:
    from browser_tools.login import login

    return login()


def _private_dirs(*dirs) -> None:
    """STATE_DIR and LOG_DIR hold trade history, P&L and secrets: the owner's only (0700)."""
    for d in dirs:
        try:
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
            if d.stat().st_mode & 0o077:
                os.chmod(d, 0o700)
        except OSError as exc:
            logging.getLogger("monitor").warning("monitor: could not make %s private (%s)", d, exc)


def main(argv: list[str] | None = None) -> int:
    # Everything the monitor and its children create (state, logs, profiles) is the user's only.
    os.umask(0o077)
    p = argparse.ArgumentParser(prog="python -m monitor")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("preflight").set_defaults(fn=cmd_preflight)
    sub.add_parser("leftovers").set_defaults(fn=cmd_leftovers)
    sub.add_parser("paths").set_defaults(fn=cmd_paths)
    r = sub.add_parser("run")
    r.add_argument("--foreground", action="store_true")
    r.add_argument("--lock-fd", type=int)
    r.set_defaults(fn=cmd_run)
    s = sub.add_parser("started")
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--timeout", type=float, default=None, help="default SUPERVISOR_START_TIMEOUT (40 s)")
    s.set_defaults(fn=cmd_started)
    sub.add_parser("stop").set_defaults(fn=cmd_stop)
    st = sub.add_parser("status")
    st.add_argument("--json", action="store_true")
    st.set_defaults(fn=cmd_status)
    for verb in ("down", "up"):
        d = sub.add_parser(verb)
        d.add_argument("name")
        d.set_defaults(fn=cmd_down)
    for verb in ("pause", "unpause"):
        sub.add_parser(verb).set_defaults(fn=cmd_pause)
    sub.add_parser("doctor").set_defaults(fn=cmd_doctor)
    sub.add_parser("login").set_defaults(fn=cmd_login)
    a = p.parse_args(argv)
    return a.fn(a)


if __name__ == "__main__":
    raise SystemExit(main())
