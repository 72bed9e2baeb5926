#!/usr/bin/env bash
# Install the system packages the suite uses, on Debian 12 as root: the Docker engine, a Secret
# Service keyring in a D-Bus session, an X server with xdotool and a window manager (openbox),
# Qt's libraries, Node.js with npm, busybox-static for offline test images, and the headers that
# python-dbusmock's dbus-python and PyGObject build against, and PostgreSQL for the marketplace's
# tests on it; shellcheck and systemd-analyze for the installer's scripts and units. Only missing
# packages are installed.
set -euo pipefail
packages=(
  python3-venv
  docker.io docker-registry busybox-static
  dbus dbus-x11 gnome-keyring
  xvfb xdotool x11-utils openbox wmctrl
  build-essential pkg-config libdbus-1-dev libglib2.0-dev libgirepository1.0-dev libcairo2-dev gir1.2-glib-2.0
  libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-randr0
  libxcb-render-util0 libxcb-image0 libxcb-xinerama0 libegl1 libgl1 libfontconfig1 libdbus-1-3 libxss1
  procps iproute2 ca-certificates
  shellcheck systemd
  postgresql
)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
# Node.js with npm (for anvil and solc): any installation will do, Debian's or NodeSource's
# (whose nodejs package bundles npm and conflicts with Debian's npm package).
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]} == 0)); then
  exit 0
fi
if ((EUID != 0)); then
  echo "make test needs these Debian packages: ${missing[*]}" >&2
  echo "Install them with: sudo apt-get install -y ${missing[*]}  (or run make test as root)" >&2
  exit 1
fi
echo "Installing system packages: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
