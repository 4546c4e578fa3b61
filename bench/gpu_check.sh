# The GPU checks in one call of a lent machine (~8 min of a call's 10; nothing else needs a GPU):
# GPU tests, then the CE rows first (the 16-bit Pallas CE kernels of session 16 were never timed),
# then the full suite. Call: run(command="bash .gpu/run11.sh", timeout_s=600), then give_back.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD XLA_PYTHON_CLIENT_PREALLOCATE=false
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import jax, jaxlib, optax; print(jax.__version__, jaxlib.__version__, optax.__version__, jax.devices())"
timeout 150 python3 -m pytest -q -n 14 -p no:cacheprovider -rfE --tb=short tests/test_gpu.py tests/test_kernel.py tests/test_cross_entropy.py tests/test_softmax.py > $OUT/tests.log 2>&1; echo "tests rc=$?"
grep -E "FAILED|ERROR|passed|failed" $OUT/tests.log | cut -c1-220 | head -20
timeout 90 python3 -m jaxsoft bench --only CE --json $OUT/gpu-h200-ce.json > $OUT/ce.md 2> $OUT/ce.err; echo "CE bench rc=$?"
python3 -m jaxsoft bench --summary $OUT/gpu-h200-ce.json | grep -E "CE|Rows"
timeout 230 python3 -m jaxsoft bench --json $OUT/gpu-h200-default.json > $OUT/bench.md 2> $OUT/bench.err; echo "bench rc=$?"
python3 -m jaxsoft bench --summary $OUT/gpu-h200-default.json | tail -45
