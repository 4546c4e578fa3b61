"""The seeds' worked examples: Opgave 73, 74, 75, 79 (Dutch notes §4.4–4.5) and the Russian
notes' CE ≥ 0 with its minimum at a = y."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxsoft

Y_HAT = jnp.array([0.1, 0.4, 0.2, 0.3])
ONE_HOT = {"A": jnp.array([1.0, 0.0, 0.0, 0.0]), "B": jnp.array([0.0, 1.0, 0.0, 0.0])}


def test_opgave_73_quadratic_and_cross_entropy():
    # The notes' quadratic loss is Σ_n (ŷ_n − y_n)² (§4.4: L(0.1; 1) = 0.9² = 0.81), without ½:
    # that is squared_error summed, = 2·quadratic_loss (which carries the ½ of the cost C).
    for label, quad, ce in [("B", 0.50, -np.log(0.4)), ("A", 1.10, -np.log(0.1))]:
        y = ONE_HOT[label]
        np.testing.assert_allclose(jnp.sum(jaxsoft.squared_error(Y_HAT, y)), quad, rtol=1e-6)
        np.testing.assert_allclose(2 * jaxsoft.quadratic_loss(Y_HAT, y), quad, rtol=1e-6)
        np.testing.assert_allclose(jaxsoft.categorical_cross_entropy(Y_HAT, y), ce, rtol=1e-6)
        lab = jnp.array("ABCD".index(label))
        np.testing.assert_allclose(jaxsoft.nll_loss(jnp.log(Y_HAT), lab), ce, rtol=1e-6)
    # CE punishes the wrong confident answer 2.5× as much; the quadratic loss only 2.2×.
    assert jaxsoft.categorical_cross_entropy(Y_HAT, ONE_HOT["A"]) > 2.5 * (
        jaxsoft.categorical_cross_entropy(Y_HAT, ONE_HOT["B"]))


def test_quadratic_loss_saturates_as_the_notes_say():
    # §4.4: L(0.1; 1) = 0.81 and L(0; 1) = 1.00, barely 25 % more; BCE goes to +inf.
    sq = jaxsoft.squared_error(jnp.array([0.1, 0.0]), jnp.array([1.0, 1.0]))
    np.testing.assert_allclose(sq, [0.81, 1.0], rtol=1e-6)
    bce = jaxsoft.binary_cross_entropy(jnp.array([0.1, 0.0]), jnp.array([1.0, 1.0]))
    np.testing.assert_allclose(bce[0], -np.log(0.1), rtol=1e-6)
    assert bce[1] == np.inf


def test_cross_entropy_minimum_at_a_equals_y_is_the_entropy():
    y = jnp.array([0.5, 1 / 3, 1 / 6])
    assert round(float(jaxsoft.categorical_cross_entropy(y, y)), 2) == 1.01
    y_seed = jnp.array([0.5, 0.33, 0.17])  # the table in seed 002
    assert round(float(jaxsoft.categorical_cross_entropy(y_seed, y_seed)), 2) == 1.01


_simplex = st.lists(st.floats(0.01, 1.0), min_size=3, max_size=3).map(
    lambda v: np.asarray(v) / np.sum(v))


@settings(max_examples=60, deadline=None)
@given(a=_simplex, y=_simplex)
def test_cross_entropy_nonnegative_and_minimal_at_a_equals_y(a, y):
    a, y = jnp.asarray(a), jnp.asarray(y)
    ce = jaxsoft.categorical_cross_entropy(a, y)
    assert float(ce) >= 0
    assert float(ce) >= float(jaxsoft.categorical_cross_entropy(y, y)) - 1e-6
    # Gibbs: the gap is exactly KL(y ‖ a) ≥ 0
    np.testing.assert_allclose(ce - jaxsoft.categorical_cross_entropy(y, y),
                               jaxsoft.kl_divergence(jnp.log(a), y), atol=1e-5)


def test_opgave_74_sixty_forty_minimum_at_0_6():
    def total(q):
        probs = jnp.stack([q, 1 - q])
        return 60 * jaxsoft.categorical_cross_entropy(probs, jnp.array([1.0, 0.0])) + (
            40 * jaxsoft.categorical_cross_entropy(probs, jnp.array([0.0, 1.0])))

    np.testing.assert_allclose(jax.jit(jax.grad(total))(jnp.float32(0.6)), 0.0, atol=1e-4)
    grid = jnp.linspace(0.01, 0.99, 99)
    np.testing.assert_allclose(grid[jnp.argmin(jax.jit(jax.vmap(total))(grid))], 0.6,
                               atol=1e-6)
    assert jax.jit(jax.hessian(total))(jnp.float32(0.6)) > 0
    # the same with the binary cross-entropy on one output
    bce = lambda q: 60 * jaxsoft.binary_cross_entropy(q, 1.0) + 40 * (  # noqa: E731
        jaxsoft.binary_cross_entropy(q, 0.0))
    np.testing.assert_allclose(jax.grad(bce)(jnp.float32(0.6)), 0.0, atol=1e-4)


@settings(max_examples=40, deadline=None)
@given(dh=st.floats(-30, 30))
def test_opgave_75_softmax_plus_ce_is_softplus(dh):
    # y = [0, 1], h = [h1, h2]: l = S⁺(h1 − h2) = sigmoid BCE of the logit h2 − h1 with y = 1
    h = jnp.array([dh, 0.0])
    probs = jax.nn.softmax(h)
    ce = jaxsoft.categorical_cross_entropy(probs, jnp.array([0.0, 1.0]))
    want = jaxsoft.softplus(jnp.float32(dh))
    np.testing.assert_allclose(
        jaxsoft.sigmoid_binary_cross_entropy(jnp.float32(-dh), jnp.float32(1.0)), want,
        rtol=1e-6)
    if dh < 15:  # through rounded probabilities: holds while p_1 ≫ eps
        np.testing.assert_allclose(ce, want, rtol=1e-5, atol=4e-7)  # p_2 rounded to 1 ± eps


@settings(max_examples=60, deadline=None)
@given(y_hat=st.floats(-1e3, 1e3), y=st.sampled_from([-1.0, 1.0]))
def test_opgave_79_perceptron_is_relu_of_minus_y_hat_y(y_hat, y):
    yh, yy = jnp.float32(y_hat), jnp.float32(y)
    assert jaxsoft.perceptron_loss(yh, yy) == jax.nn.relu(-yh * yy)
    assert jaxsoft.perceptron_loss(yh, yy) == jnp.maximum(-yh * yy, 0)
    g = jax.grad(jaxsoft.perceptron_loss)(yh, yy)
    # constant slope on the wrong side, zero on the right side (the perceptron update rule)
    # compare with the float32 ŷ as XLA sees it: 1e-82 rounds to 0, subnormals flush to 0
    y32 = float(yh) if abs(float(yh)) >= np.finfo(np.float32).tiny else 0.0
    assert g == (-yy if y32 * y <= 0 else 0.0)
