"""`login`: a visible browser on the trading profile, once, so the user can install and unlock the
wallet and log in to the site. The executor later reuses that profile (cookies, wallet) headless.

Refuses while the supervisor runs (the executor's browser holds the profile) and on a machine with
no display (exit 1, ExitStatus.ERROR; a bad config: 2, ExitStatus.REFUSED). Waits until the user
closes the browser window (or presses Ctrl-C).
"""

from __future__ import annotations

import os
import sys

from core.browser_discovery import find_browser
from core.config import ConfigError, load_config
from core.exit_codes import ExitStatus
from monitor.settings import paths_of
from monitor.stop import lock_held

# A normal browser for a person: extensions allowed (the wallet), no automation banner.
LOGIN_ARGS = ["--no-first-run", "--no-default-browser-check"]
IGNORED_DEFAULTS = ["--disable-extensions", "--enable-automation",
                    "--disable-component-extensions-with-background-pages"]


def _has_display() -> bool:
    return sys.platform == "darwin" or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def login() -> ExitStatus:
    try:
        cfg = load_config({**os.environ, "LIVE_CONFIRM": "I_UNDERSTAND"})  # login trades nothing
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return ExitStatus.REFUSED
    if lock_held(paths_of(cfg)):
        print("login: the supervisor is running and its browser holds the profile: ./supervisor.sh stop first",
              file=sys.stderr)
        return ExitStatus.ERROR
    if not _has_display():
        print("login: no display (DISPLAY is not set): run it on a machine with a screen, or over `ssh -X`;"
              f" the profile folder is {cfg.browser_profile_path}", file=sys.stderr)
        return ExitStatus.ERROR
    exe = cfg.browser_path or find_browser()
    if not exe:
        print("login: no Chrome/Chromium found: install one or set BROWSER_PATH", file=sys.stderr)
        return ExitStatus.ERROR
    profile = cfg.browser_profile_path
    profile.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(profile, 0o700)
    print(f"login: opening {exe} on the profile {profile} at {cfg.market_url}\n"
          "  1. install your wallet extension (MetaMask) if it is not there yet, and unlock or import it;\n"
          "  2. on the market page, log in / connect the wallet; one small manual trade settles the\n"
          "     one-time approvals and terms;\n"
          "  3. close the browser window when done (or press Ctrl-C here).", flush=True)
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    args = LOGIN_ARGS + (["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])
    try:
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                str(profile), executable_path=exe, headless=False, args=args,
                ignore_default_args=IGNORED_DEFAULTS, no_viewport=True, timeout=60_000)
            try:
                page = ctx.pages[0] if ctx.pages else ctx.new_page()
                try:
                    page.goto(cfg.market_url, timeout=60_000)
                except PlaywrightError as exc:
                    print(f"login: could not open {cfg.market_url} ({str(exc).splitlines()[0]}); the browser"
                          " stays open", flush=True)
                ctx.wait_for_event("close", timeout=0)
            except KeyboardInterrupt:
                ctx.close()
    except PlaywrightError as exc:
        print(f"login: the browser failed: {str(exc).splitlines()[0]}", file=sys.stderr)
        return ExitStatus.ERROR
    print(f"login: done; the profile {profile} is saved. Next: ./supervisor.sh doctor, then start.")
    return ExitStatus.OK
