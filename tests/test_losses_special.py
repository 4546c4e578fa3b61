"""NUMERICS.md special points and peer defects, for the losses: exact zeros, limits at ±inf,
no NaN where the mathematics is finite (value, grad, jacfwd, jacrev, hessian), poison for
invalid values, ignore_index, shape contracts, kink conventions and the checked mode."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import checkify

import jaxsoft

F32 = np.finfo(np.float32)
LOGITS = [0.0, -0.0, F32.tiny, -F32.tiny, F32.eps, -F32.eps, 1.0, -1.0, 15.0, -15.0, 17.0,
          -17.0, 37.0, -37.0, 88.72, -88.72, 1e4, -1e4, 1e30, -1e30, F32.max, -F32.max,
          np.inf, -np.inf]


def _all_derivatives_finite(f, x):
    """f: R^n -> R. grad, jacfwd, jacrev and hessian finite (and jacfwd == jacrev)."""
    g = jax.grad(f)(x)
    fwd, rev = jax.jacfwd(f)(x), jax.jacrev(f)(x)
    h = jax.hessian(f)(x)
    for name, a in [("grad", g), ("jacfwd", fwd), ("jacrev", rev), ("hessian", h)]:
        assert bool(jnp.all(jnp.isfinite(a))), (name, a)
    np.testing.assert_array_equal(fwd, rev)
    return g


# ------------------------------------------------------------------------------------ BCE


def test_bce_on_probabilities_perfect_prediction_is_exact_zero_with_finite_gradient():
    p = jnp.array([0.0, 1.0])
    y = jnp.array([0.0, 1.0])
    loss = jaxsoft.binary_cross_entropy(p, y)
    np.testing.assert_array_equal(loss, [0.0, 0.0])
    assert not np.any(np.signbit(loss))
    g = _all_derivatives_finite(lambda p: jnp.sum(jaxsoft.binary_cross_entropy(p, y)), p)
    np.testing.assert_array_equal(g, [1.0, -1.0])
    # jit and vmap agree
    np.testing.assert_array_equal(jax.jit(jaxsoft.binary_cross_entropy)(p, y), loss)


def test_bce_on_probabilities_confidently_wrong_is_inf_not_clipped():
    loss = jaxsoft.binary_cross_entropy(jnp.array([0.0, 1.0, 0.0]), jnp.array([1.0, 0.0, 0.5]))
    np.testing.assert_array_equal(loss, [np.inf, np.inf, np.inf])
    # a tiny but correct-side probability is not clipped (Keras would give 1.2e-7)
    small = jaxsoft.binary_cross_entropy(jnp.array([1e-30]), jnp.array([0.0]))
    np.testing.assert_allclose(small, [1e-30], rtol=1e-6)


@pytest.mark.parametrize("y", [0.0, 1.0, 0.3])
def test_sigmoid_bce_special_logits_finite_where_math_is(y):
    x = np.array(LOGITS, np.float32)
    xs, ys = jnp.asarray(x), jnp.full(x.shape, y, jnp.float32)
    loss = np.asarray(jaxsoft.sigmoid_binary_cross_entropy(xs, ys))
    assert not np.any(np.isnan(loss))
    diverges = np.isinf(x) & (((x > 0) & (y != 1)) | ((x < 0) & (y != 0)))
    assert np.all(np.isposinf(loss[diverges]))
    moderate = np.abs(x) < 1e30  # at ±1e30, ±max the finite loss may round to +inf
    assert np.all(np.isfinite(loss[~diverges & moderate]))
    g = np.asarray(_all_derivatives_finite(
        lambda x: jnp.sum(jaxsoft.sigmoid_binary_cross_entropy(x, ys)), xs), np.float64)
    with np.errstate(over="ignore"):
        s_pos = 1 / (1 + np.exp(-x.astype(np.float64)))
        s_neg = 1 / (1 + np.exp(x.astype(np.float64)))
    expected = (1 - y) * s_pos - y * s_neg  # float64, no cancellation of 1 − σ
    scale = (1 - y) * s_pos + y * s_neg
    subnormal = np.abs(expected) < F32.tiny  # XLA on CPU may flush these to zero
    assert np.all(np.abs(g[subnormal]) <= F32.tiny)
    assert np.all(np.abs(g - expected)[~subnormal] <= 8 * F32.eps * scale[~subnormal])


# ------------------------------------------------------------------------------------- KL


def test_kl_with_zero_targets_and_minus_inf_log_targets_is_finite():
    lq = jnp.log(jnp.array([0.5, 0.5, 0.0]))  # includes log q = −inf
    t = jnp.array([1.0, 0.0, 0.0])
    lt = jnp.log(t)  # [0, −inf, −inf]
    want = np.log(2.0)
    np.testing.assert_allclose(jaxsoft.kl_divergence(lq, t), want, rtol=1e-6)
    np.testing.assert_allclose(jaxsoft.kl_divergence_with_log_targets(lq, lt), want, rtol=1e-6)
    for f, arg in [(jaxsoft.kl_divergence, t), (jaxsoft.kl_divergence_with_log_targets, lt)]:
        g_q = jax.grad(lambda q, f=f, arg=arg: f(q, arg))(lq)
        np.testing.assert_array_equal(g_q, [-1.0, 0.0, 0.0])
        g_t = jax.grad(lambda a, f=f: f(lq, a))(arg)
        assert bool(jnp.all(jnp.isfinite(g_t))), g_t
        np.testing.assert_allclose(g_t, [1 + np.log(2.0), 0.0, 0.0], rtol=1e-6)
        for jac in (jax.jacfwd, jax.jacrev):
            assert bool(jnp.all(jnp.isfinite(jac(lambda a, f=f: f(lq, a))(arg))))
        assert bool(jnp.all(jnp.isfinite(jax.hessian(lambda a, f=f: f(lq, a))(arg))))


def test_kl_target_mass_on_impossible_prediction_is_inf():
    lq = jnp.log(jnp.array([1.0, 0.0]))
    assert jaxsoft.kl_divergence(lq, jnp.array([0.5, 0.5])) == np.inf


# ------------------------------------------------------------------------ invalid → poison


@pytest.mark.parametrize("bad_label", [4, -1, 100])
def test_invalid_integer_labels_poison_loss_and_gradient_of_that_row_only(bad_label):
    lp = jax.nn.log_softmax(jnp.arange(8.0).reshape(2, 4))
    labels = jnp.array([1, bad_label])
    for f in (jaxsoft.nll_loss, jaxsoft.multiclass_hinge_loss,
              jaxsoft.multiclass_perceptron_loss):
        loss = f(lp, labels)
        assert bool(jnp.isfinite(loss[0])) and bool(jnp.isnan(loss[1])), f.__name__
        g = jax.grad(lambda z, f=f: jnp.sum(f(z, labels)))(lp)
        assert bool(jnp.all(jnp.isfinite(g[0]))) and bool(jnp.all(jnp.isnan(g[1]))), f.__name__
        gm = jax.grad(lambda z, f=f: f(z, labels, reduction="mean"))(lp)
        assert bool(jnp.all(jnp.isnan(gm[1])))


@pytest.mark.parametrize(
    "f, x, y",
    [
        (jaxsoft.binary_cross_entropy, [0.5, 1.5], [1.0, 1.0]),
        (jaxsoft.binary_cross_entropy, [0.5, 0.5], [1.0, -0.1]),
        (jaxsoft.binary_cross_entropy, [0.5, np.nan], [1.0, 1.0]),
        (jaxsoft.sigmoid_binary_cross_entropy, [0.5, 0.5], [1.0, 2.0]),
        (jaxsoft.perceptron_loss, [0.5, 0.5], [1.0, 0.5]),
        (jaxsoft.hinge_loss, [0.5, 0.5], [-1.0, 0.0]),
    ],
)
def test_invalid_values_poison_loss_and_gradient(f, x, y):
    x, y = jnp.array(x), jnp.array(y)
    loss = f(x, y)
    assert bool(jnp.isfinite(loss[0])) and bool(jnp.isnan(loss[1]))
    g = jax.grad(lambda x: jnp.sum(f(x, y)))(x)
    assert bool(jnp.isfinite(g[0])) and bool(jnp.isnan(g[1]))


def test_categorical_ce_invalid_probability_poisons_row():
    p = jnp.array([[0.2, 0.8], [1.2, -0.2]])
    y = jnp.array([[0.0, 1.0], [1.0, 0.0]])
    loss = jaxsoft.categorical_cross_entropy(p, y)
    g = jax.grad(lambda p: jnp.sum(jaxsoft.categorical_cross_entropy(p, y)))(p)
    assert bool(jnp.isfinite(loss[0])) and bool(jnp.isnan(loss[1]))
    assert bool(jnp.all(jnp.isfinite(g[0]))) and bool(jnp.all(jnp.isnan(g[1])))


def test_ignore_index_gives_zero_and_is_excluded_from_mean():
    lp = jax.nn.log_softmax(jnp.array([[1.0, 2.0, 3.0], [3.0, 1.0, 0.0], [0.0, 0.0, 5.0]]))
    labels = jnp.array([2, -100, 0])
    loss = jaxsoft.nll_loss(lp, labels, ignore_index=-100)
    assert loss[1] == 0.0
    mean = jaxsoft.nll_loss(lp, labels, ignore_index=-100, reduction="mean")
    np.testing.assert_allclose(mean, (loss[0] + loss[2]) / 2, rtol=1e-6)
    g = jax.grad(lambda z: jaxsoft.nll_loss(z, labels, ignore_index=-100, reduction="mean"))(lp)
    np.testing.assert_array_equal(g[1], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(g[0], [0.0, 0.0, -0.5])
    # torch: weighted mean divides by Σ w_y of the counted examples
    w = jnp.array([2.0, 1.0, 0.5])
    wmean = jaxsoft.nll_loss(lp, labels, ignore_index=-100, weights=w, reduction="mean")
    want = (-0.5 * lp[0, 2] - 2.0 * lp[2, 0]) / (0.5 + 2.0)
    np.testing.assert_allclose(wmean, want, rtol=1e-6)


def test_all_ignored_mean_is_zero_not_nan():
    lp = jnp.zeros((2, 3))
    labels = jnp.array([-100, -100])
    mean = jaxsoft.nll_loss(lp, labels, ignore_index=-100, reduction="mean")
    assert mean == 0.0
    g = jax.grad(lambda z: jaxsoft.nll_loss(z, labels, ignore_index=-100, reduction="mean"))(lp)
    np.testing.assert_array_equal(g, jnp.zeros((2, 3)))


# --------------------------------------------------------------------------------- shapes


def test_sigmoid_bce_refuses_n1_vs_n_broadcast():
    with pytest.raises(ValueError, match=r"sigmoid_binary_cross_entropy: labels\.shape \(4,\) "
                                         r"must equal \(4, 1\)"):
        jaxsoft.sigmoid_binary_cross_entropy(jnp.zeros((4, 1)), jnp.zeros(4))


@pytest.mark.parametrize("f", [jaxsoft.nll_loss, jaxsoft.multiclass_hinge_loss,
                               jaxsoft.multiclass_perceptron_loss])
def test_integer_label_losses_check_shape_and_dtype(f):
    name = f.__name__
    with pytest.raises(ValueError, match=rf"{name}: labels\.shape \(4, 1\) must equal \(4,\)"):
        f(jnp.zeros((4, 3)), jnp.zeros((4, 1), jnp.int32))
    with pytest.raises(ValueError, match=rf"{name}: labels\.shape \(3,\) must equal \(4,\)"):
        f(jnp.zeros((4, 3)), jnp.zeros(3, jnp.int32))
    with pytest.raises(TypeError, match=rf"{name}: labels must be an integer array"):
        f(jnp.zeros((4, 3)), jnp.zeros(4))
    with pytest.raises(TypeError, match=rf"{name}: .* must be a floating array"):
        f(jnp.zeros((4, 3), jnp.int32), jnp.zeros(4, jnp.int32))


@pytest.mark.parametrize("f", [jaxsoft.squared_error, jaxsoft.absolute_error,
                               jaxsoft.huber_loss, jaxsoft.l2_loss, jaxsoft.quadratic_loss,
                               jaxsoft.binary_cross_entropy, jaxsoft.categorical_cross_entropy,
                               jaxsoft.kl_divergence, jaxsoft.kl_divergence_with_log_targets,
                               jaxsoft.perceptron_loss, jaxsoft.hinge_loss])
def test_elementwise_shape_mismatch_raises(f):
    with pytest.raises(ValueError, match=rf"{f.__name__}: \w+\.shape \(3,\) must equal \(2, 3\)"):
        f(jnp.zeros((2, 3)), jnp.zeros(3))


def test_bad_reduction_and_axis_raise():
    with pytest.raises(ValueError, match="reduction must be one of"):
        jaxsoft.squared_error(jnp.zeros(2), reduction="avg")
    with pytest.raises(ValueError, match="axis 2 does not exist"):
        jaxsoft.quadratic_loss(jnp.zeros((2, 3)), jnp.zeros((2, 3)), axis=2)
    with pytest.raises(ValueError, match="delta must be positive"):
        jaxsoft.huber_loss(jnp.zeros(2), delta=0.0)


def test_class_axis_keyword():
    p = jax.nn.softmax(jnp.arange(6.0).reshape(2, 3), axis=0)
    y = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    np.testing.assert_allclose(jaxsoft.categorical_cross_entropy(p, y, axis=0),
                               jaxsoft.categorical_cross_entropy(p.T, y.T), rtol=1e-6)
    np.testing.assert_allclose(jaxsoft.nll_loss(jnp.log(p), jnp.array([0, 1, 1]), axis=0),
                               jaxsoft.nll_loss(jnp.log(p.T), jnp.array([0, 1, 1])), rtol=1e-6)


# ------------------------------------------------------------------------- kink conventions


def test_absolute_error_subgradient_at_zero_is_zero():
    g = jax.grad(lambda p: jnp.sum(jaxsoft.absolute_error(p, jnp.array([1.0, 2.0]))))
    np.testing.assert_array_equal(g(jnp.array([1.0, 2.0])), [0.0, 0.0])


def test_perceptron_and_hinge_subgradient_at_kink_is_minus_y_never_half():
    y = jnp.array([1.0, -1.0])
    g = jax.grad(lambda p: jnp.sum(jaxsoft.perceptron_loss(p, y)))(jnp.zeros(2))
    np.testing.assert_array_equal(g, -y)
    g = jax.grad(lambda p: jnp.sum(jaxsoft.hinge_loss(p, y)))(y)  # ŷ·y = 1
    np.testing.assert_array_equal(g, -y)
    # one step of gradient descent from zero weights moves a perceptron (ŷ = w·x = 0)
    x = jnp.array([[1.0, 2.0], [-1.0, 0.5]])
    w = jnp.zeros(2)
    gw = jax.grad(lambda w: jaxsoft.perceptron_loss(x @ w, y, reduction="sum"))(w)
    np.testing.assert_array_equal(gw, -(y @ x))


def test_multiclass_tie_counts_as_a_mistake():
    s = jnp.array([[2.0, 2.0, 0.0]])
    g = jax.grad(lambda s: jnp.sum(jaxsoft.multiclass_perceptron_loss(s, jnp.array([0]))))(s)
    np.testing.assert_array_equal(g, [[-1.0, 1.0, 0.0]])
    s = jnp.array([[3.0, 2.0, 0.0]])  # s_y − s_j* = 1: hinge kink
    g = jax.grad(lambda s: jnp.sum(jaxsoft.multiclass_hinge_loss(s, jnp.array([0]))))(s)
    np.testing.assert_array_equal(g, [[-1.0, 1.0, 0.0]])


# ------------------------------------------------------------------------------ checked mode


def test_checked_mode_raises_under_jit_grad_and_vmap():
    loss = lambda z, y: jaxsoft.nll_loss(z, y, validate=True, reduction="sum")  # noqa: E731
    z = jnp.zeros((2, 3))
    f = jaxsoft.checked(jax.jit(jax.grad(loss)))
    np.testing.assert_array_equal(f(z, jnp.array([0, 2]))[0], [-1.0, 0.0, 0.0])
    for bad in ([0, 3], [-1, 0]):
        with pytest.raises(checkify.JaxRuntimeError, match=r"nll_loss: labels must lie in"):
            f(z, jnp.array(bad))
    per_row = jax.vmap(jax.grad(lambda z, y: jaxsoft.multiclass_hinge_loss(
        z[None], y[None], validate=True)[0]))
    with pytest.raises(checkify.JaxRuntimeError, match=r"multiclass_hinge_loss: labels must"):
        jaxsoft.checked(per_row)(z, jnp.array([0, 5]))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: jaxsoft.binary_cross_entropy(jnp.array([1.5]), jnp.array([1.0]), validate=True),
         "binary_cross_entropy: probs must lie in"),
        (lambda: jaxsoft.sigmoid_binary_cross_entropy(jnp.array([1.0]), jnp.array([2.0]),
                                                      validate=True),
         "sigmoid_binary_cross_entropy: labels must lie in"),
        (lambda: jaxsoft.categorical_cross_entropy(jnp.array([0.5, 0.5]), jnp.array([0.5, 0.4]),
                                                   validate=True),
         "categorical_cross_entropy: label rows must sum to 1"),
        (lambda: jaxsoft.kl_divergence(jnp.array([0.0]), jnp.array([-0.5]), validate=True),
         "kl_divergence: targets must lie in"),
        (lambda: jaxsoft.hinge_loss(jnp.array([1.0]), jnp.array([0.0]), validate=True),
         "hinge_loss: targets must be -1 or \\+1"),
        (lambda: jaxsoft.squared_error(jnp.array([jnp.nan]), validate=True),
         "squared_error: predictions contains NaN"),
    ],
)
def test_checked_mode_messages(call, message):
    with pytest.raises(checkify.JaxRuntimeError, match=message):
        jaxsoft.checked(jax.jit(call))()


def test_default_path_has_no_checks():
    jaxpr = jax.make_jaxpr(lambda z, y: jaxsoft.nll_loss(z, y))(jnp.zeros((2, 3)),
                                                                jnp.array([0, 1]))
    assert "check" not in str(jaxpr)


# ------------------------------------------------------------- no intermediate NaN anywhere


def test_no_intermediate_nan_at_finite_points_debug_nans():
    """Run the finite special points eagerly op by op with jax_debug_nans: a NaN created and
    masked away by a `where` (the double-where trap) would raise here."""
    x = jnp.array([v for v in LOGITS if not np.isnan(v)], jnp.float32)
    y = jnp.ones_like(x) * 0.3
    pz = jnp.array([0.0, 1.0, 0.5, 0.0])
    py = jnp.array([0.0, 1.0, 0.5, 0.0])
    lq = jnp.log(jnp.array([[0.5, 0.5, 0.0]]))
    t = jnp.array([[1.0, 0.0, 0.0]])
    old = jax.config.jax_debug_nans
    jax.config.update("jax_debug_nans", True)
    try:
        with jax.disable_jit():
            for label in (0.0, 1.0, 0.3):
                yy = jnp.full_like(x, label)
                finite_x = x if label == 0.3 else x[jnp.isfinite(x) | ((x > 0) == (label == 1))]
                jax.grad(lambda x, yy=yy: jnp.sum(jaxsoft.sigmoid_binary_cross_entropy(
                    x, yy[: x.shape[0]])))(finite_x)
            jax.hessian(lambda p: jnp.sum(jaxsoft.binary_cross_entropy(p, py)))(pz)
            jax.grad(lambda q: jnp.sum(jaxsoft.kl_divergence(q, t)))(lq)
            jax.grad(lambda a: jnp.sum(jaxsoft.kl_divergence(lq, a)))(t)
            jax.grad(lambda a: jnp.sum(jaxsoft.kl_divergence_with_log_targets(lq, a)))(
                jnp.log(t))
            jax.grad(lambda q: jnp.sum(jaxsoft.categorical_cross_entropy(q, t)))(jnp.exp(lq))
            jax.grad(lambda q: jnp.sum(jaxsoft.nll_loss(q, jnp.array([0]))))(lq)
            jax.grad(lambda s: jnp.sum(jaxsoft.multiclass_hinge_loss(s, jnp.array([1]))))(
                jnp.array([[1.0, 2.0, 0.0]]))
            assert y.shape == x.shape
    finally:
        jax.config.update("jax_debug_nans", old)
