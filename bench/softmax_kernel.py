"""The softmax row kernel (jaxsoft/kernel.cc) beside jaxsoft's jnp path and jax.nn.

Run: python bench/softmax_kernel.py   (the kernel needs g++ and an AVX-512 CPU)

Prints, per shape, the median time of interleaved jitted calls (fresh output each call, as in
`python -m jaxsoft bench`) and the worst error in float32 ulp against a long-double softmax.
"""

import contextlib
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxsoft

SHAPES = [(8192, 4096), (1024, 32768), (65536, 10), (4096, 1000), (512, 1024), (65536, 128)]


def ulps(got, x):
    xl = x.astype(np.longdouble)
    e = np.exp(xl - xl.max(-1, keepdims=True))
    true = (e / e.sum(-1, keepdims=True)).astype(np.float64)
    spacing = np.spacing(true.astype(np.float32)).astype(np.float64)
    return float(np.max(np.abs(np.asarray(got, np.float64) - true) / spacing))


def main() -> None:
    print(f"kernel: {jaxsoft.kernel.status()}")
    fns = {"kernel": jax.jit(jaxsoft.softmax), "jax.nn": jax.jit(jax.nn.softmax)}
    fns["jnp path"] = jax.jit(lambda x: jaxsoft.softmax(x))
    cols = ["shape", *(f"{k} ms" for k in fns), "kernel / jax.nn", *(f"ulp {k}" for k in fns)]
    print("| " + " | ".join(cols) + " |\n" + "|---" * len(cols) + "|")
    for shape in SHAPES:
        x = jnp.asarray(3 * np.random.default_rng(0).standard_normal(shape), jnp.float32)
        err = {}
        for k, f in fns.items():  # the first call traces: the jnp path's with the kernel off
            with jaxsoft.kernel.disabled() if k == "jnp path" else contextlib.nullcontext():
                err[k] = ulps(f(x), np.asarray(x))
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


if __name__ == "__main__":
    main()
