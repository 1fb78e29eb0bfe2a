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


def _open_text(path: Path) -> io.TextIOBase:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return io.StringIO(raw.decode("utf-8", errors="replace"))


def load_candles(path: Path | str) -> Candles:
    """Load a 1-minute candle file. FileNotFoundError if absent; ValueError if no row is usable."""
    path = Path(path)
    rows: list[tuple[float, float, float, float, float, float]] = []
    dropped = 0
    with _open_text(path) as fh:
        for rec in csv.reader(fh):
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
            if not (o > 0 and h > 0 and lo > 0 and c > 0) or not all(np.isfinite((o, h, lo, c))):
                dropped += 1
                continue
            rows.append((t, o, h, lo, c, v))
    if not rows:
        raise ValueError(f"{path}: no usable candle rows ({dropped} dropped)")
    arr = np.array(rows, dtype=float)
    ts = arr[:, 0]
    scale = 1e6 if np.median(ts) > 1e14 else 1e3   # microseconds in newer Binance dumps
    ts = ts / scale
    order = np.argsort(ts, kind="stable")
    arr, ts = arr[order], ts[order]
    keep = np.concatenate(([True], np.diff(ts) > 0))  # drop duplicate timestamps
    dropped += int((~keep).sum())
    arr, ts = arr[keep], ts[keep]
    return Candles(ts, arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4], arr[:, 5], dropped)


def segments(open_time: np.ndarray, step_s: float = 60.0) -> list[tuple[int, int]]:
    """[start, end) index ranges of contiguous candles (no missing minute inside)."""
    if open_time.size == 0:
        return []
    breaks = np.nonzero(np.diff(open_time) > step_s * 1.5)[0] + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [open_time.size]))
    return list(zip(starts.tolist(), ends.tolist(), strict=True))
