r"""Elementwise activations, each with its closed-form derivative beside it.

Every activation `f` is a `jax.custom_jvp` whose tangent rule is the closed form `f_grad`
defined right under it, so `jax.grad`, `jax.jvp`, `jax.jacfwd` all use the formula from the
notes. Derivatives are written in forms that stay accurate in the tails (NUMERICS.md §1):
sigmoid' = σ(x)σ(−x) rather than σ(1 − σ), which is exactly 0 from x = 17 on in float32.

Dtypes: bfloat16/float16 inputs are computed in float32 and rounded once to the input dtype;
float32 and float64 are computed in their own precision. The result has the input's dtype.
"""

from __future__ import annotations

import functools
import inspect

import jax
import jax.numpy as jnp

from jaxsoft import _checks


def _elementwise(fn):
    """Public wrapper: check the dtype, compute in the compute dtype, round back once.

    Float parameters (slopes, alphas, betas) are cast to the compute dtype; bool parameters
    (e.g. gelu's `approximate`) are passed through as static Python values.
    """
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        x, *params = bound.arguments.values()
        x = _checks.as_float(x, "x", fn.__name__)
        ct = _checks.compute_dtype(x.dtype)
        params = [p if isinstance(p, bool) else jnp.asarray(p, ct) for p in params]
        return fn(x.astype(ct), *params).astype(x.dtype)

    return wrapper


# --------------------------------------------------------------------------- sigmoid family


@jax.custom_jvp
def _sigmoid(x):
    # 1/(1 + e^{-x}) for x >= 0 and e^x/(1 + e^x) for x < 0: no overflow, full relative accuracy.
    e = jnp.exp(-jnp.abs(x))
    return jnp.where(x >= 0, 1.0, e) / (1.0 + e)


def sigmoid_grad(x):
    """Closed-form derivative of the logistic function: σ'(x) = σ(x)·σ(−x).

    Equal to σ(1 − σ) (Opgave 71) but accurate in both tails, where 1 − σ(x) rounds to 0.
    """
    return _sigmoid(x) * _sigmoid(-x)


_sigmoid.defjvps(lambda t, y, x: sigmoid_grad(x) * t)


@_elementwise
def sigmoid(x):
    r"""Logistic sigmoid  σ(x) = 1 / (1 + e^{−x}).

    Derivative: σ'(x) = σ(x)·σ(−x) = σ(x)(1 − σ(x)) (`sigmoid_grad`).

    Conventions: σ(±inf) = 1, 0 with derivative 0; NaN propagates. Relative accuracy is kept
    in both tails (σ(−100) ≈ 3.7e-44 is not rounded to 0 in float64).

    Args:
      x: floating array of any shape.

    Returns:
      σ(x), same shape and dtype as `x` (bf16/f16 computed in float32, rounded once).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.sigmoid(jnp.array([-1.0, 0.0, 1.0]))
      Array([0.26894143, 0.5       , 0.7310586 ], dtype=float32)
    """
    return _sigmoid(x)


@jax.custom_jvp
def _softplus(x):
    # log(1 + e^x) = max(x, 0) + log1p(e^{-|x|}): no overflow, no cancellation.
    return jnp.maximum(x, 0.0) + jnp.log1p(jnp.exp(-jnp.abs(x)))


def softplus_grad(x):
    """Closed-form derivative of softplus: σ(x)."""
    return _sigmoid(x)


_softplus.defjvps(lambda t, y, x: softplus_grad(x) * t)


@_elementwise
def softplus(x):
    r"""Softplus  S⁺(x) = log(1 + e^x), the smooth relu ("hardplus", seed 000 §4.5).

    Derivative: S⁺'(x) = σ(x) (`softplus_grad`).

    Conventions: S⁺(−inf) = 0, S⁺(+inf) = +inf, derivatives 0 and 1.

    Args:
      x: floating array of any shape.

    Returns:
      S⁺(x), same shape and dtype as `x`.

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.softplus(jnp.array([-100.0, 0.0, 100.0]))
      Array([3.7835059e-44, 6.9314718e-01, 1.0000000e+02], dtype=float32)
    """
    return _softplus(x)
