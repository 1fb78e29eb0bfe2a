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
