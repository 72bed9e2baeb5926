#!/usr/bin/env bash
# Print the path of the anvil binary that tests/infra/node-deps.sh installed (the package for this
# platform, e.g. @foundry-rs/anvil-linux-amd64), or fail saying how to install it.
set -euo pipefail
cd "$(dirname "$0")/../.."
for candidate in "$PWD"/tests/infra/node/node_modules/@foundry-rs/anvil-*/bin/anvil; do
  if [[ -x $candidate ]]; then
    echo "$candidate"
    exit 0
  fi
done
echo "no anvil binary in tests/infra/node/node_modules: run bash tests/infra/node-deps.sh" >&2
exit 1
