"""`python -m dashboard`: the local dashboard and /metrics (a supervised child, DASHBOARD=1 by default).

Listens on DASHBOARD_BIND:DASHBOARD_PORT (127.0.0.1:8787). A sampler thread reads the signal and
quote files every SAMPLE_S and touches STATE_DIR/heartbeat/dashboard; the monitor restarts the
process when that stops. Exit codes (core.exit_codes.ExitStatus): 0 on SIGTERM/SIGINT; 1 when
the port cannot be bound (taken by another program: retried by the monitor with back-off);
2 on invalid configuration.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time

from core.config import config_or_exit
from core.durable_files import touch_heartbeat
from core.exit_codes import ExitStatus

from .server import App, is_loopback, make_server
from .token import ensure_token

log = logging.getLogger("dashboard")

SAMPLE_S = 0.5


def _sampler_loop(app: App, beat, stop: threading.Event, server_alive) -> None:
    last_error = 0.0
    while not stop.is_set():
        try:
            app.sampler.sample()
        except Exception:  # noqa: BLE001 - a bad file must not stop the page; logged at most once a minute
            if time.monotonic() - last_error > 60:
                last_error = time.monotonic()
                log.exception("sampling the signal/quote files failed; trying again every %.1f s", SAMPLE_S)
        if server_alive():
            touch_heartbeat(beat)
        stop.wait(SAMPLE_S)


def main(argv: list[str] | None = None) -> int:
    os.umask(0o077)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = config_or_exit()
    try:
        token = ensure_token(cfg.state_dir)
    except OSError as exc:
        print(f"dashboard: could not create the control token in {cfg.state_dir} ({exc}); not starting",
              file=sys.stderr)
        return ExitStatus.ERROR
    app = App(cfg, token)
    try:
        server = make_server(app, cfg.dashboard_bind, cfg.dashboard_port)
    except OSError as exc:
        print(f"dashboard: cannot listen on {cfg.dashboard_bind}:{cfg.dashboard_port} ({exc.strerror or exc}):"
              " another program holds DASHBOARD_PORT? set DASHBOARD_PORT to a free port, or DASHBOARD=0",
              file=sys.stderr)
        return ExitStatus.ERROR
    if not is_loopback(cfg.dashboard_bind):
        log.warning("DASHBOARD_BIND=%s: the dashboard is reachable beyond this machine (reads need no token;"
                    " its buttons do)", cfg.dashboard_bind)
    stop = threading.Event()
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="http", daemon=True)

    def on_signal(signum: int, _frame=None) -> None:
        log.info("%s received; stopping", signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    serving.start()
    sampler = threading.Thread(target=_sampler_loop, args=(app, cfg.heartbeat_path("dashboard"), stop,
                                                           serving.is_alive), name="sampler", daemon=True)
    sampler.start()
    log.info("dashboard on http://%s:%d/ (metrics: /metrics), mode %s, assets %s", cfg.dashboard_bind,
             cfg.dashboard_port, cfg.mode, ",".join(cfg.assets))
    while not stop.is_set():
        stop.wait(1.0)
        if not serving.is_alive():
            log.error("the HTTP server thread stopped; exiting so that the monitor restarts the dashboard")
            return ExitStatus.ERROR
    server.shutdown()
    server.server_close()
    sampler.join(timeout=2)
    return ExitStatus.OK


if __name__ == "__main__":
    raise SystemExit(main())
