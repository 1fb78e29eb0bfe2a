"""The whole demo system, isolated: its own STATE_DIR/LOG_DIR/PROFILE_DIR, free replica ports,
started and stopped through `./supervisor.sh start|stop` (whose monitor restarts what we kill).

Used by the chaos run and the long-run benchmark. Every process it causes to exist is stopped by
`stop()` (the supervisor's stop: TERM to each process group, then KILL; Chromium included).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from core.config import REPO_ROOT, Config, load_config
from core.durable_files import read_json

from . import procs

SUPERVISOR = REPO_ROOT / "supervisor.sh"
START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 120.0
HTTP_TIMEOUT_S = 3.0
CHILDREN = ("replica", "signal_engine", "executor")
# Variables of the caller's environment that would point the isolated system elsewhere.
DROPPED_VARS = ("MARKET_URL", "SITE_PROFILE", "WALLET_PROFILE", "LIVE_CONFIRM", "FEEDS", "REPLAY_FILE",
                "CLOBBOT_DISCORD_WEBHOOK_URL", "CLOBBOT_DISCORD_MENTION", "SUPERVISOR_CHILDREN_FILE",
                "CHROME_PROFILE", "SIGNAL_MAX_AGE", "STALE_AFTER", "ENTRY_START", "ENTRY_END", "STRATEGY")


class SystemError_(RuntimeError):
    """The isolated system could not be started or stopped; the message says what failed and where."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n: int) -> list[int]:
    out: list[int] = []
    while len(out) < n:
        p = free_port()
        if p not in out:
            out.append(p)
    return out


@dataclass
class ChildPid:
    name: str
    pid: int
    start: str      # the monitor's identity token ("linux:<ticks>")
    started_at: float

    def alive(self) -> bool:
        tok = procs.start_token(self.pid)
        return tok is not None and f"linux:{tok}" == self.start and procs.alive(self.pid)


class IsolatedSystem:
    def __init__(self, root: Path, window_seconds: int = 20, extra_env: dict[str, str] | None = None):
        self.root = Path(root)
        self.window_seconds = int(window_seconds)
        self.state_dir = self.root / "state"
        self.log_dir = self.root / "logs"
        self.profile_dir = self.root / "profiles"
        self.port, self.wallet_port, self.dashboard_port = free_ports(3)
        self.extra_env = dict(extra_env or {})
        self.started = False
        self._cfg: Config | None = None

    # ---- environment -----------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in DROPPED_VARS}
        dotenv = self.root / "empty.env"
        if not dotenv.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            dotenv.write_text("# empty: the chaos/bench run configures everything through its environment\n")
            dotenv.chmod(0o600)
        env.update({
            "MODE": "demo", "STATE_DIR": str(self.state_dir), "LOG_DIR": str(self.log_dir),
            "PROFILE_DIR": str(self.profile_dir), "DOTENV_PATH": str(dotenv),
            "REPLICA_PORT": str(self.port), "REPLICA_WALLET_PORT": str(self.wallet_port),
            "DASHBOARD_PORT": str(self.dashboard_port),
            "WINDOW_SECONDS": str(self.window_seconds), "HEADLESS": "1",
            # Risk guards would halt trading after a few losses and end the experiment early:
            # the run measures the machinery, not the strategy.
            "MAX_DAILY_LOSS": "1000000", "MAX_CONSECUTIVE_LOSSES": "1000000", "MAX_TRADES_PER_DAY": "1000000",
            "MAX_OPEN_EXPOSURE": "1000000", "COOLDOWN_SECONDS": "0", "SUMMARY_INTERVAL": "0",
            "SUPERVISOR_START_TIMEOUT": "120",
        })
        env.update(self.extra_env)
        return env

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cfg(self) -> Config:
        """The configuration the system's processes load: its paths come from here, not a copy."""
        if self._cfg is None:
            self._cfg = load_config(self.env(), check_dirs=False)
        return self._cfg

    @property
    def trades_path(self) -> Path:
        return self.cfg.trades_path

    @property
    def decisions_path(self) -> Path:
        return self.cfg.decisions_path

    @property
    def signal_path(self) -> Path:
        return self.cfg.signal_path

    @property
    def replica_state_path(self) -> Path:
        return self.state_dir / "replica.json"

    # ---- lifecycle -------------------------------------------------------------------------------
    def _sup(self, *args: str, timeout: float) -> subprocess.CompletedProcess:
        try:
            return subprocess.run([str(SUPERVISOR), *args], cwd=REPO_ROOT, env=self.env(), stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise SystemError_(f"./supervisor.sh {' '.join(args)} did not finish within {timeout:.0f} s"
                               f" (state in {self.state_dir})") from exc

    def start(self) -> str:
        for d in (self.state_dir, self.log_dir, self.profile_dir):
            d.mkdir(parents=True, exist_ok=True)
        r = self._sup("start", timeout=START_TIMEOUT_S)
        self.started = r.returncode == 0
        if r.returncode != 0:
            # A partial start may have left a monitor: stop it before failing.
            self._sup("stop", timeout=STOP_TIMEOUT_S)
            raise SystemError_(f"./supervisor.sh start exited {r.returncode}: {(r.stderr or r.stdout)[-1500:]}")
        return r.stdout

    def stop(self) -> str:
        r = self._sup("stop", timeout=STOP_TIMEOUT_S)
        self.started = False
        if r.returncode != 0:
            raise SystemError_(f"./supervisor.sh stop exited {r.returncode}: {(r.stderr or r.stdout)[-1500:]}")
        return r.stdout + r.stderr

    # ---- facts -----------------------------------------------------------------------------------
    def status_doc(self) -> dict:
        res = read_json(self.state_dir / "supervisor.json")
        return res.data if res.ok and isinstance(res.data, dict) else {}

    def child(self, name: str) -> ChildPid | None:
        """The running child `name` per the monitor's pid file, if that very process is alive."""
        res = read_json(self.state_dir / "pids" / f"{name}.json")
        if not res.ok or not isinstance(res.data, dict):
            return None
        d = res.data
        try:
            c = ChildPid(name, int(d["pid"]), str(d["start"]), float(d.get("started_at") or 0.0))
        except (KeyError, TypeError, ValueError):
            return None
        return c if c.alive() else None

    def monitor_pid(self) -> int | None:
        res = read_json(self.state_dir / "pids" / "monitor.json")
        if res.ok and isinstance(res.data, dict) and isinstance(res.data.get("pid"), int):
            return res.data["pid"]
        return None

    def http_json(self, path: str, method: str = "GET", body: object | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:
            return json.loads(resp.read().decode())

    def try_json(self, path: str, method: str = "GET", body: object | None = None) -> dict | None:
        """Like http_json, but None when the replica is down or answers an error (it may be being killed)."""
        try:
            return self.http_json(path, method, body)
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def wait_trading(self, timeout: float) -> bool:
        """True once the executor has journaled its first `filled` (the system trades end to end)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if '"event":"filled"' in self.trades_path.read_text().replace(" ", ""):
                    return True
            except OSError:
                pass  # no journal yet: keep waiting until the deadline
            time.sleep(0.5)  # polling interval of a deadline-bounded wait
        return False
