# Sourced (from the repository's root) by the scripts that run on a lent GPU machine, whose python3 has
# PyTorch, CuPy, pytest and nvidia-ml-py but none of this project's other packages: those travel as wheels in
# .whl (docs/benchmark.md) and are installed into /tmp/site; the working tree is importable as `sparecycles`.
if [[ -d .whl ]]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "wheel install failed"; exit 1; }
fi
bash tests/infra/dev-overlay.sh
export PYTHONPATH=$PWD/.dev:$PWD:/tmp/site PYTHONUNBUFFERED=1
