"""A local WebSocket server (127.0.0.1, a free port) speaking the recorded stream shapes: Binance's
combined trade stream and Polymarket RTDS's crypto_prices_chainlink topic (signal_engine/feeds/stream.py
cites both). The test drives it: `send_trade`, `send_chainlink`, `send_raw` (garbage), `close_all`
(a close frame), `silent = True` (the connection stays open and nothing is sent: a silent stall).
`received` holds what clients sent (subscriptions, PINGs); `connects` and `paths` count connections.
"""

from __future__ import annotations

import asyncio
import json
import threading

from websockets.asyncio.server import serve


class WsServer:
    def __init__(self):
        self.received: list[str] = []
        self.paths: list[str] = []
        self.connects = 0
        self.silent = False
        self._clients: set = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Future | None = None
        self._thread = threading.Thread(target=self._run, name="ws-server", daemon=True)
        self.url = ""

    # ---- lifecycle ----

    def start(self) -> WsServer:
        self._thread.start()
        assert self._ready.wait(10), "the WebSocket test server did not start"
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(lambda: self._stop.set_result(None) if not self._stop.done() else None)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = self._loop.create_future()
        async with serve(self._handler, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            self.url = f"ws://127.0.0.1:{port}"
            self._ready.set()
            await self._stop

    async def _handler(self, ws) -> None:
        self.connects += 1
        self.paths.append(ws.request.path)
        self._clients.add(ws)
        try:
            async for msg in ws:
                self.received.append(msg if isinstance(msg, str) else msg.decode())
        except Exception:  # noqa: BLE001 - a client that vanishes ends its handler, nothing else
            return
        finally:
            self._clients.discard(ws)

    # ---- driving it from the test's thread ----

    def _call(self, coro_fn) -> None:
        fut = asyncio.run_coroutine_threadsafe(coro_fn(), self._loop)
        fut.result(timeout=5)

    def send_raw(self, text: str) -> None:
        if self.silent:
            return

        async def go():
            for ws in list(self._clients):
                await ws.send(text)
        self._call(go)

    def send_trade(self, symbol: str, price: str, trade_ms: int, kind: str = "aggTrade") -> None:
        """Binance's combined-stream trade event (web-socket-streams.md, "Aggregate Trade Streams")."""
        data = {"e": kind, "E": trade_ms + 2, "s": symbol.upper(), "a": 12345, "p": price, "q": "0.010",
                "f": 100, "l": 105, "T": trade_ms, "m": True, "M": True}
        self.send_raw(json.dumps({"stream": f"{symbol.lower()}@{kind}", "data": data}))

    def send_chainlink(self, symbol: str, value: float, ts_ms: int) -> None:
        """RTDS's crypto_prices_chainlink update (docs.polymarket.com, Real-Time Data Socket)."""
        self.send_raw(json.dumps({"topic": "crypto_prices_chainlink", "type": "update", "timestamp": ts_ms + 24,
                                  "payload": {"symbol": symbol, "timestamp": ts_ms, "value": value}}))

    def close_all(self) -> None:
        async def go():
            for ws in list(self._clients):
                await ws.close()
        self._call(go)

    @property
    def clients(self) -> int:
        return len(self._clients)
