"""Find a Chrome/Chromium executable, and the launch flags for a closed network.

Order: BROWSER_PATH; then google-chrome, chromium, chromium-browser on PATH (and the usual
macOS application paths); then Playwright's own downloaded Chromium. `python -m
core.browser_discovery` prints the path (exit 0) or one line saying what to install (exit 1).
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
from pathlib import Path

# Without these, Chromium stalls or spams connection attempts on a machine with no internet.
CLOSED_NETWORK_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--no-default-browser-check",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
)

PATH_CANDIDATES = ("google-chrome", "google-chrome-stable", "chromium", "chromium-browser", "chrome")
MAC_CANDIDATES = (
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
)
INSTALL_HINT = (
    "no Chrome or Chromium found: install one (Debian/Ubuntu: sudo apt-get install chromium;"
    " macOS: install Google Chrome) or set BROWSER_PATH=/path/to/chrome in .env"
)


def _playwright_chromium() -> str | None:
    roots = [os.environ.get("PLAYWRIGHT_BROWSERS_PATH", ""),
             str(Path.home() / ".cache" / "ms-playwright"),
             str(Path.home() / "Library" / "Caches" / "ms-playwright")]
    for root in roots:
        if not root:
            continue
        for pattern in ("chromium-*/chrome-linux*/chrome",
                        "chromium-*/chrome-mac*/Chromium.app/Contents/MacOS/Chromium"):
            hits = sorted(glob.glob(os.path.join(root, pattern)))
            if hits:
                return hits[-1]
    return None


def find_browser(explicit: str | None = None) -> str | None:
    """The executable to use, or None. An explicit path that does not exist gives None."""
    explicit = explicit if explicit is not None else os.environ.get("BROWSER_PATH", "").strip() or None
    if explicit:
        return explicit if os.path.isfile(explicit) and os.access(explicit, os.X_OK) else None
    for name in PATH_CANDIDATES:
        hit = shutil.which(name)
        if hit:
            return hit
    for path in MAC_CANDIDATES:
        if os.path.isfile(path):
            return path
    return _playwright_chromium()


def launch_args(extra: tuple[str, ...] = ()) -> list[str]:
    return list(CLOSED_NETWORK_ARGS) + list(extra)


def main() -> int:
    explicit = os.environ.get("BROWSER_PATH", "").strip() or None
    path = find_browser(explicit)
    if path:
        print(path)
        return 0
    if explicit:
        print(f"BROWSER_PATH={explicit} is not an executable file; fix it or unset it", file=sys.stderr)
    else:
        print(INSTALL_HINT, file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
