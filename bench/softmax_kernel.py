"""The row kernels (jaxsoft/kernel.cc) beside jaxsoft's jnp path and jax.nn: softmax and
log_softmax, float32, over the last axis.

Run: python bench/softmax_kernel.py   (the kernels need g++ and an AVX-512 CPU)

Prints, per function and shape, the median time of interleaved jitted calls (fresh output
each call, as in `python -m jaxsoft bench`) and the worst error in float32 ulp against long
double (m + log1p(s), as tests/test_kernel.py).
"""

import contextlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxsoft

SHAPES = [(8192, 4096), (1024, 32768), (65536, 10), (4096, 1000), (512, 1024), (65536, 128)]
FUNCTIONS = {"softmax": (jaxsoft.softmax, jax.nn.softmax),
             "log_softmax": (jaxsoft.log_softmax, jax.nn.log_softmax)}


def reference(name, x):
    xl = x.astype(np.longdouble)
    m = xl.max(-1, keepdims=True)
    s = (np.sum(xl == m, -1, keepdims=True) - 1) + np.where(xl < m, np.exp(xl - m), 0).sum(
        -1, keepdims=True)
    out = (xl - m) - np.log1p(s)
    return (np.exp(out) if name == "softmax" else out).astype(np.float64)


def ulps(got, true):
    spacing = np.spacing(np.abs(true).astype(np.float32)).astype(np.float64)
    return float(np.max(np.abs(np.asarray(got, np.float64) - true) / spacing))


def main() -> None:
    print(f"kernels: {jaxsoft.kernel.status()}")
    for name, (ours, peer) in FUNCTIONS.items():
        fns = {"kernel": jax.jit(ours), "jnp path": jax.jit(lambda x, f=ours: f(x)),
               "jax.nn": jax.jit(peer)}
        cols = ["shape", *(f"{k} ms" for k in fns), "kernel / jax.nn", *(f"ulp {k}" for k in fns)]
        print(f"\n{name}\n\n| " + " | ".join(cols) + " |\n" + "|---" * len(cols) + "|")
        for shape in SHAPES:
            x = jnp.asarray(3 * np.random.default_rng(0).standard_normal(shape), jnp.float32)
            true = reference(name, np.asarray(x))
            err = {}
            for k, f in fns.items():  # the first call traces: the jnp path's with the kernel off
                with jaxsoft.kernel.disabled() if k == "jnp path" else contextlib.nullcontext():
                    err[k] = ulps(f(x), true)
            times = {k: [] for k in fns}
            for _ in range(21):
                for k, f in fns.items():
                    t0 = time.perf_counter()
                    f(x).block_until_ready()
                    times[k].append(time.perf_counter() - t0)
            ms = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
            print(f"| {shape[0]}×{shape[1]} | " + " | ".join(f"{v:.2f}" for v in ms.values())
                  + f" | {ms['kernel'] / ms['jax.nn']:.2f} | "
                  + " | ".join(f"{v:.2f}" for v in err.values()) + " |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
