"""The bot's outgoing messages: a bounded queue and one sender thread.

`Outbox.put(chat_id, text)` never blocks: when the queue is full the message is dropped and
counted (`stats["dropped"]`). The sender retries what may succeed later: a 429 waits Telegram's
`retry_after` (capped at MAX_RETRY_AFTER_S), 5xx, timeouts and network errors back off 1, 2, 4 ...
BACKOFF_MAX_S, at most ATTEMPTS tries a message; a refusal (400, 403: the chat blocked the bot)
is not retried. Nothing here can stop the bot's command loop, let alone trading.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass

from .api import ApiError, BotApi

log = logging.getLogger("telegram_bot.outbox")

QUEUE_SIZE = 200
ATTEMPTS = 5
BACKOFF_MAX_S = 30.0
MAX_RETRY_AFTER_S = 300.0
MAX_TEXT = 4000   # Telegram's limit is 4096 characters


@dataclass(frozen=True)
class Outgoing:
    chat_id: int
    text: str
    html: bool = False
    what: str = "message"


def clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Outbox:
    def __init__(self, api: BotApi, stop: threading.Event, size: int = QUEUE_SIZE, backoff_base: float = 1.0):
        self.api, self.stop = api, stop
        self.q: queue.Queue[Outgoing] = queue.Queue(maxsize=size)
        self.backoff_base = backoff_base
        self.stats = {"queued": 0, "sent": 0, "dropped": 0, "failed": 0, "retries": 0}
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="telegram-outbox", daemon=True)

    def start(self) -> Outbox:
        self._thread.start()
        return self

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.stats[key] += n

    def put(self, msg: Outgoing) -> bool:
        """Queue a message; False (counted as dropped) when the queue is full. Never blocks."""
        try:
            self.q.put_nowait(Outgoing(msg.chat_id, clip(msg.text), msg.html, msg.what))
        except queue.Full:
            self._count("dropped")
            log.warning("outbox full (%d waiting): dropped a %s for chat %s", self.q.qsize(), msg.what, msg.chat_id)
            return False
        self._count("queued")
        return True

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                msg = self.q.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self._deliver(msg)
            except Exception as exc:  # noqa: BLE001 - the sender must survive anything and keep serving
                self._count("failed")
                self.last_error = f"{type(exc).__name__}"
                log.error("sending a %s failed unexpectedly (%s); dropped", msg.what, type(exc).__name__)
            finally:
                self.q.task_done()

    def _deliver(self, msg: Outgoing) -> None:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                self.api.send_message(msg.chat_id, msg.text, msg.html)
                self._count("sent")
                return
            except ApiError as exc:
                self.last_error = str(exc)
                if exc.kind == "refused" or exc.kind == "malformed":
                    log.error("%s; the %s for chat %s is dropped (not retried)", exc, msg.what, msg.chat_id)
                    break
                if attempt == ATTEMPTS:
                    log.error("%s; the %s for chat %s is dropped after %d attempts", exc, msg.what, msg.chat_id,
                              ATTEMPTS)
                    break
                wait = min(BACKOFF_MAX_S, self.backoff_base * 2 ** (attempt - 1))
                if exc.retry_after is not None:
                    wait = min(MAX_RETRY_AFTER_S, max(exc.retry_after, 0.0))
                self._count("retries")
                log.warning("%s; retrying the %s in %.1f s (attempt %d/%d)", exc, msg.what, wait, attempt, ATTEMPTS)
                if self.stop.wait(wait):
                    break
        self._count("failed")

    def flush(self, timeout: float) -> bool:
        """Wait up to `timeout` s for the queue to drain (at shutdown)."""
        done = threading.Event()

        def waiter() -> None:
            self.q.join()
            done.set()

        threading.Thread(target=waiter, daemon=True).start()
        return done.wait(timeout)


__all__ = ["Outbox", "Outgoing", "clip"]
