"""`doctor`'s checks of the control surfaces: the dashboard's port and the Telegram bot's token.

    for level, what, text in control_checks(cfg): ...      # level: OK, WARN, FAIL, NOTE

Dashboard: off (NOTE), our dashboard answering /healthz on DASHBOARD_PORT (OK), the port free for
it (OK), or taken by another program (FAIL, with the fix); a bind beyond loopback is a WARN.
Telegram: off (NOTE); a token without TELEGRAM_CHAT_IDS lists the chats that wrote to the bot
lately (getUpdates; the bot is not running then, so nothing competes for them) so the user can
copy their id; with both set, getMe says whether Telegram accepts the token (FAIL if refused,
WARN if Telegram cannot be reached: the bot keeps retrying and trading does not depend on it).
"""

from __future__ import annotations

import http.client

from core.config import Config

from .server import is_loopback

Check = tuple[str, str, str]


def _healthz(host: str, port: int) -> bool | None:
    """True: our dashboard answers; False: something else holds the port; None: nothing listens."""
    conn = http.client.HTTPConnection(host, port, timeout=3)
    try:
        conn.request("GET", "/healthz", headers={"Host": f"[{host}]:{port}" if ":" in host else f"{host}:{port}"})
        resp = conn.getresponse()
        return resp.status == 200 and resp.read(16).strip() == b"ok"
    except ConnectionRefusedError:
        return None
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def dashboard_checks(cfg: Config) -> list[Check]:
    if not cfg.dashboard:
        return [("NOTE", "dashboard", "off (DASHBOARD=0): no dashboard and no /metrics")]
    from monitor.preflight import port_in_use

    host = "127.0.0.1" if cfg.dashboard_bind in ("0.0.0.0", "::") else cfg.dashboard_bind
    url = f"http://{'[' + host + ']' if ':' in host else host}:{cfg.dashboard_port}/"
    out: list[Check] = []
    if not is_loopback(cfg.dashboard_bind):
        out.append(("WARN", "dashboard", f"DASHBOARD_BIND={cfg.dashboard_bind}: reachable beyond this machine"
                    " (reading needs no token; the buttons do)"))
    ours = _healthz(host, cfg.dashboard_port)
    if ours:
        out.append(("OK", "dashboard", f"answers at {url} (metrics: {url}metrics)"))
    elif ours is None and not port_in_use(cfg.dashboard_port, cfg.dashboard_bind):
        out.append(("OK", "dashboard", f"DASHBOARD_PORT={cfg.dashboard_port} is free; start serves {url}"))
    else:
        out.append(("FAIL", "dashboard", f"DASHBOARD_PORT={cfg.dashboard_port} is held by another program:"
                    " set DASHBOARD_PORT to a free port in .env (e.g. 8788), or DASHBOARD=0"))
    return out


def telegram_checks(cfg: Config, timeout: float = 5.0) -> list[Check]:
    from telegram_bot.api import ApiError, BotApi

    token = str(cfg.telegram_bot_token)
    if not token:
        return [("NOTE", "telegram", "off (set TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_IDS to steer it from Telegram)")]
    api = BotApi(cfg.telegram_api_url, token, timeout=timeout)
    try:
        me = api.get_me()
        name = f"@{me.get('username')}"
        if cfg.telegram_chat_ids:
            return [("OK", "telegram", f"Telegram accepts the token ({name}); obeying chat(s)"
                     f" {', '.join(str(c) for c in cfg.telegram_chat_ids)}")]
        chats = _recent_chats(api)
        seen = "; chats that wrote to it lately: " + ", ".join(chats) if chats else \
            "; send it a message and run doctor again to see your chat id here"
        return [("WARN", "telegram", f"token accepted ({name}) but TELEGRAM_CHAT_IDS is empty: the bot does not"
                 f" run{seen}")]
    except ApiError as exc:
        if exc.kind == "refused" and exc.status in (401, 404):
            return [("FAIL", "telegram", "Telegram refused TELEGRAM_BOT_TOKEN (HTTP"
                     f" {exc.status}): copy the token again from @BotFather")]
        return [("WARN", "telegram", f"could not ask Telegram ({api.scrub(str(exc))}); the bot keeps retrying"
                 " when it runs, and trading does not depend on it")]
    finally:
        api.close()


def _recent_chats(api) -> list[str]:
    from telegram_bot.api import ApiError

    try:
        updates = api.get_updates(None, 0)
    except ApiError:
        return []
    seen: dict[int, str] = {}
    for u in updates:
        chat = (u.get("message") or {}).get("chat") if isinstance(u, dict) else None
        if isinstance(chat, dict) and isinstance(chat.get("id"), int):
            who = chat.get("username") or chat.get("title") or chat.get("first_name") or chat.get("type")
            seen[chat["id"]] = f"{chat['id']} ({who})"
    return list(seen.values())[:10]


def control_checks(cfg: Config) -> list[Check]:
    return dashboard_checks(cfg) + telegram_checks(cfg)


__all__ = ["control_checks", "dashboard_checks", "telegram_checks"]
