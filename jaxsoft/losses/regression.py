r"""Regression losses: squared, l2, absolute, Huber (elementwise) and the quadratic cost.

Each loss `f` has a private `custom_jvp` core whose tangent is the closed form `f_grad`
defined right beside it (partials with respect to predictions and targets). The public
functions check dtypes and shapes at trace time (exactly equal shapes, no broadcasting),
compute bf16/f16 in float32 and round the result once to the predictions' dtype.
`targets=None` means targets of zero (as optax).
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxsoft.losses import _common as c

# ------------------------------------------------------------------------------ squared error


def squared_error_grad(predictions, targets):
    """Closed-form partials of (p − t)²: (2(p − t), −2(p − t))."""
    r = predictions - targets
    return 2 * r, -2 * r


@c.closed_form(squared_error_grad)
def _squared_error(predictions, targets):
    return jnp.square(predictions - targets)


def _regression_args(fn, predictions, targets):
    if targets is None:
        (p,), dtype = c.floats(fn, ("predictions", predictions))
        return p, jnp.zeros_like(p), dtype
    (p, t), dtype = c.floats(fn, ("predictions", predictions), ("targets", targets))
    c.same_shapes(fn, ("predictions", p), ("targets", t))
    return p, t, dtype


def squared_error(predictions, targets=None, *, reduction: str = "none", validate=False):
    r"""Squared error  L(p; t) = (p − t)², elementwise (optax's `squared_error`).

    Derivative: ∂L/∂p = 2(p − t), ∂L/∂t = −2(p − t) (`squared_error_grad`).

    Args:
      predictions: floating array `[...]`.
      targets: floating array of exactly the same shape, or None for zeros.
      reduction: "none" (per element), "mean" or "sum".
      validate: checked mode: NaN inputs raise under `jaxsoft.checked`.

    Returns:
      Losses `[...]` (or a scalar when reduced) in the predictions' dtype; bf16/f16 are
      computed in float32 and rounded once.

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.squared_error(jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0]))
      Array([1., 4.], dtype=float32)
    """
    fn = "squared_error"
    p, t, dtype = _regression_args(fn, predictions, targets)
    c.check_finite_or_inf(validate, fn, predictions=p, targets=t)
    return c.finish(_squared_error(p, t), dtype, reduction, fn)


def l2_loss(predictions, targets=None, *, reduction: str = "none", validate=False):
    r"""L2 loss  L(p; t) = ½(p − t)², elementwise (optax's `l2_loss`).

    Derivative: ∂L/∂p = p − t (half of `squared_error_grad`).

    Args:
      predictions: floating array `[...]`.
      targets: floating array of exactly the same shape, or None for zeros.
      reduction: "none", "mean" or "sum".
      validate: checked mode: NaN inputs raise under `jaxsoft.checked`.

    Returns:
      Losses in the predictions' dtype (bf16/f16 computed in float32, rounded once).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.l2_loss(jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0]))
      Array([0.5, 2. ], dtype=float32)
    """
    fn = "l2_loss"
    p, t, dtype = _regression_args(fn, predictions, targets)
    c.check_finite_or_inf(validate, fn, predictions=p, targets=t)
    return c.finish(0.5 * _squared_error(p, t), dtype, reduction, fn)


# ----------------------------------------------------------------------------- absolute error


def absolute_error_grad(predictions, targets):
    """Closed-form partials of |p − t|: (sign(p − t), −sign(p − t)); 0 at p = t."""
    s = jnp.sign(predictions - targets)
    return s, -s


@c.closed_form(absolute_error_grad)
def _absolute_error(predictions, targets):
    return jnp.abs(predictions - targets)


def absolute_error(predictions, targets=None, *, reduction: str = "none", validate=False):
    r"""Absolute error  L(p; t) = |p − t|, elementwise ("mean" reduction gives the MAE).

    Derivative: ∂L/∂p = sign(p − t). Convention at the kink p = t: the symmetric
    subgradient **0** (never the ½ of `jnp.maximum`-style code); NaN propagates.

    Args:
      predictions: floating array `[...]`.
      targets: floating array of exactly the same shape, or None for zeros.
      reduction: "none", "mean" or "sum".
      validate: checked mode: NaN inputs raise under `jaxsoft.checked`.

    Returns:
      Losses in the predictions' dtype (bf16/f16 computed in float32, rounded once).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.absolute_error(jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0]), reduction="mean")
      Array(1.5, dtype=float32)
    """
    fn = "absolute_error"
    p, t, dtype = _regression_args(fn, predictions, targets)
    c.check_finite_or_inf(validate, fn, predictions=p, targets=t)
    return c.finish(_absolute_error(p, t), dtype, reduction, fn)


# --------------------------------------------------------------------------------- huber loss


def huber_loss_grad(predictions, targets, delta):
    """Closed-form partials of Huber: r clipped to [−δ, δ] for p (minus that for t), and
    ∂L/∂δ = max(|r| − δ, 0)."""
    r = predictions - targets
    g = jnp.clip(r, -delta, delta)
    return g, -g, jnp.maximum(jnp.abs(r) - delta, 0)


@c.closed_form(huber_loss_grad)
def _huber_loss(predictions, targets, delta):
    r = jnp.abs(predictions - targets)
    # ½r² inside |r| ≤ δ, δ(|r| − ½δ) outside: the two branches meet with equal slope δ.
    quadratic = jnp.minimum(r, delta)
    return 0.5 * quadratic * quadratic + delta * (r - quadratic)


def huber_loss(
    predictions, targets=None, *, delta=1.0, reduction: str = "none", validate=False
):
    r"""Huber loss, elementwise (optax's `huber_loss`, same arguments).

    L(p; t) = ½r² for |r| ≤ δ, δ(|r| − ½δ) otherwise, with r = p − t.

    Derivative: ∂L/∂p = clip(r, −δ, δ) (`huber_loss_grad`); continuous, so there is no kink
    convention to choose. `delta` must be positive; a non-positive traced delta gives NaN.

    Args:
      predictions: floating array `[...]`.
      targets: floating array of exactly the same shape, or None for zeros.
      delta: positive scalar, the switch point from quadratic to linear.
      reduction: "none", "mean" or "sum".
      validate: checked mode: NaN inputs raise under `jaxsoft.checked`.

    Returns:
      Losses in the predictions' dtype (bf16/f16 computed in float32, rounded once).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.huber_loss(jnp.array([0.5, 3.0]), delta=1.0)
      Array([0.125, 2.5  ], dtype=float32)
    """
    fn = "huber_loss"
    p, t, dtype = _regression_args(fn, predictions, targets)
    if isinstance(delta, (int, float)) and not delta > 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta!r}")
    d = jnp.asarray(delta, p.dtype)
    if d.ndim != 0:
        raise ValueError(f"huber_loss: delta must be a scalar, got shape {d.shape}")
    c.check_finite_or_inf(validate, fn, predictions=p, targets=t)
    loss = _huber_loss(p, t, jnp.broadcast_to(c.poison(d <= 0, d), p.shape))
    return c.finish(loss, dtype, reduction, fn)


# ----------------------------------------------------------------------------- quadratic cost


def quadratic_loss_grad(predictions, targets):
    """Closed-form partials of ½Σ(a − y)²: (a − y, −(a − y))."""
    r = predictions - targets
    return r, -r


@c.closed_form(quadratic_loss_grad)
def _quadratic_loss(predictions, targets):
    return 0.5 * jnp.sum(jnp.square(predictions - targets), axis=-1)


def quadratic_loss(
    predictions, targets, *, axis: int = -1, reduction: str = "none", validate=False
):
    r"""Quadratic cost of one example  C(a; y) = ½ Σ_j (a_j − y_j)² over the output axis.

    The seeds' per-example quadratic cost; its derivative is the textbook ∂C/∂a = a − y
    (`quadratic_loss_grad`). The Dutch notes (§4.4, Opgave 73) use Σ(ŷ − y)² without the ½,
    which is `2 * quadratic_loss` = `squared_error(...).sum(axis)`.

    Args:
      predictions: floating array `[..., outputs]`.
      targets: floating array of exactly the same shape.
      axis: the output axis summed over.
      reduction: "none" (one loss per example, shape `[...]`), "mean" or "sum".
      validate: checked mode: NaN inputs raise under `jaxsoft.checked`.

    Returns:
      Per-example costs `[...]` in the predictions' dtype (bf16/f16 computed in float32).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.quadratic_loss(jnp.array([0.1, 0.4, 0.2, 0.3]), jnp.array([0., 1., 0., 0.]))
      Array(0.25, dtype=float32)
    """
    fn = "quadratic_loss"
    (p, t), dtype = c.floats(fn, ("predictions", predictions), ("targets", targets))
    c.same_shapes(fn, ("predictions", p), ("targets", t))
    ax = c._checks.class_axis(p, axis, fn)
    c.check_finite_or_inf(validate, fn, predictions=p, targets=t)
    loss = _quadratic_loss(jnp.moveaxis(p, ax, -1), jnp.moveaxis(t, ax, -1))
    return c.finish(loss, dtype, reduction, fn)
