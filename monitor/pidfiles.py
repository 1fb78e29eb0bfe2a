"""state/pids/<name>.json: who we started, with enough identity never to signal a stranger."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from core.durable_files import atomic_write_json, read_json

from .procs import Ident

log = logging.getLogger("monitor")


@dataclass
class PidRecord:
    name: str
    ident: Ident
    argv: list[str] = field(default_factory=list)
    started_at: float = 0.0
    descendants: list[Ident] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"name": self.name, "pid": self.ident.pid, "start": self.ident.start, "pgid": self.ident.pgid,
                "argv": self.argv, "started_at": self.started_at,
                "descendants": [d.to_json() for d in self.descendants]}


def write(path: Path, rec: PidRecord, mode: int = 0o600) -> None:
    atomic_write_json(path, rec.to_json(), mode=mode)


def read(path: Path) -> tuple[PidRecord | None, str | None]:
    """The record, or None and why not (missing, corrupt ...). Never raises."""
    res = read_json(path)
    if not res.ok or res.data is None:
        return None, res.problem
    d = res.data
    ident = Ident.from_json([d.get("pid"), d.get("start"), d.get("pgid")])
    if ident is None:
        return None, "corrupt: no valid pid/start/pgid"
    desc = [i for i in (Ident.from_json(x) for x in d.get("descendants", []) or []) if i is not None]
    argv = [str(a) for a in d.get("argv", [])] if isinstance(d.get("argv"), list) else []
    started = d.get("started_at")
    return PidRecord(str(d.get("name", path.stem)), ident, argv,
                     float(started) if isinstance(started, (int, float)) else 0.0, desc), None


def remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        return  # already gone: removing is idempotent
