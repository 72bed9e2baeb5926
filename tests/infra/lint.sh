#!/usr/bin/env bash
# Static checks: ruff, mypy (strict) and the import-linter layering contracts. mypy and
# lint-imports run against the non-editably installed package, which resolves `sparecycles`.
set -euo pipefail
venv=${1:-.venv}
cd "$(dirname "$0")/../.."
echo "== ruff"
"$venv/bin/ruff" check app agent ui tests bench installer setup.py
"$venv/bin/ruff" format --check app agent ui tests bench installer setup.py
echo "== mypy --strict -p sparecycles"
"$venv/bin/mypy" -p sparecycles
echo "== import-linter"
"$venv/bin/lint-imports"
