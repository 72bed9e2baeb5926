#!/usr/bin/env bash
# Build .dev/sparecycles: a tree of symlinks that maps app/ -> sparecycles, agent/ ->
# sparecycles.agent and ui/ -> sparecycles.ui, so the working tree can be tested without
# reinstalling:  bash tests/infra/dev-overlay.sh && PYTHONPATH=.dev .venv/bin/python -m pytest tests/...
# (make test itself always tests the installed package.)
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf .dev && mkdir -p .dev/sparecycles
for entry in app/*; do
  name=$(basename "$entry")
  [[ $name == __pycache__ ]] && continue
  ln -s "$PWD/$entry" ".dev/sparecycles/$name"
done
ln -s "$PWD/agent" .dev/sparecycles/agent
ln -s "$PWD/ui" .dev/sparecycles/ui
