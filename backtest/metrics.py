"""Scores for the backtest: Brier, log loss, calibration, confidence buckets, trade statistics."""

from __future__ import annotations

import math

import numpy as np

LOG_EPS = 1e-6          # probabilities are clipped to [eps, 1 - eps] inside the log loss
CONFIDENCE_BUCKETS = (50.0, 60.0, 70.0, 80.0, 90.0, 95.0001)


def _r(x: float, nd: int = 6) -> float | None:
    x = float(x)
    return round(x, nd) if math.isfinite(x) else None


def brier(q: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((q - y) ** 2)) if q.size else math.nan


def log_loss(q: np.ndarray, y: np.ndarray) -> float:
    if not q.size:
        return math.nan
    qc = np.clip(q, LOG_EPS, 1.0 - LOG_EPS)
    return float(-np.mean(y * np.log(qc) + (1.0 - y) * np.log(1.0 - qc)))


def reliability(q: np.ndarray, y: np.ndarray, bins: int = 10) -> list[dict]:
    """Equal-width bins on [0, 1]: count, mean prediction and observed frequency of each."""
    idx = np.minimum((q * bins).astype(np.int64), bins - 1)
    n = np.bincount(idx, minlength=bins)
    sq = np.bincount(idx, weights=q, minlength=bins)
    sy = np.bincount(idx, weights=y, minlength=bins)
    rows = []
    for b in range(bins):
        rows.append({"lo": b / bins, "hi": (b + 1) / bins, "n": int(n[b]),
                     "mean_pred": _r(sq[b] / n[b]) if n[b] else None,
                     "observed": _r(sy[b] / n[b]) if n[b] else None})
    return rows


def ece(q: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: sum over bins of (n_b / n) * |mean pred - observed freq|."""
    if not q.size:
        return math.nan
    idx = np.minimum((q * bins).astype(np.int64), bins - 1)
    sq = np.bincount(idx, weights=q, minlength=bins)
    sy = np.bincount(idx, weights=y, minlength=bins)
    return float(np.sum(np.abs(sq - sy)) / q.size)


def prob_metrics(q: np.ndarray, y: np.ndarray, bins: int = 10, table: bool = True) -> dict:
    """n, brier, log_loss, hit_rate (call Up when q >= 0.5), ece and the reliability table."""
    q = np.asarray(q, dtype=float)
    y = np.asarray(y, dtype=float)
    out = {"n": int(q.size), "brier": _r(brier(q, y)), "log_loss": _r(log_loss(q, y)),
           "hit_rate": _r(float(np.mean((q >= 0.5) == (y > 0.5)))) if q.size else None,
           "ece": _r(ece(q, y, bins)), "base_rate": _r(float(np.mean(y))) if q.size else None}
    if table:
        out["reliability"] = reliability(q, y, bins)
    return out


def confidence_table(confidence: np.ndarray, direction: np.ndarray, up: np.ndarray) -> dict:
    """The seed heuristic's stated confidence against how often its direction was right."""
    traded = direction != 0
    right = (direction == 1) == up
    rows = []
    for lo, hi in zip(CONFIDENCE_BUCKETS[:-1], CONFIDENCE_BUCKETS[1:], strict=True):
        sel = traded & (confidence >= lo) & (confidence < hi)
        k = int(sel.sum())
        rows.append({"confidence_lo": lo, "confidence_hi": min(hi, 95.0), "n": k,
                     "mean_confidence": _r(float(confidence[sel].mean()), 3) if k else None,
                     "hit_rate": _r(float(right[sel].mean())) if k else None})
    n_tr = int(traded.sum())
    return {"n_windows": int(direction.size), "n_directional": n_tr,
            "hit_rate": _r(float(right[traded].mean())) if n_tr else None,
            "mean_confidence": _r(float(confidence[traded].mean()), 3) if n_tr else None,
            "buckets": rows}


def max_drawdown(pnl: np.ndarray) -> float:
    """Largest fall of cumulative P&L from its running peak (the start counts as a peak of 0)."""
    if not pnl.size:
        return 0.0
    eq = np.concatenate(([0.0], np.cumsum(pnl)))
    return float(np.max(np.maximum.accumulate(eq) - eq))


def trade_stats(pnl: np.ndarray, won: np.ndarray) -> dict:
    """P&L, count, win rate, max drawdown, mean and standard deviation per trade."""
    pnl = np.asarray(pnl, dtype=float)
    n = int(pnl.size)
    return {"trades": n, "pnl": _r(float(pnl.sum()), 2) if n else 0.0,
            "win_rate": _r(float(np.mean(won))) if n else None,
            "max_drawdown": _r(max_drawdown(pnl), 2),
            "mean_per_trade": _r(float(pnl.mean()), 4) if n else None,
            "std_per_trade": _r(float(pnl.std(ddof=1)), 4) if n > 1 else None}
