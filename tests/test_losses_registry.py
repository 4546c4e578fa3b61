"""Every registered loss: closed form vs autodiff of the plain reference vs finite differences,
jit vs eager, vmap(grad) vs a loop, dtypes. Parametrized over `registry.LOSSES`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsoft import registry

LOSSES = registry.LOSSES
IDS = [e.name for e in LOSSES]


def _rel_err(a, b):
    """|a − b| / max(|b|, 1e-3·max|b|), elementwise (the tolerance convention of the brief)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = np.maximum(np.abs(b), 1e-3 * max(np.max(np.abs(b)), 1e-300))
    return np.abs(a - b) / scale


def _args(entry, seed=0):
    rng = np.random.default_rng(seed)
    return tuple(jnp.asarray(a) for a in entry.sample(rng))


def _cotangent(entry, args, seed=1):
    out_shape = jax.eval_shape(entry.reference, *args).shape
    return jnp.asarray(np.random.default_rng(seed).uniform(0.5, 1.5, out_shape))


@pytest.mark.parametrize("entry", LOSSES, ids=IDS)
def test_closed_form_matches_autodiff_of_reference(entry, x64):
    args = _args(entry)
    ct = _cotangent(entry, args)
    x, *rest = args
    closed = entry.closed_vjp(ct, *args)
    _, vjp = jax.vjp(lambda x: entry.reference(x, *rest), x)
    (ref,) = vjp(ct)
    assert closed.dtype == jnp.float64
    assert np.max(_rel_err(closed, ref)) <= 1e-12, entry.name
    # The public function's own rule (its custom_jvp, transposed) is wired to the same thing.
    _, vjp_fn = jax.vjp(lambda x: entry.fn(x, *rest), x)
    assert np.max(_rel_err(vjp_fn(ct)[0], ref)) <= 1e-12, entry.name
    # And the values agree with the reference.
    assert np.max(_rel_err(entry.fn(*args), entry.reference(*args))) <= 1e-12, entry.name


def _finite_difference(f, x, h):
    """4th-order central differences of f (per example) along each class coordinate."""
    out = f(x)
    if out.shape == x.shape:  # elementwise: perturb everything at once
        e = jnp.ones_like(x)
        return (-f(x + 2 * h * e) + 8 * f(x + h * e) - 8 * f(x - h * e) + f(x - 2 * h * e)) / (
            12 * h
        )
    cols = []
    for j in range(x.shape[-1]):
        e = jnp.zeros_like(x).at[..., j].set(1.0)
        cols.append(
            (-f(x + 2 * h * e) + 8 * f(x + h * e) - 8 * f(x - h * e) + f(x - 2 * h * e))
            / (12 * h)
        )
    return jnp.stack(cols, axis=-1)


@pytest.mark.parametrize("entry", LOSSES, ids=IDS)
def test_closed_form_matches_finite_differences(entry, x64):
    args = _args(entry, seed=2)
    x, *rest = args
    fd = _finite_difference(lambda x: entry.fn(x, *rest), x, 1e-4)
    out_shape = jax.eval_shape(entry.reference, *args).shape
    closed = entry.closed_vjp(jnp.ones(out_shape), *args)
    assert np.max(_rel_err(closed, fd)) <= 1e-9, entry.name


@pytest.mark.parametrize("entry", LOSSES, ids=IDS)
def test_jit_eager_and_vmap_grad_loop(entry):
    args = _args(entry, seed=3)
    args32 = tuple(a.astype(jnp.float32) if jnp.issubdtype(a.dtype, jnp.floating) else a
                   for a in args)
    x, *rest = args32
    eager = entry.fn(*args32)
    jitted = jax.jit(entry.fn)(*args32)
    eps = float(jnp.finfo(jnp.float32).eps)
    scale = float(jnp.max(jnp.abs(eager)))
    np.testing.assert_allclose(jitted, eager, rtol=0, atol=4 * eps * max(scale, 1.0))

    # per-example gradients: vmap over the leading (example) axis vs a Python loop
    def one(xi, *ri):
        return jnp.sum(entry.fn(xi[None], *(r[None] for r in ri)))

    batched = jax.vmap(jax.grad(one))(x[:4], *(r[:4] for r in rest))
    grad_one = jax.jit(jax.grad(one))
    looped = jnp.stack([grad_one(x[i], *(r[i] for r in rest)) for i in range(4)])
    gscale = float(jnp.max(jnp.abs(looped)))
    np.testing.assert_allclose(batched, looped, rtol=0, atol=4 * eps * max(gscale, 1.0))
    # jacfwd and jacrev agree
    f = lambda x: jnp.sum(entry.fn(x, *rest))  # noqa: E731
    np.testing.assert_allclose(jax.jacfwd(f)(x), jax.jacrev(f)(x), rtol=0,
                               atol=4 * eps * max(gscale, 1.0))


@pytest.mark.parametrize("entry", LOSSES, ids=IDS)
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_accepted_and_rounded_once(entry, dtype):
    args = _args(entry, seed=4)
    low = tuple(a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a for a in args)
    out = entry.fn(*low)
    assert out.dtype == dtype
    # computed in float32 from the same (rounded) inputs, then rounded once
    f32 = tuple(a.astype(jnp.float32) if jnp.issubdtype(a.dtype, jnp.floating) else a
                for a in low)
    np.testing.assert_array_equal(out, entry.fn(*f32).astype(dtype))
    g = jax.grad(lambda x: jnp.sum(entry.fn(x, *low[1:]).astype(jnp.float32)))(low[0])
    assert g.dtype == dtype and bool(jnp.all(jnp.isfinite(g)))


BASE = [e for e in LOSSES if "(" not in e.name]


@pytest.mark.parametrize("entry", BASE, ids=[e.name for e in BASE])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_reductions(entry, reduction, x64):
    import jaxsoft

    args = _args(entry, seed=5)
    per_example = entry.fn(*args)
    reduced = getattr(jaxsoft, entry.name)(*args, reduction=reduction)
    assert reduced.shape == ()
    expected = jnp.sum(per_example) if reduction == "sum" else jnp.mean(per_example)
    np.testing.assert_allclose(reduced, expected, rtol=1e-13)
