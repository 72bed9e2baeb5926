#!/usr/bin/env bash
# On a lent GPU machine (no network), one call: the benchmark worker three times in quick mode and once in
# full mode (bench/gpu_benchmark.py), the clock and power probe that explains the matrix figures
# (bench/gpu_clock_probe.py), `sparecycles bench` through a real agent, and the CuPy adapter once.
# Python packages the machine lacks travel as wheels in .whl (docs/benchmark.md); results go to $OUT
# (at most 8 files come back from the device tool, so everything printed goes to one log).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
source tests/infra/device-python.sh
step() { echo; echo "== $* ($(date -u +%T))"; }
nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm,pcie.link.gen.max,pcie.link.width.max \
  --format=csv
echo "docker: $(command -v docker || echo absent); nvidia-container-cli: $(command -v nvidia-container-cli || echo absent)"
python3 -c "import torch, cupy; print('torch', torch.__version__, 'cupy', cupy.__version__)"

step "three quick runs of the worker"
timeout 150 python3 bench/gpu_benchmark.py --runs 3 --json "$OUT/quick.json"

step "clock and power probe"
timeout 90 python3 bench/gpu_clock_probe.py --json "$OUT/clock_probe.json"

step "sparecycles bench through a running agent"
HOME_DIR=/tmp/sc-home; rm -rf "$HOME_DIR"; mkdir -p "$HOME_DIR/config"
printf '[marketplace]\nidentity_key_file = "%s/identity.key"\n[benchmark]\nautomatic = false\n' "$HOME_DIR" \
  > "$HOME_DIR/config/config.toml"
export SPARECYCLES_HOME=$HOME_DIR
python3 -m sparecycles agent --foreground > "$OUT/agent.log" 2>&1 &
agent=$!
for _ in $(seq 1 120); do python3 -m sparecycles status --json > /dev/null 2>&1 && break; sleep 0.5; done
started=$(date +%s%N)
timeout 120 python3 -m sparecycles bench --gpu 0 --json > "$OUT/agent_bench.json"
echo "sparecycles bench: exit code $?, $(( ($(date +%s%N) - started) / 1000000 )) ms"
python3 -m sparecycles bench --gpu 7 > /dev/null; echo "bench --gpu 7: exit $?"
python3 -m sparecycles status --json > "$OUT/status.json"
kill -TERM $agent; wait $agent
tail -n 5 "$OUT/agent.log"

step "one full run of the worker"
timeout 150 python3 bench/gpu_benchmark.py --runs 1 --full --json "$OUT/full.json"

step "the CuPy adapter, quick mode"
timeout 90 python3 - <<'PY'
from sparecycles.agent.benchmark.cupy_backend import CupyBackend
from sparecycles.agent.benchmark.measure import QUICK
from sparecycles.agent.benchmark.worker import benchmark, open_telemetry, summary

backend = CupyBackend.open(0)
telemetry = open_telemetry(backend.device_uuid, 0)
print(summary(benchmark(backend, QUICK, cuda_index=0, telemetry=telemetry, should_stop=lambda: False)))
PY
step "done"
