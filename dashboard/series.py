"""Per-asset time series of the current window: prob_up from the signal files, the quoted Up price
from the quote recorder's files (LOG_DIR/quotes/, when QUOTES records them).

`Sampler.sample(now)` is called every SAMPLE_S by the dashboard's sampler thread: it reads each
asset's signal file (a point when its `seq` changed) and the lines the quote recorder appended
since the last call. Only the last KEEP_WINDOWS windows per asset are kept (memory stays flat).
After a dashboard restart the current window is backfilled from logs/signals.jsonl (one snapshot
a minute) and the tail of today's quote file.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from pathlib import Path

from core.config import Config
from core.jsonl_follow import JsonlFollower, tail_jsonl
from core.window_grid import timestamp_of, utc_day

from .views import signal_of

KEEP_WINDOWS = 2
QUOTE_TAIL_BYTES = 512 * 1024
SIGNAL_TAIL_BYTES = 128 * 1024
MAX_POINTS = 4000   # per series: a 3600 s window sampled every second, with room


def _num(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


class WindowSeries:
    def __init__(self, start: float, end: float | None):
        self.start, self.end = start, end
        self.strike: float | None = None
        self.prob: list[tuple[float, float]] = []
        self.price: list[tuple[float, float]] = []
        self.up_ask: list[tuple[float, float]] = []
        self.up_bid: list[tuple[float, float]] = []

    @staticmethod
    def _add(points: list[tuple[float, float]], t: float, v: float | None) -> None:
        if v is None:
            return
        if points and t <= points[-1][0]:
            if t < points[-1][0]:
                return   # older than what we have (a backfill after live points): ignore
            points[-1] = (t, v)
            return
        points.append((t, v))
        if len(points) > MAX_POINTS:
            del points[: len(points) - MAX_POINTS]

    def as_dict(self, since: float = 0.0) -> dict:
        def pts(p: list[tuple[float, float]]) -> list[list[float]]:
            return [[round(t, 3), v] for t, v in p if t > since]

        return {"start": self.start, "end": self.end, "strike": self.strike, "prob_up": pts(self.prob),
                "price": pts(self.price), "up_ask": pts(self.up_ask), "up_bid": pts(self.up_bid)}


class Sampler:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self._lock = threading.Lock()
        self.windows: dict[str, OrderedDict[float, WindowSeries]] = {a: OrderedDict() for a in cfg.assets}
        self.last_seq: dict[str, int | None] = {a: None for a in cfg.assets}
        self.latest: dict[str, dict] = {}
        self._quote_day: str | None = None
        self._quotes: JsonlFollower | None = None
        self.samples = 0

    # ---- windows --------------------------------------------------------------------------------
    def _window(self, asset: str, start: float, end: float | None) -> WindowSeries:
        wins = self.windows[asset]
        w = wins.get(start)
        if w is None:
            w = wins[start] = WindowSeries(start, end)
            while len(wins) > KEEP_WINDOWS:
                wins.popitem(last=False)
            self._backfill_signals(asset, w)
        return w

    def _backfill_signals(self, asset: str, w: WindowSeries) -> None:
        for rec in tail_jsonl(self.cfg.signals_log_path, SIGNAL_TAIL_BYTES):
            sig = rec.get("window") if isinstance(rec.get("window"), dict) else {}
            if str(rec.get("asset", "")).upper() != asset or timestamp_of(sig.get("start")) != w.start:
                continue
            t = timestamp_of(rec.get("timestamp"))
            if t is not None:
                w._add(w.prob, t, _num(rec.get("prob_up")))
                w._add(w.price, t, _num(rec.get("price")))

    # ---- sampling -------------------------------------------------------------------------------
    def sample(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._lock:
            self.samples += 1
            for asset in self.cfg.assets:
                sig = signal_of(self.cfg.signal_path_for(asset), now)
                self.latest[asset] = sig
                start = sig.get("window_start")
                if sig.get("problem") or start is None:
                    continue
                w = self._window(asset, start, sig.get("window_end"))
                if sig.get("strike") is not None:
                    w.strike = sig["strike"]
                if sig.get("seq") != self.last_seq[asset] or sig.get("seq") is None:
                    self.last_seq[asset] = sig.get("seq")
                    t = sig.get("timestamp") or now
                    w._add(w.prob, t, sig.get("prob_up"))
                    w._add(w.price, t, sig.get("price"))
            self._sample_quotes(now)

    def _quote_file(self, now: float) -> Path:
        return Path(self.cfg.log_dir) / "quotes" / f"quotes-{utc_day(now)}.jsonl"

    def _sample_quotes(self, now: float) -> None:
        day = utc_day(now)
        if day != self._quote_day:
            path = self._quote_file(now)
            self._quote_day = day
            self._quotes = JsonlFollower(path, from_end=True)
            self._add_quotes(tail_jsonl(path, QUOTE_TAIL_BYTES))
        if self._quotes is not None:
            self._add_quotes(self._quotes.read_new())

    def _add_quotes(self, recs: list[dict]) -> None:
        for rec in recs:
            asset = str(rec.get("asset", "")).upper()
            wins = self.windows.get(asset)
            start = _num(rec.get("window_start"))
            t = timestamp_of(rec.get("ts"))
            if wins is None or start is None or t is None:
                continue
            w = wins.get(start)
            if w is None:
                if wins and start < next(reversed(wins)):
                    continue   # an older window than those kept
                w = self._window(asset, start, start + self.cfg.window_seconds)
            w._add(w.up_ask, t, _num(rec.get("up_ask")))
            w._add(w.up_bid, t, _num(rec.get("up_bid")))

    # ---- reading --------------------------------------------------------------------------------
    def current(self, since: float = 0.0) -> dict[str, dict | None]:
        """Per asset: its newest window's series (points after `since` only), or None."""
        with self._lock:
            out: dict[str, dict | None] = {}
            for asset, wins in self.windows.items():
                out[asset] = next(reversed(wins.values())).as_dict(since) if wins else None
            return out


__all__ = ["Sampler", "WindowSeries"]
