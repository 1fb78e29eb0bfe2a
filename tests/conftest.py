"""Shared fixtures. Area-specific fixtures live in tests/<area>_support.py, not here."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _loopback(address: object) -> bool:
    host = address[0] if isinstance(address, tuple) and address else None
    if not isinstance(host, str):
        return True                     # AF_UNIX paths, abstract sockets: local by nature
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
        mapped = getattr(ip, "ipv4_mapped", None)       # ::ffff:127.0.0.1
        return ip.is_loopback or ip.is_unspecified or bool(mapped and mapped.is_loopback)
    except ValueError:
        return False                    # a host name: it would need DNS, i.e. the outside world


class NetworkRefused(OSError):
    """A test (in this process) tried to reach something that is not 127.0.0.1."""


REFUSED: list[str] = []   # every refused attempt: the test that made one fails, even if the code under
                          # test took the OSError for an ordinary outage and carried on


@pytest.fixture(autouse=True, scope="session")
def only_loopback():
    """Tests talk only to 127.0.0.1: a connection anywhere else from the test process fails loudly
    (the real site and exchanges must never be reached, even by a default URL a test forgot to
    override). Child processes are covered by the URLs the tests give them."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(sock: socket.socket, address: object) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address):
            REFUSED.append(repr(address))
            raise NetworkRefused(f"test tried to connect to {address!r}: tests talk only to 127.0.0.1")

    def connect(sock, address):
        check(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock, address):
        check(sock, address)
        return real_connect_ex(sock, address)

    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
    try:
        yield
    finally:
        socket.socket.connect, socket.socket.connect_ex = real_connect, real_connect_ex


@pytest.fixture(autouse=True)
def no_refused_connection(only_loopback):
    """Fail the test that tried to reach beyond 127.0.0.1 (see only_loopback)."""
    REFUSED.clear()
    yield
    tried, REFUSED[:] = list(REFUSED), []
    assert not tried, f"this test tried to connect beyond 127.0.0.1: {', '.join(tried[:5])}"


@pytest.fixture
def iso_env(tmp_path: Path) -> dict[str, str]:
    """An environment for a process under test: its own state/log/profile dirs, no .env."""
    env = {k: v for k, v in os.environ.items() if k not in ("METAMASK_PASSWORD", "MODE", "LIVE_CONFIRM")}
    env.update({
        "STATE_DIR": str(tmp_path / "state"),
        "LOG_DIR": str(tmp_path / "logs"),
        "PROFILE_DIR": str(tmp_path / "profiles"),
        "DOTENV_PATH": str(tmp_path / "no.env"),
        "PYTHONPATH": str(REPO),
    })
    return env


@pytest.fixture(scope="session")
def browser_path() -> str:
    from core.browser_discovery import find_browser

    path = find_browser()
    if not path:
        pytest.fail("no browser found: run the tests through ./supervisor.sh test, which installs one")
    return path
