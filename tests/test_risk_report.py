"""Accounting views: the per-day table and the equity-curve PNG from a generated trades.jsonl."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.window_grid import iso_utc, parse_iso_utc
from risk.report import build_report, format_table
from tests.risk_support import risk_cfg, write_trades

REPO = Path(__file__).resolve().parent.parent
D1 = parse_iso_utc("2026-01-01T00:00:00Z")
D2 = D1 + 86400
# (settle time, pnl, outcome): day 1 equity 5, -5, -2, -6 (peak 5: worst DD 11);
# day 2 equity -8, 2, -1 (the peak 5 carries over: worst DD 13).
SETTLED = [(D1 + 100, 5.0, "won"), (D1 + 200, -10.0, "lost"), (D1 + 300, 3.0, "won"), (D1 + 400, -4.0, "lost"),
           (D2 + 100, -2.0, "lost"), (D2 + 200, 10.0, "won"), (D2 + 300, -3.0, "lost")]


def trades_log() -> list[dict]:
    recs: list[dict] = []
    for i, (ts, pnl, outcome) in enumerate(SETTLED):
        base = {"mode": "demo", "asset": "BTC", "window_start": iso_utc(ts - 90), "trade_id": f"t{i}"}
        recs.append({**base, "ts": iso_utc(ts - 80), "event": "intent", "side": "UP", "amount": 10.0})
        recs.append({**base, "ts": iso_utc(ts - 79), "event": "filled", "price": 0.5, "shares": 19.65})
        # one line with epoch seconds for ts: readers accept both
        recs.append({**base, "ts": ts if i == 2 else iso_utc(ts), "event": "settled", "outcome": outcome,
                     "payout": 10.0 + pnl if pnl > 0 else 0.0, "fee": 0.1, "pnl": pnl})
    recs.append({**recs[2]})  # a duplicated settlement line (e.g. replayed after a crash): counted once
    recs.append({"ts": iso_utc(D2 + 400), "event": "filled", "mode": "demo", "asset": "ETH",
                 "window_start": iso_utc(D2 + 360), "trade_id": "open1"})
    return recs


def test_per_day_table_and_drawdown(tmp_path: Path):
    path = tmp_path / "trades.jsonl"
    write_trades(path, trades_log())
    with open(path, "a") as fh:
        fh.write('{"event": "settled", "pnl": 99, "ts": "2026-01-0')  # torn last line: ignored
    rep = build_report(path)
    d1, d2 = rep.days
    assert (d1.day, d1.trades, d1.wins, d1.losses) == ("2026-01-01", 4, 2, 2)
    assert d1.pnl == pytest.approx(-6.0) and d1.fees == pytest.approx(0.4) and d1.worst_drawdown == pytest.approx(11)
    assert (d2.day, d2.trades, d2.wins, d2.losses) == ("2026-01-02", 3, 1, 2)
    assert d2.pnl == pytest.approx(5.0) and d2.worst_drawdown == pytest.approx(13)
    tot = rep.total
    assert (tot.trades, tot.wins, tot.losses) == (7, 3, 4)
    assert tot.pnl == pytest.approx(-1.0) and tot.worst_drawdown == pytest.approx(13)
    assert rep.open_trades == ["open1"] and rep.skipped_lines == 1
    assert [round(p, 6) for _, p in rep.curve] == [5, -5, -2, -6, -8, 2, -1]
    table = format_table(rep)
    assert "1 filled trade(s) not settled yet: open1" in table


def test_report_command_prints_the_table_and_writes_the_png(iso_env, tmp_path: Path):
    cfg = risk_cfg(iso_env)
    write_trades(cfg.trades_path, trades_log())
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "risk", "report", "--out", str(out)], cwd=REPO, env=iso_env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line.split() for line in r.stdout.splitlines() if line[:4] in ("2026", "tota")}
    # day, trades, wins, losses, win%, fees, P&L, worst DD
    assert rows["2026-01-01"] == ["2026-01-01", "4", "2", "2", "50", "0.40", "-6.00", "11.00"]
    assert rows["2026-01-02"] == ["2026-01-02", "3", "1", "2", "33", "0.30", "+5.00", "13.00"]
    assert rows["total"] == ["total", "7", "3", "4", "43", "0.70", "-1.00", "13.00"]
    png = out / "equity.png"
    assert f"equity curve: {png}" in r.stdout
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_report_with_no_trades_yet(iso_env):
    cfg = risk_cfg(iso_env)
    r = subprocess.run([sys.executable, "-m", "risk", "report"], cwd=REPO, env=iso_env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "total             0" in r.stdout
    assert (cfg.log_dir / "equity.png").read_bytes()[:4] == b"\x89PNG"
