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
exec .venv/bin/python -m pytest "$@"
