"""Sigmoid and tanh family: sigmoid, log_sigmoid, softplus, swish/silu, tanh, mish."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsoft.activations._numerics import (
    _elementwise,
    _finite,
    _sech2,
    _tail,
    _tanh,
    _two_prod_err,
    _x_sigmoid,
)

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


def _scaled_sigmoid_correction(beta, x):
    """z = fl(βx) and the factor 1 + δ·σ(−z) that turns σ(z) into σ(βx) (δ = βx − z exact)."""
    z = beta * x
    ok = jnp.abs(z) < 1e3  # beyond, σ has saturated and the correction is irrelevant
    xo = jnp.where(ok, x, 0.0)
    bo = jnp.where(ok, beta, 0.0)
    delta = _two_prod_err(bo, xo)
    return z, 1.0 + delta * _sigmoid(-jnp.where(ok, z, 0.0))


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
      >>> jaxsoft.softplus(jnp.array([-80.0, 0.0, 100.0]))
      Array([1.8048513e-35, 6.9314718e-01, 1.0000000e+02], dtype=float32)
    """
    return _softplus(x)


@jax.custom_jvp
def _log_sigmoid(x):
    # log σ(x) = −softplus(−x) = min(x, 0) − log1p(e^{−|x|}): no overflow, no cancellation.
    return jnp.minimum(x, 0.0) - jnp.log1p(jnp.exp(-jnp.abs(x)))


def log_sigmoid_grad(x):
    """Closed-form derivative of log σ: σ(−x)."""
    return _sigmoid(-x)


_log_sigmoid.defjvps(lambda t, y, x: log_sigmoid_grad(x) * t)


@_elementwise
def log_sigmoid(x):
    r"""Log-sigmoid  log σ(x) = −log(1 + e^{−x}) = −softplus(−x).

    Derivative: σ(−x) = 1 − σ(x) (`log_sigmoid_grad`).

    Conventions: log σ(−inf) = −inf with derivative 1; log σ(+inf) = 0 with derivative 0.

    Args:
      x: floating array of any shape.

    Returns:
      log σ(x), same shape and dtype as `x` (bf16/f16 computed in float32, rounded once).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.log_sigmoid(jnp.array([-100.0, 0.0, 20.0]))
      Array([-1.0000000e+02, -6.9314718e-01, -2.0611537e-09], dtype=float32)
    """
    return _log_sigmoid(x)


@jax.custom_jvp
def _swish(x, beta):
    # x·σ(βx) via _x_sigmoid (no flush to 0 in the tail); ±inf inputs take their limits.
    z = jnp.where(beta == 0, 0.0, beta * x)
    xs = _finite(x)
    zs, corr = _scaled_sigmoid_correction(beta, xs)  # βx is rounded; |βx| amplifies that
    y = _x_sigmoid(xs, zs) * corr
    limit = jnp.where(z > 0, x, jnp.where(z < 0, 0.0, 0.5 * x))
    return jnp.where(jnp.isinf(x), limit, y)


def swish_grad(x, beta=1.0):
    """Closed-form derivative of swish in x: σ(βx)·(1 + βx·σ(−βx)).

    Equal to σ(βx) + βx·σ(βx)(1 − σ(βx)); the limits at βx = ±inf are 1 and 0.
    """
    z = jnp.where(beta == 0, 0.0, beta * x)
    z = jnp.clip(z, -1e3, 1e3)  # σ saturates long before; keeps z·σ(−z) free of inf·0
    _, corr = _scaled_sigmoid_correction(beta, jnp.clip(_finite(x), -1e30, 1e30))
    return _x_sigmoid(1.0 + z * _sigmoid(-z), z) * corr


def _swish_dbeta(x, beta):
    """∂/∂β of x·σ(βx) = x²·σ(βx)σ(−βx) (0 at x = ±inf)."""
    xs = _finite(x)
    z = beta * xs
    return xs * (xs * (_sigmoid(z) * _sigmoid(-z)))


_swish.defjvps(
    lambda t, y, x, beta: swish_grad(x, beta) * t,
    lambda t, y, x, beta: _swish_dbeta(x, beta) * t,
)


@_elementwise
def swish(x, beta=1.0):
    r"""Swish  x·σ(βx) (Ramachandran et al. 2017); `silu` is β = 1 (seed 000, Opgave 78).

    Derivative in x: σ(βx)(1 + βx·σ(−βx)) (`swish_grad`); in β: x²σ(βx)σ(−βx), so β is
    trainable.

    Conventions: for β > 0, swish(−inf) = 0 and swish(+inf) = +inf with derivatives 0 and 1
    (jax.nn gives NaN at −inf). Tail values stay accurate: x·σ(x) is never flushed to 0 when
    the product is a normal float. NaN propagates.

    Args:
      x: floating array of any shape.
      beta: scalar (or broadcastable) float; cast to the compute dtype.

    Returns:
      x·σ(βx), same shape and dtype as `x` (bf16/f16 computed in float32, rounded once).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.swish(jnp.array([-jnp.inf, -1.0, 0.0, 2.0]), beta=1.5)
      Array([ 0.        , -0.18242551,  0.        ,  1.9051483 ], dtype=float32)
    """
    return _swish(x, beta)


def silu_grad(x):
    """Closed-form derivative of silu: σ(x)(1 + x·σ(−x))."""
    return swish_grad(x, 1.0)


@_elementwise
def silu(x):
    r"""SiLU  x·σ(x) (sigmoid linear unit, seed 000 Opgave 78); `swish` with β = 1.

    Derivative: σ(x)(1 + x·σ(−x)) (`silu_grad`); it vanishes at x ≈ −1.27846 (the minimum).

    Conventions: silu(−inf) = 0, silu(+inf) = +inf, derivatives 0 and 1 (jax.nn: NaN).
    silu(−91.2) ≈ −2.25e-38 is returned as a normal float32, not 0.

    Args:
      x: floating array of any shape.

    Returns:
      x·σ(x), same shape and dtype as `x` (bf16/f16 computed in float32, rounded once).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.silu(jnp.array([-jnp.inf, -91.2, 1.0]))
      Array([ 0.0000000e+00, -2.2508131e-38,  7.3105860e-01], dtype=float32)
    """
    return _swish(x, jnp.asarray(1.0, x.dtype))


# ------------------------------------------------------------------------------- tanh family


@jax.custom_jvp
def _tanh_core(x):
    return _tanh(x)


def tanh_grad(x):
    """Closed-form derivative of tanh: 1 − tanh² = 4e^{−2|x|}/(1 + e^{−2|x|})².

    The exponential form keeps full relative accuracy for large |x|, where 1 − tanh² is 0
    from |x| = 8 on in float32.
    """
    return _sech2(x)


_tanh_core.defjvps(lambda t, y, x: tanh_grad(x) * t)


@_elementwise
def tanh(x):
    r"""Hyperbolic tangent  tanh(x) = (e^x − e^{−x}) / (e^x + e^{−x}).

    Derivative: 1 − tanh²(x) = 4e^{−2|x|}/(1 + e^{−2|x|})² (`tanh_grad`).

    Numerics: (1 − e^{−2|x|})/(1 + e^{−2|x|}) with the sign of x for |x| ≥ 0.55,
    `jnp.tanh` below (measured ≤ 3 ulp there on CPU).

    Conventions: tanh(±inf) = ±1 with derivative 0; NaN propagates.

    Args:
      x: floating array of any shape.

    Returns:
      tanh(x), same shape and dtype as `x` (bf16/f16 computed in float32, rounded once).

    Example:
      >>> import jax, jax.numpy as jnp, jaxsoft
      >>> jaxsoft.tanh(jnp.array([-jnp.inf, 0.5, 20.0]))
      Array([-1.        ,  0.46211717,  1.        ], dtype=float32)
      >>> jax.grad(jaxsoft.tanh)(20.0)  # 1 − tanh² would give exactly 0
      Array(1.6993418e-17, dtype=float32, weak_type=True)
    """
    return _tanh_core(x)


@jax.custom_jvp
def _mish(x):
    # x·tanh(softplus(x)); for x → −inf the value is x·e^x(1 + O(e^x)), taken as (x·h)·h.
    xs = _finite(x)
    h = jnp.exp(0.5 * xs)
    y = jnp.where(xs < -_tail(x.dtype), (xs * h) * h, xs * _tanh(_softplus(xs)))
    return jnp.where(jnp.isinf(x), jnp.where(x > 0, x, -0.0), y)


def mish_grad(x):
    """Closed-form derivative of mish: tanh(S⁺(x)) + x·σ(x)·sech²(S⁺(x)), S⁺ = softplus."""
    xs = _finite(x)
    sp = _softplus(xs)
    h = jnp.exp(0.5 * xs)
    g = _tanh(sp) + xs * _sigmoid(xs) * _sech2(sp)
    g = jnp.where(xs < -_tail(x.dtype), ((1.0 + xs) * h) * h, g)
    return jnp.where(jnp.isinf(x), jnp.where(x > 0, 1.0, 0.0), g)


_mish.defjvps(lambda t, y, x: mish_grad(x) * t)


@_elementwise
def mish(x):
    r"""Mish  x·tanh(softplus(x)) (Misra 2019).

    Derivative: tanh(S⁺(x)) + x·σ(x)·sech²(S⁺(x)) with S⁺ = softplus (`mish_grad`); it
    vanishes near x ≈ −1.1924.

    Conventions: mish(−inf) = 0, mish(+inf) = +inf, derivatives 0 and 1; NaN propagates.

    Args:
      x: floating array of any shape.

    Returns:
      mish(x), same shape and dtype as `x` (bf16/f16 computed in float32, rounded once).

    Example:
      >>> import jax.numpy as jnp, jaxsoft
      >>> jaxsoft.mish(jnp.array([-jnp.inf, -1.0, 0.0, 1.0]))
      Array([-0.        , -0.30340144,  0.        ,  0.86509836], dtype=float32)
    """
    return _mish(x)
