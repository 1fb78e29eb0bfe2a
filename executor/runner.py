"""The executor's loop: browser lifecycle, window watch, decisions, trades, reconciliation, settlement.

One thread drives Playwright (the sync API). The page reports new windows through a bound
MutationObserver; the watchdog thread keeps the latest signal; the loop iterates every
~100 ms (heartbeat, events, decisions, stray wallet popups, settlements) and never blocks
longer than one short wait, so SIGTERM is handled within a fraction of a second.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, sync_playwright

from core import fees
from core.durable_files import touch_heartbeat
from core.window_grid import parse_iso_utc, window_at, window_slug
from executor import decision
from executor.browser import BINDING, BrowserUnavailable, launch, observer_script
from executor.journal import DecisionLog, TradeJournal, new_trade_id
from executor.pages import Interrupted, MarketPage, StepTimeout, Waiter, WalletPopup, parse_window_start
from executor.profiles import SiteProfile, WalletProfile
from executor.signals import Held, SignalWatcher
from executor.state import ExecutorState
from executor.trade import ClickThrough, Order, Outcome, row_fields

log = logging.getLogger("executor")

LOOP_WAIT_MS = 50
GRID_GRACE_S = 2.0          # the page should show a new window this soon after the grid says it began
SETTLE_EVERY_S = 2.0
SAVE_EVERY_S = 1.0
HEARTBEAT_EVERY_S = 0.5
BACKOFF_MAX_S = 30.0
EXIT_REFUSED = 2

try:  # the risk package (issue 6) is optional: without it, fixed POSITION_SIZE and no guards
    from risk.guards import RiskBook
    from notify import Notifier, summary_text
    from risk.sizing import position_size as risk_position_size
except ImportError:  # pragma: no cover - exercised only before the risk package lands
    RiskBook = Notifier = risk_position_size = summary_text = None


class BrowserGone(Exception):
    """The browser crashed, was killed or disconnected; the loop relaunches it."""


class Refused(Exception):
    """The executor refuses to run (the message is the one line shown); exit 2."""


class StopFlag:
    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def set(self, reason: str = "stop requested") -> None:
        self.reason = reason
        self._event.set()

    def __bool__(self) -> bool:
        return self._event.is_set()


@dataclass
class WindowCtx:
    asset: str
    start: int
    end: int
    slug: str
    page_seen: bool = False
    decided: bool = False
    last_reason: str = ""
    selector_error: str | None = None
    markup_checked: bool = False


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:120]


class Executor:
    def __init__(self, cfg, stop: StopFlag | None = None, clock=time.time):
        self.cfg = cfg
        self.stop = stop if stop is not None else StopFlag()
        self.clock = clock
        self.site = SiteProfile.load(cfg.site_profile_path)
        self.wallet = WalletProfile.load(cfg.wallet_profile_path)
        self.params = decision.Params.from_config(cfg)
        self.journal = TradeJournal(cfg.trades_path, cfg.mode, clock)
        self.decisions = DecisionLog(cfg.decisions_path, cfg.mode, clock)
        self.state = ExecutorState(cfg.executor_state_path, cfg.mode, clock)
        self.traded = self.journal.traded_windows()
        self.windows: dict[str, WindowCtx] = {}
        self.events: deque = deque()
        self.prices: dict[tuple[str, int], dict] = {}   # paper settlement: open/last price per window
        self._prices_lock = threading.Lock()
        self.signals = SignalWatcher({a: cfg.signal_path_for(a) for a in cfg.assets}, on_change=self._on_signal,
                                     clock=clock)
        self.market_origin = origin_of(cfg.market_url)
        self.ctx = None
        self.page: Page | None = None
        self.markets: dict[str, MarketPage] = {}
        self._gone = threading.Event()
        self._in_trade = False
        self._last_hb = 0.0
        self._last_save = 0.0
        self._last_settle = 0.0
        self._reloaded_for = -1
        self._markup_ok_at: dict[str, float] = {}   # asset -> when its card last matched every required selector
        self.risk = self.notifier = None
        if RiskBook is not None:
            try:
                self.risk = RiskBook(cfg)
                self.notifier = Notifier(cfg)
            except Exception as exc:  # noqa: BLE001 - risk is an add-on: log and trade with fixed size
                log.error("risk package present but failed to start (%s); trading without risk guards", exc)
                self.risk = self.notifier = None

    # ---- small helpers --------------------------------------------------------------------------
    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_hb >= HEARTBEAT_EVERY_S:
            touch_heartbeat(self.cfg.heartbeat_path("executor"))
            self._last_hb = now
        if force or now - self._last_save >= SAVE_EVERY_S:
            self.state.save()
            self._last_save = now

    def notify(self, event: str, text: str) -> None:
        if self.notifier is not None:
            self.notifier.send(event, text)

    def waiter(self) -> Waiter:
        return Waiter(lambda: self.page, tick=self.tick, should_stop=lambda: bool(self.stop))

    def screenshot(self, trade_id: str, step: str, page: Page | None, popup: WalletPopup | None) -> str | None:
        """PNG of the market page (and of the wallet popup, password field cleared first); returns
        the market page's file. Each part is best effort: a closing popup must not lose the other."""
        d = self.cfg.screenshot_dir
        d.mkdir(parents=True, exist_ok=True)
        name = _safe_name(f"{trade_id}-{step}")
        out = None
        if popup is not None and not popup.page.is_closed():
            try:
                popup.clear_password_field()
                popup.page.screenshot(path=str(d / f"{name}-wallet.png"), timeout=3000)
            except PlaywrightError as exc:
                log.warning("screenshot of the wallet popup failed: %s", str(exc).splitlines()[0])
        if page is not None and not page.is_closed():
            try:
                page.screenshot(path=str(d / f"{name}.png"), timeout=5000)
                out = d / f"{name}.png"
            except PlaywrightError as exc:
                log.warning("screenshot of the market page failed: %s", str(exc).splitlines()[0])
        return str(out) if out else None

    def _on_signal(self, asset: str, held: Held) -> None:
        """watchdog thread: note what we now hold (for status and the latency figure) and window prices."""
        data = held.data or {}
        self.state.set(signal={"asset": asset, "seq": data.get("seq"), "timestamp": data.get("timestamp"),
                               "problem": held.problem, "seen_at": held.seen_at})
        win = data.get("window") if isinstance(data.get("window"), dict) else {}
        start = parse_window_start(str(win.get("start"))) if win.get("start") else None
        if start is not None:
            with self._prices_lock:
                rec = self.prices.setdefault((asset, start), {})
                if isinstance(win.get("open_price"), (int, float)):
                    rec.setdefault("open", float(win["open_price"]))
                if isinstance(data.get("price"), (int, float)):
                    rec["last"] = float(data["price"])
                    rec["last_seen"] = held.seen_at
        self.state.save()

    # ---- lifecycle ------------------------------------------------------------------------------
    def run(self) -> int:
        self.state.set(status="starting", reason=None, pid=os.getpid(), started=self.clock())
        self.tick(force=True)
        self.signals.start()
        self.notify("start", f"executor started: mode {self.cfg.mode}, assets {','.join(self.cfg.assets)},"
                    f" strategy {self.cfg.strategy}, {self.cfg.market_url}")
        backoff = 1.0
        try:
            with sync_playwright() as pw:
                while not self.stop:
                    started = time.monotonic()
                    try:
                        if self.cfg.mode == "live" and not self.cfg.metamask_password:
                            self._require_unlocked_wallet(pw)
                        self._start_browser(pw)
                        self._loop()
                    except Refused:
                        raise
                    except BrowserUnavailable as exc:
                        raise Refused(f"executor: {exc}") from None
                    except (BrowserGone, PlaywrightError) as exc:
                        if self.stop:
                            break
                        first = (str(exc).splitlines() or [type(exc).__name__])[0]
                        self.state.bump("browser_relaunches")
                        self.state.set(status="browser_down", reason=f"browser lost: {first}")
                        log.error("browser lost (%s); relaunching in %.0fs", first, backoff)
                        self._close_browser()
                        if time.monotonic() - started > 60:
                            backoff = 1.0
                        self._sleep(backoff)
                        backoff = min(backoff * 2, BACKOFF_MAX_S)
                self._close_browser()
        except Refused as exc:
            print(str(exc), file=sys.stderr)
            self.state.set(status="refused", reason=str(exc))
            self._close_browser()
            return EXIT_REFUSED
        finally:
            self.signals.stop()
            if self.notifier is not None:
                self.notifier.send("stop", f"executor stopped ({self.stop.reason or 'done'})")
                self.notifier.close()
            if self.state.data.get("status") != "refused":
                self.state.set(status="stopped", reason=self.stop.reason or None)
            self.tick(force=True)
        log.info("executor stopped (%s)", self.stop.reason or "done")
        return 0

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stop and time.monotonic() < deadline:
            self.tick()
            self.stop._event.wait(min(0.2, max(0.0, deadline - time.monotonic())))

    def _close_browser(self) -> None:
        ctx, self.ctx, self.page = self.ctx, None, None
        if ctx is None:
            return
        try:
            ctx.close()
        except PlaywrightError as exc:
            log.debug("closing the browser: %s", exc)  # already gone: nothing more to close

    def _start_browser(self, pw) -> None:
        self._gone.clear()
        self._markup_ok_at.clear()
        self.ctx = ctx = launch(pw, self.cfg)
        ctx.on("close", lambda *_: self._gone.set())
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        for extra in ctx.pages[1:]:
            extra.close()
        page.on("crash", lambda *_: self._gone.set())
        page.on("close", lambda *_: self._gone.set())
        page.expose_binding(BINDING, self._on_window_binding)
        page.add_init_script(observer_script(self.site, self.cfg.assets))
        self.page = page
        self.markets = {a: MarketPage(page, self.site, a, self.waiter(), self.cfg.step_timeout)
                        for a in self.cfg.assets}
        log.info("opening %s", self.cfg.market_url)
        page.goto(self.cfg.market_url, timeout=self.cfg.step_timeout * 1000, wait_until="domcontentloaded")
        self.state.set(status="watching", reason=None)
        self._reconcile(min_age=0.0)
        self._settle_due(force=True)
        self.tick(force=True)

    def _require_unlocked_wallet(self, pw) -> None:
        """Live without METAMASK_PASSWORD: go on only if the page shows a connected account and no
        wallet popup asks for a password; otherwise refuse (exit 2). Checked once per launch."""
        try:
            self._start_browser(pw)
        except (PlaywrightError, BrowserUnavailable) as exc:
            raise Refused("live mode without METAMASK_PASSWORD: could not check that the wallet is unlocked"
                          f" ({(str(exc).splitlines() or ['?'])[0]}); set METAMASK_PASSWORD in .env") from None
        logged_in = self.site.page.get("logged_in")
        ok = False
        if logged_in:
            try:
                ok = self.page.locator(logged_in).first.is_visible()
            except PlaywrightError:
                ok = False
        popup = next((p for p in self.ctx.pages if self.wallet.is_popup_url(p.url)), None)
        if popup is not None and WalletPopup(popup, self.wallet, self.waiter(), 1).visible("unlock_password"):
            ok = False
        self._close_browser()
        if not ok:
            raise Refused("live mode needs METAMASK_PASSWORD or a wallet that is already unlocked and connected"
                          " (the page shows no logged-in account); set it in .env, not on the command line")

    # ---- the loop -------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self.stop:
            if self._gone.is_set() or self.page is None or self.page.is_closed():
                raise BrowserGone("the browser or its page closed")
            self.tick()
            now = self.clock()
            self._drain_window_events(now)
            for asset in self.cfg.assets:
                self._cross_check_grid(asset, now)
                self._evaluate(asset)
            self._reject_stray_popups()
            self._recheck_markup_when_idle()
            if time.monotonic() - self._last_settle >= SETTLE_EVERY_S:
                self._reconcile(min_age=self.cfg.step_timeout)
                self._settle_due()
            self._maybe_summary(now)
            self.page.wait_for_timeout(LOOP_WAIT_MS)

    def _maybe_summary(self, now: float) -> None:
        """The periodic summary (SUMMARY_INTERVAL), off the trading path like every notification."""
        if self.notifier is None or self.risk is None or not self.notifier.summary_due(now):
            return
        self.notify("summary", summary_text(self.risk.status(now)))

    def _recheck_markup_when_idle(self) -> None:
        """Between decisions, re-check each card's selectors about twice a window, so the check at a
        new window's start (the latency-critical moment) is usually already done."""
        for asset, w in self.windows.items():
            if not w.decided or not w.page_seen:
                continue
            ok_at = self._markup_ok_at.get(asset)
            if ok_at is not None and time.monotonic() - ok_at < self.cfg.window_seconds / 2:
                continue
            if self.markets[asset].missing_selectors():
                self._markup_ok_at.pop(asset, None)   # the next window checks (and reports) in full
            else:
                self._markup_ok_at[asset] = time.monotonic()

    def _on_window_binding(self, source, payload) -> None:
        """Called (in the Playwright thread) by the page's MutationObserver on every window change."""
        self.events.append((payload, self.clock()))

    def _drain_window_events(self, now: float) -> None:
        while self.events:
            payload, seen = self.events.popleft()
            if not isinstance(payload, dict):
                continue
            asset = str(payload.get("asset", "")).upper()
            start = parse_window_start(str(payload.get("start")))
            slug = str(payload.get("slug") or "")
            if asset not in self.markets or start is None or not slug:
                log.warning("window event from the page not understood: %r", payload)
                continue
            self._on_window(asset, start, slug, seen, via="page")

    def _on_window(self, asset: str, start: int, slug: str, seen: float, via: str) -> None:
        cur = self.windows.get(asset)
        if cur is not None and cur.start == start:
            if not cur.page_seen:
                cur.page_seen, cur.slug = True, slug
                log.info("%s window %s now shown by the page (%s)", asset, slug, via)
            return
        if cur is not None and start < cur.start:
            return  # an older window (e.g. a reload racing the clock): ignore
        if cur is not None:
            self._finish_window(cur, "window ended")
        w = WindowCtx(asset, start, start + self.cfg.window_seconds, slug, page_seen=True)
        self.windows[asset] = w
        self.state.bump("windows")
        grid = window_at(asset, seen, self.cfg.window_seconds)
        log.info("%s new window %s (via %s, %.3fs after its start; grid %s)", asset, slug, via, seen - start,
                 "agrees" if grid.start == start else f"says {grid.start}")

    def _cross_check_grid(self, asset: str, now: float) -> None:
        g = window_at(asset, now, self.cfg.window_seconds)
        cur = self.windows.get(asset)
        if cur is not None and cur.start >= g.start:
            if cur.start > g.start:
                cur.last_reason = f"page shows window {cur.start}, the UTC grid says {g.start}"
            return
        if now - g.start < GRID_GRACE_S and cur is not None:
            return
        # The page has not reported the grid's window: read the card directly once per loop.
        if self.state.data.get("status") == "selector_error" and self._reloaded_for != g.start:
            self._reloaded_for = g.start   # keep watching: a repaired site (or profile) shows up on reload
            self._reload_page()
        shown = self.markets[asset].window()
        if shown is not None and shown[1] >= g.start:
            self._on_window(asset, shown[1], shown[0], now, via="direct read")
            return
        if cur is not None and cur.start == g.start:
            return
        if cur is not None:
            self._finish_window(cur, "window ended")
        w = WindowCtx(asset, g.start, g.end, window_slug(asset, g.start, self.cfg.window_seconds), page_seen=False)
        w.last_reason = ("the page does not show this window (it shows "
                         f"{shown[0] if shown else 'no market card'})")
        self.windows[asset] = w
        self.state.bump("windows")
        log.warning("%s: the UTC grid says window %s began but %s", asset, w.slug, w.last_reason)

    def _finish_window(self, w: WindowCtx, why: str) -> None:
        if w.decided:
            return
        reason = w.last_reason or why
        self._decide_line(w, "skipped", reason)

    def _decide_line(self, w: WindowCtx, action: str, reason: str, **fields) -> None:
        w.decided = True
        if self.decisions.write(w.asset, w.start, w.slug, action, reason, strategy=self.cfg.strategy, **fields):
            self.state.window_handled(w.asset, w.start, w.slug, action)
            self.state.bump("traded" if action == "traded" else "skipped")
            log.info("%s %s: %s (%s)", w.asset, w.slug, action, reason)

    def _check_markup(self, w: WindowCtx) -> bool:
        """True when every required selector matches; else record a selector error (once per window)."""
        missing = self.markets[w.asset].missing_selectors()
        if not missing:
            w.markup_checked = True
            self._markup_ok_at[w.asset] = time.monotonic()
            if self.state.data.get("status") == "selector_error":
                log.info("the page matches the site profile again")
                self.state.set(status="watching", reason=None, selector_error=None)
            return True
        key, sel = missing[0]
        msg = (f"selector {key} ({sel}) matched nothing on the page: the site changed or the site profile"
               f" {self.site.path.name} is stale; not trading, still watching")
        if w.selector_error is None:
            w.selector_error = msg
            log.error("%s %s: %s%s", w.asset, w.slug, msg,
                      f" (also missing: {', '.join(k for k, _ in missing[1:])})" if missing[1:] else "")
            self.state.bump("selector_errors")
            self.state.set(status="selector_error", reason=msg,
                           selector_error={"selector": key, "css": sel, "missing": [k for k, _ in missing],
                                           "window": w.slug, "at": self.clock()})
            try:
                self.screenshot(f"selector-{w.slug}", _safe_name(key), self.page, None)
            except PlaywrightError as exc:
                log.warning("screenshot of the selector error failed: %s", exc)
            self.notify("selector_error", msg)
        w.last_reason = msg
        return False

    # ---- decisions and trades -------------------------------------------------------------------
    def _evaluate(self, asset: str) -> None:
        w = self.windows.get(asset)
        if w is None or w.decided or self.stop:
            return   # once asked to stop, no new intent
        if (asset, w.start) in self.traded or self.decisions.done(asset, w.start):
            # A restart inside a traded window: its decision line (if the crash came before it) says so.
            intent = next((e for e in self.journal.events() if e.get("event") == "intent" and e.get("asset") == asset
                           and e.get("window_start") == w.start and e.get("mode") == self.cfg.mode), None)
            if intent is not None:
                self._decide_line(w, "traded", f"{intent.get('reason')} (intent journaled before a restart)",
                                  trade_id=intent.get("trade_id"), side=intent.get("side"), price=intent.get("price"),
                                  amount=intent.get("amount"))
            w.decided = True
            return
        now = self.clock()
        if now >= w.end or now - w.start > self.cfg.entry_end:
            self._finish_window(w, f"past the entry interval (ENTRY_END={self.cfg.entry_end:g}s)")
            return
        if not w.page_seen:
            if not w.markup_checked and w.selector_error is None:
                self._check_markup(w)   # names the selector that hides the window, once per window
            return
        if now - w.start < self.cfg.entry_start:
            return
        if not w.markup_checked:
            ok_at = self._markup_ok_at.get(asset)
            if ok_at is not None and time.monotonic() - ok_at < self.cfg.window_seconds:
                w.markup_checked = True   # checked on this page since the last window: off the critical path
            elif not self._check_markup(w):
                return
        held = self.signals.read_fresh(asset)
        market = self.markets[asset]
        ask_up, ask_down = market.asks()
        d = decision.decide(self.params, asset, w.start, w.end, now, held.data, held.problem, ask_up, ask_down,
                            False)
        if d.action == "wait":
            if re.sub(r"[0-9.]+", "#", d.reason) != re.sub(r"[0-9.]+", "#", w.last_reason):
                log.info("%s %s: waiting: %s", asset, w.slug, d.reason)
            w.last_reason = d.reason
            return
        if d.action == "skip":
            self._decide_line(w, "skipped", d.reason, prob_up=d.prob_up)
            return
        self._trade(w, d, held)

    def _trade(self, w: WindowCtx, d: decision.Decision, held: Held) -> None:
        cfg = self.cfg
        now = self.clock()
        amount = cfg.position_size
        if risk_position_size is not None and self.risk is not None:
            try:
                size, why = risk_position_size(cfg, d.prob_up, d.price, d.side)
            except Exception as exc:  # noqa: BLE001 - a sizing bug must skip the window, not crash the loop
                size, why = None, f"sizing failed: {exc}"
            if why or size is None:
                self._decide_line(w, "skipped", why or "sizing gave no amount", side=d.side, price=d.price)
                return
            amount = size
        if self.risk is not None:
            why = self.risk.check(w.asset, w.start, amount, now)
            if why:
                self._decide_line(w, "skipped", f"risk: {why}", side=d.side, price=d.price)
                return
        trade_id = new_trade_id(w.slug)
        sig = held.data or {}
        self.journal.append("intent", w.asset, w.start, trade_id, slug=w.slug, side=d.side, amount=amount,
                            price=d.price, strategy=cfg.strategy, reason=d.reason, prob_up=d.prob_up, edge=d.edge,
                            signal_seq=sig.get("seq"), confidence=sig.get("confidence"))
        self.traded.add((w.asset, w.start))
        w.decided = True   # its decision line is written after the click-through (off the critical path)
        line = {"trade_id": trade_id, "side": d.side, "price": d.price, "amount": amount, "prob_up": d.prob_up,
                "edge": d.edge}
        self.state.set(status="trading", last_trade={"trade_id": trade_id, "asset": w.asset, "slug": w.slug,
                                                     "side": d.side, "amount": amount, "price": d.price,
                                                     "event": "intent"})
        if cfg.mode == "paper":
            fill = fees.buy(amount, d.price, cfg.fee_rate, cfg.fee_exponent)
            self._record(w.asset, w.start, trade_id, Outcome("filled", "simulated fill at the shown ask", "paper", {
                "simulated": True, "side": d.side, "amount": amount, "price": d.price,
                "shares": round(fill.shares, 6), "fee": round(fill.fee_usd, 6)}))
            self._decide_line(w, "traded", d.reason, **line)
            self.state.set(status="watching")
            return
        order = Order(trade_id, w.asset, w.start, w.slug, d.side, amount, d.price)

        def submitted() -> None:
            self.journal.append("submitted", w.asset, w.start, trade_id, slug=w.slug)

        self._in_trade = True
        try:
            ct = ClickThrough(self.ctx, self.markets[w.asset], self.wallet, self.waiter(), cfg.step_timeout,
                              str(cfg.metamask_password), self.market_origin, cfg.amount_tolerance, self.screenshot,
                              submitted, max_slippage=cfg.max_slippage)
            outcome = ct.run(order)
        finally:
            self._in_trade = False
        self._record(w.asset, w.start, trade_id, outcome)
        self._decide_line(w, "traded", d.reason, outcome=outcome.event, **line)
        if outcome.event != "filled":
            self._reload_page()
        if outcome.fields.get("selector"):
            self.state.set(status="selector_error", reason=outcome.reason,
                           selector_error={"selector": outcome.fields["selector"], "window": w.slug,
                                           "at": self.clock()})
        elif self.state.data.get("status") == "trading":
            self.state.set(status="watching")

    def _reload_page(self) -> None:
        """After a failed click-through: a fresh page (no half-filled form, no pending request state)."""
        self._markup_ok_at.clear()
        try:
            self.page.reload(wait_until="domcontentloaded", timeout=self.cfg.step_timeout * 1000)
        except PlaywrightError as exc:
            log.warning("reloading the market page after a failed trade failed: %s", str(exc).splitlines()[0])

    def _record(self, asset: str, start: int, trade_id: str, outcome: Outcome) -> None:
        fields = {k: v for k, v in outcome.fields.items() if v is not None}
        if outcome.event != "filled":
            fields.setdefault("reason", outcome.reason)
        self.journal.append(outcome.event, asset, start, trade_id, **fields)
        self.state.bump(outcome.event)
        last = dict(self.state.data.get("last_trade") or {})
        last.update(event=outcome.event, reason=outcome.reason)
        self.state.set(last_trade=last)
        level = logging.INFO if outcome.event == "filled" else logging.WARNING
        log.log(level, "trade %s: %s (%s)", trade_id, outcome.event, outcome.reason)
        if outcome.event == "filled":
            self._on_fill(trade_id, asset, start, fields)
        else:
            self.notify(outcome.event, f"{asset} trade {trade_id}: {outcome.event}: {outcome.reason}")

    def _on_fill(self, trade_id: str, asset: str, start: int, f: dict) -> None:
        amount, price = float(f.get("amount") or 0), float(f.get("price") or 0)
        shares, fee = f.get("shares"), f.get("fee")
        if (shares is None or fee is None) and 0 < price < 1:
            fill = fees.buy(amount, price, self.cfg.fee_rate, self.cfg.fee_exponent)
            shares = fill.shares if shares is None else shares
            fee = fill.fee_usd if fee is None else fee
        if self.risk is not None:
            try:
                self.risk.on_fill(trade_id, asset, start, str(f.get("side", "")), amount, price, float(shares or 0),
                                  float(fee or 0), self.clock())
            except Exception as exc:  # noqa: BLE001 - the journal already holds the fill; risk logs its own error
                log.error("risk book could not record fill %s: %s", trade_id, exc)
        self.notify("filled", f"{asset} {f.get('side')} ${amount:.2f} at {price:.2f} ({trade_id})")

    # ---- stray wallet popups --------------------------------------------------------------------
    def _reject_stray_popups(self) -> None:
        if self._in_trade or self.ctx is None:
            return
        for p in list(self.ctx.pages):
            if p is self.page or p.is_closed() or not self.wallet.is_popup_url(p.url):
                continue
            popup = WalletPopup(p, self.wallet, self.waiter(), min(self.cfg.step_timeout, 3.0))
            try:
                if popup.visible("cancel"):
                    req = popup.read_request()
                    popup.reject()
                    log.warning("rejected a wallet request no intent asked for (origin %s, %s)", req.origin,
                                req.fields.get("primary_type"))
                    self.notify("wallet_rejected", f"rejected an unexpected wallet request from {req.origin}")
                else:
                    p.close()
            except (PlaywrightError, StepTimeout, Interrupted) as exc:
                log.warning("could not dismiss an unexpected wallet popup: %s", exc)

    # ---- reconciliation -------------------------------------------------------------------------
    def _reconcile(self, min_age: float) -> None:
        """Every open intent (no filled/failed/wallet_rejected) gets its outcome from the page."""
        if self._in_trade:
            return
        opens = self.journal.open_intents()
        if not opens:
            return
        now = self.clock()
        for intent in opens:
            tid, asset, start = intent["trade_id"], intent["asset"], int(intent["window_start"])
            try:
                age = now - parse_iso_utc(intent["ts"])
            except (KeyError, ValueError):
                age = min_age
            if age < min_age:
                continue
            slug = intent.get("slug") or window_slug(asset, start, self.cfg.window_seconds)
            if self.cfg.mode == "paper":
                self._record(asset, start, tid, Outcome("failed", "paper intent interrupted before its simulated"
                                                        " fill was journaled", "reconcile", {}))
                continue
            market = self.markets.get(asset) or MarketPage(self.page, self.site, asset, self.waiter(),
                                                           self.cfg.step_timeout)
            try:
                panel_wait = self.cfg.step_timeout if min_age == 0 else 0.5   # at start the page may still load
                self.waiter().until(lambda m=market: m.page_loc("orders_panel").count() > 0, panel_wait,
                                    "reconcile", "the orders panel", interruptible=True)
            except StepTimeout:
                # Without the panel nothing can be concluded: the intent stays open (never resubmitted).
                log.error("cannot reconcile %s: selector page.orders_panel (%s) matched nothing; the intent"
                          " stays open until the page shows its orders", tid, self.site.page["orders_panel"])
                return
            except Interrupted:
                return
            try:
                row = self.waiter().until(lambda m=market, s=slug: m.order_row(s), 1.5, "reconcile",
                                          "the order's row", interruptible=True)
            except StepTimeout:
                row = None
            except Interrupted:
                return
            # The decision line of a window whose run died before writing it (once per window, idempotent).
            self.decisions.write(asset, start, slug, "traded", f"{intent.get('reason')} (intent journaled before a"
                                 " restart)", strategy=intent.get("strategy"), trade_id=tid, side=intent.get("side"),
                                 price=intent.get("price"), amount=intent.get("amount"),
                                 outcome="filled" if row is not None else "failed")
            if row is not None:
                self.journal.append("reconciled", asset, start, tid, slug=slug, found=True,
                                    order_id=row.get("id"))
                self.state.bump("reconciled")
                order = Order(tid, asset, start, slug, str(intent.get("side")), float(intent.get("amount") or 0),
                              float(intent.get("price") or 0))
                self._record(asset, start, tid, Outcome("filled", "reconciled from the orders panel", "reconcile",
                                                        {**row_fields(row, order), "reconciled": True}))
            else:
                self._record(asset, start, tid, Outcome(
                    "failed", "reconciliation: no order for this window in the page's orders panel", "reconcile",
                    {"reconciled": True}))

    # ---- settlement -----------------------------------------------------------------------------
    def _settle_due(self, force: bool = False) -> None:
        self._last_settle = time.monotonic()
        now = self.clock()
        for f in self.journal.unsettled_fills():
            start = int(f["window_start"])
            end = start + self.cfg.window_seconds
            if now < end + 1.0:
                continue
            asset, tid = f["asset"], f["trade_id"]
            amount = float(f.get("amount") or 0)
            side = str(f.get("side", "")).upper()
            if f.get("simulated") or self.cfg.mode == "paper":
                res = self._paper_result(asset, start, side, f)
                if res is None:
                    continue
            else:
                market = self.markets.get(asset)
                row = market.order_row(f.get("slug") or window_slug(asset, start, self.cfg.window_seconds)) \
                    if market else None
                result = (row.get("result") or "").lower() if row else ""
                if result not in ("won", "lost"):
                    continue
                payout = row.number("payout")
                if payout is None:
                    payout = float(f.get("shares") or 0) if result == "won" else 0.0
                fee = f.get("fee")
                res = {"outcome": result, "payout": round(payout, 6), "fee": fee, "pnl": round(payout - amount, 6)}
            self.journal.append("settled", asset, start, tid, slug=f.get("slug"), side=side, amount=amount, **res)
            self.state.bump("settled")
            log.info("trade %s settled: %s, payout %.4f, pnl %+.4f", tid, res["outcome"], res["payout"], res["pnl"])
            if self.risk is not None:
                try:
                    halted = self.risk.on_settled(tid, res["pnl"], self.clock())
                except Exception as exc:  # noqa: BLE001 - journaled already; the risk book logs its own problem
                    log.error("risk book could not record settlement %s: %s", tid, exc)
                    halted = None
                if halted:
                    log.error("risk halt: %s", halted)
                    self.notify("halt", f"trading halted: {halted}")
            self.notify("settled", f"{asset} {tid}: {res['outcome']}, pnl {res['pnl']:+.2f}")

    def _paper_result(self, asset: str, start: int, side: str, f: dict) -> dict | None:
        with self._prices_lock:
            rec = dict(self.prices.get((asset, start), {}))
            nxt = dict(self.prices.get((asset, start + self.cfg.window_seconds), {}))
        open_price = rec.get("open")
        close = nxt.get("open") or (rec.get("last") if self.clock() > start + self.cfg.window_seconds + 5 else None)
        if open_price is None or close is None:
            return None
        price = float(f.get("price") or 0)
        if not 0 < price < 1:
            return None
        fill = fees.buy(float(f.get("amount") or 0), price, self.cfg.fee_rate, self.cfg.fee_exponent)
        res = fees.settle(fill, side, open_price, close)
        return {"outcome": res["outcome"], "payout": round(res["payout"], 6), "fee": round(res["fee"], 6),
                "pnl": round(res["pnl"], 6), "open_price": open_price, "close_price": close}
