"""Shared machinery of the activations: the dtype wrapper and tail-accurate building blocks."""

from __future__ import annotations

import functools
import inspect

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
