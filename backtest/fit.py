"""Fitting prob_up v2 (signal_engine/vol_model.py) on candle history, walk-forward, in one pass.

For each training set (the windows of earlier chronological blocks, and only candles that closed
before the first window it is scored on):

1. seasonality: mean squared 1-minute return per hour of the day, per hour of the week relative to
   its hour of the day, then per minute of the hour (each shrunk towards 1 by SEASON_PRIOR
   pseudo-minutes), normalised to mean 1;
2. volatility: for each (fast, slow) half-life pair of VOL_GRID, the two EWMA components of the
   deseasonalised squared returns and their weights by least squares against the realised variance
   of the rest of each training window (weighted like a QLIKE step; weights >= 0); the pair with the
   lowest QLIKE wins;
3. calibration: z = ln(price / open) / sqrt(v * H) at every decision minute 1..14 of the training
   windows; for each nu of NU_GRID a scale per minute minimising the log loss (recency-weighted:
   a window RECENCY_HALFLIFE_DAYS older counts half); the nu with the lowest total loss wins.

`fit_asset` returns the VolModel; `walk_forward` scores block k with the model fitted on blocks < k
next to today's model (signal_engine.model, fixed defaults) on the same windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from backtest.data import Windows, build_windows
from signal_engine import model
from signal_engine import vol_model as vm
from signal_engine.history import Candles

MINUTES = 15
VOL_GRID = ((3.0, 120.0), (5.0, 240.0), (10.0, 240.0), (5.0, 480.0))   # (fast, slow) half-lives, minutes
FAST_LEN_PER_HALFLIFE = 6
SLOW_LEN = 720                                   # 12 h of returns for the slow component
NU_GRID = (3.0, 4.0, 5.0, 7.0, 10.0, None)
RECENCY_HALFLIFE_DAYS = 120.0
SEASON_PRIOR = 60.0                              # pseudo-minutes added to every bin's noise
WINSOR_Q = 0.999                                 # squared returns above this quantile are capped (seasonality)
SMOOTH_DEGREE: int | None = None   # 2 smooths log(scale) over log(minutes left): measured worse out of sample
HISTORY_S = (SLOW_LEN + 2) * 60.0 + 60.0


@dataclass
class Grid:
    """Per window (rows) and decision minute m = 0..14 (columns): what both models need."""
    windows: Windows
    row0: np.ndarray        # index of each window's first candle
    price: np.ndarray       # (n, 15): the open at m = 0, else the close of candle m - 1
    now: np.ndarray         # (n, 15) decision instants start + 60 m
    seconds_left: np.ndarray  # (15,)

    @property
    def up(self) -> np.ndarray:
        return self.windows.up.astype(float)

    def take(self, rows: np.ndarray) -> Grid:
        return Grid(self.windows.take(np.isin(np.arange(len(self.windows)), rows)), self.row0[rows],
                    self.price[rows], self.now[rows], self.seconds_left)


def build_grid(c: Candles, window_seconds: float = 900.0) -> Grid:
    w = build_windows(c, max(HISTORY_S, model.HISTORY_NEEDED_S), window_seconds)
    row0 = np.searchsorted(c.open_time, w.start)
    m = np.arange(MINUTES)
    last = row0[:, None] + m[None, :] - 1
    price = c.close[np.maximum(last, 0)]
    price[:, 0] = w.open
    now = w.start[:, None] + 60.0 * m[None, :]
    return Grid(w, row0, price, now, window_seconds - 60.0 * m)


def v1_prob(c: Candles, g: Grid) -> np.ndarray:
    """Today's model (signal_engine.model, DEFAULT_PARAMS) at every decision minute of the grid."""
    times, prices = c.price_series()
    p = model.DEFAULT_PARAMS
    out = np.empty(g.price.shape)
    for a in range(0, len(g.row0), 4000):
        b = min(len(g.row0), a + 4000)
        t = g.now[a:b].ravel()
        sig = model.realized_sigma(times, prices, t, params=p).reshape(b - a, MINUTES)
        out[a:b] = model.prob_up(g.windows.open[a:b, None], g.price[a:b], g.seconds_left[None, :], sig, 0.0, p)
    return out


# ---- 1. seasonality ------------------------------------------------------------------------


def returns_of(c: Candles) -> np.ndarray:
    r = np.full(len(c), np.nan)
    ok = np.diff(c.open_time) == 60.0
    r[1:] = np.where(ok, np.log(c.close[1:] / c.close[:-1]), np.nan)
    return r


def fit_season(c: Candles, r: np.ndarray, until: float) -> tuple[np.ndarray, np.ndarray]:
    """Hour-of-week and minute-of-hour factors of the variance of the returns of candles closed
    before `until`. Measured on |r| (far less noisy than r**2 under fat tails) and squared: the same
    factor when the shape of the distribution does not depend on the hour."""
    x = np.abs(r)
    use = np.isfinite(x) & (c.open_time + 60.0 <= until)
    if use.sum() < 1000:
        return np.ones(168), np.ones(60)
    x = np.minimum(x, np.quantile(x[use], WINSOR_Q))
    xs, how, moh = x[use], vm.hour_of_week(c.open_time[use]), vm.minute_of_hour(c.open_time[use])
    xs = xs / xs.mean()

    def factor(key, vals, k):
        """Mean of vals per bin relative to the overall mean, shrunk towards 1 by how noisy each bin is
        (empirical Bayes: weight = between-bin variance / (between-bin + the bin's own noise variance))."""
        vals = vals / vals.mean()
        n = np.bincount(key, minlength=k).astype(float)
        m = np.bincount(key, weights=vals, minlength=k) / np.maximum(n, 1.0)
        noise = vals.var() / (n + SEASON_PRIOR)
        filled = n > 0
        between = max(0.0, float(np.var(m[filled])) - float(np.mean(noise[filled]))) if filled.any() else 0.0
        return 1.0 + np.where(filled, m - 1.0, 0.0) * between / (between + noise)

    # hour of the week = hour of the day (24 well-filled bins) x a ratio per hour of the week shrunk to 1
    hod = factor(how % 24, xs, 24)
    a = hod[np.arange(168) % 24] * factor(how, xs / hod[how % 24], 168)
    b = factor(moh, xs / a[how], 60)
    a, b = a * a, b * b
    norm = float(np.mean(a[how] * b[moh]))
    return a / math.sqrt(norm), b / math.sqrt(norm)


# ---- 2. volatility -------------------------------------------------------------------------


def _components(x: np.ndarray, fast: float, slow: float) -> tuple[np.ndarray, np.ndarray, int]:
    fast_len = int(round(FAST_LEN_PER_HALFLIFE * fast))
    f = vm.ewma_series(x, fast, fast_len, vm.MIN_FAST_RETURNS)
    s = vm.ewma_series(x, slow, SLOW_LEN, vm.MIN_SLOW_RETURNS)
    return f, s, fast_len


def _future_variance(x: np.ndarray, g: Grid) -> np.ndarray:
    """(n, 15): mean deseasonalised squared return over the minutes m .. 14 of each window."""
    cx = np.concatenate(([0.0], np.cumsum(np.nan_to_num(x))))
    m = np.arange(MINUTES)
    a = g.row0[:, None] + m[None, :]
    return (cx[g.row0[:, None] + MINUTES] - cx[a]) / (MINUTES - m)[None, :]


def _nonneg_ls(X: np.ndarray, t: np.ndarray) -> np.ndarray:
    coef = np.linalg.lstsq(X, t, rcond=None)[0]
    if np.all(coef >= 0):
        return coef
    best = np.zeros(X.shape[1])
    err = np.inf
    for j in range(X.shape[1]):          # one component alone
        cj = max(0.0, float(X[:, j] @ t / max(X[:, j] @ X[:, j], 1e-300)))
        e = float(np.sum((X[:, j] * cj - t) ** 2))
        if e < err:
            err, best = e, np.eye(X.shape[1])[j] * cj
    return best


def fit_vol(x: np.ndarray, g: Grid) -> dict:
    """(fast, slow, weights) with the lowest QLIKE on the grid's windows (all decision minutes)."""
    target = _future_variance(x, g).ravel()
    last = np.maximum(g.row0[:, None] + np.arange(MINUTES)[None, :] - 1, 0)
    best: dict | None = None
    for fast, slow in VOL_GRID:
        f, s, fast_len = _components(x, fast, slow)
        F, S = f[last].ravel(), s[last].ravel()
        ok = np.isfinite(F) & np.isfinite(S) & np.isfinite(target)
        scale = 1.0 / np.maximum(0.5 * (F[ok] + S[ok]), 1e-300)
        coef = _nonneg_ls(np.stack([F[ok], S[ok]], axis=1) * scale[:, None], target[ok] * scale)
        fc = np.maximum(coef[0] * F[ok] + coef[1] * S[ok], 1e-300)
        qlike = float(np.mean(target[ok] / fc + np.log(fc)))
        if best is None or qlike < best["qlike"]:
            best = {"fast_halflife_min": fast, "fast_len": fast_len, "slow_halflife_min": slow,
                    "slow_len": SLOW_LEN, "w_fast": float(coef[0]), "w_slow": float(coef[1]), "qlike": qlike}
    assert best is not None
    return best


# ---- 3. calibration ------------------------------------------------------------------------


def _wlogloss(q: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    q = np.clip(q, 1e-6, 1 - 1e-6)
    return float(-np.sum(w * (y * np.log(q) + (1 - y) * np.log(1 - q))) / np.sum(w))


def fit_scale(z: np.ndarray, y: np.ndarray, w: np.ndarray, nu: float | None, iters: int = 28) -> tuple[float, float]:
    """(scale, loss): golden-section search of log(scale) in [log 0.2, log 5]."""
    ok = np.isfinite(z)
    z, y, w = z[ok], y[ok], w[ok]
    gr = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = math.log(0.2), math.log(5.0)

    def loss(lc: float) -> float:
        return _wlogloss(vm.t_cdf(z / math.exp(lc), nu), y, w)

    c1, c2 = b - gr * (b - a), a + gr * (b - a)
    f1, f2 = loss(c1), loss(c2)
    for _ in range(iters):
        if f1 < f2:
            b, c2, f2 = c2, c1, f1
            c1 = b - gr * (b - a)
            f1 = loss(c1)
        else:
            a, c1, f1 = c1, c2, f2
            c2 = a + gr * (b - a)
            f2 = loss(c2)
    c = 0.5 * (a + b)
    return math.exp(c), loss(c)


def fit_calibration(z: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float | None, np.ndarray]:
    """nu and one scale per decision minute 1..14 (columns of z)."""
    best = None
    for nu in NU_GRID:
        fits = [fit_scale(z[:, m], y, w, nu) for m in range(1, MINUTES)]
        total = sum(f[1] for f in fits)
        if best is None or total < best[0]:
            best = (total, nu, np.array([f[0] for f in fits]))
    assert best is not None
    scales = best[2]
    if SMOOTH_DEGREE is not None:
        # log scale as a low-degree polynomial of log(minutes left): one curve, less noise per minute
        lt = np.log(np.arange(MINUTES - 1, 0, -1, dtype=float))
        coef = np.polyfit(lt, np.log(scales), SMOOTH_DEGREE)
        scales = np.exp(np.polyval(coef, lt))
    return best[1], scales


# ---- the whole fit -------------------------------------------------------------------------


def _model(asset: str, season: tuple[np.ndarray, np.ndarray], vol: dict, nu: float | None,
           scales: np.ndarray, seconds_left: np.ndarray) -> vm.VolModel:
    nodes = seconds_left[1:]                     # minutes 1..14: seconds left 840 .. 60
    order = np.argsort(nodes)
    return vm.VolModel(asset.upper(), vol["fast_halflife_min"], vol["fast_len"], vol["slow_halflife_min"],
                       vol["slow_len"], vol["w_fast"], vol["w_slow"], nu, season[0], season[1],
                       nodes[order].astype(float), scales[order])


def base_at_decisions(v: vm.VolModel, c: Candles, g: Grid) -> np.ndarray:
    base = v.base_variance_series(c.open_time, c.close)
    last = g.row0[:, None] + np.arange(MINUTES)[None, :] - 1
    return base[last]


def zscores(v: vm.VolModel, c: Candles, g: Grid) -> np.ndarray:
    base = base_at_decisions(v, c, g)
    z = v.zscore(g.windows.open[:, None].repeat(MINUTES, 1).ravel(), g.price.ravel(), g.now.ravel(),
                 np.broadcast_to(g.seconds_left, g.price.shape).ravel(), base.ravel())
    return z.reshape(g.price.shape)


def predict(v: vm.VolModel, c: Candles, g: Grid) -> np.ndarray:
    z = zscores(v, c, g)
    return v.prob_from_z(z, np.broadcast_to(g.seconds_left, z.shape))


def fit_asset(asset: str, c: Candles, g: Grid, rows: np.ndarray, r: np.ndarray | None = None) -> vm.VolModel:
    """The model fitted on the grid's windows `rows`, with candles closed before their last window's end."""
    r = returns_of(c) if r is None else r
    until = float(g.windows.start[rows[-1]] + g.windows.window_seconds)
    season = fit_season(c, r, until)
    probe = vm.VolModel(asset, 1.0, 1, 1.0, 1, 1.0, 0.0, None, season[0], season[1], np.array([60.0]), np.array([1.0]))
    x = r * r / probe.season_s2(c.open_time)
    sub = g.take(rows)
    vol = fit_vol(x, sub)
    v0 = _model(asset, season, vol, None, np.ones(MINUTES - 1), g.seconds_left)
    z = zscores(v0, c, sub)
    age_days = (until - sub.windows.start) / 86400.0
    w = 0.5 ** (age_days / RECENCY_HALFLIFE_DAYS)
    nu, scales = fit_calibration(z, sub.up, w)
    return _model(asset, season, vol, nu, scales, g.seconds_left)


def walk_forward(asset: str, c: Candles, g: Grid, folds: int = 5) -> dict:
    """Block k >= 1 predicted by the model fitted on blocks < k; returns rows, q_new, q_v1, models."""
    n = len(g.windows)
    fold = (np.arange(n) * folds) // max(n, 1)
    r = returns_of(c)
    q_new = np.full(g.price.shape, np.nan)
    fitted = []
    for k in range(1, folds):
        train, test = np.nonzero(fold < k)[0], np.nonzero(fold == k)[0]
        if not train.size or not test.size:
            continue
        v = fit_asset(asset, c, g, train, r)
        q_new[test] = predict(v, c, g.take(test))
        fitted.append((k, train, test, v))
    rows = np.nonzero(np.isfinite(q_new[:, 1]))[0]
    return {"rows": rows, "q_new": q_new[rows], "fitted": fitted}
