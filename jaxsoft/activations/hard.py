"""Piecewise-linear ("hard") variants: hard_sigmoid, hard_tanh, hard_silu."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsoft.activations._numerics import (
    _elementwise,
    _finite,
    _nan_to,
)
from jaxsoft.activations.rectifiers import _relu6, relu6_grad

# --------------------------------------------------------------------------- hard variants


@jax.custom_jvp
def _hard_sigmoid(x):
    return _relu6(x + 3.0) / 6.0


def hard_sigmoid_grad(x):
    """Closed-form derivative of hard_sigmoid: 1/6 on (−3, 3), 0 elsewhere and at ±3."""
    return relu6_grad(x + 3.0) / 6.0


_hard_sigmoid.defjvps(lambda t, y, x: hard_sigmoid_grad(x) * t)


@_elementwise
def hard_sigmoid(x):
    r"""Hard sigmoid  relu6(x + 3)/6, a piecewise-linear σ.

    Derivative: 1/6 on (−3, 3), else 0 (`hard_sigmoid_grad`); 0 at the kinks ±3 (as jax.nn).

    Args:
      x: floating array of any shape.

    Returns:
      same shape and dtype as `x` (bf16/f16 computed in float32, rounded once).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.hard_sigmoid(jnp.array([-4.0, 0.0, 1.5, 4.0]))
      Array([0.  , 0.5 , 0.75, 1.  ], dtype=float32)
    """
    return _hard_sigmoid(x)


@jax.custom_jvp
def _hard_tanh(x):
    return jnp.clip(x, -1.0, 1.0)


def hard_tanh_grad(x):
    """Closed-form derivative of hard_tanh: 1 on [−1, 1], 0 outside (NaN at NaN)."""
    return _nan_to(x, jnp.where(jnp.abs(x) <= 1, 1.0, 0.0))


_hard_tanh.defjvps(lambda t, y, x: hard_tanh_grad(x) * t)


@_elementwise
def hard_tanh(x):
    r"""Hard tanh  clip(x, −1, 1).

    Derivative: 1 on [−1, 1], 0 outside (`hard_tanh_grad`); 1 at the kinks ±1, as jax.nn.

    Args:
      x: floating array of any shape.

    Returns:
      same shape and dtype as `x` (bf16/f16 computed in float32, rounded once).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.hard_tanh(jnp.array([-2.0, 0.5, 2.0]))
      Array([-1. ,  0.5,  1. ], dtype=float32)
    """
    return _hard_tanh(x)


@jax.custom_jvp
def _hard_silu(x):
    xs = _finite(x)
    return jnp.where(jnp.isinf(x), jnp.maximum(x, 0.0), xs * (_relu6(xs + 3.0) / 6.0))


def hard_silu_grad(x):
    """Closed-form derivative of hard_silu: 0 for x ≤ −3, (2x + 3)/6 on (−3, 3), 1 for x ≥ 3."""
    g = jnp.where(x <= -3, 0.0, jnp.where(x >= 3, 1.0, (2.0 * x + 3.0) / 6.0))
    return _nan_to(x, g)


_hard_silu.defjvps(lambda t, y, x: hard_silu_grad(x) * t)


@_elementwise
def hard_silu(x):
    r"""Hard SiLU (hard swish)  x·relu6(x + 3)/6 (Howard et al. 2019).

    Derivative: 0 for x ≤ −3, (2x + 3)/6 on (−3, 3), 1 for x ≥ 3 (`hard_silu_grad`); at the
    kinks we take the jax.nn values 0 (x = −3) and 1 (x = 3).

    Conventions: hard_silu(−inf) = 0 (jax.nn: NaN), hard_silu(+inf) = +inf.

    Args:
      x: floating array of any shape.

    Returns:
      same shape and dtype as `x` (bf16/f16 computed in float32, rounded once).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.hard_silu(jnp.array([-jnp.inf, -1.5, 1.0, 4.0]))
      Array([ 0.       , -0.375    ,  0.6666667,  4.       ], dtype=float32)
    """
    return _hard_silu(x)


hard_swish = hard_silu
hard_swish_grad = hard_silu_grad
