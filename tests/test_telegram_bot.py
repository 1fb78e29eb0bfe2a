"""The Telegram bot against a local server speaking the Bot API's JSON (tests/telegram_server.py):
every command, an unknown chat, 429 retry_after, 5xx, a dropped connection, garbage and malformed
updates, notifications from the agent's files, the bounded outbox, and the real process (the token
only in the 0600 secrets file: never in argv, the environment, the log or an error)."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.durable_files import append_jsonl, atomic_write_json, read_json
from core.pause import read_pause, set_pause
from risk.guards import RiskBook
from telegram_bot.api import ApiError, BotApi
from telegram_bot.bot import Bot
from telegram_bot.outbox import Outbox, Outgoing
from tests.control_support import CHAT, OTHER_CHAT, TOKEN, control_cfg, journal_trade, write_signal
from tests.telegram_server import TelegramServer
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parent.parent
SECOND_CHAT = -100200300
NOTIFICATION = re.compile(r"^[A-Z ]+ \[demo\] ")   # "FILL [demo] ...": not an answer


@pytest.fixture
def tg():
    srv = TelegramServer(TOKEN).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def agent(tmp_path, tg):
    cfg = control_cfg(tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_CHAT_IDS=f"{CHAT},{SECOND_CHAT}",
                      TELEGRAM_API_URL=tg.url)
    now = time.time()
    write_signal(cfg, "BTC", 0.61, 5, now, open_price=99.5, price=100.25)
    write_signal(cfg, "ETH", 0.42, 7, now, open_price=3000.0, price=2990.0)
    start = int(now // 60) * 60 - 120
    journal_trade(cfg, "BTC", start, "btc-1", now - 130, pnl=4.2)
    journal_trade(cfg, "ETH", start, "eth-1", now - 125, events=("intent", "submitted", "wallet_rejected"))
    cfg.log_dir.mkdir(parents=True, exist_ok=True)
    (cfg.log_dir / "executor.log").write_text("line one\nline two\nline three\n")
    return cfg


class Running:
    """A Bot in a thread of this process (the process itself is tested at the end)."""

    def __init__(self, cfg, poll_timeout: int = 1, backoff_base: float = 0.05):
        self.api = BotApi(cfg.telegram_api_url, str(cfg.telegram_bot_token), timeout=5)
        self.bot = Bot(cfg, self.api, poll_timeout=poll_timeout, backoff_base=backoff_base)
        self.thread = threading.Thread(target=self.bot.run, daemon=True)

    def __enter__(self) -> Bot:
        self.thread.start()
        return self.bot

    def __exit__(self, *exc) -> None:
        self.bot.stop.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "the bot did not stop"
        self.api.close()


def ask(tg: TelegramServer, text: str, chat: int = CHAT, timeout: float = 2.0) -> str:
    """Send a message as `chat`; the bot's answer (within `timeout`: the issue's 2 s)."""
    before = len(tg.sent_to(chat))
    tg.push_text(chat, text)
    got = wait_for(lambda: [m for m in tg.sent_to(chat)[before:] if not NOTIFICATION.match(m)], timeout,
                   f"the answer to {text!r}")
    return got[0]


def test_every_command_answers_the_allowed_chat_within_2_s(agent, tg):
    cfg = agent
    RiskBook(cfg).halt("daily loss 55.00 >= MAX_DAILY_LOSS 50", kind="daily_loss")
    with Running(cfg):
        assert "prob_up" in ask(tg, "/status") and "BTC" in ask(tg, "/status@updown_test_bot")
        sig = ask(tg, "/signal")
        assert "BTC: UP prob_up 0.610 strike 99.50" in sig and "ETH: DOWN prob_up 0.420 strike 3,000.00" in sig
        assert "price 100.25" in sig and "source sim" in sig
        trades = ask(tg, "/trades 5")
        assert "BTC UP $10.00 @0.500 settled won +4.20" in trades and "ETH UP $10.00 @0.500 wallet_rejected" in trades
        assert "usage" in ask(tg, "/trades many")
        assert "P&L all time: +4.20 USD over 1 settled trade(s) (1W/0L" in ask(tg, "/profit")
        assert "P&L last 7 day(s): +4.20" in ask(tg, "/profit 7")
        daily = ask(tg, "/daily 3")
        assert time.strftime("%Y-%m-%d", time.gmtime(time.time() - 70)) in daily and "+4.20" in daily
        assert ask(tg, "/pause").startswith("paused: no new trades")
        assert read_pause(cfg.state_dir).paused and read_pause(cfg.state_dir).by == f"telegram chat {CHAT}"
        assert ask(tg, "/stopentry").startswith("already paused")
        assert ask(tg, "/unpause").startswith("unpaused") and not read_pause(cfg.state_dir).paused
        assert ask(tg, "/resume yes").startswith("No /resume is waiting")        # a confirmation needs a /resume
        first = ask(tg, "/resume")
        assert "HALTED (daily_loss)" in first and "/resume yes within 60 s" in first
        assert RiskBook(cfg).status()["halted"]                                   # not before the confirmation
        assert ask(tg, "/resume yes").startswith("cleared the halt (daily_loss)")
        assert not RiskBook(cfg).status()["halted"]
        assert ask(tg, "/resume") == "not halted; nothing to clear"
        logs = ask(tg, "/logs executor 2")
        assert "line two\nline three" in logs and "line one" not in logs
        assert "no log named nosuch" in ask(tg, "/logs nosuch")
        health = ask(tg, "/health")
        assert "processes running" in health and "BTC signal: age" in health and "GB free" in health
        assert "/resume yes" in ask(tg, "/help")
        assert ask(tg, "/frobnicate").startswith("Unknown command /frobnicate")
    halt_log = [r for r in (json.loads(x) for x in (cfg.log_dir / "risk.jsonl").read_text().splitlines())
                if r["event"] == "resume"]
    assert halt_log[-1]["by"] == f"telegram chat {CHAT}"


def test_an_unknown_chat_is_ignored_and_logged_once(agent, tg, caplog):
    caplog.set_level(logging.WARNING, logger="telegram_bot")
    with Running(agent) as bot:
        tg.push_text(OTHER_CHAT, "/pause")
        tg.push_text(OTHER_CHAT, "/status", chat_type="group")
        assert ask(tg, "/help")                              # handled in order: the two before are done
        assert wait_for(lambda: bot.counters["ignored"] == 2, 2, "both ignored")
    assert tg.sent_to(OTHER_CHAT) == [] and not read_pause(agent.state_dir).paused
    lines = [r.getMessage() for r in caplog.records if str(OTHER_CHAT) in r.getMessage()]
    assert len(lines) == 1 and "not in TELEGRAM_CHAT_IDS" in lines[0]


def test_telegram_faults_never_stop_the_bot(agent, tg):
    with Running(agent) as bot:
        assert ask(tg, "/help")
        for kind in ("500", "502", "drop", "garbage", "malformed_update"):
            tg.fail("getUpdates", kind)
        wait_for(lambda: bot.counters["poll_errors"] >= 4 and bot.counters["malformed"] >= 2, 10,
                 "the five faulty polls")
        assert "prob_up" in ask(tg, "/signal")                 # after every fault, the next command is answered
        tg.fail("getUpdates", "429", retry_after=1)
        t0 = time.monotonic()
        before = tg.calls_of("getUpdates")
        wait_for(lambda: tg.calls_of("getUpdates") >= before + 2, 5, "a poll after the 429")
        assert time.monotonic() - t0 >= 0.9, "retry_after was not honoured"
        tg.fail("sendMessage", "429", retry_after=1)
        tg.fail("sendMessage", "drop")
        assert "Commands" in ask(tg, "/help", timeout=8)        # a reply survives a 429 and a dropped send
        assert bot.outbox.stats["retries"] >= 2
    assert read_json(agent.state_dir / "telegram_bot.json").data["offset"] > 100


def test_notifications_follow_the_discord_policy(agent, tg):
    cfg = agent
    atomic_write_json(cfg.state_dir / "supervisor.json", {"children": {"executor": {"state": "running"}}})
    with Running(cfg) as bot:
        wait_for(lambda: bot.watcher.children is not None, 3, "the watcher's first look")
        now = time.time()
        start = int(now // 60) * 60
        journal_trade(cfg, "BTC", start, "btc-2", now, pnl=-10.0)
        journal_trade(cfg, "ETH", start, "eth-2", now, events=("intent", "submitted", "wallet_rejected"))
        RiskBook(cfg).halt("3 losses in a row", kind="consecutive_losses")
        atomic_write_json(cfg.state_dir / "supervisor.json", {"children": {"executor": {
            "state": "FATAL", "fatal_reason": "5 failed starts in a row"}}})
        set_pause(cfg.state_dir, True, "the dashboard (127.0.0.1)")
        want = ["FILL [demo] BTC UP $10.00 at 0.50 (btc-2)", "SETTLED [demo] BTC btc-2: lost, pnl -10.00",
                "WALLET REJECTED [demo] ETH trade eth-2: wallet_rejected: wallet guard: price",
                "HALT [demo] trading halted: 3 losses in a row", "FATAL [demo] executor FATAL: 5 failed starts",
                "PAUSE [demo] paused by the dashboard (127.0.0.1)"]
        for chat in (CHAT, SECOND_CHAT):
            got = wait_for(lambda c=chat: len(tg.sent_to(c)) >= len(want) and tg.sent_to(c), 5, "the notifications")
            for w in want:
                assert any(m.startswith(w) for m in got), (w, got)
        assert not any("intent" in m or "btc-1" in m for m in got)   # the journal's past is not re-announced
    with Running(cfg):                                               # a restart resumes where it stopped
        append_jsonl(cfg.trades_path, {"ts": "2026-01-01T00:00:00Z", "event": "filled", "mode": "demo",
                                       "asset": "BTC", "window_start": 0, "trade_id": "old"})  # > 1 h old: quiet
        journal_trade(cfg, "ETH", int(time.time()), "eth-3", time.time(), events=("intent", "failed"))
        wait_for(lambda: any("eth-3" in m for m in tg.sent_to(CHAT)), 5, "the notification after a restart")
    assert not any("(old)" in m or "btc-2" in m and m.startswith("FILL") and tg.sent_to(CHAT).count(m) > 1
                   for m in tg.sent_to(CHAT))


def test_the_outbox_is_bounded_and_counts_what_it_drops(agent, tg):
    stop = threading.Event()
    api = BotApi(tg.url, TOKEN, timeout=2)
    box = Outbox(api, stop, size=3)                     # not started: nothing drains it
    results = [box.put(Outgoing(CHAT, f"m{i}")) for i in range(5)]
    assert results == [True, True, True, False, False] and box.stats["dropped"] == 2
    t0 = time.monotonic()
    assert box.put(Outgoing(CHAT, "x")) is False and time.monotonic() - t0 < 0.05   # never blocks
    box.start()
    wait_for(lambda: len(tg.sent_to(CHAT)) == 3, 3, "the queued messages sent")
    stop.set()
    api.close()


def test_api_errors_name_the_method_never_the_token(tg):
    api = BotApi(tg.url, TOKEN, timeout=2)
    tg.fail("getMe", "drop")
    with pytest.raises(ApiError) as err:
        api.get_me()
    assert err.value.kind == "network" and TOKEN not in str(err.value)
    bad = BotApi(tg.url, "999:" + "x" * 30, timeout=2)
    with pytest.raises(ApiError) as err:
        bad.get_me()
    assert err.value.kind == "refused" and err.value.status == 401
    down = BotApi("http://127.0.0.1:9", TOKEN, timeout=1)   # nothing listens on the discard port
    with pytest.raises(ApiError) as err:
        down.get_updates(None, 0)
    assert TOKEN not in str(err.value) and TOKEN.split(":")[1] not in str(err.value)
    for a in (api, bad, down):
        a.close()


def test_the_bot_process_keeps_its_token_out_of_argv_environment_and_logs(agent, tg, tmp_path):
    cfg = agent
    secrets = cfg.state_dir / "secrets.json"
    atomic_write_json(secrets, {"TELEGRAM_BOT_TOKEN": TOKEN}, mode=0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "MODE", "LIVE_"))}
    env.update(DOTENV_PATH=str(tmp_path / "no.env"), STATE_DIR=str(cfg.state_dir), LOG_DIR=str(cfg.log_dir),
               PROFILE_DIR=str(tmp_path / "profiles"), WINDOW_SECONDS="60", ASSETS="BTC,ETH",
               TELEGRAM_CHAT_IDS=str(CHAT), TELEGRAM_API_URL=tg.url, SECRETS_FILE=str(secrets), PYTHONPATH=str(REPO))
    log = tmp_path / "bot.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "telegram_bot"], cwd=REPO, env=env, stdout=out, stderr=out)
    try:
        assert "Commands" in ask(tg, "/help", timeout=15)                 # the first answer includes start-up
        tg.push_text(OTHER_CHAT, "/status")
        tg.fail("getUpdates", "502")
        assert "prob_up" in ask(tg, "/signal", timeout=8)
        for where in (f"/proc/{proc.pid}/cmdline", f"/proc/{proc.pid}/environ"):
            assert TOKEN.encode() not in Path(where).read_bytes()
        assert cfg.heartbeat_path("telegram_bot").exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert TOKEN not in text and TOKEN.split(":")[1] not in text
    assert "ignored a message from chat" in text and "bot @updown_test_bot ready" in text
    # A token Telegram refuses: one line, exit 2 (REFUSED: the monitor leaves it down), the token not in it.
    atomic_write_json(secrets, {"TELEGRAM_BOT_TOKEN": "999999:" + "y" * 35}, mode=0o600)
    r = subprocess.run([sys.executable, "-m", "telegram_bot"], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and "refused TELEGRAM_BOT_TOKEN" in r.stderr and "y" * 35 not in r.stderr


def test_doctor_checks_the_token_with_getme(tmp_path, tg):
    from dashboard.checks import telegram_checks

    def check(**over):
        return telegram_checks(control_cfg(tmp_path, **{"TELEGRAM_API_URL": tg.url, **over}), timeout=2)

    assert check()[0][0] == "NOTE"
    level, _what, text = check(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_CHAT_IDS=str(CHAT))[0]
    assert level == "OK" and "@updown_test_bot" in text and str(CHAT) in text
    tg.push_text(CHAT, "hello")                             # a user who has not set TELEGRAM_CHAT_IDS yet
    level, _what, text = check(TELEGRAM_BOT_TOKEN=TOKEN)[0]
    assert level == "WARN" and f"{CHAT} (Test)" in text
    level, _what, text = check(TELEGRAM_BOT_TOKEN="999999:" + "z" * 35, TELEGRAM_CHAT_IDS=str(CHAT))[0]
    assert level == "FAIL" and "refused" in text and "z" * 35 not in text
    level, _what, text = check(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_CHAT_IDS=str(CHAT),
                               TELEGRAM_API_URL="http://127.0.0.1:9")[0]
    assert level == "WARN" and "trading does not depend on it" in text and TOKEN not in text


def test_telegram_config_is_checked_and_the_token_is_a_secret(tmp_path):
    from core.config import ConfigError, secrets_of

    with pytest.raises(ConfigError) as err:
        control_cfg(tmp_path, TELEGRAM_BOT_TOKEN="not-a-token-" + "s" * 30)
    assert err.value.var == "TELEGRAM_BOT_TOKEN" and "s" * 30 not in str(err.value)
    with pytest.raises(ConfigError) as err:
        control_cfg(tmp_path, TELEGRAM_CHAT_IDS="12,@me")
    assert err.value.var == "TELEGRAM_CHAT_IDS"
    cfg = control_cfg(tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_CHAT_IDS="12,-100345")
    assert cfg.telegram_enabled and cfg.telegram_chat_ids == (12, -100345)
    assert TOKEN not in repr(cfg) and cfg.public_dict()["telegram_bot_token"] == "***"
    assert secrets_of(cfg)["TELEGRAM_BOT_TOKEN"] == TOKEN              # what the monitor puts in SECRETS_FILE
    assert not control_cfg(tmp_path, TELEGRAM_BOT_TOKEN=TOKEN).telegram_enabled   # no chats: no bot
