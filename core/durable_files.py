"""Durable file primitives: atomic JSON replace, tolerant reads, locked append-only JSONL.

A crash at any line leaves either the old file or the new one, never a torn one; a
reader never raises for a missing, empty or corrupt file, it gets a result saying so.
A write that fails (disk full, I/O error, a short write, fsync refusing) raises an OSError
subclass naming what failed and where, and leaves the file as it was before the call.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from core.json_text import indented

LOCK_TIMEOUT_S = 10.0
log = logging.getLogger("core.durable_files")


class DurableWriteError(OSError):
    """A durable write that did not happen. `errno` is the cause's (EIO for a write that made no
    progress), `filename` the target, `stage` the step that failed ("open", "write", "fsync", ...)
    and `intact` whether the file is known to be exactly as it was before the call."""

    def __init__(self, err: int | None, message: str, path: Path | str, stage: str, intact: bool):
        super().__init__(err if err is not None else errno.EIO, message, str(path))
        self.stage = stage
        self.intact = intact


class AppendError(DurableWriteError):
    """append_jsonl failed; when `intact` (the usual case) nothing of the record was appended."""


def fsync_dir(directory: Path) -> None:
    """fsync a directory so a rename inside it is durable (best effort where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError as exc:
        # Windows or an exotic filesystem: the rename itself is still atomic, only its durability
        # across a power cut is not guaranteed there.
        log.debug("cannot open directory %s to fsync it: %s", directory, exc)
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some filesystems refuse fsync on directories (EINVAL); the file's own data was fsynced.
        log.debug("fsync of directory %s failed: %s", directory, exc)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written; OSError(EIO) if a write makes no progress."""
    view = memoryview(data)
    done = 0
    while done < len(view):
        n = os.write(fd, view[done:])
        if n <= 0:
            raise OSError(errno.EIO, f"write made no progress: {done} of {len(view)} bytes written, then"
                                     f" os.write returned {n} (disk full?)")
        done += n


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return f"{type(exc).__name__}: {exc}"


def atomic_write_bytes(path: Path | str, data: bytes, mode: int = 0o600, durable: bool = True) -> float:
    """Write `data` to `path` atomically: temp file in the same dir, fsync, replace, fsync dir.

    `durable=False` skips both fsyncs: readers still never see a torn file (the replace is atomic),
    but a power cut may leave the previous or an empty file. Only for files rewritten many times a
    second whose readers treat an empty file as corrupt and whose writer replaces it at start (the
    signal engine's publishes on streamed prices).

    Returns time.perf_counter() taken just after os.replace: when readers see the new content.
    On any failure (a write, fsync or the replace) raises DurableWriteError, `path` keeps its old
    content and no temp file is left behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    stage = "write"
    try:
        try:
            _write_all(fd, data)
            stage = "chmod"
            os.fchmod(fd, mode)
            stage = "fsync"
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        stage = "replace"
        os.replace(tmp, path)
        replaced_at = time.perf_counter()
    except BaseException as exc:
        # Leave no temp file behind, whatever stopped us (including KeyboardInterrupt).
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            log.debug("temp file %s already gone", tmp)
        except OSError as unlink_exc:
            log.warning("could not remove the temp file %s: %s", tmp, unlink_exc)
        if isinstance(exc, OSError) and not isinstance(exc, DurableWriteError):
            raise DurableWriteError(exc.errno, f"atomic write of {path} failed at {stage} ({_why(exc)});"
                                               f" the file keeps its previous content", path, stage,
                                    intact=True) from exc
        raise
    if durable:
        fsync_dir(path.parent)
    return replaced_at


def quick_replace(path: Path | str, data: bytes, temp: Path | str) -> float:
    """Atomic for readers, not durable: write `data` to the fixed temp file `temp` (same directory;
    one writer per temp name, e.g. a name with the writer's pid), then os.replace it onto `path`.
    For a file rewritten many times a second (the signal engine's streamed publishes): the mkstemp,
    mkdir and fsyncs of atomic_write_bytes cost more than the write. A power cut may lose the latest
    content or leave the temp file (the writer removes its leftovers at start). Returns
    time.perf_counter() just after the replace; on failure raises DurableWriteError, `path` keeps its
    old content and the temp file is removed."""
    stage = "open"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            stage = "write"
            _write_all(fd, data)
        finally:
            os.close(fd)
        stage = "replace"
        os.replace(temp, path)
        return time.perf_counter()
    except OSError as exc:
        if stage != "open":
            try:
                os.unlink(temp)
            except OSError as unlink_exc:
                log.warning("could not remove the temp file %s: %s", temp, unlink_exc)
        if isinstance(exc, DurableWriteError):
            raise
        raise DurableWriteError(exc.errno, f"quick replace of {path} failed at {stage} ({_why(exc)}); the file"
                                           f" keeps its previous content", path, stage, intact=True) from exc


def json_bytes(obj: Any) -> bytes:
    """The JSON files' text: indented (people `cat` them), no NaN/inf, a final newline
    (json.dumps(indent=2)'s text, written by core.json_text)."""
    return indented(obj).encode() + b"\n"


def atomic_write_json(path: Path | str, obj: Any, mode: int = 0o600, durable: bool = True) -> float:
    """atomic_write_bytes of the JSON text; returns the perf_counter() reading at the replace."""
    return atomic_write_bytes(path, json_bytes(obj), mode, durable)


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
    return FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S, mode=0o600)


def append_jsonl(path: Path | str, record: dict) -> None:
    """Append one JSON line under a lock and fsync it before returning.

    Returns only once the whole line is durably on disk. On any failure (the file cannot be
    opened, a write fails or makes no progress, disk full, fsync fails) the file is truncated
    back to what it was before this call, under the same lock, and AppendError (an OSError)
    is raised saying what failed, where, and that nothing was appended. Raises filelock.Timeout
    (after LOCK_TIMEOUT_S) if another writer holds the lock.
    """
    path = Path(path)
    line = json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = _lock_for(path)
        lock.acquire()
    except Timeout:
        raise
    except OSError as exc:
        raise AppendError(exc.errno, f"cannot append to {path}: taking its lock failed ({_why(exc)});"
                                     f" nothing was appended", path, "lock", intact=True) from exc
    try:
        _append_locked(path, line.encode())
    finally:
        lock.release()


def _append_locked(path: Path, line: bytes) -> None:
    created = False
    try:
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND)
        except FileNotFoundError:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
            created = True
    except OSError as exc:
        raise AppendError(exc.errno, f"cannot append to {path}: open failed ({_why(exc)}); nothing was appended",
                          path, "open", intact=True) from exc
    stage = "stat"
    start: int | None = None  # the file's size before this append: what a rollback restores
    try:
        try:
            start = os.fstat(fd).st_size
            # A torn last line (crash mid-write) must not glue onto ours: start on a new line.
            stage = "read"
            if start > 0 and os.pread(fd, 1, start - 1) != b"\n":
                line = b"\n" + line
            stage = "write"
            _write_all(fd, line)
            stage = "fsync"
            os.fsync(fd)
        except BaseException as exc:
            undone = _roll_back(fd, path, start, created) if start is not None or created else None
            if not isinstance(exc, OSError):
                raise  # KeyboardInterrupt, SystemExit...: rolled back, and re-raised as is
            if undone is None:
                msg = (f"append to {path} failed at {stage} ({_why(exc)}); the file is as it was"
                       f" ({start if start is not None else 'size unknown, nothing written'} bytes):"
                       f" nothing was appended")
            else:
                msg = (f"append to {path} failed at {stage} ({_why(exc)}) and the rollback failed too"
                       f" ({undone}): a partial line may remain after byte {start}")
            raise AppendError(exc.errno, msg, path, stage, intact=undone is None) from exc
    finally:
        try:
            os.close(fd)
        except OSError as exc:
            # Everything that matters already succeeded (fsync) or was reported; close() itself
            # cannot un-write fsynced data.
            log.warning("closing %s after an append: %s", path, exc)


def _roll_back(fd: int, path: Path, start: int | None, created: bool) -> str | None:
    """Undo a failed append: truncate to `start` (or remove a file this call created).
    None when done; else why not."""
    try:
        if created:
            os.unlink(path)
            return None
        if start is None:  # not reached: callers pass a known size or created=True
            return "the size before the append is unknown"
        os.ftruncate(fd, start)
    except OSError as exc:
        log.error("rolling back a failed append to %s (to %s bytes) failed: %s", path, start, exc)
        return f"{'unlink' if created else 'truncate'}: {_why(exc)}"
    try:
        os.fsync(fd)
    except OSError as exc:
        # The truncation is visible to every reader now; only its durability across a power cut
        # is in doubt, and a line cut short by one is skipped by iter_jsonl.
        log.warning("fsync after truncating %s back to %s bytes failed: %s", path, start, exc)
    return None


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
    "AppendError",
    "DurableWriteError",
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
