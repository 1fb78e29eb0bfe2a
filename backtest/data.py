"""Turning candles into 15-minute windows and decision instants for the backtest.

A window starts on the `window_seconds` UTC grid. It is used only when all its candles lie in
one contiguous segment (no missing minute) and the model's longest lookback before its start
lies in that same segment, so no window and no feature spans a gap. Its open is the open of
the candle starting at the window's start; its close is the close of its last candle; it
resolves Up when close >= open (ties go Up).

Decision instants are `start + 60 * m` for m = 0 .. minutes-1: each is a candle's close time,
i.e. a sample time of `Candles.price_series()`, so the model sees only what was known then.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from signal_engine.history import Candles, segments


@dataclass(frozen=True)
class Windows:
    start: np.ndarray        # epoch seconds of each window's start
    open: np.ndarray         # open of the candle starting at `start`
    close: np.ndarray        # close of the window's last candle
    segment: np.ndarray      # index of the contiguous segment holding the window
    up: np.ndarray           # bool: close >= open
    window_seconds: float
    skipped_history: int     # grid windows inside a segment but without the model's history
    skipped_partial: int     # grid windows cut by a segment's edge (a gap or the file's end)

    def __len__(self) -> int:
        return int(self.start.size)

    def decision_times(self, minutes: np.ndarray | list[int]) -> np.ndarray:
        """Matrix (n_windows, len(minutes)) of decision instants start + 60 * m."""
        return self.start[:, None] + 60.0 * np.asarray(minutes, dtype=float)[None, :]

    def take(self, mask: np.ndarray) -> Windows:
        return Windows(self.start[mask], self.open[mask], self.close[mask], self.segment[mask],
                       self.up[mask], self.window_seconds, self.skipped_history, self.skipped_partial)


def build_windows(c: Candles, history_s: float, window_seconds: float = 900.0) -> Windows:
    """All usable windows of a candle set (see the module docstring)."""
    step = c.step_s
    per_window = int(round(window_seconds / step))
    starts, opens, closes, segs = [], [], [], []
    skipped_history = skipped_partial = 0
    for k, (s, e) in enumerate(segments(c.open_time, step)):
        t0, t1 = c.open_time[s], c.open_time[e - 1]
        first = np.ceil(t0 / window_seconds) * window_seconds
        grid = np.arange(first, t1 + step, window_seconds)
        if grid.size == 0:
            continue
        # Index arithmetic is exact inside a contiguous segment.
        i0 = s + np.rint((grid - t0) / step).astype(np.int64)
        full = i0 + per_window - 1 < e
        # A candle set off the minute grid would break the arithmetic: such windows are dropped.
        full &= c.open_time[np.minimum(i0, e - 1)] == grid
        skipped_partial += int((~full).sum())
        # The first sample time of the segment is t0 + step; the lookback must not reach before it.
        enough = grid - history_s >= t0 + step
        skipped_history += int((full & ~enough).sum())
        ok = full & enough
        i0 = i0[ok]
        starts.append(grid[ok])
        opens.append(c.open[i0])
        closes.append(c.close[i0 + per_window - 1])
        segs.append(np.full(i0.size, k, dtype=np.int64))
    if starts:
        start = np.concatenate(starts)
        op, cl, sg = np.concatenate(opens), np.concatenate(closes), np.concatenate(segs)
    else:
        start = op = cl = np.zeros(0)
        sg = np.zeros(0, dtype=np.int64)
    return Windows(start, op, cl, sg, cl >= op, float(window_seconds), skipped_history, skipped_partial)
