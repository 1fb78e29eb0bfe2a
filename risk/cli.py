"""`python -m risk resume | status [--json] | report [--out DIR]`: a thin main over RiskBook and report.

Exit codes: 0 ok, 1 the state or the log could not be read/written (one line on stderr says
which file and why), 2 configuration error or bad usage.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from filelock import Timeout

from core.config import config_or_exit
from core.exit_codes import ExitStatus
from risk.guards import RiskBook
from risk.report import build_report, format_table, write_equity_png
from risk.texts import cleared_text, format_status, status_json


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m risk", description="Risk guards and accounting views.")
    sub = p.add_subparsers(dest="cmd", required=True)
    rs = sub.add_parser("resume", help="clear a halt (daily loss, losing streak, error) and print what was cleared")
    rs.add_argument("--by", default="python -m risk resume", help="who asked, for the journal's resume line")
    st = sub.add_parser("status", help="today's P&L, win rate, open exposure and guard state")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    rp = sub.add_parser("report", help="per-day table from trades.jsonl and an equity-curve PNG")
    rp.add_argument("--out", type=Path, default=None, help="directory for equity.png (default LOG_DIR)")
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    cfg = config_or_exit()
    now = time.time()
    try:
        if args.cmd == "resume":
            cleared = RiskBook(cfg).resume(now, by=" ".join(args.by.split())[:80] or "python -m risk resume")
            if cleared is None:
                print("risk: not halted; nothing to clear")
            else:
                print(f"risk: {cleared_text(cleared)}")
            return ExitStatus.OK
        if args.cmd == "status":
            s = RiskBook(cfg).status(now)
            print(status_json(s) if args.json else format_status(s))
            return ExitStatus.OK
        if args.cmd == "report":
            rep = build_report(cfg.trades_path)
            print(f"report from {cfg.trades_path}")
            print(format_table(rep))
            png = write_equity_png(rep, (args.out or cfg.log_dir) / "equity.png")
            print(f"equity curve: {png}")
            return ExitStatus.OK
    except Timeout as exc:
        print(f"risk {args.cmd}: the risk state is locked by another process ({exc.lock_file});"
              f" nothing changed, try again", file=sys.stderr)
        return ExitStatus.ERROR
    except OSError as exc:
        print(f"risk {args.cmd}: {exc.filename or ''} {exc.strerror or exc}; nothing changed", file=sys.stderr)
        return ExitStatus.ERROR
    return ExitStatus.REFUSED
