"""The benchmark suite as a script: `python bench/run.py [--quick] [--json FILE] [--reps N]
[--only NAME ...] [--malloc-reuse | --compare-malloc]`, or `python bench/run.py --summary
RUN.json [RUN.json ...]` (jaxsoft against its peer from saved runs; measures nothing).

Same code as `python -m jaxsoft bench` (jaxsoft/benchmarks.py, jaxsoft/bench_process.py):
jaxsoft next to jax.nn, optax, NumPy and (when installed) PyTorch CPU, with the machine's
limits measured in the same run.
"""

import sys

from jaxsoft.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
