"""`python -m replica`: run the market page and the wallet popup on 127.0.0.1.

Exit codes (core.exit_codes.ExitStatus): 0 after SIGTERM/SIGINT (state snapshotted), 2 for a bad
configuration or argument, 1 when a port cannot be bound or the final snapshot fails.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from core.config import DEMO_WALLET_PASSWORD, ConfigError, load_config
from core.durable_files import atomic_write_json, touch_heartbeat
from core.exit_codes import ExitStatus

from .resolution import resolution_delay
from .server import App, make_servers
from .state import ReplicaState, Settings

log = logging.getLogger("replica")


def _assets(text: str) -> tuple[str, ...]:
    items = tuple(dict.fromkeys(a.strip().upper() for a in text.split(",") if a.strip()))
    if not items or not all(a.isalnum() for a in items):
        raise argparse.ArgumentTypeError(f"expected a comma list of asset symbols like BTC,ETH, got {text!r}")
    return items


def _nonneg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def parse_args(argv: list[str] | None, defaults: dict) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m replica", description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=defaults["port"], help="market site port (0 = any free port)")
    p.add_argument("--wallet-port", type=int, default=defaults["wallet_port"],
                   help="wallet popup port, another origin (0 = any free port)")
    p.add_argument("--window-seconds", type=int, default=defaults["window_seconds"],
                   help="window length on the UTC grid (900 = the real markets)")
    p.add_argument("--seed", type=int, default=7, help="seed of the price paths")
    p.add_argument("--assets", type=_assets, default=("BTC", "ETH"), help="comma list, e.g. BTC,ETH")
    p.add_argument("--state-file", type=Path, default=None, help="JSON snapshot, reloaded at start")
    p.add_argument("--heartbeat", type=Path, default=None, help="file touched every second")
    p.add_argument("--ready-file", type=Path, default=None,
                   help="JSON written once both ports listen: pid, ports, urls")
    p.add_argument("--price-to-beat-delay", type=_nonneg, default=None,
                   help="seconds after the start before the price to beat shows (default 30, capped at"
                        " a third of the window)")
    p.add_argument("--resolution-delay", type=_nonneg, default=None,
                   help="seconds after a window's end before its market resolves: the APIs publish the winner"
                        " and the replica's own orders settle (default $REPLICA_RESOLUTION_DELAY, else"
                        " min(28, window / 4))")
    p.add_argument("--unlock-seconds", type=_nonneg, default=900.0, help="the wallet stays unlocked this long")
    p.add_argument("--balance", type=_nonneg, default=1000.0, help="starting cash in USD")
    p.add_argument("--request-timeout", type=_nonneg, default=90.0,
                   help="seconds before an unanswered wallet request expires")
    p.add_argument("--fee-rate", type=_nonneg, default=defaults["fee_rate"])
    p.add_argument("--fee-exponent", type=_nonneg, default=defaults["fee_exponent"])
    p.add_argument("--wallet-password", default=None,
                   help="avoid: argv is visible to other users; prefer REPLICA_WALLET_PASSWORD")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING"))
    args = p.parse_args(argv)
    for name in ("port", "wallet_port"):
        value = getattr(args, name)
        if value != 0 and not 1024 <= value <= 65535:
            p.error(f"--{name.replace('_', '-')} must be 0 or 1024..65535, got {value}")
    if args.port and args.port == args.wallet_port:
        p.error("--port and --wallet-port must differ (the wallet is another origin)")
    if not 10 <= args.window_seconds <= 86400:
        p.error(f"--window-seconds must be 10..86400, got {args.window_seconds}")
    return args


def _config_defaults() -> dict:
    try:
        cfg = load_config(check_dirs=False)
    except ConfigError as exc:
        print(f"replica: {exc}", file=sys.stderr)
        raise SystemExit(ExitStatus.REFUSED) from None
    return {"port": cfg.replica_port, "wallet_port": cfg.replica_wallet_port, "window_seconds": cfg.window_seconds,
            "fee_rate": cfg.fee_rate, "fee_exponent": cfg.fee_exponent,
            "password": str(cfg.metamask_password or "")}


def main(argv: list[str] | None = None) -> int:
    defaults = _config_defaults()
    args = parse_args(argv, defaults)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    password = args.wallet_password or os.environ.get("REPLICA_WALLET_PASSWORD") or defaults["password"]
    if not password:
        log.warning("no wallet password configured (REPLICA_WALLET_PASSWORD or METAMASK_PASSWORD):"
                    " the documented demo default applies")
        password = DEMO_WALLET_PASSWORD
    ptb = args.price_to_beat_delay
    if ptb is None:
        ptb = min(30.0, args.window_seconds / 3)
    settings = Settings(window_seconds=args.window_seconds, seed=args.seed, assets=args.assets,
                        price_to_beat_delay=ptb, unlock_seconds=args.unlock_seconds, password=password,
                        fee_rate=args.fee_rate, fee_exponent=args.fee_exponent, balance=args.balance,
                        request_timeout=args.request_timeout, state_file=args.state_file,
                        resolution_delay=args.resolution_delay)
    state = ReplicaState(settings)
    app = App(state)
    try:
        market, wallet = make_servers(app, args.port, args.wallet_port)
    except OSError as exc:
        log.error("cannot bind 127.0.0.1 ports %s/%s: %s; pick others with --port/--wallet-port",
                  args.port, args.wallet_port, exc)
        return ExitStatus.ERROR   # the ports may free up: the supervisor retries with back-off

    stop = threading.Event()

    def on_signal(signum, _frame) -> None:
        log.info("signal %s: snapshotting and stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threads = [threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True,
                                name=name) for srv, name in ((market, "market"), (wallet, "wallet"))]
    for t in threads:
        t.start()
    info = {"pid": os.getpid(), "port": app.port, "wallet_port": app.wallet_port, "base_url": app.base_url,
            "market_url": app.base_url + "/crypto/15M", "wallet_origin": app.wallet_origin,
            "window_seconds": settings.window_seconds, "resolution_delay": resolution_delay(settings),
            "started": time.time()}
    if args.ready_file:
        atomic_write_json(args.ready_file, info)
    log.info("replica ready: market %s/crypto/15M, wallet %s, %d s windows (resolved %g s after the end),"
             " assets %s, state file %s", app.base_url, app.wallet_origin, settings.window_seconds,
             resolution_delay(settings), ",".join(settings.assets), args.state_file or "none")
    print(f"replica ready: {app.base_url}/crypto/15M (wallet {app.wallet_origin})", flush=True)

    while not stop.is_set():
        if args.heartbeat:
            try:
                touch_heartbeat(args.heartbeat)
            except OSError as exc:
                log.warning("cannot touch heartbeat %s: %s (retrying in 1 s)", args.heartbeat, exc)
        try:
            state.settle_due()
        except OSError as exc:
            log.error("snapshot after settlement failed: %s (retrying in 1 s)", exc)
        stop.wait(0.5 if settings.window_seconds < 120 else 1.0)

    for srv in (market, wallet):
        srv.shutdown()
        srv.server_close()
    try:
        state.snapshot()
    except OSError as exc:
        log.error("final snapshot to %s failed: %s", args.state_file, exc)
        return ExitStatus.ERROR
    log.info("stopped")
    return ExitStatus.OK


if __name__ == "__main__":
    raise SystemExit(main())
