#!/usr/bin/env bash
# `make bundle`: build the one-folder PyInstaller bundle in dist/sparecycles/ (the executable is
# dist/sparecycles/sparecycles). It is built in its own virtual environment holding only SpareCycles,
# its run-time dependencies and PyInstaller, so no development tool (pytest, the plaintext keyring
# the tests use) can end up inside. Dependencies are reinstalled only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${PYTHON:-python3}
venv=${BUNDLE_VENV:-.venv-bundle}
work=.bundle-work

if [[ ! -x $venv/bin/python ]]; then
  "$python" -m venv "$venv" 2>/dev/null || {
    echo "python3 -m venv failed: installing Debian's python3-venv" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    "$python" -m venv "$venv"
  }
fi
# PyInstaller links the bundle against the interpreter's shared libpython: on Debian's own Python that
# is the package libpythonX.Y, which python3 alone does not pull in.
if command -v dpkg >/dev/null && [[ $(readlink -f "$(command -v "$python")") == /usr/bin/* ]]; then
  libpython=libpython$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  if ! dpkg -s "$libpython" >/dev/null 2>&1; then
    echo "Installing Debian's $libpython (PyInstaller needs the shared libpython)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$libpython" >/dev/null
  fi
fi

pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
export PIP_NO_WARN_SCRIPT_LOCATION=1
rm -rf build ./*.egg-info
stamp=$venv/.deps-stamp
wanted=$(sha256sum pyproject.toml setup.py installer/pyinstaller/build.sh | sha256sum | cut -c1-16)
if [[ ! -f $stamp || $(cat "$stamp") != "$wanted" ]]; then
  echo "Installing SpareCycles and PyInstaller into $venv"
  "${pip[@]}" install --upgrade pip setuptools wheel
  "${pip[@]}" install . "pyinstaller>=6.10,<7"
  echo "$wanted" >"$stamp"
else
  "${pip[@]}" install --no-deps --force-reinstall --no-build-isolation .
fi
rm -rf build ./*.egg-info

echo "Building the bundle (PyInstaller, about 2 minutes)"
started=$(date +%s)
"$venv/bin/python" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath dist --workpath "$work" installer/pyinstaller/sparecycles.spec
rm -rf "$work"
dist/sparecycles/sparecycles --version
echo "dist/sparecycles: $(du -sh dist/sparecycles | cut -f1), built in $(($(date +%s) - started)) s"
