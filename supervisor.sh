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
  restart [--live]     check the configuration, then stop and start (a refused one stops nothing)
  logs [name]          follow logs/<name>.log (default: all logs; also trades, decisions)
  doctor               check config, browser, profile and .env permissions, the page's selectors
  login                open a visible browser on the profile to install/unlock the wallet, log in
  resume               clear a risk halt
  pause | unpause      no new trades (processes keep running, positions settle) / trade again;
                       kept across restarts (state/pause.json); also from the dashboard and Telegram
  down NAME | up NAME  hold one process down on purpose / release it
  test [pytest args]   set up (.venv, dependencies, browser) and run the whole test suite
  report [--out DIR]   per-day table (trades, wins, losses, fees, P&L, drawdown) + equity-curve PNG
  bench [args]         run every benchmark (python -m bench.run_all; --quick for a short check)
  chaos [--kills N]    fault-injection run of the whole demo; exit 1 on any duplicate, lost record,
                       stale-signal trade or confirmed malicious request
  install [--live]     run it after reboots: a systemd user unit (Linux with user systemd), else an
                       @reboot crontab line; a launchd agent on macOS. Starts nothing now; --live asks
                       for the live confirmation now and stores it (state/, mode 600)
  uninstall            remove exactly what install added (and the stored live confirmation)
  service-run [--detach]
                       what the service runs: the monitor in the foreground (systemd, Type=notify);
                       --detach: a plain start (cron, launchd)
USAGE
}

# ---- the service (install/uninstall; start/stop go through systemctl while a unit is installed) ----

cmd_install() {
  local live=0 arg
  for arg in "$@"; do
    case "$arg" in
      --live) live=1 ;;
      *) die "install: unknown option ${arg} (use --live)" ;;
    esac
  done
  bootstrap_venv  # the browser is found (or installed) by the start the service runs, as by start
  if [ "$live" = 1 ]; then _confirm_live; fi
  # The start checks, now: a service that would refuse at boot is not installed.
  local rc=0
  "$PY" -m monitor preflight >/dev/null || rc=$?
  if [ "$rc" != 0 ]; then
    if [ "$live" = 0 ]; then say "install: nothing installed (for MODE=live: ./supervisor.sh install --live)" >&2; fi
    exit "$rc"
  fi
  "$PY" -m monitor.service_cli install
}

cmd_uninstall() {
  [ $# -eq 0 ] || die "usage: ./supervisor.sh uninstall"
  _need_venv
  "$PY" -m monitor.service_cli uninstall
}

# What the unit (foreground, so systemd watches the monitor itself), the crontab line and the
# launchd agent (--detach: a plain start) run. A live confirmation stored by `install --live`
# reaches the processes as `start --live`'s does: through the environment, never argv.
cmd_service_run() {
  local detach=0
  case "${1:-}" in
    "") ;;
    --detach) detach=1 ;;
    *) die "service-run: unknown option ${1} (use --detach)" ;;
  esac
  bootstrap_venv
  if "$PY" -m monitor.service_cli live-confirmed; then
    export MODE=live LIVE_CONFIRM="$LIVE_PHRASE"
  fi
  if [ "$detach" = 1 ]; then cmd_start; else cmd_start --foreground; fi
}

# Cheap checks (no Python) so that start and stop cost nothing extra where nothing is installed; the
# names are monitor/service.py's (UNIT, LABEL, CRON_MARK), which decides for real.
_svc_unit_file() {
  [ -e "${XDG_CONFIG_HOME:-${HOME:-}/.config}/systemd/user/clobbot-supervisor.service" ]
}

_svc_maybe_installed() {
  local cron="${SUPERVISOR_CRONTAB:-crontab}" table=""
  _svc_unit_file && return 0
  [ -e "${HOME:-}/Library/LaunchAgents/com.clobbot.supervisor.plist" ] && return 0
  if command -v "$cron" >/dev/null 2>&1; then
    table=$("$cron" -l 2>/dev/null || true)
    case "$table" in *"# clobbot-supervisor "*) return 0 ;; esac
  fi
  return 1
}

svc_start() {
  local fg live how=plain
  start_options "$@"
  live=$START_LIVE fg=$START_FG
  if [ "$fg" = 0 ] && [ -x "$PY" ] && _svc_unit_file; then
    how=$("$PY" -m monitor.service_cli how-to-start 2>/dev/null || true)
  fi
  if [ "$how" = systemd ]; then
    if [ "$live" = 1 ]; then
      "$PY" -m monitor.service_cli start-unit --live
    else
      "$PY" -m monitor.service_cli start-unit
    fi
  else
    cmd_start "$@"
  fi
}

svc_stop() {
  _need_venv
  # Under systemd, systemctl stops it (so systemd does not restart what stop ends); otherwise, or
  # if anything is left, the plain stop (pid files, identity checks) does the work.
  if ! _svc_unit_file || ! "$PY" -m monitor.service_cli stop-unit; then
    cmd_stop
  fi
  if [ "${1:-}" != quiet ] && _svc_maybe_installed; then "$PY" -m monitor.service_cli stop-note; fi
}

cmd_test() {
  bootstrap
  local workers="${TEST_WORKERS:-2}" arg
  case "$workers" in
    ''|*[!0-9]*) die "TEST_WORKERS must be a whole number (0: one process), got '${workers:0:20}'" ;;
  esac
  for arg in "$@"; do
    case "$arg" in --pdb|--trace|-s) workers=0 ;; esac   # a debugger or a terminal needs one process
  done
  say "test: browser ${BROWSER_PATH}, ${workers} workers (TEST_WORKERS=0: one process)"
  # Two workers, a test file per worker at a time: most of the suite waits (windows, processes,
  # pages), so two files at once halve the wall time on 2 cores (README, "Tests").
  "$PY" -m pytest -n "$workers" --dist loadfile "$@"
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
    start) svc_start "$@" ;;
    stop) svc_stop ;;
    status) cmd_status "$@" ;;
    restart) restart_check "$@"; svc_stop quiet; svc_start "$@" ;;
    install) cmd_install "$@" ;;
    uninstall) cmd_uninstall "$@" ;;
    service-run) cmd_service_run "$@" ;;
    logs) cmd_logs "$@" ;;
    doctor) cmd_doctor ;;
    login) cmd_login ;;
    resume) cmd_resume ;;
    pause|unpause) _need_venv; "$PY" -m monitor "$cmd" ;;
    down|up) cmd_hold "$cmd" "$@" ;;
    help|-h|--help) usage ;;
    *) usage >&2; printf 'supervisor: unknown command %s (the commands are listed above)\n' "$cmd" >&2; exit 2 ;;
  esac
}

main "$@"
