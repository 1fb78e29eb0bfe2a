"""signal_engine.model: hand-computed features, heuristic and prob_up; calibration; lookahead."""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
import pytest

from backtest.metrics import ece
from signal_engine import model

NOW = 4000.0
TIMES = np.arange(0.0, NOW + 1.0)          # 1-s ticks, as the live engine keeps them


def phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def linear_prices() -> np.ndarray:
    return 100.0 + 0.01 * TIMES            # +0.01 a second


def step_prices() -> np.ndarray:
    """Flat at 100, then a straight ramp to 100.1 over the last 30 s."""
    return np.where(TIMES <= NOW - 30, 100.0, 100.0 + 0.1 * (TIMES - (NOW - 30)) / 30.0)


def one(f: dict, key: str) -> float:
    return float(f[key][0])


def test_features_of_a_linear_series_by_hand():
    f = model.features(TIMES, linear_prices(), NOW)
    p = lambda t: 100.0 + 0.01 * t  # noqa: E731 - the series, for the hand formulas
    assert one(f, "momentum_30s") == pytest.approx(0.3 / 139.7, rel=1e-12)
    assert one(f, "momentum_60s") == pytest.approx(0.6 / 139.4, rel=1e-12)
    assert one(f, "momentum_120s") == pytest.approx(1.2 / 138.8, rel=1e-12)
    assert one(f, "acceleration") == pytest.approx(0.3 / 139.7 - 0.3 / 139.4, rel=1e-9)
    assert one(f, "micro") == pytest.approx(3.0 / 137.0, rel=1e-12)
    assert one(f, "macro") == pytest.approx(18.0 / 122.0, rel=1e-12)
    # Realised sigma per sqrt(s): RMS of the 60-s log returns over the lookback, / sqrt(60).
    for key, lb in (("vol_short", 900), ("vol_long", 3600)):
        r = [math.log(p(NOW - k * 60) / p(NOW - (k + 1) * 60)) for k in range(lb // 60)]
        assert one(f, key) == pytest.approx(math.sqrt(sum(x * x for x in r) / len(r) / 60.0), rel=1e-12)
    # z-score of the last price against the 31 one-minute points of the last 30 min: prices
    # 122, 122.6, ..., 140: mean 131, population std 0.6 * sqrt((31^2 - 1) / 12) = 0.6 * sqrt(80).
    assert one(f, "zscore") == pytest.approx(9.0 / (0.6 * math.sqrt(80.0)), rel=1e-12)


def test_heuristic_of_a_linear_series_by_hand():
    f = model.features(TIMES, linear_prices(), NOW)
    h = model.heuristic(f)
    accel_part = (0.3 / 139.7 - 0.3 / 139.4) / 0.0015
    # momentum saturates (+1), trend saturates (+1), volatility contracting (0), z = 1.677 -> -0.8385
    expected = 0.4 * 1.0 + 0.2 * accel_part + 0.2 * 1.0 + 0.0 + 0.1 * (-(15.0 / math.sqrt(80.0)) / 2.0)
    assert float(h["score"][0]) == pytest.approx(expected, rel=1e-9)
    assert float(h["score"][0]) == pytest.approx(0.51553, abs=1e-5)
    assert int(h["direction"][0]) == 1
    assert float(h["confidence"][0]) == 95.0           # min(95, 50 + 51.55)


def test_features_and_heuristic_of_a_step_by_hand():
    f = model.features(TIMES, step_prices(), NOW)
    assert one(f, "momentum_30s") == pytest.approx(0.001, rel=1e-9)
    assert one(f, "momentum_60s") == pytest.approx(0.001, rel=1e-9)
    assert one(f, "momentum_120s") == pytest.approx(0.001, rel=1e-9)
    assert one(f, "acceleration") == pytest.approx(0.001, rel=1e-9)      # it was 0 thirty seconds ago
    assert one(f, "micro") == pytest.approx(0.001, rel=1e-9)
    assert one(f, "macro") == pytest.approx(0.001, rel=1e-9)
    r = math.log(1.001)                                                   # the only non-zero return
    assert one(f, "vol_short") == pytest.approx(r / math.sqrt(15 * 60), rel=1e-9)
    assert one(f, "vol_long") == pytest.approx(r / math.sqrt(60 * 60), rel=1e-9)
    assert one(f, "zscore") == pytest.approx(math.sqrt(30.0), rel=1e-6)  # 30 points at 100, one at 100.1
    h = model.heuristic(f)
    # 0.4 * 0.5 + 0.2 * (0.001 / 0.0015) + 0.2 * (0.5 * 1/3 + 0.5 * 1/6) + 0.1 * (+1, ratio 2) + 0.1 * (-1)
    assert float(h["score"][0]) == pytest.approx(0.2 + 0.2 * 2 / 3 + 0.2 * 0.25 + 0.1 - 0.1, rel=1e-6)
    assert float(h["vol_ratio"][0]) == pytest.approx(2.0, rel=1e-9)
    assert float(h["confidence"][0]) == pytest.approx(50.0 + 38.3333, abs=1e-3)
    assert int(h["direction"][0]) == 1
    # The mirror image is DOWN with the same confidence.
    hd = model.heuristic(model.features(TIMES, 200.0 - step_prices(), NOW))
    assert int(hd["direction"][0]) == -1
    assert float(hd["score"][0]) < -0.25


def test_heuristic_threshold_and_missing_features():
    f = {k: np.array([np.nan]) for k in ("momentum_30s", "acceleration", "micro", "macro",
                                         "vol_short", "vol_long", "zscore")}
    h = model.heuristic(f)
    assert float(h["score"][0]) == 0.0 and int(h["direction"][0]) == 0 and float(h["confidence"][0]) == 50.0
    f["momentum_30s"] = np.array([0.00125])        # 0.4 * 0.625 = 0.25: not above the threshold
    assert int(model.heuristic(f)["direction"][0]) == 0
    f["momentum_30s"] = np.array([0.0013])         # 0.26
    assert int(model.heuristic(f)["direction"][0]) == 1


def test_prob_up_by_hand():
    # ln(101/100) / (0.001 * sqrt(400)) = 0.00995033 / 0.02 = 0.4975165
    z = math.log(1.01) / 0.02
    assert float(model.prob_up(100.0, 101.0, 400.0, 0.001)) == pytest.approx(phi(z), abs=2e-7)
    assert float(model.prob_up(100.0, 101.0, 400.0, 0.001)) == pytest.approx(0.69059, abs=1e-5)
    assert float(model.prob_up(100.0, 99.0, 400.0, 0.001)) == pytest.approx(phi(math.log(0.99) / 0.02), abs=2e-7)
    assert float(model.prob_up(100.0, 100.0, 400.0, 0.001)) == 0.5          # at the open: a coin
    p = replace(model.DEFAULT_PARAMS, tilt_weight=0.5)
    assert float(model.prob_up(100.0, 101.0, 400.0, 0.001, 0.4, p)) == pytest.approx(phi(z + 0.2), abs=2e-7)
    p = replace(model.DEFAULT_PARAMS, vol_scale=2.0)
    assert float(model.prob_up(100.0, 101.0, 400.0, 0.001, 0.0, p)) == pytest.approx(phi(z / 2), abs=2e-7)
    # No time left: ties go Up; clipped to [0.001, 0.999].
    assert float(model.prob_up(100.0, 100.0, 0.0, 0.001)) == pytest.approx(0.999)
    assert float(model.prob_up(100.0, 99.99, 0.0, 0.001)) == pytest.approx(0.001)
    # A missing sigma falls back to fallback_sigma.
    fb = model.DEFAULT_PARAMS.fallback_sigma
    assert float(model.prob_up(100.0, 100.01, 400.0, np.nan)) == pytest.approx(
        phi(math.log(1.0001) / (fb * 20.0)), abs=2e-7)
    # Vectorised over arrays of any shape.
    q = model.prob_up(np.full((2, 3), 100.0), np.full((2, 3), 101.0), np.array([400.0, 100.0, 0.0]), 0.001)
    assert q.shape == (2, 3) and q[0, 0] == pytest.approx(phi(z), abs=2e-7)


def test_norm_cdf_matches_erf():
    x = np.linspace(-6, 6, 241)
    ref = np.array([phi(v) for v in x])
    assert np.max(np.abs(model.norm_cdf(x) - ref)) < 2e-7
    assert model.norm_cdf(np.array([np.inf, -np.inf])).tolist() == [1.0, 0.0]


def test_evaluate_matches_the_vectorised_parts_and_is_fast():
    prices = linear_prices()
    out = model.evaluate(TIMES, prices, NOW, NOW - 300.0, 900.0)
    f = model.features(TIMES, prices, NOW)
    assert out["price"] == pytest.approx(140.0)
    assert out["open_price"] == pytest.approx(137.0)                   # the price at the window start
    assert out["seconds_left"] == pytest.approx(600.0)
    assert out["sigma"] == pytest.approx(one(f, "vol_long"))
    assert out["prob_up"] == pytest.approx(phi(math.log(140 / 137) / (one(f, "vol_long") * math.sqrt(600))),
                                           abs=1e-4)
    assert out["direction"] == "UP" and out["confidence"] == 95.0
    assert out["basis"]["momentum_30s"] == pytest.approx(round(0.3 / 139.7 * 100, 4))
    assert out["basis"]["trend_bias"] == "strong_up"
    assert set(out) >= {"direction", "confidence", "score", "basis", "price", "open_price", "prob_up", "sigma",
                        "seconds_left"}
    # The live engine calls this once a second with an hour of 1-s ticks: it must take milliseconds.
    t = time.perf_counter()
    for _ in range(50):
        model.evaluate(TIMES, prices, NOW, NOW - 300.0, 900.0, open_price=137.0)
    assert (time.perf_counter() - t) / 50 < 0.02


def test_gap_gives_nan_never_a_value_across_it():
    times = np.concatenate((np.arange(0.0, 2000.0), np.arange(2400.0, 4001.0)))   # a 400-s hole
    prices = 100.0 + 0.01 * times
    f = model.features(times, prices, 4000.0)
    assert np.isnan(one(f, "vol_long")) and np.isnan(one(f, "macro")) and np.isnan(one(f, "zscore"))
    assert np.isfinite(one(f, "momentum_30s")) and np.isfinite(one(f, "micro"))
    assert np.isfinite(one(f, "vol_short"))                     # 900 s back stays after the hole
    f2 = model.features(times, prices, 2500.0)
    assert np.isnan(one(f2, "micro")) and np.isfinite(one(f2, "momentum_60s"))
    # Not enough history is NaN as well; evaluate still answers, but publishes no prob_up on a guessed
    # volatility (model.prob_up's fallback_sigma is for the backtest's first hour, not for trading)
    out = model.evaluate(times[:100], prices[:100], 99.0, 0.0, 900.0)
    assert out["sigma"] is None and out["prob_up"] is None and out["basis"]["trend_bias"] == "unknown"
    assert out["price"] == prices[99]


def test_lookahead_changing_the_future_changes_nothing_before():
    rng = np.random.default_rng(7)
    times = np.arange(0.0, 8000.0)
    prices = 100.0 * np.exp(np.cumsum(rng.standard_normal(times.size) * 3e-4))
    nows = np.arange(3700.0, 6001.0, 37.0)
    base = model.features(times, prices, nows)
    qb = model.prob_up(prices[3700], model.price_at(times, prices, nows), 900.0,
                       model.realized_sigma(times, prices, nows))
    t_cut = 5000.0
    changed = prices.copy()
    changed[times > t_cut] *= np.exp(rng.standard_normal(int((times > t_cut).sum())) * 0.01)
    after = model.features(times, changed, nows)
    qa = model.prob_up(prices[3700], model.price_at(times, changed, nows), 900.0,
                       model.realized_sigma(times, changed, nows))
    before = nows <= t_cut
    for k in base:
        np.testing.assert_array_equal(base[k][before], after[k][before], err_msg=k)
        assert not np.allclose(base[k][~before], after[k][~before], equal_nan=True), k
    np.testing.assert_array_equal(qb[before], qa[before])


def test_prob_up_is_calibrated_on_random_walk_windows():
    """Simulated windows with a known volatility: mean |pred - freq| across 10 bins < 0.02."""
    rng = np.random.default_rng(11)
    n = 200_000
    sigma = 0.0008 / math.sqrt(60.0)                 # per sqrt(second)
    elapsed = rng.integers(1, 15, n) * 60.0
    left = 900.0 - elapsed
    x_now = rng.standard_normal(n) * sigma * np.sqrt(elapsed)
    x_end = x_now + rng.standard_normal(n) * sigma * np.sqrt(left)
    up = (x_end >= 0).astype(float)
    q = model.prob_up(100.0, 100.0 * np.exp(x_now), left, sigma)
    idx = np.minimum((q * 10).astype(int), 9)
    gaps = [abs(q[idx == b].mean() - up[idx == b].mean()) for b in range(10) if (idx == b).sum() > 100]
    assert len(gaps) == 10
    assert float(np.mean(gaps)) < 0.02
    assert ece(q, up) < 0.01
    # A mis-scaled model is caught by the same measure (the test can fail).
    bad = model.prob_up(100.0, 100.0 * np.exp(x_now), left, sigma / 3)
    assert ece(bad, up) > 0.05
