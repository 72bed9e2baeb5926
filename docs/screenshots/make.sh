#!/usr/bin/env bash
# The README's screenshots: the real GUI against a real agent (simulated GPU, a job running in Docker, known
# leases in its ledger), in light and dark, on a fresh Xvfb display. Needs what `make test` installs (the
# virtual environment, Docker, Debian's docker-registry, busybox-static, Xvfb). Writes docs/screenshots/*.png.
#   bash docs/screenshots/make.sh [VENV]
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=${1:-.venv}
runtime=$(mktemp -d)
exec 3>"$runtime/display"
Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp >"$runtime/xvfb.log" 2>&1 &
xvfb=$!
trap 'kill $xvfb 2>/dev/null || true; rm -rf "$runtime"' EXIT
for _ in $(seq 1 100); do [[ -s $runtime/display ]] && break; sleep 0.1; done
export SPARECYCLES_TEST_DISPLAY=":$(head -1 "$runtime/display")"
"$venv/bin/python" -m pytest -q -p no:cacheprovider tests/ui/screenshots.py
ls -l docs/screenshots/*.png
