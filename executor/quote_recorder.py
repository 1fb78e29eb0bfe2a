"""The quote recorder: each asset's book, once a second per window, for measuring the edge later.

    rec = quote_recorder.start(cfg)      # None when QUOTES is off; else a running QuoteRecorder
    quote_recorder.stop(rec)             # at shutdown; returns within STOP_JOIN_S

Every second, for each asset of ASSETS, the current window's Up and Down books are read through
the public CLOB API (its own MarketView: one requests.Session, in its own thread) and one JSON
line is appended (core.durable_files.append_jsonl) to LOG_DIR/quotes/quotes-YYYY-MM-DD.jsonl, the
UTC day of the line's `ts`:

    {"ts": "2026-05-04T12:00:07.002Z", "asset": "BTC", "window_start": 1777896000,
     "slug": "btc-updown-15m-1777896000", "seconds_into_window": 7.002, "size": 10.0,
     "up_bid": 0.52, "up_ask": 0.53, "down_bid": 0.46, "down_ask": 0.48,
     "up_ask_for_size": {"avg_price": 0.5312, "worst_price": 0.54, "shares": 18.8253},
     "down_ask_for_size": null}

`size` is POSITION_SIZE; `*_ask_for_size` is a market BUY of that many USD walked through the
asks (core.market_shapes.Book.ask_for), null when the book is too thin for it; a bid or ask is
null when that side of the book is empty. `python -m backtest --quotes` reads these files.

On by default in paper and live, off in demo (QUOTES=1 records the replica's synthetic quotes,
to try the pipeline). Bounded: at most QUOTES_KEEP_DAYS day files (the oldest are deleted when a
new day starts) and MAX_FILE_BYTES per file (then nothing more that day, said once).

It never blocks or breaks trading: API errors (down, 429, 403, HTML, a missing market) are
counted and logged at most once a minute, the asset's line for that second is skipped, and a
429's Retry-After is honoured; a disk error stops recording (logged) and it is retried after
DISK_RETRY_S; anything unexpected is logged (at most once a minute) and the loop goes on.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

from core.durable_files import append_jsonl
from core.market_shapes import ApiUnavailable, Book, MarketDataError
from core.window_grid import iso_utc, utc_day, window_start
from executor.market_view import MarketView

log = logging.getLogger("executor.quotes")

DIR_NAME = "quotes"
FILE_RE = re.compile(r"quotes-(\d{4}-\d{2}-\d{2})\.jsonl")
MAX_FILE_BYTES = 256 * 1024 * 1024   # a day of 4 assets is ~120 MB (about 350 bytes a line)
INTERVAL_S = 1.0
LOG_EVERY_S = 60.0
DISK_RETRY_S = 60.0
STOP_JOIN_S = 1.0


def quotes_dir(cfg) -> Path:
    return Path(cfg.log_dir) / DIR_NAME


def day_file(directory: Path, ts: float) -> Path:
    return directory / f"quotes-{utc_day(ts)}.jsonl"


def prune(directory: Path, keep_days: int, current: Path | None = None) -> list[Path]:
    """Delete the oldest day files (and their .lock files) so that at most `keep_days` remain,
    counting `current` (today's, perhaps not created yet). Returns the files deleted."""
    try:
        days = sorted((p for p in directory.iterdir() if FILE_RE.fullmatch(p.name) and p != current),
                      key=lambda p: p.name, reverse=True)
    except FileNotFoundError:
        return []
    keep_others = max(0, keep_days - (1 if current is not None else 0))
    removed = []
    for old in days[keep_others:]:
        old.unlink(missing_ok=True)
        Path(str(old) + ".lock").unlink(missing_ok=True)
        removed.append(old)
    return removed


def fill_of(book: Book, size: float) -> dict | None:
    fill = book.ask_for(size)
    if fill is None:
        return None
    return {"avg_price": round(fill.avg_price, 6), "worst_price": fill.worst_price, "shares": round(fill.shares, 4)}


def quote_line(asset: str, start: int, slug: str, now: float, size: float, up: Book, down: Book) -> dict:
    return {"ts": iso_utc(now), "asset": asset, "window_start": int(start), "slug": slug,
            "seconds_into_window": math.floor((now - start) * 1000) / 1000, "size": size,
            "up_bid": up.best_bid(), "up_ask": up.best_ask(), "down_bid": down.best_bid(), "down_ask": down.best_ask(),
            "up_ask_for_size": fill_of(up, size), "down_ask_for_size": fill_of(down, size)}


class QuoteRecorder:
    """One thread recording quotes; `ticks` (seconds handled), `lines`, `api_errors`, `disk_errors`
    count what happened."""

    def __init__(self, cfg, clock: Callable[[], float] = time.time, interval: float = INTERVAL_S,
                 max_file_bytes: int = MAX_FILE_BYTES, disk_retry: float = DISK_RETRY_S):
        self.cfg = cfg
        self.clock = clock
        self.interval = interval
        self.max_file_bytes = max_file_bytes
        self.disk_retry = disk_retry
        self.directory = quotes_dir(cfg)
        self.lines = self.api_errors = self.disk_errors = self.ticks = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._path: Path | None = None
        self._capped = False
        self._disk_pause_until = 0.0
        self._api_pause_until = 0.0
        self._unlogged: dict[str, int] = {}      # errors counted since the last log line, by kind
        self._last_logged: dict[str, float] = {}

    # ---- life cycle -------------------------------------------------------------------------------
    def start(self) -> QuoteRecorder:
        self._thread = threading.Thread(target=self._run, name="quote-recorder", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = STOP_JOIN_S) -> None:
        """Ask the thread to stop; wait at most `timeout` s (a request in flight ends by its own
        timeout; the thread is a daemon and never holds up the executor's exit)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.info("quotes: the recorder is still finishing a request; it stops on its own")
        for kind, count in list(self._unlogged.items()):
            if count:
                log.warning("quotes: %d %s error(s) not yet reported when the recorder stopped", count, kind)
        self._unlogged.clear()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        view = MarketView.from_config(self.cfg)
        log.info("quotes: recording %s once a second into %s", ",".join(self.cfg.assets), self.directory)
        try:
            while not self._stop.is_set():
                try:
                    self.record_once(view)
                except Exception as exc:  # noqa: BLE001 - the recorder must never die; trading does not depend on it
                    self._error("unexpected", f"{type(exc).__name__}: {exc}", exc_info=True)
                now = self.clock()
                self._stop.wait(max(0.0, (now // self.interval + 1) * self.interval - now))
        finally:
            view.close()

    # ---- one second -------------------------------------------------------------------------------
    def record_once(self, view: MarketView) -> int:
        """Read and append one line per asset for the current second; returns the lines written."""
        written = 0
        self.ticks += 1
        for asset in self.cfg.assets:
            now = self.clock()
            if now < self._disk_pause_until or now < self._api_pause_until or self._stop.is_set():
                break
            if self._capped and day_file(self.directory, now) == self._path:
                break       # today's file is full: no reads until tomorrow's
            line = self._read(view, asset, now)
            if line is not None and self._write(line, now):
                written += 1
        return written

    def _read(self, view: MarketView, asset: str, now: float) -> dict | None:
        start = window_start(now, self.cfg.window_seconds)
        try:
            up = view.book(asset, start, "Up")
            down = view.book(asset, start, "Down")
        except MarketDataError as exc:
            self.api_errors += 1
            if isinstance(exc, ApiUnavailable) and exc.retry_after:
                self._api_pause_until = now + exc.retry_after
            self._error("API", f"{asset} {view.slug(asset, start)}: {type(exc).__name__}: {exc}")
            return None
        return quote_line(asset, start, view.slug(asset, start), now, self.cfg.position_size, up, down)

    def _write(self, line: dict, now: float) -> bool:
        path = day_file(self.directory, now)
        if path != self._path:
            self._new_day(path)
        if self._capped:
            return False
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = 0
        except OSError as exc:
            return self._disk_error(path, exc, now)
        if size >= self.max_file_bytes:
            self._capped = True
            log.warning("quotes: %s reached %d bytes (the cap): no more quotes today; the next file starts at"
                        " 00:00 UTC", path, size)
            return False
        try:
            append_jsonl(path, line)
        except OSError as exc:      # AppendError, filelock.Timeout (a TimeoutError), mkdir failures
            return self._disk_error(path, exc, now)
        if self.disk_errors and self._disk_pause_until:
            log.info("quotes: recording again into %s", path)
            self._disk_pause_until = 0.0
        self.lines += 1
        return True

    def _new_day(self, path: Path) -> None:
        self._path, self._capped = path, False
        try:
            removed = prune(self.directory, self.cfg.quotes_keep_days, path)
        except OSError as exc:
            log.error("quotes: could not delete old quote files in %s (%s); recording goes on", self.directory, exc)
            return
        if removed:
            log.info("quotes: deleted %s (QUOTES_KEEP_DAYS=%d)", ", ".join(p.name for p in removed),
                     self.cfg.quotes_keep_days)

    def _disk_error(self, path: Path, exc: OSError, now: float) -> bool:
        self._disk_pause_until = now + self.disk_retry
        log.error("quotes: cannot write %s (%s); recording stops and is retried in %.0f s; trading is not"
                  " affected", path, exc, self.disk_retry)
        self.disk_errors += 1
        return False

    def _error(self, kind: str, text: str, exc_info: bool = False) -> None:
        """Count an error; log it at most once a minute per kind, with how many came since."""
        now = time.monotonic()
        self._unlogged[kind] = self._unlogged.get(kind, 0) + 1
        last = self._last_logged.get(kind)
        if last is not None and now - last < LOG_EVERY_S:
            return
        count, self._unlogged[kind] = self._unlogged[kind], 0
        self._last_logged[kind] = now
        log.warning("quotes: %d %s error(s) in the last minute, the last: %s; those seconds are not recorded,"
                    " trading is not affected", count, kind, text, exc_info=exc_info)


def start(cfg, **kwargs) -> QuoteRecorder | None:
    """A started recorder when QUOTES is on, else None; never raises (trading goes on without it)."""
    if not getattr(cfg, "quotes", False):
        return None
    try:
        return QuoteRecorder(cfg, **kwargs).start()
    except RuntimeError as exc:     # the thread could not start
        log.error("quotes: the recorder did not start (%s); trading goes on without it", exc)
        return None


def stop(recorder: QuoteRecorder | None) -> None:
    if recorder is not None:
        recorder.stop()
