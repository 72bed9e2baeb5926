#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment and install SpareCycles into it,
# non-editably, with the dev extra. Dependencies are reinstalled only when pyproject.toml changed.
set -euo pipefail
python=${1:-python3}
venv=${2:-.venv}
cd "$(dirname "$0")/../.."

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "SpareCycles needs Python 3.11 or newer; $python is $("$python" --version 2>&1)." >&2
  exit 1
fi
if [[ ! -x $venv/bin/python ]]; then
  if ! "$python" -m venv "$venv" 2>/dev/null; then
    echo "python3 -m venv failed: installing Debian's python3-venv" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    "$python" -m venv "$venv"
  fi
fi
# A stale build/ folder would put deleted modules back into the wheel.
rm -rf build ./*.egg-info
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
export PIP_NO_WARN_SCRIPT_LOCATION=1
stamp=$venv/.deps-stamp
wanted=$(sha256sum pyproject.toml setup.py | sha256sum | cut -c1-16)
if [[ ! -f $stamp || $(cat "$stamp") != "$wanted" ]]; then
  echo "Installing SpareCycles and its dependencies into $venv (a few minutes the first time)"
  "${pip[@]}" install --upgrade pip setuptools wheel
  "${pip[@]}" install ".[dev]"
  echo "$wanted" >"$stamp"
else
  "${pip[@]}" install --no-deps --force-reinstall --no-build-isolation .
fi
rm -rf build ./*.egg-info
