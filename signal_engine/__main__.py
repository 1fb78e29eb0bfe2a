"""`python -m signal_engine [--once]`: the signal engine process.

Exit codes (core.exit_codes.ExitStatus): 0 on SIGTERM/SIGINT (after finishing the current write)
or after `--once`; 2 on invalid configuration (one stderr line, core.config.config_or_exit) or when
another engine already publishes one of its signal files (one line naming that engine's pid); 1
when it cannot start otherwise (an unusable replay file).

One writer per signal file: for its whole life the engine holds an exclusive lock
(core.instance_lock) per signal file it writes, `<STATE_DIR>/signal_engine-<file stem>.lock`
(`signal_engine-signal.lock` for signal.json, `signal_engine-signal-eth.lock` for
signal-eth.json ...). The first asset always writes signal.json, so two engines never share a
STATE_DIR, and two engines with different state directories never collide.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import sys

from core import instance_lock
from core.exit_codes import ExitStatus

from .schedule import PUBLISH_MIN_GAP_S, LoopWakeup, run_schedule
from .shutdown import ShutdownRequested, Stopper

log = logging.getLogger("signal_engine")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m signal_engine",
                                 description="Write state/signal.json every SIGNAL_INTERVAL seconds"
                                             " and on every streamed price.")
    ap.add_argument("--once", action="store_true",
                    help="compute one signal per asset, print it to stdout (one JSON object a line), exit")
    return ap.parse_args(argv)


def start_candles(engine, feed, thread: bool = True):
    """The 1-minute candle refresher (prob_up v2's range blend), when a model has one and a feed of the
    chain serves candles; else None (the model's close-only blend, said once in the log). Without
    `thread` (--once): the first fill only."""
    from .candles import CandleRefresher, candle_source

    if not engine.wants_candles():
        return None
    source = candle_source(feed.feeds)
    if source is None:
        log.info("no feed serves 1-minute candles (%s): prob_up uses its close-only volatility blend",
                 ",".join(f.name for f in feed.feeds))
        return None
    ref = CandleRefresher(source, list(engine.assets), engine.candles)
    if not thread:
        ref.refresh_all()        # --once: the one fill, each request with its timeout
        return None
    ref.start()                  # the first fill on its own thread: the first publishes say vol_input "close"
    log.info("1-minute candles (high/low for prob_up's range blend) from %s, refreshed after every minute",
             source.name)
    return ref


def lock_paths(cfg) -> list:
    """The lock files of the signal files this engine writes (one per asset; see the module doc)."""
    return [cfg.state_dir / f"signal_engine-{cfg.signal_path_for(a).stem}.lock" for a in cfg.assets]


def hold_signal_locks(cfg) -> list:
    """Lock every signal file this engine writes, for its life; AlreadyHeld if another engine has one."""
    held = []
    try:
        for a, path in zip(cfg.assets, lock_paths(cfg), strict=True):
            held.append(instance_lock.hold(path, f"the {a} signal file {cfg.signal_path_for(a)}"))
    except instance_lock.AlreadyHeld:
        for fh in held:
            fh.close()
        raise
    return held


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    os.umask(0o077)   # signal files, snapshots and logs are the user's own
    stopper = Stopper()
    if not args.once:
        stopper.install()          # as early as possible: a SIGTERM during start-up exits 0 too
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return _main(args, stopper)
    except ShutdownRequested as stop:
        log.info("%s: stopped", stop)
        return ExitStatus.OK


def _main(args: argparse.Namespace, stopper: Stopper) -> int:
    from core.config import config_or_exit

    cfg = config_or_exit()
    locks = []
    if not args.once:              # --once writes nothing: it needs no lock
        try:
            locks = hold_signal_locks(cfg)
        except instance_lock.AlreadyHeld as exc:
            print(f"signal_engine: {exc}", file=sys.stderr)
            return ExitStatus.REFUSED

    from .feeds import build_chainlink, build_feed, start_streams, stop_streams
    from .publisher import SignalEngine

    try:
        feed = build_feed(cfg, streams=not args.once)     # --once: one REST answer, no stream to warm up
    except (OSError, ValueError) as exc:
        print(f"signal_engine: cannot build the price feeds {list(cfg.feeds)}: {exc}", file=sys.stderr)
        return ExitStatus.ERROR
    chainlink = None if args.once else build_chainlink(cfg)
    engine = SignalEngine(cfg, feed, chainlink=chainlink)
    if args.once:
        for attempt in (1, 2):
            start_candles(engine, feed, thread=False)     # first: the backfill and the tick stay back to back
            engine.backfill()
            docs = engine.tick(write=False)
            if attempt == 2 or not engine.window_began_since_backfill():
                break
            log.info("a window began between the backfill and the tick: both again, so its open is the"
                     " exchange's price at its start")
            engine = SignalEngine(cfg, feed, chainlink=chainlink)
        for doc in docs.values():
            print(json.dumps(doc, allow_nan=False))
        return ExitStatus.OK

    engine.guard = stopper.critical
    log.info("starting: mode=%s assets=%s feeds=%s interval=%gs window=%ds stale_after=%gs files=%s",
             cfg.mode, ",".join(cfg.assets), ",".join(f.name for f in feed.feeds), cfg.signal_interval,
             cfg.window_seconds, cfg.stale_after, ", ".join(str(st.path) for st in engine.assets.values()))
    log.info("reference: %s", f"Chainlink stream {cfg.chainlink_ws_url}" if chainlink else
             "exchange price (+ basis: none measured without CHAINLINK_WS_URL)")
    engine.prepare()
    engine.write_starting()
    engine.backfill()
    candles = start_candles(engine, feed)
    loop = asyncio.new_event_loop()   # the streams run on this thread, while it waits between publishes
    wake = LoopWakeup(loop)           # they name the assets they bring news for; this thread publishes them
    streams = start_streams(feed, chainlink, on_message=wake.notify, loop=loop)   # after the backfill (REST)
    if streams:
        log.info("publishing on every streamed price too (at most every %g s per asset), when the stream"
                 " is the price source", PUBLISH_MIN_GAP_S)
    gc.freeze()    # what start-up built lives as long as the process: the collector no longer walks it
    try:
        run_schedule(engine.tick, cfg.signal_interval, cfg.window_seconds, wake=wake if streams else None,
                     publish=engine.publish_event)
    finally:
        stop_streams(streams, loop)
        if candles is not None:
            candles.stop()
        left = engine.leftover_temp_files()
        for tmp in left:   # atomic_write_bytes removes its temp file on any exit; belt and braces
            tmp.unlink(missing_ok=True)
        log.info("exiting after %d ticks and %d publishes on streamed prices (last seq %d)", engine.ticks,
                 engine.event_publishes, engine.seq)
        for fh in locks:           # released by the exit anyway; explicit for the reader
            fh.close()
    return ExitStatus.OK


if __name__ == "__main__":
    raise SystemExit(main())
