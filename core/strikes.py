"""The venue's price to beat, passed from the executor (writer) to the signal engine (reader).

A 15-minute market resolves on Chainlink's price at the window's end against its **price to beat**
(Chainlink's price at the start), which the page shows ~30 s after the start and the market data
carries as `openPrice` (/work/shared/design/real-site-notes.md). The executor sees it; the signal
engine needs it as the strike of prob_up. They share one small file:

    STATE_DIR/strikes.json   (mode 0600, replaced atomically under STATE_DIR/strikes.json.lock)
    {"format": 1,
     "assets": {"BTC": {"window_start": 1767225600, "price_to_beat": 97000.12,
                        "source": "page", "seen_at": 1767225631.402}}}

- `write_strike(state_dir, asset, window_start, price_to_beat, source)`: the executor calls it each
  time it reads the price to beat (page or market data); it keeps one entry per asset (the latest
  window) and replaces the file atomically, so a reader never sees a torn file. A different price
  for the same window replaces the old one (the venue corrected it): the engine uses the newest.
- `StrikeReader(state_dir).get(asset, window_start)`: the engine's per-tick read, re-parsed only
  when the file changed; a missing, corrupt or foreign entry is simply "unknown" (the engine then
  uses the feed's window open and says so in signal.json: `strike_source: "feed_open"`).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from core.durable_files import LOCK_TIMEOUT_S, atomic_write_json, read_json

FILE_NAME = "strikes.json"
FORMAT = 1
SOURCES = ("page", "market_data")   # where the executor read it: the page's "Price to beat", or Gamma's openPrice


@dataclass(frozen=True)
class Strike:
    asset: str
    window_start: int
    price_to_beat: float
    source: str
    seen_at: float          # epoch seconds when the executor read it


def strikes_path(state_dir: Path | str) -> Path:
    return Path(state_dir) / FILE_NAME


def _check(asset: str, window_start: float, price_to_beat: float, source: str, seen_at: float) -> None:
    if not isinstance(asset, str) or not asset.strip().isalnum():
        raise ValueError(f"strike: asset must be a symbol like BTC, got {str(asset)[:20]!r}")
    if isinstance(window_start, bool) or not isinstance(window_start, (int, float)) or not math.isfinite(window_start) \
            or window_start <= 0 or int(window_start) != window_start:
        raise ValueError(f"strike: window_start must be a whole epoch second, got {str(window_start)[:30]!r}")
    if isinstance(price_to_beat, bool) or not isinstance(price_to_beat, (int, float)) \
            or not math.isfinite(price_to_beat) or price_to_beat <= 0:
        raise ValueError(f"strike: price_to_beat must be a finite number > 0, got {str(price_to_beat)[:30]!r}")
    if source not in SOURCES:
        raise ValueError(f"strike: source must be one of {', '.join(SOURCES)}, got {str(source)[:20]!r}")
    if not math.isfinite(seen_at):
        raise ValueError("strike: seen_at must be finite")


def write_strike(state_dir: Path | str, asset: str, window_start: int, price_to_beat: float, source: str,
                 seen_at: float | None = None) -> Strike:
    """Record the venue's price to beat for (asset, window); ValueError for bad input (nothing written),
    OSError when the file cannot be written (the file stays as it was). Returns what was recorded."""
    seen_at = time.time() if seen_at is None else float(seen_at)
    _check(asset, window_start, price_to_beat, source, seen_at)
    path = strikes_path(state_dir)
    strike = Strike(asset.strip().upper(), int(window_start), float(price_to_beat), source, seen_at)
    with FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S, mode=0o600):
        res = read_json(path)
        assets = res.data.get("assets") if res.ok and isinstance(res.data.get("assets"), dict) else {}
        current = assets.get(strike.asset)
        if isinstance(current, dict) and isinstance(current.get("window_start"), int) \
                and current["window_start"] > strike.window_start:
            return _parse_entry(strike.asset, current) or strike   # an older window never replaces a newer one
        assets[strike.asset] = {"window_start": strike.window_start, "price_to_beat": strike.price_to_beat,
                                "source": strike.source, "seen_at": round(strike.seen_at, 3)}
        atomic_write_json(path, {"format": FORMAT, "assets": assets})
    return strike


def _parse_entry(asset: str, e: object) -> Strike | None:
    if not isinstance(e, dict):
        return None
    try:
        _check(asset, e.get("window_start"), e.get("price_to_beat"), e.get("source"), float(e.get("seen_at")))
    except (ValueError, TypeError):
        return None
    return Strike(asset.upper(), int(e["window_start"]), float(e["price_to_beat"]), e["source"], float(e["seen_at"]))


def read_strikes(state_dir: Path | str) -> tuple[dict[str, Strike], str | None]:
    """({ASSET: Strike}, problem): unusable entries are left out; problem says why the whole file is
    unusable ("missing", "corrupt: ...") or is None."""
    res = read_json(strikes_path(state_dir))
    if not res.ok:
        return {}, res.problem
    if res.data.get("format") != FORMAT or not isinstance(res.data.get("assets"), dict):
        return {}, f"corrupt: expected format {FORMAT} with an 'assets' object"
    out = {}
    for asset, entry in res.data["assets"].items():
        s = _parse_entry(str(asset), entry)
        if s is not None:
            out[s.asset] = s
    return out, None


class StrikeReader:
    """The engine's view: re-reads strikes.json only when its mtime or size changed."""

    def __init__(self, state_dir: Path | str):
        self.path = strikes_path(state_dir)
        self._key: tuple[int, int] | None = None
        self._strikes: dict[str, Strike] = {}
        self.problem: str | None = "missing"

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._key, self._strikes, self.problem = None, {}, "missing"
            return
        except OSError as exc:
            self._key, self._strikes, self.problem = None, {}, f"unreadable: {exc.strerror or exc}"
            return
        key = (st.st_mtime_ns, st.st_size)
        if key != self._key:
            self._strikes, self.problem = read_strikes(self.path.parent)
            self._key = key

    def get(self, asset: str, window_start: float) -> Strike | None:
        """The venue's strike of this asset's window, or None when not (yet) known."""
        self._refresh()
        s = self._strikes.get(asset.upper())
        return s if s is not None and s.window_start == int(round(window_start)) else None
