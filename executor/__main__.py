"""`python -m executor` (trade) and `python -m executor --probe` (check the selectors, trade nothing).

Exit codes (core.exit_codes.ExitStatus): 0 stopped normally (SIGTERM/SIGINT) or probe OK; 1 probe
found a missing selector or could not load the page; 2 configuration invalid or trading refused
(one line on stderr).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from core.config import config_or_exit
from core.exit_codes import ExitStatus
from executor.profiles import ProfileError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m executor", description=__doc__.splitlines()[0])
    parser.add_argument("--probe", action="store_true", help="report which profile selectors match; trade nothing")
    args = parser.parse_args(argv)
    os.umask(0o077)   # the journal, screenshots and state are the user's private trading records
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = config_or_exit()
    try:
        if args.probe:
            from executor.probe import probe
            return probe(cfg)
        from executor.services import StopFlag
        from executor.worker import Worker
        stop = StopFlag()

        def on_signal(signum, _frame) -> None:
            stop.set(f"signal {signal.Signals(signum).name}")

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        return Worker(cfg, stop).run()
    except ProfileError as exc:
        print(f"executor: {exc}", file=sys.stderr)
        return ExitStatus.REFUSED


if __name__ == "__main__":
    raise SystemExit(main())
