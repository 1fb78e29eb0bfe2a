"""Discord webhook notifications, off the trading path.

`Notifier(cfg).send(event, text)` formats the message and puts it on a bounded queue; a daemon
worker thread POSTs `{"content": ...}` to `CLOBBOT_DISCORD_WEBHOOK_URL` with a timeout and a
bounded number of retries with exponential back-off (HTTP 429 honours `retry_after`, capped).
`send` never blocks on the network and never raises: a hanging or failing webhook costs the
caller one `put_nowait`. When the queue is full, the message is dropped and counted.
Secrets (the webhook URL and its token, METAMASK_PASSWORD) are scrubbed from every message and
every log line; logs name the event, the HTTP status or the exception class, never the URL.
With no webhook URL the notifier is disabled and `send` is a no-op.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from core.config import Config

log = logging.getLogger("notify")

EVENTS = ("start", "stop", "fill", "settled", "halt", "error halt", "fatal", "wallet_rejected", "summary")
ALIASES = {"filled": "fill", "error_halt": "error halt", "wallet-rejected": "wallet_rejected"}
# These carry the optional mention: they need the user (an order whose outcome is unknown, too).
ALERT_EVENTS = ("halt", "error halt", "fatal", "wallet_rejected", "selector_error", "unknown", "signal")
MAX_CONTENT = 1900  # Discord's limit is 2000 characters
LABELS = {
    "start": "START", "stop": "STOP", "fill": "FILL", "settled": "SETTLED", "halt": "HALT",
    "error halt": "ERROR HALT", "fatal": "FATAL", "wallet_rejected": "WALLET REJECTED", "summary": "SUMMARY",
}


class Notifier:
    """Non-blocking Discord notifier. Thread-safe; one daemon worker per instance."""

    def __init__(self, cfg: Config, *, timeout: float = 5.0, retries: int = 3, backoff: float = 1.0,
                 max_backoff: float = 30.0, queue_size: int = 100):
        self.cfg = cfg
        self._url = str(cfg.discord_webhook_url or "")
        self.enabled = bool(self._url)
        self.timeout = timeout
        self.retries = max(0, int(retries))
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._q: queue.Queue[tuple[str, str]] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._closing = threading.Event()
        self._summary_last: float | None = None
        self.stats = {"queued": 0, "sent": 0, "failed": 0, "dropped": 0, "attempts": 0}
        secrets = [self._url, str(cfg.metamask_password or "")]
        if self._url:
            parts = urlsplit(self._url)
            secrets.append(parts.path)
            secrets.extend(seg for seg in parts.path.split("/") if len(seg) >= 16)  # the token
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    # ---- formatting ------------------------------------------------------------------------
    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def format(self, event: str, text: str) -> str:
        event = ALIASES.get(event, event)
        label = LABELS.get(event, event.upper())
        mention = self.cfg.discord_mention if event in ALERT_EVENTS and self.cfg.discord_mention else ""
        content = f"{mention + ' ' if mention else ''}**{label}** [{self.cfg.mode}] {text}"
        content = self.scrub(content)
        if len(content) > MAX_CONTENT:
            content = content[: MAX_CONTENT - 1] + "…"
        return content

    # ---- the caller's side -------------------------------------------------------------------
    def send(self, event: str, text: str) -> None:
        """Queue a message; returns at once; never raises."""
        if not self.enabled:
            return
        try:
            if ALIASES.get(event, event) not in EVENTS:
                log.debug("notify: event %r is not one of %s; sent with its own name", event, ", ".join(EVENTS))
            content = self.format(event, str(text))
            self._ensure_worker()
            self._q.put_nowait((event, content))
            self.stats["queued"] += 1
        except queue.Full:
            self.stats["dropped"] += 1
            log.warning("notify: queue full (%d waiting); dropped the %r message", self._q.qsize(), event)
        except Exception as exc:  # noqa: BLE001 - a notification must never break the trading loop
            self.stats["dropped"] += 1
            log.error("notify: could not queue the %r message (%s: %s); dropped, trading goes on",
                      event, type(exc).__name__, self.scrub(str(exc)))

    def summary_due(self, now: float) -> bool:
        """True once every SUMMARY_INTERVAL seconds (never when 0); the first call starts the clock."""
        interval = self.cfg.summary_interval
        if interval <= 0:
            return False
        if self._summary_last is None:
            self._summary_last = now
            return False
        if now - self._summary_last >= interval:
            self._summary_last = now
            return True
        return False

    def flush(self, timeout: float) -> bool:
        """Wait up to `timeout` s for every queued message to be sent or given up. True if drained."""
        deadline = time.monotonic() + timeout
        with self._q.all_tasks_done:
            while self._q.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._q.all_tasks_done.wait(left)
        return True

    def close(self, timeout: float = 2.0) -> bool:
        """Give queued messages up to `timeout` s (e.g. the `stop` message), then stop retrying."""
        drained = self.flush(timeout)
        self._closing.set()
        return drained

    # ---- the worker's side -------------------------------------------------------------------
    def _ensure_worker(self) -> None:
        with self._thread_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="notify-worker", daemon=True)
                self._thread.start()

    def _work(self) -> None:
        while True:
            event, content = self._q.get()
            try:
                self._deliver(event, content)
            except Exception as exc:  # noqa: BLE001 - the worker must survive anything and keep serving
                self.stats["failed"] += 1
                log.error("notify: delivering the %r message failed unexpectedly (%s: %s); dropped",
                          event, type(exc).__name__, self.scrub(str(exc)))
            finally:
                self._q.task_done()

    def _post(self, content: str) -> int:
        body = json.dumps({"content": content}).encode()
        req = urllib.request.Request(self._url, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "updown-agent-notifier"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - http(s) only (config)
                resp.read(65536)
                return resp.status
        except urllib.error.HTTPError as exc:
            self._retry_after = _retry_after(exc)
            return exc.code

    def _deliver(self, event: str, content: str) -> None:
        attempts = self.retries + 1
        for attempt in range(1, attempts + 1):
            if self._closing.is_set() and attempt > 1:
                break
            self.stats["attempts"] += 1
            self._retry_after = None
            try:
                status = self._post(content)
                problem = None if 200 <= status < 300 else f"HTTP {status}"
            except (OSError, ValueError) as exc:  # URLError, timeouts, refused, reset are OSErrors
                status, problem = 0, f"{type(exc).__name__}: {self.scrub(str(exc))}"
            if problem is None:
                self.stats["sent"] += 1
                return
            if 400 <= status < 500 and status != 429:
                log.error("notify: webhook refused the %r message (%s); not retrying, check the webhook URL",
                          event, problem)
                break
            if attempt == attempts:
                log.error("notify: the %r message failed (%s) after %d attempt(s); dropped", event, problem, attempts)
                break
            delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
            if self._retry_after is not None:
                delay = min(self.max_backoff, max(delay, self._retry_after))
            log.warning("notify: the %r message failed (%s), attempt %d/%d; retrying in %.1fs",
                        event, problem, attempt, attempts, delay)
            if self._closing.wait(delay):
                break
        self.stats["failed"] += 1

    _retry_after: float | None = None


def _retry_after(exc: urllib.error.HTTPError) -> float | None:
    """Discord's 429 tells how long to wait, in a header or the JSON body."""
    header = exc.headers.get("Retry-After") if exc.headers else None
    try:
        if header is not None:
            return float(header)
        if exc.code == 429:
            return float(json.loads(exc.read(4096) or b"{}").get("retry_after"))
    except (ValueError, TypeError, OSError, AttributeError):
        return None  # unparsable hint: the normal back-off applies
    return None


def summary_text(status: dict) -> str:
    """The periodic summary from a RiskBook.status() dict."""
    wr = "n/a" if status.get("win_rate") is None else f"{100 * status['win_rate']:.0f}%"
    state = f"HALTED: {status['halt_reason']}" if status.get("halted") else "trading"
    return (f"{status['day']} UTC: {status['trades_today']} trades, {status['wins']}W/{status['losses']}L"
            f" (win rate {wr}), P&L {status['pnl_today']:+.2f} USD, fees {status['fees_today']:.2f},"
            f" open exposure {status['open_exposure']:.2f}; {state}")
