r"""Binary cross-entropy, on probabilities and on logits (seed 000 §4.4).

Conventions (NUMERICS.md): 0·log 0 = 0 in the value *and* in the derivatives, no clipping, so
a perfect prediction (p, y) = (0, 0) or (1, 1) costs exactly 0 with a finite gradient and a
confidently wrong one costs +inf. Invalid values (probabilities or labels outside [0, 1], NaN)
give NaN loss and NaN gradient for that element ("poison"); with `validate=True` they raise
under `jaxsoft.checked`.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxsoft.activations.sigmoidal import _sigmoid, _softplus
from jaxsoft.losses import _common as c


def _xlog(y, p, log):
    """y·log(p) with 0·log(anything) = 0, computed without creating a NaN (double where)."""
    zero = y == 0
    return jnp.where(zero, 0.0, y * log(jnp.where(zero, 1.0, p)))


def _ydiv(y, p):
    """y / p with 0/anything = 0, without creating a NaN."""
    zero = y == 0
    return jnp.where(zero, 0.0, y / jnp.where(zero, 1.0, p))


def _bad_probs(probs, labels):
    return ~((probs >= 0) & (probs <= 1) & (labels >= 0) & (labels <= 1))


# ----------------------------------------------------------------------- on probabilities


def binary_cross_entropy_grad(probs, labels):
    """Closed-form partials of −y log p − (1 − y) log(1 − p).

    ∂L/∂p = −y/p + (1 − y)/(1 − p) (each term 0 when its coefficient is 0: at (0, 0) it is 1,
    at (1, 1) it is −1); ∂L/∂y = log(1 − p) − log p = −logit(p).
    """
    bad = _bad_probs(probs, labels)
    q = 1 - probs
    d_p = _ydiv(1 - labels, q) - _ydiv(labels, probs)
    d_y = jnp.log1p(-probs) - jnp.log(probs)
    return c.poison(bad, d_p), c.poison(bad, d_y)


@c.closed_form(binary_cross_entropy_grad)
def _binary_cross_entropy(probs, labels):
    # log(1 − p) as log1p(−p): exact for small p, and 1 − p is exact for p ≥ ½ anyway.
    # 0 − (...) rather than −(...): a perfect prediction gives +0, not −0.
    loss = 0.0 - (_xlog(labels, probs, jnp.log) + _xlog(1 - labels, -probs, jnp.log1p))
    return c.poison(_bad_probs(probs, labels), loss)


def binary_cross_entropy(probs, labels, *, reduction: str = "none", validate=False):
    r"""Binary cross-entropy on probabilities  L(p; y) = −y ln p − (1 − y) ln(1 − p).

    Derivative (`binary_cross_entropy_grad`): ∂L/∂p = −y/p + (1 − y)/(1 − p),
    ∂L/∂y = ln(1 − p) − ln p.

    Conventions: 0·ln 0 = 0 (value and derivative), no clipping: L(0; 0) = L(1; 1) = 0 with
    gradients 1 and −1; L(0; 1) = L(1; 0) = +inf. Probabilities or labels outside [0, 1] or
    NaN give NaN loss and NaN gradient (poison). Soft labels in [0, 1] are allowed. Prefer
    `sigmoid_binary_cross_entropy` on logits: it never saturates.

    Args:
      probs: floating probabilities `[...]`.
      labels: floating labels in [0, 1], exactly the same shape.
      reduction: "none", "mean" or "sum".
      validate: checked mode: values outside [0, 1] or NaN raise under `jaxsoft.checked`.

    Returns:
      Losses `[...]` in the probs' dtype (bf16/f16 computed in float32, rounded once).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.binary_cross_entropy(jnp.array([0.0, 1.0, 0.5]), jnp.array([0.0, 1.0, 1.0]))
      Array([0.       , 0.       , 0.6931472], dtype=float32)
    """
    fn = "binary_cross_entropy"
    (p, y), dtype = c.floats(fn, ("probs", probs), ("labels", labels))
    c.same_shapes(fn, ("probs", p), ("labels", y))
    c.check_range(validate, p, 0, 1, "probs", fn)
    c.check_range(validate, y, 0, 1, "labels", fn)
    return c.finish(_binary_cross_entropy(p, y), dtype, reduction, fn)


# ----------------------------------------------------------------------------- on logits


def sigmoid_binary_cross_entropy_grad(logits, labels, pos_weight):
    """Closed-form partials of (1 − y)·S⁺(x) + w·y·S⁺(−x).

    ∂L/∂x = (1 − y)σ(x) − w·y·σ(−x)  (= σ(x) − y for w = 1), ∂L/∂y = −S⁺(x) + w·S⁺(−x)
    (= −x for w = 1), ∂L/∂w = y·S⁺(−x).
    """
    bad = ~((labels >= 0) & (labels <= 1))
    d_x = (1 - labels) * _sigmoid(logits) - pos_weight * labels * _sigmoid(-logits)
    d_y = pos_weight * _softplus(-logits) - _softplus(logits)
    d_w = _xlog_free(labels, _softplus(-logits))
    return c.poison(bad, d_x), c.poison(bad, d_y), c.poison(bad, d_w)


def _xlog_free(y, s):
    """y·s with 0·inf = 0 (s = S⁺(±x) is +inf only at an infinite logit)."""
    zero = y == 0
    return jnp.where(zero, 0.0, y * jnp.where(zero, 0.0, s))


@c.closed_form(sigmoid_binary_cross_entropy_grad)
def _sigmoid_binary_cross_entropy(logits, labels, pos_weight):
    # −y log σ(x) − (1 − y) log(1 − σ(x)) = y·S⁺(−x) + (1 − y)·S⁺(x): two non-negative terms,
    # no cancellation and no log of a rounded probability; 0·S⁺(±inf) = 0.
    loss = _xlog_free(1 - labels, _softplus(logits)) + pos_weight * _xlog_free(
        labels, _softplus(-logits)
    )
    return c.poison(~((labels >= 0) & (labels <= 1)), loss)


def sigmoid_binary_cross_entropy(
    logits, labels, *, pos_weight=None, reduction: str = "none", validate=False
):
    r"""Binary cross-entropy on logits  L(x; y) = −w·y ln σ(x) − (1 − y) ln(1 − σ(x)).

    Computed as (1 − y)·S⁺(x) + w·y·S⁺(−x) with S⁺ = softplus: no cancellation, accurate to
    a few ulp for every logit including ±1e30 and ±max; the limits at x = ±inf are used
    (L(+inf; 1) = 0, L(−inf; 1) = +inf).

    Derivative (`sigmoid_binary_cross_entropy_grad`): ∂L/∂x = σ(x) − y for w = 1, in general
    (1 − y)σ(x) − w·y·σ(−x); ∂L/∂y = w·S⁺(−x) − S⁺(x).

    Args:
      logits: floating array `[...]`.
      labels: floating labels in [0, 1] (soft labels allowed), exactly the same shape
        (a (N, 1) vs (N,) mismatch raises instead of broadcasting to (N, N)).
      pos_weight: weight w of the positive term (torch's `pos_weight`): None (1), a scalar,
        or an array equal to a trailing part of `logits.shape` (e.g. per class `[classes]`).
      reduction: "none", "mean" or "sum".
      validate: checked mode: labels outside [0, 1] or NaN raise under `jaxsoft.checked`.

    Returns:
      Losses `[...]` in the logits' dtype (bf16/f16 computed in float32, rounded once).
      Labels outside [0, 1] give NaN loss and gradient.

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.sigmoid_binary_cross_entropy(jnp.array([0.0, 100.0]), jnp.array([1.0, 0.0]))
      Array([  0.6931472, 100.       ], dtype=float32)
    """
    fn = "sigmoid_binary_cross_entropy"
    (x, y), dtype = c.floats(fn, ("logits", logits), ("labels", labels))
    c.same_shapes(fn, ("logits", x), ("labels", y))
    if pos_weight is None:
        w = jnp.ones_like(x)
    else:
        (w,), _ = c.floats(fn, ("pos_weight", pos_weight))
        w = w.astype(x.dtype)
        if w.ndim > x.ndim or x.shape[x.ndim - w.ndim :] != w.shape:
            raise ValueError(
                f"{fn}: pos_weight.shape {w.shape} must be () or a trailing part of "
                f"logits.shape {x.shape}"
            )
        w = jnp.broadcast_to(w, x.shape)
    c.check_range(validate, y, 0, 1, "labels", fn)
    c.check_finite_or_inf(validate, fn, logits=x)
    return c.finish(_sigmoid_binary_cross_entropy(x, y, w), dtype, reduction, fn)
