"""Checks before anything starts: the .env file itself, then the config, then the supervisor knobs.

Every problem is one line saying what is wrong and what to do; exit 2 means nothing was started.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path

from dotenv.parser import parse_stream

from core.config import EXIT_CONFIG, REPO_ROOT, Config, ConfigError, load_config

from .settings import SettingsError, children_for, knobs_from_env


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
        note(f"config: no {path.name} found; using the defaults (MODE=demo). To change them: cp .env.example .env")
        return
    if not path.is_file():
        raise PreflightError(f"{path} is not a regular file; nothing started")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise PreflightError(f"{path} could not be read ({reason}); nothing started") from None
    import io

    bad = [b.original.line for b in parse_stream(io.StringIO(text)) if b.error]
    if bad:
        lines = ", ".join(str(n) for n in bad[:5])
        raise PreflightError(f"{path}: line {lines} could not be parsed (each line must be KEY=value or a"
                             " # comment; the line is not shown in case it holds a secret); nothing started")
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
        knobs_from_env(env)
        children_for(cfg, env)
    except SettingsError as exc:
        raise PreflightError(f"{exc}; nothing started") from None
    return cfg


__all__ = ["EXIT_CONFIG", "PreflightError", "check_dotenv", "dotenv_file", "preflight"]
