"""Download Binance 1-minute klines into the backtest's headered CSV.

    python -m signal_engine.fetch_history --symbol BTCUSDT --days N [--out FILE] [--base-url URL]

Pages through GET {base}/api/v3/klines?symbol=..&interval=1m&startTime=..&endTime=..&limit=1000
and writes `open_time,open,high,low,close,volume` (open_time in epoch ms, prices as Binance sent
them), gzip when the name ends in .gz, atomically. Only closed candles are kept. Missing minutes
stay missing (the backtest treats them as gaps).

Faults: HTTP 429/418 wait for Retry-After (capped) and retry; 5xx, timeouts, connection errors
and bodies that are not kline JSON are retried with a growing back-off; every retry is bounded.
Exit codes: 0 written, 1 gave up on the network or server, 2 bad input (e.g. unknown symbol).
"""

from __future__ import annotations

import argparse
import gzip
import io
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from core.durable_files import atomic_write_bytes
from core.exit_codes import ExitStatus

log = logging.getLogger("fetch_history")
DEFAULT_BASE_URL = "https://api.binance.com"
STEP_MS = 60_000
PAGE_LIMIT = 1000
HEADER = "open_time,open,high,low,close,volume\n"
REPO = Path(__file__).resolve().parent.parent


class FetchError(Exception):
    """The server or network failed beyond the retry budget (exit 1)."""


class BadRequest(Exception):
    """The server refused the request itself (unknown symbol, bad parameter): exit 2."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6              # tries per page
    backoff_s: float = 1.0         # first wait after a 5xx / timeout / bad body; doubles each time
    max_backoff_s: float = 30.0
    max_retry_after_s: float = 120.0   # a longer Retry-After is capped to this
    timeout_s: float = 10.0        # per request (connect and read)


def _retry_after(resp: requests.Response, default: float, cap: float) -> float:
    raw = resp.headers.get("Retry-After", "")
    try:
        wait = float(raw)
    except ValueError:
        wait = default
    return max(0.0, min(wait, cap))


def _valid_rows(data: object) -> list[list]:
    """The kline rows of a page; ValueError if the body is not Binance's array of arrays."""
    if not isinstance(data, list):
        raise ValueError(f"expected a JSON array of klines, got {type(data).__name__}")
    rows = []
    for r in data:
        if not isinstance(r, list) or len(r) < 7:
            raise ValueError(f"kline row has the wrong shape: {str(r)[:80]}")
        try:
            _ = [int(r[0]), int(r[6])] + [float(x) for x in r[1:6]]
        except (TypeError, ValueError) as e:
            raise ValueError(f"kline row has a non-numeric field: {str(r)[:80]}") from e
        rows.append(r)
    return rows


def get_page(session: requests.Session, base_url: str, symbol: str, start_ms: int, end_ms: int,
             policy: RetryPolicy, sleep: Callable[[float], None]) -> list[list]:
    """One page of klines, with the retry policy. FetchError / BadRequest when it gives up."""
    params = {"symbol": symbol, "interval": "1m", "startTime": start_ms, "endTime": end_ms, "limit": PAGE_LIMIT}
    url = base_url.rstrip("/") + "/api/v3/klines"
    backoff = policy.backoff_s
    last = "no attempt"
    for attempt in range(1, policy.attempts + 1):
        wait = backoff
        try:
            resp = session.get(url, params=params, timeout=policy.timeout_s)
        except requests.Timeout:
            last = f"timeout after {policy.timeout_s:g} s"
        except requests.ConnectionError as e:
            last = f"connection error: {e.__class__.__name__}"
        else:
            if resp.status_code in (429, 418):
                wait = _retry_after(resp, backoff, policy.max_retry_after_s)
                last = f"HTTP {resp.status_code} (rate limit), Retry-After {resp.headers.get('Retry-After', '-')}"
            elif resp.status_code >= 500:
                last = f"HTTP {resp.status_code}"
            elif resp.status_code >= 400:
                try:
                    msg = resp.json().get("msg", "")
                except ValueError:
                    msg = resp.text[:120]
                raise BadRequest(f"Binance refused {symbol} (HTTP {resp.status_code}): {msg}")
            else:
                try:
                    return _valid_rows(resp.json())
                except ValueError as e:
                    last = f"bad body ({e})"[:200]
        if attempt < policy.attempts:
            log.warning("klines %s from %d: %s; retry %d/%d in %.1f s", symbol, start_ms, last, attempt,
                        policy.attempts - 1, wait)
            sleep(wait)
            backoff = min(backoff * 2.0, policy.max_backoff_s)
    raise FetchError(f"gave up on klines for {symbol} from {start_ms} after {policy.attempts} tries: {last}")


def fetch(base_url: str, symbol: str, start_ms: int, end_ms: int, policy: RetryPolicy = RetryPolicy(),
          sleep: Callable[[float], None] = time.sleep, session: requests.Session | None = None,
          progress: Callable[[int, int], None] | None = None) -> list[list]:
    """Closed 1-minute klines with open time in [start_ms, end_ms - 1 min], de-duplicated, in order."""
    session = session or requests.Session()
    out: dict[int, list] = {}
    cursor = start_ms
    last_open = end_ms - STEP_MS          # the last candle that has closed by end_ms
    while cursor <= last_open:
        page = get_page(session, base_url, symbol, cursor, last_open, policy, sleep)
        page = [r for r in page if cursor <= int(r[0]) <= last_open]
        if not page:
            break
        for r in page:
            out[int(r[0])] = r
        cursor = int(page[-1][0]) + STEP_MS
        if progress:
            progress(cursor - start_ms, last_open + STEP_MS - start_ms)
    return [out[k] for k in sorted(out)]


def to_csv(rows: list[list]) -> str:
    buf = io.StringIO()
    buf.write(HEADER)
    for r in rows:
        buf.write(f"{int(r[0])},{r[1]},{r[2]},{r[3]},{r[4]},{r[5]}\n")
    return buf.getvalue()


def write_csv(path: Path, rows: list[list]) -> None:
    data = to_csv(rows).encode()
    if path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)


def main(argv: list[str] | None = None, now: Callable[[], float] = time.time) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    p = argparse.ArgumentParser(prog="python -m signal_engine.fetch_history", description=__doc__.split("\n\n")[0])
    p.add_argument("--symbol", required=True, help="e.g. BTCUSDT")
    p.add_argument("--days", type=float, required=True, help="how many days back from now")
    p.add_argument("--out", type=Path, help="output file (default state/history/<symbol>_1m_<days>d.csv.gz)")
    p.add_argument("--base-url", default=DEFAULT_BASE_URL)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    p.add_argument("--retries", type=int, default=6, help="tries per page before giving up")
    p.add_argument("--backoff", type=float, default=1.0, help="first back-off in seconds (doubles)")
    a = p.parse_args(argv)
    symbol = a.symbol.upper()
    if not symbol.isalnum() or not 0 < a.days <= 3650 or a.retries < 1 or a.backoff < 0 or a.timeout <= 0:
        print(f"fetch_history: need an alphanumeric --symbol (got {a.symbol!r}), 0 < --days <= 3650 "
              f"(got {a.days:g}), --retries >= 1, --backoff >= 0 and --timeout > 0, "
              "e.g. --symbol BTCUSDT --days 30", file=sys.stderr)
        return ExitStatus.REFUSED
    out = a.out or REPO / "state" / "history" / f"{symbol.lower()}_1m_{a.days:g}d.csv.gz"
    end_ms = int(now() * 1000) // STEP_MS * STEP_MS
    start_ms = end_ms - int(a.days * 86_400_000) // STEP_MS * STEP_MS
    last_pct = [-1]

    def progress(done: int, total: int) -> None:
        pct = int(100 * done / max(total, 1))
        if pct // 10 != last_pct[0] // 10:
            last_pct[0] = pct
            log.info("%s: %d%% (%d of %d minutes)", symbol, pct, done // STEP_MS, total // STEP_MS)

    try:
        policy = RetryPolicy(attempts=a.retries, backoff_s=a.backoff, timeout_s=a.timeout)
        rows = fetch(a.base_url, symbol, start_ms, end_ms, policy, progress=progress)
    except BadRequest as e:
        print(f"fetch_history: {e}; nothing written", file=sys.stderr)
        return ExitStatus.REFUSED
    except FetchError as e:
        print(f"fetch_history: {e}; nothing written", file=sys.stderr)
        return ExitStatus.ERROR
    if not rows:
        print(f"fetch_history: Binance returned no candle for {symbol} in the last {a.days:g} days; "
              "nothing written", file=sys.stderr)
        return ExitStatus.ERROR
    try:
        write_csv(out, rows)
    except OSError as e:
        print(f"fetch_history: cannot write {out}: {e}", file=sys.stderr)
        return ExitStatus.REFUSED
    expected = (end_ms - start_ms) // STEP_MS
    print(f"wrote {len(rows)} candles ({expected - len(rows)} missing minutes) to {out}")
    return ExitStatus.OK


if __name__ == "__main__":
    sys.exit(main())
