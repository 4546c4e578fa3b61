"""Rectifiers and friends: identity, sign, relu, relu6, leaky_relu, elu, celu, selu, soft_sign,
squareplus."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsoft.activations._numerics import (
    _c_exp,
    _elementwise,
    _nan_to,
)

# ----------------------------------------------------------------------------- rectifiers


@jax.custom_jvp
def _identity(x):
    return x


def identity_grad(x):
    """Closed-form derivative of the identity: 1 (NaN at NaN)."""
    return _nan_to(x, jnp.ones_like(x))


_identity.defjvps(lambda t, y, x: identity_grad(x) * t)


@_elementwise
def identity(x):
    r"""Identity  f(x) = x, the linear activation of regression outputs.

    Derivative: 1 everywhere (`identity_grad`), NaN at NaN.

    Args:
      x: floating array of any shape.

    Returns:
      `x`, same shape and dtype.

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.identity(jnp.array([-1.0, 0.0, jnp.inf]))
      Array([-1.,  0., inf], dtype=float32)
    """
    return _identity(x)


@jax.custom_jvp
def _sign(x):
    return jnp.sign(x)


def sign_grad(x):
    """Closed-form derivative of sign: 0 everywhere, including at 0 (NaN at NaN)."""
    return _nan_to(x, jnp.zeros_like(x))


_sign.defjvps(lambda t, y, x: sign_grad(x) * t)


@_elementwise
def sign(x):
    r"""Perceptron step  sgn(x) ∈ {−1, 0, +1} (seed 000 §4: the perceptron's activation).

    Derivative: 0 everywhere (`sign_grad`). At the jump x = 0 we choose 0 as well — the
    distributional derivative 2δ(x) has no finite value, and 0 is what gradient descent
    through a perceptron sees ("the slope of the signum is almost everywhere exactly 0").
    NaN propagates in value and derivative.

    Args:
      x: floating array of any shape.

    Returns:
      sgn(x) (sgn(±0) = ±0), same shape and dtype as `x`.

    Example:
      >>> import jax, jax.numpy as jnp, jaxsoft
      >>> jaxsoft.sign(jnp.array([-2.0, 0.0, 3.0]))
      Array([-1.,  0.,  1.], dtype=float32)
      >>> jax.grad(jaxsoft.sign)(0.0)
      Array(0., dtype=float32, weak_type=True)
    """
    return _sign(x)


@jax.custom_jvp
def _relu(x):
    return jnp.maximum(x, 0.0)  # propagates NaN


def relu_grad(x):
    """Closed-form derivative of relu: (1 + sgn(x))/2 for x ≠ 0 (Opgave 76), 0 at x = 0.

    The seed's formula gives ½ at 0; we choose 0 as jax.nn does. NaN at NaN.
    """
    return jnp.where(x == 0, 0.0, (1.0 + jnp.sign(x)) / 2.0)


_relu.defjvps(lambda t, y, x: relu_grad(x) * t)


@_elementwise
def relu(x):
    r"""Rectified linear unit  relu(x) = max(x, 0).

    Derivative: (1 + sgn(x))/2 away from 0 (seed 000, Opgave 76) (`relu_grad`).

    Conventions: relu'(0) = 0, as in jax.nn (the seed's (1 + sgn)/2 gives ½ there; 0 keeps
    sparse activations sparse and is a valid subgradient). relu'(NaN) = NaN,
    relu(±inf) = +inf, 0 with derivatives 1, 0.

    Args:
      x: floating array of any shape.

    Returns:
      max(x, 0), same shape and dtype as `x`.

    Example:
      >>> import jax, jax.numpy as jnp, jaxsoft
      >>> jaxsoft.relu(jnp.array([-2.0, 0.0, 3.0]))
      Array([0., 0., 3.], dtype=float32)
      >>> jax.grad(jaxsoft.relu)(0.0)
      Array(0., dtype=float32, weak_type=True)
    """
    return _relu(x)


@jax.custom_jvp
def _relu6(x):
    return jnp.minimum(jnp.maximum(x, 0.0), 6.0)


def relu6_grad(x):
    """Closed-form derivative of relu6: 1 on (0, 6), 0 elsewhere and at both kinks."""
    return _nan_to(x, jnp.where((x > 0) & (x < 6), 1.0, 0.0))


_relu6.defjvps(lambda t, y, x: relu6_grad(x) * t)


@_elementwise
def relu6(x):
    r"""Relu capped at 6  min(max(x, 0), 6).

    Derivative: 1 on (0, 6), else 0 (`relu6_grad`); 0 at both kinks x = 0 and x = 6
    (as jax.nn). NaN propagates.

    Args:
      x: floating array of any shape.

    Returns:
      min(max(x, 0), 6), same shape and dtype as `x`.

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.relu6(jnp.array([-1.0, 3.0, 9.0]))
      Array([0., 3., 6.], dtype=float32)
    """
    return _relu6(x)


@jax.custom_jvp
def _leaky_relu(x, negative_slope):
    return jnp.where(x >= 0, x, negative_slope * x)


def leaky_relu_grad(x, negative_slope=0.01):
    """Closed-form derivative of leaky relu in x: 1 for x ≥ 0, `negative_slope` below."""
    return _nan_to(x, jnp.where(x >= 0, 1.0, negative_slope))


def _leaky_relu_dslope(x, negative_slope):
    """∂/∂slope of leaky relu: min(x, 0); −max (not −inf) at x = −inf so 0·tangent is not NaN."""
    return jnp.where(x >= 0, 0.0, jnp.maximum(x, -jnp.finfo(x.dtype).max))


_leaky_relu.defjvps(
    lambda t, y, x, s: leaky_relu_grad(x, s) * t,
    lambda t, y, x, s: _leaky_relu_dslope(x, s) * t,
)


@_elementwise
def leaky_relu(x, negative_slope=0.01):
    r"""Leaky relu  x for x ≥ 0, negative_slope·x below.

    Derivative in x: 1 for x ≥ 0, `negative_slope` for x < 0 (`leaky_relu_grad`); at 0 we
    take 1, as jax.nn does. In `negative_slope`: min(x, 0) (the slope is trainable).

    Args:
      x: floating array of any shape.
      negative_slope: float, cast to the compute dtype.

    Returns:
      same shape and dtype as `x` (bf16/f16 computed in float32, rounded once).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.leaky_relu(jnp.array([-2.0, 0.0, 3.0]), negative_slope=0.2)
      Array([-0.4,  0. ,  3. ], dtype=float32)
    """
    return _leaky_relu(x, negative_slope)


@jax.custom_jvp
def _elu(x, alpha):
    # expm1 of min(x, 0): no overflow in the unselected branch, accurate near 0.
    return jnp.where(x > 0, x, alpha * jnp.expm1(jnp.minimum(x, 0.0)))


def elu_grad(x, alpha=1.0):
    """Closed-form derivative of elu in x: 1 for x > 0, α·exp(min(x, 0)) for x ≤ 0.

    exp(min(x, 0)) rather than y + α, which is exactly 0 from x = −20 on in float32.
    """
    return jnp.where(x > 0, 1.0, _c_exp(alpha, jnp.minimum(x, 0.0)))


def _elu_dalpha(x, alpha):
    """∂/∂α of elu: expm1(min(x, 0))."""
    return jnp.where(x > 0, 0.0, jnp.expm1(jnp.minimum(x, 0.0)))


_elu.defjvps(
    lambda t, y, x, a: elu_grad(x, a) * t,
    lambda t, y, x, a: _elu_dalpha(x, a) * t,
)


@_elementwise
def elu(x, alpha=1.0):
    r"""Exponential linear unit  x for x > 0, α(e^x − 1) for x ≤ 0 (seed 000, Opgave 78).

    Derivative in x: 1 for x > 0, α·e^x for x ≤ 0 (`elu_grad`); at 0 we take α (the left
    derivative, as jax.nn). In α: e^x − 1 for x ≤ 0 (α is trainable).

    Conventions: elu(−inf) = −α with derivative 0; elu(+inf) = +inf with derivative 1.

    Args:
      x: floating array of any shape.
      alpha: float, cast to the compute dtype.

    Returns:
      same shape and dtype as `x` (bf16/f16 computed in float32, rounded once).

    Example:
      >>> import jax, jax.numpy as jnp, jaxsoft
      >>> jaxsoft.elu(jnp.array([-jnp.inf, -1.0, 2.0]))
      Array([-1.        , -0.63212055,  2.        ], dtype=float32)
      >>> jax.grad(jaxsoft.elu)(-20.0)  # y + α would give exactly 0
      Array(2.0611537e-09, dtype=float32, weak_type=True)
    """
    return _elu(x, alpha)


@jax.custom_jvp
def _celu(x, alpha):
    u = jnp.maximum(jnp.minimum(x, 0.0) / alpha, -1e3)  # e^{-1e3} = 0: keeps u·e^u finite
    return jnp.where(x > 0, x, alpha * jnp.expm1(u))


def celu_grad(x, alpha=1.0):
    """Closed-form derivative of celu in x: 1 for x > 0, exp(x/α) for x ≤ 0."""
    u = jnp.maximum(jnp.minimum(x, 0.0) / alpha, -1e3)
    return jnp.where(x > 0, 1.0, _c_exp(1.0, u))


def _celu_dalpha(x, alpha):
    """∂/∂α of α(e^{x/α} − 1) = expm1(u) − u·e^u with u = x/α, for x ≤ 0."""
    u = jnp.maximum(jnp.minimum(x, 0.0) / alpha, -1e3)
    return jnp.where(x > 0, 0.0, jnp.expm1(u) - u * jnp.exp(u))


_celu.defjvps(
    lambda t, y, x, a: celu_grad(x, a) * t,
    lambda t, y, x, a: _celu_dalpha(x, a) * t,
)


@_elementwise
def celu(x, alpha=1.0):
    r"""Continuously differentiable elu  x for x > 0, α(e^{x/α} − 1) for x ≤ 0 (α > 0).

    Derivative in x: 1 for x > 0, e^{x/α} for x ≤ 0 (`celu_grad`); 1 at 0 for every α.
    In α: e^{x/α} − 1 − (x/α)e^{x/α} for x ≤ 0.

    Conventions: celu(−inf) = −α with derivative 0; NaN propagates.

    Args:
      x: floating array of any shape.
      alpha: positive float, cast to the compute dtype.

    Returns:
      same shape and dtype as `x` (bf16/f16 computed in float32, rounded once).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.celu(jnp.array([-1.0, 2.0]), alpha=0.5)
      Array([-0.43233237,  2.        ], dtype=float32)
    """
    return _celu(x, alpha)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


@jax.custom_jvp
def _selu(x):
    return jnp.where(
        x > 0, _SELU_SCALE * x, (_SELU_SCALE * _SELU_ALPHA) * jnp.expm1(jnp.minimum(x, 0.0))
    )


def selu_grad(x):
    """Closed-form derivative of selu: λ for x > 0, λα·e^x for x ≤ 0."""
    return jnp.where(x > 0, _SELU_SCALE, _c_exp(_SELU_SCALE * _SELU_ALPHA, jnp.minimum(x, 0.0)))


_selu.defjvps(lambda t, y, x: selu_grad(x) * t)


@_elementwise
def selu(x):
    r"""Scaled elu  λ·x for x > 0, λα(e^x − 1) for x ≤ 0 (Klambauer et al. 2017).

    λ ≈ 1.0507009873554805, α ≈ 1.6732632423543772 (self-normalizing constants).

    Derivative: λ for x > 0, λα·e^x for x ≤ 0 (`selu_grad`); λα at 0 (as jax.nn).

    Conventions: selu(−inf) = −λα with derivative 0; NaN propagates.

    Args:
      x: floating array of any shape.

    Returns:
      same shape and dtype as `x` (bf16/f16 computed in float32, rounded once).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.selu(jnp.array([-1.0, 1.0]))
      Array([-1.1113307,  1.050701 ], dtype=float32)
    """
    return _selu(x)


@jax.custom_jvp
def _soft_sign(x):
    # x/(1 + |x|) for |x| ≤ 1, sgn(x)/(1 + 1/|x|) above: soft_sign(±inf) = ±1, not inf/inf.
    a = jnp.abs(x)
    small = jnp.where(a > 1, 0.0, x)
    big = jnp.where(a > 1, x, 2.0)
    outer = jnp.sign(big) / (1.0 + 1.0 / jnp.abs(big))
    return jnp.where(a > 1, outer, small / (1.0 + jnp.abs(small)))


def soft_sign_grad(x):
    """Closed-form derivative of soft_sign: (1/(1 + |x|))², 0 at ±inf (≤ 3 ulp at 128)."""
    r = 1.0 / (1.0 + jnp.abs(x))
    return r * r


_soft_sign.defjvps(lambda t, y, x: soft_sign_grad(x) * t)


@_elementwise
def soft_sign(x):
    r"""Softsign  x / (1 + |x|).

    Derivative: 1/(1 + |x|)² (`soft_sign_grad`).

    Conventions: soft_sign(±inf) = ±1 with derivative 0 (jax.nn gives NaN); NaN propagates.

    Args:
      x: floating array of any shape.

    Returns:
      x/(1 + |x|), same shape and dtype as `x` (bf16/f16 computed in float32, rounded once).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.soft_sign(jnp.array([-jnp.inf, -1.0, 0.5, 128.0]))
      Array([-1.        , -0.5       ,  0.33333334,  0.99224806], dtype=float32)
    """
    return _soft_sign(x)


softsign = soft_sign
softsign_grad = soft_sign_grad


@jax.custom_jvp
def _squareplus(x, b):
    # (x + s)/2 with s = √(x² + b) = hypot(x, √b) scaled against overflow; for x < 0 the
    # product form b/(2(s − x)) avoids the cancellation of x + s.
    a = jnp.abs(x)
    s = _hypot(a, jnp.sqrt(b))
    # (x + s)/2 = x + (s − x)/2 and (s − x) = b/(s + x): no overflow of x + s, no cancellation
    return jnp.where(x >= 0, a + (0.5 * b) / (s + a), (0.5 * b) / (s + a))


def _hypot(a, r):
    big = jnp.maximum(a, r)
    small = jnp.minimum(a, r)
    q = small / jnp.where(big == 0, 1.0, big)
    return big * jnp.sqrt(1.0 + q * q)


def squareplus_grad(x, b=4.0):
    """Closed-form derivative of squareplus in x: (1 + x/√(x² + b))/2.

    For x < 0 written as b/(2s(s + |x|)), s = √(x² + b), to avoid 1 − |x|/s cancelling.
    """
    a = jnp.abs(x)
    r = jnp.sqrt(b)
    s = _hypot(a, r)
    big = jnp.maximum(a, r)
    q = jnp.minimum(a, r) / jnp.where(big == 0, 1.0, big)
    x_over_s = jnp.where(a >= r, 1.0 / jnp.sqrt(1.0 + q * q), a / jnp.where(s == 0, 1.0, s))
    return jnp.where(x >= 0, 0.5 * (1.0 + x_over_s), (0.5 * b / s) / (s + a))


def _squareplus_db(x, b):
    """∂/∂b of squareplus: 1/(4√(x² + b))."""
    return 0.25 / _hypot(jnp.abs(x), jnp.sqrt(b))


_squareplus.defjvps(
    lambda t, y, x, b: squareplus_grad(x, b) * t,
    lambda t, y, x, b: _squareplus_db(x, b) * t,
)


@_elementwise
def squareplus(x, b=4):
    r"""Squareplus  (x + √(x² + b))/2 (Barron 2021), a softplus without exponentials.

    Derivative in x: (1 + x/√(x² + b))/2 (`squareplus_grad`); in b: 1/(4√(x² + b)).

    Numerics: for x < 0 computed as b/(2(√(x² + b) − x)) (no cancellation), and √(x² + b)
    as a scaled hypot, so x = ±1e30 does not overflow in float32.

    Conventions: squareplus(−inf) = 0, squareplus(+inf) = +inf, derivatives 0, 1.

    Args:
      x: floating array of any shape.
      b: positive float (default 4), cast to the compute dtype.

    Returns:
      same shape and dtype as `x` (bf16/f16 computed in float32, rounded once).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.squareplus(jnp.array([-1e30, 0.0, 1.0]))
      Array([1.000000e-30, 1.000000e+00, 1.618034e+00], dtype=float32)
    """
    return _squareplus(x, b)
