r"""Kullback–Leibler divergence, with targets as probabilities or as log-probabilities.

Argument order as optax: `kl_divergence(log_predictions, targets)` is KL(targets ‖ predictions)
= Σ_c t_c (ln t_c − log q_c), summed over the class axis only. Unlike optax the value is
finite wherever the mathematics is: 0·ln 0 = 0 for a target 0 (also when log q_c = −inf),
no NaN for a −inf log-target, and the gradient with respect to the target is finite at 0.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxsoft import _checks
from jaxsoft.losses import _common as c


def _prepare(fn, log_predictions, second, second_name, axis, where):
    (lq, t), dtype = c.floats(fn, ("log_predictions", log_predictions), (second_name, second))
    c.same_shapes(fn, ("log_predictions", lq), (second_name, t))
    ax = _checks.class_axis(lq, axis, fn)
    mask = _checks.as_mask(where, lq.shape, "where", fn)
    mask = jnp.ones(lq.shape, bool) if mask is None else mask
    return (*(jnp.moveaxis(a, ax, -1) for a in (lq, t, mask)), dtype)


# -------------------------------------------------------------------- targets as probabilities


def _bad_targets(targets, mask):
    ok = (targets >= 0) & (targets <= 1)
    return jnp.any(mask & ~ok, axis=-1, keepdims=True)


def kl_divergence_grad(log_predictions, targets, mask):
    """Closed-form partials of Σ t (ln t − log q): ∂L/∂log q = −t, ∂L/∂t = ln t − log q + 1.

    At t = 0 the one-sided derivative of t·ln t is −inf; we return **0** there (the limit of
    the log-target form e^l(l − log q + 1) as l → −inf). Any finite value gives the exact
    gradient through a softmax/exp producing t, whose Jacobian carries the factor t.
    """
    bad = _bad_targets(targets, mask)
    use = mask & (targets > 0)
    d_lq = jnp.where(mask, -targets, 0)
    lt = jnp.log(jnp.where(use, targets, 1))
    d_t = jnp.where(use, lt - jnp.where(use, log_predictions, 0) + 1, 0)
    return c.poison(bad, d_lq), c.poison(bad, d_t), None


@c.closed_form(kl_divergence_grad)
def _kl_divergence(log_predictions, targets, mask):
    use = mask & (targets > 0)
    t = jnp.where(use, targets, 1)
    terms = jnp.where(use, t * (jnp.log(t) - jnp.where(use, log_predictions, 0)), 0)
    return c.poison(_bad_targets(targets, mask)[..., 0], jnp.sum(terms, axis=-1))


def kl_divergence(
    log_predictions, targets, *, axis: int = -1, where=None, reduction: str = "none",
    validate=False,
):
    r"""KL divergence  L(log q; t) = Σ_c t_c (ln t_c − log q_c)  (optax's `kl_divergence`).

    Derivative (`kl_divergence_grad`): ∂L/∂log q_c = −t_c; ∂L/∂t_c = ln t_c − log q_c + 1.

    Conventions: a target t_c = 0 contributes 0 (even with log q_c = −inf) and its partial
    ∂L/∂t_c is returned as 0 (the true one-sided derivative is −inf; see
    `kl_divergence_grad`); t_c > 0 with log q_c = −inf gives +inf. Targets outside [0, 1] or
    NaN in a counted class give NaN loss and gradient (poison). `where` False classes are
    left out.

    Args:
      log_predictions: floating log-probabilities `[..., classes]`.
      targets: floating probabilities, exactly the same shape.
      axis: the class axis.
      where: optional boolean mask of classes to include, exactly the same shape.
      reduction: "none" (shape `[...]`), "mean" or "sum".
      validate: checked mode: targets outside [0, 1] or NaN inputs raise.

    Returns:
      Per-example divergences `[...]` in the log_predictions' dtype (bf16/f16 in float32).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.kl_divergence(jnp.log(jnp.array([0.5, 0.5])), jnp.array([1.0, 0.0]))
      Array(0.6931472, dtype=float32)
    """
    fn = "kl_divergence"
    lq, t, mask, dtype = _prepare(fn, log_predictions, targets, "targets", axis, where)
    if validate:
        c.check_range(validate, jnp.where(mask, t, 0), 0, 1, "targets", fn)
        c.check_finite_or_inf(validate, fn, log_predictions=jnp.where(mask, lq, 0))
    return c.finish(_kl_divergence(lq, t, mask), dtype, reduction, fn)


# ---------------------------------------------------------------- targets as log-probabilities


def _bad_log_targets(log_targets, mask):
    return jnp.any(mask & ~(log_targets <= 0), axis=-1, keepdims=True)


def kl_divergence_with_log_targets_grad(log_predictions, log_targets, mask):
    """Closed-form partials of Σ e^l (l − log q): ∂L/∂log q = −e^l, ∂L/∂l = e^l (l − log q + 1).

    At l = −inf both are exactly 0 (the limit).
    """
    bad = _bad_log_targets(log_targets, mask)
    use = mask & (log_targets > -jnp.inf)
    t = jnp.where(use, jnp.exp(log_targets), 0)
    lt = jnp.where(use, log_targets, 0)
    d_lt = jnp.where(use, t * (lt - jnp.where(use, log_predictions, 0) + 1), 0)
    return c.poison(bad, -t), c.poison(bad, d_lt), None


@c.closed_form(kl_divergence_with_log_targets_grad)
def _kl_divergence_with_log_targets(log_predictions, log_targets, mask):
    use = mask & (log_targets > -jnp.inf)
    lt = jnp.where(use, log_targets, 0)
    terms = jnp.where(use, jnp.exp(lt) * (lt - jnp.where(use, log_predictions, 0)), 0)
    return c.poison(_bad_log_targets(log_targets, mask)[..., 0], jnp.sum(terms, axis=-1))


def kl_divergence_with_log_targets(
    log_predictions, log_targets, *, axis: int = -1, where=None, reduction: str = "none",
    validate=False,
):
    r"""KL divergence with log-targets  L = Σ_c e^{l_c} (l_c − log q_c)  (as optax).

    Derivative (`kl_divergence_with_log_targets_grad`): ∂L/∂log q_c = −e^{l_c},
    ∂L/∂l_c = e^{l_c}(l_c − log q_c + 1).

    Conventions: a log-target l_c = −inf (target 0) contributes 0 with both partials exactly 0
    (the limits), also when log q_c = −inf; no NaN. Log-targets above 0 (targets > 1) or NaN in
    a counted class give NaN loss and gradient (poison). `where` False classes are left out.

    Args:
      log_predictions: floating log-probabilities `[..., classes]`.
      log_targets: floating log-probabilities of the targets, exactly the same shape.
      axis: the class axis.
      where: optional boolean mask of classes to include, exactly the same shape.
      reduction: "none" (shape `[...]`), "mean" or "sum".
      validate: checked mode: log-targets above 0 or NaN inputs raise.

    Returns:
      Per-example divergences `[...]` in the log_predictions' dtype (bf16/f16 in float32).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> lq = jnp.log(jnp.array([0.5, 0.5]))
      >>> jaxsoft.kl_divergence_with_log_targets(lq, jnp.array([0.0, -jnp.inf]))
      Array(0.6931472, dtype=float32)
    """
    fn = "kl_divergence_with_log_targets"
    lq, lt, mask, dtype = _prepare(fn, log_predictions, log_targets, "log_targets", axis, where)
    if validate:
        c.check_range(validate, jnp.where(mask, lt, 0), -jnp.inf, 0, "log_targets", fn)
        c.check_finite_or_inf(validate, fn, log_predictions=jnp.where(mask, lq, 0))
    return c.finish(_kl_divergence_with_log_targets(lq, lt, mask), dtype, reduction, fn)
