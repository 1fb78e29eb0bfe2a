"""The live engine's one-instant shortcuts in prob_up v2 give the array path's numbers (the engine
computes them on every streamed price; the backtest uses the array path)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_vol_model import T0, toy_model

CASES = [(T0, 900.0), (T0 + 0.25, 899.75), (T0 + 59.999, 0.001), (T0 + 60.0, 0.0), (T0 + 12.5, -3.0),
         (T0 + 3600.0 * 167 + 3540.5, 900.0),            # across the end of the week (hour 167 -> 0)
         (T0 - 17.3, 61.0), (T0 + 7 * 86400 + 0.001, 899.999)]


@pytest.mark.parametrize("now, left", CASES)
def test_horizon_of_one_instant_equals_the_array_path(now, left):
    model = toy_model()
    one = model.horizon_s2(now, left)
    many = model.horizon_s2(np.array([now, now + 1.0]), np.array([left, left]))
    assert one.shape == (1,)
    assert one[0] == pytest.approx(many[0], rel=1e-12, abs=1e-15)


def test_horizon_of_one_instant_on_random_instants():
    rng = np.random.default_rng(5)
    model = toy_model()
    now = T0 + rng.uniform(0, 14 * 86400, 400)
    left = rng.uniform(-5, 905, 400)
    many = model.horizon_s2(now, left)
    one = np.array([model.horizon_s2(float(a), float(b))[0] for a, b in zip(now, left, strict=True)])
    np.testing.assert_allclose(one, many, rtol=1e-12, atol=1e-15)
    assert (many > 0).sum() > 350          # the instants are mostly with time left: not all zeros


@pytest.mark.parametrize("window_s", [60.0, 900.0])
def test_the_engine_opens_every_window_length_at_exactly_one_half(window_s):
    """The late-window shift is 0 at the open of the engine's own window length (model.evaluate passes
    it on; a 60 s demo window once opened at T_nu(kappa) ~ 0.507)."""
    from signal_engine import model

    vm = toy_model(kappa=0.3)
    start = T0
    times = np.arange(start - 13 * 3600, start + 0.5, 1.0)
    prices = 90_000.0 * np.exp(np.cumsum(np.random.default_rng(3).normal(0, 2e-5, times.size)))
    at_open = model.evaluate(times, prices, start, start, window_s, open_price=float(prices[-1]), vol=vm)
    assert at_open["model"] == vm.name and at_open["prob_up"] == 0.5
    late = model.evaluate(times, prices, start + window_s - 30, start, window_s, open_price=float(prices[-1]),
                          vol=vm, reference=float(prices[-1]))
    assert late["prob_up"] > 0.5                     # at the strike late in the window: the shift shows


@pytest.mark.parametrize("nu, kappa", [(4.0, 0.0), (4.0, 0.3), (None, -0.2), (7.5, 0.12)])
def test_prob_and_sigma_of_one_instant_equal_the_array_path(nu, kappa):
    """The engine's float path (every streamed price) against prob_up / sigma_per_sqrt_s, on random instants
    of a week, prices around the strike, every part of a window (open, ramp, held below a minute, closed)."""
    vm = toy_model(nu=nu, kappa=kappa)
    rng = np.random.default_rng(11)
    window_s = 900.0
    for _ in range(300):
        now = T0 + float(rng.uniform(0, 7 * 86400))
        left = float(rng.choice([window_s, 0.0, float(rng.uniform(0, 75)), float(rng.uniform(0, window_s))]))
        strike = 90_000.0
        price = float(strike * np.exp(rng.normal(0, 0.002))) if rng.uniform() < 0.9 else strike
        base = float(np.exp(rng.uniform(-14, -9)))
        p, sigma = vm.prob_and_sigma_one(strike, price, now, left, base, window_s=window_s)
        want_p = float(np.ravel(vm.prob_up(strike, price, now, left, base, window_s=window_s))[0])
        assert p == pytest.approx(want_p, rel=1e-12, abs=1e-15), (now, left, price, base)
        want_sigma = vm.sigma_per_sqrt_s(now, left, base)
        if left > 0:
            assert sigma == pytest.approx(want_sigma, rel=1e-12)
        else:
            assert np.isnan(sigma) and np.isnan(want_sigma)
    # the edges: the open at the strike is exactly 1/2; no time left: ties go Up, below is Down (clipped)
    assert vm.prob_and_sigma_one(90_000.0, 90_000.0, T0, window_s, 1e-6, window_s)[0] == 0.5
    assert vm.prob_and_sigma_one(90_000.0, 90_000.0, T0, 0.0, 1e-6, window_s)[0] == 1.0 - 0.001
    assert vm.prob_and_sigma_one(90_000.0, 89_999.0, T0, 0.0, 1e-6, window_s)[0] == 0.001


def test_the_horizon_memo_follows_the_minute_and_the_end():
    """The kept sum of the whole minutes after the current one is per (minute, end): a new minute or a new
    window's end never reuses the old sum."""
    vm = toy_model()
    for now, left in [(T0 + 10.0, 890.0), (T0 + 70.0, 830.0), (T0 + 70.0, 200.0), (T0 + 3600.0 * 5 + 1.0, 899.0)]:
        assert vm.horizon_s2(now, left)[0] == pytest.approx(
            vm.horizon_s2(np.array([now, now]), np.array([left, left]))[0], rel=1e-12)


def test_gap_free_with_the_gaps_found_once_equals_finding_them_each_time():
    from signal_engine import model

    rng = np.random.default_rng(2)
    times = np.cumsum(rng.choice([0.5, 1.0, 30.0, 200.0], size=5000, p=[0.6, 0.38, 0.015, 0.005]))
    gaps = model.gap_ends(times, model.DEFAULT_PARAMS.max_gap_s)
    assert gaps.size > 5
    now = rng.uniform(times[0], times[-1] + 100, 500)
    for lookback in (30.0, 900.0, 3600.0):
        np.testing.assert_array_equal(model.gap_free(times, now, lookback, model.DEFAULT_PARAMS.max_gap_s, gaps),
                                      model.gap_free(times, now, lookback, model.DEFAULT_PARAMS.max_gap_s))
