"""The value side of the configuration: the error type, masked secrets, and one converter per
kind of value (numbers with bounds, booleans, choices, URLs, asset and feed lists, paths). Each
converter raises `_Bad(problem, example)`; `core.config.load_config` turns that into a
`ConfigError` naming the variable. No message echoes more than SHOWN_CHARS characters of a value.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
KNOWN_FEEDS = ("sim", "binance", "coinbase", "replay", "replica")
RESERVED_PROFILE_NAMES = ("sites", "wallets")
SHOWN_CHARS = 80  # an error message echoes at most this much of a value
SECRET_VARS = ("METAMASK_PASSWORD", "CLOBBOT_DISCORD_WEBHOOK_URL", "TELEGRAM_BOT_TOKEN")
SECRETS_FILE_VAR = "SECRETS_FILE"  # a 0600 JSON file of SECRET_VARS the monitor hands its children
# The assets the demo venue (replica/pricing.py BASE_PRICES) quotes: MODE=demo trades only these.
DEMO_ASSETS = ("BTC", "ETH", "SOL", "XRP")


class ConfigError(Exception):
    """An invalid configuration value. The message is safe to print (no secret values)."""

    def __init__(self, var: str, problem: str, example: str):
        self.var, self.problem, self.example = var, problem, example
        super().__init__(f"config error: {var} {problem} (example of a good value: {var}={example})")


class Secret(str):
    """A string whose repr and str-in-containers never show its value."""

    def __repr__(self) -> str:  # noqa: D105
        return "Secret('***')" if self else "Secret('')"



# ---- converters: each raises ValueError(problem, example) ---------------------------


def shown(text: str) -> str:
    """A value as an error message may echo it: repr'd, at most SHOWN_CHARS characters of it."""
    return repr(text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "...")


class _Bad(ValueError):
    def __init__(self, problem: str, example: str):
        super().__init__(problem)
        self.problem, self.example = problem, example


def _float(lo: float | None = None, hi: float | None = None, lo_open: bool = False,
           example: str = "1.0") -> Callable[[str], float]:
    def conv(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise _Bad(f"is not a number ({shown(text)})", example) from None
        if not math.isfinite(value):
            raise _Bad(f"must be a finite number ({shown(text)})", example)
        if lo is not None and (value <= lo if lo_open else value < lo):
            raise _Bad(f"must be {'>' if lo_open else '>='} {lo:g} (got {shown(text)})", example)
        if hi is not None and value > hi:
            raise _Bad(f"must be <= {hi:g} (got {shown(text)})", example)
        return value
    return conv


def _int(lo: int | None = None, hi: int | None = None, example: str = "1") -> Callable[[str], int]:
    def conv(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise _Bad(f"is not a whole number ({shown(text)})", example) from None
        if lo is not None and value < lo:
            raise _Bad(f"must be >= {lo} (got {shown(text)})", example)
        if hi is not None and value > hi:
            raise _Bad(f"must be <= {hi} (got {shown(text)})", example)
        return value
    return conv


def _bool(example: str = "1") -> Callable[[str], bool]:
    def conv(text: str) -> bool:
        t = text.strip().lower()
        if t in ("1", "true", "yes", "on"):
            return True
        if t in ("0", "false", "no", "off", ""):
            return False
        raise _Bad(f"is not a boolean ({shown(text)}; use 1 or 0)", example)
    return conv


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def conv(text: str) -> str:
        t = text.strip().lower()
        if t not in options:
            raise _Bad(f"must be one of {', '.join(options)} (got {shown(text)})", options[0])
        return t
    return conv


def _url_problem(t: str, detail: bool = True) -> str | None:
    """Why `t` is not a usable http(s) URL (parsed with urllib.parse), or None. `detail`: say what
    urllib.parse found (which may quote part of `t`: off for a secret)."""
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in t):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(t)
        _ = parts.port  # raises ValueError for a port that is not a number in 0..65535
    except ValueError as exc:
        return f"does not parse as a URL ({exc})" if detail else "does not parse as a URL"
    if parts.scheme not in ("http", "https"):
        return "must be an http(s) URL"
    if not parts.hostname:
        return "must be an http(s) URL with a host"
    return None


def _url(example: str) -> Callable[[str], str]:
    def conv(text: str) -> str:
        t = text.strip()
        problem = _url_problem(t)
        if problem:
            raise _Bad(f"{problem[:2 * SHOWN_CHARS]} (got {shown(text)})", example)
        return t.rstrip("/") if t.count("/") <= 2 else t
    return conv


def _secret_url(text: str) -> Secret:
    t = text.strip()
    problem = _url_problem(t, detail=False) if t else None
    if problem:
        # Never echo the value: it is a secret.
        raise _Bad(f"{problem} (value not shown: it is a secret)", "https://discord.com/api/webhooks/<id>/<token>")
    return Secret(t)


def _assets(text: str) -> tuple[str, ...]:
    if text.strip() and any(not a.strip() for a in text.split(",")):
        raise _Bad(f"lists an empty asset ({shown(text)})", "BTC,ETH")
    items = tuple(a.strip().upper() for a in text.split(",") if a.strip())
    if not items:
        raise _Bad("must list at least one asset", "BTC,ETH")
    for a in items:
        if not a.isalnum() or len(a) > 6:
            raise _Bad(f"has an invalid asset name {shown(a)}", "BTC,ETH")
    if len(set(items)) != len(items):
        raise _Bad(f"lists an asset twice ({shown(text)})", "BTC,ETH")
    return items


def _feeds(text: str) -> tuple[str, ...]:
    items = tuple(a.strip().lower() for a in text.split(",") if a.strip())
    if not items:
        raise _Bad("must list at least one feed", "binance,coinbase")
    for a in items:
        if a not in KNOWN_FEEDS:
            raise _Bad(f"names an unknown feed {shown(a)} (known: {', '.join(KNOWN_FEEDS)})",
                       "binance,coinbase")
    return items


def _profile_name(text: str) -> str:
    t = text.strip()
    if not t or "/" in t or "\\" in t or t.startswith(".") or t in RESERVED_PROFILE_NAMES:
        raise _Bad(f"must be a plain folder name, not {shown(text)}"
                   f" (and not {' or '.join(RESERVED_PROFILE_NAMES)})", "demo")
    return t


def _path(text: str) -> Path:
    t = text.strip()
    if not t:
        raise _Bad("must not be empty", "state")
    p = Path(t).expanduser()
    return p if p.is_absolute() else (REPO_ROOT / p)


def _writable_dir(var: str, path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(var, f"is not a writable directory ({shown(str(path))}: {exc.strerror or exc})",
                          var.split("_")[0].lower()) from None
