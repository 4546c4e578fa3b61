"""Input contracts shared by every public function: dtypes, shapes, axes, reductions.

Everything here runs at trace time on static shapes and dtypes (free under `jit`), except
`runtime_check`, which is the opt-in checked mode (functionalized `checkify`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

LOW_PRECISION = (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))
REDUCTIONS = ("none", "mean", "sum")


def as_float(x, name: str, fn: str) -> jax.Array:
    """`x` as a floating array; integers and bools are refused (they have no derivative)."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{fn}: {name} must be a floating array, got dtype {x.dtype}")
    return x


def compute_dtype(dtype) -> jnp.dtype:
    """The dtype a computation runs in: float32 for bfloat16/float16, else the input's."""
    dtype = jnp.dtype(dtype)
    return jnp.dtype(jnp.float32) if dtype in LOW_PRECISION else dtype


def upcast(x: jax.Array) -> jax.Array:
    """`x` in its compute dtype (bf16/f16 -> f32); rounded back once by the caller."""
    return x.astype(compute_dtype(x.dtype))


def as_labels(labels, name: str, fn: str) -> jax.Array:
    """Integer class labels; floats are refused (a float label is almost always a one-hot bug)."""
    labels = jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(
            f"{fn}: {name} must be an integer array of class indices, got dtype {labels.dtype}"
            " (for one-hot or soft labels use the non-integer variant)"
        )
    return labels


def as_mask(where, shape, name: str, fn: str) -> jax.Array | None:
    """A boolean mask of exactly `shape`, or None."""
    if where is None:
        return None
    where = jnp.asarray(where)
    if where.dtype != jnp.bool_:
        raise TypeError(f"{fn}: {name} must be a boolean array, got dtype {where.dtype}")
    same_shape(where, shape, name, fn)
    return where


def same_shape(x, shape, name: str, fn: str, what: str = "") -> None:
    """Raise unless `x.shape == shape` exactly (no silent broadcasting)."""
    shape = tuple(shape)
    if tuple(x.shape) != shape:
        expected = f" ({what})" if what else ""
        raise ValueError(f"{fn}: {name}.shape {tuple(x.shape)} must equal {shape}{expected}")


def class_axis(x: jax.Array, axis: int, fn: str) -> int:
    """Normalize a single class `axis` of `x`, refusing one that does not exist."""
    if not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{fn}: axis must be a single int, got {axis!r}")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{fn}: axis {axis} does not exist for an input of shape {x.shape}")
    return int(axis) % x.ndim


def reduce(loss: jax.Array, reduction: str, fn: str, count=None) -> jax.Array:
    """Apply `reduction` to per-example losses.

    Args:
      loss: per-example losses.
      reduction: "none" (return as is), "sum", or "mean".
      fn: caller name for error messages.
      count: the mean's denominator (e.g. the number of non-ignored examples, or the
        total class weight); defaults to `loss.size`. A zero count gives a mean of 0.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if reduction == "none":
        return loss
    total = jnp.sum(loss)
    if reduction == "sum":
        return total
    if count is None:
        return total / max(loss.size, 1)
    count = jnp.asarray(count, total.dtype)
    return total / jnp.maximum(count, 1e-30 if count.dtype != jnp.float16 else 1e-4)


def runtime_check(ok: jax.Array, message: str, **fmt) -> None:
    """Checked mode: record `ok` (all true) as a `checkify` error with `message`.

    Only called when the user asked for validation (`validate=True`); the function must then
    be run through `jaxsoft.checked`, which functionalizes the checks and raises.
    """
    checkify.check(jnp.all(ok), message, **fmt)


def checked(fn):
    """Run `fn` with its `validate=True` checks functionalized; raise on the first failure.

    Works around `jit`, `vmap` and `grad` inside `fn`: wrap the outermost function.

    Example:
      >>> import jax, jax.numpy as jnp, jaxsoft
      >>> loss = lambda z, y: jaxsoft.softmax_cross_entropy_with_integer_labels(
      ...     z, y, validate=True).sum()
      >>> f = jaxsoft.checked(jax.jit(jax.grad(loss)))
      >>> f(jnp.zeros((2, 3)), jnp.array([0, 3]))  # doctest: +ELLIPSIS
      Traceback (most recent call last):
      ...
      jax._src.checkify.JaxRuntimeError: softmax_cross_entropy_with_integer_labels: labels ...
    """
    checked_fn = checkify.checkify(fn, errors=checkify.user_checks)

    def run(*args, **kwargs):
        err, out = checked_fn(*args, **kwargs)
        err.throw()
        return out

    run.__name__ = getattr(fn, "__name__", "checked")
    run.__doc__ = getattr(fn, "__doc__", None)
    return run
