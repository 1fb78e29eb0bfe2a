"""The smaller supervisor commands: doctor, logs, resume, login's refusals, the flock fallback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from browser_tools import api_checks
from browser_tools import doctor as doctor_tool
from browser_tools.api_checks import check_apis
from core.config import load_config
from tests.replica_support import start_replica
from tests.supervisor_support import (
    FAST_KNOBS,
    REPO,
    SUPERVISOR,
    Tracker,
    run_sup,
    stub_child,
    write_children,
)
from tests.waiting import wait_for


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def env(iso_env, tmp_path):
    e = dict(iso_env)
    e.update(FAST_KNOBS)
    e["DOTENV_PATH"] = str(tmp_path / "cli.env")
    (tmp_path / "cli.env").write_text("MODE=demo\n")
    os.chmod(tmp_path / "cli.env", 0o600)
    tracker = Tracker(Path(e["STATE_DIR"]))
    try:
        yield e
    finally:
        tracker.note_all()
        if tracker.anything_recorded():  # a test that stopped everything itself needs no second stop
            run_sup(e, "stop", timeout=60)
        assert not tracker.kill_leftovers()


@pytest.mark.browser
def test_doctor_checks_config_browser_permissions_and_probes_the_replica(env, tmp_path):
    env.update(REPLICA_PORT=str(_free_port()), REPLICA_WALLET_PORT=str(_free_port()),
               DASHBOARD_PORT=str(_free_port()))
    os.chmod(tmp_path / "cli.env", 0o644)
    r = run_sup(env, "doctor", timeout=240)
    out = r.stdout
    assert r.returncode == 0, out + r.stderr
    assert "OK    config" in out and "OK    browser" in out
    assert "WARN  config" in out and "readable by other users" in out and "chmod 600" in out
    assert "OK    probe" in out and "probe: all required selectors match" in out
    # the public APIs, per endpoint, on the same temporary replica
    assert "OK    gamma      /events?slug=btc-updown-" in out and "/version: exchange version 2" in out
    assert "OK    clob       /book?token_id=" in out and "FAIL  gamma" not in out and "FAIL  clob" not in out
    # the temporary replica it started for the probe is gone again
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(env["REPLICA_PORT"])), timeout=1).close()


@pytest.fixture(scope="module")
def api_replica(tmp_path_factory):
    with start_replica(tmp_path_factory.mktemp("api-replica"), window_seconds=20, assets=("BTC", "ETH")) as rep:
        yield rep


def _api_cfg(rep, tmp_path, **over: str):
    env = {"MODE": "demo", "WINDOW_SECONDS": "20", "ASSETS": "BTC,ETH", "GAMMA_URL": rep.base_url + "/gamma",
           "CLOB_URL": rep.base_url + "/clob", "STATE_DIR": str(tmp_path / "s"), "LOG_DIR": str(tmp_path / "l"),
           "PROFILE_DIR": str(tmp_path / "p"), **over}
    return load_config(env, dotenv_path=tmp_path / "no.env")


API_ENDPOINTS = ("/events?slug=btc-updown-20s-", "/events?slug=eth-updown-20s-", "/markets?slug=btc-updown-20s-",
                 "/version", "/book?token_id=", "/price?token_id=", "/midpoint?token_id=", "/fee-rate?token_id=",
                 "/markets/0x")


def test_doctor_reports_each_api_endpoint_of_the_replica(api_replica, tmp_path, capsys):
    rep = doctor_tool.Report()
    doctor_tool._apis(rep, _api_cfg(api_replica, tmp_path))
    lines = capsys.readouterr().out.splitlines()
    assert rep.failed == 0 and len(lines) == len(API_ENDPOINTS)
    for endpoint, line in zip(API_ENDPOINTS, lines, strict=True):
        assert line.startswith("OK ") and endpoint in line, line
    assert any("exchange version 2" in line for line in lines)
    assert any("tokens Up/Down match Gamma's" in line for line in lines)
    assert any("$10 fills at avg" in line for line in lines)


@pytest.mark.parametrize("fault, says", [("api_geoblock", "403 Forbidden: GEOBLOCKED"),
                                         ("api_html", "an HTML page instead of JSON"),
                                         ("api_unavailable", "server error")])
def test_doctor_names_each_api_fault(api_replica, tmp_path, fault, says):
    api_replica.faults({"kind": fault, "mode": "persistent"})
    try:
        checks = check_apis(_api_cfg(api_replica, tmp_path))
    finally:
        api_replica.clear_faults()
    failed = [c for c in checks if c.level == "FAIL"]
    assert len(failed) == 3 and all(says in c.text for c in failed)       # both Gammas and /version
    assert failed[0].text.startswith(API_ENDPOINTS[0]) and failed[1].text.startswith(API_ENDPOINTS[1])
    assert failed[2].text.startswith("/version:")
    (skipped,) = [c for c in checks if c.level == "NOTE"]
    assert "/book" in skipped.text and "no market from Gamma" in skipped.text


def test_doctor_api_checks_of_a_host_that_does_not_answer(tmp_path):
    port = _free_port()       # nothing listens there
    cfg = load_config({"MODE": "demo", "ASSETS": "BTC,ETH", "GAMMA_URL": f"http://127.0.0.1:{port}/gamma",
                       "CLOB_URL": f"http://127.0.0.1:{port}/clob", "STATE_DIR": str(tmp_path / "s"),
                       "LOG_DIR": str(tmp_path / "l"), "PROFILE_DIR": str(tmp_path / "p")},
                      dotenv_path=tmp_path / "no.env")
    checks = check_apis(cfg)
    assert [(c.level, c.what) for c in checks] == [("FAIL", "gamma"), ("NOTE", "gamma"), ("FAIL", "clob"),
                                                    ("NOTE", "clob")]
    assert "unreachable" in checks[0].text and "did not answer" in checks[1].text


def test_doctor_warns_of_an_unknown_exchange_version():
    assert api_checks._version_check(2).level == "OK" and api_checks._version_check(3).level == "OK"
    unknown = api_checks._version_check(4)
    assert unknown.level == "WARN" and "not one this agent knows" in unknown.text


def test_doctor_fails_on_a_bad_config(env, tmp_path):
    (tmp_path / "cli.env").write_text("ASSETS=BTC,BTC\n")
    r = run_sup(env, "doctor", timeout=60)
    assert r.returncode == 1 and "FAIL  config" in r.stdout and "ASSETS" in r.stdout


def test_logs_follows_a_child_log_and_flock_fallback_refuses_a_second_start(env, tmp_path):
    env["SUPERVISOR_NO_FLOCK"] = "1"  # the macOS path: Python's fcntl instead of flock(1)
    env["SUPERVISOR_CHILDREN_FILE"] = str(write_children(tmp_path, [stub_child("alpha")]))
    assert run_sup(env, "start").returncode == 0
    again = run_sup(env, "start")
    assert again.returncode == 1 and "already running" in again.stderr
    tail = subprocess.Popen([str(SUPERVISOR), "logs", "alpha"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        line = wait_for(lambda: tail.stdout.readline(), 10, "a line from logs alpha")
        assert "alpha" in line or "stub" in line
    finally:
        os.killpg(tail.pid, signal.SIGTERM)
        tail.wait(timeout=10)
    bad = run_sup(env, "logs", "../etc")
    assert bad.returncode != 0 and "not a process name" in bad.stderr


def test_resume_without_a_halt_and_login_refusals(env, tmp_path):
    r = run_sup(env, "resume")
    assert r.returncode == 0, r.stderr
    assert "not halted" in r.stdout or "no risk module" in r.stdout
    no_display = {k: v for k, v in env.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    r = run_sup(no_display, "login", timeout=120)
    assert r.returncode == 1 and "no display" in r.stderr
    env["SUPERVISOR_CHILDREN_FILE"] = str(write_children(tmp_path, [stub_child("alpha")]))
    assert run_sup(env, "start").returncode == 0
    r = run_sup({**env, "DISPLAY": ":99"}, "login", timeout=120)
    assert r.returncode == 1 and "./supervisor.sh stop first" in r.stderr


def test_start_refuses_when_the_demo_ports_are_taken(env):
    """Another program on REPLICA_PORT: one line naming the variable, exit 2, nothing started
    (instead of a replica crash-looping into FATAL while the executor watches someone else's page)."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        env.update(REPLICA_PORT=str(port), REPLICA_WALLET_PORT=str(_free_port()))
        r = run_sup(env, "start", timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"REPLICA_PORT={port} is already in use" in r.stderr and "nothing started" in r.stderr
    assert not list((Path(env["STATE_DIR"]) / "pids").glob("*.json"))


@pytest.mark.parametrize("where", ["environment", ".env"])
def test_a_bad_browser_path_refuses_start_with_one_line_exit_2(env, tmp_path, where):
    """BROWSER_PATH that is not an executable: one config-error line naming it, exit 2, nothing started;
    from .env as much as from the environment (never silently replaced by a discovered browser)."""
    bad = "/nonexistent/" + "chrome" * 30  # long: the line echoes at most 80 characters of it
    env.pop("BROWSER_PATH", None)
    if where == ".env":
        (tmp_path / "cli.env").write_text(f"MODE=demo\nBROWSER_PATH={bad}\n")
    else:
        env["BROWSER_PATH"] = bad
    r = run_sup(env, "start", timeout=120)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stdout + r.stderr
    assert len(lines) == 1 and lines[0].startswith("config error: BROWSER_PATH is not an executable file"), lines
    assert bad not in lines[0] and bad[:70] in lines[0]
    assert not (Path(env["STATE_DIR"]) / "supervisor.json").exists()
    assert not (Path(env["STATE_DIR"]) / "pids" / "monitor.json").exists()


def test_logs_of_a_misspelt_name_fails_at_once_instead_of_waiting(env):
    (Path(env["LOG_DIR"])).mkdir(parents=True, exist_ok=True)
    r = run_sup(env, "logs", "exectuor", timeout=30)
    assert r.returncode != 0 and "no log named exectuor" in r.stderr and "executor" in r.stderr


def test_an_unknown_command_is_named(env):
    r = run_sup(env, "unpuase")
    assert r.returncode == 2 and "unknown command unpuase" in r.stderr and "usage" in r.stderr.lower()
    assert run_sup(env, "help").returncode == 0
