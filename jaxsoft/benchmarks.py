"""Benchmarks of jaxsoft next to the peers a user would pick instead, measured in one run.

Each workload is timed for jaxsoft and its peers (jax.nn / optax under `jax.jit`, NumPy, and
PyTorch CPU when installed: the `bench` extra, or `pip install torch==2.13.0 --index-url
https://download.pytorch.org/whl/cpu`) on the same inputs: the median of several repetitions
after a warm-up (compile excluded, `block_until_ready`), and for the softmax and loss rows the
fastest of them, those rows sampled in rounds and their median the fastest round's (`ROUNDS`).
The machine's limits are measured in the same run (copy bandwidth into a preallocated buffer,
read-only bandwidth, float32 matmul GFLOP/s); each row reports its effective GB/s (the bytes it
must move at least) or GFLOP/s and the fraction of the copy or matmul limit.

On a GPU (JAX's default backend not the CPU) the same workloads run on the device: the limits
are the device's (a donated in-place pass over 1 GiB for copy, a sum for read, the default-
precision float32 matmul), torch runs on CUDA (synchronized before each clock read), NumPy
is left out (it would time the host), and the linear CE's peak memory is the device's
(`memory_stats`, torch's `max_memory_allocated`) instead of the process's RSS.

Two measurements need a process of their own (`bench_process.py`): the peak memory of the
linear + cross-entropy workload (one child per implementation), and glibc's malloc settings,
which glibc reads at process start (`--malloc-reuse`, `--compare-malloc`).

Run: `python -m jaxsoft bench [--quick] [--json FILE] [--reps N] [--only NAME ...]
[--malloc-reuse | --compare-malloc]` (or `python bench/run.py ...`); `python -m jaxsoft bench
--summary RUN.json [RUN.json ...]` prints jaxsoft against its peer from saved runs.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import os
import sys
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxsoft
from jaxsoft import kernel
from jaxsoft.softmax import on_gpu  # JAX's default backend is not the CPU

# (full run, --quick); index with `quick`. 4096×1000 (an ImageNet-sized batch) is beside the
# issue's three shapes: its 16 MB arrays stay below glibc's adaptive mmap threshold (≤ 32 MiB)
# once it has risen, so their memory is mostly reused without page faults and the arithmetic
# shows undiluted (by default a row may still flip between the two; bench/NOTES.md).
SHAPES = {"logits": ([(8192, 4096), (1024, 32768), (65536, 10), (4096, 1000)],
                     [(512, 1024), (64, 8192), (4096, 10)]),
          "multilabel": ([(65536, 128)], [(4096, 128)])}
MLP_EXAMPLES = (60000, 2000)  # synthetic MNIST-shaped training set of the epoch rows
MLP_MODELS = ((1, 8, 32), (1, 8))
MLP_ORDERS = (("per_model", "shared"), ("shared",))  # of K > 1 models (K = 1: per_model)
MLP_BATCHES = (10, 128)

# glibc told to reuse memory: one arena, no mmap/munmap per large block, freed memory kept.
# glibc reads these at process start, so `--malloc-reuse` sets them for a child process.
MALLOC_REUSE = {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_THRESHOLD_": "4294967296",
                "MALLOC_TRIM_THRESHOLD_": "68719476736", "MALLOC_TOP_PAD_": "1073741824"}


def malloc_env() -> str:
    """"malloc_reuse" when this process started with MALLOC_REUSE, else "default"."""
    reuse = all(os.environ.get(k) == v for k, v in MALLOC_REUSE.items())
    return "malloc_reuse" if reuse else "default"


def device_name() -> str:
    """The machine the rows were measured on: "cpu", or the GPU's kind (e.g. "NVIDIA H200")."""
    return jax.devices()[0].device_kind if on_gpu() else "cpu"


@dataclasses.dataclass
class Row:
    workload: str
    shape: tuple
    dtype: str
    impl: str
    median_ms: float
    # the fastest sample (softmax and loss rows): the median of a short sampling can fall in a
    # slow phase of the machine (on a VM, its host faulting in a large output's pages;
    # bench/NOTES.md)
    min_ms: float | None = None
    rounds_ms: list | None = None  # each round's median (softmax and loss rows; `ROUNDS`)
    gbps: float | None = None
    gflops: float | None = None
    fraction_of_limit: float | None = None  # of the copy bandwidth (GB/s) or matmul (GFLOP/s)
    ratio_ours_over_impl: float | None = None
    peak_mb: float | None = None  # peak RSS (on a GPU: device memory) above the inputs
    planned_mb: float | None = None  # XLA's planned temporaries (memory_analysis), where compiled
    note: str | None = None
    env: str = dataclasses.field(default_factory=malloc_env)
    device: str = dataclasses.field(default_factory=device_name)


# Short calls are repeated until they have run this long (at most MAX_REPS times): a median
# of 5 calls of ~1 ms varied by 2× between runs on this shared 2-core machine. Each
# implementation is timed on its own, as a user's loop runs it: timed in turns with NumPy and
# torch, jaxsoft's and jax.nn's calls at 4096×1000 took 2× longer (caches and malloc shared).
# On a GPU, where a call may take less time than its dispatch from Python, one timed sample is
# as many calls queued back to back as fill GPU_SAMPLE_SECONDS (at most 100), then one wait.
MIN_SECONDS, MAX_REPS, GPU_SAMPLE_SECONDS = 0.25, 200, 0.005
# The softmax and loss rows sample each implementation in ROUNDS rounds (full run, --quick),
# the implementations in turns between rounds, and report the fastest round's median (as
# `timeit` takes the best of its repeats: a slower round is the machine's doing, here a slow
# phase of a second or more, this VM's host faulting in a fresh output's huge pages;
# bench/NOTES.md), and every round's median (`rounds_ms`). Within a round each implementation
# runs alone, after a warm-up call of its own.
ROUNDS = (3, 1)


def median_ms(fn, *args, reps=5) -> float:
    """Median wall time of `fn(*args)` in ms (`samples_ms`)."""
    return float(np.median(samples_ms(fn, *args, reps=reps)))


def samples_ms(fn, *args, reps=5) -> list[float]:
    """Wall times of `fn(*args)` in ms after one warm-up call (which compiles): at least
    `reps` samples, more until they have run MIN_SECONDS in all, at most MAX_REPS. A sample is
    one call, or on a GPU a queue of calls (GPU_SAMPLE_SECONDS) divided by their number."""
    _block(fn(*args))
    queued = 1
    if on_gpu():  # one more call, timed, sizes the queue
        start = time.perf_counter()
        _block(fn(*args))
        queued = int(np.clip(GPU_SAMPLE_SECONDS / (time.perf_counter() - start), 1, 100))
    times = []
    while len(times) < MAX_REPS and (len(times) < reps or sum(times) < MIN_SECONDS):
        start = time.perf_counter()
        for _ in range(queued):
            out = fn(*args)
        _block(out)
        times.append(1e3 * (time.perf_counter() - start) / queued)
    return times


def _block(out):
    leaves = jax.tree.leaves(out)
    for leaf in leaves:
        if hasattr(leaf, "block_until_ready"):
            leaf.block_until_ready()
    if any(getattr(leaf, "is_cuda", False) for leaf in leaves):
        _torch().cuda.synchronize()


def make_row(workload, shape, dtype, impl, ms, lim, *, ours_ms=None, nbytes=None, flops=None,
             **extra) -> Row:
    """A row with its effective GB/s (from `nbytes`) or GFLOP/s (from `flops`), the fraction
    of the machine's copy or matmul limit, and the ratio jaxsoft's time / this time."""
    gbps = None if nbytes is None else nbytes / ms / 1e6
    gflops = None if flops is None else flops / ms / 1e6
    fraction = (gbps / lim["copy_gbps"] if gbps is not None else
                None if gflops is None else gflops / lim["matmul_gflops"])
    return Row(workload, tuple(shape), dtype, impl, ms, gbps=gbps, gflops=gflops,
               fraction_of_limit=fraction,
               ratio_ours_over_impl=None if ours_ms is None else ours_ms / ms, **extra)


def _selected(name, only) -> bool:
    """Whether `--only` (substrings of workload names; None = all) selects `name`."""
    return not only or any(part in name for part in only)


# --------------------------------------------------------------------------- machine limits


def limits(quick: bool, reps: int) -> tuple[dict[str, float], list[Row]]:
    """Copy and read bandwidth (GB/s, on a buffer far larger than cache), matmul GFLOP/s, as
    a summary dict and as rows with impl "limit". On the CPU NumPy copies into a preallocated
    buffer and sums; on a GPU a jitted x + 1 runs in place (its input donated) and a sum
    reads."""
    gpu = on_gpu()
    n = (16 if quick else 1024 if gpu else 64) * 2**20 // 4  # floats: 16, 64 MiB or 1 GiB
    nbytes = 4 * n
    if gpu:
        buf = [jnp.ones(n, jnp.float32)]
        step = jax.jit(lambda a: a + 1, donate_argnums=0)

        def copy():
            buf[0] = step(buf[0])
            return buf[0]

        copy_ms = median_ms(copy, reps=reps)
        read_ms = median_ms(jax.jit(jnp.sum), buf[0], reps=reps)
    else:
        src = np.random.default_rng(0).random(n, dtype=np.float32)
        dst = np.empty_like(src)
        copy_ms = median_ms(lambda: np.copyto(dst, src), reps=reps)
        read_ms = median_ms(lambda: np.add.reduce(src), reps=reps)
    m = 512 if quick else 8192 if gpu else 2048
    a = jax.random.normal(jax.random.key(0), (m, m))
    matmul_ms = median_ms(jax.jit(jnp.dot), a, a, reps=reps)
    lim = {"copy_gbps": 2 * nbytes / copy_ms / 1e6, "read_gbps": nbytes / read_ms / 1e6,
           "matmul_gflops": 2 * m**3 / matmul_ms / 1e6}
    return lim, [make_row("copy bandwidth", (n,), "float32", "limit", copy_ms, lim,
                          nbytes=2 * nbytes),
                 make_row("read bandwidth", (n,), "float32", "limit", read_ms, lim,
                          nbytes=nbytes),
                 make_row("matmul", (m, m), "float32", "limit", matmul_ms, lim, flops=2 * m**3)]


# ---------------------------------------------------------------- softmax family and losses


@functools.cache
def _torch():
    """torch with one thread per core this process may use, or None when not installed."""
    try:
        import torch
    except ImportError:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch.set_num_threads(cores or 1)
    return torch


def torch_device() -> str:
    """Where torch runs: "cuda" when JAX runs on a GPU and torch sees one, else "cpu"."""
    return "cuda" if on_gpu() and _torch().cuda.is_available() else "cpu"


def to_torch(a):
    """A torch copy of the jax array `a` on `torch_device()` (bfloat16 via float32; integer
    labels as int64)."""
    torch = _torch()
    if jnp.issubdtype(a.dtype, jnp.integer):
        t = torch.from_numpy(np.array(a, np.int64))
    else:
        t = torch.from_numpy(np.array(a, np.float32)).to(getattr(torch, a.dtype.name))
    return t.to(torch_device())


def torch_value_and_grad(scalar, wrt=1):
    """(value, grads of the first `wrt` arguments) of `scalar(*args)` by torch autograd."""
    def run(*args):
        args = [a.detach().requires_grad_(True) if i < wrt else a for i, a in enumerate(args)]
        value = scalar(*args)
        value.backward()
        return value.detach(), *(a.grad for a in args[:wrt])
    return run


def _torch_f(name):
    """torch.nn.functional.<name>, looked up when called (torch is optional)."""
    return lambda *args: getattr(_torch().nn.functional, name)(*args)


def _np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _np_log_softmax(x):
    s = x - x.max(-1, keepdims=True)
    return s - np.log(np.exp(s).sum(-1, keepdims=True))


def _each(wrap, fns):
    return {impl: wrap(fn) for impl, fn in fns.items()}


def _sum_times_z(f):
    """z ↦ Σ f(z)·z: a scalar whose gradient runs f's backward with a full cotangent."""
    return lambda z: (f(z) * z).sum()


def _mean(f):
    return lambda *args: f(*args).mean()


@dataclasses.dataclass(frozen=True)
class Workload:
    """One row family: `fns[impl]` takes the named `args` in that impl's array type (jax,
    NumPy, torch); for `grad` workloads it returns a scalar and value_and_grad with respect to
    the first argument is timed (NumPy, without autodiff, is left out). `arrays`: how many
    logits-sized arrays a kernel must read or write at least (for GB/s)."""

    name: str
    fns: dict[str, Callable]
    args: tuple[str, ...] = ("z",)
    grad: bool = False
    arrays: int = 2
    shapes: str = "logits"
    dtypes: tuple[str, ...] = ("float32",)

    def compiled(self, impl):
        fn = self.fns[impl]
        if impl == "numpy":
            return None if self.grad else fn
        if impl == "torch":
            return torch_value_and_grad(fn) if self.grad else fn
        return jax.jit(jax.value_and_grad(fn) if self.grad else fn)


SOFTMAX = {"jaxsoft": jaxsoft.softmax, "jax.nn": jax.nn.softmax, "numpy": _np_softmax,
           "torch": lambda t: t.softmax(-1)}
LOG_SOFTMAX = {"jaxsoft": jaxsoft.log_softmax, "jax.nn": jax.nn.log_softmax,
               "numpy": _np_log_softmax, "torch": lambda t: t.log_softmax(-1)}
F32_BF16 = ("float32", "bfloat16")
WORKLOADS = (
    Workload("softmax", SOFTMAX, dtypes=F32_BF16),
    Workload("log_softmax", LOG_SOFTMAX, dtypes=F32_BF16),
    Workload("softmax value_and_grad", _each(_sum_times_z, SOFTMAX), grad=True,
             dtypes=F32_BF16),
    Workload("log_softmax value_and_grad", _each(_sum_times_z, LOG_SOFTMAX), grad=True,
             dtypes=F32_BF16),
    Workload("CE integer labels value_and_grad", _each(_mean, {
        "jaxsoft": jaxsoft.softmax_cross_entropy_with_integer_labels,
        "optax": optax.losses.softmax_cross_entropy_with_integer_labels,
        "torch": _torch_f("cross_entropy")}), ("z", "labels"), grad=True, dtypes=F32_BF16),
    Workload("CE one-hot value_and_grad", _each(_mean, {
        "jaxsoft": jaxsoft.softmax_cross_entropy,
        "optax": optax.losses.softmax_cross_entropy,
        "torch": _torch_f("cross_entropy")}), ("z", "onehot"), grad=True, arrays=3,
        dtypes=F32_BF16),
    Workload("sigmoid BCE value_and_grad", _each(_mean, {
        "jaxsoft": jaxsoft.sigmoid_binary_cross_entropy,
        "optax": optax.losses.sigmoid_binary_cross_entropy,
        "torch": _torch_f("binary_cross_entropy_with_logits")}), ("z", "bits"), grad=True,
        arrays=3, shapes="multilabel"),
)


class Inputs:
    """Seeded inputs of one shape and dtype, each made on first use."""

    def __init__(self, shape, dtype):
        self.shape, self.dtype = shape, jnp.dtype(dtype)

    @functools.cached_property
    def z(self):
        return (3 * jax.random.normal(jax.random.key(0), self.shape)).astype(self.dtype)

    @functools.cached_property
    def labels(self):
        return jax.random.randint(jax.random.key(1), self.shape[:1], 0, self.shape[1])

    @functools.cached_property
    def onehot(self):
        return jax.nn.one_hot(self.labels, self.shape[1], dtype=self.dtype)

    @functools.cached_property
    def bits(self):
        return jax.random.bernoulli(jax.random.key(2), 0.5, self.shape).astype(self.dtype)

    def args(self, names, impl):
        """The named inputs in `impl`'s array type; None where it cannot take them (NumPy has
        no bfloat16, and on a GPU run it would time the host; torch not installed)."""
        arrays = [getattr(self, name) for name in names]
        if impl == "numpy":
            ok = self.dtype == jnp.float32 and not on_gpu()
            return tuple(map(np.asarray, arrays)) if ok else None
        if impl == "torch":
            return tuple(map(to_torch, arrays)) if _torch() else None
        return tuple(arrays)


def array_rows(quick, reps, lim, only=None) -> list[Row]:
    """Every selected workload × shape × dtype, one set of inputs alive at a time."""
    cases = [(w, shape, dtype) for w in WORKLOADS if _selected(w.name, only)
             for shape in SHAPES[w.shapes][quick] for dtype in w.dtypes]
    rows, start = [], time.perf_counter()
    for shape, dtype in dict.fromkeys((shape, dtype) for _, shape, dtype in cases):
        print(f"bench: {'×'.join(map(str, shape))} {dtype} ({time.perf_counter() - start:.0f} s)",
              file=sys.stderr, flush=True)
        inputs = Inputs(shape, dtype)
        for w in (w for w, s, d in cases if (s, d) == (shape, dtype)):
            calls = {impl: (w.compiled(impl), inputs.args(w.args, impl)) for impl in w.fns}
            calls = {impl: c for impl, c in calls.items() if None not in c}
            rounds = {impl: [] for impl in calls}
            for _ in range(ROUNDS[quick]):
                for impl, (fn, args) in calls.items():
                    rounds[impl].append(samples_ms(fn, *args, reps=reps))
            medians = {impl: [float(np.median(t)) for t in r] for impl, r in rounds.items()}
            nbytes = w.arrays * inputs.z.size * inputs.dtype.itemsize
            rows += [make_row(w.name, shape, dtype, impl, min(medians[impl]), lim,
                              ours_ms=min(medians["jaxsoft"]), nbytes=nbytes,
                              min_ms=min(min(t) for t in r), rounds_ms=medians[impl])
                     for impl, r in rounds.items()]
    return rows


# ------------------------------------------------------------------------------------- MLPs


def mlp_epoch_ms(x, y, models, shuffle, hidden=30, batch=10, reps=2) -> float:
    """Median ms of one training epoch of `models` 784-hidden-10 sigmoid MLPs over (x, y)
    (compile excluded): the trainer's own jitted program, SGD with hand-derived backprop.
    With as many examples as `batch` it is one training step (shuffle, one mini-batch)."""
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


def mlp_rows(quick, reps, lim, only=None, hidden=30) -> list[Row]:
    """784-30-10 sigmoid MLPs on synthetic MNIST-shaped data (Nielsen's setting): one training
    step (one jitted call: shuffle, one mini-batch) and one epoch, batch 10 and 128, K models
    trained at once with per-model or shared mini-batch order (named in the row's note).
    GFLOP/s counts the matmuls of forward and backprop."""
    cases = [(what, batch, k, order)
             for what, batch, k in itertools.product(("step", "epoch"), MLP_BATCHES,
                                                     MLP_MODELS[quick])
             for order in (("per_model",) if k == 1 else MLP_ORDERS[quick])
             if _selected(f"MLP training {what}", only)]
    if not cases:
        return []
    n = MLP_EXAMPLES[quick]
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.random((n, 784), dtype=np.float32))
    y = jnp.asarray(rng.integers(0, 10, n).astype(np.int32))
    # per example and model: W¹ forward and its gradient, W² forward, gradient and backprop
    flops = 2 * (2 * 784 * hidden + 3 * hidden * 10)
    rows = []
    for what, batch, k, order in cases:
        m = batch if what == "step" else n
        ms = mlp_epoch_ms(x[:m], y[:m], k, order, hidden, batch,
                          reps if what == "step" else max(1, reps // 2))
        rows.append(make_row(f"MLP training {what}", (m, 784), "float32", "jaxsoft", ms, lim,
                             flops=k * (m - m % batch) * flops,
                             note=f"batch {batch}, {k} model(s), {order} order"))
    return rows


# ------------------------------------------------------------------------------------ runner


def run(quick=False, reps=5, only=None, done=None) -> tuple[dict, list[Row]]:
    """The limits, then every selected row; `done(rows)` is called after each part (the rows
    so far), so that a long run interrupted keeps what it measured."""
    from jaxsoft import bench_process

    lim, rows = limits(quick, reps)
    for part in (array_rows, mlp_rows, bench_process.linear_ce_rows):
        rows += part(quick, reps, lim, only)
        if done:
            done(rows)
    return lim, rows


def _cell(value, fmt):
    return "" if value is None else fmt.format(value)


def format_markdown(lim: dict, rows: list[Row]) -> str:
    """The limits line, then one table per workload (shape, dtype, impl rows)."""
    torch = _torch()
    lines = [f"Machine limits (same run, malloc {malloc_env()}): copy "
             f"{lim['copy_gbps']:.1f} GB/s, read {lim['read_gbps']:.1f} GB/s, float32 matmul "
             f"{lim['matmul_gflops']:.0f} GFLOP/s; {device_name()}, jax "
             f"{jax.__version__}, optax {optax.__version__}"
             + (f", torch {torch.__version__} ({torch_device()}, {torch.get_num_threads()} "
                "threads)" if torch else ", no torch")
             + f"; jaxsoft row kernels: {kernel.status()}"]
    groups: dict[str, list[Row]] = {}
    for r in rows:
        if r.impl != "limit":
            groups.setdefault(r.workload, []).append(r)
    for name, group in groups.items():
        peak = any(r.peak_mb is not None for r in group)
        fastest = any(r.min_ms is not None for r in group)
        lines += ["", f"### {name}", "",
                  "| shape | dtype | impl | median ms |" + (" min ms |" if fastest else "")
                  + " jaxsoft / impl | throughput | of limit |"
                  + (" peak MB | planned MB |" if peak else ""),
                  "|---" * (7 + fastest + 2 * peak) + "|"]
        for r in group:
            rate = (_cell(r.gbps, "{:.1f} GB/s") if r.gbps is not None
                    else _cell(r.gflops, "{:.1f} GFLOP/s"))
            limit = "copy" if r.gbps is not None else "matmul"
            impl = r.impl if r.note is None else f"{r.impl} ({r.note})"
            lines.append(f"| {'×'.join(map(str, r.shape))} | {r.dtype} | {impl} | "
                         f"{r.median_ms:.3g} | "
                         + (f"{_cell(r.min_ms, '{:.3g}')} | " if fastest else "")
                         + f"{_cell(r.ratio_ours_over_impl, '{:.2f}')} | "
                         f"{rate} | {_cell(r.fraction_of_limit, '{:.1%} of ' + limit)} |"
                         + (f" {_cell(r.peak_mb, '{:.0f}')} | {_cell(r.planned_mb, '{:.0f}')} |"
                            if peak else ""))
    return "\n".join(lines)


# The shapes (the targets: ≤ 1.0× the peer at each); 4096×1000 is measured beside them.
TARGET_SHAPES = ((8192, 4096), (1024, 32768), (65536, 10), (65536, 128))
PEERS = ("jax.nn", "optax")  # the implementation jaxsoft replaces, per workload


def format_summary(runs: list[list[dict]]) -> str:
    """jaxsoft against the peer it replaces, from runs saved by `--json` (the first run's
    times and jaxsoft's fraction of the copy or matmul limit, every run's ratio of medians and
    of fastest calls), and per run how many rows at the issue's shapes (`TARGET_SHAPES`) are at
    or below 1.0× by their medians and by their fastest calls (the median where there is none)."""
    def by_case(run):  # the default environment's rows (a --malloc-reuse run has only others)
        envs = {r.get("env", "default") for r in run}
        env = "default" if "default" in envs or not envs else envs.pop()
        cases: dict[tuple, dict[str, dict]] = {}
        for r in run:
            if r["impl"] != "limit" and r.get("env", "default") == env:
                cases.setdefault((r["workload"], tuple(r["shape"]), r["dtype"]), {})[r["impl"]] = r
        return cases

    def ratio(ours, peer, key):
        return None if ours.get(key) is None or peer.get(key) is None else ours[key] / peer[key]

    cases = [by_case(run) for run in runs]
    head = (["workload", "shape", "dtype", "jaxsoft ms", "jaxsoft, of limit", "peer", "peer ms"]
            + [f"jaxsoft / peer, run {i + 1} (fastest calls)" for i in range(len(runs))]
            + ["torch ms"])
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    met, fast, counted = [0] * len(runs), [0] * len(runs), [0] * len(runs)
    for key, impls in cases[0].items():
        peer = next((p for p in PEERS if p in impls), None)
        if "jaxsoft" not in impls or peer is None:
            continue
        cells = []
        for i, run in enumerate(cases):
            pair = run.get(key, {})
            if "jaxsoft" not in pair or peer not in pair:
                cells.append("—")
                continue
            r, fastest = (ratio(pair["jaxsoft"], pair[peer], k) for k in ("median_ms", "min_ms"))
            cells.append(f"{r:.2f}" + ("" if fastest is None else f" ({fastest:.2f})"))
            if key[1] in TARGET_SHAPES:
                counted[i] += 1
                met[i] += r <= 1.0
                fast[i] += (r if fastest is None else fastest) <= 1.0
        ours, torch = impls["jaxsoft"], impls.get("torch", {}).get("median_ms")
        limit = "copy" if ours.get("gbps") is not None else "matmul"
        lines.append(f"| {key[0]} | {'×'.join(map(str, key[1]))} | {key[2]} | "
                     f"{ours['median_ms']:.3g} | "
                     f"{_cell(ours.get('fraction_of_limit'), '{:.0%} ' + limit)} | {peer} | "
                     f"{impls[peer]['median_ms']:.3g} | " + " | ".join(cells)
                     + f" | {_cell(torch, '{:.3g}')} |")
    lines += ["", "Rows at the issue's shapes at or below 1.0×: " + ", ".join(
        f"{m} of {c} (run {i + 1}; {f} by fastest calls)"
        for i, (m, f, c) in enumerate(zip(met, fast, counted, strict=True)))]
    return "\n".join(lines)


def summary(paths: list[str]) -> int:
    runs = []
    for path in paths:
        with open(path) as f:
            runs.append(json.load(f))
    print(format_summary(runs))
    return 0


def main(quick=False, json_path=None, reps=5, only=None, malloc_reuse=False,
         compare_malloc=False) -> int:
    from jaxsoft import bench_process

    if malloc_reuse:
        return bench_process.rerun_with_malloc_reuse(quick, json_path, reps, only)
    if compare_malloc:  # by default the softmax/CE workloads, whose temporaries are large
        only = only or [w.name for w in WORKLOADS]

    def write(rows):
        if json_path:
            with open(json_path, "w") as f:
                json.dump([dataclasses.asdict(r) for r in rows], f, indent=1)

    lim, rows = run(quick, reps, only, done=write)
    print(format_markdown(lim, rows), flush=True)
    if compare_malloc:
        reuse = bench_process.rows_with_malloc_reuse(quick, reps, only)
        print("\n" + bench_process.format_comparison(rows, reuse))
        write(rows + reuse)
    return 0
