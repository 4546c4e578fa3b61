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
import numpy as np

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


# --------------------------------------------------------------------------- numerics helpers


def _tail(dtype) -> float:
    """Below −_tail(dtype), e^x may be subnormal (flushed to 0 on CPU): use half-exponents."""
    return float(-np.log(np.finfo(dtype).tiny)) - 8.0


def _nan_to(x, g):
    """`g`, but NaN wherever `x` is NaN (derivatives propagate NaN like values do)."""
    return jnp.where(jnp.isnan(x), x, g)


def _finite(x):
    """`x` with ±inf replaced by 0, for branches whose ±inf limit is selected afterwards."""
    return jnp.where(jnp.isinf(x), 0.0, x)


def _x_sigmoid(a, z):
    """a·σ(z) with full relative accuracy, also where σ(z) alone would be subnormal.

    For z < 0: a·σ(z) = (a·h)·(h/(1 + h²)) with h = e^{z/2}, so a tiny σ(z) times a large `a`
    is not flushed to zero (silu(−91.2) ≈ −2.25e-38 is a normal float32).
    """
    e = jnp.exp(-jnp.abs(z))
    h = jnp.exp(-0.5 * jnp.abs(z))
    neg = jnp.where(z < -_tail(z.dtype), (a * h) * (h / (1.0 + h * h)), a * e / (1.0 + e))
    return jnp.where(z >= 0, a / (1.0 + e), neg)


def _two_prod_err(a, b):
    """The rounding error of a·b (Dekker): a·b = fl(a·b) + err exactly, for moderate a, b."""
    split = 4097.0 if a.dtype == jnp.float32 else 134217729.0
    ca, cb = split * a, split * b
    ah = ca - (ca - a)
    bh = cb - (cb - b)
    al, bl = a - ah, b - bh
    return ((ah * bh - a * b) + ah * bl + al * bh) + al * bl


def _scaled_sigmoid_correction(beta, x):
    """z = fl(βx) and the factor 1 + δ·σ(−z) that turns σ(z) into σ(βx) (δ = βx − z exact)."""
    z = beta * x
    ok = jnp.abs(z) < 1e3  # beyond, σ has saturated and the correction is irrelevant
    xo = jnp.where(ok, x, 0.0)
    bo = jnp.where(ok, beta, 0.0)
    delta = _two_prod_err(bo, xo)
    return z, 1.0 + delta * _sigmoid(-jnp.where(ok, z, 0.0))


def _c_exp(c, x):
    """c·e^x for x ≤ 0, computed as (c·h)·h with h = e^{x/2} where e^x alone is subnormal."""
    h = jnp.exp(0.5 * x)
    return jnp.where(x < -_tail(x.dtype), (c * h) * h, c * jnp.exp(x))


def _sech2(x):
    """sech²(x) = (2h/(1 + h²))², h = e^{−|x|}: = 4e^{−2|x|}/(1 + e^{−2|x|})², tail-accurate."""
    h = jnp.exp(-jnp.abs(x))
    s = 2.0 * h / (1.0 + h * h)
    return s * s


def _tanh(x):
    """tanh with ≤ 4 ulp: (1 − e)/(1 + e), e = e^{−2|x|}, away from 0; `jnp.tanh` near 0."""
    a = jnp.abs(x)
    e = jnp.exp(-2.0 * a)
    t = jnp.where(a < 0.55, jnp.tanh(a), (1.0 - e) / (1.0 + e))
    return jnp.copysign(t, x)


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
