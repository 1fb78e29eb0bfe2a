"""The control surfaces' configuration: the loopback dashboard (and its /metrics) and the Telegram bot.

    DASHBOARD        [1]           serve the dashboard and /metrics (a supervised child, `python -m dashboard`)
    DASHBOARD_PORT   [8787]        its TCP port
    DASHBOARD_BIND   [127.0.0.1]   the address it listens on: an IP address; anything beyond loopback only
                                   when set here explicitly (the Host header check still refuses DNS names)
    TELEGRAM_BOT_TOKEN [unset]     the bot's token from @BotFather: a secret (SECRETS_FILE, never argv/logs)
    TELEGRAM_CHAT_IDS  [unset]     comma list of chat ids the bot obeys and notifies; the bot runs only
                                   when both this and the token are set
    TELEGRAM_API_URL [https://api.telegram.org]   the Bot API's base URL (the tests point it at a local server)
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping

from core.config_values import ConfigError, Secret, _Bad, _bool, _int, _url, shown

TELEGRAM_API_URL = "https://api.telegram.org"
DASHBOARD_PORT = 8787
MAX_CHAT_IDS = 50
# <bot id>:<35-ish characters>; checked loosely (Telegram does not document the exact length)
_TOKEN_RE = re.compile(r"^[0-9]{3,20}:[A-Za-z0-9_-]{20,100}$")


def _bind(text: str) -> str:
    t = text.strip()
    try:
        ipaddress.ip_address(t)
    except ValueError:
        raise _Bad(f"must be an IP address to listen on, not a name ({shown(t)})", "127.0.0.1") from None
    return t


def _chat_ids(text: str) -> tuple[int, ...]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    out: list[int] = []
    for x in items:
        if not re.fullmatch(r"-?[0-9]{1,20}", x):
            raise _Bad(f"must be a comma list of numeric chat ids, got {shown(x)}", "123456789,-1001234567890")
        out.append(int(x))
    if len(out) > MAX_CHAT_IDS:
        raise _Bad(f"lists {len(out)} chats (at most {MAX_CHAT_IDS})", "123456789")
    if len(set(out)) != len(out):
        raise _Bad(f"lists a chat twice ({shown(text)})", "123456789,987654321")
    return tuple(out)


def _token(text: str) -> Secret:
    t = text.strip()
    if t and not _TOKEN_RE.match(t):
        # Never echo the value: it is a secret.
        raise _Bad("does not look like a bot token from @BotFather (digits, a colon, then letters, digits,"
                   " '_' or '-'; value not shown: it is a secret)", "123456789:<the token @BotFather gave you>")
    return Secret(t)


def control_settings(e: Mapping[str, str], get: Callable, demo: bool, replica_ports: tuple[int, int]) -> dict:
    """The Config fields of the dashboard and the bot (core.config.load_config passes them on)."""
    port = get("DASHBOARD_PORT", str(DASHBOARD_PORT), _int(1024, 65535, str(DASHBOARD_PORT)))
    enabled = get("DASHBOARD", "1", _bool("1"))
    if enabled and demo and port in replica_ports:
        raise ConfigError("DASHBOARD_PORT", f"must differ from the demo venue's ports ({replica_ports[0]},"
                          f" {replica_ports[1]})", str(DASHBOARD_PORT))
    return {
        "dashboard": enabled,
        "dashboard_port": port,
        "dashboard_bind": get("DASHBOARD_BIND", "127.0.0.1", _bind),
        "telegram_bot_token": get("TELEGRAM_BOT_TOKEN", "", _token),
        "telegram_chat_ids": get("TELEGRAM_CHAT_IDS", "", _chat_ids),
        "telegram_api_url": get("TELEGRAM_API_URL", TELEGRAM_API_URL, _url(TELEGRAM_API_URL)),
    }


__all__ = ["DASHBOARD_PORT", "TELEGRAM_API_URL", "control_settings"]
