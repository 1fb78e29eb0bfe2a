"""`python -m telegram_bot`: the Telegram bot (a supervised child when TELEGRAM_BOT_TOKEN and
TELEGRAM_CHAT_IDS are set; its token reaches it in SECRETS_FILE, never in argv or the environment).

Exit codes (core.exit_codes.ExitStatus): 0 on SIGTERM/SIGINT; 2 when the bot is not configured,
or when Telegram refuses the token at start (401/404: the same token would be refused again, so the
monitor leaves it FATAL until the config is fixed). Telegram being down, slow or rate-limiting is
not an exit: the bot keeps trying (see telegram_bot/bot.py) and trading never depends on it.
"""

from __future__ import annotations

import logging
import os
import signal
import sys

from core.config import config_or_exit
from core.exit_codes import ExitStatus

from .api import ApiError, BotApi
from .bot import Bot

log = logging.getLogger("telegram_bot")


class _Stopped(BaseException):
    """Raised by the signal handler to leave a long poll at once."""


class ScrubFilter(logging.Filter):
    """Defence in depth: no log record leaves this process with a secret in it."""

    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        for s in self.secrets:
            text = text.replace(s, "***")
            if record.exc_text:
                record.exc_text = record.exc_text.replace(s, "***")
        record.msg, record.args = text, None
        return True


def _logging(secrets: list[str]) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    handler.addFilter(ScrubFilter(secrets))
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    # urllib3 logs each request's URL at DEBUG, and the URL holds the token: never below WARNING.
    logging.getLogger("urllib3").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    os.umask(0o077)
    cfg = config_or_exit()
    token = str(cfg.telegram_bot_token)
    _logging([token, str(cfg.metamask_password), str(cfg.discord_webhook_url)])
    if not cfg.telegram_enabled:
        print("telegram bot: not configured (set TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_IDS in .env); not starting",
              file=sys.stderr)
        return ExitStatus.REFUSED
    api = BotApi(cfg.telegram_api_url, token)
    try:
        me = api.get_me()
        log.info("bot @%s ready for %d chat(s), mode %s", me.get("username"), len(cfg.telegram_chat_ids), cfg.mode)
    except ApiError as exc:
        if exc.kind == "refused" and exc.status in (401, 404):
            print(f"telegram bot: Telegram refused TELEGRAM_BOT_TOKEN ({api.scrub(exc.detail)}): check the token"
                  " from @BotFather; not retried until it is fixed (./supervisor.sh up telegram_bot)", file=sys.stderr)
            return ExitStatus.REFUSED
        log.warning("%s at start; polling anyway (trading is not affected)", api.scrub(str(exc)))
    bot = Bot(cfg, api)

    def on_signal(signum: int, _frame=None) -> None:
        bot.stop.set()
        raise _Stopped(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    try:
        bot.run()
    except _Stopped as why:
        log.info("%s received; stopping", why)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        bot.save(force=True)
        bot.outbox.flush(2.0)
    finally:
        api.close()
    return ExitStatus.OK


if __name__ == "__main__":
    raise SystemExit(main())
