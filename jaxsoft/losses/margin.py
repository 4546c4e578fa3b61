r"""Margin losses: perceptron and hinge, binary (y ∈ {−1, +1}) and multiclass (integer labels).

The perceptron as a loss (seed 000 §4.5): L(ŷ; y) = max(−ŷ·y, 0) = relu(−ŷ·y) (Opgave 79),
a single identity neuron with this loss *is* Rosenblatt's perceptron.

Kink convention (all four losses): at the kink the point counts as a mistake / margin
violation, so the subgradient is the *active* one, −y (binary) or e_j* − e_y (multiclass),
never the ½ that `jnp.maximum` gives. Reason: Rosenblatt's rule updates when y·ŷ ≤ 0, and with
subgradient 0 at the kink a perceptron started from zero weights (ŷ = 0 everywhere) would
never move.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxsoft import _checks
from jaxsoft.losses import _common as c

# ------------------------------------------------------------------------------------ binary


def _bad_sign(targets):
    return ~((targets == 1) | (targets == -1))


def _binary_args(fn, predictor_outputs, targets):
    (p,), dtype = c.floats(fn, ("predictor_outputs", predictor_outputs))
    t = jnp.asarray(targets)
    if not (jnp.issubdtype(t.dtype, jnp.floating) or jnp.issubdtype(t.dtype, jnp.signedinteger)):
        raise TypeError(f"{fn}: targets must be a float or signed integer array of ±1, got "
                        f"dtype {t.dtype}")
    t = t.astype(p.dtype)
    c.same_shapes(fn, ("predictor_outputs", p), ("targets", t))
    return p, t, dtype


def _check_sign(validate, targets, fn):
    if validate:
        _checks.runtime_check(~_bad_sign(targets), f"{fn}: targets must be -1 or +1")


def perceptron_loss_grad(predictor_outputs, targets):
    """Closed-form partials of relu(−ŷ·y): (−y, −ŷ) where −ŷ·y ≥ 0 (kink included), else 0."""
    active = -predictor_outputs * targets >= 0
    bad = _bad_sign(targets)
    d_p = jnp.where(active, -targets, 0)
    d_t = jnp.where(active, -predictor_outputs, 0)
    return c.poison(bad, d_p), c.poison(bad, d_t)


@c.closed_form(perceptron_loss_grad)
def _perceptron_loss(predictor_outputs, targets):
    loss = jnp.maximum(-predictor_outputs * targets, 0)
    return c.poison(_bad_sign(targets), loss)


def perceptron_loss(predictor_outputs, targets, *, reduction: str = "none", validate=False):
    r"""Perceptron loss  L(ŷ; y) = max(−ŷ·y, 0) = relu(−ŷ·y), y ∈ {−1, +1} (Opgave 79).

    Derivative (`perceptron_loss_grad`): ∂L/∂ŷ = −y where ŷ·y ≤ 0, else 0. At the kink
    ŷ·y = 0 the subgradient is **−y** (the point counts as a mistake, see the module doc).
    Targets other than ±1 (or NaN) give NaN loss and gradient (poison).

    Args:
      predictor_outputs: floating outputs ŷ of the decision function `[...]`.
      targets: ±1 labels (float or signed integer), exactly the same shape.
      reduction: "none", "mean" or "sum".
      validate: checked mode: targets other than ±1 raise under `jaxsoft.checked`.

    Returns:
      Losses `[...]` in the outputs' dtype (bf16/f16 computed in float32, rounded once).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.perceptron_loss(jnp.array([2.0, -3.0, 0.5]), jnp.array([1, 1, -1]))
      Array([0. , 3. , 0.5], dtype=float32)
    """
    fn = "perceptron_loss"
    p, t, dtype = _binary_args(fn, predictor_outputs, targets)
    _check_sign(validate, t, fn)
    c.check_finite_or_inf(validate, fn, predictor_outputs=p)
    return c.finish(_perceptron_loss(p, t), dtype, reduction, fn)


def hinge_loss_grad(predictor_outputs, targets):
    """Closed-form partials of relu(1 − ŷ·y): (−y, −ŷ) where ŷ·y ≤ 1 (kink included), else 0."""
    active = predictor_outputs * targets <= 1
    bad = _bad_sign(targets)
    d_p = jnp.where(active, -targets, 0)
    d_t = jnp.where(active, -predictor_outputs, 0)
    return c.poison(bad, d_p), c.poison(bad, d_t)


@c.closed_form(hinge_loss_grad)
def _hinge_loss(predictor_outputs, targets):
    loss = jnp.maximum(1 - predictor_outputs * targets, 0)
    return c.poison(_bad_sign(targets), loss)


def hinge_loss(predictor_outputs, targets, *, reduction: str = "none", validate=False):
    r"""Hinge loss  L(ŷ; y) = max(1 − ŷ·y, 0), y ∈ {−1, +1} (optax's `hinge_loss`).

    Derivative (`hinge_loss_grad`): ∂L/∂ŷ = −y where ŷ·y ≤ 1, else 0; at the kink ŷ·y = 1 the
    subgradient is **−y** (a point on the margin counts as a violation). Targets other than
    ±1 (or NaN) give NaN loss and gradient (poison).

    Args:
      predictor_outputs: floating outputs ŷ `[...]`.
      targets: ±1 labels (float or signed integer), exactly the same shape.
      reduction: "none", "mean" or "sum".
      validate: checked mode: targets other than ±1 raise under `jaxsoft.checked`.

    Returns:
      Losses `[...]` in the outputs' dtype (bf16/f16 computed in float32, rounded once).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.hinge_loss(jnp.array([2.0, 0.5, 0.5]), jnp.array([1, 1, -1]))
      Array([0. , 0.5, 1.5], dtype=float32)
    """
    fn = "hinge_loss"
    p, t, dtype = _binary_args(fn, predictor_outputs, targets)
    _check_sign(validate, t, fn)
    c.check_finite_or_inf(validate, fn, predictor_outputs=p)
    return c.finish(_hinge_loss(p, t), dtype, reduction, fn)


# -------------------------------------------------------------------------------- multiclass


def _runner_up(scores, labels):
    """(index, value) of the best score among the classes j ≠ y (first index on ties)."""
    one_hot, valid = c.label_one_hot(labels, scores.shape[-1], scores.dtype)
    others = jnp.where(one_hot > 0, -jnp.inf, scores)
    j = jnp.argmax(others, axis=-1)
    best = jnp.take_along_axis(others, j[..., None], axis=-1)[..., 0]
    s_y = jnp.take_along_axis(
        scores, jnp.clip(labels, 0, scores.shape[-1] - 1)[..., None], axis=-1
    )[..., 0]
    return j, best, s_y, one_hot, valid


def _multiclass_margin_grad(scores, labels, margin):
    j, best, s_y, one_hot, valid = _runner_up(scores, labels)
    active = best + margin - s_y >= 0
    e_j, _ = c.label_one_hot(j, scores.shape[-1], scores.dtype)
    g = jnp.where(active[..., None], e_j - one_hot, 0)
    return c.poison(~valid[..., None], g), None


def _multiclass_margin(scores, labels, margin):
    _, best, s_y, _, valid = _runner_up(scores, labels)
    return c.poison(~valid, jnp.maximum(best + margin - s_y, 0))


def multiclass_perceptron_loss_grad(scores, labels):
    """Closed-form subgradient of max_j s_j − s_y: e_j* − e_y if s_j* ≥ s_y, else 0, where
    j* is the best class other than y (first on ties). A tie with y counts as a mistake."""
    return _multiclass_margin_grad(scores, labels, 0)


@c.closed_form(multiclass_perceptron_loss_grad)
def _multiclass_perceptron_loss(scores, labels):
    return _multiclass_margin(scores, labels, 0)


def multiclass_hinge_loss_grad(scores, labels):
    """Closed-form subgradient of max_j (s_j + 1 − [j = y]) − s_y: e_j* − e_y if
    s_j* + 1 ≥ s_y, else 0 (j* the best class other than y, first on ties)."""
    return _multiclass_margin_grad(scores, labels, 1)


@c.closed_form(multiclass_hinge_loss_grad)
def _multiclass_hinge_loss(scores, labels):
    return _multiclass_margin(scores, labels, 1)


def _multiclass(fn, core, scores, labels, axis, reduction, validate):
    (s,), dtype = c.floats(fn, ("scores", scores))
    ax = _checks.class_axis(s, axis, fn)
    labels = c.integer_labels(labels, s, ax, fn)
    s = jnp.moveaxis(s, ax, -1)
    c.check_labels(validate, labels, s.shape[-1], fn)
    c.check_finite_or_inf(validate, fn, scores=s)
    return c.finish(core(s, labels), dtype, reduction, fn)


def multiclass_perceptron_loss(
    scores, labels, *, axis: int = -1, reduction: str = "none", validate=False
):
    r"""Multiclass perceptron loss  L(s; y) = max_j s_j − s_y = relu(max_{j≠y} s_j − s_y).

    As optax's `multiclass_perceptron_loss` (Collins 2002). Derivative
    (`multiclass_perceptron_loss_grad`): e_j* − e_y when the best other class j* scores at
    least s_y (a tie counts as a mistake, as in the binary perceptron), else 0. A label outside
    [0, classes) gives NaN loss and gradient (poison); with `validate=True` it raises.

    Args:
      scores: floating scores `[..., classes]`.
      labels: integer labels, shape `scores.shape` without the class axis.
      axis: the class axis.
      reduction: "none" (shape `[...]`), "mean" or "sum".
      validate: checked mode: out-of-range labels or NaN scores raise.

    Returns:
      Per-example losses `[...]` in the scores' dtype (bf16/f16 computed in float32).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.multiclass_perceptron_loss(jnp.array([[1.0, 3.0, 2.0]]), jnp.array([0]))
      Array([2.], dtype=float32)
    """
    return _multiclass(
        "multiclass_perceptron_loss", _multiclass_perceptron_loss, scores, labels, axis,
        reduction, validate,
    )


def multiclass_hinge_loss(
    scores, labels, *, axis: int = -1, reduction: str = "none", validate=False
):
    r"""Multiclass hinge loss  L(s; y) = max_j (s_j + 1 − [j = y]) − s_y (as optax).

    Equal to relu(max_{j≠y} s_j + 1 − s_y). Derivative (`multiclass_hinge_loss_grad`):
    e_j* − e_y when s_j* + 1 ≥ s_y (the kink counts as a violation), else 0. A label outside
    [0, classes) gives NaN loss and gradient (poison); with `validate=True` it raises.

    Args:
      scores: floating scores `[..., classes]`.
      labels: integer labels, shape `scores.shape` without the class axis.
      axis: the class axis.
      reduction: "none" (shape `[...]`), "mean" or "sum".
      validate: checked mode: out-of-range labels or NaN scores raise.

    Returns:
      Per-example losses `[...]` in the scores' dtype (bf16/f16 computed in float32).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.multiclass_hinge_loss(jnp.array([[1.0, 3.0, 2.0]]), jnp.array([1]))
      Array([0.], dtype=float32)
    """
    return _multiclass(
        "multiclass_hinge_loss", _multiclass_hinge_loss, scores, labels, axis, reduction,
        validate,
    )
