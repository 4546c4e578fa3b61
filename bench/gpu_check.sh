#!/usr/bin/env bash
# The GPU checks in one call of a lent GPU machine (~9 min; CI never needs a GPU): the GPU
# tests, then the cross-entropy rows (the 16-bit Pallas CE kernels of session 16 are not yet
# timed on a GPU), then the full suite; results and logs under $OUT. JAX's CUDA build must be
# installed there. Run from anywhere: OUT=/some/dir bash bench/gpu_check.sh
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:?set OUT to a folder for the results}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import jax, jaxlib, optax; print(jax.__version__, jaxlib.__version__, optax.__version__, jax.devices())"
timeout 150 python3 -m pytest -q -n 14 -p no:cacheprovider -rfE --tb=short tests/test_gpu.py tests/test_kernel.py tests/test_cross_entropy.py tests/test_softmax.py > $OUT/tests.log 2>&1; echo "tests rc=$?"
grep -E "FAILED|ERROR|passed|failed" $OUT/tests.log | cut -c1-220 | head -20
timeout 90 python3 -m jaxsoft bench --only CE --json $OUT/gpu-h200-ce.json > $OUT/ce.md 2> $OUT/ce.err; echo "CE bench rc=$?"
python3 -m jaxsoft bench --summary $OUT/gpu-h200-ce.json | grep -E "CE|Rows"
timeout 280 python3 -m jaxsoft bench --json $OUT/gpu-h200-default.json > $OUT/bench.md 2> $OUT/bench.err; echo "bench rc=$?"
python3 -m jaxsoft bench --summary $OUT/gpu-h200-default.json | tail -45
