"""A real, tiny filesystem for disk-full tests: a 64 KiB tmpfs mounted by root (skipped elsewhere)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=20)


@pytest.fixture
def tiny_fs(tmp_path: Path):
    """A 64 KiB tmpfs (16 pages) mounted on a fresh directory; unmounted afterwards."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if shutil.which("mount") is None or shutil.which("umount") is None:
        pytest.skip("no mount/umount binaries here: the real-filesystem case needs them")
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the fault-injected tests cover the same logic")
    try:
        r = _run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mnt)])
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"could not run mount: {exc}")
    if r.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {r.stderr.strip() or r.returncode}")
    try:
        yield mnt
    finally:
        r = _run(["umount", str(mnt)])
        if r.returncode != 0:
            lazy = _run(["umount", "-l", str(mnt)])
            assert lazy.returncode == 0, f"could not unmount {mnt}: {r.stderr} / {lazy.stderr}"


def fill_up(path: Path) -> int:
    """Write to `path` until the filesystem refuses; returns the bytes written."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    total = 0
    chunk = b"f" * 4096
    try:
        while True:
            try:
                n = os.write(fd, chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                return total
            if n == 0:
                return total
            total += n
    finally:
        os.close(fd)
