#!/usr/bin/env bash
# The user's one entry point: setup, tests, and (see below) the process lifecycle.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$ROOT"
# shellcheck source=sh/bootstrap.sh
. "${ROOT}/sh/bootstrap.sh"

usage() {
  cat <<'USAGE'
usage: ./supervisor.sh COMMAND
  test [pytest args]   set up (.venv, dependencies, browser) and run the whole test suite
USAGE
}

cmd_test() {
  bootstrap
  say "test: browser ${BROWSER_PATH}"
  "$PY" -m pytest "$@"
}

main() {
  local cmd="${1:-help}"
  [ $# -gt 0 ] && shift
  case "$cmd" in
    test) cmd_test "$@" ;;
    help|-h|--help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
