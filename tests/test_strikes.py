"""Strike and reference (issue 14): the shared strikes file (core/strikes.py), the engine's strike and
reference in signal.json, the exchange-Chainlink basis, and the executor's strike rule."""

from __future__ import annotations

import json
import logging
import math
import os

import numpy as np
import pytest

from core import strikes
from core.signal_doc import SignalDoc, SignalWindow
from executor import decision
from signal_engine import model
from signal_engine.feeds import FallbackChain, SimFeed
from signal_engine.publisher import SignalEngine
from signal_engine.reference import MAX_BASIS, ReferenceTracker
from tests.test_signal_engine import FakeClock, make_cfg

W0 = 1_767_225_600


# ---- the file ----------------------------------------------------------------------------------


def test_write_read_round_trip_newest_window_wins_and_bad_input_writes_nothing(tmp_path):
    s = strikes.write_strike(tmp_path, "btc", W0, 97000.12, "page", seen_at=W0 + 31.5)
    assert s == strikes.Strike("BTC", W0, 97000.12, "page", W0 + 31.5)
    path = strikes.strikes_path(tmp_path)
    assert oct(path.stat().st_mode & 0o777) == "0o600" and not list(tmp_path.glob(".strikes*.tmp"))
    got, problem = strikes.read_strikes(tmp_path)
    assert problem is None and got == {"BTC": s}
    strikes.write_strike(tmp_path, "ETH", W0, 3400.5, "market_data", seen_at=W0 + 2)
    strikes.write_strike(tmp_path, "BTC", W0 + 900, 97100.0, "page", seen_at=W0 + 931)
    strikes.write_strike(tmp_path, "BTC", W0, 96000.0, "page", seen_at=W0 + 940)      # an older window: ignored
    got, _ = strikes.read_strikes(tmp_path)
    assert got["BTC"].window_start == W0 + 900 and got["BTC"].price_to_beat == 97100.0
    assert got["ETH"].price_to_beat == 3400.5
    before = path.read_bytes()
    for bad in (dict(price_to_beat=0.0), dict(price_to_beat=float("nan")), dict(window_start=W0 + 0.5),
                dict(source="guess"), dict(asset="BTC/USD")):
        args = {"asset": "BTC", "window_start": W0 + 1800, "price_to_beat": 1.0, "source": "page", **bad}
        with pytest.raises(ValueError, match="strike:"):
            strikes.write_strike(tmp_path, **args)
    assert path.read_bytes() == before


def test_reader_follows_changes_and_treats_a_corrupt_file_as_unknown(tmp_path):
    reader = strikes.StrikeReader(tmp_path)
    assert reader.get("BTC", W0) is None and reader.problem == "missing"
    strikes.write_strike(tmp_path, "BTC", W0, 97000.0, "page", seen_at=W0 + 30)
    assert reader.get("BTC", W0).price_to_beat == 97000.0 and reader.get("BTC", W0 + 900) is None
    strikes.write_strike(tmp_path, "BTC", W0, 97000.5, "market_data", seen_at=W0 + 40)    # the venue corrected it
    assert reader.get("btc", W0).price_to_beat == 97000.5
    strikes.strikes_path(tmp_path).write_text('{"format": 1, "assets": {"BTC": {"window_start": "x"}}')
    assert reader.get("BTC", W0) is None and reader.problem.startswith("corrupt")
    strikes.strikes_path(tmp_path).write_text(json.dumps({"format": 1, "assets": {
        "BTC": {"window_start": W0, "price_to_beat": -1, "source": "page", "seen_at": W0},
        "ETH": {"window_start": W0, "price_to_beat": 3000.0, "source": "page", "seen_at": W0}}}))
    os.utime(strikes.strikes_path(tmp_path), ns=(1, 1))               # a new mtime even on a coarse clock
    assert reader.get("BTC", W0) is None and reader.get("ETH", W0).price_to_beat == 3000.0


# ---- the engine ------------------------------------------------------------------------------------


def _engine(tmp_path, t):
    cfg = make_cfg(tmp_path, MODE="demo", WINDOW_SECONDS="900")
    clock = FakeClock(t)
    engine = SignalEngine(cfg, FallbackChain([SimFeed(7, clock=clock)]), mono=clock, wall=clock)
    engine.backfill()
    return engine, clock, cfg


def test_the_strike_arrives_late_changes_and_a_misread_is_refused(tmp_path, caplog):
    engine, clock, cfg = _engine(tmp_path, W0 + 10.0)
    doc = engine.tick(write=False)["BTC"]
    assert doc["strike_source"] == "feed_open" and doc["strike"] == doc["window"]["open_price"]
    assert doc["strike_age_s"] == 10.0 and doc["reference_source"] == "exchange+basis"
    assert doc["reference_price"] == doc["price"] and doc["basis_estimate"] is None
    clock.t += 25.0
    venue = doc["window"]["open_price"] * 1.0004                     # Chainlink's start, a little off the exchange's
    strikes.write_strike(cfg.state_dir, "BTC", W0, venue, "page", seen_at=clock.t - 2.0)
    doc = engine.tick(write=False)["BTC"]
    assert doc["strike_source"] == "venue" and doc["strike"] == venue and doc["strike_age_s"] == 2.0
    times, prices = engine.assets["BTC"].history.arrays()
    want = model.evaluate(times, prices, clock.t, W0, 900, open_price=venue, vol=engine.vol_models["BTC"])
    assert doc["prob_up"] == want["prob_up"]
    strikes.write_strike(cfg.state_dir, "BTC", W0, venue * 1.0001, "market_data", seen_at=clock.t)
    clock.t += 1.0
    assert engine.tick(write=False)["BTC"]["strike"] == venue * 1.0001
    caplog.set_level(logging.WARNING, logger="signal_engine")
    strikes.write_strike(cfg.state_dir, "BTC", W0, venue * 1.1, "page", seen_at=clock.t)
    for _ in range(3):
        clock.t += 1.0
        doc = engine.tick(write=False)["BTC"]
        assert doc["strike_source"] == "feed_open"
    assert len([r for r in caplog.records if "ignored (a misread?)" in r.getMessage()]) == 1


def test_started_mid_window_the_venue_strike_still_gives_a_prob(tmp_path):
    engine, clock, cfg = _engine(tmp_path, W0 + 400.0)
    # the window's start fell in a hole of the data (a restart across it): its open is unknown, while
    # the volatility (prob_up v2's EWMAs skip the missing minutes) is known
    st = engine.assets["BTC"]
    times, prices = st.history.arrays()
    keep = (times < W0 - 100.0) | (times > W0 + 100.0)
    st.history = type(st.history)(engine.history_keep_s)
    st.history.extend(times[keep].copy(), prices[keep].copy())
    doc = engine.tick(write=False)["BTC"]
    assert doc["prob_up"] is None and doc["strike_source"] is None and "window open unknown" in doc["reason"]
    assert doc["model"] == "prob_up-v2"
    strikes.write_strike(cfg.state_dir, "BTC", W0, doc["price"], "page", seen_at=clock.t)
    clock.t += 1.0
    doc = engine.tick(write=False)["BTC"]
    assert doc["strike_source"] == "venue" and doc["prob_up"] is not None and doc["reason"] is None


# ---- the basis -------------------------------------------------------------------------------------


def test_a_lagging_chainlink_stream_gives_the_basis_not_the_exchange_move():
    ex_t = W0 + np.arange(0.0, 600.0, 1.0)
    ex_p = 90000.0 * (1 + 0.0001 * np.arange(ex_t.size))             # a steady climb: 0.01 % a second
    ref = ReferenceTracker()
    true_basis = math.log(1.0003)
    for k in range(100, 590, 5):
        ts = float(ex_t[k])
        # observed at ts, received 3 s later: comparing with the exchange's *latest* price would read
        # the climb of those 3 s (0.03 %) as basis
        assert ref.on_chainlink("BTC", float(ex_p[k]) * 1.0003, ts, ts + 3.0, ex_t[:k + 4], ex_p[:k + 4])
    assert abs(ref.basis("BTC") - true_basis) < 1e-9
    now = float(ex_t[585]) + 4.0                                    # 1 s after the last one arrived
    r = ref.reference("BTC", float(ex_p[-1]), 0.2, now=now, max_age=5.0)
    assert r.source == "chainlink" and r.price == float(ex_p[585]) * 1.0003 and r.age_s == 4.0
    r = ref.reference("BTC", float(ex_p[-1]), 0.2, now=now + 10.0, max_age=5.0)      # the stream went quiet
    assert r.source == "exchange+basis" and abs(r.price - float(ex_p[-1]) * 1.0003) < 1e-6 and r.age_s == 0.2
    # old timestamps (a replay) and a price 50 % off are dropped, the estimate unchanged
    assert not ref.on_chainlink("BTC", 90000.0, float(ex_t[200]), now, ex_t, ex_p)
    assert not ref.on_chainlink("BTC", float(ex_p[-1]) * 1.5, now, now, ex_t, ex_p)
    assert abs(ref.basis("BTC") - true_basis) < 1e-9 and MAX_BASIS < 0.5
    assert ref.stats()["BTC"]["dropped"] == {"old_timestamp": 1, "implausible": 1}
    # the window's open in Chainlink's terms: its own last price at or before the start
    assert ref.strike_from_open("BTC", float(ex_t[302]), 90000.0) == float(ex_p[300]) * 1.0003
    assert ref.strike_from_open("ETH", W0, 3000.0) == 3000.0


# ---- the executor's rule ---------------------------------------------------------------------------


def _signal(source):
    return SignalDoc(timestamp=W0 + 400, asset="BTC", direction="UP", confidence=80, prob_up=0.9, price=1.0,
                     window=SignalWindow(W0, W0 + 900, 1.0, 500, None), stale=False, strike=1.0,
                     strike_source=source)


@pytest.mark.parametrize("after,source,elapsed,action", [
    (300.0, "feed_open", 299.0, "trade"),      # early: the feed's open is good enough
    (300.0, "feed_open", 400.0, "wait"),       # late: the venue's price to beat is required
    (300.0, None, 400.0, "wait"),
    (300.0, "venue", 400.0, "trade"),
    (None, "feed_open", 400.0, "trade"),       # STRIKE_REQUIRED_AFTER=off
])
def test_the_executor_refuses_late_trades_without_the_venue_strike(after, source, elapsed, action):
    p = decision.Params("edge", 60, 0.03, 0, 900, 3, 0.01, 0.99, 0.07, 1.0, after)
    sig = _signal(source)
    sig = SignalDoc(**{**sig.__dict__, "timestamp": W0 + elapsed})
    d = decision.decide(p, "BTC", W0, W0 + 900, W0 + elapsed, sig, None, 0.5, 0.5, False)
    assert d.action == action, d.reason
    if action == "wait":
        assert "strike unknown" in d.reason and "STRIKE_REQUIRED_AFTER=300" in d.reason


def test_the_rule_reads_the_documents_fields_and_the_config():
    from core.config import load_config

    assert load_config({"MODE": "paper"}, check_dirs=False).strike_required_after == 300.0
    assert load_config({}, check_dirs=False).strike_required_after is None                 # demo: off
    off = load_config({"MODE": "paper", "STRIKE_REQUIRED_AFTER": "off"}, check_dirs=False)
    assert off.strike_required_after is None
    raw = {**_signal("venue").to_dict(), "strike_source": "guess"}
    assert decision.signal_doc.parse(raw)[0].strike_source is None                        # unknown value: not venue
