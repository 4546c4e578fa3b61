"""Sigmoid binary cross-entropy vs a 120-digit mpmath oracle (tests/oracle/sigmoid_bce.npz,
made by tests/oracle/make_loss_oracle.py): loss ≤ 4 ulp float32, gradient ≤ 8 ulp (near its
root ≤ 8 eps·Σ|terms|), over logits 1e-3 … 1e30, ±max and ±inf, labels 0/1/soft."""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsoft

ORACLE = np.load(pathlib.Path(__file__).parent / "oracle" / "sigmoid_bce.npz")
TINY = float(np.finfo(np.float32).tiny)
EPS = float(np.finfo(np.float32).eps)


def _ulps(got, want):
    """Error in float32 ulps of `want`; true subnormals accept any |got| ≤ tiny (FTZ)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    _, exponent = np.frexp(np.abs(want))  # |want| = m·2^e, m in [0.5, 1): ulp = 2^(e − 24)
    ulp = np.maximum(np.ldexp(1.0, exponent - 24), 2.0**-149)
    err = np.abs(got - want) / ulp
    return np.where((np.abs(want) < TINY) & (np.abs(got) <= TINY), 0.0, err)


def _run(fn):
    x = jnp.asarray(ORACLE["logits"], jnp.float32)
    y = jnp.asarray(ORACLE["labels"], jnp.float32)
    w = jnp.asarray(ORACLE["pos_weight"], jnp.float32)
    return fn(x, y, w)


@pytest.mark.parametrize("jit", [False, True])
def test_sigmoid_bce_value_within_4_ulp_of_oracle(jit):
    f = lambda x, y, w: jaxsoft.sigmoid_binary_cross_entropy(x, y, pos_weight=w)  # noqa: E731
    got = np.asarray(_run(jax.jit(f) if jit else f))
    want = ORACLE["loss"]
    with np.errstate(over="ignore"):  # true values above float32 max round to +inf
        finite = np.isfinite(want.astype(np.float32))
    assert np.array_equal(np.isposinf(got), ~finite)
    assert not np.any(np.isnan(got))
    err = _ulps(got[finite], want[finite])
    assert err.max() <= 4.0, (err.max(), ORACLE["logits"][finite][err.argmax()])
    print(f"sigmoid BCE float32 max error {err.max():.2f} ulp over {finite.sum()} points")


def test_sigmoid_bce_gradient_within_8_ulp_of_oracle():
    def grads(x, y, w):
        return jax.vmap(jax.grad(
            lambda x, y, w: jaxsoft.sigmoid_binary_cross_entropy(x, y, pos_weight=w)))(x, y, w)

    got = np.asarray(_run(grads), np.float64)
    want, scale = ORACLE["grad"], ORACLE["grad_scale"]
    assert np.all(np.isfinite(got))
    err_ulp = _ulps(got, want)
    near_root = np.abs(got - want) <= 8 * EPS * scale
    assert np.all((err_ulp <= 8.0) | near_root), float(err_ulp[~near_root].max())
    print(f"sigmoid BCE gradient max error {err_ulp[~near_root].max():.2f} ulp "
          f"({near_root.sum()} points within 8 eps·Σ|terms|)")


def test_sigmoid_bce_beats_naive_formula_in_the_tail():
    """The naive −y log σ(x) − (1 − y) log(1 − σ(x)) gives inf/0 in the tails; we do not."""
    x = jnp.array([-100.0, 30.0, 1e30], jnp.float32)
    y = jnp.array([0.0, 1.0, 0.0], jnp.float32)
    got = jaxsoft.sigmoid_binary_cross_entropy(x, y)
    np.testing.assert_allclose(got, [3.7200760e-44, 9.357623e-14, 1e30], rtol=4 * EPS, atol=TINY)
