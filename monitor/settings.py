"""What the monitor supervises and how: child specs and timing knobs.

The children come from the validated `Config` (demo: replica, signal engine, executor; paper and
live: signal engine, executor). In demo the signal engine reads the replica's own price path
(FEEDS=replica in its environment) unless the user set FEEDS in the environment or .env.
`SUPERVISOR_CHILDREN_FILE` may name a JSON file replacing them (used by the tests to run small
stub processes, and handy for a custom set-up):

    {"children": [{"name": "a", "argv": ["{python}", "stub.py", "--beat", "{state_dir}/heartbeat/a"],
                   "heartbeat": ["{state_dir}/heartbeat/a"], "stale_after": 5, "env": {"X": "1"}}]}

Timing knobs are config variables (core/config.py: `.env`, then the environment, validated like
every other; defaults in brackets), all in seconds unless said:
SUPERVISOR_BACKOFF_BASE [1], SUPERVISOR_BACKOFF_MAX [60] (failed starts in a row wait 1, 2, 4 ...
60 s; a child that ran longer than MIN_UPTIME is restarted at once), SUPERVISOR_MIN_UPTIME [5] (a
child that dies sooner counts as a failed start), SUPERVISOR_MAX_FAILS [5] (failed starts in a row
before FATAL), SUPERVISOR_STOP_TIMEOUT [15] (TERM -> KILL), SUPERVISOR_TICK [0.2],
SUPERVISOR_STALE_<NAME> (heartbeat limit of one child), SUPERVISOR_LOG_MAX_BYTES [10485760],
SUPERVISOR_LOG_KEEP [3], SUPERVISOR_START_TIMEOUT [40] (how long `start` waits for the screen),
SUPERVISOR_FATAL_RETRY [300] (a FATAL child is tried again this often, with a notification each
time; 0: never; a child that exited 2, refusing its config, is never retried automatically).

Secrets never go into a child's environment: the monitor writes them to Paths.secrets_file
(0600) and gives each child SECRETS_FILE (core.config reads it); see monitor/supervise.py.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from core.config import DEMO_WALLET_PASSWORD, REPO_ROOT, Config, _merged_env

__all__ = ["DEMO_WALLET_PASSWORD", "ChildSpec", "Knobs", "Paths", "SettingsError", "children_for",
           "default_children", "knobs_of", "paths_of"]


class SettingsError(Exception):
    """A bad supervisor knob or children file; the message is safe to print."""


@dataclass(frozen=True)
class ChildSpec:
    name: str
    argv: tuple[str, ...]
    heartbeat: tuple[Path, ...]  # freshest of these files is the child's heartbeat
    stale_after: float  # seconds without a beat before the child counts as hung
    env: Mapping[str, str] = field(default_factory=dict)


def _default(name: str):
    """The default of Config.supervisor_<name>: the knobs' defaults have one home, core/config."""
    return next(f.default for f in fields(Config) if f.name == f"supervisor_{name}")


KNOB_NAMES = ("backoff_base", "backoff_max", "min_uptime", "max_fails", "stop_timeout", "tick", "log_max_bytes",
              "log_keep", "fatal_retry")


@dataclass(frozen=True)
class Knobs:
    backoff_base: float = _default("backoff_base")
    backoff_max: float = _default("backoff_max")
    min_uptime: float = _default("min_uptime")
    max_fails: int = _default("max_fails")
    stop_timeout: float = _default("stop_timeout")
    tick: float = _default("tick")
    log_max_bytes: int = _default("log_max_bytes")
    log_keep: int = _default("log_keep")
    fatal_retry: float = _default("fatal_retry")   # seconds between automatic retries of a FATAL child; 0: never

    def backoff(self, failures: int) -> float:
        """1, 2, 4 ... capped: the wait before the next start after `failures` failed starts in a row."""
        return min(self.backoff_max, self.backoff_base * (2 ** max(0, failures - 1)))


@dataclass(frozen=True)
class Paths:
    """The monitor's files under STATE_DIR and LOG_DIR (pid files, hold-down marks, supervisor.json, the lock)."""

    state_dir: Path
    log_dir: Path
    pid_dir: Path = field(init=False)
    down_dir: Path = field(init=False)
    status_file: Path = field(init=False)
    lock_file: Path = field(init=False)
    secrets_file: Path = field(init=False)

    def __post_init__(self) -> None:
        for name, rel in (("pid_dir", "pids"), ("down_dir", "down"), ("status_file", "supervisor.json"),
                          ("lock_file", "supervisor.lock"), ("secrets_file", "secrets.json")):
            object.__setattr__(self, name, self.state_dir / rel)

    def pid_file(self, name: str) -> Path:
        return self.pid_dir / f"{name}.json"

    def down_file(self, name: str) -> Path:
        return self.down_dir / name

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"


def paths_of(cfg: Config) -> Paths:
    return Paths(cfg.state_dir, cfg.log_dir)


def knobs_of(cfg: Config) -> Knobs:
    """The monitor's timing knobs: the SUPERVISOR_* values of the validated config."""
    return Knobs(**{name: getattr(cfg, f"supervisor_{name}") for name in KNOB_NAMES})


def feeds_set_by_user(env: Mapping[str, str]) -> bool:
    """Whether FEEDS has a non-blank value in the environment or in .env (as load_config reads them)."""
    return bool(_merged_env(env, None).get("FEEDS", "").strip())


def default_children(cfg: Config, env: Mapping[str, str] | None = None) -> list[ChildSpec]:
    env = os.environ if env is None else env
    py = sys.executable
    hb = cfg.heartbeat_path
    children: list[ChildSpec] = []
    # No password in any child's environment: the monitor hands secrets over in a 0600 file
    # (SECRETS_FILE); the replica's wallet and the executor both read METAMASK_PASSWORD from it
    # through core.config (which defaults it to DEMO_WALLET_PASSWORD in demo).
    if cfg.mode == "demo":
        # The replica quotes BTC and ETH as always, and every asset the executor trades (core.config
        # allows only assets it prices: DEMO_ASSETS), so no configured asset waits for a market forever.
        replica_assets = tuple(dict.fromkeys(("BTC", "ETH", *cfg.assets)))
        children.append(ChildSpec(
            "replica",
            (py, "-m", "replica", "--port", str(cfg.replica_port), "--wallet-port", str(cfg.replica_wallet_port),
             "--window-seconds", str(cfg.window_seconds), "--state-file", str(cfg.state_dir / "replica.json"),
             "--heartbeat", str(hb("replica")), "--assets", ",".join(replica_assets)),
            (hb("replica"),), cfg.stale_after_for("replica", 30.0)))
    engine_env: dict[str, str] = {}
    if cfg.mode == "demo" and not feeds_set_by_user(env):
        # The demo's signals follow the demo venue's own price path (the replica serves it in
        # Binance's shape), so prob_up relates to how demo trades settle. A user's FEEDS wins.
        engine_env["FEEDS"] = "replica"
    children.append(ChildSpec(
        "signal_engine", (py, "-m", "signal_engine"),
        (cfg.signal_path, hb("signal_engine")),
        cfg.stale_after_for("signal_engine", max(15.0, 10 * cfg.signal_interval)), engine_env))
    children.append(ChildSpec(
        "executor", (py, "-m", "executor"), (hb("executor"),),
        cfg.stale_after_for("executor", max(90.0, 3 * cfg.step_timeout))))
    # The control surfaces (issue 15): the loopback dashboard + /metrics unless DASHBOARD=0, the Telegram
    # bot when its token and chats are set. Neither trades; the bot's token reaches it in SECRETS_FILE.
    if cfg.dashboard:
        children.append(ChildSpec("dashboard", (py, "-m", "dashboard"), (hb("dashboard"),),
                                  cfg.stale_after_for("dashboard", 30.0)))
    if cfg.telegram_enabled:
        children.append(ChildSpec("telegram_bot", (py, "-m", "telegram_bot"), (hb("telegram_bot"),),
                                  cfg.stale_after_for("telegram_bot", 120.0)))
    return children


def _expand(text: str, cfg: Config) -> str:
    return (text.replace("{python}", sys.executable).replace("{state_dir}", str(cfg.state_dir))
            .replace("{log_dir}", str(cfg.log_dir)).replace("{repo}", str(REPO_ROOT)))


def children_from_file(path: Path, cfg: Config) -> list[ChildSpec]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SettingsError(f"SUPERVISOR_CHILDREN_FILE={path} could not be read: {exc}") from None
    items = doc.get("children") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        raise SettingsError(f"SUPERVISOR_CHILDREN_FILE={path} must hold {{\"children\": [...]}} with one or more")
    out: list[ChildSpec] = []
    for i, item in enumerate(items):
        try:
            name = str(item["name"])
            argv = tuple(_expand(str(a), cfg) for a in item["argv"])
            beats = tuple(Path(_expand(str(p), cfg)) for p in item.get("heartbeat", []))
            stale = float(item.get("stale_after", 30))
            extra = {str(k): _expand(str(v), cfg) for k, v in dict(item.get("env", {})).items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise SettingsError(f"SUPERVISOR_CHILDREN_FILE={path}: child #{i} is malformed ({exc!r})") from None
        if not name.replace("_", "").replace("-", "").isalnum() or not argv:
            raise SettingsError(f"SUPERVISOR_CHILDREN_FILE={path}: child #{i} needs a plain name and an argv")
        out.append(ChildSpec(name, argv, beats, cfg.stale_after_for(name, stale), extra))
    if len({c.name for c in out}) != len(out):
        raise SettingsError(f"SUPERVISOR_CHILDREN_FILE={path}: two children share a name")
    return out


def children_for(cfg: Config, env: Mapping[str, str] | None = None) -> list[ChildSpec]:
    """The children to supervise: SUPERVISOR_CHILDREN_FILE's when set, else the mode's defaults."""
    if cfg.supervisor_children_file is not None:
        return children_from_file(cfg.supervisor_children_file, cfg)
    return default_children(cfg, env)
