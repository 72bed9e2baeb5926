#!/usr/bin/env bash
# On a lent GPU machine (no network): the benchmark through its worker (bench/gpu_benchmark.py, three quick
# runs), a matrix-size probe of sustained BF16 throughput, and `sparecycles bench` through a real agent.
# Python packages the machine lacks travel as wheels in .whl (see docs/benchmark.md); results go to $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
if [[ -d .whl ]]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "wheel install failed"; exit 1; }
fi
bash tests/infra/dev-overlay.sh
export PYTHONPATH=$PWD/.dev:$PWD:/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,pcie.link.gen.max,pcie.link.width.max --format=csv

echo "== three quick runs of the worker"
python3 bench/gpu_benchmark.py --runs 3 --json "$OUT/gpu_benchmark.json" | tee "$OUT/gpu_benchmark.txt"

echo "== sustained BF16 throughput by matrix size (3 s each, after 1 s of warm-up)"
timeout 120 python3 - <<'PY' | tee "$OUT/matmul_sizes.txt"
import time, torch
for n in (4096, 8192, 12288, 16384):
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16); b = torch.randn_like(a); c = torch.empty_like(a)
    for phase, seconds in (("warm", 1.0), ("timed", 3.0)):
        torch.cuda.synchronize(); start = time.perf_counter(); count = 0
        while time.perf_counter() - start < seconds:
            for _ in range(4): torch.matmul(a, b, out=c)
            count += 4
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
    print(f"bf16 {n}^3: {2 * n**3 * count / elapsed / 1e12:.0f} TFLOP/s sustained over {elapsed:.1f} s")
    del a, b, c; torch.cuda.empty_cache()
PY

echo "== sparecycles bench through a running agent"
HOME_DIR=/tmp/sc-home; rm -rf "$HOME_DIR"; mkdir -p "$HOME_DIR/config"
printf '[marketplace]\nidentity_key_file = "%s/identity.key"\n[benchmark]\nautomatic = false\n' "$HOME_DIR" \
  > "$HOME_DIR/config/config.toml"
export SPARECYCLES_HOME=$HOME_DIR
python3 -m sparecycles agent --foreground > "$OUT/agent.log" 2>&1 &
agent=$!
for _ in $(seq 1 120); do python3 -m sparecycles status --json > /dev/null 2>&1 && break; sleep 0.5; done
started=$(date +%s%N)
python3 -m sparecycles bench --gpu 0 --json > "$OUT/agent_bench.json" 2> "$OUT/agent_bench.err"
echo "sparecycles bench: exit code $?, $(( ($(date +%s%N) - started) / 1000000 )) ms"; cat "$OUT/agent_bench.err"
python3 -m sparecycles bench --gpu 7 > /dev/null 2> "$OUT/no_such_gpu.err"; echo "bench --gpu 7: exit $?"
python3 -m sparecycles status --json > "$OUT/status.json"
kill -TERM $agent; wait $agent
tail -n 20 "$OUT/agent.log"
