#!/usr/bin/env bash
# The npm packages the suite uses, each folder installed exactly from its committed package-lock.json:
# anvil (a local EVM node, a prebuilt binary inside the package) in tests/infra/node, and solc-js in
# agent/chain/contracts (`make contracts`, and the test that rebuilds the committed contracts).
#   bash tests/infra/node-deps.sh [FOLDER...]    (default: both)
# `npm ci` runs only when a lock file changed since the last install, so later runs need no network.
# Install scripts are not run: anvil's binary comes in the platform's optional package, never from a
# download at install time.
set -euo pipefail
cd "$(dirname "$0")/../.."
folders=("$@")
((${#folders[@]})) || folders=(tests/infra/node agent/chain/contracts)
for folder in "${folders[@]}"; do
  stamp=$folder/node_modules/.sparecycles-lock-sha256
  wanted=$(sha256sum "$folder/package-lock.json" | cut -d' ' -f1)
  if [[ ! -f $stamp || $(cat "$stamp") != "$wanted" ]]; then
    echo "Installing the npm packages of $folder (npm ci)"
    (cd "$folder" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    echo "$wanted" >"$stamp"
  fi
  if [[ $folder == tests/infra/node ]]; then
    if ! bash tests/infra/anvil-path.sh >/dev/null 2>&1; then
      # npm skips an optional package whose `engines` the running Node does not meet: anvil's platform
      # packages ask for Node >= 20, Debian 12 has 18. The binary needs no Node at all, so install this
      # platform's package by name (same pinned version; npm checks the registry's integrity hash).
      case $(uname -m) in
        x86_64) platform=linux-amd64 ;;
        aarch64 | arm64) platform=linux-arm64 ;;
        *) echo "no prebuilt anvil for $(uname -m)" >&2; exit 1 ;;
      esac
      version=$(node -p "require('./$folder/package.json').devDependencies['@foundry-rs/anvil']")
      echo "Installing @foundry-rs/anvil-$platform@$version (npm skipped it: Node $(node --version))"
      (cd "$folder" && npm install --no-save --ignore-scripts --no-audit --no-fund --loglevel=error \
        "@foundry-rs/anvil-$platform@$version")
    fi
    anvil=$(bash tests/infra/anvil-path.sh)
    "$anvil" --version >/dev/null || { echo "$anvil does not run on this machine" >&2; exit 1; }
  fi
done
