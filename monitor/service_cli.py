"""`python -m monitor.service_cli COMMAND`: the Python half of `./supervisor.sh install | uninstall`
and of `start`/`stop` while the agent is installed as a service (monitor/service.py: what is written).

    install          write the unit / crontab line / plist for this checkout (idempotent)
    uninstall        remove exactly that, and the stored live confirmation
    how-to-start     prints `systemd` when `start` must go through `systemctl --user start`, else `plain`
    start-unit [--live]  start the installed unit and print the start screen
    stop-unit        stop the unit when it runs (exit 0: done, nothing left); any other exit: do the plain stop
    stop-note        after `stop`: what the service manager will do next
    live-confirmed   exit 0 when a live confirmation was stored by `install --live` (for service-run)

Exit codes: core.exit_codes.ExitStatus (0 OK, 1 ERROR, 2 REFUSED; stop-unit: 3 = not under systemd).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from core.config_values import REPO_ROOT
from core.exit_codes import ExitStatus

from . import service as svc
from .service import UNIT, ServiceError

if TYPE_CHECKING:
    from core.config import Config

Out = Callable[[str], None]
ACTIVE_STATES = ("active", "activating", "reloading", "deactivating")


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def _check(r, what: str) -> None:
    if r.returncode != 0:
        raise ServiceError(f"`{' '.join(r.args)}` failed ({(r.stderr or r.stdout).strip() or r.returncode}): {what}")


def _install_systemd(text: str, env: Mapping[str, str], out: Out) -> None:
    path = svc.unit_path(env)
    old = path.read_text() if path.is_file() else None
    if old == text:
        out(f"install: {path} is already installed and unchanged")
    else:
        from core.durable_files import atomic_write_bytes

        atomic_write_bytes(path, text.encode(), mode=0o600)
    try:
        _check(svc.run([*svc.systemctl(env), "daemon-reload"]), "systemd did not reload its units")
        _check(svc.run([*svc.systemctl(env), "enable", UNIT]), "the unit was not enabled")
    except ServiceError:
        if old is None:
            path.unlink(missing_ok=True)
        raise
    out(f"install: systemd user unit {UNIT} written and enabled: {path}")
    out("  it runs ./supervisor.sh service-run: the monitor in the foreground (Type=notify, watchdog"
        f" {svc.WATCHDOG_SEC} s, restarted on failure); journalctl --user -u {UNIT} shows its output")
    user = svc.user_name()
    if not svc.linger_on(user):
        out(f"  lingering is off for {user}: systemd starts your units when you log in, not at boot."
            f" For boot: loginctl enable-linger {user}")


def _install_cron(line: str, env: Mapping[str, str], out: Out) -> None:
    lines = svc.read_crontab(env)
    ours = svc.cron_lines_of(lines)
    if [lines[i] for i, _ in ours] == [line]:
        out("install: the crontab's @reboot line is already installed and unchanged")
        return
    drop = {i for i, _ in ours}
    at = ours[0][0] if ours else len(lines)
    new = [ln for i, ln in enumerate(lines[:at]) if i not in drop] + [line] + \
          [ln for i, ln in enumerate(lines[at:], at) if i not in drop]
    svc.write_crontab(new, env)
    out("install: @reboot line added to your crontab (crontab -l shows it; it ends in"
        f" `{svc.CRON_MARK}{REPO_ROOT}`)")
    out("  it runs ./supervisor.sh service-run --detach (plain start) at boot; cron must run at boot for"
        " that (containers often run no cron daemon: Debian's is `apt-get install cron`)")


def _install_launchd(data: bytes, env: Mapping[str, str], out: Out) -> None:
    path = svc.plist_path(env)
    if path.is_file() and path.read_bytes() == data:
        out(f"install: {path} is already installed and unchanged")
        return
    from core.durable_files import atomic_write_bytes

    atomic_write_bytes(path, data, mode=0o600)
    out(f"install: launchd agent written: {path}")
    out("  launchd runs ./supervisor.sh service-run --detach (plain start) when you log in; for an"
        " unattended Mac, turn on automatic login")


def install(cfg: Config, env: Mapping[str, str] | None = None, out: Out = print) -> ExitStatus:
    env = os.environ if env is None else env
    kind = svc.manager_for(env)
    have = svc.installed(env, probe=False)
    if have and (have["kind"] != kind or have.get("root") != str(REPO_ROOT)):
        raise ServiceError(f"already installed as {svc.describe(have)}; run ./supervisor.sh uninstall"
                           f" (in {have.get('root')}) first")
    env_vars, left_out = svc.carried(env)
    log_file = cfg.log_dir / "service.log"
    stored = svc.live_file(cfg.state_dir)
    had_live = stored.exists()
    if cfg.mode == "live":
        svc.store_live(cfg.state_dir)
    try:
        if kind == "systemd":
            _install_systemd(svc.unit_text(REPO_ROOT, env_vars), env, out)
        elif kind == "cron":
            _install_cron(svc.cron_line(REPO_ROOT, env_vars, log_file), env, out)
        else:
            _install_launchd(svc.plist_bytes(REPO_ROOT, env_vars, log_file), env, out)
    except (ServiceError, OSError):
        if cfg.mode == "live" and not had_live:
            stored.unlink(missing_ok=True)
        raise
    out(f"  mode {cfg.mode}, from the same .env as ./supervisor.sh start"
        + (f"; carried from this shell: {', '.join(env_vars)}" if env_vars else ""))
    if left_out:
        out(f"  not carried (secrets never go into a service file): {', '.join(left_out)}; put them in .env (mode 600)")
    if not cfg.headless:
        out("  warning: HEADLESS=0 (the default in paper and live) shows the browser, and a service started at boot"
            " has no display to show it on: set HEADLESS=1 in .env for an unattended machine")
    if cfg.mode == "live":
        out(f"  live: your confirmation is stored in {stored} (mode 600), not in the service file;"
            " uninstall (or install without --live) removes it")
    elif had_live:
        stored.unlink(missing_ok=True)
        out(f"  the stored live confirmation ({stored}) was removed: the service now runs in {cfg.mode} mode")
    out("  nothing was started now: " + ("./supervisor.sh start runs it under systemd (restart, if it runs now)"
                                         if kind == "systemd" else "./supervisor.sh start runs it as usual"))
    return ExitStatus.OK


def uninstall(cfg: Config, env: Mapping[str, str] | None = None, out: Out = print) -> ExitStatus:
    env = os.environ if env is None else env
    have = svc.installed(env)
    stored = svc.live_file(cfg.state_dir)
    if have and have.get("root") != str(REPO_ROOT):
        raise ServiceError(f"installed from another checkout ({have.get('root')}): run ./supervisor.sh uninstall"
                           " there; nothing removed")
    if not have:
        out("uninstall: not installed; nothing to remove")
    elif have["kind"] == "systemd":
        _uninstall_systemd(have, env, out)
    elif have["kind"] == "cron":
        lines = svc.read_crontab(env)
        drop = {i for i, _ in svc.cron_lines_of(lines)}
        svc.write_crontab([ln for i, ln in enumerate(lines) if i not in drop], env)
        out("uninstall: the @reboot line was removed from your crontab; your other lines are untouched")
    else:
        launchctl = env.get("SUPERVISOR_LAUNCHCTL") or "launchctl"
        if shutil.which(launchctl):
            svc.run([launchctl, "bootout", f"gui/{os.getuid()}/{svc.LABEL}"])  # not loaded: an error, harmless
        Path(have["where"]).unlink(missing_ok=True)
        out(f"uninstall: launchd agent removed: {have['where']}")
    if stored.exists():
        stored.unlink()
        out(f"uninstall: the stored live confirmation was removed: {stored}")
    if have and have["kind"] != "systemd":
        out("uninstall: what runs now (if anything) was left running; ./supervisor.sh stop stops it")
    return ExitStatus.OK


def _uninstall_systemd(have: dict, env: Mapping[str, str], out: Out) -> None:
    if have.get("active") in ACTIVE_STATES:
        out(f"uninstall: {UNIT} is running; stopping it first (systemctl --user stop {UNIT}), so that no"
            " process is left under a unit that no longer exists; ./supervisor.sh start runs it again by hand")
        svc.run([*svc.systemctl(env), "stop", UNIT], 180.0)
    r = svc.run([*svc.systemctl(env), "disable", UNIT])
    path = Path(have["where"])
    wants = path.parent / "default.target.wants" / UNIT
    if wants.is_symlink():  # `disable` could not run (no user systemd now): its link, by hand
        wants.unlink()
    path.unlink(missing_ok=True)
    svc.run([*svc.systemctl(env), "daemon-reload"])
    svc.run([*svc.systemctl(env), "reset-failed", UNIT])
    out(f"uninstall: systemd user unit {UNIT} disabled and removed ({path})"
        + ("" if r.returncode == 0 else f"; note: systemctl disable said: {(r.stderr or '').strip()}"))


def _systemd_here(env: Mapping[str, str]) -> dict | None:
    """The installed unit when `start`/`stop` in this shell must go through it: ours, this checkout's,
    the same configuration as this shell's (svc.same_config), and the user's systemd answering."""
    have = svc.installed(env, probe=False)
    if not have or have["kind"] != "systemd" or have.get("root") != str(REPO_ROOT):
        return None
    if not svc.same_config(Path(have["where"]).read_text(errors="replace"), env) or not svc.user_systemd_running(env):
        return None
    return svc.installed(env)  # with its active/enabled state


def start_unit(cfg: Config, live: bool, env: Mapping[str, str], out: Out = print) -> ExitStatus:
    from .__main__ import main as monitor_main
    from .settings import paths_of
    from .stop import lock_held

    if live and not svc.live_confirmed(cfg.state_dir)[0]:
        _err(f"supervisor: the installed service ({UNIT}) is not a live one: ./supervisor.sh install --live"
             " makes it one (or uninstall to start by hand); nothing started")
        return ExitStatus.REFUSED
    if lock_held(paths_of(cfg)):
        _err("supervisor: already running; ./supervisor.sh status to see it, stop to stop it, restart to do both")
        return ExitStatus.ERROR
    confirmed, when = svc.live_confirmed(cfg.state_dir)
    if confirmed:
        out(f"supervisor: LIVE mode: {when}")
    out(f"supervisor: starting the systemd user unit {UNIT} (systemctl --user start; it waits for the children)")
    r = svc.run([*svc.systemctl(env), "start", UNIT], 330.0)
    if r.returncode != 0:
        _err(f"supervisor: systemctl --user start {UNIT} failed ({(r.stderr or '').strip() or r.returncode});"
             f" see journalctl --user -u {UNIT} -n 50 and {cfg.log_dir / 'monitor.log'}")
        return ExitStatus.ERROR
    pid = svc.run([*svc.systemctl(env), "show", "-p", "MainPID", "--value", UNIT]).stdout.strip()
    if not pid.isdigit() or pid == "0":
        _err(f"supervisor: {UNIT} started but has no main process; see journalctl --user -u {UNIT} -n 50")
        return ExitStatus.ERROR
    return ExitStatus(monitor_main(["started", "--pid", pid]))


def stop_unit(cfg: Config, env: Mapping[str, str], out: Out = print) -> ExitStatus:
    from .settings import paths_of
    from .supervise import leftover_children

    have = _systemd_here(env)
    if not have or have.get("active") not in ACTIVE_STATES:
        return ExitStatus.NOT_ALL_UP  # not under systemd: the plain stop does it all
    out(f"stop: the agent runs as the systemd user unit {UNIT}: systemctl --user stop {UNIT}")
    r = svc.run([*svc.systemctl(env), "stop", UNIT], 180.0)
    paths = paths_of(cfg)
    if r.returncode != 0 or leftover_children(paths) or paths.pid_file("monitor").exists():
        out("stop: systemd's stop did not finish everything; sweeping what the pid files name")
        return ExitStatus.ERROR
    out("stop: everything stopped")
    return ExitStatus.OK


def stop_note(env: Mapping[str, str], out: Out = print) -> None:
    have = svc.installed(env, probe=False)
    if not have or have.get("root") != str(REPO_ROOT):
        return
    when = {"systemd": f"systemd ({UNIT}) will not start it again until ./supervisor.sh start (or the next boot)",
            "cron": "the crontab's @reboot line starts it at the next boot; until then ./supervisor.sh start does",
            "launchd": "launchd starts it at your next login; until then ./supervisor.sh start does"}[have["kind"]]
    out(f"stop: installed as a service: {when}; ./supervisor.sh uninstall removes the service")


def _main(a: argparse.Namespace) -> ExitStatus:
    from .__main__ import _cfg

    env = os.environ
    if a.command == "how-to-start":
        print("systemd" if _systemd_here(env) else "plain")
        return ExitStatus.OK
    if a.command == "stop-note":
        stop_note(env)
        return ExitStatus.OK
    if a.command == "stop-unit" and not _systemd_here(env):
        return ExitStatus.NOT_ALL_UP  # not under systemd (checked before the config, which stop reads itself)
    cfg = _cfg(lenient=a.command not in ("install",))
    if a.command == "live-confirmed":
        ok, why = svc.live_confirmed(cfg.state_dir)
        if ok or svc.live_file(cfg.state_dir).exists():
            _err(f"service: {why}")
        return ExitStatus.OK if ok else ExitStatus.ERROR
    if a.command == "start-unit":
        return start_unit(cfg, a.live, env)
    if a.command == "stop-unit":
        return stop_unit(cfg, env)
    return install(cfg, env) if a.command == "install" else uninstall(cfg, env)


def main(argv: list[str] | None = None) -> int:
    os.umask(0o077)
    p = argparse.ArgumentParser(prog="python -m monitor.service_cli")
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("install", "uninstall", "how-to-start", "stop-unit", "stop-note", "live-confirmed"):
        sub.add_parser(name)
    sub.add_parser("start-unit").add_argument("--live", action="store_true")
    a = p.parse_args(argv)
    try:
        return _main(a)
    except ServiceError as exc:
        _err(f"{a.command}: {exc}")
        return ExitStatus.ERROR
    except OSError as exc:  # a service file or the confirmation could not be written or removed
        _err(f"{a.command}: {exc.filename or ''} {exc.strerror or exc}; nothing more was changed".replace("  ", " "))
        return ExitStatus.ERROR


if __name__ == "__main__":
    raise SystemExit(main())
