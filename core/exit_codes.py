"""One set of exit codes for every entry point (as httpie's ExitStatus).

`python -m executor`, `python -m signal_engine`, `python -m monitor ...`, `python -m risk ...`,
`python -m chaos`, the backtest and `supervisor.sh` all exit with one of these. The supervisor
relies on REFUSED: a child that exits 2 refused to run on its own config check and is not
restarted.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0           # done, or stopped on request (SIGTERM/SIGINT)
    ERROR = 1        # failed at run time: I/O, a probe that found a missing selector, a failed check
    REFUSED = 2      # configuration invalid, usage error, or trading refused (one line on stderr)
    NOT_ALL_UP = 3   # `status`: not every process is running


__all__ = ["ExitStatus"]
