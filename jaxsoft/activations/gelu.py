"""Gaussian error linear unit, exact (erf) and tanh forms."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsoft import _checks
from jaxsoft.activations._numerics import (
    _c_exp,
    _elementwise,
    _finite,
    _x_sigmoid,
)
from jaxsoft.activations.sigmoidal import _sigmoid

# ------------------------------------------------------------------------------------ gelu

_SQRT_2_OVER_PI = 0.7978845608028654
_GELU_K = 0.044715
_INV_SQRT_2 = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327


def _gelu_u(x):
    """u = √(2/π)(x + 0.044715x³) on x clipped to ±1e6 (σ(2u) has saturated long before)."""
    xc = jnp.clip(x, -1e6, 1e6)
    return xc, _SQRT_2_OVER_PI * xc * (1.0 + _GELU_K * xc * xc)


@jax.custom_jvp
def _gelu_tanh(x):
    # ½x(1 + tanh u) = x·σ(2u): no cancellation of 1 + tanh u for x < 0.
    xs = _finite(x)
    _, u = _gelu_u(xs)
    return jnp.where(jnp.isinf(x), jnp.maximum(x, 0.0), _x_sigmoid(xs, 2.0 * u))


def _gelu_tanh_grad(x):
    xs = _finite(x)
    xc, u = _gelu_u(xs)
    du = _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_K * xc * xc)
    g = _x_sigmoid(1.0 + 2.0 * xc * du * _sigmoid(-2.0 * u), 2.0 * u)
    return jnp.where(jnp.isinf(x), jnp.where(x > 0, 1.0, 0.0), g)


_gelu_tanh.defjvps(lambda t, y, x: _gelu_tanh_grad(x) * t)


def _square2(x):
    """x² = hi + lo exactly (Dekker's product; XLA on CPU does not contract it into an FMA)."""
    split = 4097.0 if x.dtype == jnp.float32 else 134217729.0
    c = split * x
    xh = c - (c - x)
    xl = x - xh
    hi = x * x
    lo = ((xh * xh - hi) + 2.0 * xh * xl) + xl * xl
    return hi, lo


def _gauss(x):
    """φ(x) = e^{−x²/2}/√(2π), with x² split exactly so the tail keeps relative accuracy."""
    xc = jnp.clip(x, -1e3, 1e3)
    hi, lo = _square2(xc)
    return _c_exp(_INV_SQRT_2PI, -0.5 * hi) * (1.0 - 0.5 * lo)


def _ndtr(x):
    """Φ(x) = erfc(−x/√2)/2."""
    return 0.5 * jax.scipy.special.erfc(-_INV_SQRT_2 * x)


@jax.custom_jvp
def _gelu_erf(x):
    xs = _finite(x)
    return jnp.where(jnp.isinf(x), jnp.maximum(x, 0.0), xs * _ndtr(xs))


def _gelu_erf_grad(x):
    xs = _finite(x)
    g = _ndtr(xs) + xs * _gauss(xs)
    return jnp.where(jnp.isinf(x), jnp.where(x > 0, 1.0, 0.0), g)


_gelu_erf.defjvps(lambda t, y, x: _gelu_erf_grad(x) * t)


def gelu_grad(x, approximate=True):
    """Closed-form derivative of gelu.

    Exact: Φ(x) + x·φ(x). Tanh form: σ(2u)(1 + 2x·u'·σ(−2u)), u = √(2/π)(x + 0.044715x³),
    u' = √(2/π)(1 + 3·0.044715x²). Both vanish near x ≈ −0.75.
    """
    return _gelu_tanh_grad(x) if approximate else _gelu_erf_grad(x)


def gelu(x, approximate=True):
    r"""Gaussian error linear unit (Hendrycks & Gimpel 2016), jax.nn's signature.

    Exact (`approximate=False`): x·Φ(x) = (x/2)·erfc(−x/√2), derivative Φ(x) + x·φ(x).
    Tanh form (default): ½x(1 + tanh(√(2/π)(x + 0.044715x³))), computed as x·σ(2u) so that
    1 + tanh u does not cancel for x < 0; derivative σ(2u)(1 + 2x·u'σ(−2u)) (`gelu_grad`).

    Conventions: gelu(−inf) = 0, gelu(+inf) = +inf, derivatives 0 and 1; NaN propagates.
    `approximate` is a static Python bool.

    Accuracy: ≤ 4 ulp for x ≥ −1. Further left the rounding of the argument (x/√2, resp.
    u(x)) is amplified by the Gaussian decay and the error grows like x² ulp (≈ 120 ulp at
    x = −10 in float32), where the value is already tiny; the tanh form's derivative likewise
    (the exact form's derivative stays ≤ 8 ulp).

    Args:
      x: floating array of any shape.
      approximate: use the tanh approximation (True, as jax.nn) or the exact erf form.

    Returns:
      same shape and dtype as `x` (bf16/f16 computed in float32, rounded once).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.gelu(jnp.array([-jnp.inf, -1.0, 1.0]), approximate=False)
      Array([ 0.        , -0.15865527,  0.8413447 ], dtype=float32)
    """
    if not isinstance(approximate, bool):
        raise TypeError(f"gelu: approximate must be a Python bool, got {approximate!r}")
    _checks.as_float(x, "x", "gelu")
    return _gelu_public(x, approximate)


@_elementwise
def _gelu_public(x, approximate):
    return _gelu_tanh(x) if approximate else _gelu_erf(x)
