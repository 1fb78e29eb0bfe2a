"""The replica as a real subprocess, and a small client of its HTTP API (tests, benchmarks).

    start_replica(workdir, window_seconds=20, price_to_beat_delay=2.0, password=REPLICA_PASSWORD,
                  extra_args=(), seed=7, assets=("BTC", "ETH"), state_file=True, env=None) -> Replica

    Replica (also a context manager: `with start_replica(tmp_path) as rep:`)
      .market_url       http://127.0.0.1:P/crypto/15M
      .base_url         http://127.0.0.1:P
      .wallet_origin    http://127.0.0.1:W   (the popup is .wallet_origin + "/notification.html?...")
      .port .wallet_port .pid .state_file .heartbeat_file .log_path .password
      .api(method, path, json=None) -> parsed JSON; raises ReplicaApiError(status, body) on >= 400
      .request(method, path, body=None, raw=None) -> (status, parsed JSON or text)
      .orders() -> list of order dicts (id, asset, window_start, slug, side, amount, price, shares, fee, ...)
      .settlements() -> list;  .markets() -> list;  .wallet() -> dict (requests, events, locked)
      .faults(*specs) -> arms faults ({"kind": ..., "mode": "once"|"persistent", ...}) and returns the
                         armed list; with no argument, lists the armed faults
      .clear_faults();  .reset();  .lock_wallet()
      .place_order(asset="BTC", side="UP", amount="10") -> the wallet's confirm answer (status, order_id):
                         what the page and the popup do, over plain HTTP (an order placed "by hand")
      .wait_for(predicate, timeout=10, what="...") -> the predicate's truthy value; AssertionError
                         naming `what` after the timeout (tests/waiting.py's behaviour)
      .kill(sig=signal.SIGKILL) -> exit code;  .stop() (SIGTERM, then SIGKILL after 10 s) -> exit code
      .restart() -> same ports, same state file;  .start();  .log_text()

The wallet password reaches the replica through the REPLICA_WALLET_PASSWORD environment
variable, never argv. Ports are chosen by the OS (--port 0) and read from the --ready-file;
a restart reuses the same ports so an open browser page keeps working. A replica that does
not come up raises TimeoutError (or RuntimeError when it exited), after killing it.

Tests reach this through tests/replica_support.py (which adds the pytest fixtures); the
benchmarks (bench/) import it directly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.waiting import poll_until

REPO = Path(__file__).resolve().parent.parent
REPLICA_PASSWORD = "correct horse battery staple"
START_TIMEOUT = 20.0
HTTP_TIMEOUT = 10.0


class ReplicaApiError(Exception):
    def __init__(self, status: int, body: Any, method: str, path: str):
        super().__init__(f"{method} {path} answered HTTP {status}: {body}")
        self.status = status
        self.body = body


class Replica:
    def __init__(self, workdir: Path, window_seconds: int = 20, price_to_beat_delay: float | None = 2.0,
                 password: str = REPLICA_PASSWORD, extra_args: Sequence[str] = (), seed: int = 7,
                 assets: Sequence[str] = ("BTC", "ETH"), state_file: bool | Path = True,
                 env: dict[str, str] | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.window_seconds = window_seconds
        self.price_to_beat_delay = price_to_beat_delay
        self.password = password
        self.extra_args = list(extra_args)
        self.seed = seed
        self.assets = tuple(assets)
        if state_file is True:
            self.state_file: Path | None = self.workdir / "replica-state.json"
        elif state_file:
            self.state_file = Path(state_file)
        else:
            self.state_file = None
        self.heartbeat_file = self.workdir / "replica.heartbeat"
        self.ready_file = self.workdir / "replica-ready.json"
        self.log_path = self.workdir / "replica.log"
        self.base_env = dict(env) if env is not None else dict(os.environ)
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.wallet_port = 0
        self._log_fh = None

    # ---- life cycle -------------------------------------------------------------------------------
    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "replica", "--port", str(self.port), "--wallet-port", str(self.wallet_port),
               "--window-seconds", str(self.window_seconds), "--seed", str(self.seed),
               "--assets", ",".join(self.assets), "--ready-file", str(self.ready_file),
               "--heartbeat", str(self.heartbeat_file)]
        if self.state_file:
            cmd += ["--state-file", str(self.state_file)]
        if self.price_to_beat_delay is not None:
            cmd += ["--price-to-beat-delay", str(self.price_to_beat_delay)]
        return cmd + self.extra_args

    def start(self) -> Replica:
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError(f"replica already running (pid {self.proc.pid})")
        self.ready_file.unlink(missing_ok=True)
        env = dict(self.base_env)
        env["REPLICA_WALLET_PASSWORD"] = self.password
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        env.setdefault("DOTENV_PATH", str(self.workdir / "no.env"))
        env.pop("MODE", None)
        env.pop("LIVE_CONFIRM", None)
        self._log_fh = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()/kill()
        self.proc = subprocess.Popen(self.command(), cwd=str(REPO), env=env, stdout=self._log_fh,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        try:
            info = poll_until(self._ready_info, START_TIMEOUT, "the replica's ready file", 0.05)
            self.port, self.wallet_port = int(info["port"]), int(info["wallet_port"])
            poll_until(self._healthy, START_TIMEOUT, "/api/health", 0.05)
        except BaseException:
            self.kill()
            raise
        return self

    def _ready_info(self) -> dict | None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"replica exited with code {self.proc.returncode} before it was ready;"
                               f" log:\n{self.log_text()[-3000:]}")
        try:
            info = json.loads(self.ready_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return info if info.get("pid") == self.proc.pid else None

    def _healthy(self) -> bool:
        try:
            status, body = self.request("GET", "/api/health")
        except OSError:
            return False
        return status == 200 and isinstance(body, dict) and body.get("ok") is True

    def _close_log(self) -> None:
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 10.0) -> int | None:
        """Send `sig` and wait for the exit; returns the exit code (negative for a signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self._close_log()
        return self.proc.returncode

    def stop(self) -> int | None:
        return self.kill(signal.SIGTERM)

    def restart(self) -> Replica:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
        return self.start()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> Replica:
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- URLs -------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def market_url(self) -> str:
        return self.base_url + "/crypto/15M"

    @property
    def wallet_origin(self) -> str:
        return f"http://127.0.0.1:{self.wallet_port}"

    # ---- HTTP -------------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None, raw: bytes | None = None,
                base: str | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request((base or self.base_url) + path, data=data, method=method.upper(),
                                     headers={"Content-Type": "application/json"} if data is not None else {})
        try:
            with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as resp:
                status, payload = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, payload = exc.code, exc.read()
        text = payload.decode(errors="replace")
        try:
            return status, json.loads(text)
        except json.JSONDecodeError:
            return status, text

    def api(self, method: str, path: str, json: Any = None) -> Any:  # noqa: A002 - mirrors requests' name
        status, body = self.request(method, path, json)
        if status >= 400:
            raise ReplicaApiError(status, body, method, path)
        return body

    def orders(self) -> list[dict]:
        return self.api("GET", "/api/orders")["orders"]

    def settlements(self) -> list[dict]:
        return self.api("GET", "/api/settlements")["settlements"]

    def markets(self) -> list[dict]:
        return self.api("GET", "/api/markets")["markets"]

    def wallet(self) -> dict:
        return self.api("GET", "/api/wallet")

    def faults(self, *specs: dict) -> list[dict]:
        if not specs:
            return self.api("GET", "/api/faults")["faults"]
        return self.api("POST", "/api/faults", list(specs))["armed"]

    def clear_faults(self) -> None:
        self.api("DELETE", "/api/faults")

    def reset(self) -> None:
        self.api("POST", "/api/reset", {})

    def lock_wallet(self) -> None:
        self.api("POST", "/api/wallet/lock", {})

    def place_order(self, asset: str = "BTC", side: str = "UP", amount: str = "10") -> dict:
        intent = self.api("POST", "/api/intents", {"asset": asset, "side": side, "amount": amount})
        status, body = self.request("POST", "/wallet/api/unlock", {"password": self.password}, base=self.wallet_origin)
        if status != 200:
            raise ReplicaApiError(status, body, "POST", "/wallet/api/unlock")
        status, body = self.request("POST", "/wallet/api/confirm", {"id": intent["request_id"]},
                                    base=self.wallet_origin)
        if status != 200:
            raise ReplicaApiError(status, body, "POST", "/wallet/api/confirm")
        return body

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
        """For tests: the predicate's truthy value, or an AssertionError naming `what` after `timeout` s."""
        try:
            return poll_until(predicate, timeout, what, 0.05)
        except TimeoutError as exc:
            raise AssertionError(str(exc)) from None


def start_replica(workdir: Path, window_seconds: int = 20, price_to_beat_delay: float | None = 2.0,
                  password: str = REPLICA_PASSWORD, extra_args: Sequence[str] = (), **kwargs: Any) -> Replica:
    """A started Replica (stop it, or use it as a context manager)."""
    return Replica(workdir, window_seconds, price_to_beat_delay, password, extra_args, **kwargs).start()
