"""Core: configuration, durable files, the window grid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core import durable_files as df
from core.config import ConfigError, load_config
from core.window_grid import parse_slug, window_at, window_slug, window_start

REPO = Path(__file__).resolve().parent.parent


def test_window_grid_on_the_900s_utc_grid():
    ts = 1767225600 + 14 * 60 + 59.9  # 2026-01-01T00:14:59.9Z
    w = window_at("btc", ts)
    assert (w.start, w.end, w.asset) == (1767225600, 1767226500, "BTC")
    assert w.slug == "btc-updown-15m-1767225600"
    assert w.seconds_left(ts) == pytest.approx(0.1)
    assert window_start(1767226500) == 1767226500  # the boundary belongs to the next window
    assert window_slug("eth", 1767225600, 20) == "eth-updown-20s-1767225600"
    assert parse_slug("btc-updown-15m-1767225600") == ("BTC", 1767225600)
    with pytest.raises(ValueError):
        parse_slug("btc-15m")


def test_atomic_write_and_tolerant_read(tmp_path: Path):
    p = tmp_path / "s" / "signal.json"
    assert df.read_json(p).problem == "missing"
    df.atomic_write_json(p, {"a": 1})
    assert df.read_json(p).data == {"a": 1}
    assert not [x for x in p.parent.iterdir() if x.name.endswith(".tmp")]
    p.write_text("")
    assert df.read_json(p).problem == "empty"
    p.write_text('{"a": 1')
    assert df.read_json(p).problem.startswith("corrupt")
    p.write_text("[1, 2]")
    assert df.read_json(p).problem.startswith("corrupt")


def test_jsonl_append_survives_a_torn_last_line(tmp_path: Path):
    p = tmp_path / "trades.jsonl"
    df.append_jsonl(p, {"n": 1})
    with open(p, "ab") as fh:
        fh.write(b'{"n": 2, "tor')  # a crash mid-write
    df.append_jsonl(p, {"n": 3})
    assert [r["n"] for r in df.read_jsonl(p)] == [1, 3]


def test_config_defaults_are_safe(tmp_path: Path):
    cfg = load_config({"STATE_DIR": str(tmp_path / "st"), "LOG_DIR": str(tmp_path / "lg"),
                       "PROFILE_DIR": str(tmp_path / "pr")}, dotenv_path=tmp_path / "none")
    assert cfg.mode == "demo" and cfg.market_url.startswith("http://127.0.0.1:")
    assert cfg.window_seconds == 60 and cfg.headless
    assert "secret" not in repr(cfg)


@pytest.mark.parametrize("var,value,needle", [
    ("POSITION_SIZE", "abc", "POSITION_SIZE is not a number"),
    ("MODE", "yolo", "MODE must be one of"),
    ("SIGNAL_INTERVAL", "-1", "SIGNAL_INTERVAL must be >="),
    ("STATE_DIR", "/proc/definitely/not/here", "STATE_DIR is not a writable directory"),
    ("MODE", "live", "MODE is live, which trades real money and needs an explicit confirmation"),
    ("WINDOW_SECONDS", "abc", "WINDOW_SECONDS is not a whole number"),
])
def test_invalid_config_exits_2_with_one_line(iso_env, var, value, needle):
    env = dict(iso_env, **{var: value})
    r = subprocess.run([sys.executable, "-m", "core.config"], env=env, cwd=REPO,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "example of a good value" in lines[0]


def test_paper_mode_cannot_shorten_windows(tmp_path: Path):
    with pytest.raises(ConfigError, match="WINDOW_SECONDS"):
        load_config({"MODE": "paper", "WINDOW_SECONDS": "60", "STATE_DIR": str(tmp_path)},
                    dotenv_path=tmp_path / "none", check_dirs=False)


def test_secret_webhook_is_never_echoed(iso_env):
    env = dict(iso_env, CLOBBOT_DISCORD_WEBHOOK_URL="ftp://hunter2-token", METAMASK_PASSWORD="hunter2")
    r = subprocess.run([sys.executable, "-m", "core.config", "--json"], env=env, cwd=REPO,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "hunter2" not in r.stderr + r.stdout
    env["CLOBBOT_DISCORD_WEBHOOK_URL"] = "https://example.invalid/hunter2"
    r = subprocess.run([sys.executable, "-m", "core.config", "--json"], env=env, cwd=REPO,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "hunter2" not in r.stdout
    assert json.loads(r.stdout)["metamask_password"] == "***"


def test_dotenv_is_read_and_environment_wins(tmp_path: Path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("POSITION_SIZE=7\nCONFIDENCE=70\n")
    cfg = load_config({"CONFIDENCE": "80", "STATE_DIR": str(tmp_path)}, dotenv_path=dotenv,
                      check_dirs=False)
    assert cfg.position_size == 7 and cfg.confidence == 80


def test_heartbeat_age(tmp_path: Path):
    hb = tmp_path / "hb" / "x"
    assert df.file_age(hb) is None
    df.touch_heartbeat(hb, now=1000.0)
    assert df.file_age(hb, now=1010.0) == pytest.approx(10.0)
    assert os.path.exists(hb)


def test_env_example_is_valid_and_lists_every_variable(tmp_path: Path):
    import re

    example = REPO / ".env.example"
    src = (REPO / "core" / "config.py").read_text()
    used = set(re.findall(r'get\("([A-Z_]+)"', src)) | set(re.findall(r'e\.get\("([A-Z_]+)"', src))
    listed = set(re.findall(r"^([A-Z_]+)=", example.read_text(), flags=re.M))
    assert used - {"DOTENV_PATH"} <= listed, f"missing from .env.example: {sorted(used - listed)}"
    cfg = load_config({"STATE_DIR": str(tmp_path)}, dotenv_path=example, check_dirs=False)
    assert cfg.mode == "demo"
