#!/usr/bin/env bash
# The user's one entry point: setup, tests, and the process lifecycle (start, stop, status ...).
set -euo pipefail
# Everything this script and the processes it starts create (.venv, state/, logs/, profiles/)
# is the user's only: trade history, P&L, the wallet's browser profile, secrets.
umask 077

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$ROOT"
# shellcheck source=sh/bootstrap.sh
. "${ROOT}/sh/bootstrap.sh"
# shellcheck source=sh/lifecycle.sh
. "${ROOT}/sh/lifecycle.sh"

usage() {
  cat <<'USAGE'
usage: ./supervisor.sh COMMAND
  start [--live] [--foreground]
                       set up on first use, then start (demo: replica, signal engine, executor)
                       detached under a monitor that restarts what dies or hangs
  stop                 stop everything it started (TERM, then KILL); safe to repeat
  status [--json]      processes, current signal, last trade, risk; exit 0 all up, 3 otherwise
  restart [--live]     stop, then start
  logs [name]          follow logs/<name>.log (default: all logs; also trades, decisions)
  doctor               check config, browser, profile and .env permissions, the page's selectors
  login                open a visible browser on the profile to install/unlock the wallet, log in
  resume               clear a risk halt
  down NAME | up NAME  hold one process down on purpose / release it
  test [pytest args]   set up (.venv, dependencies, browser) and run the whole test suite
  report [--out DIR]   per-day table (trades, wins, losses, fees, P&L, drawdown) + equity-curve PNG
  bench [args]         run every benchmark (python -m bench.run_all; --quick for a short check)
  chaos [--kills N]    fault-injection run of the whole demo; exit 1 on any duplicate, lost record,
                       stale-signal trade or confirmed malicious request
USAGE
}

cmd_test() {
  bootstrap
  say "test: browser ${BROWSER_PATH}"
  "$PY" -m pytest "$@"
}

cmd_bench() {
  bootstrap
  "$PY" -m bench.run_all "$@"
}

cmd_report() {
  bootstrap_venv
  "$PY" -m risk report "$@"
}

cmd_chaos() {
  bootstrap
  "$PY" -m chaos "$@"
}

main() {
  local cmd="${1:-help}"
  [ $# -gt 0 ] && shift
  case "$cmd" in
    test) cmd_test "$@" ;;
    bench) cmd_bench "$@" ;;
    chaos) cmd_chaos "$@" ;;
    report) cmd_report "$@" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop ;;
    status) cmd_status "$@" ;;
    restart) cmd_restart "$@" ;;
    logs) cmd_logs "$@" ;;
    doctor) cmd_doctor ;;
    login) cmd_login ;;
    resume) cmd_resume ;;
    down|up) cmd_hold "$cmd" "$@" ;;
    help|-h|--help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
