"""The test suite's own guard: nothing in a test process reaches beyond 127.0.0.1."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import REFUSED, NetworkRefused, _loopback


def test_guard_refuses_the_outside_world():
    """127.0.0.1 and ::1 pass, anything else fails (the guard is tests/conftest.py's only_loopback)."""
    assert _loopback(("127.0.0.1", 80)) and _loopback(("::1", 80, 0, 0)) and _loopback("/tmp/x.sock")
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(NetworkRefused):
            s.connect(("192.0.2.1", 443))          # TEST-NET-1: never reached, the guard stops it first
        with pytest.raises(NetworkRefused):
            s.connect_ex(("clob.polymarket.com", 443))
    finally:
        s.close()
    assert len(REFUSED) == 2          # ... and the test that tried fails at teardown (cleared here: on purpose)
    REFUSED.clear()
    assert _loopback(("::ffff:127.0.0.1", 80, 0, 0)) and not _loopback(("::ffff:192.0.2.1", 80, 0, 0))
