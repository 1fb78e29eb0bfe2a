"""Configuration checks that read files: the secrets file the monitor hands its children, and what
the processes would otherwise find out later in a crash loop (profiles, the replay file, the
browser, the demo's assets), all checked before anything starts."""

from __future__ import annotations

import json
import os
from pathlib import Path

from core.config_values import DEMO_ASSETS, REPO_ROOT, SECRET_VARS, SECRETS_FILE_VAR, ConfigError, shown


def read_secrets_file(path: Path) -> dict[str, str]:
    """The SECRET_VARS in SECRETS_FILE (a JSON object of strings, private to its owner); other keys ignored."""
    var = SECRETS_FILE_VAR
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise ConfigError(var, f"names a file that cannot be read ({shown(str(path))}: {exc.strerror or exc})",
                          "state/secrets.json (the supervisor sets it; unset it to use .env)") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if st.st_mode & 0o077:
            raise ConfigError(var, f"names a file others can read or write ({shown(str(path))}, mode"
                              f" {st.st_mode & 0o777:o}): it must be mode 600", "state/secrets.json")
        try:
            doc = json.loads(fh.read().decode("utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(var, f"names a file that is not valid JSON ({shown(str(path))}: {type(exc).__name__})",
                              "state/secrets.json") from None
    if not isinstance(doc, dict):
        raise ConfigError(var, f"names a file that is not a JSON object ({shown(str(path))})", "state/secrets.json")
    return {k: v for k, v in doc.items() if k in SECRET_VARS and isinstance(v, str)}


def _readable(path: Path) -> str | None:
    """Why `path` cannot be read as a file, or None."""
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


def check_files(cfg) -> None:
    """What the processes would otherwise find out later, in a crash loop: checked before anything starts."""
    if cfg.mode == "demo":
        for a in cfg.assets:
            if a not in DEMO_ASSETS:
                raise ConfigError("ASSETS", f"names {shown(a)}, which the demo venue does not quote"
                                  f" (demo assets: {','.join(DEMO_ASSETS)})", "BTC,ETH")
    for var, path in (("SITE_PROFILE", cfg.site_profile_path), ("WALLET_PROFILE", cfg.wallet_profile_path)):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            have = sorted(p.stem for p in path.parent.glob("*.json")) if path.parent.is_dir() else []
            raise ConfigError(var, f"names a profile with no file {path.relative_to(REPO_ROOT)}"
                              f" (there: {', '.join(have) or 'none'})", have[0] if have else "replica") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(var, f"names a profile file that cannot be read ({path}: {exc})",
                              "replica") from None
        except ValueError as exc:
            raise ConfigError(var, f"names a profile file that is not valid JSON ({path}: {exc})",
                              "replica") from None
        if not isinstance(doc, dict):
            raise ConfigError(var, f"names a profile file that is not a JSON object ({path})", "replica")
    if cfg.replay_file is not None and "replay" in cfg.feeds:
        why = _readable(cfg.replay_file)
        if why:
            raise ConfigError("REPLAY_FILE", f"cannot be read ({shown(str(cfg.replay_file))}: {why})",
                              "../shared/data/btcusdt_1m_dev.csv.gz")
    if cfg.browser_path is not None:
        p = Path(cfg.browser_path)
        if not p.is_file() or not os.access(p, os.X_OK):
            raise ConfigError("BROWSER_PATH", f"is not an executable file ({shown(cfg.browser_path)}):"
                              " fix it or leave it empty to discover Chrome/Chromium", "/usr/bin/chromium")
