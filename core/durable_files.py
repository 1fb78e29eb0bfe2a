"""Durable file primitives: atomic JSON replace, tolerant reads, locked append-only JSONL.

A crash at any line leaves either the old file or the new one, never a torn one; a
reader never raises for a missing, empty or corrupt file, it gets a result saying so.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

LOCK_TIMEOUT_S = 10.0


def fsync_dir(directory: Path) -> None:
    """fsync a directory so a rename inside it is durable (no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # Windows or an exotic filesystem: the rename itself is still atomic.
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; durability is best effort there.
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path | str, data: bytes, mode: int = 0o644) -> float:
    """Write `data` to `path` atomically: temp file in the same dir, fsync, replace, fsync dir.

    Returns time.perf_counter() taken just after os.replace: when readers see the new content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        replaced_at = time.perf_counter()
    except BaseException:
        # Leave no temp file behind, whatever stopped us (including KeyboardInterrupt).
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)
    return replaced_at


def atomic_write_json(path: Path | str, obj: Any, mode: int = 0o644) -> float:
    """atomic_write_bytes of the JSON text; returns the perf_counter() reading at the replace."""
    data = json.dumps(obj, indent=2, sort_keys=False, allow_nan=False).encode() + b"\n"
    return atomic_write_bytes(path, data, mode)


@dataclass(frozen=True)
class ReadResult:
    """Outcome of a tolerant read: `data` is a dict when ok, else `problem` says why not."""

    data: dict | None
    problem: str | None  # None when ok; "missing", "empty", "corrupt: ...", "unreadable: ..."

    @property
    def ok(self) -> bool:
        return self.problem is None


def read_json(path: Path | str) -> ReadResult:
    """Read a JSON object; never raises for a missing, empty, corrupt or non-object file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return ReadResult(None, "missing")
    except OSError as exc:
        return ReadResult(None, f"unreadable: {exc.strerror or exc}")
    if not raw.strip():
        return ReadResult(None, "empty")
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return ReadResult(None, f"corrupt: {exc}")
    if not isinstance(obj, dict):
        return ReadResult(None, f"corrupt: expected a JSON object, got {type(obj).__name__}")
    return ReadResult(obj, None)


def _lock_for(path: Path) -> FileLock:
    return FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S)


def append_jsonl(path: Path | str, record: dict) -> None:
    """Append one JSON line under a lock and fsync it before returning.

    Raises filelock.Timeout (after LOCK_TIMEOUT_S) if another writer holds the lock.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n"
    with _lock_for(path):
        # A torn last line (crash mid-write) must not glue onto ours: start on a new line.
        needs_newline = False
        try:
            with open(path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                if fh.tell() > 0:
                    fh.seek(-1, os.SEEK_END)
                    needs_newline = fh.read(1) != b"\n"
        except FileNotFoundError:
            pass
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (("\n" if needs_newline else "") + line).encode())
            os.fsync(fd)
        finally:
            os.close(fd)


def iter_jsonl(path: Path | str) -> Iterator[dict]:
    """Yield each valid JSON object line; skip blank, torn or corrupt lines."""
    path = Path(path)
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        return
    with fh:
        for raw in fh:
            raw = raw.strip()
            if not raw:
                continue
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(obj, dict):
                yield obj


def read_jsonl(path: Path | str) -> list[dict]:
    return list(iter_jsonl(path))


def touch_heartbeat(path: Path | str, now: float | None = None) -> None:
    """Mark a process alive: create the file if needed and set its mtime to now."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    now = time.time() if now is None else now
    try:
        os.utime(path, (now, now))
    except FileNotFoundError:
        path.touch()
        os.utime(path, (now, now))


def file_age(path: Path | str, now: float | None = None) -> float | None:
    """Seconds since `path` was last modified, or None if it does not exist."""
    try:
        mtime = Path(path).stat().st_mtime
    except FileNotFoundError:
        return None
    return max(0.0, (time.time() if now is None else now) - mtime)


__all__ = [
    "ReadResult",
    "Timeout",
    "append_jsonl",
    "atomic_write_bytes",
    "atomic_write_json",
    "file_age",
    "fsync_dir",
    "iter_jsonl",
    "read_json",
    "read_jsonl",
    "touch_heartbeat",
]
