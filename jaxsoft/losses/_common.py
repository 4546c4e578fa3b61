"""Plumbing shared by the loss families: closed-form derivative rules, dtypes, poison, labels.

Every loss core is a `jax.custom_jvp` built by `closed_form`: its tangent is
Σ_i ∂f/∂x_i · ẋ_i with the partials written out by hand beside the loss (`*_grad`). We use
`custom_jvp` rather than `custom_vjp` because forward mode (`jax.jacfwd`, `jax.hessian`)
must keep working; JAX transposes the (linear) tangent rule for reverse mode, so `jax.grad`
gets exactly ct·(closed form) and no N×N Jacobian is ever built. Tangents of arguments that
are not being differentiated arrive as symbolic zeros and are skipped, so an infinite partial
with respect to, say, the labels can never poison the gradient with respect to the logits
(inf·0 = NaN).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

from jaxsoft import _checks


def closed_form(partials):
    """Decorator: a `custom_jvp` whose tangent uses the closed-form `partials`.

    Args:
      partials: `partials(*args)` returns one entry per argument: the array ∂f/∂arg (same
        shape as the argument), or None for a non-differentiable (integer, boolean) argument.
        An argument with one more axis than the output is a `[..., classes]` input of a loss
        that sums over its last axis: its tangent term is Σ_c ∂f/∂x_c · ẋ_c.
    """

    def decorate(value):
        core = jax.custom_jvp(value)

        def jvp(primals, tangents):
            out = value(*primals)
            grads = partials(*primals)
            tangent = None
            for g, t in zip(grads, tangents, strict=True):
                if g is None or isinstance(t, SymbolicZero):
                    continue
                term = g * t
                if term.ndim > out.ndim:
                    term = jnp.sum(term, axis=-1)
                tangent = term if tangent is None else tangent + term
            if tangent is None:
                return out, jnp.zeros_like(out)
            return out, tangent

        core.defjvp(jvp, symbolic_zeros=True)
        core.__doc__ = value.__doc__
        return core

    return decorate


def poison(bad, x):
    """`x` with NaN wherever `bad` (the "poison" convention for invalid inputs).

    The NaN is made as inf·0 only at the bad positions, so a valid input never creates a NaN
    intermediate (checked with `jax_debug_nans`).
    """
    nan_where_bad = jnp.where(bad, jnp.inf, 0.0) * jnp.where(bad, 0.0, 1.0)
    return jnp.where(bad, nan_where_bad.astype(x.dtype), x)


def floats(fn: str, *named):
    """Check `(name, array)` pairs are floating; return them cast to one common compute dtype.

    Returns `(arrays, out_dtype)`: bf16/f16 are computed in float32 and `out_dtype` is the
    first array's dtype (results are rounded to it once, at the end).
    """
    arrays = [_checks.as_float(x, name, fn) for name, x in named]
    out_dtype = arrays[0].dtype
    ct = _checks.compute_dtype(out_dtype)
    return [x.astype(ct) for x in arrays], out_dtype


def same_shapes(fn: str, first, *others) -> None:
    """`others` are `(name, array)` pairs whose shapes must equal `first = (name, array)`."""
    name0, x0 = first
    for name, x in others:
        _checks.same_shape(x, x0.shape, name, fn, f"{name0}.shape")


def finish(loss, out_dtype, reduction: str, fn: str, count=None):
    """Reduce in the compute dtype, then round once to the input's dtype."""
    return _checks.reduce(loss, reduction, fn, count).astype(out_dtype)


def integer_labels(labels, scores, axis: int, fn: str, name: str = "labels"):
    """Integer labels whose shape equals `scores.shape` without the class `axis`."""
    labels = _checks.as_labels(labels, name, fn)
    expected = scores.shape[:axis] + scores.shape[axis + 1 :]
    _checks.same_shape(labels, expected, name, fn, "scores.shape without the class axis")
    return labels


def label_one_hot(labels, num_classes: int, dtype):
    """(one_hot, valid): one-hot rows (all zero for out-of-range labels) and the range mask."""
    valid = (labels >= 0) & (labels < num_classes)
    classes = jnp.arange(num_classes, dtype=labels.dtype).reshape((1,) * labels.ndim + (-1,))
    one_hot = labels[..., None] == classes
    return one_hot.astype(dtype), valid


def check_labels(validate: bool, labels, num_classes: int, fn: str, ignore=None) -> None:
    """Checked mode: integer labels in [0, num_classes) (except `ignore`)."""
    if validate:
        ok = (labels >= 0) & (labels < num_classes)
        if ignore is not None:
            ok = ok | (labels == ignore)
        _checks.runtime_check(
            ok, f"{fn}: labels must lie in [0, {num_classes}), got a label outside that range"
        )


def check_finite_or_inf(validate: bool, fn: str, **named) -> None:
    """Checked mode: no NaN in any of the named arrays."""
    if validate:
        for name, x in named.items():
            _checks.runtime_check(~jnp.isnan(x), f"{fn}: {name} contains NaN")


def check_range(validate: bool, x, lo, hi, name: str, fn: str) -> None:
    """Checked mode: `lo <= x <= hi` everywhere (NaN fails)."""
    if validate:
        _checks.runtime_check(
            (x >= lo) & (x <= hi), f"{fn}: {name} must lie in [{lo}, {hi}], got a value outside"
        )
