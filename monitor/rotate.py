"""Size-based rotation of LOG_DIR/*.log (never the .jsonl journals).

copytruncate: the children keep their log open with O_APPEND, so the file is copied to
`<name>.log.1` (older copies shift to .2, .3 ...) and truncated in place; the next write of the
child lands at the start of the emptied file. Lines written between the copy and the truncate
are lost: a bounded, rare loss accepted for a human-readable log (never for a journal).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger("monitor")


def rotate_file(path: Path, keep: int) -> None:
    for i in range(keep - 1, 0, -1):
        older = path.with_name(f"{path.name}.{i}")
        if older.exists():
            os.replace(older, path.with_name(f"{path.name}.{i + 1}"))
    shutil.copyfile(path, path.with_name(f"{path.name}.1"))
    with open(path, "r+b") as fh:
        fh.truncate(0)


def rotate_logs(log_dir: Path, max_bytes: int, keep: int) -> list[Path]:
    rotated = []
    try:
        candidates = sorted(log_dir.glob("*.log"))
    except OSError as exc:
        log.warning("log rotation: cannot list %s (%s); will try again", log_dir, exc)
        return rotated
    for path in candidates:
        if path.suffix != ".log" or not path.is_file():
            continue
        try:
            if path.stat().st_size <= max_bytes:
                continue
            rotate_file(path, keep)
            rotated.append(path)
            log.info("rotated %s (over %d bytes; keeping %d old copies)", path.name, max_bytes, keep)
        except OSError as exc:
            log.warning("log rotation of %s failed (%s); will try again", path, exc)
    return rotated
