"""The dashboard's control token: STATE_DIR/dashboard_token, mode 0600, created once.

Reading the dashboard needs no token (it listens on loopback); its buttons (pause, unpause,
resume) do: a request without the right token in the `X-Dashboard-Token` header is refused.
`./supervisor.sh start` prints it (as the URL fragment `#token=...`, which a browser never sends
to a server). Delete the file to get a new one at the next start.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

TOKEN_NAME = "dashboard_token"
MIN_LEN = 20


def token_path(state_dir: Path | str) -> Path:
    return Path(state_dir) / TOKEN_NAME


def _read(path: Path) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as fh:
        if os.fstat(fh.fileno()).st_mode & 0o077:
            os.fchmod(fh.fileno(), 0o600)   # made by hand or by an older copy: the owner's only
        text = fh.read(256).decode("ascii", "replace").strip()
    return text if len(text) >= MIN_LEN and text.isascii() else None


def ensure_token(state_dir: Path | str) -> str:
    """The token, created (0600, exclusively: two processes agree on one) when missing or unusable."""
    path = token_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):
        got = _read(path)
        if got:
            return got
        if path.exists():
            path.unlink()   # empty or too short: replaced by a good one
        token = secrets.token_urlsafe(24)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except FileExistsError:
            continue   # another process made it first: read theirs
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return token
    raise OSError(f"could not create a usable dashboard token in {path}")


def token_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison; an absent token never matches."""
    return bool(given) and hmac.compare_digest(expected.encode(), str(given).encode())


__all__ = ["TOKEN_NAME", "ensure_token", "token_matches", "token_path"]
