"""Shared fixtures. Area-specific fixtures live in tests/<area>_support.py, not here."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


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
