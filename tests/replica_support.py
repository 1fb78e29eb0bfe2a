"""Run the replica as a real subprocess for tests (shared by the replica's and the executor's tests).

Stable API (other areas rely on it; extend, never rename): `start_replica`, `Replica`,
`ReplicaApiError`, `REPLICA_PASSWORD` and `REPO`, documented in replica/process.py (where the
harness lives, so that the benchmarks can use it without importing tests), and
`wait_until(predicate, timeout=10, interval=0.05, what=...)`: tests/waiting.py's `wait_for`.

Pytest fixtures: `replica` (one per test) and `replica_module` (one per module); import them
into a test module with `from tests.replica_support import replica, replica_module  # noqa: F401`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from core.browser_discovery import find_browser, launch_args
from replica.process import REPLICA_PASSWORD, REPO, Replica, ReplicaApiError, start_replica
from tests.waiting import wait_for

__all__ = ["REPLICA_PASSWORD", "REPO", "Replica", "ReplicaApiError", "replica", "replica_module", "start_replica",
           "wait_until"]


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05,
               what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy; AssertionError after `timeout` seconds."""
    return wait_for(predicate, timeout, what, interval)


@pytest.fixture
def replica(tmp_path: Path):
    rep = start_replica(tmp_path / "replica")
    try:
        yield rep
    finally:
        rep.stop()


@pytest.fixture(scope="module")
def replica_module(tmp_path_factory: pytest.TempPathFactory):
    rep = start_replica(tmp_path_factory.mktemp("replica"))
    try:
        yield rep
    finally:
        rep.stop()


@contextmanager
def launched_chromium(path: str | None = None) -> Iterator[Any]:
    """A headless Chromium (the discovered one unless `path`) for a module's browser tests."""
    from playwright.sync_api import sync_playwright

    path = path or find_browser()
    if not path:
        pytest.fail("no Chrome/Chromium found: run the tests through ./supervisor.sh test")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, args=launch_args(), headless=True)
        try:
            yield b
        finally:
            b.close()
