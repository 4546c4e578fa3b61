"""Jitted benchmarks of jaxsoft next to the peers a user would pick instead, in ONE process.

Each workload is timed for jaxsoft and its peers (jax.nn / optax under `jax.jit`, NumPy, and
PyTorch CPU when it is installed) on the same inputs: the median of several repetitions after
a warm-up (compile excluded, `block_until_ready`). The machine's own limits are measured in
the same run (copy bandwidth into a preallocated buffer, read-only bandwidth, float32 matmul
GFLOP/s), and each row reports its effective GB/s and the fraction of the copy bandwidth.

Run: `python -m jaxsoft bench [--quick] [--json FILE] [--reps N]` (or `python bench/run.py`).
"""

from __future__ import annotations

import dataclasses
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxsoft

FULL_SHAPES = [(8192, 4096), (1024, 32768), (65536, 10)]
QUICK_SHAPES = [(512, 1024), (64, 8192), (4096, 10)]


@dataclasses.dataclass
class Row:
    workload: str
    shape: tuple
    dtype: str
    impl: str
    median_ms: float
    gbps: float | None = None
    fraction_of_limit: float | None = None
    ratio_ours_over_impl: float | None = None


def median_ms(fn, *args, reps=5) -> float:
    """Median wall time of `fn(*args)` in ms after one warm-up call (which compiles)."""
    _block(fn(*args))
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        _block(fn(*args))
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def _block(out):
    for leaf in jax.tree.leaves(out):
        if hasattr(leaf, "block_until_ready"):
            leaf.block_until_ready()


# --------------------------------------------------------------------------- machine limits


def limits(quick: bool, reps: int) -> tuple[dict[str, float], list[Row]]:
    """Copy and read bandwidth (GB/s, NumPy on a buffer far larger than cache), matmul GFLOP/s,
    as a summary dict and as rows with impl "limit"."""
    n = (16 if quick else 64) * 2**20 // 4  # floats: 16 or 64 MiB
    src = np.random.default_rng(0).random(n, dtype=np.float32)
    dst = np.empty_like(src)
    copy_ms = median_ms(lambda: np.copyto(dst, src), reps=reps)
    read_ms = median_ms(lambda: np.add.reduce(src), reps=reps)
    m = 512 if quick else 2048
    a = jax.random.normal(jax.random.key(0), (m, m))
    matmul_ms = median_ms(jax.jit(jnp.dot), a, a, reps=reps)
    summary = {"copy_gbps": 2 * src.nbytes / copy_ms / 1e6,
               "read_gbps": src.nbytes / read_ms / 1e6,
               "matmul_gflops": 2 * m**3 / matmul_ms / 1e6}
    rows = [Row("copy bandwidth", (n,), "float32", "limit", copy_ms, summary["copy_gbps"], 1.0),
            Row("read bandwidth", (n,), "float32", "limit", read_ms, summary["read_gbps"]),
            Row("matmul", (m, m), "float32", "limit", matmul_ms)]
    return summary, rows


# -------------------------------------------------------------------------------- workloads


def _np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _np_log_softmax(x):
    s = x - x.max(-1, keepdims=True)
    return s - np.log(np.exp(s).sum(-1, keepdims=True))


def _vg(loss):
    return jax.jit(jax.value_and_grad(lambda z, y: jnp.mean(loss(z, y))))


def _torch():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(max(1, torch.get_num_threads()))
    return torch


def workloads(shape, torch=None):
    """name -> (bytes moved at minimum, {impl: (fn, args)}) for one logits shape."""
    rows, classes = shape
    keys = jax.random.split(jax.random.key(0), 3)
    z = 3 * jax.random.normal(keys[0], shape)
    labels = jax.random.randint(keys[1], (rows,), 0, classes)
    onehot = jax.nn.one_hot(labels, classes)
    z_np = np.asarray(z)
    nbytes = z.size * 4
    out = {
        "softmax": (2 * nbytes, {
            "jaxsoft": (jax.jit(jaxsoft.softmax), (z,)),
            "jax.nn": (jax.jit(jax.nn.softmax), (z,)),
            "numpy": (_np_softmax, (z_np,))}),
        "log_softmax": (2 * nbytes, {
            "jaxsoft": (jax.jit(jaxsoft.log_softmax), (z,)),
            "jax.nn": (jax.jit(jax.nn.log_softmax), (z,)),
            "numpy": (_np_log_softmax, (z_np,))}),
        "softmax value_and_grad": (2 * nbytes, {
            "jaxsoft": (jax.jit(jax.value_and_grad(lambda z: jnp.sum(jaxsoft.softmax(z) * z))),
                        (z,)),
            "jax.nn": (jax.jit(jax.value_and_grad(lambda z: jnp.sum(jax.nn.softmax(z) * z))),
                       (z,))}),
        "CE integer labels value_and_grad": (2 * nbytes, {
            "jaxsoft": (_vg(jaxsoft.softmax_cross_entropy_with_integer_labels), (z, labels)),
            "optax": (_vg(optax.losses.softmax_cross_entropy_with_integer_labels),
                      (z, labels))}),
        "CE one-hot value_and_grad": (3 * nbytes, {
            "jaxsoft": (_vg(jaxsoft.softmax_cross_entropy), (z, onehot)),
            "optax": (_vg(optax.losses.softmax_cross_entropy), (z, onehot))}),
    }
    if torch is not None:
        zt = torch.from_numpy(z_np)
        yt = torch.from_numpy(np.asarray(labels)).long()

        def torch_ce(zt, yt):
            zt = zt.detach().requires_grad_(True)
            loss = torch.nn.functional.cross_entropy(zt, yt)
            loss.backward()
            return loss.item(), zt.grad

        out["softmax"][1]["torch"] = (lambda t: torch.softmax(t, -1), (zt,))
        out["log_softmax"][1]["torch"] = (lambda t: torch.log_softmax(t, -1), (zt,))
        out["CE integer labels value_and_grad"][1]["torch"] = (torch_ce, (zt, yt))
    return out


def bce_workload(shape):
    z = 3 * jax.random.normal(jax.random.key(1), shape)
    y = jax.random.bernoulli(jax.random.key(2), 0.5, shape).astype(jnp.float32)
    return 3 * z.size * 4, {
        "jaxsoft": (_vg(jaxsoft.sigmoid_binary_cross_entropy), (z, y)),
        "optax": (_vg(optax.losses.sigmoid_binary_cross_entropy), (z, y))}


def mlp_epoch_ms(x, y, models, shuffle, hidden=30, batch=10, reps=2) -> float:
    """Median ms of one training epoch of `models` 784-hidden-10 sigmoid MLPs (compile excluded)."""
    from jaxsoft import mlp, train

    params = jax.vmap(lambda key: mlp.init(key, (x.shape[1], hidden, 10), "large"))(
        jax.random.split(jax.random.key(0), models))
    opt = train._optimizer("sgd")(learning_rate=0.0)
    state = jax.vmap(lambda p: train._with_lr(opt.init(p), jnp.float32(0.5)))(params)

    def grad_fn(p, xb, yb, decay, n):
        return mlp.backprop(p, xb, yb, "sigmoid", "categorical", weight_decay=decay, n_train=n)

    run = train._epoch_program(grad_fn, opt, batch, x.shape[0], shuffle)
    keys = jax.random.split(jax.random.key(1), models)
    return median_ms(run, params, state, keys, jnp.zeros(models), x, y, reps=reps)


def mlp_rows(quick: bool, reps: int) -> list[Row]:
    """One training epoch of 784-30-10 (batch 10) on synthetic MNIST-shaped data, K models."""
    n = 2000 if quick else 60000
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.random((n, 784), dtype=np.float32))
    y = jnp.asarray(rng.integers(0, 10, n).astype(np.int32))
    return [Row(f"MLP epoch, {k} model(s), {shuffle} order", (n, 784), "float32", "jaxsoft",
                mlp_epoch_ms(x, y, k, shuffle, reps=max(1, reps // 2)))
            for k in ((1, 8) if quick else (1, 8, 32)) for shuffle in ("per_model", "shared")]


# ------------------------------------------------------------------------------------ runner


def run(quick=False, reps=5, include_mlp=True) -> tuple[dict, list[Row]]:
    lim, rows = limits(quick, reps)
    torch = _torch()
    shapes = QUICK_SHAPES if quick else FULL_SHAPES
    cases = [(name, shape, spec) for shape in shapes
             for name, spec in workloads(shape, torch).items()]
    cases.append(("sigmoid BCE value_and_grad", (4096, 128) if quick else (65536, 128),
                  bce_workload((4096, 128) if quick else (65536, 128))))
    for name, shape, (nbytes, impls) in cases:
        times = {impl: median_ms(fn, *args, reps=reps) for impl, (fn, args) in impls.items()}
        for impl, ms in times.items():
            gbps = nbytes / (ms / 1e3) / 1e9
            rows.append(Row(name, tuple(shape), "float32", impl, ms, gbps,
                            gbps / lim["copy_gbps"], times["jaxsoft"] / ms))
    if include_mlp:
        rows += mlp_rows(quick, reps)
    return lim, rows


def format_markdown(lim: dict, rows: list[Row]) -> str:
    lines = [f"Machine limits (same run): copy {lim['copy_gbps']:.1f} GB/s, read "
             f"{lim['read_gbps']:.1f} GB/s, float32 matmul {lim['matmul_gflops']:.0f} GFLOP/s; "
             f"{jax.devices()[0].platform}, jax {jax.__version__}, optax {optax.__version__}", "",
             "| workload | shape | impl | median ms | jaxsoft / impl | GB/s | of copy limit |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = "" if r.ratio_ours_over_impl is None else f"{r.ratio_ours_over_impl:.2f}"
        gbps = "" if r.gbps is None else f"{r.gbps:.1f}"
        frac = "" if r.fraction_of_limit is None else f"{100 * r.fraction_of_limit:.0f} %"
        lines.append(f"| {r.workload} | {'×'.join(map(str, r.shape))} | {r.impl} | "
                     f"{r.median_ms:.2f} | {ratio} | {gbps} | {frac} |")
    return "\n".join(lines)


def main(quick=False, json_path=None, reps=5) -> int:
    lim, rows = run(quick, reps)
    print(format_markdown(lim, rows))
    if json_path:
        with open(json_path, "w") as f:
            json.dump([dataclasses.asdict(r) for r in rows], f, indent=1)
    return 0
