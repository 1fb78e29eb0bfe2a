"""Binance-shaped price endpoints over the replica's own price path (for the demo's signal engine).

`GET /api/v3/ticker/price?symbol=BTCUSDT` -> {"symbol": "BTCUSDT", "price": "90012.34"} (the
path's price now; without `symbol`, a list for every asset, as Binance does).
`GET /api/v3/klines?symbol=BTCUSDT&interval=1m&limit=N[&startTime=ms][&endTime=ms]` -> Binance's
array of arrays [openTime, open, high, low, close, volume, closeTime, quoteVolume, trades,
takerBuyBase, takerBuyQuote, "0"], oldest first, the last one the candle still open now.

The path is a pure function of time (replica/pricing.py), so any past candle can be served. A
candle's open is the path at its open time, its close the path at its close time (or now, for
the open candle), high/low the extremes of 1 s samples in between. Volume is not modelled: 0.
Errors are Binance's: HTTP 400 with {"code": ..., "msg": ...}.
"""

from __future__ import annotations

import math
import threading

from .pricing import PricePath
from .state import ReplicaState

QUOTE = "USDT"
DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
INTERVALS = {"1s": 1, "1m": 60, "3m": 180, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "2h": 7200,
             "4h": 14400, "6h": 21600, "8h": 28800, "12h": 43200, "1d": 86400}
MAX_SAMPLES_PER_CANDLE = 60  # high/low: at most this many samples of the path inside one candle

Answer = tuple[int, object]  # (HTTP status, JSON body)


def _error(code: int, msg: str) -> Answer:
    return 400, {"code": code, "msg": msg}


def _fmt(path: PricePath, price: float) -> str:
    return f"{price:.{path.decimals}f}"


def _path_for(state: ReplicaState, symbol: str | None) -> PricePath | Answer:
    if not symbol:
        return _error(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
    sym = symbol.upper()
    if sym.endswith(QUOTE):
        path = state.paths.get(sym[: -len(QUOTE)])
        if path is not None:
            return path
    return _error(-1121, "Invalid symbol.")


def _int_param(query: dict[str, str], name: str) -> int | None | Answer:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 20:
        return _error(-1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.")
    return int(raw)


def ticker_price(state: ReplicaState, query: dict[str, str]) -> Answer:
    now = state.clock()
    if "symbol" not in query:
        return 200, [{"symbol": a + QUOTE, "price": _fmt(p, p.price(now))} for a, p in state.paths.items()]
    path = _path_for(state, query.get("symbol"))
    if not isinstance(path, PricePath):
        return path
    return 200, {"symbol": path.asset + QUOTE, "price": _fmt(path, path.price(now))}


_CLOSED: dict[tuple, list] = {}   # (asset, seed, window length, open, step) -> a closed candle's row
_CLOSED_LOCK = threading.Lock()   # the server answers on several threads
MAX_CLOSED = 8192


def _candle(path: PricePath, start: float, step: int, now: float) -> list:
    """One candle's row. A closed one never changes (the path is a function of time): kept, so the
    engine's start (its backfill and its candle book ask for ~725 each, ~44k path samples) does not
    pay twice; a slow answer on a loaded machine ran past the engine's 2 s feed timeout."""
    key = (path.asset, path.seed, path.window_seconds, start, step)
    with _CLOSED_LOCK:
        row = _CLOSED.get(key)
    if row is not None:
        return row
    end = min(start + step, now)
    n = max(1, min(MAX_SAMPLES_PER_CANDLE, int(end - start)))
    samples = [path.price(start + (end - start) * i / n) for i in range(n + 1)]
    open_ms = int(start * 1000)
    row = [open_ms, _fmt(path, samples[0]), _fmt(path, max(samples)), _fmt(path, min(samples)),
           _fmt(path, samples[-1]), "0", open_ms + step * 1000 - 1, "0", 0, "0", "0", "0"]
    if start + step <= now:
        with _CLOSED_LOCK:
            _CLOSED[key] = row
            while len(_CLOSED) > MAX_CLOSED:
                del _CLOSED[next(iter(_CLOSED))]
    return row


def klines(state: ReplicaState, query: dict[str, str]) -> Answer:
    path = _path_for(state, query.get("symbol"))
    if not isinstance(path, PricePath):
        return path
    interval = query.get("interval")
    if not interval:
        return _error(-1102, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.")
    step = INTERVALS.get(interval)
    if step is None:
        return _error(-1120, "Invalid interval.")
    params = {}
    for name in ("limit", "startTime", "endTime"):
        value = _int_param(query, name)
        if isinstance(value, tuple):
            return value
        params[name] = value
    limit = min(MAX_LIMIT, max(1, params["limit"] or DEFAULT_LIMIT))
    now = state.clock()
    current = math.floor(now / step) * step          # the open time of the candle still open now
    last = current
    if params["endTime"] is not None:
        last = min(last, math.floor(params["endTime"] / 1000 / step) * step)
    if params["startTime"] is not None:
        first = math.ceil(params["startTime"] / 1000 / step) * step
        last = min(last, first + (limit - 1) * step)
    else:
        first = last - (limit - 1) * step
    if last < first:
        return 200, []
    count = int(round((last - first) / step)) + 1
    return 200, [_candle(path, first + i * step, step, now) for i in range(count)]


def answer(state: ReplicaState, path: str, query: dict[str, str]) -> Answer | None:
    """The answer for a GET under /api/v3/, or None when the route is not one of these."""
    if path == "/api/v3/ticker/price":
        return ticker_price(state, query)
    if path == "/api/v3/klines":
        return klines(state, query)
    return None
