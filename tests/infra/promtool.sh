#!/usr/bin/env bash
# Print the path of promtool (Prometheus' checker), taken from Debian's prometheus package without
# installing it: installing would add a Prometheus server and its service to the machine, and the suite
# needs only `promtool check metrics`. Kept in .test-runtime/promtool/ between runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
if command -v promtool >/dev/null; then
  command -v promtool
  exit 0
fi
folder=$PWD/.test-runtime/promtool
if [[ ! -x $folder/usr/bin/promtool ]]; then
  rm -rf "$folder" && mkdir -p "$folder"
  (cd "$folder" && apt-get download -q prometheus >/dev/null 2>&1) || {
    echo "apt-get download prometheus failed: run apt-get update, or install promtool" >&2
    exit 1
  }
  dpkg-deb -x "$folder"/prometheus_*.deb "$folder"
  rm -f "$folder"/prometheus_*.deb
fi
echo "$folder/usr/bin/promtool"
