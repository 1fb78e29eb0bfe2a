"""The browser: a persistent Chromium context on the profile folder, and the page-side window watcher.

The window watcher is a MutationObserver injected into the market page (init script, so it
survives reloads) that calls a Python binding whenever a card's slug/window-start attribute
changes. Its selectors and attribute names come from the site profile.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from playwright.sync_api import BrowserContext, Playwright

from core.browser_discovery import find_browser, launch_args
from executor.profiles import SiteProfile, fill

log = logging.getLogger("executor.browser")

BINDING = "__executorWindowChanged"

_OBSERVER_JS = """
(function (cfg) {
  if (window.top !== window) return;
  var last = {};
  function report() {
    for (var i = 0; i < cfg.assets.length; i++) {
      var asset = cfg.assets[i], root = null;
      try { root = document.querySelector(cfg.roots[asset]); } catch (e) { return; }
      if (!root) continue;
      var slug = root.getAttribute(cfg.slugAttr), start = root.getAttribute(cfg.startAttr);
      var key = slug + '|' + start;
      if (slug && last[asset] !== key && typeof window[cfg.binding] === 'function') {
        last[asset] = key;
        window[cfg.binding]({asset: asset, slug: slug, start: start, t: Date.now()});
      }
    }
  }
  function install() {
    new MutationObserver(report).observe(document.documentElement, {subtree: true, childList: true,
      attributes: true, attributeFilter: [cfg.slugAttr, cfg.startAttr]});
    report();
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', install);
  else install();
})
"""


class BrowserUnavailable(Exception):
    """No browser executable, or it would not start (the message says which and what to do)."""


def observer_script(site: SiteProfile, assets: tuple[str, ...]) -> str:
    cfg = {"assets": list(assets), "roots": {a: fill(site.card["root"], asset=a) for a in assets},
           "slugAttr": site.card["slug_attribute"], "startAttr": site.card["window_start_attribute"],
           "binding": BINDING}
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
