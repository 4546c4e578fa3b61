"""The row kernels beside jaxsoft's jnp path and the peer (jax.nn / optax), interleaved in one
process: softmax, log_softmax and the cross-entropies over the last axis, float32 (and
bfloat16 for the softmaxes), forward and value_and_grad.

Run: python bench/softmax_kernel.py [--quick]
  CPU: the compiled kernels (jaxsoft/kernel.cc; need g++ and an AVX-512 CPU).
  GPU: the Pallas kernels (jaxsoft/gpu.py; JAXSOFT_GPU_KERNEL=0 turns them off).

Prints, per workload and shape, the median time of each (the kernel traced as configured, the
jnp path traced inside `kernel.disabled()`, the peer; a fresh jit of its own function each, so
no trace is shared), how many kernel calls the compiled function holds, and for the float32
forwards the worst error in float32 ulp against long double (m + log1p(s), as
tests/test_kernel.py). On a CPU each timed call waits for its result (fresh output each call,
as in `python -m jaxsoft bench`); on a GPU a timing is 30 calls in a row, then one wait.
"""

import contextlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxsoft

SHAPES = [(8192, 4096), (1024, 32768), (65536, 10), (2048, 16384), (4096, 1000)]
QUICK_SHAPES = [(512, 1024), (4096, 10)]


def _one_hot(x, labels):
    return jax.nn.one_hot(labels, x.shape[-1], dtype=x.dtype)


def _workloads():
    """name: (a maker of jaxsoft's function (a new object each call), the peer's); both of
    (x, labels)."""
    vg = jax.value_and_grad
    int_ce = jaxsoft.softmax_cross_entropy_with_integer_labels
    return {
        "softmax": (lambda: lambda x, lab: jaxsoft.softmax(x), lambda x, lab: jax.nn.softmax(x)),
        "log_softmax": (lambda: lambda x, lab: jaxsoft.log_softmax(x),
                        lambda x, lab: jax.nn.log_softmax(x)),
        "softmax vg": (lambda: vg(lambda x, lab: jaxsoft.softmax(x).sum()),
                       vg(lambda x, lab: jax.nn.softmax(x).sum())),
        "log_softmax vg": (lambda: vg(lambda x, lab: jaxsoft.log_softmax(x).sum()),
                           vg(lambda x, lab: jax.nn.log_softmax(x).sum())),
        "int CE": (lambda: lambda x, lab: int_ce(x, lab, reduction="mean"),
                   lambda x, lab: optax.softmax_cross_entropy_with_integer_labels(x, lab).mean()),
        "int CE grad": (lambda: jax.grad(lambda x, lab: int_ce(x, lab, reduction="mean")),
                        jax.grad(lambda x, lab: optax.softmax_cross_entropy_with_integer_labels(
                            x, lab).mean())),
        "int CE vg": (lambda: vg(lambda x, lab: int_ce(x, lab, reduction="mean")),
                      vg(lambda x, lab: optax.softmax_cross_entropy_with_integer_labels(
                          x, lab).mean())),
        "one-hot CE vg": (lambda: vg(lambda x, lab: jaxsoft.softmax_cross_entropy(
                              x, _one_hot(x, lab), reduction="mean")),
                          vg(lambda x, lab: optax.softmax_cross_entropy(
                              x, _one_hot(x, lab)).mean())),
    }


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


def compiled(fn, off, *args):
    """(jitted fn traced with the kernels as configured, or off; its count of kernel calls)."""
    with jaxsoft.kernel.disabled() if off else contextlib.nullcontext():
        f = jax.jit(fn)
        text = f.lower(*args).compile().as_text()
        jax.block_until_ready(f(*args))
    return f, text.count("__gpu$xla.gpu.triton") + text.count("custom_call_target=\"jaxsoft_")


def median_ms(f, args, on_gpu):
    calls = 30 if on_gpu else 1
    times = []
    for _ in range(5 if on_gpu else 21):
        t0 = time.perf_counter()
        for _ in range(calls):
            out = f(*args)
        jax.block_until_ready(out)
        times.append((time.perf_counter() - t0) / calls)
    return 1e3 * float(np.median(times))


def main(quick: bool = False) -> None:
    on_gpu = jax.default_backend() != "cpu"
    print(f"{jax.devices()[0].device_kind}; row kernels: {jaxsoft.kernel.status()}\n")
    cols = ["workload", "shape", "dtype", "kernel ms (calls)", "jnp path ms", "peer ms",
            "kernel / jnp", "kernel / peer", "jnp / peer", "ulp kernel", "ulp jnp"]
    print("| " + " | ".join(cols) + " |\n" + "|---" * len(cols) + "|")
    for shape in QUICK_SHAPES if quick else SHAPES:
        for dtype in (jnp.float32, jnp.bfloat16):
            x = jnp.asarray(3 * np.random.default_rng(0).standard_normal(shape), dtype)
            labels = jax.random.randint(jax.random.key(2), shape[:-1], 0, shape[-1])
            for name, (make, peer) in _workloads().items():
                if dtype == jnp.bfloat16 and name not in ("softmax", "log_softmax",
                                                          "softmax vg", "log_softmax vg"):
                    continue
                (kern, calls), (jnp_path, _), (peer_f, _) = (
                    compiled(make(), False, x, labels), compiled(make(), True, x, labels),
                    compiled(peer, False, x, labels))
                err = ["", ""]
                if dtype == jnp.float32 and name in ("softmax", "log_softmax"):
                    true = reference(name, np.asarray(x))
                    err = [f"{ulps(f(x, labels), true):.2f}" for f in (kern, jnp_path)]
                # twice each, interleaved; the faster of the two medians of ours
                t = [median_ms(f, (x, labels), on_gpu)
                     for f in (kern, jnp_path, peer_f, kern, jnp_path)]
                k, j, p = min(t[0], t[3]), min(t[1], t[4]), t[2]
                print(f"| {name} | {shape[0]}×{shape[1]} | {jnp.dtype(dtype).name} | "
                      f"{k:.4f} ({calls}) | {j:.4f} | {p:.4f} | {k / j:.2f} | {k / p:.2f} | "
                      f"{j / p:.2f} | {err[0]} | {err[1]} |")
                sys.stdout.flush()


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
