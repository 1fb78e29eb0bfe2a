"""A local server speaking the Telegram Bot API's JSON (https://core.telegram.org/bots/api), for tests.

    srv = TelegramServer(token).start()       # srv.url -> TELEGRAM_API_URL
    srv.push_text(chat_id, "/status")         # an incoming message, as getUpdates returns it
    srv.sent                                  # every sendMessage received: {"chat_id", "text", ...}
    srv.fail("getUpdates", "429", retry_after=1)   # the next call of a method fails this way

Methods: getMe, getUpdates (long polling: waits up to `timeout` s for an update, answers at once
when one is pushed; `offset` acknowledges), sendMessage. Answers have the Bot API's shapes:
`{"ok": true, "result": ...}`, errors `{"ok": false, "error_code": N, "description": "..."}` with
`parameters.retry_after` on 429. A wrong token gets 401 "Unauthorized" like the real API. Faults:
"429", "500" (an HTML body, as a proxy in front of the API sends), "502", "drop" (the connection
is closed without an answer), "garbage" (200 with a body that is not JSON), "malformed_update"
(getUpdates returns an update without a usable message, and one that is not an object).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BOT_ID = 7000001
MAX_WAIT = 30.0


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        return   # the "drop" fault closes connections under the handler's feet: expected, not news


class TelegramServer:
    def __init__(self, token: str):
        self.token = token
        self.cond = threading.Condition()
        self.updates: list[dict] = []
        self.next_update_id = 100
        self.next_message_id = 1
        self.sent: list[dict] = []
        self.calls: list[tuple[str, dict]] = []
        self.faults: dict[str, deque] = {}
        self.srv: ThreadingHTTPServer | None = None

    # ---- test side ----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self.srv is not None
        return f"http://127.0.0.1:{self.srv.server_address[1]}"

    def start(self) -> TelegramServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                return

            def do_POST(self) -> None:  # noqa: N802
                server._serve(self)

            do_GET = do_POST

        self.srv = _QuietServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.srv is not None:
            self.srv.shutdown()
            self.srv.server_close()

    def push(self, update: dict) -> int:
        with self.cond:
            uid = self.next_update_id
            self.next_update_id += 1
            self.updates.append({"update_id": uid, **update})
            self.cond.notify_all()
            return uid

    def push_text(self, chat_id: int, text: str, date: float | None = None, chat_type: str = "private") -> int:
        with self.cond:
            mid = self.next_message_id
            self.next_message_id += 1
        return self.push({"message": {
            "message_id": mid, "date": int(time.time() if date is None else date), "text": text,
            "from": {"id": abs(chat_id), "is_bot": False, "first_name": "Test", "language_code": "en"},
            "chat": {"id": chat_id, "type": chat_type, "first_name": "Test"},
            **({"entities": [{"offset": 0, "length": len(text.split()[0]), "type": "bot_command"}]}
               if text.startswith("/") else {})}})

    def fail(self, method: str, kind: str, times: int = 1, retry_after: int = 1) -> None:
        with self.cond:
            q = self.faults.setdefault(method, deque())
            q.extend([(kind, retry_after)] * times)

    def sent_to(self, chat_id: int) -> list[str]:
        with self.cond:
            return [m["text"] for m in self.sent if m.get("chat_id") == chat_id]

    def calls_of(self, method: str) -> int:
        with self.cond:
            return sum(1 for m, _ in self.calls if m == method)

    # ---- server side --------------------------------------------------------------------------------
    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        prefix = f"/bot{self.token}/"
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            params = json.loads(raw) if raw else {}
        except ValueError:
            params = {}
        if not path.startswith("/bot"):
            return self._answer(h, 404, {"ok": False, "error_code": 404, "description": "Not Found"})
        if not path.startswith(prefix):
            return self._answer(h, 401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        method = path[len(prefix):]
        with self.cond:
            self.calls.append((method, params))
            fault = self.faults.get(method).popleft() if self.faults.get(method) else None
        if fault is not None and self._fault(h, method, *fault):
            return None
        if method == "getMe":
            return self._answer(h, 200, {"ok": True, "result": {
                "id": BOT_ID, "is_bot": True, "first_name": "UpDown test", "username": "updown_test_bot",
                "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}})
        if method == "getUpdates":
            return self._answer(h, 200, {"ok": True, "result": self._updates(params)})
        if method == "sendMessage":
            return self._send_message(h, params)
        return self._answer(h, 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"})

    def _fault(self, h: BaseHTTPRequestHandler, method: str, kind: str, retry_after: int) -> bool:
        if kind == "429":
            self._answer(h, 429, {"ok": False, "error_code": 429,
                                  "description": f"Too Many Requests: retry after {retry_after}",
                                  "parameters": {"retry_after": retry_after}})
        elif kind in ("500", "502"):
            body = f"<html><body><h1>{kind} Bad Gateway</h1></body></html>".encode()
            h.send_response(int(kind))
            h.send_header("Content-Type", "text/html")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        elif kind == "drop":
            h.close_connection = True
            h.wfile.flush()
            h.connection.shutdown(2)
        elif kind == "garbage":
            body = b"this is not JSON"
            h.send_response(200)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        elif kind == "malformed_update" and method == "getUpdates":
            with self.cond:
                uid = self.next_update_id
                self.next_update_id += 2
            self._answer(h, 200, {"ok": True, "result": [{"update_id": uid, "message": "not an object"},
                                                         "not an update at all",
                                                         {"update_id": uid + 1, "message": {"text": "/status"}}]})
        else:
            return False
        return True

    def _updates(self, params: dict) -> list[dict]:
        offset = params.get("offset")
        timeout = min(float(params.get("timeout") or 0), MAX_WAIT)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                if isinstance(offset, int):
                    self.updates = [u for u in self.updates if u["update_id"] >= offset]   # confirmed: forgotten
                if self.updates or time.monotonic() >= deadline:
                    return list(self.updates)
                self.cond.wait(max(0.0, deadline - time.monotonic()))

    def _send_message(self, h: BaseHTTPRequestHandler, params: dict) -> None:
        chat_id, text = params.get("chat_id"), params.get("text")
        if not isinstance(text, str) or not text or len(text) > 4096:
            why = "message is too long" if isinstance(text, str) and text else "message text is empty"
            return self._answer(h, 400, {"ok": False, "error_code": 400, "description": f"Bad Request: {why}"})
        with self.cond:
            mid = self.next_message_id
            self.next_message_id += 1
            self.sent.append(dict(params))
            self.cond.notify_all()
        self._answer(h, 200, {"ok": True, "result": {
            "message_id": mid, "date": int(time.time()), "text": text,
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "UpDown test", "username": "updown_test_bot"},
            "chat": {"id": chat_id, "type": "private"}}})

    @staticmethod
    def _answer(h: BaseHTTPRequestHandler, status: int, obj: dict) -> None:
        body = json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)


__all__ = ["TelegramServer"]
