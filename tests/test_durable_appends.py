"""Durable appends that cannot lie (issue 13, item 1).

append_jsonl returns only when the whole line is durably on disk; on any failure (a short write,
ENOSPC, EIO, fsync refusing) the file is byte-identical to before the call and an OSError
subclass says what failed. Faults are injected two ways: a patched os.write/os.fsync that only
touches the journal under test (by inode), and a real tmpfs of a few pages, filled up.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from core import durable_files as df
from tests.fs_support import fill_up as _fill
from tests.fs_support import tiny_fs  # noqa: F401 - a fixture

REAL_WRITE = os.write
REAL_FSYNC = os.fsync
BIG = "x" * 6000  # a record larger than one 4 KiB page


def _inode(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino


def _is(fd: int, ident: tuple[int, int]) -> bool:
    st = os.fstat(fd)
    return (st.st_dev, st.st_ino) == ident


def _journal(tmp_path: Path, torn: bool = False) -> Path:
    p = tmp_path / "trades.jsonl"
    df.append_jsonl(p, {"event": "intent", "n": 1})
    df.append_jsonl(p, {"event": "filled", "n": 1})
    if torn:
        with open(p, "ab") as fh:
            fh.write(b'{"event": "intent", "n": 2, "tor')  # a crash mid-write, long ago
    return p


def _parses(path: Path) -> list[dict]:
    """Every complete line parses as a JSON object (a torn *last* line left by a crash is allowed)."""
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    complete = lines[:-1]
    return [json.loads(x) for x in complete]


# ---- (1) fault-injected writer ----------------------------------------------------------------------
def _prefix_then_enospc(ident):
    def fake_write(fd, data):
        if not _is(fd, ident):
            return REAL_WRITE(fd, data)
        REAL_WRITE(fd, bytes(data[: max(1, len(data) // 3)]))  # some bytes reach the file...
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # ...then the disk is full
    return fake_write


def _short_then_zero(ident):
    calls = []

    def fake_write(fd, data):
        if not _is(fd, ident):
            return REAL_WRITE(fd, data)
        calls.append(len(data))
        if len(calls) == 1:
            return REAL_WRITE(fd, bytes(data[:7]))  # a short count...
        return 0  # ...then no progress at all
    return fake_write


@pytest.mark.parametrize("torn", [False, True], ids=["clean-end", "torn-end"])
@pytest.mark.parametrize("make_fault,expect_errno", [(_prefix_then_enospc, errno.ENOSPC),
                                                     (_short_then_zero, errno.EIO)],
                         ids=["prefix-then-ENOSPC", "short-then-0"])
def test_failed_write_leaves_the_file_byte_identical_and_raises(tmp_path, monkeypatch, torn, make_fault,
                                                               expect_errno):
    p = _journal(tmp_path, torn=torn)
    before = p.read_bytes()
    monkeypatch.setattr(df.os, "write", make_fault(_inode(p)))
    with pytest.raises(df.AppendError) as info:
        df.append_jsonl(p, {"event": "intent", "n": 3, "pad": BIG})
    monkeypatch.undo()
    assert p.read_bytes() == before
    err = info.value
    assert isinstance(err, OSError) and err.errno == expect_errno
    assert err.filename == str(p) and err.stage == "write" and err.intact
    assert "nothing was appended" in str(err) and str(p) in str(err)
    # The journal still works, and the failed record never shows up.
    df.append_jsonl(p, {"event": "intent", "n": 4})
    assert [r["n"] for r in df.read_jsonl(p)] == [1, 1, 4]


def test_failed_append_to_a_new_file_leaves_no_file(tmp_path, monkeypatch):
    p = tmp_path / "new.jsonl"

    def fake_write(fd, data):
        if os.fstat(fd).st_ino == p.stat().st_ino:
            REAL_WRITE(fd, bytes(data[:5]))
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return REAL_WRITE(fd, data)

    monkeypatch.setattr(df.os, "write", fake_write)
    with pytest.raises(df.AppendError, match="nothing was appended"):
        df.append_jsonl(p, {"event": "intent"})
    assert not p.exists()


def test_short_writes_that_make_progress_are_completed(tmp_path, monkeypatch):
    p = _journal(tmp_path)
    ident = _inode(p)
    chunks = []

    def dribble(fd, data):
        if not _is(fd, ident):
            return REAL_WRITE(fd, data)
        chunks.append(len(data))
        return REAL_WRITE(fd, bytes(data[:10]))  # at most 10 bytes per call

    monkeypatch.setattr(df.os, "write", dribble)
    df.append_jsonl(p, {"event": "intent", "n": 2, "pad": "y" * 95})
    monkeypatch.undo()
    assert len(chunks) > 10
    assert [r["n"] for r in df.read_jsonl(p)] == [1, 1, 2]
    assert p.read_bytes().endswith(b"\n")


def test_atomic_write_completes_short_writes(tmp_path, monkeypatch):
    target = tmp_path / "state.json"

    def dribble(fd, data):
        return REAL_WRITE(fd, bytes(data[:3]))

    monkeypatch.setattr(df.os, "write", dribble)
    df.atomic_write_json(target, {"windows": list(range(50))})
    monkeypatch.undo()
    assert df.read_json(target).data == {"windows": list(range(50))}


def test_atomic_write_failure_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "state.json"
    df.atomic_write_json(target, {"v": 1})
    before = target.read_bytes()

    def no_progress(fd, data):
        return 0

    monkeypatch.setattr(df.os, "write", no_progress)
    with pytest.raises(df.DurableWriteError) as info:
        df.atomic_write_json(target, {"v": 2})
    monkeypatch.undo()
    assert info.value.stage == "write" and info.value.filename == str(target)
    assert target.read_bytes() == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["state.json"]


# ---- (3) fsync errors are errors ----------------------------------------------------------------------
def test_fsync_failure_raises_and_the_line_is_gone(tmp_path, monkeypatch):
    p = _journal(tmp_path, torn=True)
    before = p.read_bytes()
    ident = _inode(p)
    fsyncs = []

    def failing_fsync(fd):
        if _is(fd, ident):
            fsyncs.append(os.fstat(fd).st_size)
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return REAL_FSYNC(fd)

    monkeypatch.setattr(df.os, "fsync", failing_fsync)
    with pytest.raises(df.AppendError) as info:
        df.append_jsonl(p, {"event": "intent", "n": 3})
    monkeypatch.undo()
    assert info.value.errno == errno.EIO and info.value.stage == "fsync"
    assert "nothing was appended" in str(info.value)
    assert fsyncs and fsyncs[0] > len(before)  # the line was written, then fsync refused it...
    assert p.read_bytes() == before             # ...and it is gone again
    assert [r["n"] for r in df.read_jsonl(p)] == [1, 1]


def test_atomic_write_fsync_failure_propagates_and_leaves_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "signal.json"
    df.atomic_write_json(target, {"v": 1})
    before = target.read_bytes()

    def failing_fsync(fd):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(df.os, "fsync", failing_fsync)
    with pytest.raises(df.DurableWriteError) as info:
        df.atomic_write_json(target, {"v": 2})
    monkeypatch.undo()
    assert info.value.errno == errno.EIO and info.value.stage == "fsync"
    assert target.read_bytes() == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["signal.json"]


# ---- (4) the torn-last-line repair ---------------------------------------------------------------------
def test_torn_last_line_is_repaired_not_glued(tmp_path):
    p = _journal(tmp_path, torn=True)
    df.append_jsonl(p, {"event": "intent", "n": 3})
    raw = p.read_bytes()
    assert raw.endswith(b'"tor\n{"event":"intent","n":3}\n')
    assert [r["n"] for r in df.read_jsonl(p)] == [1, 1, 3]


# ---- (2) a real, tiny filesystem ------------------------------------------------------------------------
def test_disk_full_on_a_real_filesystem_appends_nothing_then_recovers(tiny_fs: Path):  # noqa: F811 - the fixture
    p = tiny_fs / "trades.jsonl"
    for n in range(3):
        df.append_jsonl(p, {"event": "intent", "n": n, "asset": "BTC"})
    filler = tiny_fs / "filler"
    assert _fill(filler) > 0
    st = os.statvfs(tiny_fs)
    assert st.f_bavail == 0, "the filesystem should be full"
    before = p.read_bytes()
    left_in_page = 4096 - len(before) % 4096
    record = {"event": "intent", "n": 99, "asset": "ETH", "pad": BIG}
    assert len(json.dumps(record)) > left_in_page  # larger than the space left

    with pytest.raises(df.AppendError) as info:
        df.append_jsonl(p, record)
    err = info.value
    assert err.errno == errno.ENOSPC and err.intact and "nothing was appended" in str(err)
    assert p.read_bytes() == before
    assert [r["n"] for r in _parses(p)] == [0, 1, 2]
    assert p.read_bytes().endswith(b"\n")

    # A small record that fits in the journal's last page still goes through while the disk is full.
    df.append_jsonl(p, {"event": "filled", "n": 2})
    assert [r["n"] for r in _parses(p)] == [0, 1, 2, 2]

    filler.unlink()  # space comes back
    df.append_jsonl(p, record)
    got = _parses(p)
    assert [r["n"] for r in got] == [0, 1, 2, 2, 99] and got[-1]["pad"] == BIG


def test_a_failed_rollback_is_reported_not_hidden(tmp_path, monkeypatch):
    p = _journal(tmp_path)
    ident = _inode(p)

    def fails(fd, *args):
        if _is(fd, ident):
            if args and isinstance(args[0], (bytes, memoryview)):
                REAL_WRITE(fd, bytes(args[0][:4]))
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        raise AssertionError("only the journal's fd is expected here")

    monkeypatch.setattr(df.os, "write", lambda fd, data: fails(fd, data) if _is(fd, ident) else REAL_WRITE(fd, data))
    monkeypatch.setattr(df.os, "ftruncate", fails)
    with pytest.raises(df.AppendError) as info:
        df.append_jsonl(p, {"event": "intent", "n": 3})
    monkeypatch.undo()
    assert not info.value.intact
    assert "rollback failed" in str(info.value) and "nothing was appended" not in str(info.value)
    # The partial line is never read as a record, and the next append starts on a new line.
    df.append_jsonl(p, {"event": "intent", "n": 4})
    assert [r["n"] for r in df.read_jsonl(p)] == [1, 1, 4]


def test_lock_files_are_private(tmp_path):
    p = tmp_path / "j.jsonl"
    df.append_jsonl(p, {"n": 1})
    assert (p.stat().st_mode & 0o777) == 0o600 and (Path(str(p) + ".lock").stat().st_mode & 0o777) == 0o600


def test_quick_replace_is_atomic_for_readers_and_leaves_no_temp_on_failure(tiny_fs: Path):  # noqa: F811 - the fixture
    """The signal engine's streamed publishes (core.durable_files.quick_replace): the new content or
    the old, never a torn file, and no temp file left behind, on a really full disk too."""
    p, temp = tiny_fs / "signal_BTC.json", tiny_fs / ".signal_BTC.json.123.tmp"
    df.quick_replace(str(p), b'{"n": 1}\n', str(temp))
    assert p.read_bytes() == b'{"n": 1}\n' and not temp.exists() and p.stat().st_mode & 0o077 == 0
    filler = tiny_fs / "filler"
    assert _fill(filler) > 0
    with pytest.raises(df.DurableWriteError) as info:
        df.quick_replace(str(p), b"x" * 20_000, str(temp))
    assert info.value.errno == errno.ENOSPC and info.value.intact and "keeps its previous content" in str(info.value)
    assert p.read_bytes() == b'{"n": 1}\n' and not temp.exists()
    filler.unlink()
    df.quick_replace(str(p), b'{"n": 2}\n', str(temp))
    assert p.read_bytes() == b'{"n": 2}\n'
    (tiny_fs / "a_dir").mkdir()
    (tiny_fs / "a_dir" / "x").write_text("x")
    with pytest.raises(df.DurableWriteError) as info:          # the replace itself fails
        df.quick_replace(str(tiny_fs / "a_dir"), b"{}", str(temp))
    assert info.value.stage == "replace" and not temp.exists()
