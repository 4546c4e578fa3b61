r"""Categorical cross-entropy on probabilities and negative log-likelihood on log-probabilities.

The softmax-fused versions (`softmax_cross_entropy*`, on logits) live in `cross_entropy.py`;
these two take the model's probabilities / log-probabilities directly (seed 000 §4.4:
L(ŷ; y) = −Σ y ln ŷ). Losses are per example: the class axis is summed, nothing else.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxsoft import _checks
from jaxsoft.losses import _common as c
from jaxsoft.losses.binary import _xlog, _ydiv

# ------------------------------------------------------------------ categorical cross-entropy


def _bad_rows(probs, labels, mask):
    ok = (probs >= 0) & (probs <= 1) & (labels >= 0) & (labels <= 1)
    return jnp.any(mask & ~ok, axis=-1, keepdims=True)


def categorical_cross_entropy_grad(probs, labels, mask):
    """Closed-form partials of −Σ_c y_c ln p_c: ∂L/∂p = −y/p (0 where y = 0), ∂L/∂y = −ln p.

    Masked-out classes get zero partials; an invalid row gets NaN partials everywhere.
    """
    bad = _bad_rows(probs, labels, mask)
    y = jnp.where(mask, labels, 0)
    d_p = -_ydiv(y, probs)
    d_y = jnp.where(mask, -jnp.log(jnp.where(mask, probs, 1)), 0)
    return c.poison(bad, d_p), c.poison(bad, d_y), None


@c.closed_form(categorical_cross_entropy_grad)
def _categorical_cross_entropy(probs, labels, mask):
    y = jnp.where(mask, labels, 0)
    loss = 0.0 - jnp.sum(_xlog(y, probs, jnp.log), axis=-1)  # +0, not −0, when perfect
    return c.poison(_bad_rows(probs, labels, mask)[..., 0], loss)


def categorical_cross_entropy(
    probs, labels, *, axis: int = -1, where=None, reduction: str = "none", validate=False
):
    r"""Categorical cross-entropy on probabilities  L(p; y) = −Σ_c y_c ln p_c.

    Derivative (`categorical_cross_entropy_grad`): ∂L/∂p_c = −y_c / p_c, ∂L/∂y_c = −ln p_c.
    L ≥ 0 and, for a fixed distribution y, its minimum over distributions p is at p = y
    (the entropy of y; seed 002: y = (0.5, 0.33, 0.17) gives 1.01).

    Conventions: 0·ln 0 = 0 in the value and the derivatives (a class with y_c = 0 contributes
    nothing, even at p_c = 0); label mass on p_c = 0 gives +inf. Classes with `where` False are
    left out (zero loss and zero gradient). Probabilities or labels outside [0, 1] or NaN
    (in a counted class) give NaN loss and NaN gradient for that example (poison). Labels are
    not required to sum to 1 (checked in `validate` mode).

    Args:
      probs: floating probabilities `[..., classes]`.
      labels: floating (one-hot or soft) labels, exactly the same shape.
      axis: the class axis.
      where: optional boolean mask, exactly the same shape, of classes to include.
      reduction: "none" (shape `[...]`), "mean" or "sum".
      validate: checked mode: values outside [0, 1], NaN, or label rows not summing to 1
        raise under `jaxsoft.checked`.

    Returns:
      Per-example losses `[...]` in the probs' dtype (bf16/f16 computed in float32).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.categorical_cross_entropy(jnp.array([0.1, 0.4, 0.2, 0.3]),
      ...                                   jnp.array([0.0, 1.0, 0.0, 0.0]))
      Array(0.9162907, dtype=float32)
    """
    fn = "categorical_cross_entropy"
    (p, y), dtype = c.floats(fn, ("probs", probs), ("labels", labels))
    c.same_shapes(fn, ("probs", p), ("labels", y))
    ax = _checks.class_axis(p, axis, fn)
    mask = _checks.as_mask(where, p.shape, "where", fn)
    mask = jnp.ones(p.shape, bool) if mask is None else mask
    p, y, mask = (jnp.moveaxis(a, ax, -1) for a in (p, y, mask))
    if validate:
        c.check_range(validate, jnp.where(mask, p, 0), 0, 1, "probs", fn)
        c.check_range(validate, jnp.where(mask, y, 0), 0, 1, "labels", fn)
        total = jnp.sum(jnp.where(mask, y, 0), axis=-1)
        tol = 64 * jnp.finfo(y.dtype).eps * y.shape[-1]
        _checks.runtime_check(
            jnp.abs(total - 1) <= tol, f"{fn}: label rows must sum to 1 (within {tol:.1e})"
        )
    return c.finish(_categorical_cross_entropy(p, y, mask), dtype, reduction, fn)


# ------------------------------------------------------------------ negative log-likelihood


def _take(log_probs, labels):
    safe = jnp.clip(labels, 0, log_probs.shape[-1] - 1)
    return jnp.take_along_axis(log_probs, safe[..., None], axis=-1)[..., 0]


def nll_loss_grad(log_probs, labels, weight, ignored):
    """Closed-form partials of −w_y·log p_y: ∂L/∂(log p) = −w_y·onehot(y), ∂L/∂w_y = −log p_y.

    Ignored examples get zero partials; examples with an out-of-range label get NaN.
    """
    one_hot, valid = c.label_one_hot(labels, log_probs.shape[-1], log_probs.dtype)
    keep = ~ignored
    d_lp = jnp.where(keep, -weight, 0)[..., None] * one_hot
    d_w = jnp.where(keep, -_take(log_probs, labels), 0)
    bad = keep & ~valid
    return c.poison(bad[..., None], d_lp), None, c.poison(bad, d_w), None


@c.closed_form(nll_loss_grad)
def _nll_loss(log_probs, labels, weight, ignored):
    valid = (labels >= 0) & (labels < log_probs.shape[-1])
    keep = ~ignored
    w = jnp.where(keep, weight, 0)
    # −w·log p_y with 0·(−inf) = 0 (zero class weight or ignored example).
    loss = 0.0 - w * jnp.where(w == 0, 0, _take(log_probs, labels))
    return c.poison(keep & ~valid, loss)


def nll_loss(
    log_probs,
    labels,
    *,
    axis: int = -1,
    ignore_index=None,
    weights=None,
    reduction: str = "none",
    validate=False,
):
    r"""Negative log-likelihood with integer labels  L = −w_y · log p_y  (torch's `nll_loss`).

    Derivative (`nll_loss_grad`): ∂L/∂(log p)_c = −w_y·[c = y]; ∂L/∂w_y = −log p_y.

    Conventions: an example whose label equals `ignore_index` has loss 0 and gradient 0 and
    is left out of the "mean", which divides by Σ w_y over the counted examples (torch). A
    label outside [0, classes) (at either end; −1 does *not* mean the last class) gives NaN
    loss and NaN gradient for that example (poison); with `validate=True` it raises under
    `jaxsoft.checked`. A class weight of 0 gives loss 0 even for log p_y = −inf.

    Args:
      log_probs: floating log-probabilities `[..., classes]`.
      labels: integer class indices, shape `log_probs.shape` without the class axis.
      axis: the class axis.
      ignore_index: optional label value to skip (torch uses −100).
      weights: optional floating class weights `[classes]`.
      reduction: "none" (shape `[...]`), "mean" or "sum".
      validate: checked mode: out-of-range labels or NaN log-probabilities raise.

    Returns:
      Per-example losses `[...]` in the log_probs' dtype (bf16/f16 computed in float32).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> lp = jnp.log(jnp.array([[0.1, 0.4, 0.2, 0.3], [0.1, 0.4, 0.2, 0.3]]))
      >>> jaxsoft.nll_loss(lp, jnp.array([1, 0]))
      Array([0.9162907, 2.3025851], dtype=float32)
      >>> jaxsoft.nll_loss(lp, jnp.array([1, -100]), ignore_index=-100, reduction="mean")
      Array(0.9162907, dtype=float32)
    """
    fn = "nll_loss"
    (lp,), dtype = c.floats(fn, ("log_probs", log_probs))
    ax = _checks.class_axis(lp, axis, fn)
    labels = c.integer_labels(labels, lp, ax, fn)
    lp = jnp.moveaxis(lp, ax, -1)
    num_classes = lp.shape[-1]
    if ignore_index is None:
        ignored = jnp.zeros(labels.shape, bool)
    else:
        if not isinstance(ignore_index, (int, jnp.integer)):
            raise TypeError(f"{fn}: ignore_index must be an int, got {ignore_index!r}")
        ignored = labels == ignore_index
    if weights is None:
        weight = jnp.ones(labels.shape, lp.dtype)
    else:
        (w,), _ = c.floats(fn, ("weights", weights))
        _checks.same_shape(w, (num_classes,), "weights", fn, "the number of classes")
        weight = jnp.take(w.astype(lp.dtype), jnp.clip(labels, 0, num_classes - 1))
    c.check_labels(validate, labels, num_classes, fn, ignore=ignore_index)
    c.check_finite_or_inf(validate, fn, log_probs=lp)
    loss = _nll_loss(lp, labels, weight, ignored)
    count = jnp.sum(jnp.where(ignored, 0, weight))
    return c.finish(loss, dtype, reduction, fn, count=count)
