"""The dashboard and the Telegram bot as supervised children: registered by default (the dashboard
always unless DASHBOARD=0, the bot when its token and chats are set), started by `./supervisor.sh
start` (which prints the dashboard's URL with its token), shown by `status`, the bot's token handed
over in the 0600 secrets file only, and stopped by `stop`."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from core.config import load_config
from monitor.settings import default_children
from tests.control_support import CHAT, TOKEN, free_port
from tests.supervisor_support import FAST_KNOBS, Tracker, pid_record, run_sup
from tests.telegram_server import TelegramServer
from tests.waiting import wait_for


def test_default_children_include_the_dashboard_and_the_bot_when_configured(tmp_path):
    base = {"DOTENV_PATH": str(tmp_path / "no.env"), "STATE_DIR": str(tmp_path / "s"), "LOG_DIR": str(tmp_path / "l"),
            "PROFILE_DIR": str(tmp_path / "p")}

    def names(**over: str) -> list[str]:
        env = {**base, **over}
        return [c.name for c in default_children(load_config(env), env)]

    assert names() == ["replica", "signal_engine", "executor", "dashboard"]
    assert names(DASHBOARD="0") == ["replica", "signal_engine", "executor"]
    assert names(TELEGRAM_BOT_TOKEN=TOKEN) == ["replica", "signal_engine", "executor", "dashboard"]
    assert names(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_CHAT_IDS=str(CHAT))[-1] == "telegram_bot"
    kids = {c.name: c for c in default_children(load_config({**base, "TELEGRAM_BOT_TOKEN": TOKEN,
                                                                "TELEGRAM_CHAT_IDS": "1"}))}
    assert kids["telegram_bot"].argv[1:] == ("-m", "telegram_bot") and TOKEN not in " ".join(kids["telegram_bot"].argv)
    assert kids["dashboard"].heartbeat[0].name == "dashboard" and kids["telegram_bot"].stale_after == 120.0


@pytest.fixture
def tg():
    srv = TelegramServer(TOKEN).start()
    try:
        yield srv
    finally:
        srv.stop()


def test_supervisor_starts_shows_and_stops_the_dashboard_and_the_bot(iso_env, tmp_path, tg):
    env = {k: v for k, v in iso_env.items() if not k.startswith("TELEGRAM_")}
    dot = tmp_path / "test.env"
    port = free_port()
    dot.write_text(f"MODE=demo\nTELEGRAM_BOT_TOKEN={TOKEN}\nTELEGRAM_CHAT_IDS={CHAT}\nTELEGRAM_API_URL={tg.url}\n"
                   f"DASHBOARD_PORT={port}\n")
    os.chmod(dot, 0o600)
    children = tmp_path / "children.json"
    children.write_text(json.dumps({"children": [
        {"name": "dashboard", "argv": ["{python}", "-m", "dashboard"], "heartbeat": ["{state_dir}/heartbeat/dashboard"],
         "stale_after": 30},
        {"name": "telegram_bot", "argv": ["{python}", "-m", "telegram_bot"],
         "heartbeat": ["{state_dir}/heartbeat/telegram_bot"], "stale_after": 120}]}))
    env.update(FAST_KNOBS, DOTENV_PATH=str(dot), SUPERVISOR_CHILDREN_FILE=str(children))
    state = Path(env["STATE_DIR"])
    tracker = Tracker(state)
    try:
        r = run_sup(env, "start")
        assert r.returncode == 0, r.stdout + r.stderr
        token = (state / "dashboard_token").read_text().strip()
        assert re.search(rf"dashboard   http://127\.0\.0\.1:{port}/#token={re.escape(token)}", r.stdout), r.stdout
        assert TOKEN not in r.stdout + r.stderr
        tracker.note_all()
        wait_for(lambda: run_sup(env, "status").returncode == 0, 30, "both children running")
        st = json.loads(run_sup(env, "status", "--json").stdout)
        assert {n: p["state"] for n, p in st["processes"].items()} == {"dashboard": "running",
                                                                      "telegram_bot": "running"}
        bot = pid_record(state, "telegram_bot")["pid"]
        for where in (f"/proc/{bot}/cmdline", f"/proc/{bot}/environ"):
            assert TOKEN.encode() not in Path(where).read_bytes()
        tg.push_text(CHAT, "/status")
        answer = wait_for(lambda: tg.sent_to(CHAT), 15, "the bot's answer under the supervisor")[0]
        assert "dashboard" in answer and "telegram_bot" in answer and "running" in answer
    finally:
        tracker.note_all()
        run_sup(env, "stop", timeout=60)
        left = tracker.kill_leftovers()
    assert not left, f"left running after stop: {left}"
    log = (Path(env["LOG_DIR"]) / "telegram_bot.log").read_text()
    assert TOKEN not in log and "ready for 1 chat(s)" in log
