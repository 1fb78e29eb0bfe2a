"""`doctor`: is this machine ready? Config, browser, profile and .env permissions, the public APIs
(per endpoint: reachable, expected shape, 403 = geoblocked, the exchange version), the page's selectors.

Each check prints one line, OK / WARN / FAIL, with what to do. Exit 0 (ExitStatus.OK) when nothing
FAILed, else 1 (ExitStatus.ERROR).
The API checks are browser_tools/api_checks.py (GAMMA_URL, CLOB_URL). The selector check runs
`python -m executor --probe` (it trades nothing). In demo both use a temporary replica when none
is listening. While the supervisor runs, the executor's browser holds the profile, so the probe
then uses a throw-away profile (logged-in-only selectors may differ).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from browser_tools.api_checks import check_apis
from core.browser_discovery import find_browser
from core.config import DEMO_WALLET_PASSWORD, REPO_ROOT, Config
from core.durable_files import read_json
from core.exit_codes import ExitStatus
from monitor.preflight import PreflightError, dotenv_file, preflight
from monitor.settings import paths_of
from monitor.stop import lock_held

PROBE_TIMEOUT_S = 180.0
REPLICA_WAIT_S = 20.0


class Report:
    def __init__(self) -> None:
        self.failed = 0

    def line(self, level: str, what: str, text: str) -> None:
        if level == "FAIL":
            self.failed += 1
        print(f"{level:<5} {what:<10} {text}", flush=True)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def _perm_check(rep: Report, what: str, path: Path, want_private: bool) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if want_private and mode & 0o077:
        rep.line("WARN", what, f"{path} is accessible to other users (mode {mode:o}): chmod 700 {path}")
    else:
        rep.line("OK", what, f"{path} (mode {mode:o})")


def _browser(rep: Report, cfg: Config) -> str | None:
    exe = cfg.browser_path or find_browser()
    if not exe:
        rep.line("FAIL", "browser", "no Chrome/Chromium found: install chromium (or Chrome) or set BROWSER_PATH")
        return None
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=20)
        version = (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else "?"
    except (OSError, subprocess.TimeoutExpired) as exc:
        rep.line("FAIL", "browser", f"{exe} does not run ({type(exc).__name__}): reinstall it or set BROWSER_PATH")
        return None
    rep.line("OK", "browser", f"{exe} ({version})")
    return exe


@contextlib.contextmanager
def _demo_replica(rep: Report, cfg: Config) -> Iterator[bool]:
    """In demo, a temporary replica when none listens on REPLICA_PORT (stopped again on exit).
    Yields whether the market (page and APIs) can be reached."""
    replica = None
    try:
        if cfg.mode == "demo" and not _port_open(cfg.replica_port):
            state = Path(tempfile.mkdtemp(prefix="doctor-replica-"))
            assets = ",".join(dict.fromkeys(("BTC", "ETH", *cfg.assets)))
            replica = subprocess.Popen(
                [sys.executable, "-m", "replica", "--port", str(cfg.replica_port), "--wallet-port",
                 str(cfg.replica_wallet_port), "--window-seconds", str(cfg.window_seconds), "--assets", assets,
                 "--state-file", str(state / "replica.json"), "--heartbeat", str(state / "heartbeat")],
                cwd=REPO_ROOT,
                env={**os.environ, "REPLICA_WALLET_PASSWORD": str(cfg.metamask_password) or DEMO_WALLET_PASSWORD},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            deadline = time.monotonic() + REPLICA_WAIT_S
            while not _port_open(cfg.replica_port):
                if replica.poll() is not None or time.monotonic() > deadline:
                    rep.line("FAIL", "replica", f"could not start a temporary replica on port {cfg.replica_port}")
                    yield False
                    return
                time.sleep(0.2)
        yield True
    finally:
        if replica is not None and replica.poll() is None:
            os.killpg(replica.pid, 15)
            try:
                replica.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(replica.pid, 9)
                replica.wait(timeout=10)


def _apis(rep: Report, cfg: Config) -> None:
    """One line per public API endpoint (browser_tools/api_checks.py)."""
    for check in check_apis(cfg):
        rep.line(check.level, check.what, check.text)


def _probe(rep: Report, cfg: Config) -> None:
    env = dict(os.environ)
    if cfg.mode == "live":
        env["LIVE_CONFIRM"] = "I_UNDERSTAND"  # the probe trades nothing; it only loads the page
    tmp = None
    try:
        if lock_held(paths_of(cfg)):
            tmp = tempfile.mkdtemp(prefix="doctor-profile-")
            env["PROFILE_DIR"] = tmp
            rep.line("NOTE", "probe", "the supervisor is running (its browser holds the profile): probing with a"
                     " throw-away profile")
        print(f"----- python -m executor --probe ({cfg.market_url})", flush=True)
        try:
            r = subprocess.run([sys.executable, "-m", "executor", "--probe"], cwd=REPO_ROOT, env=env,
                               timeout=PROBE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            rep.line("FAIL", "probe", f"the probe did not finish within {PROBE_TIMEOUT_S:.0f} s")
            return
        print("-----", flush=True)
        if r.returncode == ExitStatus.OK:
            rep.line("OK", "probe", "every required selector matches on the market page")
        else:
            rep.line("FAIL", "probe", f"exit code {r.returncode}: see the lines above; fix the selectors in"
                     f" {cfg.site_profile_path} (or log in with ./supervisor.sh login)")
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def _wallet(rep: Report, cfg: Config) -> None:
    """The address the wallet guard expects as maker/signer, and the account type: WALLET_ADDRESS, else
    what the first good order pinned in STATE_DIR/wallet.json (executor/wallet_guard.py)."""
    from executor.wallet_guard import PIN_FILE

    pin = read_json(cfg.state_dir / PIN_FILE)
    pinned = pin.data if pin.ok and isinstance(pin.data, dict) else {}
    account = {"Order": "Safe/proxy wallet (signs Order)", "TypedDataSign": "deposit wallet (signs TypedDataSign)"
               }.get(str(pinned.get("account")), "not known yet (known after the first order)")
    if cfg.wallet_address:
        rep.line("OK", "wallet", f"WALLET_ADDRESS {cfg.wallet_address}; account type {account}")
    elif pinned.get("maker"):
        rep.line("OK", "wallet", f"maker {pinned.get('maker')}, signer {pinned.get('signer')} pinned by trade"
                                 f" {pinned.get('trade_id')} ({cfg.state_dir / PIN_FILE}); account type {account}")
    elif pin.problem not in (None, "missing"):
        rep.line("WARN", "wallet", f"{cfg.state_dir / PIN_FILE} is {pin.problem}: the next order is refused until"
                                   " it is removed or WALLET_ADDRESS is set")
    elif cfg.mode != "demo":
        rep.line("NOTE", "wallet", "no WALLET_ADDRESS: the first order that passes every other check pins its"
                                   f" maker and signer in {cfg.state_dir / PIN_FILE}; set WALLET_ADDRESS to be sure")


def doctor() -> ExitStatus:
    rep = Report()
    notes: list[str] = []
    try:
        # doctor trades nothing: a MODE=live .env is checked as if confirmed (start --live asks).
        cfg = preflight({**os.environ, "LIVE_CONFIRM": "I_UNDERSTAND"}, note=notes.append)
    except PreflightError as exc:
        rep.line("FAIL", "config", str(exc).replace("; nothing started", ""))
        return ExitStatus.ERROR
    rep.line("OK", "config", f"mode {cfg.mode}, market {cfg.market_url}, assets {','.join(cfg.assets)}")
    for n in notes:
        rep.line("WARN" if n.startswith("warning") else "NOTE", "config",
                 n.removeprefix("warning: ").removeprefix("config: "))
    env_path, _explicit = dotenv_file(os.environ)
    if env_path.exists():
        mode = stat.S_IMODE(env_path.stat().st_mode)
        if not mode & 0o044:
            rep.line("OK", ".env", f"{env_path} (mode {mode:o}, private)")
    if cfg.mode == "live":
        rep.line("NOTE", "live", "MODE=live: ./supervisor.sh start --live asks for the confirmation phrase")
    _wallet(rep, cfg)
    exe = _browser(rep, cfg)
    prof = cfg.browser_profile_path
    if prof.exists():
        _perm_check(rep, "profile", prof, want_private=True)
    else:
        rep.line("NOTE", "profile", f"{prof} does not exist yet; created (mode 700) on first start or by login")
    with _demo_replica(rep, cfg) as reachable:
        if reachable:
            _apis(rep, cfg)
        if exe and reachable:
            _probe(rep, cfg)
    from dashboard.checks import control_checks  # the dashboard's port, the Telegram token (getMe)

    for level, what, text in control_checks(cfg):
        rep.line(level, what, text)
    print("doctor: " + ("all checks passed" if not rep.failed else f"{rep.failed} check(s) FAILED"))
    return ExitStatus.OK if not rep.failed else ExitStatus.ERROR
