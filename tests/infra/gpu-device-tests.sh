#!/usr/bin/env bash
# On a machine with an NVIDIA GPU but none of this project's packages (the lent device machine: its python3
# has PyTorch, pytest and nvidia-ml-py; the rest travels as wheels, tests/infra/device-python.sh): the tests
# marked `gpu` against the real driver, then what `sparecycles doctor` and `status --json` say there.
# Writes pytest.txt, doctor.txt and status.json to $OUT. Changes no GPU setting: the test that writes the
# power limit back (as root it would apply it) is left out.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-tests}
mkdir -p "$OUT"
source tests/infra/device-python.sh
python=$(command -v python3)
# The tests run `sparecycles` from beside the interpreter, as from an installed package.
printf '#!/bin/sh\nexec %s -m sparecycles "$@"\n' "$python" > "$(dirname "$python")/sparecycles"
chmod +x "$(dirname "$python")/sparecycles"
nvidia-smi --query-gpu=name,driver_version,power.limit,temperature.gpu,utilization.gpu --format=csv
timeout 300 python3 -m pytest -p no:cacheprovider -o addopts="-ra --strict-markers" -v tests/test_gpu_real.py \
  --deselect tests/test_gpu_real.py::test_restoring_the_power_limit_answers_without_raising 2>&1 | tee "$OUT/pytest.txt"
export SPARECYCLES_HOME=/tmp/sc-doctor
mkdir -p "$SPARECYCLES_HOME"
timeout 60 python3 -m sparecycles doctor > "$OUT/doctor.txt" 2>&1; echo "doctor: exit $?"
python3 -m sparecycles agent --foreground > /dev/null 2>&1 &
agent=$!
for _ in $(seq 1 120); do python3 -m sparecycles status --json > "$OUT/status.json" 2>/dev/null && break; sleep 0.5; done
sleep 3
python3 -m sparecycles status --json > "$OUT/status.json"; echo "status: exit $?"
python3 -m sparecycles status | head -20
kill -TERM $agent; wait $agent
cat "$OUT/doctor.txt"
