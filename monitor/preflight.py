"""Checks before anything starts: the .env file itself, then the config, then the supervisor knobs.

Every problem is one line saying what is wrong and what to do; exit 2 (ExitStatus.REFUSED) means
nothing was started. The supervisor's knobs (SUPERVISOR_*) are part of the config.
"""

from __future__ import annotations

import difflib
import io
import os
import re
import socket
import stat
from collections.abc import Callable, Mapping
from pathlib import Path

from dotenv.parser import parse_stream

from core.config import REPO_ROOT, STALE_PREFIX, Config, ConfigError, load_config

from .settings import SettingsError, children_for


class PreflightError(Exception):
    """Safe to print: names the file/variable and the fix, never a value."""


def dotenv_file(env: Mapping[str, str]) -> tuple[Path, bool]:
    """The .env path and whether it was named explicitly (DOTENV_PATH)."""
    explicit = env.get("DOTENV_PATH", "").strip()
    return (Path(explicit), True) if explicit else (REPO_ROOT / ".env", False)


def check_dotenv(env: Mapping[str, str], note: Callable[[str], None]) -> None:
    path, explicit = dotenv_file(env)
    if not path.exists():
        if explicit:
            raise PreflightError(f"DOTENV_PATH={path} does not exist: create it (cp .env.example {path})"
                                 " or unset DOTENV_PATH; nothing started")
        note(f"config: no {path.name} found; using the environment and the defaults"
             f" (MODE={env.get('MODE') or 'demo'}). To change them: cp .env.example .env")
        return
    if not path.is_file():
        raise PreflightError(f"{path} is not a regular file; nothing started")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise PreflightError(f"{path} could not be read ({reason}); nothing started") from None
    bad = [b.original.line for b in parse_stream(io.StringIO(text)) if b.error]
    if bad:
        lines = ", ".join(str(n) for n in bad[:5])
        raise PreflightError(f"{path}: line {lines} could not be parsed (each line must be KEY=value or a"
                             " # comment; the line is not shown in case it holds a secret); nothing started")
    for line in unknown_names([b.key for b in parse_stream(io.StringIO(text)) if b.key], path):
        note(line)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        note(f"warning: {path} is readable by other users (mode {mode:o}); it may hold METAMASK_PASSWORD:"
             f" chmod 600 {path}")


def preflight(env: Mapping[str, str] | None = None, note: Callable[[str], None] = print) -> Config:
    env = os.environ if env is None else env
    check_dotenv(env, note)
    try:
        cfg = load_config(env)
    except ConfigError as exc:
        raise PreflightError(f"{exc}; nothing started") from None
    try:
        children_for(cfg, env)
    except SettingsError as exc:
        raise PreflightError(f"{exc}; nothing started") from None
    return cfg


def known_names() -> set[str]:
    """Every setting: the names .env.example lists (tests/test_core.py holds it complete)."""
    example = REPO_ROOT / ".env.example"
    try:
        text = example.read_text(encoding="utf-8")
    except OSError:
        return set()
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, flags=re.M))


def unknown_names(names: list[str], path: Path) -> list[str]:
    """A warning per name in .env that is no setting (a typo leaves the default in force, silently
    otherwise), with the closest setting when there is one. Empty when .env.example is missing."""
    known = known_names()
    if not known:
        return []
    out = []
    for name in names:
        if name in known or name.startswith(STALE_PREFIX):
            continue
        close = [name.upper()] if name.upper() in known else \
            difflib.get_close_matches(name.upper(), sorted(known), n=1, cutoff=0.8)
        hint = f"did you mean {close[0]}? " if close else ""
        out.append(f"warning: {name} in {path} is not a setting (not in .env.example): {hint}it is ignored")
    return out


def check_ports_free(cfg: Config, env: Mapping[str, str] | None = None) -> None:
    """Run after the start lock is held (so a second start says `already running` instead)."""
    env = os.environ if env is None else env
    children = children_for(cfg, env)
    if any(c.name == "replica" and "replica" in c.argv for c in children):
        check_replica_ports(cfg)
    if any(c.name == "dashboard" and "dashboard" in c.argv for c in children) \
            and port_in_use(cfg.dashboard_port, cfg.dashboard_bind):
        raise PreflightError(f"DASHBOARD_PORT={cfg.dashboard_port} is already in use on {cfg.dashboard_bind} (another"
                             " instance's dashboard?): set DASHBOARD_PORT to a free port in .env, e.g."
                             " DASHBOARD_PORT=8788, or DASHBOARD=0; nothing started")


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when another program listens on host:port (same bind options as the replica's server)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def check_replica_ports(cfg: Config) -> None:
    """The demo venue needs two free ports; say which variable to change rather than crash-loop."""
    for var, port in (("REPLICA_PORT", cfg.replica_port), ("REPLICA_WALLET_PORT", cfg.replica_wallet_port)):
        if port_in_use(port):
            raise PreflightError(f"{var}={port} is already in use by another program on 127.0.0.1: stop it, or set"
                                 f" {var} (and its partner) to free ports in .env, e.g. REPLICA_PORT=18765"
                                 " REPLICA_WALLET_PORT=18766; nothing started")


__all__ = ["PreflightError", "check_dotenv", "check_ports_free", "dotenv_file", "preflight"]
