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
    ("SUPERVISOR_TICK", "nan", "SUPERVISOR_TICK must be a finite number"),
    ("SUPERVISOR_STOP_TIMEOUT", "nan", "SUPERVISOR_STOP_TIMEOUT must be a finite number"),
    ("POSITION_SIZE", "nan", "POSITION_SIZE must be a finite number"),
    ("MAX_DAILY_LOSS", "inf", "MAX_DAILY_LOSS must be a finite number"),
    ("BROWSER_PATH", "/nonexistent/chrome", "BROWSER_PATH is not an executable file"),
    ("ASSETS", "BTC,,DOGE", "ASSETS lists an empty asset"),
    ("MARKET_URL", "http://[x", "MARKET_URL does not parse as a URL"),
])
def test_invalid_config_exits_2_with_one_line(iso_env, var, value, needle):
    env = dict(iso_env, **{var: value})
    r = subprocess.run([sys.executable, "-m", "core.config"], env=env, cwd=REPO,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "example of a good value" in lines[0]


def test_a_position_size_above_its_cap_asks_to_lower_the_size_not_to_raise_the_cap(tmp_path: Path):
    """Found in a user's trial: POSITION_SIZE=60 under MAX_POSITION_SIZE=25 suggested MAX_POSITION_SIZE=60."""
    with pytest.raises(ConfigError) as info:
        load_config({"POSITION_SIZE": "60", "MAX_POSITION_SIZE": "25", "STATE_DIR": str(tmp_path)},
                    dotenv_path=tmp_path / "none", check_dirs=False)
    msg = str(info.value)
    assert info.value.var == "POSITION_SIZE" and "is above MAX_POSITION_SIZE (25)" in msg
    assert "example of a good value: POSITION_SIZE=25" in msg


def test_config_cli_answers_help_and_refuses_an_unknown_argument(iso_env):
    run = [sys.executable, "-m", "core.config"]
    r = subprocess.run([*run, "--help"], env=iso_env, cwd=REPO, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith("usage: python -m core.config") and "mode=" not in r.stdout
    r = subprocess.run([*run, "--jsn"], env=iso_env, cwd=REPO, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "unknown argument '--jsn'" in r.stderr and r.stdout == ""


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


def test_an_error_echoes_at_most_80_characters_of_a_value(tmp_path: Path):
    from core.config import SHOWN_CHARS

    long_value = "x" * 500
    with pytest.raises(ConfigError) as err:
        load_config({"POSITION_SIZE": long_value, "STATE_DIR": str(tmp_path)}, dotenv_path=tmp_path / "none",
                    check_dirs=False)
    msg = str(err.value)
    assert "POSITION_SIZE" in msg and "x" * SHOWN_CHARS in msg and "x" * (SHOWN_CHARS + 1) not in msg
    assert SHOWN_CHARS == 80


def test_demo_wallet_password_applies_when_metamask_password_is_unset(tmp_path: Path, monkeypatch):
    """MODE=demo without METAMASK_PASSWORD: the executor and the replica both get the demo password
    (one constant), so a standalone `MODE=demo python -m executor` can unlock the replica's wallet."""
    from core.config import DEMO_WALLET_PASSWORD
    from monitor.settings import DEMO_WALLET_PASSWORD as monitor_copy
    from monitor.settings import default_children

    base = {"STATE_DIR": str(tmp_path), "LOG_DIR": str(tmp_path), "PROFILE_DIR": str(tmp_path)}
    cfg = load_config(base, dotenv_path=tmp_path / "none", check_dirs=False)
    assert cfg.mode == "demo" and str(cfg.metamask_password) == DEMO_WALLET_PASSWORD == "demo-password"
    assert monitor_copy is DEMO_WALLET_PASSWORD
    # No child's environment carries a password any more: the monitor hands it over in SECRETS_FILE.
    kids = {c.name: c for c in default_children(cfg, base)}
    assert not any(k in c.env for c in kids.values() for k in ("METAMASK_PASSWORD", "REPLICA_WALLET_PASSWORD"))
    from core.config import secrets_of
    assert secrets_of(cfg) == {"METAMASK_PASSWORD": DEMO_WALLET_PASSWORD}
    assert "demo-password" not in repr(cfg)  # still masked like any password
    # The user's password wins; paper and live never get a default.
    cfg = load_config({**base, "METAMASK_PASSWORD": "mine"}, dotenv_path=tmp_path / "none", check_dirs=False)
    assert str(cfg.metamask_password) == "mine"
    cfg = load_config({**base, "MODE": "paper"}, dotenv_path=tmp_path / "none", check_dirs=False)
    assert str(cfg.metamask_password) == ""
    # The standalone replica reads the same config: its wallet unlocks with the same password.
    from replica.__main__ import _config_defaults

    for k, v in base.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("DOTENV_PATH", str(tmp_path / "none"))
    monkeypatch.delenv("METAMASK_PASSWORD", raising=False)
    monkeypatch.delenv("MODE", raising=False)
    assert _config_defaults()["password"] == DEMO_WALLET_PASSWORD


def test_procfs_reads_a_live_process_and_answers_absent_for_a_gone_one():
    from core import procfs

    if not procfs.HAVE_PROC:
        pytest.skip("no /proc on this system")
    p = subprocess.Popen([sys.executable, "-c", "import sys; print('ready', flush=True); sys.stdin.read()"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ, "PROCFS_TEST_MARK": "1"})
    try:
        assert p.stdout.readline() == b"ready\n"  # past its exec: /proc shows the new program
        assert procfs.state(p.pid) in ("R", "S", "D")
        assert procfs.parent_and_group(p.pid) == (os.getpid(), os.getpgrp())
        assert procfs.start_ticks(p.pid).isdigit()
        assert "sys.stdin.read()" in procfs.cmdline(p.pid) and "\0" not in procfs.cmdline(p.pid)
        assert b"PROCFS_TEST_MARK=1" in procfs.environ(p.pid)
        rss, pss = procfs.memory_kb(p.pid)
        assert rss > 0 and pss > 0 and procfs.status_kb(p.pid, "VmRSS") > 0
        assert procfs.cpu_seconds(p.pid) >= 0
        assert p.pid in procfs.pids() and p.pid in procfs.descendant_pids(os.getpid())
        assert (p.pid, os.getpid(), os.getpgrp()) in procfs.table()
    finally:
        p.communicate(timeout=10)
    assert procfs.stat_fields(p.pid) is None and procfs.start_ticks(p.pid) is None
    assert procfs.cmdline(p.pid) == "" and procfs.environ(p.pid) is None and procfs.memory_kb(p.pid) is None
    assert procfs.cpu_seconds(p.pid) is None and not procfs.is_zombie(p.pid)


def _cfg_error(tmp_path: Path, **env: str) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        load_config({"STATE_DIR": str(tmp_path), **env}, dotenv_path=tmp_path / "none", check_dirs=False)
    return err.value


@pytest.mark.parametrize("env,var,needle", [
    ({"ASSETS": "BTC,,DOGE"}, "ASSETS", "lists an empty asset"),
    ({"ASSETS": "BTC,"}, "ASSETS", "lists an empty asset"),
    ({"ASSETS": "BTC,DOGE"}, "ASSETS", "names 'DOGE', which the demo venue does not quote"),
    ({"MARKET_URL": "http://127.0.0.1:8765/crypto 15M"}, "MARKET_URL", "must not contain spaces"),
    ({"MARKET_URL": "http://[x"}, "MARKET_URL", "does not parse as a URL"),
    ({"MARKET_URL": "http://[hunter2]/x"}, "MARKET_URL", "does not parse as a URL"),
    ({"MARKET_URL": "http:///crypto/15M"}, "MARKET_URL", "must be an http(s) URL with a host"),
    ({"BINANCE_URL": "https://api.binance.com:99999"}, "BINANCE_URL", "does not parse as a URL"),
    ({"COINBASE_URL": "ftp://example.com"}, "COINBASE_URL", "must be an http(s) URL"),
    ({"SITE_PROFILE": "nosuch"}, "SITE_PROFILE", "names a profile with no file profiles/sites/nosuch.json"),
    ({"WALLET_PROFILE": "nosuch"}, "WALLET_PROFILE", "names a profile with no file profiles/wallets/nosuch.json"),
    ({"FEEDS": "replay", "REPLAY_FILE": "/nonexistent/candles.csv"}, "REPLAY_FILE", "cannot be read"),
    ({"BROWSER_PATH": "/nonexistent/chrome"}, "BROWSER_PATH", "is not an executable file"),
])
def test_config_values_are_checked_before_anything_starts(tmp_path: Path, env, var, needle):
    err = _cfg_error(tmp_path, **env)
    assert err.var == var and needle in str(err), str(err)


def test_a_browser_path_that_is_not_executable_is_refused(tmp_path: Path):
    plain = tmp_path / "chrome"
    plain.write_text("not a browser\n")
    plain.chmod(0o644)
    err = _cfg_error(tmp_path, BROWSER_PATH=str(plain))
    assert err.var == "BROWSER_PATH" and "is not an executable file" in str(err)
    plain.chmod(0o755)
    assert load_config({"STATE_DIR": str(tmp_path), "BROWSER_PATH": str(plain)}, dotenv_path=tmp_path / "none",
                       check_dirs=False).browser_path == str(plain)


def test_a_replay_file_that_is_a_directory_is_refused(tmp_path: Path):
    err = _cfg_error(tmp_path, FEEDS="replay", REPLAY_FILE=str(tmp_path))
    assert err.var == "REPLAY_FILE" and "cannot be read" in str(err)
    good = tmp_path / "candles.csv"
    good.write_text("open_time,open,high,low,close,volume\n")
    cfg = load_config({"STATE_DIR": str(tmp_path), "FEEDS": "replay", "REPLAY_FILE": str(good)},
                      dotenv_path=tmp_path / "none", check_dirs=False)
    assert cfg.replay_file == good


def test_a_profile_file_that_does_not_parse_is_refused(tmp_path: Path, monkeypatch):
    import core.config as config

    (tmp_path / "profiles" / "sites").mkdir(parents=True)
    (tmp_path / "profiles" / "wallets").mkdir(parents=True)
    (tmp_path / "profiles" / "sites" / "polymarket.json").write_text('{"selectors": ')
    (tmp_path / "profiles" / "sites" / "list.json").write_text("[1, 2]")
    (tmp_path / "profiles" / "wallets" / "metamask.json").write_text("{}")
    monkeypatch.setattr(config, "REPO_ROOT", tmp_path)
    err = _cfg_error(tmp_path)
    assert err.var == "SITE_PROFILE" and "is not valid JSON" in str(err)
    err = _cfg_error(tmp_path, SITE_PROFILE="list")
    assert err.var == "SITE_PROFILE" and "is not a JSON object" in str(err)


def test_a_bad_webhook_url_is_refused_and_never_echoed(tmp_path: Path):
    for bad in ("http://[x-hunter2", "http://[hunter2]/x", "https://discord.com/api/webhooks/1/hunter2 x",
                "https://:99/hunter2", "https://discord.com:hunter2/x"):
        err = _cfg_error(tmp_path, CLOBBOT_DISCORD_WEBHOOK_URL=bad)
        assert err.var == "CLOBBOT_DISCORD_WEBHOOK_URL" and "hunter2" not in str(err), str(err)


def test_checked_values_that_are_fine_still_load(tmp_path: Path):
    base = {"STATE_DIR": str(tmp_path)}
    cfg = load_config({**base, "ASSETS": "BTC,ETH,SOL,XRP", "MARKET_URL": "http://[::1]:8765/crypto/15M",
                       "CLOBBOT_DISCORD_WEBHOOK_URL": "https://discord.com/api/webhooks/1/tok",
                       "BROWSER_PATH": sys.executable}, dotenv_path=tmp_path / "none", check_dirs=False)
    assert cfg.assets == ("BTC", "ETH", "SOL", "XRP") and cfg.browser_path == sys.executable
    # Paper and live trade the real site's assets: the demo venue's list does not apply.
    cfg = load_config({**base, "MODE": "paper", "ASSETS": "DOGE"}, dotenv_path=tmp_path / "none", check_dirs=False)
    assert cfg.assets == ("DOGE",)


def test_demo_assets_are_the_ones_the_replica_quotes():
    from core.config import DEMO_ASSETS
    from replica.pricing import BASE_PRICES

    assert set(DEMO_ASSETS) == set(BASE_PRICES)


# ---- SECRETS_FILE: secrets reach supervised children in a 0600 file, not their environment -----------


def _secrets(tmp_path: Path, doc, mode: int = 0o600) -> Path:
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    path.chmod(mode)
    return path


def test_secrets_file_supplies_secrets_over_dotenv_under_the_environment(tmp_path: Path):
    from core.config import secrets_of

    dotenv = tmp_path / "x.env"
    dotenv.write_text("METAMASK_PASSWORD=from-dotenv\nPOSITION_SIZE=7\n")
    base = {"STATE_DIR": str(tmp_path), "LOG_DIR": str(tmp_path), "PROFILE_DIR": str(tmp_path), "MODE": "paper"}
    path = _secrets(tmp_path, {"METAMASK_PASSWORD": "from-file", "CLOBBOT_DISCORD_WEBHOOK_URL":
                               "https://discord.com/api/webhooks/1/tok", "POSITION_SIZE": "99", "MODE": "live"})
    cfg = load_config({**base, "SECRETS_FILE": str(path)}, dotenv_path=dotenv, check_dirs=False)
    assert str(cfg.metamask_password) == "from-file" and str(cfg.discord_webhook_url).endswith("/tok")
    assert cfg.position_size == 7 and cfg.mode == "paper"      # only secrets are taken from the file
    assert secrets_of(cfg) == {"METAMASK_PASSWORD": "from-file",
                               "CLOBBOT_DISCORD_WEBHOOK_URL": "https://discord.com/api/webhooks/1/tok"}
    env_wins = load_config({**base, "SECRETS_FILE": str(path), "METAMASK_PASSWORD": "from-env"},
                           dotenv_path=dotenv, check_dirs=False)
    assert str(env_wins.metamask_password) == "from-env"
    assert "from-file" not in repr(cfg) and "from-file" not in json.dumps(cfg.public_dict())


@pytest.mark.parametrize("case,needle", [("missing", "cannot be read"), ("world_readable", "must be mode 600"),
                                         ("not_json", "not valid JSON"), ("not_object", "not a JSON object")])
def test_a_bad_secrets_file_is_refused_naming_secrets_file_never_a_secret(tmp_path: Path, case, needle):
    path = {"missing": lambda: tmp_path / "gone.json",
            "world_readable": lambda: _secrets(tmp_path, {"METAMASK_PASSWORD": "hunter2"}, 0o644),
            "not_json": lambda: _secrets(tmp_path, '{"METAMASK_PASSWORD": "hunter2'),
            "not_object": lambda: _secrets(tmp_path, ["hunter2"])}[case]()
    with pytest.raises(ConfigError) as err:
        load_config({"STATE_DIR": str(tmp_path), "SECRETS_FILE": str(path)}, dotenv_path=tmp_path / "no.env",
                    check_dirs=False)
    assert err.value.var == "SECRETS_FILE" and needle in str(err.value) and "hunter2" not in str(err.value)


def test_supervisor_fatal_retry_defaults_to_five_minutes_and_is_validated(tmp_path: Path):
    base = {"STATE_DIR": str(tmp_path)}
    assert load_config(base, dotenv_path=tmp_path / "no.env", check_dirs=False).supervisor_fatal_retry == 300
    assert load_config({**base, "SUPERVISOR_FATAL_RETRY": "0"}, dotenv_path=tmp_path / "no.env",
                       check_dirs=False).supervisor_fatal_retry == 0      # 0: never retried by itself
    for bad, needle in (("nan", "finite"), ("-5", ">= 0"), ("inf", "finite"), ("soon", "not a number")):
        with pytest.raises(ConfigError) as err:
            load_config({**base, "SUPERVISOR_FATAL_RETRY": bad}, dotenv_path=tmp_path / "no.env", check_dirs=False)
        assert err.value.var == "SUPERVISOR_FATAL_RETRY" and needle in str(err.value)


def test_live_refuses_guard_values_that_switch_a_guard_off_unless_overridden(tmp_path: Path):
    base = {"STATE_DIR": str(tmp_path), "LOG_DIR": str(tmp_path), "PROFILE_DIR": str(tmp_path), "MODE": "live",
            "LIVE_CONFIRM": "I_UNDERSTAND"}
    load = lambda **kv: load_config({**base, **kv}, dotenv_path=tmp_path / "none", check_dirs=False)  # noqa: E731
    assert load().mode == "live"                                              # the defaults pass
    for var, value in (("MAX_DAILY_LOSS", "100000"), ("MAX_OPEN_EXPOSURE", "50000"), ("MAX_POSITION_SIZE", "5000"),
                       ("MAX_CONSECUTIVE_LOSSES", "1000"), ("MAX_TRADES_PER_DAY", "100000")):
        with pytest.raises(ConfigError) as info:
            load(**{var: value})
        assert info.value.var == var and "RISK_LIMITS_OVERRIDE=I_UNDERSTAND" in str(info.value)
        assert load(**{var: value}, RISK_LIMITS_OVERRIDE="I_UNDERSTAND").mode == "live"
    with pytest.raises(ConfigError) as info:
        load(POSITION_SIZE="60", MAX_DAILY_LOSS="50", MAX_POSITION_SIZE="60")
    assert info.value.var == "POSITION_SIZE" and "one losing trade" in str(info.value)
    paper = load_config({**base, "MODE": "paper", "MAX_DAILY_LOSS": "100000"}, dotenv_path=tmp_path / "none",
                        check_dirs=False)
    assert paper.max_daily_loss == 100000                                     # no money at stake: kept
