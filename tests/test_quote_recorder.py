"""The quote recorder (executor/quote_recorder.py) against the replica's real CLOB/Gamma over HTTP:
the recorded line, day files and their retention, the size cap, API faults counted and logged once,
a disk error that stops recording and is retried, a stop that never waits for a slow API."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from core.config import ConfigError, load_config
from core.exit_codes import ExitStatus
from core.market_shapes import Book, Level
from core.window_grid import iso_utc, parse_iso_utc, utc_day, window_slug
from executor import quote_recorder
from executor.quote_recorder import QuoteRecorder, prune, quote_line
from executor.services import StopFlag
from executor.worker import Worker
from tests.replica_support import start_replica
from tests.waiting import wait_for

W = 20
FIELDS = {"ts", "asset", "window_start", "slug", "seconds_into_window", "size", "up_bid", "up_ask", "down_bid",
          "down_ask", "up_ask_for_size", "down_ask_for_size"}
FAST = {"interval": 0.2}    # production records once a second; the tests tick faster


@pytest.fixture(scope="module")
def rep(tmp_path_factory):
    r = start_replica(tmp_path_factory.mktemp("replica"), window_seconds=W, assets=("BTC", "ETH"))
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture
def cfg_for(rep, tmp_path):
    def make(**over: str):
        env = {"MODE": "demo", "WINDOW_SECONDS": str(W), "ASSETS": "BTC,ETH", "QUOTES": "1",
               "GAMMA_URL": rep.base_url + "/gamma", "CLOB_URL": rep.base_url + "/clob", "MARKET_DATA_TIMEOUT": "5",
               "STATE_DIR": str(tmp_path / "state"), "LOG_DIR": str(tmp_path / "logs"),
               "PROFILE_DIR": str(tmp_path / "profiles"), **over}
        return load_config(env, dotenv_path=tmp_path / "no.env")
    try:
        yield make
    finally:
        rep.clear_faults()


def rows(cfg) -> list[dict]:
    """The lines recorded (the planted files of earlier days are of 2025)."""
    out = []
    for f in sorted((cfg.log_dir / "quotes").glob("quotes-*.jsonl")):
        if f.name.startswith("quotes-2025-"):
            continue
        out += [json.loads(line) for line in f.read_text().splitlines()]
    return out


def test_records_each_asset_each_tick_into_utc_day_files_and_keeps_the_newest_days(cfg_for):
    cfg = cfg_for(QUOTES_KEEP_DAYS="3")
    qdir = cfg.log_dir / "quotes"
    qdir.mkdir(parents=True)
    old = [qdir / f"quotes-2025-01-0{d}.jsonl" for d in range(1, 6)]
    for p in old:
        p.write_text("{}\n")
        Path(str(p) + ".lock").write_text("")
    (qdir / "notes.txt").write_text("mine")
    rec = QuoteRecorder(cfg, **FAST).start()
    try:
        wait_for(lambda: rec.lines >= 6, 15, "six recorded lines")
    finally:
        rec.stop()
    got = rows(cfg)
    assert len(got) >= 6 and {r["asset"] for r in got} == {"BTC", "ETH"}
    for r in got:
        assert set(r) == FIELDS
        ts = parse_iso_utc(r["ts"])
        assert r["slug"] == window_slug(r["asset"], r["window_start"], W) and r["window_start"] % W == 0
        assert r["seconds_into_window"] == pytest.approx(ts - r["window_start"], abs=0.002)
        assert 0 <= r["seconds_into_window"] < W and r["size"] == cfg.position_size
        assert 0 < r["up_ask"] < 1 and 0 < r["down_ask"] < 1
        assert r["up_bid"] is None or r["up_bid"] < r["up_ask"]
        for side in ("up", "down"):
            fill = r[f"{side}_ask_for_size"]       # null when the book is too thin for the size
            assert fill is None or r[f"{side}_ask"] - 1e-9 <= fill["avg_price"] <= fill["worst_price"] + 1e-9
            assert fill is None or fill["shares"] * fill["avg_price"] == pytest.approx(cfg.position_size, rel=1e-3)
    assert any(r[f"{side}_ask_for_size"] for r in got for side in ("up", "down"))
    per_asset = [r["ts"] for r in got if r["asset"] == "BTC"]
    assert per_asset == sorted(per_asset) and len(set(per_asset)) == len(per_asset)
    # the day file is the UTC day of its lines; the two newest old days are kept (3 with today's)
    today = {f"quotes-{utc_day(parse_iso_utc(r['ts']))}.jsonl" for r in got}
    left = sorted(p.name for p in qdir.iterdir())
    assert [n for n in left if n.endswith(".jsonl")] == sorted(["quotes-2025-01-04.jsonl", "quotes-2025-01-05.jsonl",
                                                                *today])
    assert "quotes-2025-01-01.jsonl.lock" not in left and "quotes-2025-01-05.jsonl.lock" in left
    assert "notes.txt" in left


def test_quote_line_from_a_book():
    up = Book("1", bids=(Level(0.48, 10),), asks=(Level(0.50, 10), Level(0.52, 100)))
    down = Book("2", bids=(), asks=(Level(0.51, 5),))
    line = quote_line("BTC", 900, "btc-updown-15m-900", 912.3456, 10.0, up, down)
    assert line["ts"] == iso_utc(912.3456) and line["seconds_into_window"] == 12.345
    assert (line["up_bid"], line["up_ask"], line["down_bid"], line["down_ask"]) == (0.48, 0.50, None, 0.51)
    # $10: $5 at 0.50 (10 shares) + $5 at 0.52 (9.6154 shares)
    assert line["up_ask_for_size"] == {"avg_price": round(10 / (10 + 5 / 0.52), 6), "worst_price": 0.52,
                                       "shares": round(10 + 5 / 0.52, 4)}
    assert line["down_ask_for_size"] is None          # $2.55 of asks: too little depth for $10


def test_prune_counts_todays_file_and_leaves_other_files(tmp_path):
    for d in range(1, 10):
        (tmp_path / f"quotes-2026-03-0{d}.jsonl").write_text("{}\n")
    (tmp_path / "quotes-latest.jsonl").write_text("")
    removed = prune(tmp_path, 4, tmp_path / "quotes-2026-03-10.jsonl")
    assert sorted(p.name for p in removed) == [f"quotes-2026-03-0{d}.jsonl" for d in range(1, 7)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["quotes-2026-03-07.jsonl", "quotes-2026-03-08.jsonl",
                                                          "quotes-2026-03-09.jsonl", "quotes-latest.jsonl"]
    assert prune(tmp_path / "missing", 4) == []


def test_a_full_file_stops_that_days_recording_once(cfg_for, caplog):
    cfg = cfg_for(ASSETS="BTC")
    caplog.set_level(logging.INFO, logger="executor.quotes")
    rec = QuoteRecorder(cfg, max_file_bytes=450, **FAST).start()
    try:
        wait_for(lambda: "the cap" in caplog.text, 15, "the size cap's log line")
        size = sum(p.stat().st_size for p in (cfg.log_dir / "quotes").glob("*.jsonl"))
        lines, ticks = rec.lines, rec.ticks
        wait_for(lambda: rec.ticks >= ticks + 3, 10, "three more ticks")
    finally:
        rec.stop()
    assert lines == 2 and rec.lines == 2          # 250-360 bytes a line: 2 lines pass 450 bytes
    assert sum(p.stat().st_size for p in (cfg.log_dir / "quotes").glob("*.jsonl")) == size
    assert caplog.text.count("the cap") == 1


@pytest.mark.parametrize("fault, name", [("api_unavailable", "ApiUnavailable"), ("api_geoblock", "ApiForbidden"),
                                         ("api_html", "ApiMalformed")])
def test_api_errors_are_counted_logged_once_and_recording_resumes(rep, cfg_for, caplog, fault, name):
    cfg = cfg_for(ASSETS="BTC")
    rep.faults({"kind": fault, "mode": "persistent"})
    rec = QuoteRecorder(cfg, **FAST).start()
    try:
        wait_for(lambda: rec.api_errors >= 4, 15, "four API errors")
        assert rec.lines == 0 and rec.running
        warnings = [r for r in caplog.records if r.name == "executor.quotes" and r.levelno == logging.WARNING]
        assert len(warnings) == 1 and name in warnings[0].getMessage() and "trading is not affected" in caplog.text
        rep.clear_faults()
        wait_for(lambda: rec.lines >= 2, 15, "recording again once the API answers")
    finally:
        rec.stop()
    assert len(rows(cfg)) == rec.lines


def test_a_disk_error_stops_recording_and_it_is_retried(cfg_for, caplog):
    cfg = cfg_for(ASSETS="BTC")
    blocker = cfg.log_dir / "quotes"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the quotes folder should be")
    caplog.set_level(logging.INFO, logger="executor.quotes")
    rec = QuoteRecorder(cfg, disk_retry=0.6, **FAST).start()
    try:
        wait_for(lambda: rec.disk_errors >= 1, 15, "a disk error")
        assert rec.lines == 0 and "recording stops and is retried" in caplog.text
        errors_then = rec.disk_errors
        blocker.unlink()
        wait_for(lambda: rec.lines >= 1, 15, "recording after the retry")
    finally:
        rec.stop()
    assert rec.disk_errors <= errors_then + 1 and "recording again" in caplog.text
    assert len(rows(cfg)) == rec.lines


def test_stop_does_not_wait_for_a_slow_api(rep, cfg_for):
    cfg = cfg_for(ASSETS="BTC")
    rep.faults({"kind": "api_slow", "mode": "persistent", "ms": 2000})
    rec = QuoteRecorder(cfg, **FAST).start()
    try:
        wait_for(lambda: any(f["fired"] for f in rep.faults()), 10, "a request held by the slow API")
        t0 = time.monotonic()
        rec.stop()
        assert time.monotonic() - t0 < quote_recorder.STOP_JOIN_S + 0.5
    finally:
        rep.clear_faults()
        wait_for(lambda: not rec.running, 15, "the recorder's thread ending after its request")


def test_quotes_config_defaults_on_in_paper_off_in_demo(tmp_path):
    base = {"STATE_DIR": str(tmp_path), "LOG_DIR": str(tmp_path), "PROFILE_DIR": str(tmp_path)}
    demo = load_config({**base, "MODE": "demo"}, dotenv_path=tmp_path / "none", check_dirs=False)
    paper = load_config({**base, "MODE": "paper"}, dotenv_path=tmp_path / "none", check_dirs=False)
    assert (demo.quotes, paper.quotes, paper.quotes_keep_days) == (False, True, 14)
    assert quote_recorder.start(demo) is None
    off = load_config({**base, "MODE": "paper", "QUOTES": "0"}, dotenv_path=tmp_path / "none", check_dirs=False)
    assert off.quotes is False
    for var, value in (("QUOTES", "sometimes"), ("QUOTES_KEEP_DAYS", "0")):
        with pytest.raises(ConfigError, match=var):
            load_config({**base, "MODE": "paper", var: value}, dotenv_path=tmp_path / "none", check_dirs=False)


def test_the_paper_worker_starts_the_recorder_and_stops_it_on_shutdown(rep, tmp_path):
    """executor/worker.py's wiring: QUOTES is on in paper; the recorder starts before the venue opens
    and stops with the worker (here the venue refuses at once: its browser vanished after the config
    check)."""
    browser = tmp_path / "browser"
    browser.write_text("#!/bin/sh\nexit 1\n")
    browser.chmod(0o755)
    env = {"MODE": "paper", "ASSETS": "BTC", "GAMMA_URL": rep.base_url + "/gamma", "CLOB_URL": rep.base_url + "/clob",
           "BROWSER_PATH": str(browser), "METAMASK_PASSWORD": "unused", "STATE_DIR": str(tmp_path / "state"),
           "LOG_DIR": str(tmp_path / "logs"), "PROFILE_DIR": str(tmp_path / "profiles")}
    cfg = load_config(env, dotenv_path=tmp_path / "no.env")
    browser.chmod(0o644)            # not executable any more: the venue refuses before launching anything
    worker = Worker(cfg, stop=StopFlag())
    assert worker.run() == ExitStatus.REFUSED and isinstance(worker.quotes, QuoteRecorder)
    assert worker.quotes.cfg is cfg and worker.quotes._thread is not None and not worker.quotes.running
