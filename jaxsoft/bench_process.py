"""Benchmarks that need a process of their own (part of `python -m jaxsoft bench`).

* Peak memory: `linear_ce_rows` runs each implementation of the linear + cross-entropy
  workload in a child process, which reports its median time and its peak resident memory
  above what it held once its inputs were made and (jax) its program compiled: VmHWM − VmRSS
  from /proc/self/status, the peak being restarted (/proc/self/clear_refs) after the setup so
  that the setup's own peak does not count. Linux only; elsewhere peak_mb is None. On a GPU,
  the device's: peak_bytes_in_use − bytes_in_use of JAX's allocator (the inputs are made on
  the host and copied, so the setup's peak is the inputs), torch's max_memory_allocated −
  memory_allocated after reset_peak_memory_stats.
* glibc reads its malloc settings at process start, so the malloc-reuse run is a child
  `python -m jaxsoft bench` with `benchmarks.MALLOC_REUSE` added to its environment.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import optax

import jaxsoft
from jaxsoft import benchmarks as bm

LINEAR_CE = "linear CE value_and_grad"
LINEAR_CE_SHAPES = ((4096, 1024, 65536), (256, 64, 4096))  # (N, d, V): full run, --quick


def _child_env(extra=None) -> dict:
    """This process's environment plus `extra`, importing the same jaxsoft as this process."""
    root = str(Path(jaxsoft.__file__).resolve().parents[1])
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **(extra or {})}


# ------------------------------------------------------------------------ glibc malloc reuse


def _bench_command(quick, reps, only, json_path=None) -> list[str]:
    return [sys.executable, "-m", "jaxsoft", "bench", "--reps", str(reps),
            *(["--quick"] if quick else []), *(["--only", *only] if only else []),
            *(["--json", json_path] if json_path else [])]


def rerun_with_malloc_reuse(quick, json_path, reps, only) -> int:
    """`--malloc-reuse`: the same benchmark in a child process started with MALLOC_REUSE."""
    return subprocess.call(_bench_command(quick, reps, only, json_path),
                           env=_child_env(bm.MALLOC_REUSE))


def rows_with_malloc_reuse(quick, reps, only) -> list[bm.Row]:
    """The rows of the same benchmark run in a child process started with MALLOC_REUSE."""
    print("\nThe same workloads in a child process started with "
          + " ".join(f"{k}={v}" for k, v in bm.MALLOC_REUSE.items()) + " ...", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rows.json")
        subprocess.run(_bench_command(quick, reps, only, path), env=_child_env(bm.MALLOC_REUSE),
                       check=True, stdout=subprocess.DEVNULL)
        with open(path) as f:
            return [bm.Row(**{**r, "shape": tuple(r["shape"])}) for r in json.load(f)]


def format_comparison(default_rows, reuse_rows) -> str:
    """Each workload's default and malloc-reuse medians side by side."""
    reuse = {_key(r): r for r in reuse_rows}
    lines = ["### glibc malloc reuse vs default", "",
             "| workload | shape | dtype | impl | default ms | malloc reuse ms | default / reuse |",
             "|---|---|---|---|---|---|---|"]
    for r in default_rows:
        s = reuse.get(_key(r))
        if s is not None:
            impl = r.impl if r.note is None else f"{r.impl} ({r.note})"
            lines.append(f"| {r.workload} | {'×'.join(map(str, r.shape))} | {r.dtype} | "
                         f"{impl} | {r.median_ms:.3g} | {s.median_ms:.3g} | "
                         f"{r.median_ms / s.median_ms:.2f} |")
    return "\n".join(lines)


def _key(row):
    return row.workload, row.shape, row.dtype, row.impl, row.note


# ------------------------------------------------------------------ linear + cross-entropy


def linear_ce_rows(quick, reps, lim, only=None) -> list[bm.Row]:
    """value_and_grad w.r.t. (x, w) of the mean cross-entropy of the logits x @ w ([N, d] @
    [d, V]) with integer labels: `jaxsoft.linear_cross_entropy` (once it exists), optax on the
    materialized logits (naive), and torch (`F.linear_cross_entropy`, chunked, where it exists;
    else naive). Each in its own child process: time, peak memory and (jax) XLA's planned
    temporaries. GFLOP/s counts the three N·d·V matmuls (logits, ∂x, ∂w). At the full size
    (N=4096, d=1024, V=65536) a CPU call takes seconds, so its median is of at most 3
    repetitions."""
    if not bm._selected(LINEAR_CE, only):
        return []
    shape = LINEAR_CE_SHAPES[quick]
    impls = (["jaxsoft"] * hasattr(jaxsoft, "linear_cross_entropy") + ["optax"]
             + ["torch"] * (bm._torch() is not None))
    results = {impl: _run_child(impl, shape, reps if quick else min(reps, 3)) for impl in impls}
    ours = results["jaxsoft"]["median_ms"] if "jaxsoft" in results else None
    n, d, v = shape
    return [bm.make_row(LINEAR_CE, shape, "float32", impl, r["median_ms"], lim, ours_ms=ours,
                        flops=6 * n * d * v, peak_mb=r["peak_mb"], planned_mb=r["planned_mb"],
                        note=r["note"])
            for impl, r in results.items()]


def _run_child(impl, shape, reps) -> dict:
    code = (f"from jaxsoft import bench_process; "
            f"bench_process.linear_ce_child({impl!r}, {tuple(shape)!r}, {reps})")
    out = subprocess.run([sys.executable, "-c", code], env=_child_env(), capture_output=True,
                         text=True)
    if out.returncode:
        raise RuntimeError(f"bench: the linear CE child for {impl} failed:\n{out.stderr}")
    return json.loads(out.stdout.splitlines()[-1])


def linear_ce_child(impl, shape, reps):
    """In a child process: print one JSON line with median_ms, peak_mb, planned_mb and note."""
    fn, args, note = _linear_ce(impl, *shape)
    planned = None if impl == "torch" else fn.memory_analysis().temp_size_in_bytes / 2**20
    if bm.on_gpu():
        base, peak_of = _device_peak_mb(impl)
        ms = bm.median_ms(fn, *args, reps=reps)
        peak = peak_of()
    else:
        _release_free_memory()
        base = _status_mb("VmRSS")
        _restart_peak()
        ms = bm.median_ms(fn, *args, reps=reps)
        peak = _status_mb("VmHWM")
    print(json.dumps({"median_ms": ms, "peak_mb": None if base is None else peak - base,
                      "planned_mb": planned, "note": note}))


def _linear_ce(impl, n, d, v):
    """(function, inputs, note) of one implementation, compiled where it compiles."""
    if impl == "torch":  # inputs made by torch itself: no freed jax temporaries in the RSS
        torch = bm._torch()
        f = torch.nn.functional
        torch.manual_seed(0)
        args = tuple(a.to(bm.torch_device()) for a in (  # weight [V, d], as F.linear
            torch.randn(n, d), torch.randn(v, d) / math.sqrt(d), torch.randint(0, v, (n,))))
        if hasattr(f, "linear_cross_entropy") and hasattr(torch.nn, "LinearCrossEntropyOptions"):
            options = torch.nn.LinearCrossEntropyOptions()
            note = "F.linear_cross_entropy, chunked"

            def loss(x, w, y):
                return f.linear_cross_entropy(x, w, y, options=options)
        else:
            note = "naive: F.linear, then F.cross_entropy"

            def loss(x, w, y):
                return f.cross_entropy(f.linear(x, w), y)
        return bm.torch_value_and_grad(loss, wrt=2), args, note

    kx, kw, ky = jax.random.split(jax.random.key(0), 3)
    with jax.default_device(jax.devices("cpu")[0]):  # on a GPU: no setup peak on the device
        args = (jax.random.normal(kx, (n, d)), jax.random.normal(kw, (d, v)) / math.sqrt(d),
                jax.random.randint(ky, (n,), 0, v))
    args = jax.device_put(args, jax.devices()[0])
    if impl == "jaxsoft":
        note = None

        def loss(x, w, y):
            return jaxsoft.linear_cross_entropy(x, w, y, reduction="mean")
    else:
        note = "naive: x @ w, then CE"

        def loss(x, w, y):
            return optax.losses.softmax_cross_entropy_with_integer_labels(x @ w, y).mean()
    fn = jax.jit(jax.value_and_grad(loss, argnums=(0, 1))).lower(*args).compile()
    return fn, args, note


def _device_peak_mb(impl):
    """(device memory in use now in MiB, a function returning the peak since then)."""
    if impl == "torch":
        cuda = bm._torch().cuda
        cuda.synchronize()
        cuda.reset_peak_memory_stats()
        return cuda.memory_allocated() / 2**20, lambda: cuda.max_memory_allocated() / 2**20
    device = jax.devices()[0]
    return (device.memory_stats()["bytes_in_use"] / 2**20,
            lambda: device.memory_stats()["peak_bytes_in_use"] / 2**20)


def _status_mb(field):
    """`field` of /proc/self/status (VmRSS: resident now; VmHWM: peak) in MiB; None off Linux."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) / 1024 for line in f if line.startswith(field + ":"))
    except (OSError, StopIteration):
        return None


def _release_free_memory():
    """Hand memory that is freed but still resident back to the OS (glibc `malloc_trim`), so
    that the timed calls cannot reuse the setup's pages unseen: without it two runs of the same
    child measured 906 and 138 MiB. The setup's arrays are freed asynchronously, so it first
    collects and waits: trimmed at once, the base RSS was 514 or 1282 MiB in three runs of
    the same child (peaks above it 463, 0, 0), after a 1 s wait 514 MiB each time (peaks
    456–473). Does nothing where glibc is not there."""
    gc.collect()
    time.sleep(1)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _restart_peak():
    """Restart VmHWM from the current RSS (Linux ≥ 4.0); where refused, the setup's peak counts."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")
