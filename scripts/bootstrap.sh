#!/usr/bin/env bash
# Set up Watchfloor on a Debian machine and run it.
#   bash scripts/bootstrap.sh console [watchfloor options]   open the console on the embedded estate
#   bash scripts/bootstrap.sh test [pytest options]          run the import contracts and all tests
# Installs (only where missing) the system libraries Qt needs, a virtualenv in .venv and
# the package with its test extra. Safe to run again: what is there is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-}"
[ $# -gt 0 ] && shift
case "$mode" in
  console|test) ;;
  *) echo "usage: bash scripts/bootstrap.sh console|test [options]" >&2; exit 2 ;;
esac

# Qt's offscreen and xcb platforms; python3-venv for Debian's Python.
apt_packages=(libegl1 libgl1 libfontconfig1 libxkbcommon0 libglib2.0-0 libdbus-1-3
  libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0
  libxcb-xinerama0 libxcb-randr0 libxcb-render-util0 libxcb-image0 libxcb-xkb1)
python="${PYTHON:-python3}"
if [ "$mode" = test ]; then
  # the end-to-end tests start a real Prometheus and Alertmanager on loopback
  apt_packages+=(prometheus prometheus-alertmanager)
  # the credential tests keep secrets in a real Secret Service: gnome-keyring-daemon on
  # a private D-Bus session bus that the tests start and stop
  apt_packages+=(gnome-keyring dbus-daemon)
  # one test opens the real window on a virtual X display and checks Qt stays quiet
  apt_packages+=(xvfb xauth)
  # team mode: the tests start a throwaway PostgreSQL 15 (tests/pg_server.py)
  apt_packages+=(postgresql)
fi
if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  apt_packages+=(python3-venv)
fi
missing=()
if command -v dpkg >/dev/null 2>&1; then
  for pkg in "${apt_packages[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "missing system packages: ${missing[*]} (install them as root with apt-get)" >&2
    exit 1
  fi
  echo "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"

if [ "$mode" = console ]; then
  if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ] && [ -z "${QT_QPA_PLATFORM:-}" ]; then
    echo "no display: run this from a desktop session (or under xvfb-run)" >&2
    exit 1
  fi
  exec .venv/bin/watchfloor "$@"
fi

.venv/bin/lint-imports
status=0
.venv/bin/python -m pytest "$@" || status=$?
# The core (everything but the GUI) once more against PostgreSQL: db_url is then a fresh
# PostgreSQL database per test (a throwaway server, tests/pg_server.py). Left out: the
# tests/test_pg_* files and the team-mode e2e tests (they ran against it above already)
# and, through the plugin, the tests that never open a db_url database (they would only
# repeat the SQLite run).
echo "core tests against PostgreSQL (WATCHFLOOR_TEST_DB=postgresql)"
pg_status=0
WATCHFLOOR_TEST_DB=postgresql .venv/bin/python -m pytest -p tests.pg_server \
  --ignore-glob='tests/test_gui_*.py' --ignore=tests/test_assess_wizard.py \
  --ignore=tests/test_snapshot_cli.py --ignore=tests/test_notify.py \
  --ignore=tests/e2e/test_xvfb_window.py --ignore-glob='tests/test_pg_*.py' \
  --ignore=tests/e2e/test_team_mode.py --ignore=tests/e2e/test_gui_team.py \
  "$@" || pg_status=$?
# 5: the options chose only GUI tests (nothing left to run against PostgreSQL)
if [ "$pg_status" -ne 0 ] && [ "$pg_status" -ne 5 ] && [ "$status" -eq 0 ]; then
  status=$pg_status
fi
exit "$status"
