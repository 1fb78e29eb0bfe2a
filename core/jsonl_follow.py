"""Follow an append-only JSONL journal: each call returns the complete lines added since the last one.

    f = JsonlFollower(path, from_end=False)
    for rec in f.read_new(): ...          # dicts; lines that are not JSON objects are counted in f.bad_lines

A line without its newline yet (a writer in the middle of an append) is left for the next call.
A file that was replaced (another inode) or truncated is read again from its start; a missing
file is not an error (nothing new). Each call reads at most `max_bytes`, so a huge journal is
caught up over a few calls instead of holding everything in memory. Used by the dashboard's
/metrics and the Telegram bot's notifications: readers only, never in the executor's way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

MAX_BYTES = 4 * 1024 * 1024


class JsonlFollower:
    def __init__(self, path: Path | str, from_end: bool = False, max_bytes: int = MAX_BYTES):
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.offset = 0
        self.inode: int | None = None
        self.bad_lines = 0
        self.resets = 0
        if from_end:
            try:
                st = os.stat(self.path)
                self.offset, self.inode = st.st_size, st.st_ino
            except OSError:
                self.offset, self.inode = 0, None   # not there yet: everything it gets is new

    def read_new(self) -> list[dict]:
        """The complete lines added since the last call (at most max_bytes of them)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return []
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if (self.inode is not None and st.st_ino != self.inode) or st.st_size < self.offset:
                self.offset = 0   # replaced or truncated: its content is new to us
                self.resets += 1
            self.inode = st.st_ino
            if st.st_size == self.offset:
                return []
            fh.seek(self.offset)
            chunk = fh.read(self.max_bytes)
        end = chunk.rfind(b"\n")
        if end < 0:
            if len(chunk) >= self.max_bytes:   # one line longer than max_bytes: skip it, counted
                self.offset += len(chunk)
                self.bad_lines += 1
            return []
        self.offset += end + 1
        out: list[dict] = []
        for raw in chunk[:end].split(b"\n"):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                self.bad_lines += 1
                continue
            if isinstance(obj, dict):
                out.append(obj)
            else:
                self.bad_lines += 1
        return out

    def read_all_new(self, limit_calls: int = 64) -> list[dict]:
        """read_new until caught up (or `limit_calls` chunks, so one call stays bounded)."""
        out: list[dict] = []
        for _ in range(limit_calls):
            got = self.read_new()
            if not got:
                break
            out.extend(got)
        return out


def tail_jsonl(path: Path | str, max_bytes: int = 256 * 1024) -> list[dict]:
    """The JSON objects in the last `max_bytes` of a JSONL file (the first, partial line dropped)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            start = max(0, size - max_bytes)
            fh.seek(start)
            data = fh.read(size - start)
    except OSError:
        return []
    lines = data.split(b"\n")
    if start > 0:
        lines = lines[1:]
    out = []
    for raw in lines:
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            continue   # a torn or corrupt line: every journal reader skips it
        if isinstance(obj, dict):
            out.append(obj)
    return out


__all__ = ["JsonlFollower", "tail_jsonl"]
