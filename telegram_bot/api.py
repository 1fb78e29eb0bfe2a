"""The Telegram Bot API over `requests` (https://core.telegram.org/bots/api): getMe, getUpdates, sendMessage.

Every call has a timeout. Every failure becomes an `ApiError` with a kind the caller acts on:
`rate_limited` (HTTP 429; `retry_after` seconds from the answer's `parameters`), `server` (5xx),
`network` (refused, reset, DNS), `timeout`, `malformed` (not the Bot API's JSON), `refused`
(another 4xx: a wrong token is 401, a chat that blocked the bot is 403).

The token is part of every URL (`<base>/bot<token>/<method>`), so no exception text of requests or
urllib3 is ever passed on (it quotes the URL): an ApiError names the method, the kind and the
exception's class or Telegram's own description, scrubbed of the token all the same.
"""

from __future__ import annotations

import logging
from typing import Any

import requests

log = logging.getLogger("telegram_bot.api")

CONNECT_TIMEOUT = 5.0


class ApiError(Exception):
    def __init__(self, method: str, kind: str, detail: str, retry_after: float | None = None,
                 status: int | None = None):
        self.method, self.kind, self.detail, self.retry_after, self.status = method, kind, detail, retry_after, status
        super().__init__(f"Telegram {method}: {kind} ({detail})")


class BotApi:
    def __init__(self, base_url: str, token: str, timeout: float = 10.0):
        self._token = token
        self._base = f"{base_url.rstrip('/')}/bot{token}/"
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "updown-agent-telegram"

    def scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def call(self, method: str, params: dict | None = None, timeout: float | None = None) -> Any:
        """POST the method with a JSON body; its `result`, or ApiError."""
        read_timeout = self.timeout if timeout is None else timeout
        try:
            resp = self.session.post(self._base + method, json=params or {}, timeout=(CONNECT_TIMEOUT, read_timeout))
        except requests.Timeout:
            raise ApiError(method, "timeout", f"no answer within {read_timeout:g} s") from None
        except requests.RequestException as exc:
            raise ApiError(method, "network", type(exc).__name__) from None   # never str(exc): it quotes the URL
        return self._result(method, resp)

    def _result(self, method: str, resp: requests.Response) -> Any:
        status = resp.status_code
        try:
            body = resp.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            kind = "server" if status >= 500 else ("rate_limited" if status == 429 else "malformed")
            raise ApiError(method, kind, f"HTTP {status}, not the Bot API's JSON", status=status)
        desc = self.scrub(str(body.get("description") or ""))[:200]
        params = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
        code = body.get("error_code") if isinstance(body.get("error_code"), int) else status
        if status == 429 or code == 429:
            retry = params.get("retry_after")
            retry = float(retry) if isinstance(retry, (int, float)) and not isinstance(retry, bool) else None
            raise ApiError(method, "rate_limited", desc or "Too Many Requests", retry_after=retry, status=429)
        if status >= 500:
            raise ApiError(method, "server", f"HTTP {status} {desc}".strip(), status=status)
        if body.get("ok") is not True:
            raise ApiError(method, "refused", f"HTTP {status} {desc}".strip(), status=status)
        if "result" not in body:
            raise ApiError(method, "malformed", "an ok answer without a result", status=status)
        return body["result"]

    # ---- the three methods used -------------------------------------------------------------------
    def get_me(self, timeout: float | None = None) -> dict:
        me = self.call("getMe", timeout=timeout)
        if not isinstance(me, dict):
            raise ApiError("getMe", "malformed", "the result is not an object")
        return me

    def get_updates(self, offset: int | None, poll_timeout: int) -> list:
        params: dict[str, Any] = {"timeout": poll_timeout, "allowed_updates": ["message"]}
        if offset is not None:
            params["offset"] = offset
        got = self.call("getUpdates", params, timeout=poll_timeout + 10.0)
        if not isinstance(got, list):
            raise ApiError("getUpdates", "malformed", "the result is not a list")
        return got

    def send_message(self, chat_id: int, text: str, html: bool = False) -> dict:
        params: dict[str, Any] = {"chat_id": chat_id, "text": text, "disable_web_page_preview": True}
        if html:
            params["parse_mode"] = "HTML"
        return self.call("sendMessage", params)

    def close(self) -> None:
        self.session.close()


__all__ = ["ApiError", "BotApi"]
