"""Every registry entry: the gradient-check report's comparisons (closed form vs autodiff of the
plain reference vs finite differences vs the public function's own rule), values vs the
reference, jit vs eager, vmap(grad) vs a loop, jacfwd vs jacrev, low-precision dtypes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsoft
from jaxsoft import gradcheck
from jaxsoft.registry import LOSSES, REGISTRY

IDS = [e.name for e in REGISTRY]


def _args(entry, seed=0):
    rng = np.random.default_rng(seed)
    return tuple(jnp.asarray(a) for a in entry.sample(rng))


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_gradcheck(entry):
    result = gradcheck.check(entry)
    assert result.ok, result


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_value_matches_the_plain_reference(entry, x64):
    args = _args(entry)
    got, ref = np.asarray(entry.fn(*args)), np.asarray(entry.reference(*args))
    scale = np.maximum(np.abs(ref), 1e-3 * np.max(np.abs(ref)) + 1e-300)
    assert np.max(np.abs(got - ref) / scale) <= 1e-9  # the naive reference itself loses digits


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
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


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
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
    args = _args(entry, seed=5)
    per_example = entry.fn(*args)
    reduced = getattr(jaxsoft, entry.name)(*args, reduction=reduction)
    assert reduced.shape == ()
    expected = jnp.sum(per_example) if reduction == "sum" else jnp.mean(per_example)
    np.testing.assert_allclose(reduced, expected, rtol=1e-13)


LOGIT_ENTRIES = [e for e in REGISTRY if e.name.startswith(("logsumexp", "softmax", "log_softmax"))]


@pytest.mark.parametrize("entry", LOGIT_ENTRIES, ids=[e.name for e in LOGIT_ENTRIES])
def test_logits_from_a_fused_product(entry):
    """Logits made inside the jitted function, z = 300·r: XLA copies the product into each
    pass and contracts it with the subtraction of the row max into one FMA, so a pass that
    used z unrounded computed z − m from the exact product (the min(x, m) in `Stats.shift`
    and `probs` rounds it). Each row has a two-way tie at its max, where that showed most
    (log_softmax −0.693477 for −log 2). Value and gradient must equal those of the rounded
    product computed outside."""
    x, *rest = _args(entry, seed=5)
    target = 100 * np.asarray(x) + 1000
    target[:, 1] = target[:, 0] = target.max(axis=1) + 1
    r = (target / 300).astype(np.float32)
    z = r * np.float32(300)  # rounded
    rest = tuple(a.astype(jnp.float32) if jnp.issubdtype(a.dtype, jnp.floating) else a
                 for a in rest)
    w = jnp.asarray(np.random.default_rng(1).normal(size=entry.fn(z, *rest).shape), jnp.float32)
    fused = jax.jit(lambda r: entry.fn(r * 300, *rest))
    grad_fused = jax.jit(jax.grad(lambda r: jnp.sum(w * entry.fn(r * 300, *rest))))
    grad = jax.grad(lambda z: jnp.sum(w * entry.fn(z, *rest)))
    eps = float(jnp.finfo(jnp.float32).eps)
    value = entry.fn(z, *rest)
    np.testing.assert_allclose(fused(r), value, rtol=8 * eps,
                               atol=8 * eps * float(jnp.max(jnp.abs(value))))
    g = grad(z)
    np.testing.assert_allclose(grad_fused(r) / 300, g, rtol=0,
                               atol=8 * eps * float(jnp.max(jnp.abs(g))))


def test_gradcheck_cli_json_and_exit_code(tmp_path, capsys):
    from jaxsoft import cli

    path = tmp_path / "report.json"
    assert cli.main(["gradcheck", "--only", "softmax", "sigmoid", "--json", str(path)]) == 0
    import json

    rows = json.loads(path.read_text())
    assert [r["name"] for r in rows] == ["sigmoid", "softmax"]
    assert all({"name", "max_abs_err", "max_rel_err", "ok", "points"} <= set(r) for r in rows)
    assert "2 passed, 0 failed" in capsys.readouterr().out


def test_gradcheck_fails_on_a_wrong_closed_form():
    import dataclasses

    entry = next(e for e in REGISTRY if e.name == "softplus")
    wrong = dataclasses.replace(entry, derivative=lambda x: 1.01 * entry.derivative(x))
    assert not gradcheck.check(wrong).ok


@pytest.mark.parametrize("activation,head", [("sigmoid", "categorical"),
                                             ("tanh", "softmax_quadratic")])
def test_gradcheck_backprop_rows(activation, head):
    result = gradcheck.check_backprop(activation, head)
    assert result.ok and result.kind == "backprop", result
