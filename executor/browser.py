"""The browser: a persistent Chromium context on the profile folder, and the page-side window watcher.

The window watcher is a MutationObserver injected into each event page (an init script, so it
survives navigations and reloads) that calls a Python binding when the page is ready to be read
(it sends the embedded data script's text, so no round trip is needed to read it), when the page
answered an HTTP error, when the visible widget's trade button changes its text (so "Deposit" or
"Log in" is known at once), and when it shows that its window has ended ("Go to live market").
Python then checks the page against the APIs, or navigates the tab to the next window's event
page (executor/event_tabs.py). Its selectors and the event path come from the site profile.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from playwright.sync_api import BrowserContext, Playwright

from core.browser_discovery import find_browser, launch_args
from executor.profiles import SiteProfile

log = logging.getLogger("executor.browser")

BINDING = "__executorWindowChanged"

_OBSERVER_JS = """
(function (cfg) {
  if (window.top !== window) return;
  var last = '';
  function status() {
    var nav = (performance.getEntriesByType && performance.getEntriesByType('navigation')[0]) || {};
    return nav.responseStatus || 0;
  }
  function button() {   // the trade button of the visible widget (the page may hold hidden copies)
    var roots = document.querySelectorAll(cfg.rootSel);
    for (var i = 0; i < roots.length; i++) {
      var r = roots[i], shown = r.checkVisibility ? r.checkVisibility() : r.getClientRects().length > 0;
      var b = shown ? r.querySelector(cfg.buttonSel) : null;
      if (b) return (b.innerText || b.textContent || '').trim();
    }
    return null;
  }
  function report() {
    var at = location.pathname.indexOf(cfg.eventPrefix);
    if (at < 0) return;
    var slug = location.pathname.slice(at + cfg.eventPrefix.length).split('/')[0];
    var script = document.querySelector(cfg.dataSel), ended = !!document.querySelector(cfg.endedSel);
    var code = status(), text = button(), key = [slug, !!script, ended, code, text].join('|');
    if (key === last || typeof window[cfg.binding] !== 'function') return;
    last = key;
    window[cfg.binding]({slug: slug, data: script ? script.textContent : null, ended: ended, status: code,
                         button: text, t: Date.now()});
  }
  function install() {
    new MutationObserver(report).observe(document.documentElement, {subtree: true, childList: true});
    report();
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', install);
  else install();
})
"""


class BrowserUnavailable(Exception):
    """No browser executable, or it would not start (the message says which and what to do)."""


def observer_script(site: SiteProfile) -> str:
    prefix = site.urls["event"].split("{slug}", 1)[0]
    cfg = {"eventPrefix": prefix, "dataSel": site.page["event_data"], "endedSel": site.page["go_live"],
           "rootSel": site.widget["root"], "buttonSel": site.widget["submit_button"], "binding": BINDING}
    return _OBSERVER_JS.strip() + "(" + json.dumps(cfg) + ");"


def prepare_profile_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def launch(pw: Playwright, cfg) -> BrowserContext:
    exe = find_browser(cfg.browser_path)
    if not exe:
        if cfg.browser_path:
            raise BrowserUnavailable(f"BROWSER_PATH={cfg.browser_path} is not an executable file; fix it or unset it")
        raise BrowserUnavailable("no Chrome/Chromium found: set BROWSER_PATH or install chromium")
    profile = prepare_profile_dir(cfg.browser_profile_path)
    log.info("launching %s on profile %s (headless=%s)", exe, profile, cfg.headless)
    return pw.chromium.launch_persistent_context(
        str(profile), executable_path=exe, args=launch_args(), headless=cfg.headless,
        timeout=30_000, viewport={"width": 1280, "height": 900})
