r"""The row kernels on a GPU: each row formula that `jaxsoft.kernel` serves (softmax,
log_softmax, the exact row statistics, the cross-entropies' forwards and gradients), traced
over a block of rows inside one Pallas (Triton) kernel, so that a call reads its arrays once
and writes its results once.

Why: XLA fuses the exact jnp formulas (`jaxsoft.softmax.Stats`: the rounding error of x − m
recovered by Fast2Sum, the maxima counted apart) into 3–5 kernels that pass over the logits
4–5 times, where jax.nn's plain softmax is one kernel that reads x once and writes once
(bench/NOTES.md: exact log_softmax 1.9× jax.nn at 8192×4096 on an H200 before this).

How: a program loads BR whole rows, BC = the power of two ≥ C entries each, into registers
(the entries past C read as −inf in x and 0 elsewhere, the rows past the last as empty rows),
runs the caller's jnp formula on that block (the one the jnp path runs, in its GPU form,
`softmax.on_gpu`, less what only steers XLA's CPU fusion: `in_body`), and stores the rows
and entries that exist. The arithmetic is the jnp path's; only the passes over memory change.

Used by `jaxsoft.kernel` when JAX's default backend is a GPU, for rows of 1 to MAX_WIDTH
entries (wider rows would not fit a program's registers: the jnp path serves them), unless
JAXSOFT_GPU_KERNEL=0 (`enabled`). The gradients of the cross-entropies, computed entry by entry
from the row statistics, run in column blocks (`call`'s `elementwise`); the soft-label CE's
forward, whose program holds two rows (x and y), only for rows of at most PAIR_WIDTH entries.
Measured on an H200 (bench/NOTES.md): float32 softmax at 8192×4096 0.077 ms against the
jnp path's 0.148 (XLA's passes over the exact formulas); integer-label CE value_and_grad
0.90× optax at 8192×4096 (the jnp path 1.05×), one-hot 0.88× (1.10×); a one-hot CE forward
over rows of 32768 in one program spilled registers (3.5× optax), hence PAIR_WIDTH.
Checked also on the CPU, by Pallas' interpreter
(`kernel.gpu_interpreted`, the "gpu kernel" layout of the tests) and by lowering them to
Triton for CUDA (tests/test_gpu.py).
Pallas' Triton backend is deprecated in JAX ≥ 0.11 in favour of Mosaic GPU; its warning is
silenced here, and `available()` is false where it is gone (the jnp path then serves).

Example (runs anywhere: `interpret=True` evaluates the kernel with jnp on the CPU):
  >>> import jax, jax.numpy as jnp
  >>> from jaxsoft import gpu
  >>> x = jnp.array([[0.0, 1.0, 2.0]])
  >>> body = lambda x: jnp.exp(x - jnp.max(x, axis=-1, keepdims=True))
  >>> gpu.call(body, (x,), (jax.typeof(x),), interpret=True)
  [Array([[0.13533528, 0.36787945, 1.        ]], dtype=float32)]
"""

from __future__ import annotations

import functools
import math
import os
import warnings

import jax
import jax.numpy as jnp

from jaxsoft import kernel

MAX_WIDTH = 32768
BLOCK = 2048  # a program holds at least this many entries (BR rows of narrow rows)
COLUMNS = 2048  # entries of a row an `elementwise` kernel's program takes
PAIR_WIDTH = 4096  # the widest rows of a kernel whose program holds two full rows (measured)

warnings.filterwarnings("ignore", message="The Pallas Triton backend is deprecated",
                        category=DeprecationWarning)


_tracing = [False]  # `in_body`


def in_body() -> bool:
    """Whether a kernel's body is being traced: the jnp formulas then leave out what only
    steers XLA's fusion on the CPU and has no Triton lowering (`softmax.row_sum`'s start
    value, `softmax._row_result`, the soft-label CE's barrier)."""
    return _tracing[0]


def enabled() -> bool:
    """Whether `jaxsoft.kernel` traces these kernels on a GPU now: JAXSOFT_GPU_KERNEL (read at
    trace time) is not "0", and Pallas' Triton backend is `available`."""
    return os.environ.get("JAXSOFT_GPU_KERNEL", "1") != "0" and available()


@functools.cache
def available() -> bool:
    """Whether Pallas' Triton backend can be imported (it is deprecated in JAX ≥ 0.11)."""
    try:
        from jax.experimental import pallas  # noqa: F401
        from jax.experimental.pallas import triton  # noqa: F401
    except ImportError:
        return False
    return True


def _pow2(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


def plan(rows: int, width: int, columns: int | None = None) -> tuple[int, int, int]:
    """(BR, BC, warps): BR rows of BC = the power of two ≥ `width` entries a program (at most
    `columns`, a power of two, for a kernel that cuts rows into column blocks), BR a power of
    two with BR·BC ≥ BLOCK (no more than the rows there are), and 4 warps a program up to
    2048 entries, 8 up to 4096, 16 above."""
    bc = min(_pow2(width), columns or _pow2(width))
    br = min(max(BLOCK // bc, 1), _pow2(rows))
    size = br * bc
    return br, bc, 4 if size <= 2048 else 8 if size <= 4096 else 16


def call(body, arrays, outs, interpret=False, elementwise=False):
    """`body` run as one kernel over the rows of `arrays`; returns the list of results.

    Args:
      body: the jnp formula, from the blocks of `arrays` ([BR, BC] for x and the full-size
        arrays, [BR, 1] for one value a row, [BR] for labels) to a result or a tuple of
        results of the first two shapes, reducing with keepdims over the last axis.
      arrays: x [..., C] first; then arrays of x's shape, of shape [..., 1] (one value a
        row) or x.shape[:-1] (one integer label a row).
      outs: the results' types (`jax.typeof`-like, with shape and dtype), each of x's shape
        or [..., 1].
      interpret: evaluate the kernel with jnp (on any backend; the tests' CPU check).
      elementwise: `body` computes each entry from its row's values alone (a gradient given
        the row statistics; labels compared with an iota over the block's last axis): a
        program then takes BR rows of COLUMNS entries, not whole rows (no registers spilled
        on wide rows, more programs), the labels shifted by the block's first column.

    Batching (`jax.vmap`): the batch axis becomes more rows (as the CPU kernels'
    `vmap_method="broadcast_all"`).
    """
    x = arrays[0]
    kinds = tuple(o.shape == x.shape for o in outs)  # True: full-size, False: one a row
    dtypes = tuple(o.dtype for o in outs)

    @jax.custom_batching.custom_vmap
    def run(*arrays):
        lead = arrays[0].shape[:-1]
        results = _pallas(body, arrays, kinds, dtypes, interpret, elementwise)
        return [r.reshape(*lead, r.shape[-1]) for r in results]

    @run.def_vmap
    def _batched(axis_size, in_batched, *arrays):
        arrays = [a if b else jnp.broadcast_to(a, (axis_size, *a.shape))
                  for a, b in zip(arrays, in_batched, strict=True)]
        return run(*arrays), [True] * len(outs)

    return run(*arrays)


def _pallas(body, arrays, kinds, dtypes, interpret, elementwise=False):
    from jax.experimental import pallas as pl
    from jax.experimental.pallas import triton as plgpu

    x = arrays[0]
    width, rows = x.shape[-1], math.prod(x.shape[:-1])
    flat = [a.reshape(rows, -1) for a in arrays]  # labels [...] → [R, 1]
    br, bc, warps = plan(rows, width, COLUMNS if elementwise else None)

    def kernel_fn(*refs):
        ins, outs = refs[:len(flat)], refs[len(flat):]
        start = pl.program_id(0) * br
        first = pl.program_id(1) * bc  # the block's first column (0 but for `elementwise`)
        live = (start + jnp.arange(br, dtype=jnp.int32) < rows)[:, None]
        entries = live & (first + jnp.arange(bc, dtype=jnp.int32) < width)[None, :]

        def where(full):  # (the block's index span, its mask); start · 0: int32 also under x64
            span = (pl.ds(start, br), pl.ds(first if full else start * 0, bc if full else 1))
            return span, entries if full else live

        blocks = []
        for k, (ref, array) in enumerate(zip(ins, arrays, strict=True)):
            span, mask = where(ref.shape[1] == width)
            block = plgpu.load(ref.at[span], mask=mask, other=-jnp.inf if k == 0 else 0)
            if array.ndim < x.ndim:  # labels: [BR], as column indices within the block
                block = block[:, 0] - first.astype(block.dtype)
            blocks.append(block)
        with kernel.disabled(), kernel.raised(_tracing):
            results = body(*blocks)
        results = results if isinstance(results, tuple) else (results,)
        for ref, result, full in zip(outs, results, kinds, strict=True):
            span, mask = where(full)
            plgpu.store(ref.at[span], result.astype(ref.dtype), mask=mask)

    shapes = tuple(jax.ShapeDtypeStruct((rows, width if full else 1), dtype)
                   for full, dtype in zip(kinds, dtypes, strict=True))
    grid = (pl.cdiv(rows, br), pl.cdiv(width, bc))
    params = plgpu.CompilerParams(num_warps=warps, num_stages=1)
    return pl.pallas_call(kernel_fn, out_shape=shapes, grid=grid, compiler_params=params,
                          interpret=interpret, name="jaxsoft_rows")(*flat)
