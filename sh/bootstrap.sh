# shellcheck shell=bash
# First-run setup shared by `./supervisor.sh test` and `./supervisor.sh start`:
# a .venv with the pinned dependencies, and a browser. Idempotent: a second run that
# finds everything in place only checks a stamp and returns within a second or two.
# Sourced by supervisor.sh (which sets ROOT and has `set -euo pipefail`).

VENV="${ROOT}/.venv"
PY="${VENV}/bin/python"

say() { printf '%s\n' "$*"; }
die() { printf 'supervisor: %s\n' "$*" >&2; exit 1; }

_sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$@"; else shasum -a 256 "$@"; fi
}

_find_python() {
  local cand
  for cand in "${PYTHON:-}" python3 python3.13 python3.12 python3.11 python3.10 python; do
    [ -n "$cand" ] || continue
    command -v "$cand" >/dev/null 2>&1 || continue
    if "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
      command -v "$cand"; return 0
    fi
  done
  return 1
}

bootstrap_venv() {
  local want have pybin
  want=$(cd "$ROOT" && _sha256 requirements.txt requirements-dev.txt | _sha256 | cut -c1-16)
  have=$(cat "${VENV}/.requirements.sha" 2>/dev/null || true)
  if [ -x "$PY" ] && [ "$want" = "$have" ]; then
    return 0
  fi
  if [ ! -x "$PY" ]; then
    pybin=$(_find_python) || die "Python 3.10 or newer is needed: install python3 (and python3-venv) and try again"
    say "setup: creating .venv with $("$pybin" --version 2>&1)"
    "$pybin" -m venv "$VENV" || die "could not create .venv (on Debian/Ubuntu: sudo apt-get install python3-venv)"
  fi
  say "setup: installing pinned dependencies into .venv (requirements-dev.txt)"
  "$PY" -m pip install --disable-pip-version-check -q -r "${ROOT}/requirements-dev.txt" \
    || die "pip install failed; see the lines above (network or a missing compiler?)"
  printf '%s\n' "$want" > "${VENV}/.requirements.sha"
}

# Prints the browser path; installs Debian's chromium when root with apt-get and none is found.
bootstrap_browser() {
  local path
  if path=$("$PY" -m core.browser_discovery 2>/dev/null); then
    printf '%s\n' "$path"; return 0
  fi
  if [ -n "${BROWSER_PATH:-}" ]; then
    "$PY" -m core.browser_discovery >/dev/null || true
    die "BROWSER_PATH=${BROWSER_PATH} is not an executable browser"
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "setup: no browser found; installing Debian's chromium with apt-get" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >&2 \
      || die "apt-get install chromium failed; install Chrome or Chromium and set BROWSER_PATH"
    if path=$("$PY" -m core.browser_discovery 2>/dev/null); then
      printf '%s\n' "$path"; return 0
    fi
  fi
  "$PY" -m core.browser_discovery >/dev/null || true
  return 1
}

bootstrap() {
  local want
  bootstrap_venv
  # BROWSER_PATH as the config reads it (.env, then the environment): a bad one is a config error
  # (one line naming it, exit 2), never silently replaced by a discovered browser.
  want=$("$PY" -m core.config --raw BROWSER_PATH 2>/dev/null || true)
  if [ -n "$want" ]; then
    if [ ! -f "$want" ] || [ ! -x "$want" ]; then
      "$PY" -m core.config >/dev/null  # prints the config error and exits 2 (set -e)
      printf 'config error: BROWSER_PATH is not an executable file\n' >&2
      exit 2
    fi
    BROWSER_PATH=$want
    export BROWSER_PATH
    return 0
  fi
  BROWSER_PATH=$(bootstrap_browser) || die "no browser: install Chrome or Chromium, or set BROWSER_PATH"
  export BROWSER_PATH
}
