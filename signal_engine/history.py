"""Reading 1-minute candle files: the headered CSV of ../shared/data and Binance's dumps.

Accepted: gzip or plain text; with the header `open_time,open,high,low,close,volume`, or
Binance's headerless kline dumps (12 columns: open_time, open, high, low, close, volume,
close_time, ...). `open_time` in epoch milliseconds (microseconds in newer dumps: detected).
Rows are sorted and de-duplicated by time; bad rows (non-numeric, non-positive prices) are
dropped and counted. Gaps stay gaps: nothing is filled in.
"""

from __future__ import annotations

import csv
import gzip
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Candles:
    open_time: np.ndarray   # epoch seconds (float) of each candle's open
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    dropped_rows: int = 0
    step_s: float = 60.0

    def __len__(self) -> int:
        return int(self.open_time.size)

    def close_times(self) -> np.ndarray:
        """The instant each candle's close is known: its open time plus one step."""
        return self.open_time + self.step_s

    def price_series(self) -> tuple[np.ndarray, np.ndarray]:
        """(times, prices): each candle's close at the instant it is known (open + step).

        Evaluate models only at these sample times (or after the last one): np.interp at an
        instant between two samples would use the later one, which lies in the future.
        """
        return self.close_times(), self.close


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8", errors="replace")


def _fast_rows(text: str) -> np.ndarray | None:
    """All rows at once with numpy (well-formed files); None when any row needs the careful path."""
    first = text.lstrip()[:1]
    skip = 0 if first.isdigit() else 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")          # an empty-file warning means: use the careful path
            arr = np.loadtxt(io.StringIO(text), delimiter=",", skiprows=skip, usecols=range(6), dtype=float,
                             ndmin=2)
    except (ValueError, IndexError, UserWarning):
        return None
    return arr if arr.size else None


def _careful_rows(text: str) -> tuple[list[tuple[float, ...]], int]:
    """Row by row: skips the header, drops (and counts) rows that do not parse."""
    rows: list[tuple[float, ...]] = []
    dropped = 0
    for rec in csv.reader(io.StringIO(text)):
        if not rec or not rec[0].strip():
            continue
        if not rec[0].strip().lstrip("-").isdigit():
            if rec[0].strip().lower() in ("open_time", "opentime", "timestamp"):
                continue  # header
            dropped += 1
            continue
        try:
            t = int(rec[0])
            o, h, lo, c = (float(x) for x in rec[1:5])
            v = float(rec[5]) if len(rec) > 5 and rec[5] else 0.0
        except (ValueError, IndexError):
            dropped += 1
            continue
        rows.append((t, o, h, lo, c, v))
    return rows, dropped


def load_candles(path: Path | str) -> Candles:
    """Load a 1-minute candle file. FileNotFoundError if absent; ValueError if no row is usable."""
    path = Path(path)
    text = _read_text(path)
    arr = _fast_rows(text)
    dropped = 0
    if arr is None:
        rows, dropped = _careful_rows(text)
        arr = np.array(rows, dtype=float).reshape(-1, 6)
    prices = arr[:, 1:5]
    good = np.all(np.isfinite(prices) & (prices > 0), axis=1) & np.isfinite(arr[:, 0])
    dropped += int((~good).sum())
    arr = arr[good]
    if not arr.size:
        raise ValueError(f"{path}: no usable candle rows ({dropped} dropped)")
    ts = arr[:, 0]
    scale = 1e6 if np.median(ts) > 1e14 else 1e3   # microseconds in newer Binance dumps
    ts = ts / scale
    order = np.argsort(ts, kind="stable")
    arr, ts = arr[order], ts[order]
    keep = np.concatenate(([True], np.diff(ts) > 0))  # drop duplicate timestamps
    dropped += int((~keep).sum())
    arr, ts = arr[keep], ts[keep]
    return Candles(ts, arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4], arr[:, 5], dropped)


def concat(parts: list[Candles]) -> Candles:
    """Several candle sets of one asset (e.g. Binance's monthly dumps) as one, sorted, de-duplicated."""
    if len(parts) == 1:
        return parts[0]
    t = np.concatenate([c.open_time for c in parts])
    cols = [np.concatenate([getattr(c, k) for c in parts]) for k in ("open", "high", "low", "close", "volume")]
    order = np.argsort(t, kind="stable")
    t = t[order]
    keep = np.concatenate(([True], np.diff(t) > 0))
    dropped = sum(c.dropped_rows for c in parts) + int((~keep).sum())
    o, h, lo, c, v = (x[order][keep] for x in cols)
    return Candles(t[keep], o, h, lo, c, v, dropped, parts[0].step_s)


def segments(open_time: np.ndarray, step_s: float = 60.0) -> list[tuple[int, int]]:
    """[start, end) index ranges of contiguous candles (no missing minute inside)."""
    if open_time.size == 0:
        return []
    breaks = np.nonzero(np.diff(open_time) > step_s * 1.5)[0] + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [open_time.size]))
    return list(zip(starts.tolist(), ends.tolist(), strict=True))
