"""The bot's loop: long-poll getUpdates, answer the allowed chats, send the notifications.

    Bot(cfg, api).run(stop)      # until `stop` is set (SIGTERM)

One thread polls Telegram (getUpdates with `timeout=POLL_TIMEOUT_S`, so an update arrives at once)
and answers commands; the outbox thread sends (bounded queue); the watcher runs in the poll loop
between two polls. Failures never end the loop: a 429 waits its `retry_after`, 5xx, timeouts and a
dropped connection back off 1, 2, 4 ... 60 s, a malformed update is logged and skipped (its
update_id still acknowledged), a wrong token (401) is retried every 60 s with one log line each.
Only chats in TELEGRAM_CHAT_IDS are obeyed; any other is ignored and logged once per chat.
STATE_DIR/telegram_bot.json (0600) keeps the update offset, the journals' offsets and counters.
"""

from __future__ import annotations

import logging
import threading
import time

from core.config import Config
from core.durable_files import atomic_write_json, read_json, touch_heartbeat

from .api import ApiError, BotApi
from .commands import Commands, Reply
from .events import EventWatcher, label
from .outbox import Outbox, Outgoing

log = logging.getLogger("telegram_bot")

POLL_TIMEOUT_S = 20
BACKOFF_MAX_S = 60.0
STALE_COMMAND_S = 300.0   # a command older than this (sent while the bot was down) is not executed
SAVE_EVERY_S = 5.0
MAX_UNKNOWN_CHATS = 1000


class Bot:
    def __init__(self, cfg: Config, api: BotApi, clock=time.time, poll_timeout: int = POLL_TIMEOUT_S,
                 backoff_base: float = 1.0):
        self.cfg, self.api, self.clock = cfg, api, clock
        self.poll_timeout, self.backoff_base = poll_timeout, backoff_base
        self.allowed = set(cfg.telegram_chat_ids)
        self.state_path = cfg.state_dir / "telegram_bot.json"
        saved = read_json(self.state_path).data or {}
        offset = saved.get("offset")
        self.offset: int | None = offset if isinstance(offset, int) and not isinstance(offset, bool) else None
        self.stop = threading.Event()
        self.outbox = Outbox(api, self.stop, backoff_base=backoff_base)
        self.commands = Commands(cfg, stats=self.stats, clock=clock)
        self.watcher = EventWatcher(cfg, saved.get("watch") if isinstance(saved.get("watch"), dict) else None, clock)
        self.unknown_chats: set[int] = set()
        self.counters = {"updates": 0, "commands": 0, "ignored": 0, "malformed": 0, "poll_errors": 0}
        self.failures = 0
        self._last_save = 0.0
        self._secrets = [s for s in (str(cfg.telegram_bot_token), str(cfg.metamask_password),
                                     str(cfg.discord_webhook_url)) if s]
        self.beat = cfg.heartbeat_path("telegram_bot")

    # ---- helpers ----------------------------------------------------------------------------------
    def scrub(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "***")
        return text

    def stats(self) -> dict:
        return {**self.outbox.stats, "queue": self.outbox.q.qsize(), **self.counters}

    def notify(self, event: str, text: str) -> None:
        body = self.scrub(f"{label(event)} [{self.cfg.mode}] {text}")
        for chat in self.cfg.telegram_chat_ids:
            self.outbox.put(Outgoing(chat, body, what=f"{event} notification"))

    def save(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_save < SAVE_EVERY_S:
            return
        self._last_save = now
        doc = {"offset": self.offset, "watch": self.watcher.saved(), "stats": self.stats(),
               "last_error": self.outbox.last_error, "updated": self.clock()}
        try:
            atomic_write_json(self.state_path, doc, mode=0o600)
        except OSError as exc:
            log.error("could not write %s (%s); the update offset is kept in memory", self.state_path, exc)

    # ---- updates ----------------------------------------------------------------------------------
    def handle_update(self, upd: object) -> None:
        if not isinstance(upd, dict) or not isinstance(upd.get("update_id"), int):
            self.counters["malformed"] += 1
            log.warning("skipped a malformed update (no update_id): %.100r", type(upd).__name__)
            return
        self.offset = max(self.offset or 0, upd["update_id"] + 1)
        self.counters["updates"] += 1
        msg = upd.get("message")
        if msg is None:
            return   # another kind of update (allowed_updates asks for messages only)
        chat = msg.get("chat") if isinstance(msg, dict) else None
        chat_id = chat.get("id") if isinstance(chat, dict) else None
        text = msg.get("text") if isinstance(msg, dict) else None
        if not isinstance(chat_id, int) or isinstance(chat_id, bool):
            self.counters["malformed"] += 1
            log.warning("skipped malformed update %d (no chat id)", upd["update_id"])
            return
        if chat_id not in self.allowed:
            self.counters["ignored"] += 1
            if chat_id not in self.unknown_chats and len(self.unknown_chats) < MAX_UNKNOWN_CHATS:
                self.unknown_chats.add(chat_id)
                log.warning("ignored a message from chat %d: not in TELEGRAM_CHAT_IDS (logged once per chat)", chat_id)
            return
        if not isinstance(text, str):
            return   # a photo, a sticker ...: nothing to do
        date = msg.get("date")
        if isinstance(date, (int, float)) and self.clock() - date > STALE_COMMAND_S:
            self.reply(chat_id, Reply(f"ignored {text[:40]!r}: sent {(self.clock() - date) / 60:.0f} min ago while"
                                      " the bot was away; send it again if you still mean it"))
            return
        self.counters["commands"] += 1
        try:
            answer = self.commands.handle(chat_id, text)
        except Exception as exc:  # noqa: BLE001 - one failing command must not stop the bot
            log.exception("command %r failed", text[:40])
            answer = Reply(f"that failed ({type(exc).__name__}); see ./supervisor.sh logs telegram_bot")
        if answer is not None:
            self.reply(chat_id, answer)

    def reply(self, chat_id: int, answer: Reply) -> None:
        text, html = answer.render()
        self.outbox.put(Outgoing(chat_id, self.scrub(text), html, what="reply"))

    # ---- the loop ---------------------------------------------------------------------------------
    def _backoff(self, exc: ApiError) -> float:
        self.failures += 1
        self.counters["poll_errors"] += 1
        if exc.kind == "rate_limited" and exc.retry_after is not None:
            return min(BACKOFF_MAX_S * 5, max(0.0, exc.retry_after))
        if exc.kind == "refused":
            return BACKOFF_MAX_S   # a wrong token or a conflict: nothing changes fast
        return min(BACKOFF_MAX_S, self.backoff_base * 2 ** (self.failures - 1))

    def poll_once(self) -> None:
        try:
            updates = self.api.get_updates(self.offset, self.poll_timeout)
        except ApiError as exc:
            wait = self._backoff(exc)
            (log.error if self.failures in (1, 5) or self.failures % 50 == 0 else log.info)(
                "%s; polling again in %.1f s (failure %d in a row); trading is not affected",
                self.scrub(str(exc)), wait, self.failures)
            self._wait(wait)
            return
        if self.failures:
            log.warning("Telegram answers again after %d failed poll(s)", self.failures)
        self.failures = 0
        for upd in updates:
            try:
                self.handle_update(upd)
            except Exception as exc:  # noqa: BLE001 - a malformed update must not stop the bot
                self.counters["malformed"] += 1
                log.error("skipped an update that could not be handled (%s)", type(exc).__name__)

    def _wait(self, seconds: float) -> None:
        """Wait, still beating and sending notifications."""
        end = time.monotonic() + seconds
        while not self.stop.is_set() and time.monotonic() < end:
            self.tick()
            self.stop.wait(min(1.0, max(0.0, end - time.monotonic())))

    def tick(self) -> None:
        touch_heartbeat(self.beat)
        try:
            for event, text in self.watcher.poll(self._summary):
                self.notify(event, text)
        except Exception:  # noqa: BLE001 - a bad file must not stop the bot; logged
            log.exception("reading the agent's files for notifications failed; trying again")
        self.save()

    def _summary(self, day: str) -> str:
        rows = [r for r in self.commands.reports.daily(3) if r["day"] == day]
        if not rows:
            return f"{day} UTC: no settled trades"
        r = rows[0]
        return (f"{day} UTC: {r['trades']} trades, {r['wins']}W/{r['losses']}L, P&L {r['pnl']:+.2f} USD,"
                f" fees {r['fees']:.2f}")

    def run(self) -> None:
        self.outbox.start()
        self.tick()
        while not self.stop.is_set():
            self.poll_once()
            self.tick()
        self.save(force=True)
        self.outbox.flush(2.0)


__all__ = ["Bot"]
