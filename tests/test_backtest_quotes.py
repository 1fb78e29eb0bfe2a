"""`python -m backtest --quotes`: the edge strategy against recorded quotes (backtest/quotes.py).

End to end: quotes recorded from the replica by the real recorder, candles in a tmp file, the
command's report checked against core.fees by hand. By hand: which instant trades, which quote is
used, too little depth, a late quote, a window without candles, lines that are not quotes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from backtest import cli
from backtest.engine import StrategySettings, compute_run
from backtest.quotes import evaluate, parse_row, quote_at, span_seconds
from core import fees
from core.config import load_config
from core.window_grid import iso_utc, window_slug, window_start
from executor.quote_recorder import QuoteRecorder
from signal_engine import model
from signal_engine.history import Candles
from tests.model_support import random_walk_candles, write_csv
from tests.replica_support import start_replica
from tests.waiting import wait_for


def candles_around(start: int, seed: int = 5, minutes_before: int = 180, minutes_after: int = 30) -> Candles:
    return random_walk_candles(minutes_before + minutes_after, seed=seed, start=float(start - 60 * minutes_before))


def outcome_up(c: Candles, start: int, length: int) -> bool:
    i = int(np.nonzero(c.open_time == start)[0][0])
    return bool(c.close[i + length // 60 - 1] >= c.open[i])


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[Path, int, list[dict]]:
    """A short run of the real recorder against the replica (60 s windows), its clock set to the
    start of the next window (listed ahead, as the real site lists them), so the quotes of the
    window's first seconds, the decision instant of a 60 s window, are recorded."""
    tmp = tmp_path_factory.mktemp("recorded")
    with start_replica(tmp / "replica", window_seconds=60, assets=("BTC",)) as rep:
        env = {"MODE": "demo", "WINDOW_SECONDS": "60", "ASSETS": "BTC", "QUOTES": "1",
               "GAMMA_URL": rep.base_url + "/gamma", "CLOB_URL": rep.base_url + "/clob",
               "STATE_DIR": str(tmp / "state"), "LOG_DIR": str(tmp / "logs"), "PROFILE_DIR": str(tmp / "profiles")}
        cfg = load_config(env, dotenv_path=tmp / "no.env")
        start = window_start(time.time(), 60) + 60
        offset = start - time.time()
        rec = QuoteRecorder(cfg, clock=lambda: time.time() + offset, interval=0.2).start()
        try:
            wait_for(lambda: rec.lines >= 3, 15, "three recorded quotes")
        finally:
            rec.stop()
    files = sorted((tmp / "logs" / "quotes").glob("*.jsonl"))
    rows = [json.loads(x) for f in files for x in f.read_text().splitlines()]
    return tmp / "logs" / "quotes", start, rows


@pytest.mark.parametrize("up_wins", [True, False])
def test_the_command_trades_the_recorded_ask_and_settles_from_the_candles(recorded, tmp_path, capsys, up_wins):
    qdir, start, rows = recorded
    c = candles_around(start)
    i = int(np.nonzero(c.open_time == start)[0][0])
    c.close[i] = c.open[i] + (25.0 if up_wins else -25.0)
    write_csv(tmp_path / "btcusdt_1m_test.csv", c)
    args = ["--quotes", str(qdir), "--data", str(tmp_path / "btcusdt_1m_test.csv"), "--out", str(tmp_path / "out"),
            "--entry-end", "48"]
    assert cli.main([*args, "--min-edge", "-1"]) == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "out" / "quotes_report.json").read_text())
    (trade,) = report["trades"]
    first = rows[0]
    assert first["seconds_into_window"] < 5 and trade["quote_seconds"] == first["seconds_into_window"]
    side = trade["side"].lower()
    assert trade["price"] == first[f"{side}_ask_for_size"]["avg_price"] and trade["minute"] == 0
    assert trade["prob_up"] == 0.5        # at the open the model's fair value is a coin
    bought = fees.buy(first["size"], trade["price"])
    won = (trade["side"] == "UP") == up_wins
    assert trade["won"] is won and trade["pnl"] == pytest.approx((bought.shares if won else 0.0) - first["size"])
    assert trade["edge"] == pytest.approx(fees.edge(0.5, trade["price"]), abs=1e-6)
    total = report["total"]
    assert (total["trades"], total["wins"], total["hit_rate"]) == (1, int(won), float(won))
    assert total["pnl"] == pytest.approx(trade["pnl"], abs=1e-4)
    assert total["fees"] == pytest.approx(bought.fee_usd, abs=1e-3)
    assert report["assets"]["BTC"]["evaluated"] == 1 and report["lines"] == len(rows) and report["bad_lines"] == 0
    assert "trades 1, hit rate" in out and "P&L net of fees" in out and "average edge" in out
    # at the default MIN_EDGE, a coin's fair value against these asks is no trade
    assert cli.main([*args, "--min-edge", "0.03", "--quiet"]) == 0
    assert json.loads((tmp_path / "out" / "quotes_report.json").read_text())["total"]["trades"] == 0


def _row(start: int, t: float, up: float | None, down: float | None, size: float = 10.0) -> dict:
    def fill(p):
        return None if p is None else {"avg_price": p, "worst_price": p, "shares": round(size / p, 4)}
    return {"ts": iso_utc(start + t), "asset": "BTC", "window_start": start, "slug": window_slug("BTC", start),
            "seconds_into_window": t, "size": size, "up_bid": None, "up_ask": up, "down_bid": None, "down_ask": down,
            "up_ask_for_size": fill(up), "down_ask_for_size": fill(down)}


def test_the_first_instant_with_an_edge_and_a_usable_quote_trades(tmp_path):
    start = 1_700_000_100 // 900 * 900
    c = candles_around(start, seed=11, minutes_after=20)
    k = int(np.nonzero(c.open_time == start + 120)[0][0])     # the candle closing at minute 3
    c.close[k:] *= 1.015                                       # a 1.5 % jump: prob_up near 1 from minute 3
    c.open[k + 1:] *= 1.015
    write_csv(tmp_path / "btcusdt_1m_x.csv", c)
    rows = [_row(start, t, 0.70, 0.70) for t in (0.4, 61.0, 120.0)]          # minutes 0-2: no edge at 0.70
    rows += [_row(start, 181.0, None, 0.70),                   # minute 3: Up too thin for the size
             _row(start, 247.0, 0.60, 0.70),                   # minute 4: no quote within 5 s (this one is late)
             _row(start, 301.5, 0.60, 0.70),                   # minute 5: trade Up at 0.60
             _row(start, 360.0, 0.55, 0.70)]                   # minute 6: a better price, but already traded
    rows += [_row(start + 900, 2.0, 0.40, 0.40)]               # the next window: its candles are cut short
    lines = [json.dumps(r) for r in rows] + ["not json", json.dumps({"asset": "BTC"}),
                                             json.dumps({**rows[0], "slug": window_slug("ETH", start)})]
    qfile = tmp_path / "quotes-2023-11-14.jsonl"
    qfile.write_text("\n".join(lines) + "\n")
    report = evaluate([tmp_path], [tmp_path / "btcusdt_1m_x.csv"], cli.asset_of, StrategySettings(min_edge=0.03))
    assert report["lines"] == len(rows) + 2 and report["bad_lines"] == 2
    a = report["assets"]["BTC"]
    assert (a["windows"], a["evaluated"], a["without_candles"]) == (2, 1, 1)
    assert a["instants_without_quote"] == 1                    # minute 4
    (trade,) = report["trades"]
    run = compute_run(c)
    row = int(np.nonzero(run.windows.start == start)[0][0])
    q5 = float(run.prob(model.DEFAULT_PARAMS)[row, 5])
    assert (trade["minute"], trade["side"], trade["price"], trade["quote_seconds"]) == (5, "UP", 0.60, 301.5)
    assert trade["prob_up"] == pytest.approx(q5, abs=1e-6) and q5 > 0.9
    assert trade["edge"] == pytest.approx(fees.edge(q5, 0.60), abs=1e-6)
    won = outcome_up(c, start, 900)
    assert trade["won"] is won
    assert trade["pnl"] == pytest.approx((fees.buy(10.0, 0.60).shares if won else 0.0) - 10.0, abs=1e-6)
    # a higher bar than the edge: nothing
    high = evaluate([qfile], [tmp_path / "btcusdt_1m_x.csv"], cli.asset_of, StrategySettings(min_edge=0.5))
    assert high["total"]["trades"] == 0 and high["total"]["hit_rate"] is None


def test_rows_quotes_and_spans():
    start = 1_700_000_100 // 900 * 900
    assert (span_seconds("btc-updown-15m-1"), span_seconds("btc-updown-30s-1"), span_seconds("btc-updown-x-1")) == \
        (900, 30, None)
    key, q = parse_row(_row(start, 12.5, None, 0.4))
    assert key == ("BTC", start, 900) and (q.t, q.up, q.down, q.size) == (12.5, None, 0.4, 10.0)
    assert parse_row({**_row(start, 900.0, 0.5, 0.5)}) is None            # outside the window
    assert parse_row({**_row(start, 1.0, 0.5, 0.5), "size": 0}) is None
    assert parse_row({**_row(start, 1.0, 0.5, 0.5), "window_start": start + 900}) is None
    quotes = [parse_row(_row(start, t, 0.5, 0.5))[1] for t in (1.0, 5.0, 12.0)]
    assert [quote_at(quotes, t).t for t in (0.0, 1.0, 1.5)] == [1.0, 1.0, 5.0]   # at or after, never before
    assert quote_at(quotes, 6.0) is None and quote_at(quotes, 13.0) is None    # 6 s late; none after


def test_the_command_refuses_missing_quotes(tmp_path, capsys):
    write_csv(tmp_path / "btcusdt_1m_t.csv", candles_around(1_700_000_100 // 900 * 900))
    assert cli.main(["--quotes", str(tmp_path / "nope"), "--data", str(tmp_path / "btcusdt_1m_t.csv"),
                     "--out", str(tmp_path / "o")]) == 2
    assert "do not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli.main(["--quotes", str(tmp_path / "empty"), "--data", str(tmp_path / "btcusdt_1m_t.csv"),
                     "--out", str(tmp_path / "o")]) == 2
    assert "no recorded quote" in capsys.readouterr().err and not (tmp_path / "o" / "quotes_report.json").exists()
