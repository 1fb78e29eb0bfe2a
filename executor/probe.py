"""`python -m executor --probe`: load each asset's current event page and report, selector by selector,
which of the site profile's selectors match (widget parts inside the visible trade widget), and
the wallet profile's if a wallet popup is open. Trades nothing. Exit 0 when every required
selector matches, else 1."""

from __future__ import annotations

import sys
import time
from urllib.parse import urlsplit

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

from core.window_grid import window_at
from executor.browser import BrowserUnavailable, launch
from executor.profiles import SiteProfile, WalletProfile, fill

SIDES = (("Up", "0"), ("Down", "1"))   # the outcome buttons' values in the usual outcomes order
# Present only during or after an order (or in one mode), so not required on an idle page.
DURING_TRADE = ("page.toast_success", "page.toast_error", "widget.amount_input")


def _count(page, selector: str) -> int | str:
    try:
        return page.locator(selector).count()
    except PlaywrightError as exc:
        return f"invalid selector: {str(exc).splitlines()[0]}"


def _probe_asset(cfg, site: SiteProfile, page, asset: str, out) -> int:
    """Open `asset`'s current event page and report each selector; returns how many required ones failed."""
    parts = urlsplit(cfg.market_url)
    slug = window_at(asset, time.time(), cfg.window_seconds).slug
    url = f"{parts.scheme}://{parts.netloc}{site.event_path(slug)}"
    print(f"  {asset}: {url}", file=out)
    page.goto(url, timeout=cfg.step_timeout * 1000, wait_until="domcontentloaded")
    try:
        page.wait_for_load_state("load", timeout=cfg.step_timeout * 1000)
    except PlaywrightError:
        print("  (the page did not finish loading; probing what is there)", file=out)
    required = site.required_selectors()
    everything = {**required, **site.optional_selectors()}
    root = f"{site.widget['root']} >> visible=true"
    failures = 0
    for name, template in everything.items():
        for side, value in (SIDES if "{value}" in template else ((None, ""),)):
            label = f"{name}[{asset}{'/' + side if side else ''}]"
            sel = fill(template, value=value, asset_lower=asset.lower())
            full = sel if name.startswith("page.") else root if name == "widget.root" else f"{root} >> {sel}"
            n = _count(page, full)
            is_req = name in required and name not in DURING_TRADE
            if isinstance(n, int) and n > 0:
                status = "OK"
            elif is_req:
                status = "MISSING"
                failures += 1
            else:
                status = "absent"
            note = "" if is_req else " (optional" + (", appears during a trade)" if name in DURING_TRADE else ")")
            print(f"  {status:<8} {label}: {sel} -> {n}{note}", file=out)
    return failures


def probe(cfg, out=sys.stdout) -> int:
    site = SiteProfile.load(cfg.site_profile_path)
    wallet = WalletProfile.load(cfg.wallet_profile_path)
    print(f"probe: the event pages of {cfg.market_url} with site profile {site.path.name}"
          f"{'' if site.verified else ' (UNVERIFIED selectors)'} and wallet profile {wallet.path.name}", file=out)
    failures = 0
    try:
        with sync_playwright() as pw:
            ctx = launch(pw, cfg)
            try:
                page = ctx.pages[0] if ctx.pages else ctx.new_page()
                for asset in cfg.assets:
                    failures += _probe_asset(cfg, site, page, asset, out)
                popups = [p for p in ctx.pages if wallet.is_popup_url(p.url)]
                if not popups:
                    print("  (no wallet popup open: wallet selectors not probed)", file=out)
                for p in popups:
                    for key, sels in wallet.selectors.items():
                        hits = [(s, _count(p, s)) for s in sels]
                        ok = any(isinstance(n, int) and n > 0 for _, n in hits)
                        print(f"  {'OK' if ok else 'absent':<8} wallet.{key}: "
                              + ", ".join(f"{s} -> {n}" for s, n in hits), file=out)
            finally:
                ctx.close()
    except (PlaywrightError, BrowserUnavailable) as exc:
        print(f"probe failed: could not load {cfg.market_url}: {str(exc).splitlines()[0]}", file=out)
        return 1
    print(f"probe: {'all required selectors match' if not failures else f'{failures} required selector(s) MISSING'}",
          file=out)
    return 0 if not failures else 1
