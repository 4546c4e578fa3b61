r"""Softmax cross-entropy from logits: soft/one-hot labels and integer labels.

Forward, exact (≤ 4 ulp, relative, also for tiny losses): with the row's exact normalizer
(`jaxsoft.softmax.Stats`: Σ_j e^{z_j − m} = 1 + s),

    CE(z, y) = Σ_j y_j (log1p(s) − (z_j − m)),

a sum of non-negative terms: no cancellation when one class dominates, and no absolute error
from a common offset (optax computes lse(z) − z_y unshifted: 3.8e-4 abs error at z = 1e4 + …).

Backward, the seeds' a − y: ∂CE/∂z = (Σ_j y_j)·softmax(z) − y, recomputed from the logits and
the row's logsumexp (no full-size residual is stored; forward mode works too, as these are
`custom_jvp` rules whose tangent is linear in ż).

Shapes: logits [..., C] (classes along `axis`); per-example losses [...] — reduced over the
class axis only; `reduction` sums or averages them.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

from jaxsoft import _checks, gpu, kernel
from jaxsoft.softmax import (
    Stats,
    _half_kernel,
    _log_softmax,
    _recomputed,
    _row_result,
    narrow,
    on_gpu,
    probs,
    row_sums,
)


def _row_factor(valid, ignored, nonempty):
    """(keep, poison) per row: keep is 1, or 0 for an ignored label or an empty row; poison is
    0, or NaN for an invalid label. Made as 0/0 so no NaN exists unless a label is invalid."""
    keep = (~ignored & nonempty).astype(jnp.float32)
    return keep, 0 / jnp.maximum(valid.astype(jnp.float32), 1 - keep)


def _poison(bad):
    """0 where `bad` is False, NaN where it is True (created only there)."""
    return 0 / (~bad).astype(jnp.float32)


def _kernel(x, axis, where):
    """Whether the row kernels serve this cross-entropy (`jaxsoft.kernel.applies`)."""
    return kernel.applies(x, (axis,), where)


def _row_stats(x, axis, where):
    """The row-sized numbers the backward needs: (max, log-normalizer, logsumexp)."""
    st = Stats(x, (axis,), where, rows_kernel=_kernel(x, axis, where))
    return st.m, st.log1p_s, st.lse


# ------------------------------------------------------------------------------ integer labels


@functools.partial(jax.custom_jvp, nondiff_argnums=(3,))
def _ce_int(x, labels, where, opts):
    return _ce_int_forward(x, labels, where, opts)[0]


def _ce_int_forward(x, labels, where, opts):
    """(per-example loss, the row stats the backward reuses): one max pass, one sum pass."""
    axis, smoothing, z_loss, ignore_index, compensate = opts
    st = Stats(x, (axis,), where, compensate=compensate, rows_kernel=_kernel(x, axis, where))
    classes = x.shape[axis]
    lab = jnp.expand_dims(labels, axis)
    d_y, err_y = st.shift(jnp.take_along_axis(st.x, jnp.clip(lab, 0, classes - 1), axis))
    log1p_s = st.row_log1p_s
    loss = (log1p_s - d_y) - err_y  # −log softmax_y, both terms ≥ 0
    if smoothing:
        # α/K on each of the K unmasked classes: Σ_j (log1p(s) − (z_j − m)) / K.
        _, mean_shift = _class_mean(st, where, axis)
        loss = (1 - smoothing) * loss + smoothing * (log1p_s - mean_shift)
    if z_loss:
        loss = loss + z_loss * st.lse**2
    keep, poison = _row_factor(*_label_flags(lab, classes, ignore_index, where, axis))
    loss = jnp.where(keep == 0, 0, loss) + poison.astype(loss.dtype)
    # Row-sized, but a `mean` of it would pull the log1p into XLA's fused reduction, where
    # it ran at ~15 ns a row (65536×10: 0.95 ms of 3): `_row_result` keeps it apart.
    return _row_result(jnp.squeeze(loss, axis)), (st.m, st.log1p_s, st.lse)


def _label_flags(lab, classes, ignore_index, where, axis):
    valid = (lab >= 0) & (lab < classes)
    ignored = lab == ignore_index if ignore_index is not None else jnp.zeros_like(valid)
    nonempty = jnp.any(where, axis=axis, keepdims=True) if where is not None else True
    return valid, ignored, jnp.broadcast_to(nonempty, valid.shape)


def _class_mean(st, where, axis):
    """(K, Σ_j (z_j − m) / K) over the K unmasked classes (−inf if a logit is −inf)."""
    shift = st.d + st.err
    if where is None:
        count = jnp.asarray(st.x.shape[axis], st.m.dtype)
    else:
        count = jnp.sum(where, axis=axis, keepdims=True).astype(st.m.dtype)
        shift = jnp.where(where, shift, 0)
    return count, jnp.sum(shift, axis=axis, keepdims=True) / jnp.maximum(count, 1)


def _int_grad_coefficients(logits, labels, axis, where, smoothing, z_loss, ignore_index, stats):
    """∂CE/∂z = a·softmax(z) − c − b·onehot(y) as (m, log1p(s), a, b, c, y): a and b one a row,
    c one a row or 0 (full-size for smoothing over the unmasked classes of `where`); a, b
    and c hold the row factor keep (0 for an ignored label or an empty row), log1p(s) the
    poison (NaN for an invalid label: in softmax(z), which no cotangent multiplies, so the
    row stays NaN under a cotangent of 0 too — as ct·a with a = NaN it did not: XLA turned
    select(p, w, 0)·NaN into select(p, w·NaN, 0), measured); y is clipped into range and keeps
    `axis` as a size-1 dim."""
    classes = logits.shape[axis]
    lab = jnp.expand_dims(labels, axis)
    m, log1p_s, lse = stats if stats is not None else _row_stats(logits, axis, where)
    keep, poison = _row_factor(*_label_flags(lab, classes, ignore_index, where, axis))
    log1p_s = log1p_s + poison.astype(log1p_s.dtype)
    row = keep.astype(m.dtype)  # float32 for 16-bit logits (`_half_kernel`)
    a = row
    if z_loss:
        a = row * (1 + 2 * z_loss * jnp.where(jnp.isfinite(lse), lse, 0))
    c = 0.0
    if smoothing:
        if where is None:
            c = row * (smoothing / classes)
        else:
            count = jnp.sum(where, axis=axis, keepdims=True).astype(m.dtype)
            c = row * jnp.where(where, smoothing / jnp.maximum(count, 1), 0)
    return m, log1p_s, a, (1 - smoothing) * row, c, jnp.clip(lab, 0, classes - 1)


def _label_entries(shape, lab, axis):
    """The index tuple of each row's label entry (`lab` keeps `axis` as a size-1 dim)."""
    return tuple(lab if d == axis else jax.lax.broadcasted_iota(lab.dtype, lab.shape, d)
                 for d in range(len(shape)))


def _int_grad(x, lab, m, log1p_s, a, b, c, axis=-1, where=None):
    """a·softmax(x) − c − b·onehot(lab): on the CPU the one-hot part added at one entry a row
    (a scatter), not formed full-size by a compare with an iota, which cost the backward pass
    ~20 ms of 85 at 8192×4096 (XLA on CPU, measured); on a GPU (`on_gpu`) the compare, which
    XLA fuses into the pass, where a scatter is a kernel of its own after the gradient is
    written out (and, for 16-bit logits, before its float32 form is converted)."""
    dense = probs(x, m, log1p_s, where) * a - c
    if on_gpu():
        return dense - jnp.where(_is_label(x.shape, lab, axis), b, 0)
    return dense.at[_label_entries(x.shape, lab, axis)].add(
        -b, mode="promise_in_bounds", unique_indices=True)


def _is_label(shape, lab, axis):
    """Whether each entry is its row's label (`lab` keeps `axis` as a size-1 dim)."""
    return jax.lax.broadcasted_iota(lab.dtype, shape, axis) == lab


def _int_grad_kernel(x, lab, m, log1p_s, a, b, c):
    """`_int_grad` over the last axis as the row kernel (`jaxsoft.kernel`, "int_grad"): it
    writes the gradient once (on CPU into huge pages: a fresh gradient's 4 KiB page faults
    cost more than its arithmetic)."""
    c = jnp.broadcast_to(jnp.asarray(c, a.dtype), a.shape)
    return kernel.values("int_grad", _int_grad_rows, x, lab[..., 0].astype(jnp.int32), m,
                         log1p_s, a, b, c)


def _int_grad_times(ct, x, lab, m, log1p_s, a, b, c):
    """ct·(a·softmax(x) − c − b·onehot(lab)) in one kernel pass (`kernel.gradient_dot`)."""
    ct = ct[..., None]
    return _int_grad_kernel(x, lab, m, log1p_s, a * ct, b * ct, c * ct)


def _int_grad_reference(x, lab, m, log1p_s, a, b, c):
    return _int_grad_rows(x, lab[..., 0], m, log1p_s, a, b, c)


def _int_grad_rows(x, y, m, log1p_s, a, b, c):
    """`_int_grad` over the last axis with integer labels y [...], the one-hot part a
    compare with an iota: the kernels' formula (the body of the GPU kernel, where a scatter
    does not lower and a compare costs nothing; `jaxsoft.gpu`), in x's dtype (computed in
    the row values' float32 for 16-bit x)."""
    g = probs(x, m, log1p_s) * a - c - jnp.where(_is_label(x.shape, y[..., None], x.ndim - 1),
                                                 b, 0)
    return g.astype(x.dtype)


def softmax_cross_entropy_with_integer_labels_grad(logits, labels, *, axis=-1, where=None,
                                                   label_smoothing=0.0, z_loss=0.0,
                                                   ignore_index=None, stats=None):
    r"""Closed-form ∂CE/∂z for integer labels: softmax(z)·(1 + 2·z_loss·lse) − target.

    target = (1 − α)·onehot(y) + α/K on the K unmasked classes; rows with an ignored label or
    no unmasked class get 0, rows with an invalid label get NaN. Shape and dtype of
    `logits` (bf16/f16 computed in float32, rounded once).
    """
    axis = _checks.class_axis(logits, axis, "softmax_cross_entropy_with_integer_labels_grad")
    x = _int_logits(logits, axis, where)
    m, log1p_s, a, b, c, lab = _int_grad_coefficients(x, labels, axis, where, label_smoothing,
                                                      z_loss, ignore_index, stats)
    if _kernel(x, axis, where):
        return _int_grad_kernel(x, lab, m, log1p_s, a, b, c)
    return _int_grad(x, lab, m, log1p_s, a, b, c, axis, where).astype(logits.dtype)


def _int_logits(logits, axis, where):
    """The logits the integer-label CE computes on: 16-bit logits as they are where the row
    kernels read them (statistics and gradient in float32 from registers: the float32 copy
    written out was what cost their time), else in the compute dtype."""
    if _half_kernel(logits, (axis,), where, "int_grad"):
        return logits
    return _checks.upcast(logits)


@_ce_int.defjvp
def _ce_int_jvp(opts, primals, tangents):
    x, labels, where = primals
    x_dot = tangents[0]
    axis, smoothing, z_loss, ignore_index, compensate = opts
    loss, stats = _ce_int_forward(x, labels, where, opts)

    def tangent(x, labels, where, stats, x_dot):
        m, log1p_s, a, b, c, lab = _int_grad_coefficients(x, labels, axis, where, smoothing,
                                                          z_loss, ignore_index, stats)
        if compensate and _kernel(x, axis, where):  # bf16/f16 x only where the kernels read it
            c = jnp.broadcast_to(jnp.asarray(c, a.dtype), a.shape)
            # ⟨g, ż⟩, whose transpose writes ct·g in the kernel's pass
            return kernel.gradient_dot(_int_grad_times, _int_grad_reference,
                                       (x, lab, m, log1p_s, a, b, c), x_dot)
        if on_gpu():  # Σ_j g_j·ż_j, the one-hot part of g a compare with an iota there
            return jnp.sum(_int_grad(x, lab, m, log1p_s, a, b, c, axis, where) * x_dot,
                           axis=axis)
        # Σ_j (a·p_j − c)·ż_j − b·ż_y: its transpose adds −b·ct at the label in place (a
        # scatter, see `_int_grad`).
        dense = probs(x, m, log1p_s, where) * a - c
        x_dot_y = jnp.take_along_axis(x_dot, lab, axis, mode="promise_in_bounds")
        return jnp.sum(dense * x_dot, axis=axis) - jnp.squeeze(b * x_dot_y, axis)

    return loss, _recomputed(tangent)(x, labels, where, stats, x_dot)


def softmax_cross_entropy_with_integer_labels(logits, labels, axis=-1, where=None, *,
                                              label_smoothing=0.0, z_loss=0.0,
                                              ignore_index=None, weights=None,
                                              reduction="none", validate=False):
    r"""Cross-entropy between softmax(logits) and integer class labels (sparse CE / NLL).

    CE(z, y) = −log softmax(z)_y = log Σ_j e^{z_j} − z_y, computed as log1p(s) − (z_y − m)
    with m = max z (exact to ≤ 4 ulp, no cancellation, no offset error).

    Derivative: ∂CE/∂z = softmax(z) − onehot(y), the seeds' δᴸ = a − y: it never saturates.

    Options:
      label_smoothing α: target (1 − α)·onehot(y) + α/K over the K classes (the unmasked ones
        when `where` is given); computed without building a one-hot in the forward.
      z_loss: adds z_loss·(log Σ_j e^{z_j})² (PaLM's z-loss).
      ignore_index: rows whose label equals it give loss 0, gradient 0, and are left out of
        the mean's denominator.
      weights: class weights [C]; each row's loss is multiplied by weights[y]; "mean" then
        divides by the total weight of the counted rows (as torch).

    Conventions: an invalid label (< 0 or ≥ C, not `ignore_index`) gives NaN loss and NaN
    gradient for its row (never a finite wrong answer; optax reads −1 as class C − 1);
    `validate=True` checks the range instead (run under `jaxsoft.checked`). A label on a −inf
    (or masked) logit gives +inf with the finite gradient softmax − onehot. A fully masked row
    gives 0 with gradient 0 and is left out of the mean.

    Args:
      logits: [..., C] floating array, classes along `axis`.
      labels: integer array of shape logits.shape without `axis`.
      axis: the class axis (a single int).
      where: optional boolean mask of logits.shape; False classes are excluded.
      label_smoothing: α ∈ [0, 1].
      z_loss: coefficient of the z-loss.
      ignore_index: optional label value to ignore.
      weights: optional [C] class weights.
      reduction: "none" (per-example, default), "mean" or "sum".
      validate: record run-time checks of the labels (see `jaxsoft.checked`).

    Returns:
      Per-example losses of shape `labels.shape` (or a scalar when reduced), `logits.dtype`
      (bf16/f16 computed in float32, rounded once).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> z = jnp.array([[1e4, 1e4 + 1, 1e4 + 2], [0.0, 0.0, 50.0]])
      >>> loss = jaxsoft.softmax_cross_entropy_with_integer_labels(z, jnp.array([2, 2]))
      >>> loss  # doctest: +NUMBER
      Array([4.076060e-01, 3.857500e-22], dtype=float32)
    """
    fn = "softmax_cross_entropy_with_integer_labels"
    logits = _checks.as_float(logits, "logits", fn)
    labels = _checks.as_labels(labels, "labels", fn)
    axis = _checks.class_axis(logits, axis, fn)
    expected = logits.shape[:axis] + logits.shape[axis + 1:]
    _checks.same_shape(labels, expected, "labels", fn, "logits.shape without the class axis")
    where = _checks.as_mask(where, logits.shape, "where", fn)
    classes = logits.shape[axis]
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"{fn}: label_smoothing must lie in [0, 1], got {label_smoothing}")
    if validate:
        ok = ((labels >= 0) & (labels < classes)) | (labels == ignore_index)
        _checks.runtime_check(ok, f"{fn}: labels must lie in [0, {classes}) or equal "
                              f"ignore_index={ignore_index}")
        if where is not None:
            _checks.runtime_check(jnp.any(where, axis=axis), f"{fn}: a row of `where` is all "
                                  "False (no class to predict)")
    x = _int_logits(logits, axis, where)
    # compensated: float32/float64, and 16-bit logits where the kernels read them (in float32)
    opts = (axis, float(label_smoothing), float(z_loss), ignore_index, x.dtype == logits.dtype)
    loss = _ce_int(x, labels, where, opts)
    counted = jnp.ones(labels.shape, bool)
    if ignore_index is not None:
        counted = labels != ignore_index
    if where is not None:
        counted = counted & jnp.any(where, axis=axis)
    if weights is not None:
        weights = _checks.as_float(weights, "weights", fn)
        _checks.same_shape(weights, (classes,), "weights", fn, "one weight per class")
        w = jnp.take(_checks.upcast(weights), jnp.clip(labels, 0, classes - 1))
        loss = loss * w
        counted = jnp.where(counted, w, 0)
    loss = _checks.reduce(loss, reduction, fn, count=jnp.sum(counted))
    return loss.astype(logits.dtype)


# ------------------------------------------------------------------------- soft/one-hot labels


@functools.partial(jax.custom_jvp, nondiff_argnums=(3,))
def _ce_soft(x, labels, where, opts):
    return _ce_soft_forward(x, labels, where, *opts)[0]


def _ce_soft_forward(x, labels, where, axis, compensate=True):
    """(per-example loss, the row stats the backward reuses, NaN-poisoned for invalid rows).

    On CPU, where the row kernels apply, one kernel (`jaxsoft.kernel.values`) computes
    the loss and the stats in a wider format, reading x and y once (the jnp rows below, one
    fused reduction with the conventions in arithmetic, ran ~3× the time of a plain pass:
    49 vs 18 ms at 8192×4096). Not over narrow rows (`narrow`), where the jnp rows' one
    variadic reduce was faster (65536×10: 2.1 vs 4.6 ms; the kernel's per-row reductions).
    On a GPU only for rows of at most `gpu.PAIR_WIDTH` entries (its program holds x and y).
    """
    if (compensate and _kernel(x, axis, where) and not narrow(x.size, x.shape[axis])
            and (kernel.on_cpu() or x.shape[axis] <= gpu.PAIR_WIDTH)):
        def fallback(x, y):  # over the last axis (also of a GPU kernel's block)
            return _ce_soft_rows(_checks.upcast(x), _checks.upcast(y), None, x.ndim - 1,
                                 rows_kernel=False, with_mass=True)

        loss, *stats = kernel.values("soft_cross_entropy", fallback, x, labels)
    else:
        loss, *stats = _ce_soft_rows(x, labels, where, axis, compensate,
                                     rows_kernel=_kernel(x, axis, where))
    return jnp.squeeze(loss, axis), tuple(stats)


def _ce_soft_rows(x, labels, where, axis, compensate=True, rows_kernel=True, with_mass=False):
    """(loss, m, log1p(s) NaN-poisoned, lse, Σy or None), keeping `axis` as size 1: the jnp
    formula. One pass over (x, y) after the row stats, in arithmetic only: XLA on CPU keeps a
    compare or select out of the fused reduction and writes its operands to full-size
    temporaries (a `where` for 0·log 0 and a compare for the label check made this 3.4×
    slower). `with_mass`: Σ_j y_j also over wide rows (the kernel's fallback)."""
    st = Stats(x, (axis,), where, compensate=compensate, rows_kernel=rows_kernel)
    # 16-bit x and y of a kernel's float32 statistics (on a GPU over rows > PAIR_WIDTH: the
    # conversions fuse into this pass's reads)
    x, labels = st.x.astype(st.m.dtype), labels.astype(st.m.dtype)
    if where is not None:
        labels = jnp.where(where, labels, 0)
    big = jnp.finfo(x.dtype).max
    # y·(−log softmax) = y·log1p(s) + 2·y·(m/2 − x/2): every term ≥ 0, and the halves keep
    # y·(m − x) finite whenever it is (x = −max, m = max, y < 1/2). x is clamped at −big so
    # that a −inf logit costs 0 under y = 0 (0·log 0 = 0) ... (−big behind a barrier: as a
    # plain constant XLA on CPU shares its full-size broadcast with `Stats` and writes it to
    # memory; not in a GPU kernel's body, which has no Triton lowering for it, `jaxsoft.gpu`.)
    floor = jnp.array(-big, x.dtype)
    clamped = jnp.maximum(x, floor if gpu.in_body() else jax.lax.optimization_barrier(floor))
    gaps = 2 * (labels * (st.m * 0.5 - clamped * 0.5))
    # ... and +inf under y > 0: clamped − x is +inf there (else 0), min(·, y·2/tiny) ≥ 2 for
    # y ≥ tiny, times big overflows.
    hit = jnp.minimum(clamped - x, labels * (2 / jnp.finfo(x.dtype).tiny))
    # A label outside [0, 1] makes y(1 − y) < 0: its square root, times 0, is NaN.
    invalid = jnp.sqrt(labels - labels * labels) * 0
    terms = gaps + hit * big + invalid  # y·(−log softmax) − y·log1p(s), per entry
    if narrow(x.size, x.shape[axis]):
        # Σ_j y_j·log1p(s) as log1p(s)·Σ_j y_j, both sums in one variadic reduce (NARROW_WIDTH);
        # Σ y is the backward's too. (Over wide rows, a second sum split XLA's fused kernel.)
        mass, rest = row_sums((labels, terms), (axis,), variadic=True)
        loss = mass * st.row_log1p_s + rest
    else:
        mass = jnp.sum(labels, axis=axis, keepdims=True) if with_mass else None
        # jnp.sum, not `row_sum`: its −0.0 start made this kernel 2.4× slower (189 vs 79 ms
        # at 8192×4096) where it made the `Stats` kernel faster; XLA's choices, measured.
        loss = jnp.sum(labels * st.row_log1p_s + terms, axis=axis, keepdims=True)
    loss = jnp.where(loss >= big, jnp.inf, loss)  # a hit (finite losses stay below big)
    poison = _poison(jnp.isnan(loss)).astype(x.dtype)
    return loss, st.m, st.log1p_s + poison, st.lse, mass


def softmax_cross_entropy_grad(logits, labels, *, axis=-1, where=None, stats=None):
    r"""Closed-form ∂CE/∂z for soft labels: (Σ_j y_j)·softmax(z) − y (= softmax − y when Σy = 1).

    Rows whose labels leave [0, 1] get NaN. Shape and dtype of `logits` (bf16/f16 computed
    in float32, rounded once). `stats` are the forward's (computed here when not given).
    """
    axis = _checks.class_axis(logits, axis, "softmax_cross_entropy_grad")
    x, y = _soft_inputs(logits, labels, axis, where)
    if stats is None:
        _, stats = _ce_soft_forward(x, y, where, axis)
    return _soft_ce_grad(x, y, axis, where, stats, _kernel(x, axis, where)).astype(logits.dtype)


def _soft_inputs(logits, labels, axis, where):
    """(x, y) for the soft-label CE: 16-bit logits and labels of their format as they are where
    the row kernels read them (over rows not `narrow`, whose jnp rows compute in x's dtype),
    else both in the compute dtype."""
    if (labels.dtype == logits.dtype and _half_kernel(logits, (axis,), where,
                                                      "soft_cross_entropy")
            and not narrow(logits.size, logits.shape[axis])):
        return logits, labels
    ct = _checks.compute_dtype(logits.dtype)
    return logits.astype(ct), labels.astype(ct)


def _soft_ce_grad(logits, labels, axis, where, stats, use_kernel):
    """`softmax_cross_entropy_grad` given the stats; `use_kernel`: as the row kernel (written
    once, see `_int_grad_kernel`)."""
    labels, m, log1p_s, mass = _soft_grad_residuals(labels, axis, where, stats)
    if use_kernel:
        return _soft_grad_times(jnp.ones(mass.shape[:-1], mass.dtype), logits, labels, m,
                                log1p_s, mass)
    return _soft_grad(logits, labels, m, log1p_s, mass, where)


def _soft_grad_residuals(labels, axis, where, stats):
    """(labels, m, log1p(s), Σy): what the gradient (Σy)·softmax − y needs besides x."""
    if where is not None:
        labels = jnp.where(where, labels, 0)
    m, log1p_s, _, mass = stats  # log1p_s is NaN in rows with invalid labels
    if mass is None:  # (in the statistics' float32 for 16-bit labels)
        mass = jnp.sum(labels.astype(m.dtype), axis=axis, keepdims=True)
    return labels, m, log1p_s, mass


def _soft_grad(x, y, m, log1p_s, mass, where=None):
    return mass * probs(x, m, log1p_s, where) - y.astype(mass.dtype)


def _soft_grad_times(ct, x, y, m, log1p_s, mass):
    """ct·((Σy)·softmax(x) − y) over the last axis in one kernel pass ("soft_grad",
    `kernel.gradient_dot`)."""
    ct = ct[..., None]
    return kernel.values("soft_grad", _soft_grad_rows, x, y, m, log1p_s, mass * ct,
                         jnp.broadcast_to(ct, mass.shape))


def _soft_grad_rows(x, y, m, log1p_s, a, b):
    """a·softmax(x) − b·y: the kernel's formula, in x's dtype (computed in the row values'
    float32 for 16-bit x and y)."""
    return (a * probs(x, m, log1p_s) - b * y.astype(a.dtype)).astype(x.dtype)


def _ce_soft_jvp(opts, primals, tangents):
    x, labels, where = primals
    x_dot, labels_dot, _ = tangents
    axis, compensate = opts
    loss, stats = _ce_soft_forward(x, labels, where, axis, compensate)
    out = jnp.zeros_like(loss)
    if not isinstance(x_dot, SymbolicZero):

        def tangent(x, labels, where, stats, x_dot):
            # Not for the float32 upcast of bf16/f16 inputs (compensate False): the kernel
            # would need it written out in full, which XLA otherwise fuses into the backward
            # pass (`_soft_inputs` hands the kernels 16-bit inputs as they are instead).
            use_kernel = compensate and _kernel(x, axis, where)
            if use_kernel:  # ⟨g, ż⟩: its transpose writes ct·g in one pass
                residuals = (x, *_soft_grad_residuals(labels, axis, where, stats))
                return kernel.gradient_dot(_soft_grad_times, _soft_grad, residuals, x_dot)
            g = _soft_ce_grad(x, labels, axis, where, stats, use_kernel)
            return jnp.sum(g * x_dot, axis=axis)

        out = out + _recomputed(tangent)(x, labels, where, stats, x_dot)
    if not isinstance(labels_dot, SymbolicZero):
        # ∂CE/∂y_j = −log softmax_j (+inf on a −inf logit; 0 where masked).
        neg_log_p = -_log_softmax(_checks.upcast(x), (axis,), where, compensate)
        neg_log_p = neg_log_p if where is None else jnp.where(where, neg_log_p, 0)
        out = out + jnp.sum(neg_log_p * _checks.upcast(labels_dot), axis=axis)
    return loss, out


_ce_soft.defjvp(_ce_soft_jvp, symbolic_zeros=True)


def softmax_cross_entropy(logits, labels, axis=-1, where=None, *, reduction="none",
                          validate=False):
    r"""Cross-entropy between softmax(logits) and a label distribution (one-hot or soft).

    CE(z, y) = −Σ_j y_j log softmax(z)_j, computed as Σ_j y_j (log1p(s) − (z_j − m)): each
    term is ≥ 0, so the sum has no cancellation (≤ 4 ulp; ≤ 1 where the CPU row kernel
    computes it in a wider format, `jaxsoft.kernel`).

    Derivative: ∂CE/∂z = (Σ_j y_j)·softmax(z) − y = softmax(z) − y for a distribution y (the
    seeds' a − y); ∂CE/∂y_j = −log softmax(z)_j.

    Conventions: 0·log 0 = 0 (a −inf logit with label 0 costs nothing, in value and in forward
    and reverse derivatives; optax gives NaN); label mass on a −inf logit gives +inf with the
    finite gradient softmax − y; masked classes (`where` False) are excluded and a fully masked
    row gives 0 with gradient 0; labels outside [0, 1] give NaN for their row (`validate=True`
    also checks that rows sum to 1).

    Args:
      logits: [..., C] floating array, classes along `axis`.
      labels: floating array of logits.shape (probabilities).
      axis: the class axis (a single int).
      where: optional boolean mask of logits.shape.
      reduction: "none" (per-example, default), "mean" or "sum".
      validate: record run-time checks of the labels (see `jaxsoft.checked`).

    Returns:
      Per-example losses of logits.shape without `axis` (or a scalar), `logits.dtype`
      (bf16/f16 computed in float32, rounded once).

    Example (seed 002: the minimum is at a = y, where CE is the entropy, 1.01):
      >>> import jax.numpy as jnp, jaxsoft
      >>> y = jnp.array([0.5, 1 / 3, 1 / 6])
      >>> jaxsoft.softmax_cross_entropy(jnp.log(y), y)  # doctest: +NUMBER
      Array(1.011404, dtype=float32)
    """
    fn = "softmax_cross_entropy"
    logits = _checks.as_float(logits, "logits", fn)
    labels = _checks.as_float(labels, "labels", fn)
    axis = _checks.class_axis(logits, axis, fn)
    _checks.same_shape(labels, logits.shape, "labels", fn, "logits.shape")
    where = _checks.as_mask(where, logits.shape, "where", fn)
    if validate:
        _checks.runtime_check((labels >= 0) & (labels <= 1),
                              f"{fn}: labels must be probabilities in [0, 1]")
        kept = labels if where is None else jnp.where(where, labels, 0)
        total = jnp.sum(kept, axis=axis)
        _checks.runtime_check(jnp.abs(total - 1) <= 1e-3,
                              f"{fn}: each row of labels must sum to 1")
    x, y = _soft_inputs(logits, labels, axis, where)
    # compensated: float32/float64, and 16-bit logits where the kernels read them (in float32)
    loss = _ce_soft(x, y, where, (axis, x.dtype == logits.dtype))
    count = None if where is None else jnp.sum(jnp.any(where, axis=axis))
    return _checks.reduce(loss, reduction, fn, count=count).astype(logits.dtype)
