"""What `./supervisor.sh install` writes and how it is found again (the commands: monitor/service_cli.py).

One service per user, written by `install`, removed exactly by `uninstall`:
- Linux with a running user systemd (`systemctl --user` answers): the user unit
  ~/.config/systemd/user/clobbot-supervisor.service (`Type=notify`, watchdog, `Restart=on-failure`),
  whose ExecStart is `./supervisor.sh service-run`: the monitor in the foreground, exactly as
  `start --foreground`. `start` and `stop` go through `systemctl --user` while it is installed.
- no user systemd (containers, minimal servers): one `@reboot` line in the user's crontab, ending in
  the comment `# clobbot-supervisor <checkout>`, running `./supervisor.sh service-run --detach`
  (plain `start`) with its output appended to LOG_DIR/service.log.
- macOS: the launchd agent ~/Library/LaunchAgents/com.clobbot.supervisor.plist (RunAtLoad: at login),
  running `service-run --detach` too.

The service reads the same `.env` as `start`. Config variables exported in the installing shell
(those .env.example names, and DOTENV_PATH and PATH) are written into the unit, line or plist; the
secrets are not (a warning says so: put them in .env). A live install needs the `start --live`
confirmation at install time; it is stored in STATE_DIR/service-live.json (mode 600), never in the
unit, line or plist, and `service-run` turns it into MODE=live, LIVE_CONFIRM in its own environment.

Test and escape hatches (environment only): SUPERVISOR_SERVICE_MANAGER=systemd|cron|launchd picks
the manager; SUPERVISOR_SYSTEMCTL, SUPERVISOR_CRONTAB, SUPERVISOR_LAUNCHCTL name the commands.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

# Light imports only: `start` and `stop` ask this module whether a unit is installed every time.
from core.config_values import REPO_ROOT, SECRET_VARS

NAME = "clobbot-supervisor"
UNIT = f"{NAME}.service"
LABEL = "com.clobbot.supervisor"
CRON_MARK = f"# {NAME} "
LIVE_FILE = "service-live.json"
WATCHDOG_SEC = 60  # > a hung child's kill and restart (REAP_GRACE_S 3 s + its start)
MANAGERS = ("systemd", "cron", "launchd")
NEVER_CARRIED = (*SECRET_VARS, "LIVE_CONFIRM", "REPLICA_WALLET_PASSWORD", "SECRETS_FILE")
LIVE_CONFIRM_PHRASE = "I_UNDERSTAND"  # core.config's (not imported here: see above)
STALE_PREFIX = "SUPERVISOR_STALE_"  # core.config's
CMD_TIMEOUT = 15.0


class ServiceError(Exception):
    """Why install/uninstall could not do its job; safe to print."""


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def run(argv: list[str], timeout: float = CMD_TIMEOUT, stdin: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(argv, 127, "", f"{argv[0]}: {exc}")


def systemctl(env: Mapping[str, str] | None = None) -> list[str]:
    return [_env(env).get("SUPERVISOR_SYSTEMCTL") or "systemctl", "--user"]


def user_systemd_running(env: Mapping[str, str] | None = None) -> bool:
    if _env(env).get("SUPERVISOR_SERVICE_MANAGER") == "systemd":
        return True
    if not shutil.which(systemctl(env)[0]):
        return False
    state = run([*systemctl(env), "is-system-running"], 5.0).stdout.strip()
    return state in ("running", "degraded", "starting", "initializing", "maintenance")


def manager_for(env: Mapping[str, str] | None = None) -> str:
    forced = _env(env).get("SUPERVISOR_SERVICE_MANAGER", "")
    if forced:
        if forced not in MANAGERS:
            raise ServiceError(f"SUPERVISOR_SERVICE_MANAGER={forced} is not one of {', '.join(MANAGERS)}")
        return forced
    if sys.platform == "darwin":
        return "launchd"
    return "systemd" if user_systemd_running(env) else "cron"


def unit_path(env: Mapping[str, str] | None = None) -> Path:
    base = _env(env).get("XDG_CONFIG_HOME") or str(Path(_env(env).get("HOME") or Path.home()) / ".config")
    return Path(base) / "systemd" / "user" / UNIT


def plist_path(env: Mapping[str, str] | None = None) -> Path:
    return Path(_env(env).get("HOME") or Path.home()) / "Library" / "LaunchAgents" / f"{LABEL}.plist"


def live_file(state_dir: Path) -> Path:
    return state_dir / LIVE_FILE


# ---- what the service carries ---------------------------------------------------------------
def config_names() -> set[str]:
    text = (REPO_ROOT / ".env.example").read_text(encoding="utf-8")
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, re.M)) | {"DOTENV_PATH", "PATH"}


SECRET_LOOKING = re.compile(r"PASSWORD|TOKEN|SECRET|WEBHOOK|_KEY\b")  # a secret added later, not yet in SECRET_VARS


def carried(env: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """(the install shell's config variables written into the service, the secrets left out)."""
    names = config_names()
    wanted = {k: v for k, v in env.items() if (k in names or k.startswith(STALE_PREFIX)) and v.strip()}
    secret = {k for k in wanted if k in SECRET_VARS or SECRET_LOOKING.search(k)}
    keep = {k: v for k, v in wanted.items() if k not in secret and k not in NEVER_CARRIED}
    if keep.get("MODE") == "live":
        del keep["MODE"]  # a live service's mode comes from the stored confirmation, as start --live's
    return dict(sorted(keep.items())), sorted(secret)


def _no_newline(what: str, value: str, extra: str = "") -> str:
    bad = "\n\r\0" + extra
    if any(ch in value for ch in bad):
        raise ServiceError(f"{what} holds a character this service file cannot carry ({bad!r}); move it")
    return value


def _sd_quote(value: str) -> str:
    """A double-quoted systemd value: C escapes for \\ and ", %% for specifiers."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") + '"'


def _sd_unquote(value: str) -> str:
    """The inverse of _sd_quote."""
    inner, out, i = value[1:-1] if value[:1] == '"' and value[-1:] == '"' else value, [], 0
    while i < len(inner):
        two = inner[i:i + 2]
        if two in ("\\\\", '\\"', "%%"):
            out.append(two[1])
            i += 2
        else:
            out.append(inner[i])
            i += 1
    return "".join(out)


def unit_env(text: str) -> dict[str, str]:
    """The Environment= variables of a unit install wrote."""
    pairs = (_sd_unquote(line.split("=", 1)[1]).split("=", 1) for line in text.splitlines()
             if line.startswith("Environment="))
    return {p[0]: p[1] for p in pairs if len(p) == 2}


def same_config(unit: str, env: Mapping[str, str]) -> bool:
    """Whether this shell would start what the unit starts: the same exported config variables (PATH
    aside). A shell with other STATE_DIR, DOTENV_PATH ... (a test, a second set-up) never drives the unit."""
    mine = {k: v for k, v in carried(env)[0].items() if k != "PATH"}
    return mine == {k: v for k, v in unit_env(unit).items() if k != "PATH"}


def unit_text(root: Path, env_vars: Mapping[str, str]) -> str:
    exe = _no_newline("the checkout's path", str(root / "supervisor.sh"))
    lines = [f"# {NAME}: written by ./supervisor.sh install; ./supervisor.sh uninstall removes it.",
             "[Unit]",
             "Description=Up/Down agent: the monitor of its signal engine and executor (./supervisor.sh)",
             "Documentation=" + ("file://" + quote(str(root / "docs" / "supervisor.md"))).replace("%", "%%"),
             "StartLimitIntervalSec=600", "StartLimitBurst=5", "",
             "[Service]", "Type=notify", "NotifyAccess=main",
             "WorkingDirectory=" + str(root).replace("%", "%%")]
    lines += [f"Environment={_sd_quote(_no_newline(k, f'{k}={v}'))}" for k, v in env_vars.items()]
    lines += [f"ExecStart={_sd_quote(exe).replace('$', '$$')} service-run",
              "Restart=on-failure", "RestartSec=10",
              "# exit 2: the configuration was refused; the same configuration refuses again",
              "RestartPreventExitStatus=2",
              f"WatchdogSec={WATCHDOG_SEC}", "WatchdogSignal=SIGTERM",
              "TimeoutStartSec=300", "TimeoutStopSec=120",
              "# TERM to the monitor only: it stops its children in order; KILL to what is left at the end",
              "KillMode=mixed", "UMask=0077", "",
              "[Install]", "WantedBy=default.target", ""]
    return "\n".join(lines)


def cron_line(root: Path, env_vars: Mapping[str, str], log_file: Path) -> str:
    """One @reboot line; cron turns % into newlines, so no value may hold one."""
    assigns = " ".join(f"{k}={shlex.quote(_no_newline(k, v, '%'))}" for k, v in env_vars.items())
    where = shlex.quote(_no_newline("the checkout's path", str(root), "%"))
    log = shlex.quote(_no_newline("LOG_DIR", str(log_file), "%"))
    return (f"@reboot umask 077; cd {where} && {assigns + ' ' if assigns else ''}./supervisor.sh service-run"
            f" --detach >>{log} 2>&1 {CRON_MARK}{root}")


def plist_bytes(root: Path, env_vars: Mapping[str, str], log_file: Path) -> bytes:
    import plistlib

    return plistlib.dumps({
        "Label": LABEL, "ProgramArguments": [str(root / "supervisor.sh"), "service-run", "--detach"],
        "WorkingDirectory": str(root), "EnvironmentVariables": dict(env_vars),
        "RunAtLoad": True, "KeepAlive": False,
        # the monitor detaches into a session of its own; launchd must not kill it when `start` returns
        "AbandonProcessGroup": True, "Umask": 0o077,
        "StandardOutPath": str(log_file), "StandardErrorPath": str(log_file)})


# ---- the crontab ------------------------------------------------------------------------------
def crontab_cmd(env: Mapping[str, str] | None = None) -> str:
    return _env(env).get("SUPERVISOR_CRONTAB") or "crontab"


def read_crontab(env: Mapping[str, str] | None = None) -> list[str]:
    cmd = crontab_cmd(env)
    if not shutil.which(cmd):
        raise ServiceError(f"no `{cmd}` command: install cron (Debian: apt-get install cron)")
    r = run([cmd, "-l"])
    if r.returncode == 0:
        return r.stdout.splitlines()
    if "no crontab" in r.stderr.lower():
        return []
    # Never write a crontab we could not read: that would drop the user's own lines.
    raise ServiceError(f"`{cmd} -l` failed ({r.stderr.strip() or r.returncode}); the crontab was left as it was")


def write_crontab(lines: list[str], env: Mapping[str, str] | None = None) -> None:
    cmd = crontab_cmd(env)
    fd, tmp = tempfile.mkstemp(prefix="crontab-", text=True)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write("".join(f"{line}\n" for line in lines))
        r = run([cmd, tmp])
    finally:
        os.unlink(tmp)
    if r.returncode != 0:
        raise ServiceError(f"`{cmd}` refused the new crontab ({r.stderr.strip() or r.returncode}); nothing changed")


def cron_lines_of(lines: list[str]) -> list[tuple[int, str]]:
    """(index, checkout) of every line install wrote (any checkout's)."""
    return [(i, line.split(CRON_MARK, 1)[1].strip()) for i, line in enumerate(lines)
            if not line.lstrip().startswith("#") and CRON_MARK in line]


# ---- what is installed --------------------------------------------------------------------------
def _unit_root(text: str) -> str | None:
    m = re.search(r"^WorkingDirectory=(.*)$", text, re.M)
    return m.group(1).replace("%%", "%") if m else None


def installed(env: Mapping[str, str] | None = None, probe: bool = True) -> dict | None:
    """What install left, or None: {kind, where, root} (+ active/enabled for systemd when `probe`)."""
    up = unit_path(env)
    if up.is_file():
        info: dict = {"kind": "systemd", "where": str(up), "root": _unit_root(up.read_text(errors="replace"))}
        if probe and shutil.which(systemctl(env)[0]):
            info["active"] = run([*systemctl(env), "is-active", UNIT], 5.0).stdout.strip() or "unknown"
            info["enabled"] = run([*systemctl(env), "is-enabled", UNIT], 5.0).stdout.strip() or "unknown"
        return info
    pp = plist_path(env)
    if pp.is_file():
        import plistlib

        try:
            root = plistlib.loads(pp.read_bytes()).get("WorkingDirectory")
        except (OSError, ValueError, plistlib.InvalidFileException):
            root = None
        return {"kind": "launchd", "where": str(pp), "root": root}
    if shutil.which(crontab_cmd(env)):
        try:
            ours = cron_lines_of(read_crontab(env))
        except ServiceError:
            return None
        if ours:
            return {"kind": "cron", "where": "crontab (@reboot line)", "root": ours[0][1]}
    return None


def linger_on(user: str) -> bool:
    return Path("/var/lib/systemd/linger", user).exists()


def user_name() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def live_confirmed(state_dir: Path) -> tuple[bool, str]:
    """(stored confirmation valid, why not / when): a file that is not 0600 and ours does not count."""
    path = live_file(state_dir)
    try:
        st = path.lstat()
    except FileNotFoundError:
        return False, "no live confirmation stored"
    if not path.is_file() or path.is_symlink() or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return False, f"{path} is not a private file of this user (mode 600): ignored"
    from core.durable_files import read_json

    res = read_json(path)
    if not res.ok or not res.data or res.data.get("confirm") != LIVE_CONFIRM_PHRASE:
        return False, f"{path} does not hold the confirmation: ignored"
    return True, f"live trading confirmed at install time ({res.data.get('at', '?')})"


def store_live(state_dir: Path) -> Path:
    from core.durable_files import atomic_write_json

    path = live_file(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"confirm": LIVE_CONFIRM_PHRASE, "by": "./supervisor.sh install --live",
                             "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, mode=0o600)
    return path


def describe(info: dict | None) -> str:
    """The `service` line of `status`."""
    if not info:
        return "not installed (./supervisor.sh install runs it after reboots)"
    elsewhere = f"; installed from another checkout: {info.get('root')}" if info.get("root") != str(REPO_ROOT) else ""
    if info["kind"] == "systemd":
        state = f" ({info.get('enabled', '?')}, {info.get('active', '?')})" if "active" in info else ""
        linger = "" if linger_on(user_name()) else \
            "; lingering off: starts at login, not at boot (loginctl enable-linger " + user_name() + ")"
        return f"systemd user unit {UNIT}{state}: {info['where']}{linger}{elsewhere}"
    if info["kind"] == "launchd":
        return f"launchd agent {LABEL} (starts at login): {info['where']}{elsewhere}"
    return f"@reboot line in the crontab (starts at boot where cron runs){elsewhere}"


__all__ = ["LABEL", "NAME", "UNIT", "ServiceError", "carried", "cron_line", "describe", "installed", "live_confirmed",
           "manager_for", "plist_bytes", "unit_text"]
