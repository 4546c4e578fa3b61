r"""The compiled row kernels (`kernel.cc`): softmax, log_softmax, the exact row statistics
(m, log1p(s), logsumexp) and the soft-label cross-entropy over the last axis, as XLA FFI custom
calls on x86-64 CPUs.

XLA's fused softmax sums the row's e^{d} in the input's precision and uses its own exp
(≤ ~1 ulp): 5–7 float32 ulp on rows of 1000 entries or more (README, Numerics). A kernel reads
a row once for its max m, computes e^{x − m} with the rounding error of x − m folded into the
exponent's reduced argument, and sums in float64 (long double for float64 inputs), the
maxima counted apart so s = Σ_j e^{x_j − m} − 1 keeps its digits when tiny. The output pass
works on the row, still in cache, in that wider format and rounds once: softmax ≤ 2.5 ulp,
log_softmax ≤ 2 (0.5–1.3 measured in float32), logsumexp ≤ 1 at every shape tested
(tests/test_kernel.py). Rows of ≤ 16 entries go 16 at a time, one per vector lane (16 rows
loaded and transposed in registers), so no reduction crosses lanes; the softmax's outputs are
transposed back, the others written in memory order, each lane's row values fetched by a
permute (a scatter a column cost as much as a pass over memory). Speed: README, Performance.

On a GPU the same calls run the jnp formulas as Pallas (Triton) kernels, one per call
(`jaxsoft.gpu`; JAXSOFT_GPU_KERNEL=0 turns them off); `gpu_interpreted` runs those on any
backend.

Used for float32/float64 over the last axis without `where`, when the jit targets the CPU
(`jax.lax.platform_dependent`: other backends lower the jnp formula): by `jaxsoft.softmax`,
`log_softmax`, `logsumexp` and the forwards of the integer-label and the soft-label
cross-entropy (whose kernel also forms the loss, Σ_j y_j·(log1p(s) + (m − x_j)) in the wider
format, reading x and y once: ≤ 1 ulp; not over many narrow rows, `softmax.narrow`), and the
gradients of both. bfloat16/float16 rows are read and written in their format (converted in
registers, computed as float32 rows) by softmax, log_softmax and, on the CPU, the
cross-entropies' kernels (float32 row values; soft labels in the logits' format). Everything
else, and every machine where the kernel cannot be built, takes the jnp formulas of
`jaxsoft.softmax` (same conventions; softmax 5–7 ulp on wide rows).

Built at first use with the C++ compiler `$CXX` (default g++; needs AVX-512F and XLA's FFI
headers, which jaxlib ships) into `$JAXSOFT_CACHE_DIR` (default `$XDG_CACHE_HOME/jaxsoft`,
else `~/.cache/jaxsoft`), under a name keyed by the source, the compiler, its flags and the
jaxlib version; the build writes a temporary file and renames it, so concurrent processes
share one cache safely. `JAXSOFT_KERNEL=0` turns the kernels off for the process;
`disabled()` turns them off while functions are traced (a function `jax.jit` has already
traced keeps what it was traced with). `status()` says whether they are in use and, if not,
why.

Sharding: XLA's partitioner cannot see inside a custom call, so under `jax.jit` with a
sharded input it gathers the input onto every device; inside `jax.shard_map` each device runs
the kernel on its own rows (jaxsoft.sharding does so). For a sharded `jit`, use `shard_map`
or `disabled()`.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import logging
import os
import pathlib
import platform
import shutil
import subprocess
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

from jaxsoft import _checks

SOURCE = pathlib.Path(__file__).with_name("kernel.cc")
FLAGS = ("-O3", "-std=c++17", "-shared", "-fPIC", "-mavx512f", "-mavx512bw", "-mavx512vl", "-w")
SYMBOLS = {"softmax": "Softmax", "log_softmax": "LogSoftmax", "stats": "Stats",
           "soft_cross_entropy": "SoftCrossEntropy", "int_grad": "IntGrad",
           "soft_grad": "SoftGrad", "log_softmax_grad": "LogSoftmaxGrad"}
OUTPUTS = {"stats": 3, "soft_cross_entropy": 5, "int_grad": 0, "soft_grad": 0,
           "log_softmax_grad": 0}  # row results
# (0: one result of the first array's shape)
SUFFIXES = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64"}
# these also read and write bfloat16/float16 (converted in registers; row values in float32)
HALF = {np.dtype(jax.numpy.bfloat16): "BF16", np.dtype(np.float16): "F16"}
HALF_SYMBOLS = ("softmax", "log_softmax", "stats", "soft_cross_entropy", "int_grad", "soft_grad",
                "log_softmax_grad")
# not float64: for float64 its glibc scalar exp took 2.3× XLA's pass (65536×10, measured)
NO_F64 = ("log_softmax_grad",)
# each entry from its row's values alone: on a GPU in column blocks (`jaxsoft.gpu.call`)
ELEMENTWISE = ("int_grad", "soft_grad")


def dtypes(fn: str) -> dict:
    """The input dtypes kernel `fn` takes, each with its symbol's suffix (what `_load`
    registers and `applies` checks)."""
    full = {np.dtype(np.float32): "F32"} if fn in NO_F64 else SUFFIXES
    return {**full, **(HALF if fn in HALF_SYMBOLS else {})}


_log = logging.getLogger(__name__)
_off = [os.environ.get("JAXSOFT_KERNEL", "1") == "0"]
_interpret = [False]  # `gpu_interpreted`


def cache_dir() -> pathlib.Path:
    """Where built kernels are kept: $JAXSOFT_CACHE_DIR, else $XDG_CACHE_HOME/jaxsoft, else
    ~/.cache/jaxsoft."""
    if "JAXSOFT_CACHE_DIR" in os.environ:
        return pathlib.Path(os.environ["JAXSOFT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "jaxsoft"


def _cpu_has_avx512() -> bool:
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return False
    try:
        text = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line.split() for line in text.splitlines() if line.startswith("flags")), [])
    return {"avx512f", "avx512bw", "avx512vl"} <= set(flags)


def build(directory: pathlib.Path) -> pathlib.Path:
    """The shared library in `directory`, compiled unless a build with the same key is there.
    Raises RuntimeError (no compiler, the compiler failed) or OSError (directory not writable)."""
    cxx = shutil.which(os.environ.get("CXX", "g++"))
    if cxx is None:
        raise RuntimeError(f"no C++ compiler ({os.environ.get('CXX', 'g++')!r} not on PATH)")
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout
    key = hashlib.sha256("\0".join([SOURCE.read_text(), version, *FLAGS,
                                    jax.lib.__version__]).encode()).hexdigest()[:16]
    lib = directory / f"softmax-{key}.so"
    if lib.exists():
        return lib
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=directory)
    os.close(fd)
    try:
        done = subprocess.run([cxx, *FLAGS, f"-I{jax.ffi.include_dir()}", str(SOURCE), "-o", tmp],
                              capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"{cxx} failed: {done.stderr[-1000:]}")
        os.replace(tmp, lib)  # atomic: a concurrent build of the same key writes the same bytes
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return lib


@functools.cache
def _load() -> str:
    """Build (or find) and register the kernel once per process; '' on success, else why not."""
    if not _cpu_has_avx512():
        return "the CPU is not x86-64 Linux with AVX-512 (F, BW, VL)"
    try:
        lib = ctypes.cdll.LoadLibrary(str(build(cache_dir())))
        for fn, symbol in SYMBOLS.items():
            for suffix in dtypes(fn).values():
                jax.ffi.register_ffi_target(f"jaxsoft_{symbol}{suffix}",
                                            jax.ffi.pycapsule(getattr(lib, symbol + suffix)),
                                            platform="cpu")
    except (OSError, RuntimeError, AttributeError) as error:
        _log.info("jaxsoft: row kernels not built, using the jnp path: %s", error)
        return f"build failed: {error}"
    return ""


def status() -> str:
    """'in use', or why the jnp path is taken ('off: ...' or the build's failure)."""
    if _off[0]:
        return "off: JAXSOFT_KERNEL=0 or inside kernel.disabled()"
    if jax.default_backend() != "cpu":
        from jaxsoft import gpu

        if not gpu.available():
            return "off on a GPU: Pallas' Triton backend is not available"
        return "in use (jaxsoft.gpu)" if gpu.enabled() else "off on a GPU: JAXSOFT_GPU_KERNEL=0"
    return _load() or "in use"


def applies(x, axes, where, fn="stats") -> bool:
    """Whether kernel `fn` serves `x` reduced over `axes` now: a dtype it takes (`dtypes`:
    float32/float64; also bfloat16/float16 for softmax, log_softmax, the cross-entropies'
    kernels and the log_softmax gradient, `HALF_SYMBOLS`; not float64 for the latter),
    the last axis, rows of at least one entry (the CPU kernels leave the row statistics of an
    empty row unwritten), no mask, kernels on.
    Where JAX's default backend is the CPU, the compiled kernels (built at the first call);
    on a GPU unless JAXSOFT_GPU_KERNEL=0 (`jaxsoft.gpu.enabled`), or inside `gpu_interpreted`,
    the Pallas kernels of `jaxsoft.gpu` for rows of at most `gpu.MAX_WIDTH` entries and arrays
    of at least one row."""
    if not (where is None and np.dtype(x.dtype) in dtypes(fn) and tuple(axes) == (x.ndim - 1,)
            and x.shape[-1] > 0 and not _off[0]):
        return False
    if on_cpu():
        return enabled()
    from jaxsoft import gpu

    return (x.size > 0 and x.shape[-1] <= gpu.MAX_WIDTH
            and (gpu.enabled() or (_interpret[0] and gpu.available())))


def on_cpu() -> bool:
    """Whether `applies` means the compiled CPU kernels (not the GPU ones, `jaxsoft.gpu`)."""
    return jax.default_backend() == "cpu" and not _interpret[0]


def enabled() -> bool:
    """Whether the kernels are traced now (builds them on the first call)."""
    return not _off[0] and not _load()


@contextlib.contextmanager
def raised(flag):
    """Set the one-element list `flag` to True inside the block, then back to what it was (the
    module's trace-time switches: `disabled`, `gpu_interpreted`, `jaxsoft.gpu.in_body`)."""
    before, flag[0] = flag[0], True
    try:
        yield
    finally:
        flag[0] = before


def disabled():
    """Trace the jnp formulas instead of the kernels inside the block (comparisons, tests).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> x = jnp.array([0.0, 1.0, 2.0])
      >>> with jaxsoft.kernel.disabled():
      ...     y = jaxsoft.softmax(x)
      >>> bool(jnp.allclose(y, jaxsoft.softmax(x), rtol=1e-6))
      True
    """
    return raised(_off)


def gpu_interpreted():
    """Trace the GPU kernels (`jaxsoft.gpu`) on any backend inside the block, evaluated by
    Pallas' interpreter: checks their bodies, blocks and masks on a CPU (slowly).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> x = jnp.array([[0.0, 1.0, 2.0]])
      >>> with jaxsoft.kernel.gpu_interpreted():
      ...     y = jaxsoft.log_softmax(x)
      >>> bool(jnp.allclose(y, jaxsoft.log_softmax(x), rtol=1e-6))
      True
    """
    return raised(_interpret)


def _call(fn, arrays, outs, fallback):
    if not on_cpu():  # `fallback` as a Pallas kernel's body
        from jaxsoft import gpu

        def cuda(*arrays):
            results = gpu.call(fallback, arrays, outs if isinstance(outs, tuple) else (outs,),
                               interpret=_interpret[0], elementwise=fn in ELEMENTWISE)
            return tuple(results) if isinstance(outs, tuple) else results[0]

        if _interpret[0]:
            return cuda(*arrays)
        return jax.lax.platform_dependent(*arrays, cuda=cuda, default=fallback)
    target = f"jaxsoft_{SYMBOLS[fn]}{({**SUFFIXES, **HALF})[np.dtype(arrays[0].dtype)]}"

    def cpu(*arrays):
        return jax.ffi.ffi_call(target, outs, vmap_method="broadcast_all")(*arrays)

    return jax.lax.platform_dependent(*arrays, cpu=cpu, default=fallback)


def rows(fn, x, fallback):
    """`fn` ("softmax" or "log_softmax") of `x` over its last axis: the kernel on CPU,
    `fallback(x)` (the jnp formula) on other backends. The caller checks `applies`.

    `fallback` (here and in `values`) reduces over the last axis of its inputs, whatever their
    rank: on a GPU it is also the body of the Pallas kernel (`jaxsoft.gpu`), which runs it on
    2-D blocks of rows."""
    return _call(fn, (x,), jax.typeof(x), fallback)  # typeof: also inside shard_map (its vma)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1))
def values(fn, fallback, *arrays):
    """The results of kernel `fn` over the last axis of `arrays` (the first of shape
    [..., C]; the others of that shape, or one value a row: [..., 1], integer labels [...]);
    `fallback(*arrays)` on other backends. The caller checks `applies`. Their derivative
    (needed only to differentiate a derivative, e.g. `jax.hessian` of a loss) is that of
    `fallback`, the jnp formula. Row results have shape [..., 1] and x's compute dtype
    (float32 for bfloat16/float16 x, whose full-size arguments are of x's dtype and row
    values float32); a full-size result has x's type. `fallback` must give the same types.

      "stats" (x): m = max(max_j x_j, −finfo.max), log1p(s) (0 for an empty row), logsumexp
        (−inf for it); NaN for a row holding NaN or +inf.
      "soft_cross_entropy" (x, y): the loss Σ_j y_j·(−log softmax(x)_j) (0·log 0 = 0, NaN for
        a label outside [0, 1]), m, log1p(s) (NaN where the loss is NaN), logsumexp, Σ_j y_j.
      "int_grad" (x, y, m, l, a, b, c): a·p − c − b·onehot(y), p = e^{(x − m) − l}; int32 y.
      "soft_grad" (x, y, m, l, a, b): a·p − b·y.
      "log_softmax_grad" (y, ct): ct − e^{y}·Σ_j ct_j, from log_softmax's output y; float32,
      bfloat16/float16 (in float32).
    """
    x = arrays[0]
    if OUTPUTS[fn] == 0:
        return _call(fn, arrays, jax.typeof(x), fallback)
    row = jax.typeof(x).update(shape=(*x.shape[:-1], 1), dtype=_checks.compute_dtype(x.dtype))
    return tuple(_call(fn, arrays, (row,) * OUTPUTS[fn], fallback))


@values.defjvp
def _values_jvp(fn, fallback, primals, tangents):
    _, dots = jax.jvp(fallback, primals, tangents)
    return values(fn, fallback, *primals), dots


def gradient_dot(grad, reference, residuals, x_dot):
    """⟨g, ẋ⟩ over the last axis (one value a row) for a row gradient g = grad(1, *residuals)
    that a kernel computes (on the CPU or, as a Pallas kernel, on a GPU): linear in ẋ, for
    the tangent rule of a loss.

    Reverse mode transposes it to ct ↦ grad(ct, *residuals), with the cotangent (one value a
    row) folded into the kernel's row coefficients, so the gradient is written once. The
    result is in ẋ's compute dtype (float32 for a bfloat16/float16 ẋ, whose gradient the
    kernel writes in ẋ's dtype from float32 row values). As a
    plain Σ g·ẋ it transposed to ct·g, a second full-size pass after the kernel's (integer-
    label CE value_and_grad on this CPU, interleaved runs, before → after: 1.5–2.4 → 1.2–1.3×
    optax at 4096×1000, 1.2–1.3 → 1.0–1.1× at 65536×10, 0.65–1.27 → 0.50–0.62× at
    8192×4096).

    Args:
      grad: (ct, *residuals) ↦ ct·g, ct of shape x.shape[:-1]; a module-level function (it is
        a parameter of the primitive: jit caches by its identity).
      reference: (*residuals) ↦ g as jnp operations, for derivatives of the tangent (e.g.
        `jax.hessian` of a loss).
      residuals: the arrays g depends on; the first is x, [..., C].
      x_dot: the tangent, x's shape.

    Example (g = 2x, a jnp stand-in for a kernel):
      >>> import jax, jax.numpy as jnp
      >>> from jaxsoft import kernel
      >>> def times(ct, x): return 2 * x * ct[..., None]
      >>> def ref(x): return 2 * x
      >>> x = jnp.ones((2, 3))
      >>> kernel.gradient_dot(times, ref, (x,), x)
      Array([6., 6.], dtype=float32)
      >>> jax.linear_transpose(lambda t: kernel.gradient_dot(times, ref, (x,), t), x)(
      ...     jnp.array([1.0, 0.5]))[0]
      Array([[2., 2., 2.],
             [1., 1., 1.]], dtype=float32)
    """
    return _gradient_dot_p.bind(*residuals, x_dot, grad=grad, reference=reference)


def _gradient_dot_impl(*args, grad, reference):
    *residuals, x_dot = args
    dtype = _checks.compute_dtype(x_dot.dtype)
    ones = jnp.ones(x_dot.shape[:-1], dtype)
    return jnp.sum(grad(ones, *residuals).astype(dtype) * x_dot.astype(dtype), axis=-1)


def _instantiated(primals, tangents):
    """The tangents of a JVP through a jnp reference, symbolic zeros made arrays."""
    return [ad.instantiate_zeros(t) if jnp.issubdtype(p.dtype, jnp.inexact)
            else np.zeros(p.shape, jax.dtypes.float0)
            for p, t in zip(primals, tangents, strict=True)]


def _gradient_dot_jvp(primals, tangents, grad, reference):
    # Through the jnp reference (a derivative of a derivative: not the kernel's business).
    def dot(*args):
        *residuals, x_dot = args
        dtype = _checks.compute_dtype(x_dot.dtype)
        return jnp.sum(reference(*residuals).astype(dtype) * x_dot.astype(dtype), axis=-1)

    _, tangent = jax.jvp(dot, primals, _instantiated(primals, tangents))
    return _gradient_dot_p.bind(*primals, grad=grad, reference=reference), tangent


def _kernel_transpose(ct, *args, grad, reference):
    """Both primitives' transpose: the kernel `grad` of the cotangent, for x_dot (the last
    argument; the residuals are constants of the linear map)."""
    *residuals, x_dot = args
    assert ad.is_undefined_primal(x_dot) and not any(map(ad.is_undefined_primal, residuals))
    if type(ct) is ad.Zero:
        return [None] * len(residuals) + [ad.Zero(x_dot.aval)]
    return [None] * len(residuals) + [grad(ct, *residuals)]


def _batch_at_front(primitive):
    def batch(args, dims, **params):
        size = next(a.shape[d] for a, d in zip(args, dims, strict=True)
                    if d is not None)  # None: not batched
        args = [batching.bdim_at_front(a, d, size) for a, d in zip(args, dims, strict=True)]
        return primitive.bind(*args, **params), 0

    return batch


_gradient_dot_p = Primitive("jaxsoft_gradient_dot")
_gradient_dot_p.def_impl(_gradient_dot_impl)


def _gradient_dot_abstract_eval(*args, grad, reference):
    """x_dot's type less its last axis (shape and sharding; inside `jax.shard_map` it varies
    over x's manual axes, as the result does), in its compute dtype."""
    x_dot = args[-1]
    spec = (*x_dot.sharding.spec, *(None,) * (x_dot.ndim - len(x_dot.sharding.spec)))
    sharding = x_dot.sharding.update(spec=jax.sharding.PartitionSpec(*spec[:-1]))
    return x_dot.update(shape=x_dot.shape[:-1], sharding=sharding,
                        dtype=_checks.compute_dtype(x_dot.dtype))


_gradient_dot_p.def_abstract_eval(_gradient_dot_abstract_eval)
mlir.register_lowering(_gradient_dot_p, mlir.lower_fun(_gradient_dot_impl,
                                                      multiple_results=False))
ad.primitive_jvps[_gradient_dot_p] = _gradient_dot_jvp
ad.primitive_transposes[_gradient_dot_p] = _kernel_transpose
batching.primitive_batchers[_gradient_dot_p] = _batch_at_front(_gradient_dot_p)


def linear(grad, reference, residuals, x_dot):
    """reference(*residuals, x_dot): a map linear in ẋ, of ẋ's type (a tangent rule's
    full-size tangent), whose transpose ct ↦ grad(ct, *residuals) a CPU kernel computes in
    one pass, where `jax.linear_transpose` of the reference would leave it to XLA (log_softmax:
    ẏ = ẋ − ⟨e^{y}, ẋ⟩, transposed to ct − e^{y}·Σ ct). Forward mode, and derivatives of the
    map, go through the jnp reference.

    Args:
      grad: (ct, *residuals) ↦ the cotangent of ẋ; a module-level function (jit caches by its
        identity), as `reference`.
      reference: (*residuals, x_dot) ↦ the map, in jnp operations.
      residuals: the arrays the map depends on.
      x_dot: the tangent.

    Example (the map ẋ ↦ 2·ẋ, with a jnp stand-in for a kernel):
      >>> import jax, jax.numpy as jnp
      >>> from jaxsoft import kernel
      >>> def twice(ct, x): return 2 * ct
      >>> def ref(x, t): return 2 * t
      >>> x = jnp.ones(3)
      >>> jax.linear_transpose(lambda t: kernel.linear(twice, ref, (x,), t), x)(x)[0]
      Array([2., 2., 2.], dtype=float32)
    """
    return _linear_p.bind(*residuals, x_dot, grad=grad, reference=reference)


def _linear_impl(*args, grad, reference):
    return reference(*args)


def _linear_jvp(primals, tangents, grad, reference):
    _, tangent = jax.jvp(reference, primals, _instantiated(primals, tangents))
    return _linear_p.bind(*primals, grad=grad, reference=reference), tangent


_linear_p = Primitive("jaxsoft_linear")
_linear_p.def_impl(_linear_impl)
_linear_p.def_abstract_eval(lambda *args, grad, reference: args[-1])  # x_dot's type
mlir.register_lowering(_linear_p, mlir.lower_fun(_linear_impl, multiple_results=False))
ad.primitive_jvps[_linear_p] = _linear_jvp
ad.primitive_transposes[_linear_p] = _kernel_transpose
batching.primitive_batchers[_linear_p] = _batch_at_front(_linear_p)
