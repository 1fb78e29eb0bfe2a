"""The publisher: feed -> tick history -> model.evaluate -> signal files, snapshots, heartbeat.

One `SignalEngine.tick()` fetches a price per asset through the fallback chain, appends it to
that asset's bounded history, evaluates the model and replaces the asset's signal file
atomically (cfg.signal_path_for: `signal.json` for the first asset, `signal-<asset>.json` for
each further one). Between the scheduled ticks, `publish_event` does the same for the assets a
stream has just brought a price (or a Chainlink reference) for (schedule.py coalesces them).
What the file says when the engine cannot vouch for a number:
- stale (no accepted price within cfg.stale_after s): `stale: true`, `NO_TRADE`, confidence 50,
  `prob_up: null`, the last known price and its source kept for display; one log line when an
  asset goes stale and one when it recovers;
- window open unknown (started mid-window without history reaching back to the window's start):
  `prob_up: null`, `NO_TRADE`, `window.open_price: null`, and `reason` says so.

prob_up (issue 14) is measured against a **strike** and a **reference price**, both named in the
document: the strike is the venue's price to beat when the executor has recorded it in
STATE_DIR/strikes.json (core/strikes.py; `strike_source: "venue"`), else the window's open in the
reference's terms (`"feed_open"`, signal_engine/reference.py); the reference is the latest Chainlink
price when a Chainlink stream is configured and fresh (`"chainlink"`), else the exchange price times
the running exchange-Chainlink basis (`"exchange+basis"`). The model is prob_up v2
(signal_engine/vol_model.py) with the parameters of PROB_MODEL_FILE; when that file is off, missing
or invalid, or has no section for an asset, that asset uses today's model (v1), with one log line
saying why, and `model` in the document says which one was used.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.config import Config
from core.durable_files import append_jsonl, atomic_write_json, json_bytes, quick_replace, read_json, touch_heartbeat
from core.signal_doc import SignalDoc, SignalWindow
from core.strikes import StrikeReader
from core.window_grid import Window, iso_utc, window_at

from . import model, vol_model, vol_params
from .candles import CandleBook
from .feeds import AllFeedsFailed, FallbackChain, Tick
from .reference import Reference, ReferenceTracker
from .tick_history import TickHistory

log = logging.getLogger("signal_engine")

PROCESS_NAME = "signal_engine"
SNAPSHOT_EVERY_S = 60.0
BACKFILL_RETRY_S = 30.0        # a failed backfill is tried again this often (by the scheduled ticks)
HISTORY_KEEP_S = model.HISTORY_NEEDED_S + 120.0   # today's model (v1); prob_up v2 needs more (history_keep_s)
MAX_STRIKE_GAP = 0.05          # a venue strike this far (log) from the feed's open is a misread, not a strike
TEMP_GLOB = ".signal*.json.*.tmp"      # atomic_write_bytes' temp names and quick_replace's (AssetState.temp_path)

EMPTY_BASIS = {"momentum_30s": None, "momentum_60s": None, "momentum_120s": None, "acceleration": None,
               "volatility_state": "unknown", "trend_bias": "unknown", "mean_reversion_pressure": "unknown",
               "score": 0.0}


@dataclass
class AssetState:
    asset: str
    path: Path
    history: TickHistory
    last_tick: Tick | None = None
    last_accept_mono: float | None = None
    stale_reported: bool | None = None        # None: nothing reported yet
    stale_since_mono: float | None = None
    last_error: str | None = None
    open_cache: tuple[int, float | None] | None = None   # (window start, open price or None)
    backfill_source: str | None = None
    prev_latency_ms: float | None = None       # previous tick: its start -> os.replace done (readers see it)
    prev_write_ms: float | None = None         # previous tick's whole atomic write (fsync, replace, fsync dir)
    rejected_strike: tuple[int, float] | None = None   # (window start, price) of a venue strike refused, logged once
    memo: dict = field(default_factory=dict)  # model.evaluate's slow parts, reused within a second
    backfilled_to: float | None = None          # the backfill's newest sample
    backfill_retry_at: float | None = None      # mono time of the next try after a failed backfill
    temp_path: Path | None = None              # the streamed publishes' temp file (TEMP_GLOB)

    def __post_init__(self) -> None:
        self.temp_path = self.path.parent / f".{self.path.name}.{os.getpid()}.tmp"


@dataclass(frozen=True)
class StrikeInfo:
    price: float | None
    source: str | None          # "venue" | "feed_open" | None (unknown)
    age_s: float | None


def load_vol_models(cfg: Config) -> tuple[dict[str, vol_model.VolModel], str]:
    """({ASSET: VolModel}, why not) from PROB_MODEL_FILE; ({}, reason) when off, missing or invalid."""
    if cfg.prob_model_file is None:
        return {}, "PROB_MODEL_FILE=off"
    try:
        return vol_params.load_param_file(cfg.prob_model_file), ""
    except vol_params.ParamsError as exc:
        return {}, str(exc)


def _finite(x):
    """JSON-safe number: None for NaN/inf."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


class SignalEngine:
    def __init__(self, cfg: Config, feed: FallbackChain, mono: Callable[[], float] = time.monotonic,
                 chainlink=None, wall: Callable[[], float] = time.time):
        self.cfg = cfg
        self.feed = feed
        self.mono = mono
        self.wall = wall
        self.chainlink = chainlink               # a feeds.stream.ChainlinkStream (drain per asset) or None
        self.pid = os.getpid()
        self.seq = 0
        self.ticks = 0
        self.event_publishes = 0                 # partial ticks on a stream's message (publish_event)
        self.guard: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
        self.vol_models, why = load_vol_models(cfg)
        self._log_models(why)
        needed = [self.vol_models[a].history_needed_s for a in cfg.assets if a in self.vol_models]
        self.history_keep_s = max([HISTORY_KEEP_S, *(n + 120.0 for n in needed)])
        self.assets = {a: AssetState(a, cfg.signal_path_for(a), TickHistory(self.history_keep_s)) for a in cfg.assets}
        self.strikes = StrikeReader(cfg.state_dir)
        self.candles = CandleBook()              # closed 1-minute high/low (candles.CandleRefresher fills it)
        self.reference = ReferenceTracker(keep_s=max(900.0, float(cfg.window_seconds)) + 300.0)
        self._next_snapshot: float | None = None
        self.write_error: str | None = None      # a failed write (disk full, unwritable): publishing paused

    def _log_models(self, why: str) -> None:
        for a in self.cfg.assets:
            vm = self.vol_models.get(a)
            if vm is not None:
                log.info("%s: prob_up %s from %s", a, vm.name, self.cfg.prob_model_file)
            elif why:
                log.warning("%s: prob_up uses today's model (v1): %s (re-create the file with"
                            " `python -m backtest fit`)", a, why)
            else:
                log.warning("%s: prob_up uses today's model (v1): %s has no parameters for %s (re-fit with"
                            " `python -m backtest fit` on its candles)", a, self.cfg.prob_model_file, a)

    # ---- start-up ------------------------------------------------------------------

    def prepare(self) -> None:
        """Remove our leftover temp files; resume seq after the previous run; report bad files."""
        state_dir = self.cfg.state_dir
        for tmp in sorted(state_dir.glob(TEMP_GLOB)):
            try:
                tmp.unlink()
                log.info("removed a temp file left by an earlier run: %s", tmp.name)
            except FileNotFoundError:
                continue  # gone already: nothing to clean
        for st in self.assets.values():
            res = read_json(st.path)
            if res.ok:
                prev = res.data.get("seq")
                if isinstance(prev, int) and not isinstance(prev, bool) and prev > self.seq:
                    self.seq = prev
            elif res.problem != "missing":
                log.warning("%s is %s (left by a crash?): replacing it now", st.path, res.problem)

    def write_starting(self) -> None:
        """Replace every signal file at once with an honest 'starting, no price yet' document."""
        now = self.feed.clock()
        for st in self.assets.values():
            doc = self._document(st, now, None, reason="starting: no price yet")
            self._write(st, doc)

    def backfill(self) -> None:
        """Load recent history per asset so features and the window open work from the first tick.
        An asset whose backfill fails is retried every BACKFILL_RETRY_S by the scheduled ticks (without
        history there is no volatility, so no prob_up: see model.evaluate)."""
        if not self.feed.supports_history:
            return
        for st in self.assets.values():
            self._backfill_one(st)

    def _backfill_one(self, st: AssetState) -> None:
        try:
            times, prices, source = self.feed.history(st.asset, self.history_keep_s)
        except AllFeedsFailed as exc:
            st.backfill_retry_at = self.mono() + BACKFILL_RETRY_S
            log.warning("%s: no history to backfill (%s); no prob_up until the history allows one; retrying"
                        " the backfill in %.0f s", st.asset, exc, BACKFILL_RETRY_S)
            return
        n = st.history.merge_older(times, prices)
        st.backfill_source, st.backfill_retry_at = source, None
        st.backfilled_to = float(times[-1]) if len(times) else st.history.last_time
        log.info("%s: backfilled %d samples (%.0f min) from %s", st.asset, n,
                 (times[-1] - times[0]) / 60.0 if n else 0.0, source)

    def _retry_backfills(self) -> None:
        now = self.mono()
        for st in self.assets.values():
            if st.backfill_retry_at is not None and now >= st.backfill_retry_at:
                self._backfill_one(st)

    def window_began_since_backfill(self) -> bool:
        """Some asset's current window began after its backfill's newest sample (--once: a minute
        boundary fell between the backfill and the tick, so the open would be interpolated or unknown)."""
        now = self.feed.clock()
        return any(st.backfilled_to is not None and window_at(st.asset, now, self.cfg.window_seconds).start
                   > st.backfilled_to for st in self.assets.values())

    # ---- one tick ------------------------------------------------------------------

    def tick(self, write: bool = True, only: set[str] | None = None) -> dict[str, dict]:
        """One signal per asset (or per asset of `only`: a partial tick, see publish_event). A write that
        fails (disk full, an unwritable STATE_DIR) is a state, not a crash: nothing more is published
        (the files keep their last, ageing document, so every reader sees it go stale), the heartbeat
        goes on, and every tick tries again: the first write that succeeds resumes publishing. The
        heartbeat and the snapshots are the full ticks' business (their schedule is unchanged)."""
        docs = {}
        failed: OSError | None = None
        if only is None:
            self._retry_backfills()
        for st in self.assets.values():
            if only is not None and st.asset not in only:
                continue
            t0 = time.perf_counter()
            doc = self._compute(st)
            if write and failed is None:
                t1 = time.perf_counter()
                try:
                    replaced_at = self._write(st, doc, durable=only is None)
                except OSError as exc:
                    failed = exc
                else:
                    t2 = time.perf_counter()
                    st.prev_latency_ms, st.prev_write_ms = (replaced_at - t0) * 1000.0, (t2 - t1) * 1000.0
            docs[st.asset] = doc
        if only is not None:
            self.event_publishes += 1
            if write:
                self._note_write(failed)
            return docs
        self.ticks += 1
        if write:
            self._beat()
            self._note_write(failed)
            if failed is None:
                try:
                    self._snapshot_if_due(docs)
                except OSError as exc:
                    log.warning("could not append the signal snapshot to %s (%s); the signal files are"
                                " published, the next snapshot is tried in %.0f s", self.cfg.signals_log_path,
                                exc, SNAPSHOT_EVERY_S)
        return docs

    def publish_event(self, assets: set[str]) -> set[str]:
        """A stream brought news for `assets` (schedule.run_schedule, on the main thread): publish those
        whose price the fallback chain takes from a stream right now (from memory, no network call);
        on REST fallback, or while writes fail, the schedule alone publishes. Returns the assets written."""
        if self.write_error is not None:
            return set()
        ready = {a for a in assets if a in self.assets and self.feed.streaming(a)}
        if not ready:
            return set()
        return set(self.tick(only=ready)) if self.write_error is None else set()

    def _beat(self) -> None:
        try:
            touch_heartbeat(self.cfg.heartbeat_path(PROCESS_NAME))
        except OSError as exc:
            # A full disk still lets us set a time on the existing file; failing that, the supervisor
            # sees the heartbeat age and restarts us, which is the right thing.
            log.error("could not touch the heartbeat %s: %s", self.cfg.heartbeat_path(PROCESS_NAME), exc)

    def _note_write(self, failed: OSError | None) -> None:
        if failed is not None and self.write_error is None:
            self.write_error = str(failed)
            log.error("write_error: publishing paused, cannot write the signal files in %s (%s); the executor"
                      " sees them go stale and trades nothing; retrying every tick, publishing resumes by"
                      " itself when a write succeeds", self.cfg.state_dir, failed)
        elif failed is None and self.write_error is not None:
            log.warning("write_error cleared: the signal files are written again (was: %s)", self.write_error)
            self.write_error = None

    def _fetch(self, st: AssetState) -> None:
        try:
            tick = self.feed.latest(st.asset)
        except AllFeedsFailed as exc:
            st.last_error = str(exc)
            return
        st.history.add(tick.ts, tick.price)
        st.last_tick = tick
        st.last_accept_mono = self.mono()
        st.last_error = None

    def _is_stale(self, st: AssetState) -> bool:
        if st.last_accept_mono is None:
            return True
        return self.mono() - st.last_accept_mono > self.cfg.stale_after

    def _report_staleness(self, st: AssetState, stale: bool) -> None:
        """One log line when an asset goes stale, one when it recovers; nothing in between."""
        if st.stale_reported is None and not stale:
            st.stale_reported = False
            return
        if stale == st.stale_reported:
            return
        now = self.mono()
        if stale:
            st.stale_since_mono = now
            age = "no price yet" if st.last_accept_mono is None else \
                f"no fresh price for {now - st.last_accept_mono:.1f} s"
            log.warning("%s signal is STALE (%s; NO_TRADE until prices return): %s; dropped so far: %s",
                        st.asset, age, st.last_error or "no error recorded", self.feed.stats()["dropped_by_kind"])
        else:
            since = st.stale_since_mono if st.stale_since_mono is not None else now
            log.warning("%s signal is fresh again (price from %s) after %.1f s stale", st.asset,
                        st.last_tick.source if st.last_tick else "?", now - since)
        st.stale_reported = stale

    def _window_open(self, st: AssetState, window: Window, now: float) -> float | None:
        """The price at the window's start, frozen once known; None if it cannot be known. Just after
        the start, before any sample since (a stream with no trade yet: the boundary tick runs 5 ms
        after the start), the last price before the start is the price in force then: used, not
        frozen, so the first sample after the start settles it."""
        if st.open_cache is not None and st.open_cache[0] == window.start:
            return st.open_cache[1]
        times, prices = st.history.arrays()
        gap = model.DEFAULT_PARAMS.max_gap_s
        if times.size and times[-1] < window.start <= now and window.start - times[-1] <= gap:
            return float(prices[-1])
        if times.size == 0 or times[-1] < window.start:
            return None                                  # not yet known: no sample since the start
        if times[0] > window.start:
            st.open_cache = (window.start, None)         # started mid-window: cannot be known
            return None
        i = int(np.searchsorted(times, window.start, side="right"))
        before, after = times[i - 1], times[min(i, times.size - 1)]
        if after - before > model.DEFAULT_PARAMS.max_gap_s:
            st.open_cache = (window.start, None)         # the start fell in a hole of the data
            return None
        value = float(np.interp(window.start, times, prices))
        st.open_cache = (window.start, value)
        return value

    def _compute(self, st: AssetState) -> dict:
        self._fetch(st)
        stale = self._is_stale(st)
        self._report_staleness(st, stale)
        now = self.feed.clock()
        last_t = st.history.last_time
        if last_t is not None:
            now = max(now, last_t)
        if st.last_tick is None or stale:
            reason = "stale: " + (st.last_error or "no fresh price") if st.last_tick else \
                "no price yet: " + (st.last_error or "waiting for the feed")
            return self._document(st, now, None, reason=reason)
        window = window_at(st.asset, now, self.cfg.window_seconds)
        open_price = self._window_open(st, window, now)
        times, prices = st.history.arrays()
        self._pull_chainlink(st, times, prices)
        age = None if st.last_accept_mono is None else self.mono() - st.last_accept_mono
        ref = self.reference.reference(st.asset, float(prices[-1]), age, self.wall(), self.cfg.stale_after)
        strike = self._strike(st, window, open_price)
        ev = model.evaluate(times, prices, now, window.start, self.cfg.window_seconds,
                            open_price=strike.price, vol=self.vol_models.get(st.asset), reference=ref.price,
                            minute_hl=self.candles.snapshot(st.asset), memo=st.memo)
        reason = None
        if strike.price is None:
            reason = ("window open unknown: the history does not reach back to this window's start"
                      " (engine started mid-window, or a gap) and the venue's price to beat is not known;"
                      " prob_up resumes next window")
            ev["prob_up"] = None
        elif ev["prob_up"] is None:
            reason = ("volatility unknown: the price history is too short for one (the engine just started"
                      " and its backfill failed, or a gap); prob_up resumes when the history allows")
        return self._document(st, now, ev, reason=reason, window=window, open_price=open_price,
                              strike=strike, ref=ref)

    def _pull_chainlink(self, st: AssetState, times: np.ndarray, prices: np.ndarray) -> None:
        if self.chainlink is None:
            return
        for obs in self.chainlink.drain(st.asset):
            self.reference.on_chainlink(st.asset, obs.price, obs.ts, obs.recv_wall, times, prices)

    def _strike(self, st: AssetState, window: Window, feed_open: float | None) -> StrikeInfo:
        """The venue's price to beat when recorded (and plausible), else the open in the reference's terms."""
        venue = self.strikes.get(st.asset, window.start)
        if venue is not None:
            if feed_open is None or abs(math.log(venue.price_to_beat / feed_open)) <= MAX_STRIKE_GAP:
                return StrikeInfo(venue.price_to_beat, "venue", round(max(0.0, self.wall() - venue.seen_at), 3))
            if st.rejected_strike != (window.start, venue.price_to_beat):
                st.rejected_strike = (window.start, venue.price_to_beat)
                log.warning("%s: the venue's price to beat %g for the window at %s is %.1f%% away from the feed's"
                            " open %g: ignored (a misread?); prob_up uses the feed's open", st.asset,
                            venue.price_to_beat, iso_utc(window.start), 100 * (venue.price_to_beat / feed_open - 1),
                            feed_open)
        price = self.reference.strike_from_open(st.asset, window.start, feed_open)
        if price is None:
            return StrikeInfo(None, None, None)
        return StrikeInfo(price, "feed_open", round(max(0.0, self.feed.clock() - window.start), 3))

    def _document(self, st: AssetState, now: float, ev: dict | None, reason: str | None,
                  window: Window | None = None, open_price: float | None = None,
                  strike: StrikeInfo | None = None, ref: Reference | None = None) -> dict:
        """The signal.json document; `ev` None means no usable fresh price (stale)."""
        window = window or window_at(st.asset, now, self.cfg.window_seconds)
        stale = ev is None
        tick = st.last_tick
        forced = ev is None or ev["prob_up"] is None or reason is not None
        direction = "NO_TRADE" if forced else ev["direction"]
        confidence = 50 if forced or direction == "NO_TRADE" else _finite(ev["confidence"])
        self.seq += 1
        doc = SignalDoc(
            timestamp=now, asset=st.asset, direction=direction, confidence=confidence,
            prob_up=None if ev is None else _finite(ev["prob_up"]),
            price=_finite(ev["price"]) if ev else (tick.price if tick else None),
            window=SignalWindow(window.start, window.end, open_price if ev else None,
                                round(window.seconds_left(now), 3), window.slug),
            stale=stale, seq=self.seq, source=tick.source if tick else None,
            basis=ev["basis"] if ev else dict(EMPTY_BASIS),
            strike=_finite(strike.price) if ev and strike else None,
            strike_source=strike.source if ev and strike else None,
            strike_age_s=strike.age_s if ev and strike else None,
            reference_price=_finite(ref.price) if ev and ref else None,
            reference_source=ref.source if ev and ref else None,
            reference_age_s=None if not (ev and ref) or ref.age_s is None else round(ref.age_s, 3),
            model=ev["model"] if ev else None)
        return {
            **doc.to_dict(),
            "reason": reason,
            "price_time": iso_utc(tick.ts) if tick else None,
            "price_age_s": None if st.last_accept_mono is None else round(self.mono() - st.last_accept_mono, 3),
            "sigma_per_sqrt_s": _finite(ev["sigma"]) if ev and ev["sigma"] is not None else None,
            "vol_input": ev.get("vol_input") if ev else None,
            "basis_estimate": None if not (ev and ref) or ref.basis is None else round(ref.basis, 7),
            "mode": self.cfg.mode,
            "interval": self.cfg.signal_interval,
            "window_seconds": self.cfg.window_seconds,
            "pid": self.pid,
            "feed": self.feed.stats(),
            "prev_tick_to_file_ms": None if st.prev_latency_ms is None else round(st.prev_latency_ms, 3),
            "prev_write_ms": None if st.prev_write_ms is None else round(st.prev_write_ms, 3),
        }

    # ---- files -----------------------------------------------------------------------

    def _write(self, st: AssetState, doc: dict, durable: bool = True) -> float:
        """Atomic replace; returns the perf_counter() reading at the os.replace. The publishes on streamed
        prices (up to ~20 a second) skip the fsyncs: still atomic for readers, and the next scheduled
        tick (every SIGNAL_INTERVAL) writes durably (a power cut in between leaves a file that `prepare`
        replaces and readers take as corrupt: no trade)."""
        with self.guard():
            if durable:
                return atomic_write_json(st.path, doc)
            return quick_replace(st.path, json_bytes(doc), st.temp_path)

    def _snapshot_if_due(self, docs: dict[str, dict]) -> None:
        now = self.mono()
        if self._next_snapshot is not None and now < self._next_snapshot:
            return
        self._next_snapshot = now + SNAPSHOT_EVERY_S
        with self.guard():
            for doc in docs.values():
                append_jsonl(self.cfg.signals_log_path, doc)

    def wants_candles(self) -> bool:
        """Some asset's model has a range blend: worth fetching the exchange's 1-minute candles."""
        return any(vm.range_blend is not None for vm in self.vol_models.values())

    def leftover_temp_files(self) -> list[Path]:
        return sorted(self.cfg.state_dir.glob(TEMP_GLOB))
