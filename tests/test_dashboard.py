"""The dashboard (`python -m dashboard`, a real process) and its /metrics: the page in real Chromium
shows what the state files say and a new signal within 2 s; its buttons refuse a request without
the token; a foreign Host header (DNS rebinding) and a cross-site Origin are refused; /metrics is
parsed back with prometheus-client's own parser and equals the journals."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright
from prometheus_client.parser import text_string_to_metric_families

from core.browser_discovery import find_browser, launch_args
from core.durable_files import read_json
from core.pause import read_pause
from dashboard.server import host_allowed
from dashboard.token import token_path
from risk.guards import RiskBook
from tests.control_support import control_cfg, journal_trade, write_decision, write_signal
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parent.parent


def _request(port: int, method: str, path: str, headers: dict | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers={"Host": f"127.0.0.1:{port}", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def dash(tmp_path_factory):
    """The agent's files (two assets, trades, a decision, a halt) and a running dashboard process."""
    tmp = tmp_path_factory.mktemp("dashboard")
    cfg = control_cfg(tmp)
    now = time.time()
    write_signal(cfg, "BTC", 0.61, 5, now, open_price=99.5, price=100.25)
    write_signal(cfg, "ETH", 0.42, 7, now, open_price=3000.0, price=2990.0, source="binance")
    start = int(now // 60) * 60
    journal_trade(cfg, "BTC", start - 120, "btc-1", start - 120, fill_after=0.8, pnl=4.2)
    journal_trade(cfg, "BTC", start - 60, "btc-2", start - 60, fill_after=1.7, pnl=-10.0)
    journal_trade(cfg, "ETH", start - 60, "eth-1", start - 60, events=("intent", "submitted", "wallet_rejected"))
    journal_trade(cfg, "ETH", start, "eth-2", start, events=("intent", "failed"))
    write_decision(cfg, "ETH", start, "skipped", "no edge: 0.01 < MIN_EDGE 0.03", now)
    RiskBook(cfg).halt("3 losses in a row", kind="consecutive_losses")
    env = {k: v for k, v in os.environ.items() if k not in ("MODE", "LIVE_CONFIRM")}
    env.update(DOTENV_PATH=str(tmp / "no.env"), STATE_DIR=str(cfg.state_dir), LOG_DIR=str(cfg.log_dir),
               PROFILE_DIR=str(tmp / "profiles"), WINDOW_SECONDS="60", ASSETS="BTC,ETH",
               DASHBOARD_PORT=str(cfg.dashboard_port), PYTHONPATH=str(REPO))
    log = open(tmp / "dashboard.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen([sys.executable, "-m", "dashboard"], cwd=REPO, env=env, stdout=log, stderr=log)
    try:
        wait_for(lambda: _up(cfg.dashboard_port), 20, "the dashboard answering /healthz")
        yield cfg, proc, tmp / "dashboard.log"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, "the dashboard did not stop cleanly on SIGTERM"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def _up(port: int) -> bool:
    try:
        return _request(port, "GET", "/healthz")[0] == 200
    except OSError:
        return False


def test_host_header_rule():
    assert host_allowed("127.0.0.1:8787", 8787) and host_allowed("localhost:8787", 8787)
    assert host_allowed("[::1]:8787", 8787) and host_allowed("192.168.1.5:8787", 8787)
    for bad in ("evil.example:8787", "127.0.0.1", "127.0.0.1:80", "", None, "localhost.evil.example:8787",
                "127.0.0.1:8787@evil", "[::1"):
        assert not host_allowed(bad, 8787), bad


def test_foreign_hosts_cross_site_posts_and_missing_tokens_are_refused(dash):
    cfg, _proc, log = dash
    port = cfg.dashboard_port
    for host in (f"evil.example:{port}", f"rebind.attacker.test:{port}"):
        status, body = _request(port, "GET", "/api/state", {"Host": host})
        assert status == 403 and b"DNS rebinding" in body
    token = token_path(cfg.state_dir).read_text().strip()
    assert token_path(cfg.state_dir).stat().st_mode & 0o777 == 0o600 and len(token) >= 20
    assert _request(port, "POST", "/api/control/pause")[0] == 403
    assert _request(port, "POST", "/api/control/pause", {"X-Dashboard-Token": "wrong" * 6})[0] == 403
    assert _request(port, "POST", "/api/control/pause", {"X-Dashboard-Token": token,
                                                         "Origin": "http://evil.example"})[0] == 403
    assert _request(port, "POST", "/api/control/pause", {"X-Dashboard-Token": token,
                                                         "Host": f"evil.example:{port}"})[0] == 403
    assert not read_pause(cfg.state_dir).paused, "a refused request changed something"
    text = log.read_bytes()
    assert b"DNS rebinding" in text and token.encode() not in text


def _metrics(port: int) -> dict[str, dict]:
    status, body = _request(port, "GET", "/metrics")
    assert status == 200
    out: dict[str, dict] = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def test_metrics_parse_back_and_equal_the_files(dash):
    cfg, _proc, _log = dash
    m = _metrics(cfg.dashboard_port)
    assert m["updown_signal_prob_up"][(("asset", "BTC"),)] == 0.61
    assert m["updown_signal_prob_up"][(("asset", "ETH"),)] == 0.42
    assert m["updown_feed_source"][(("asset", "ETH"), ("source", "binance"))] == 1.0
    assert 0 <= m["updown_signal_age_seconds"][(("asset", "BTC"),)] < 600
    assert m["updown_trades_total"][()] == 4 and m["updown_fills_total"][()] == 2
    assert m["updown_failures_total"][(("event", "failed"),)] == 1
    assert m["updown_wallet_rejections_total"][(("reason", "slippage"),)] == 1
    assert m["updown_settlements_total"][(("outcome", "won"),)] == 1
    assert m["updown_settlements_total"][(("outcome", "lost"),)] == 1
    assert m["updown_pnl_total_usd"][()] == pytest.approx(-5.8)
    risk = read_json(cfg.state_dir / "risk.json").data
    assert m["updown_pnl_today_usd"][()] == pytest.approx(risk["pnl_today"])
    assert m["updown_halted"][()] == 1.0 and m["updown_halts_total"][()] == 1
    assert m["updown_paused"][()] == (1.0 if read_pause(cfg.state_dir).paused else 0.0)
    assert m["updown_process_up"][(("process", "executor"),)] == 0.0     # nothing is supervised in this test
    # window start -> fill: 0.8 s and 1.7 s
    hist = m["updown_window_start_to_order_seconds_bucket"]
    assert hist[(("le", "0.75"),)] == 0 and hist[(("le", "1.0"),)] == 1 and hist[(("le", "2.0"),)] == 2
    assert m["updown_window_start_to_order_seconds_count"][()] == 2
    assert m["updown_window_start_to_order_seconds_sum"][()] == pytest.approx(2.5, abs=0.01)
    assert m["updown_intent_to_fill_seconds_count"][()] == 2                  # intent at +0, fill at +0.8/+1.7
    assert m["updown_intent_to_fill_seconds_sum"][()] == pytest.approx(2.5, abs=0.01)
    journal_trade(cfg, "BTC", int(time.time()), "btc-3", time.time(), events=("intent",))
    assert _metrics(cfg.dashboard_port)["updown_trades_total"][()] == 5      # counted incrementally


@pytest.mark.browser
def test_the_page_shows_the_files_updates_within_2_s_and_its_buttons_need_the_token(dash):
    cfg, _proc, _log = dash
    port = cfg.dashboard_port
    token = token_path(cfg.state_dir).read_text().strip()
    risk = read_json(cfg.state_dir / "risk.json").data
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=find_browser(), args=launch_args(), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1200})
            page.goto(f"http://127.0.0.1:{port}/")
            btc = page.locator("#asset-BTC")
            expect(btc.locator(".prob")).to_have_text("0.610", timeout=5000)
            expect(btc.locator(".strike")).to_have_text("99.50")
            expect(page.locator("#asset-ETH .source")).to_have_text("binance")
            expect(page.locator("#pnl-today")).to_have_text(f"{risk['pnl_today']:+.2f}")
            expect(page.locator("#risk-state")).to_have_text("HALTED")
            expect(page.locator("#proc-executor")).to_contain_text("stopped")
            expect(page.locator("#decisions tbody")).to_contain_text("no edge: 0.01 < MIN_EDGE 0.03")
            ids = {json.loads(x)["trade_id"] for x in cfg.trades_path.read_text().splitlines()}
            expect(page.locator("#trades tbody tr")).to_have_count(len(ids))
            expect(page.locator("#equity-total")).to_contain_text("-5.80 USD over 2 settled trade(s)")
            assert btc.locator("canvas").count() >= 1 and page.locator("#equity-chart canvas").count() >= 1
            # a new signal shows within 2 s
            write_signal(cfg, "BTC", 0.733, 6)
            t0 = time.monotonic()
            expect(btc.locator(".prob")).to_have_text("0.733", timeout=2000)
            assert time.monotonic() - t0 < 2.0
            # the buttons: refused without the token, obeyed with it (given as start prints it: #token=...)
            page.click("#btn-pause")
            expect(page.locator("#control-msg")).to_contain_text("pause refused: missing or wrong dashboard token")
            assert not read_pause(cfg.state_dir).paused
            page.goto(f"http://127.0.0.1:{port}/#token={token}")
            expect(page.locator("#token")).to_have_value(token)
            assert "token" not in page.url                               # taken out of the address bar
            page.click("#btn-pause")
            expect(page.locator("#pause-state")).to_have_text("PAUSED", timeout=3000)
            assert read_pause(cfg.state_dir).paused and read_pause(cfg.state_dir).by.startswith("the dashboard")
            page.click("#btn-unpause")
            expect(page.locator("#pause-state")).to_have_text("not paused", timeout=3000)
            page.once("dialog", lambda d: d.accept())
            page.click("#btn-resume")
            expect(page.locator("#risk-state")).to_have_text("risk ok", timeout=3000)
            assert not RiskBook(cfg).status()["halted"]
            page.screenshot(path=str(cfg.log_dir / "dashboard.png"), full_page=True)
        finally:
            browser.close()
    assert cfg.heartbeat_path("dashboard").exists()
    resume = [json.loads(x) for x in (cfg.log_dir / "risk.jsonl").read_text().splitlines()][-1]
    assert resume["event"] == "resume" and resume["by"].startswith("the dashboard")


def test_doctor_checks_the_dashboard_port(dash, tmp_path):
    import socket

    from dashboard.checks import dashboard_checks
    from tests.control_support import control_cfg, free_port

    cfg, _proc, _log = dash
    assert dashboard_checks(cfg)[0][:2] == ("OK", "dashboard") and "answers at" in dashboard_checks(cfg)[0][2]
    port = free_port()
    assert "is free" in dashboard_checks(control_cfg(tmp_path, DASHBOARD_PORT=port))[0][2]
    with socket.socket() as other:                          # another program holds the port
        other.bind(("127.0.0.1", port))
        level, _what, text = dashboard_checks(control_cfg(tmp_path, DASHBOARD_PORT=port))[0]
    assert level == "FAIL" and f"DASHBOARD_PORT={port} is held by another program" in text
    assert dashboard_checks(control_cfg(tmp_path, DASHBOARD="0"))[0][0] == "NOTE"
    level, _what, text = dashboard_checks(control_cfg(tmp_path, DASHBOARD_BIND="0.0.0.0", DASHBOARD_PORT=port))[0]
    assert level == "WARN" and "beyond this machine" in text
