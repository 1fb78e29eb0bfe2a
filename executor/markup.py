"""Selector health: does the venue's market still match the site profile?

Checked once per window before a decision (off the critical path when a recent check passed),
re-checked about twice a window while idle, and reported once per window with the selector that
failed, a screenshot and a notification. A selector error never stops the watching: a repaired
site (or profile) is picked up on the next reload.
"""

from __future__ import annotations

import logging
import time

from executor.services import Services
from executor.state import ExecutorStatus
from executor.venue import Venue
from executor.venue_browser import safe_name
from executor.windows import WindowCtx, status_is

log = logging.getLogger("executor.markup")


class MarkupHealth:
    def __init__(self, svc: Services, venue: Venue, site_name: str):
        self.svc, self.venue, self.site_name = svc, venue, site_name
        self.ok_at: dict[str, float] = {}   # asset -> when its market last matched every required selector
        self._reloaded_for = -1

    def reset(self) -> None:
        self.ok_at.clear()

    def recently_ok(self, asset: str, within: float) -> bool:
        ok_at = self.ok_at.get(asset)
        return ok_at is not None and time.monotonic() - ok_at < within

    def ready(self, asset: str) -> bool:
        """Whether the venue's page can be judged now (not while a tab is on its way to its event page)."""
        return bool(self.venue.page_ready(asset))

    def check(self, w: WindowCtx) -> bool:
        """True when every required selector matches; else record a selector error (once per window).
        False without a verdict while the page is still loading."""
        if not self.ready(w.asset):
            return False
        missing = self.venue.missing_selectors(w.asset)
        if not missing:
            w.markup_checked = True
            self.ok_at[w.asset] = time.monotonic()
            if status_is(self.svc, ExecutorStatus.SELECTOR_ERROR):
                log.info("the page matches the site profile again")
                self.svc.state.set(status=ExecutorStatus.WATCHING, reason=None, selector_error=None)
            return True
        key, sel = missing[0]
        msg = (f"selector {key} ({sel}) matched nothing on the page: the site changed or the site profile"
               f" {self.site_name} is stale; not trading, still watching")
        if w.selector_error is None:
            w.selector_error = msg
            log.error("%s %s: %s%s", w.asset, w.slug, msg,
                      f" (also missing: {', '.join(k for k, _ in missing[1:])})" if missing[1:] else "")
            self.svc.state.bump("selector_errors")
            self.svc.state.set(status=ExecutorStatus.SELECTOR_ERROR, reason=msg,
                               selector_error={"selector": key, "css": sel, "missing": [k for k, _ in missing],
                                               "window": w.slug, "at": self.svc.clock()})
            self.venue.screenshot(f"selector-{w.slug}", safe_name(key))
            self.svc.notify("selector_error", msg)
        w.last_reason = msg
        return False

    def recheck_when_idle(self, windows: dict[str, WindowCtx]) -> None:
        """Between decisions, re-check each market about twice a window, so the check at a new
        window's start (the latency-critical moment) is usually already done."""
        for asset, w in windows.items():
            if not w.decided or not w.page_seen:
                continue
            if self.recently_ok(asset, self.svc.cfg.window_seconds / 2) or not self.ready(asset):
                continue
            if self.venue.missing_selectors(asset):
                self.ok_at.pop(asset, None)   # the next window checks (and reports) in full
            else:
                self.ok_at[asset] = time.monotonic()

    def on_grid_miss(self, asset: str, grid_start: int) -> None:
        """The venue has not shown the grid's window: after a selector error, reload once per window."""
        if status_is(self.svc, ExecutorStatus.SELECTOR_ERROR) and self._reloaded_for != grid_start:
            self._reloaded_for = grid_start
            self.reset()
            self.venue.after_failed_trade()
