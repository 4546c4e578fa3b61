r"""The softmax family: logsumexp, softmax, log_softmax, their Jacobian, and argmax_one_hot.

Exactness (NUMERICS.md §3). With m = max_j x_j, the normalizer splits exactly into

    Σ_j e^{x_j − m} = 1 + s,    s = (ties − 1) + Σ_{x_j < m} e^{x_j − m},

so log Σ_j e^{x_j} = m + log1p(s) and log_softmax_i = (x_i − m) − log1p(s) never cancel:
the dominant class gets −log1p(s) (≈ −s, to full relative precision) where the textbook
x − m − log Σ returns 0. The rounding error of each subtraction x_j − m is recovered exactly
(Fast2Sum, `diff_below`) and folded in as e^{d}(1 + err), so a confident prediction's tiny
loss keeps all its digits. The sum adds each term's integer part (1 at a maximum, else 0)
apart from the rest, so tied maxima count exactly and s loses no digits to the 1. The softmax only
divides by 1 + s, which a plain Σ_j e^{fl(x_j − m)} gives to ~2 ulp, so it sums that
(`Stats(exact=False)`) and keeps the err for its outputs e^{x_i − m}.

Every function is a `jax.custom_jvp` with the closed-form tangent from the notes:
softmax: ẏ = y ⊙ (ẋ − ⟨y, ẋ⟩), log_softmax: ẏ = ẋ − ⟨softmax, ẋ⟩, logsumexp: ⟨softmax, ẋ⟩.
No n×n Jacobian is built inside a gradient; `softmax_jacobian` builds it on request only.

Masks: `where=False` entries are excluded (treated as −inf). A fully masked row gives
softmax 0, log_softmax −inf, logsumexp −inf, and gradient 0. Without `where`, a row of all
−inf behaves the same (softmax 0, not 0/0); a row holding +inf or NaN gives NaN.

Dtypes: bfloat16/float16 are computed in float32 and rounded once; float32/float64 in their
own precision; results have the input's dtype. The err is left out for bfloat16/float16
(`compensated`): float32 without it errs by ≤ ~60 float32 ulps (|x − m| ≤ 104 where e^{x−m}
counts, each rounding ≤ |x − m|·2^-24/2), far below half an ulp of the 8- or 11-bit result.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxsoft import _checks, gpu, kernel


def _axes(x, axis, fn) -> tuple[int, ...]:
    """Normalize `axis` (int, tuple of ints, or None = all) to a sorted tuple of axes."""
    if axis is None:
        return tuple(range(x.ndim))
    items = axis if isinstance(axis, tuple) else (axis,)
    for a in items:
        if not isinstance(a, (int, np.integer)):
            raise TypeError(f"{fn}: axis must be an int or a tuple of ints, got {axis!r}")
        if not -x.ndim <= a < x.ndim:
            raise ValueError(f"{fn}: axis {a} does not exist for an input of shape {x.shape}")
    axes = tuple(sorted({int(a) % x.ndim for a in items}))
    if x.ndim == 0 or not axes:
        raise ValueError(f"{fn}: needs at least one axis to reduce over, got shape {x.shape}")
    return axes


def _prepare(x, axis, where, fn):
    x = _checks.as_float(x, "x", fn)
    axes = _axes(x, axis, fn)
    where = _checks.as_mask(where, x.shape, "where", fn)
    return x, axes, where


def two_diff(a, b):
    """TwoSum for a − b: returns (d, err) with d = fl(a − b) and a − b = d + err exactly."""
    d = a - b
    a_virtual = d + b
    b_virtual = a_virtual - d
    return d, (a - a_virtual) - (b - b_virtual)


def diff_below(c, m):
    """Fast2Sum for c − m where c ≤ m (m a row max) and nothing overflows: returns (d, err)
    with d = fl(c − m) and c − m = d + err exactly.

    Fast2Sum is exact when |a| ≥ |b|; here a = min(c, −m), b = max(c, −m) qualify: if
    c ≤ −m, then |c| ≥ |m| (as c ≤ m too); otherwise −m < c ≤ m, so |c| ≤ m. One operation
    fewer than `two_diff`, in the passes over every element.
    """
    d = c - m
    return d, jnp.maximum(c, -m) - (d - jnp.minimum(c, -m))


def compensated(dtype) -> bool:
    """Whether results in `dtype` need the rounding error of x − m (`diff_below`): float32 and
    float64 do; bfloat16/float16, computed in float32 and rounded once, do not (module
    docstring)."""
    return _checks.compute_dtype(dtype) == jnp.dtype(dtype)


def row_sum(x, axes):
    """Σ over `axes` (kept as size-1 dims), as a reduce whose start value is −0.0.

    −0.0 is the exact additive identity, like +0.0; the reason for the spelling is XLA on
    CPU: jnp.sum starts from the constant 0.0, which XLA shares with every other use of 0.0 in
    the program and then passes into the fused reduction as a run-time parameter, and a fused
    kernel holding two such sums was measured 4–5× slower (49 vs 9 ms at 8192×4096) than one
    with its own constant start value. In a GPU kernel's body (`jaxsoft.gpu.in_body`) a
    plain jnp.sum: Triton has no reduce of a custom start value. Not differentiable (used on
    primal values only).
    """
    if gpu.in_body():
        return jnp.sum(x, axis=axes, keepdims=True)
    total = jax.lax.reduce(x, jnp.array(-0.0, x.dtype), lambda a, b: a + b, axes)
    return jnp.expand_dims(total, axes)


# XLA on CPU runs a reduction over rows of ≤ NARROW_WIDTH elements fastest as one variadic
# reduce (several sums in one op, compiled by XLA itself rather than handed to YNNPACK, whose
# per-row cost grows with every operation in the fused kernel): the exact (m, s) of 65536×10
# 1.12 → 0.38 ms. Over wider rows the variadic reduce is 2–4× slower (65536×16: 1.15 → 2.16
# ms), and below NARROW_MIN_SIZE elements it gains nothing (1024×10: 0.053 vs 0.060 ms).
NARROW_WIDTH, NARROW_MIN_SIZE = 12, 2**16


def narrow(size, width):
    """Whether `row_sums` takes its sums in one variadic reduce (see NARROW_WIDTH; on the CPU
    only: on a GPU, `on_gpu`, it made the exact log_softmax write a full-size temporary)."""
    return width <= NARROW_WIDTH and size >= NARROW_MIN_SIZE and not on_gpu()


def on_gpu() -> bool:
    """Whether the jnp formulas are traced in their form for GPUs: JAX's default backend is
    not the CPU. Only the form differs (which passes XLA fuses), not the result: `Stats` sums
    the maxima as a count of x == m beside the other terms (a select, which on the CPU split
    the fused kernel; the CPU form's floor(t) split made XLA on a GPU write t out in full:
    exact log_softmax at 8192×4096 on an H200 0.23 → 0.17 ms) and cuts no rows into sub-rows
    (`sub_rows`: a CPU fusion limit)."""
    return jax.default_backend() != "cpu"


def row_sums(values, axes, variadic):
    """(Σ v over `axes` for v in values), kept as size-1 dims: one `row_sum` each, or one
    variadic reduce for all (for narrow rows, see NARROW_WIDTH)."""
    if not variadic:
        return tuple(row_sum(v, axes) for v in values)
    zeros = tuple(jnp.array(-0.0, v.dtype) for v in values)
    totals = jax.lax.reduce(tuple(values), zeros,
                            lambda a, b: tuple(p + q for p, q in zip(a, b, strict=True)), axes)
    return tuple(jnp.expand_dims(t, axes) for t in totals)


def two_diff_halved(x, m):
    """(d, err) with x − m = d + err exactly, for any finite x and m: TwoSum on the halves,
    so nothing overflows; x is clamped at −finfo.max (an −inf gives d = −inf, err finite)."""
    _, err = two_diff(jnp.maximum(x, -jnp.finfo(x.dtype).max) * 0.5, m * 0.5)
    return x - m, err * 2


def merge(m, s, reduce_max, reduce_sum):
    """Exact (M, S, (δ, ε)) of a union of parts from each part's (m_c, s_c) statistics.

    M = max_c m_c and 1 + S = Σ_c (1 + s_c) e^{m_c − M}, summed as non-negative terms: the
    part(s) holding M add s_c and a tie count exactly, the others (1 + s_c)·e^{δ_c}(1 + ε_c)
    with m_c − M = δ_c + ε_c recovered by TwoSum (returned for the caller's own use). An
    empty part (m_c = −finfo.max, s_c = −1) adds nothing; an empty union gives S = −1.

    Args:
      m, s: the parts' statistics, parts along the axis the reductions reduce.
      reduce_max, reduce_sum: those reductions; their results must broadcast against their
        input (e.g. keepdims, or `jax.lax.pmax`/`psum` over a `shard_map` axis).
    """
    big_m = reduce_max(m)
    # keep = 1 for a part below the max, 0 for the part(s) holding it (as in `Stats`).
    keep = jnp.minimum((big_m - m) * (1 / jnp.finfo(m.dtype).tiny), 1)
    delta, err = two_diff_halved(m, big_m)
    below = keep * ((1 + s) * jnp.exp(delta) * (1 + err))
    total = reduce_sum(below + (1 - keep) * s) + (reduce_sum(1 - keep) - 1)
    return big_m, total, (delta, err)


# XLA on CPU fuses a row's reductions into one kernel only over ≥ FUSED_ROWS rows; over fewer,
# longer rows it materializes their shared terms (measured: the exact (m, s) of a [512, 65536]
# array took 472 ms, as [8192, 4096] sub-rows merged 19 ms; int-label CE value_and_grad at
# 1024×32768 207 → 63 ms). Arrays below SUB_ROWS_MIN_SIZE elements are left whole (the merge
# costs more than it saves there: 2048×1024 and 1024×2048 softmax 1.35 → 0.8–0.9 ms whole,
# log_softmax and int-label CE value_and_grad the same either way).
FUSED_ROWS, SUB_ROW_MIN_WIDTH, SUB_ROWS_MIN_SIZE = 4096, 128, 2**22


def sub_rows(rows, width):
    """Into how many sub-rows `Stats` cuts each of `rows` rows of `width` elements: the
    smallest power of two k dividing width with rows·k ≥ FUSED_ROWS and sub-rows at least
    SUB_ROW_MIN_WIDTH wide, for arrays of ≥ SUB_ROWS_MIN_SIZE elements; else 1."""
    if rows * width < SUB_ROWS_MIN_SIZE:
        return 1
    k = 1
    while rows * k < FUSED_ROWS and width % (2 * k) == 0 and width // (2 * k) >= SUB_ROW_MIN_WIDTH:
        k *= 2
    return k if rows * k >= FUSED_ROWS else 1


def _row_result(s):
    """s unchanged: `lax.reduce_precision` to its own format is a no-op on the value, but
    XLA on CPU does not fuse it into the reduction kernel, so the log1p that follows stays
    out of the kernel too. With it inside, the fused two-sum kernel ran 10× slower over many
    short rows (65536×128: 55 vs 4.4 ms). Used only where the row result ends in row-sized
    values (logsumexp, the integer-label loss): before a full-size output pass (softmax,
    log_softmax) the split cost more than it saved (softmax at 8192×4096: 50 → 133 ms). Not
    in a GPU kernel's body (`jaxsoft.gpu.in_body`), which computes in registers and has no
    Triton lowering for it."""
    if gpu.in_body():
        return s
    fi = jnp.finfo(s.dtype)
    return jax.lax.reduce_precision(s, exponent_bits=fi.nexp, mantissa_bits=fi.nmant)


def _floor(m):
    """Below m − finfo.max/2 (at least −finfo.max), e^{x − m} = 0 (see `Stats.shift`)."""
    big = jnp.finfo(m.dtype).max
    return jnp.maximum(m - big * 0.5, -big)


class Stats:
    """Exact pieces of a row's normalizer, computed in two passes over x (max, then sum).

    Attributes (all keep the reduced axes as size-1 dims):
      m: the max over unmasked entries (−finfo.max for an empty or all −inf row).
      d, err: d = fl(x − m) and its rounding error, x − m = d + err exactly wherever
        e^{x − m} is representable (see `shift`).
      s: Σ_j e^{x_j − m} − 1 = (ties − 1) + Σ_{x < m} e^{x − m}, to full relative
        precision also when tiny (a confident prediction's loss ≈ s). s ≥ 0, except
        for an empty row (all −inf or all masked), where s = −1 exactly: such a row behaves
        as fully masked (softmax 0, log_softmax −inf, logsumexp −inf, gradient 0).

    Written for XLA on CPU, where the sum pass is compute-bound: arithmetic instead of
    compares and selects (a compare or select was measured to split the fused two-pass kernel
    and cost 3–4×; empty rows are handled by clamping instead), and as few operations per
    element as exactness allows (13 and one exp in the sum pass).

    Every pass reads float32/float64 x through min(x, m) (`shift`). The min rounds x: XLA copies an
    elementwise producer of x (say 3·r·c) into each pass and contracts its last multiply with
    the subtraction of m into one FMA, so x − m would be computed from the unrounded product
    (measured: log_softmax(3·r·1e4) of a two-way tie gave −0.693477 for −0.693147).

    Few long rows (over the last axis) are cut into k sub-rows (`sub_rows`) whose statistics
    are merged exactly (`merge`): XLA fuses the two passes only over enough rows.

    On a GPU (`on_gpu`) the same s is summed as a count of the entries x = m (the ties) and
    the sum of e^{x − m}(1 + err) over the others, and rows are never cut.

    compensate=False (bfloat16/float16 inputs, see `compensated`): err = 0, no Fast2Sum.

    rows_kernel (exact only): where the compiled row kernels apply (`jaxsoft.kernel.applies`:
    float32/float64, the last axis, no mask; also bfloat16/float16 x, whose statistics are
    float32), m, log1p(s) and lse come from `kernel.values`, summed in a wider
    format (s itself is not formed); d and err as above, in the statistics' dtype.

    exact=False (for the softmax, which only divides by 1 + s): s = Σ_j e^{fl(x_j − m)} − 1,
    one sum of one exp per element, as jax.nn. 1 + s is then within ~2 ulp (relative) of the
    true Σ_j e^{x_j − m} ≥ 1: the rounding of x_j − m changes a term by ≤ |d|·e^{d}·u ≤ u/e
    relative to the max's 1, and summation adds its own rounding; s itself is only accurate
    in absolute terms, so lse, log1p_s and the losses need exact=True.
    """

    def __init__(self, x, axes, where, exact=True, compensate=True, rows_kernel=True):
        self.row_stats = None
        if exact and compensate and rows_kernel and kernel.applies(x, axes, where):
            self._from_kernel(x, axes)
            return
        if where is not None:
            x = jnp.where(where, x, -jnp.inf)
        big = jnp.finfo(x.dtype).max
        last = x.ndim - 1
        whole = tuple(axes) != (last,) or on_gpu()
        k = 1 if whole else sub_rows(math.prod(x.shape[:-1]), x.shape[-1])
        if k > 1:
            part = Stats(x.reshape(*x.shape[:-1], k, x.shape[-1] // k), (last + 1,), None,
                         exact, compensate, rows_kernel=False)
            m, s, _ = merge(part.m, part.s, functools.partial(jnp.max, axis=last, keepdims=True),
                            functools.partial(jnp.sum, axis=last, keepdims=True))
            self.x, self.m, self.s = x, m[..., 0], s[..., 0]
            self.compensate = compensate
            self.floor = _floor(self.m)
            self.d, self.err = self.shift(x)
            return
        # initial: rows of no entries (shape [..., 0]) give m = −big, an empty row, not an error
        self.x, self.m = x, jnp.maximum(jnp.max(x, axis=axes, keepdims=True, initial=-jnp.inf),
                                        -big)
        self.compensate = compensate
        # Below `floor`, e^{x − m} = 0 (the clamp changes no term of the sum).
        self.floor = _floor(self.m)
        self.d, self.err = self.shift(x)
        if not exact:  # 1 + s = Σ e^{d}, to ~2 ulp (see the class docstring)
            self.s = row_sum(jnp.exp(self.d), axes) - 1
            return
        # t = e^{x − m}: exactly 1 at the maxima, < 1 elsewhere (a rounding may lift a near-tie
        # to 1), 0 for −inf (d = −inf). Each t splits exactly into hi = floor(t) ∈ {0, 1} and
        # t − hi ∈ [0, t], which is 0 at the maxima: the ones sum exactly (the tie count), and
        # the rests keep a tiny s = (Σ hi − 1) + Σ (t − hi) to full relative precision.
        t = jnp.exp(self.d) * (1 + self.err)
        if on_gpu():  # the same split as a count of the maxima and the sum of the rest
            tie = x == self.m
            ones, rest = row_sums((tie.astype(x.dtype), jnp.where(tie, 0, t)), axes, False)
        else:
            hi = jnp.floor(t)
            count = float(np.prod([x.shape[a] for a in axes]))
            ones, rest = row_sums((hi, t - hi), axes, variadic=narrow(x.size, count))
        self.s = (ones - 1) + rest

    def _from_kernel(self, x, axes):
        """m, log1p(s) and lse from the row kernel (`jaxsoft.kernel.values`; s is not
        formed)."""

        def formula(x):  # over the last axis (also of a GPU kernel's block)
            st = Stats(_checks.upcast(x), (x.ndim - 1,), None, rows_kernel=False)
            return st.m, st.log1p_s, st.lse

        self.x, self.compensate = x, True
        self.m, *self.row_stats = kernel.values("stats", formula, x)
        self.floor = _floor(self.m)
        self.d, self.err = self.shift(x)

    def shift(self, x):
        """(d, err): d = fl(x − m) and err its rounding error, x − m = d + err exactly for
        x ≥ floor (below it e^{d} = 0, d ≤ −finfo.max/2 or −inf, and err is finite); err = 0
        without `compensate`. x is read through min(x, m), which rounds it (class docstring);
        not bf16/f16 inputs: their upcast already rounds them, and an extra min made XLA write
        the row max out full-size (log_softmax at 65536×10 in bf16: 0.8 → 2.3 ms)."""
        x = x.astype(self.m.dtype)  # 16-bit x of float32 statistics (`rows_kernel`)
        if not self.compensate:
            return x - self.m, 0.0
        x = jnp.minimum(x, self.m)
        _, err = diff_below(jnp.maximum(x, self.floor), self.m)
        return x - self.m, err

    @property
    def lse(self):
        """logsumexp = m + log1p(s) (−inf for an empty row, where s = −1); row-sized, so
        computed apart from the reduction kernel (`_row_result`)."""
        if self.row_stats:
            return self.row_stats[1]
        return self.m + jnp.log1p(_row_result(self.s))

    @property
    def log1p_s(self):
        """log1p(s) = lse − m, and 0 for an empty row."""
        if self.row_stats:
            return self.row_stats[0]
        return jnp.log1p(jnp.maximum(self.s, 0))

    @property
    def row_log1p_s(self):
        """log1p_s computed apart from the reduction kernel (`_row_result`), for the
        cross-entropies; log_softmax uses `log1p_s` (there the split was measured slower)."""
        if self.row_stats:
            return self.row_stats[0]
        return jnp.log1p(jnp.maximum(_row_result(self.s), 0))

    @property
    def inv(self):
        """1 / Σ_j e^{x_j − m} = 1 / (1 + s) (1 for an empty row, whose e^{d} are all 0)."""
        return 1 / jnp.maximum(1 + self.s, 1)  # an empty row's e^{d} are all 0

    def softmax(self):
        return jnp.exp(self.d) * (1 + self.err) * self.inv

    def log_softmax(self):
        # No err: d = fl(x − m) and −log1p(s) are both ≤ 0, so |d − log1p(s)| ≥ |x − m| and
        # d's rounding is ≤ 1 ulp of the result (softmax's e^{d} needs it: |d|·u of e^{d}).
        return self.d - self.log1p_s


def probs(x, m, log1p_s, where=None):
    """softmax recomputed from the row's max and log-normalizer: e^{(x − m) − log1p(s)}.

    This is the form the backward passes use (accurate to a few eps in absolute terms, which
    is what a gradient needs): it recomputes from the input and two row-sized numbers instead
    of storing a full-size array, and stays exact at any magnitude (unlike e^{x − lse}, whose
    lse may not be representable next to x). Masked entries and empty rows give 0.
    """
    if where is not None:
        x = jnp.where(where, x, -jnp.inf)
    # the min rounds x (see `Stats`); 16-bit x of float32 statistics computed in float32
    return jnp.exp((jnp.minimum(x.astype(m.dtype), m) - m) - log1p_s)


def _recomputed(tangent_fn, barrier=None):
    """Mark a tangent computation for recomputation in the backward pass.

    `tangent_fn` takes the primals and the tangent last. Under `jax.grad` the primal-only parts
    of a JVP rule (e.g. the softmax) would otherwise be evaluated in the forward pass and kept
    as a full-size residual; inside `jax.checkpoint` they are recomputed from the (already
    resident) inputs and the row-sized logsumexp, fused into the backward's single output pass.

    On the CPU without `prevent_cse`: its optimization barriers (there against XLA merging the
    recomputation into the forward, which shares no full-size value with it here) also kept
    XLA from simplifying the backward (Σ_j of a broadcast cotangent stayed a reduce in a
    one-thread YNNPACK fusion): log_softmax value_and_grad 1.47 → 0.64 ms at 65536×10, 6.9 →
    1.9 ms at 4096×1000. On a GPU (`on_gpu`) with it, the form measured there, unless
    `barrier` is False.
    """
    return jax.checkpoint(tangent_fn, prevent_cse=on_gpu() if barrier is None else barrier)


# ----------------------------------------------------------------------------------- logsumexp


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 3))
def _logsumexp(x, axes, where, compensate):
    return Stats(x, axes, where, compensate=compensate).lse


@_logsumexp.defjvp
def _logsumexp_jvp(axes, compensate, primals, tangents):
    x, where = primals
    x_dot, _ = tangents
    st = Stats(x, axes, where, compensate=compensate)

    def tangent(x, m, log1p_s, where, x_dot):
        return jnp.sum(probs(x, m, log1p_s, where) * x_dot, axis=axes, keepdims=True)

    return st.lse, _recomputed(tangent)(x, st.m, st.log1p_s, where, x_dot)


def logsumexp(x, axis=None, *, where=None, keepdims=False):
    r"""log Σ_j e^{x_j}, exactly: m + log1p(s) with m the max (see the module docstring).

    Derivative: ∂/∂x_i logsumexp(x) = softmax(x)_i.

    Conventions: a fully masked row (all `where` False) or a row of all −inf gives −inf with
    gradient 0; a row holding +inf or NaN gives NaN. Reduces over `axis` (int, tuple, or
    None = all axes, as `jax.nn.logsumexp`).

    Args:
      x: floating array.
      axis: axis or axes to reduce over; None reduces over all axes.
      where: optional boolean mask of `x.shape`; False entries are excluded.
      keepdims: keep the reduced axes as size-1 dimensions.

    Returns:
      The logsumexp, `x.dtype` (bf16/f16 computed in float32, rounded once).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.logsumexp(jnp.array([1e4, 1e4]))
      Array(10000.693, dtype=float32)
    """
    x, axes, where = _prepare(x, axis, where, "logsumexp")
    out = _logsumexp(_checks.upcast(x), axes, where, compensated(x.dtype)).astype(x.dtype)
    return out if keepdims else jnp.squeeze(out, axes)


# ------------------------------------------------------------------------------------- softmax


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 3))
def _softmax(x, axes, where, compensate):
    """x float32/float64, or bfloat16/float16 where the kernel reads them (`_half_kernel`)."""

    def formula(x, axes=axes):
        st = Stats(_checks.upcast(x), axes, where, exact=False,
                   compensate=compensate and compensated(x.dtype))
        return st.softmax().astype(x.dtype)

    if compensate and kernel.applies(x, axes, where, "softmax"):
        # the row kernel (`jaxsoft.kernel`); the formula over the last axis of its input
        return kernel.rows("softmax", x, lambda x: formula(x, (x.ndim - 1,)))
    y = formula(x)
    return y if where is None else jnp.where(where, y, 0)


@_softmax.defjvp
def _softmax_jvp(axes, compensate, primals, tangents):
    x, where = primals
    x_dot, _ = tangents
    y = _softmax(x, axes, where, compensate)
    # ẏ = y ⊙ (ẋ − ⟨y, ẋ⟩): the Jacobian y_n(δ_nm − y_m) applied without being built
    # (in float32 for 16-bit inputs).
    y32, x_dot32 = _checks.upcast(y), _checks.upcast(x_dot)
    return y, (y32 * (x_dot32 - jnp.sum(y32 * x_dot32, axis=axes, keepdims=True))).astype(
        x_dot.dtype)


def _half_kernel(x, axes, where, fn):
    """Whether a bfloat16/float16 `x` goes to the row kernel `fn` as it is: read and written
    in its format, converted in registers (a float32 copy written first was what cost the
    16-bit rows their time)."""
    return not compensated(x.dtype) and kernel.applies(x, axes, where, fn)


def softmax(x, axis=-1, where=None):
    r"""Softmax  ŷ_n = e^{x_n} / Σ_j e^{x_j}, ≤ 2.5 ulp at every row width measured (1–32768
    entries) in float32 and float64 over the last axis on CPU, where it runs the compiled row
    kernel (`jaxsoft.kernel`: the normalizer summed in a wider format); jax.nn errs by 17–22
    float32 ulp on wide rows. Elsewhere (`where`, other axes, bf16/f16 inputs, other backends,
    no kernel) the jnp formula: ≤ 4 ulp on the oracle's rows (≤ 6 entries), 5–7 ulp on wide
    rows, the rounding of the plain sum Σ_j e^{d_j} plus XLA's exp (README, Numerics).

    Derivative: ∂ŷ_n/∂x_m = ŷ_n(δ_nm − ŷ_m); the tangent rule applies it as
    ẏ = ŷ ⊙ (ẋ − ⟨ŷ, ẋ⟩) without forming the matrix (`softmax_jacobian` forms it).

    Conventions: shift-invariant; masked entries (`where` False) are 0 and a fully masked row
    is all 0 with gradient 0, and so is a row of all −inf without `where` (not 0/0); a row
    holding +inf or NaN is NaN.

    Args:
      x: floating array of logits.
      axis: the class axis or axes (default -1).
      where: optional boolean mask of `x.shape`; False entries are excluded.

    Returns:
      Probabilities of `x.shape` and `x.dtype` (bf16/f16 computed in float32, rounded once).

    Example (Opgave 59):
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.softmax(jnp.array([-1.0, 0.0, 1.0]))
      Array([0.09003057, 0.24472848, 0.66524094], dtype=float32)
    """
    x, axes, where = _prepare(x, axis, where, "softmax")
    if _half_kernel(x, axes, where, "softmax"):
        return _softmax(x, axes, where, True)
    return _softmax(_checks.upcast(x), axes, where, compensated(x.dtype)).astype(x.dtype)


# --------------------------------------------------------------------------------- log_softmax


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 3))
def _log_softmax(x, axes, where, compensate):
    """x float32/float64, or bfloat16/float16 where the kernel reads them (`_half_kernel`)."""

    def formula(x, axes=axes):
        st = Stats(_checks.upcast(x), axes, where, compensate=compensate and compensated(x.dtype),
                   rows_kernel=False)
        return st.log_softmax().astype(x.dtype)

    if compensate and kernel.applies(x, axes, where, "log_softmax"):
        # the row kernel (`jaxsoft.kernel`); the formula over the last axis of its input
        return kernel.rows("log_softmax", x, lambda x: formula(x, (x.ndim - 1,)))
    y = formula(x)
    return y if where is None else jnp.where(where, y, -jnp.inf)


@_log_softmax.defjvp
def _log_softmax_jvp(axes, compensate, primals, tangents):
    x, where = primals
    x_dot, _ = tangents
    y = _log_softmax(x, axes, where, compensate)
    if (compensate and kernel.on_cpu() and kernel.applies(x, axes, where, "log_softmax_grad")
            and (x.shape[-1] <= GRAD_KERNEL_WIDTH or not compensated(x.dtype))):
        # reverse mode: ct − e^{y}·Σ ct in one pass of the CPU kernel (`kernel.linear`)
        return y, kernel.linear(_log_softmax_grad, _log_softmax_tangent, (y,), x_dot)

    def tangent(y, where, x_dot):
        y_dot = _log_softmax_tangent(y, x_dot, axes)
        return y_dot if where is None else jnp.where(where, y_dot, 0)

    # No barrier on a GPU either: there it made XLA write the broadcast cotangent of a sum out
    # in full and read it twice (H200, compiled program of log_softmax value_and_grad).
    return y, _recomputed(tangent, barrier=False)(y, where, x_dot)


# The log_softmax gradient kernel serves float32 rows up to this wide, where XLA's backward
# pays its per-row cost of a reduction (0.27 vs 0.88 ms at 65536×10, 0.70 vs 0.95 at
# 65536×16); from 64 entries XLA's pass was as fast or faster (1.9 vs 1.5 ms at 16384×256,
# 3.3 vs 1.7 at 4096×1000). bfloat16/float16 rows of any width: XLA wrote the float32 upcasts
# of y and ct out in full (17 passes over the bf16 logits for value_and_grad at 8192×4096).
GRAD_KERNEL_WIDTH = 16


def _log_softmax_tangent(y, x_dot, axes=(-1,)):
    """ẏ = ẋ − ⟨e^{y}, ẋ⟩ from the output y: exp(log ŷ) recomputed instead of stored (float32
    for 16-bit inputs)."""
    y, x_dot32 = _checks.upcast(y), _checks.upcast(x_dot)
    return (x_dot32 - jnp.sum(jnp.exp(y) * x_dot32, axis=axes, keepdims=True)).astype(
        x_dot.dtype)


def _log_softmax_grad(ct, y):
    """The transpose of `_log_softmax_tangent` over the last axis, ct − e^{y}·Σ_j ct_j: the
    CPU kernel ("log_softmax_grad"), this formula elsewhere."""
    return kernel.values("log_softmax_grad", _log_softmax_grad_rows, y, ct)


def _log_softmax_grad_rows(y, ct):
    """The kernel's formula over the last axis (its fallback off the CPU)."""
    return ct - jnp.exp(y) * jnp.sum(ct, axis=-1, keepdims=True)


def log_softmax(x, axis=-1, where=None):
    r"""log softmax  x_n − log Σ_j e^{x_j}, to ≤ 4 ulp (relative), also for the dominant class;
    ≤ 2 ulp in float32/float64 over the last axis on CPU, where it runs the row kernel
    (`jaxsoft.kernel`: the row's s summed and (x − m) − log1p(s) formed in a wider format).

    Computed as (x_n − m) − log1p(s) with s exact (module docstring), so the dominant
    class's tiny value −s is not rounded to 0 (jax.nn: up to 1.7e7 ulp off).

    Derivative: ∂/∂x_m log ŷ_n = δ_nm − ŷ_m; tangent ẏ = ẋ − ⟨ŷ, ẋ⟩.

    Conventions: masked entries are −inf with zero tangent; a fully masked row is all −inf
    with gradient 0; −inf logits give −inf; a row holding +inf or NaN is NaN.

    Args:
      x: floating array of logits.
      axis: the class axis or axes (default -1).
      where: optional boolean mask of `x.shape`; False entries are excluded.

    Returns:
      Log-probabilities of `x.shape` and `x.dtype` (bf16/f16 computed in float32).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.log_softmax(jnp.array([0.0, -40.0]))  # jax.nn gives [0., -40.]
      Array([-4.248354e-18, -4.000000e+01], dtype=float32)
    """
    x, axes, where = _prepare(x, axis, where, "log_softmax")
    if _half_kernel(x, axes, where, "log_softmax"):
        return _log_softmax(x, axes, where, True)
    return _log_softmax(_checks.upcast(x), axes, where, compensated(x.dtype)).astype(x.dtype)


# ---------------------------------------------------------------------------- teaching helpers


def softmax_jacobian(x, axis=-1):
    r"""The explicit softmax Jacobian J_nm = ∂ŷ_n/∂x_m = ŷ_n(δ_nm − ŷ_m), shape [..., n, n].

    For teaching and checks only (it is n×n per row); the gradients of `softmax` never build
    it. Rows of J sum to... columns sum to 0 (Opgave 69), the diagonal is positive and the
    off-diagonal negative (Opgave 67).

    Args:
      x: floating array of logits, classes along `axis` (a single int).
      axis: the class axis.

    Returns:
      Array of shape `x.shape[:axis] + x.shape[axis+1:] + (n, n)`, `x.dtype`.

    Example (Opgave 68: equal inputs give ŷ = 1/N, J = (δ/N − 1/N²)):
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.softmax_jacobian(jnp.zeros(2))
      Array([[ 0.25, -0.25],
             [-0.25,  0.25]], dtype=float32)
    """
    x = _checks.as_float(x, "x", "softmax_jacobian")
    axis = _checks.class_axis(x, axis, "softmax_jacobian")
    y = jnp.moveaxis(softmax(x, axis=axis), axis, -1)
    eye = jnp.eye(y.shape[-1], dtype=y.dtype)
    return y[..., :, None] * (eye - y[..., None, :])


def argmax_one_hot(x, axis=-1, dtype=None):
    r"""The hard "argmax" the softmax smooths: a one-hot vector at the (first) maximum.

    `argmax([-1, 4, 2, 0]) = [0, 1, 0, 0]` (seed 000 §4.1). Not differentiable (Opgave 64):
    its gradient is defined as 0. Ties go to the first maximum, as `jnp.argmax`.

    Args:
      x: array of scores, classes along `axis` (a single int).
      axis: the class axis.
      dtype: result dtype (default: `x.dtype` for floats, else float32).

    Returns:
      One-hot array of `x.shape`.

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.argmax_one_hot(jnp.array([-1.0, 4.0, 2.0, 0.0]))
      Array([0., 1., 0., 0.], dtype=float32)
    """
    x = jnp.asarray(x)
    axis = _checks.class_axis(x, axis, "argmax_one_hot")
    if dtype is None:
        dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
    index = jnp.argmax(jax.lax.stop_gradient(x), axis=axis, keepdims=True)
    classes = jax.lax.broadcasted_iota(index.dtype, x.shape, axis)
    return (classes == index).astype(dtype)
