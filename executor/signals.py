"""signal.json: watched with watchdog (so the executor holds the new value within milliseconds of
the engine's atomic replace) and read fresh at decision time (core.durable_files.read_json)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from core import signal_doc
from core.durable_files import read_json
from core.signal_doc import SignalDoc

log = logging.getLogger("executor.signals")


@dataclass(frozen=True)
class Held:
    data: dict | None           # the raw document (for what only the raw file has)
    problem: str | None
    seen_at: float
    doc: SignalDoc | None = None   # parsed once, here: what every reader uses


class SignalWatcher(FileSystemEventHandler):
    """Keeps the latest value of each asset's signal file; `on_change(asset, held)` is called
    from the watchdog thread after each change."""

    def __init__(self, paths: dict[str, Path], on_change=None, clock=time.time):
        super().__init__()
        self.paths = {a: Path(p).resolve() for a, p in paths.items()}
        self._by_path = {str(p): a for a, p in self.paths.items()}
        self._held: dict[str, Held] = {}
        self._lock = threading.Lock()
        self.on_change = on_change
        self.clock = clock
        self._observer = None
        for asset in self.paths:
            self._reload(asset)

    def start(self) -> None:
        self._observer = Observer()
        for d in {p.parent for p in self.paths.values()}:
            d.mkdir(parents=True, exist_ok=True)
            self._observer.schedule(self, str(d), recursive=False)
        self._observer.daemon = True
        self._observer.start()

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=2)
            self._observer = None

    def _reload(self, asset: str) -> Held:
        res = read_json(self.paths[asset])
        doc, problem = signal_doc.parse(res.data) if res.ok else (None, res.problem)
        held = Held(res.data, problem, self.clock(), doc)
        with self._lock:
            self._held[asset] = held
        return held

    # Only events that can mean new content. Our own reads raise `opened` / `closed_no_write`
    # (inotify IN_OPEN / IN_CLOSE_NOWRITE): reacting to them re-reads the file, which raises
    # them again, an endless loop that burnt half a core and leaked memory in the long run.
    CONTENT_EVENTS = frozenset({"created", "modified", "moved", "closed", "deleted"})

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type not in self.CONTENT_EVENTS:
            return
        for raw in (getattr(event, "dest_path", None), event.src_path):
            if not raw:
                continue
            path = raw.decode() if isinstance(raw, bytes) else str(raw)
            asset = self._by_path.get(path) or self._by_path.get(str(Path(path).resolve()))
            if asset is None:
                continue
            held = self._reload(asset)
            if self.on_change is not None:
                try:
                    self.on_change(asset, held)
                except Exception:  # noqa: BLE001 - a callback bug must not kill the watchdog thread; logged
                    log.exception("signal change callback failed for %s", asset)
            return

    def held(self, asset: str) -> Held | None:
        with self._lock:
            return self._held.get(asset)

    def read_fresh(self, asset: str) -> Held:
        """Read the file now (decision time); also refreshes the held value."""
        return self._reload(asset)


class SignalAlarm:
    """Tells the user once when an asset has had no usable signal for `after_s` (the engine stopped
    publishing: a full disk, a dead feed, a stopped engine), and once when it is usable again. The
    decision already refuses an old or stale signal; this only makes the silence visible."""

    def __init__(self, watcher: SignalWatcher, max_age: float, after_s: float, notify):
        self.watcher, self.max_age, self.after_s, self.notify = watcher, max_age, after_s, notify
        self._bad_since: dict[str, float] = {}
        self._alarmed: set[str] = set()

    def problem(self, asset: str, now: float) -> str | None:
        held = self.watcher.held(asset)
        if held is None or held.doc is None:
            return held.problem if held is not None and held.problem else "no signal file"
        doc = held.doc
        if doc.stale:
            return "the engine marks it stale (its price feeds failed)"
        if doc.timestamp is None:
            return "it carries no timestamp"
        if now - doc.timestamp > self.max_age:
            return f"not updated for {now - doc.timestamp:.0f} s (SIGNAL_MAX_AGE {self.max_age:g} s)"
        return None

    def check(self, now: float) -> None:
        for asset in self.watcher.paths:
            why = self.problem(asset, now)
            if why is None:
                self._bad_since.pop(asset, None)
                if asset in self._alarmed:
                    self._alarmed.discard(asset)
                    self.notify("signal", f"{asset}: the signal is usable again")
                continue
            since = self._bad_since.setdefault(asset, now)
            if now - since >= self.after_s and asset not in self._alarmed:
                self._alarmed.add(asset)
                log.error("%s: no usable signal for %.0f s (%s): not trading %s; see ./supervisor.sh status"
                          " and logs signal_engine", asset, now - since, why, asset)
                self.notify("signal", f"{asset}: no usable signal for {now - since:.0f} s ({why}); not trading")
