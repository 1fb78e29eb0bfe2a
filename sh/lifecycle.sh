# shellcheck shell=bash
# Process lifecycle commands of supervisor.sh: start, stop, status, restart, logs, doctor,
# login, resume, down/up. The careful parts (process identity, the monitor loop, status)
# live in the Python package monitor/ (`python -m monitor ...`; doctor and login in browser_tools/,
# run through it); this file does the lock, the detaching and the user-facing flow. Sourced after
# sh/bootstrap.sh (needs ROOT, PY, say, die).

LIVE_PHRASE="I_UNDERSTAND"
LOCK_FD=9

# Needs the .venv for commands that only read state; `start`/`test` create it.
_need_venv() {
  [ -x "$PY" ] || die "not set up yet: run ./supervisor.sh start (or ./supervisor.sh test) first"
}

# Validates .env and the config (one clear line, exit 2, nothing started on a bad one) and
# sets SUP_STATE_DIR / SUP_LOG_DIR from the resolved config.
_preflight() {
  local out rc=0
  out=$("$PY" -m monitor preflight) || rc=$?
  [ "$rc" = 0 ] || exit "$rc"
  SUP_STATE_DIR=$(printf '%s\n' "$out" | sed -n 1p)
  SUP_LOG_DIR=$(printf '%s\n' "$out" | sed -n 2p)
}

# Non-blocking exclusive lock on an open fd: flock(1), or Python's fcntl where flock(1) is
# missing (macOS; SUPERVISOR_NO_FLOCK=1 forces this path, for the tests). Both lock the open
# file itself, which the monitor inherits and keeps.
_lock_nb() {
  if [ -z "${SUPERVISOR_NO_FLOCK:-}" ] && command -v flock >/dev/null 2>&1; then
    flock -n "$1"
  else
    "$PY" -c 'import fcntl, sys; fcntl.flock(int(sys.argv[1]), fcntl.LOCK_EX | fcntl.LOCK_NB)' "$1" 2>/dev/null
  fi
}

# Live needs MODE=live in the configuration too (README's safety model): --live never turns a
# demo or paper configuration into a live one. Exits 2 when it does not say live.
_need_live_mode() {
  local mode
  mode=$("$PY" -m core.config --raw MODE) || exit 2
  mode=$(printf '%s' "$mode" | tr '[:upper:]' '[:lower:]')
  if [ "$mode" != live ]; then
    printf 'supervisor: --live, but the configuration says MODE=%s: set MODE=live in .env (or the environment) as well; nothing started\n' "${mode:-demo (unset)}" >&2
    exit 2
  fi
}

_confirm_live() {
  local answer=""
  _need_live_mode
  printf '%s\n' "LIVE mode places real orders with real money on ${MARKET_URL:-the real site}." >&2
  printf 'Type %s to continue: ' "$LIVE_PHRASE" >&2
  IFS= read -r answer || true
  if [ "$answer" != "$LIVE_PHRASE" ]; then
    printf 'supervisor: live trading not confirmed; nothing started\n' >&2
    exit 2
  fi
  # Through the environment only: never on a command line (ps shows those).
  export MODE=live LIVE_CONFIRM="$LIVE_PHRASE"
}

# start's options, for cmd_start and the service-aware start in supervisor.sh: sets START_LIVE and
# START_FG (0/1); an unknown option ends the command.
start_options() {
  local arg
  START_LIVE=0 START_FG=0
  for arg in "$@"; do
    case "$arg" in
      --live) START_LIVE=1 ;;
      --foreground) START_FG=1 ;;
      *) die "start: unknown option ${arg} (use --live and/or --foreground)" ;;
    esac
  done
}

cmd_start() {
  local live fg lock mlog mpid
  start_options "$@"
  live=$START_LIVE fg=$START_FG
  bootstrap
  say "setup: browser ${BROWSER_PATH}"
  if [ "$live" = 1 ]; then _confirm_live; fi
  _preflight
  mkdir -p "$SUP_STATE_DIR" "$SUP_LOG_DIR"
  lock="${SUP_STATE_DIR}/supervisor.lock"
  eval "exec ${LOCK_FD}>>\"\$lock\""
  if ! _lock_nb "$LOCK_FD"; then
    eval "exec ${LOCK_FD}>&-"
    printf 'supervisor: already running (%s is locked by the running monitor):\n' "$lock" >&2
    printf '  ./supervisor.sh status to see it, ./supervisor.sh stop to stop it, restart to do both\n' >&2
    exit 1
  fi
  # Orphans of a dead monitor, or another program on the demo's ports: exit 1 / 2, nothing started.
  local rc=0
  "$PY" -m monitor leftovers || rc=$?
  if [ "$rc" != 0 ]; then
    eval "exec ${LOCK_FD}>&-"
    exit "$rc"
  fi
  if [ "$fg" = 1 ]; then
    say "supervisor: running in the foreground; Ctrl-C stops everything"
    exec "$PY" -m monitor run --foreground --lock-fd "$LOCK_FD"
  fi
  mlog="${SUP_LOG_DIR}/monitor.log"
  # The monitor detaches itself (os.setsid, so no SIGHUP when this shell exits) and keeps the
  # locked file open for its whole life: a second start fails to lock until it has exited.
  "$PY" -m monitor run --lock-fd "$LOCK_FD" </dev/null >>"$mlog" 2>&1 &
  mpid=$!
  eval "exec ${LOCK_FD}>&-"
  # How long to wait for the screen: SUPERVISOR_START_TIMEOUT (config: .env or the environment).
  # Exit 2: live, and the executor refused (wallet locked, ...): nothing may run half-started.
  rc=0
  "$PY" -m monitor started --pid "$mpid" || rc=$?
  if [ "$rc" = 2 ]; then
    "$PY" -m monitor stop >/dev/null || rc=$?
  fi
  return "$rc"
}

cmd_stop() {
  _need_venv
  "$PY" -m monitor stop
}

cmd_status() {
  _need_venv
  "$PY" -m monitor status "$@"
}

cmd_restart() {
  restart_check "$@"
  cmd_stop
  cmd_start "$@"
}

# restart's first step (here and in supervisor.sh's service-aware restart): exits when the start
# that follows the stop would refuse.
restart_check() {
  local rc=0 err=""
  start_options "$@"
  # The new configuration is checked before anything is stopped: a typo in .env leaves the running
  # agent running (with --live: checked as the live start will run it; the phrase is asked by start).
  # Its warnings are start's to print (once); its refusal is printed here.
  if [ -x "$PY" ]; then
    if [ "$START_LIVE" = 1 ]; then
      _need_live_mode
      err=$(LIVE_CONFIRM="$LIVE_PHRASE" "$PY" -m monitor preflight 2>&1 >/dev/null) || rc=$?
    else
      err=$("$PY" -m monitor preflight 2>&1 >/dev/null) || rc=$?
    fi
    if [ "$rc" != 0 ]; then
      printf '%s\n' "$err" >&2
      printf 'supervisor: restart refused: what runs was left running (nothing stopped)\n' >&2
      exit "$rc"
    fi
  fi
}

cmd_logs() {
  local name="${1:-}" files=() f
  _need_venv
  { read -r SUP_STATE_DIR; read -r SUP_LOG_DIR; } < <("$PY" -m monitor paths)
  [ -n "${SUP_LOG_DIR:-}" ] || exit 2
  if [ -z "$name" ] || [ "$name" = all ]; then
    for f in "$SUP_LOG_DIR"/*.log; do
      [ -e "$f" ] && files+=("$f")
    done
    [ "${#files[@]}" -gt 0 ] || die "no logs yet in ${SUP_LOG_DIR}: ./supervisor.sh start first"
  else
    case "$name" in
      trades|decisions|signals) f="${SUP_LOG_DIR}/${name}.jsonl" ;;
      *[!A-Za-z0-9_-]*) die "logs: not a process name: ${name}" ;;
      *) f="${SUP_LOG_DIR}/${name}.log" ;;
    esac
    if [ ! -e "$f" ]; then
      case "$name" in
        monitor|replica|signal_engine|executor|dashboard|telegram_bot|service|trades|decisions|signals)
          say "logs: ${f} does not exist yet; waiting for it (Ctrl-C to quit)" ;;
        *) die "logs: no log named ${name} in ${SUP_LOG_DIR} (names: monitor, replica, signal_engine, executor, dashboard, telegram_bot, service, trades, decisions, signals)" ;;
      esac
    fi
    files=("$f")
  fi
  exec tail -n 20 -F "${files[@]}"
}

cmd_doctor() {
  bootstrap_venv
  "$PY" -m monitor doctor
}

cmd_login() {
  bootstrap
  "$PY" -m monitor login
}

cmd_resume() {
  _need_venv
  if [ -f "${ROOT}/risk/__main__.py" ]; then
    "$PY" -m risk resume --by "./supervisor.sh resume"
  else
    say "resume: this build has no risk module (risk/), so there is no halt to clear"
  fi
}

cmd_hold() {
  _need_venv
  [ $# -eq 2 ] || die "usage: ./supervisor.sh $1 NAME"
  "$PY" -m monitor "$1" "$2"
}
