"""Softmax cross-entropies: options, run-time label handling, checked mode, bad input."""

import contextlib
import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import checkify

import jaxsoft

CE = jaxsoft.softmax_cross_entropy_with_integer_labels
Z = jnp.array([[0.5, -1.0, 2.0, 0.0], [1.0, 1.0, -3.0, 0.2], [0.0, 4.0, 1.0, -1.0]])


def _naive(z, target):
    """Plain formula, no custom rule: −Σ target · log softmax."""
    return -jnp.sum(target * (z - jnp.log(jnp.sum(jnp.exp(z), -1, keepdims=True))), -1)


@pytest.mark.parametrize("bad_label", [-1, 4, 100])
def test_invalid_label_poisons_its_row_only(bad_label):
    labels = jnp.array([2, bad_label, 1])
    loss = np.asarray(CE(Z, labels))
    grad = np.asarray(jax.grad(lambda z: CE(z, labels).sum())(Z))
    assert np.isnan(loss[1]) and np.all(np.isnan(grad[1]))
    assert np.all(np.isfinite(loss[[0, 2]])) and np.all(np.isfinite(grad[[0, 2]]))
    assert np.all(np.isnan(jax.jacfwd(lambda z: CE(z, labels))(Z)[1]))


@pytest.mark.parametrize("path", ["kernel", "jnp"])
def test_invalid_label_row_stays_nan_under_a_zero_cotangent(path):
    # The loss masked where it is not finite gives the invalid row a cotangent of exactly 0:
    # its gradient is still NaN (0·NaN), in the kernels' one-pass gradient as in the jnp one.
    x = jnp.asarray(np.random.default_rng(3).standard_normal((300, 37)), jnp.float32)
    labels = jnp.arange(300) % 37
    labels = labels.at[40].set(37).at[41].set(-1)

    def loss(v):
        ce = CE(v, labels)
        return jnp.sum(jnp.where(jnp.isfinite(ce), ce, 0))

    with jaxsoft.kernel.disabled() if path == "jnp" else contextlib.nullcontext():
        grad = np.asarray(jax.jit(jax.grad(loss))(x))
    assert np.all(np.isnan(grad[40:42]))
    assert np.all(np.isfinite(np.delete(grad, [40, 41], axis=0)))


@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.1, "z_loss": 1e-3},
                                     {"ignore_index": 2}, {"where": True}], ids=str)
def test_integer_label_gradient_same_in_the_gpu_form(options, monkeypatch):
    # The jnp path's one-hot part: a scatter (and a gather in the tangent) in the CPU form, a
    # compare with an iota in the GPU form (`softmax.on_gpu`): both against each other, in
    # reverse and forward mode, with an invalid label (NaN row) and a label on a masked class.
    rng = np.random.default_rng(7)
    x = jnp.asarray(3 * rng.standard_normal((2, 9, 6)), jnp.float32)
    labels = jnp.asarray(rng.integers(0, 6, (2, 9))).at[0, 0].set(6)
    options = dict(options)
    if options.pop("where", False):
        options["where"] = jnp.asarray(rng.random((2, 9, 6)) > 0.3).at[1, 1, labels[1, 1]].set(
            False)
    w = jnp.asarray(rng.standard_normal((2, 9)), jnp.float32)

    def loss(v):
        ce = CE(v, labels, **options)
        return jnp.sum(jnp.where(jnp.isfinite(ce), ce * w, 0))

    def both():
        with jaxsoft.kernel.disabled():
            return (jax.jit(jax.value_and_grad(loss))(x),
                    jax.jit(jax.jacfwd(lambda v: CE(v, labels, **options)))(x))

    cpu = both()
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    jax.clear_caches()
    gpu = both()
    jax.clear_caches()
    for got, want in zip(jax.tree.leaves(gpu), jax.tree.leaves(cpu), strict=True):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_ignore_index_gives_zero_and_leaves_the_mean():
    labels = jnp.array([2, -100, 1])
    loss = CE(Z, labels, ignore_index=-100)
    assert float(loss[1]) == 0
    mean = CE(Z, labels, ignore_index=-100, reduction="mean")
    np.testing.assert_allclose(mean, (loss[0] + loss[2]) / 2, rtol=1e-6)
    grad = jax.grad(lambda z: CE(z, labels, ignore_index=-100, reduction="mean"))(Z)
    np.testing.assert_array_equal(grad[1], 0)
    np.testing.assert_allclose(grad[0], (jaxsoft.softmax(Z[0]) - jax.nn.one_hot(2, 4)) / 2,
                               atol=1e-7)


def test_class_weights_weighted_mean(x64):
    z, labels = Z.astype(jnp.float64), jnp.array([2, 0, 1])
    w = jnp.array([0.5, 2.0, 1.0, 3.0])
    per = CE(z, labels, weights=w)
    plain = CE(z, labels)
    np.testing.assert_allclose(per, plain * w[labels], rtol=1e-15)
    np.testing.assert_allclose(CE(z, labels, weights=w, reduction="mean"),
                               jnp.sum(per) / jnp.sum(w[labels]), rtol=1e-15)


def test_label_smoothing_is_alpha_over_k_without_a_one_hot(x64):
    z, labels, alpha = Z.astype(jnp.float64), jnp.array([2, 0, 1]), 0.2
    target = (1 - alpha) * jax.nn.one_hot(labels, 4, dtype=jnp.float64) + alpha / 4
    np.testing.assert_allclose(CE(z, labels, label_smoothing=alpha), _naive(z, target),
                               rtol=1e-14)
    grad = jax.grad(lambda z: CE(z, labels, label_smoothing=alpha).sum())(z)
    np.testing.assert_allclose(grad, jaxsoft.softmax(z) - target, atol=1e-15)


def test_label_smoothing_with_where_spreads_over_unmasked_classes(x64):
    z, labels = Z.astype(jnp.float64), jnp.array([2, 0, 1])
    where = jnp.array([[True, True, True, False]] * 3)
    target = 0.9 * jax.nn.one_hot(labels, 4, dtype=jnp.float64) + 0.1 / 3 * where.astype(float)
    expected = _naive(z[:, :3], target[:, :3])  # the masked class simply does not exist
    np.testing.assert_allclose(CE(z, labels, where=where, label_smoothing=0.1), expected,
                               rtol=1e-14)


def test_z_loss_adds_z_times_lse_squared(x64):
    z, labels = Z.astype(jnp.float64), jnp.array([2, 0, 1])
    lse = jnp.log(jnp.sum(jnp.exp(z), -1))
    np.testing.assert_allclose(CE(z, labels, z_loss=1e-2), CE(z, labels) + 1e-2 * lse**2,
                               rtol=1e-14)


def test_label_on_a_masked_class_is_inf_with_finite_gradient():
    where = jnp.array([[True, True, False, True]] * 3)
    labels = jnp.array([2, 0, 1])
    loss = CE(Z, labels, where=where)
    assert float(loss[0]) == np.inf and np.all(np.isfinite(loss[1:]))
    assert np.all(np.isfinite(jax.grad(lambda z: CE(z, labels, where=where).sum())(Z)))


def test_other_axis_matches_last_axis():
    labels = jnp.array([2, 0, 1])
    np.testing.assert_allclose(CE(Z.T, labels, axis=0), CE(Z, labels), rtol=1e-6)
    soft = jax.nn.one_hot(labels, 4)
    np.testing.assert_allclose(jaxsoft.softmax_cross_entropy(Z.T, soft.T, axis=0),
                               jaxsoft.softmax_cross_entropy(Z, soft), rtol=1e-6)


@pytest.mark.parametrize("narrow_min_size", [2**16, 0])  # 0: one variadic reduce (narrow rows)
def test_soft_labels_outside_zero_one_poison_their_row(narrow_min_size, monkeypatch):
    monkeypatch.setattr(importlib.import_module("jaxsoft.softmax"), "NARROW_MIN_SIZE",
                        narrow_min_size)
    labels = jnp.array([[0.5, 0.5, 0, 0], [1.5, -0.5, 0, 0], [0, 1.0, 0, 0]])
    loss = np.asarray(jaxsoft.softmax_cross_entropy(Z, labels))
    grad = np.asarray(jax.grad(lambda z: jaxsoft.softmax_cross_entropy(z, labels).sum())(Z))
    assert np.isnan(loss[1]) and np.all(np.isnan(grad[1]))
    assert np.all(np.isfinite(loss[[0, 2]])) and np.all(np.isfinite(grad[[0, 2]]))


# ---------------------------------------------------------------------------- checked mode


def _loss_int(z, y):
    return CE(z, y, validate=True).mean()


GOOD, BAD = jnp.array([0, 1, 2]), jnp.array([0, -1, 2])


@pytest.mark.parametrize("transform", [jax.jit, jax.grad, lambda f: jax.jit(jax.grad(f))],
                         ids=["jit", "grad", "jit(grad)"])
def test_checked_mode_raises_under_transformations(transform):
    f = jaxsoft.checked(transform(_loss_int))
    z = jnp.zeros((3, 4))
    f(z, GOOD)
    with pytest.raises(checkify.JaxRuntimeError, match=r"labels must lie in \[0, 4\)"):
        f(z, BAD)


def test_checked_mode_raises_under_vmap():
    f = jaxsoft.checked(jax.vmap(_loss_int))
    z = jnp.zeros((2, 3, 4))
    f(z, jnp.stack([GOOD, GOOD]))
    with pytest.raises(checkify.JaxRuntimeError, match=r"labels must lie in \[0, 4\)"):
        f(z, jnp.stack([GOOD, BAD]))


def test_checked_mode_soft_labels_must_sum_to_one():
    f = jaxsoft.checked(jax.jit(lambda z, y: jaxsoft.softmax_cross_entropy(
        z, y, validate=True).sum()))
    f(Z, jax.nn.one_hot(jnp.array([0, 1, 2]), 4))
    with pytest.raises(checkify.JaxRuntimeError, match="must sum to 1"):
        f(Z, jnp.full((3, 4), 0.5))


def test_unchecked_default_has_no_checks_in_the_program():
    jaxpr = jax.make_jaxpr(lambda z, y: CE(z, y))(Z, jnp.array([0, 1, 2]))
    assert "check" not in str(jaxpr)


# ----------------------------------------------------------------------------- bad input


def test_bad_input_is_named_at_trace_time():
    with pytest.raises(ValueError, match=r"labels.shape \(3, 1\) must equal \(3,\)"):
        CE(Z, jnp.zeros((3, 1), jnp.int32))
    with pytest.raises(TypeError, match="labels must be an integer array"):
        CE(Z, jnp.zeros(3))
    with pytest.raises(ValueError, match="axis 2 does not exist"):
        CE(Z, jnp.zeros(3, jnp.int32), axis=2)
    with pytest.raises(ValueError, match="reduction must be one of"):
        CE(Z, jnp.zeros(3, jnp.int32), reduction="avg")
    with pytest.raises(ValueError, match=r"weights.shape \(3,\) must equal \(4,\)"):
        CE(Z, jnp.zeros(3, jnp.int32), weights=jnp.ones(3))
    with pytest.raises(ValueError, match="label_smoothing must lie in"):
        CE(Z, jnp.zeros(3, jnp.int32), label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: labels.shape \(3,\)"):
        jaxsoft.softmax_cross_entropy(Z, jnp.zeros(3))


# ------------------------------------------------------------- logits made in the same program


@pytest.mark.parametrize("fn", [
    lambda z, y: CE(z, y, z_loss=1e-2),
    lambda z, y: CE(z, y, label_smoothing=0.1),
    lambda z, y: jaxsoft.softmax_cross_entropy(z, jax.nn.one_hot(y, z.shape[-1])),
    lambda z, y: jaxsoft.logsumexp(z, axis=-1),
    lambda z, y: jaxsoft.log_softmax(z)[:, 0],
    lambda z, y: jaxsoft.softmax(z)[:, 0],
], ids=["int+z_loss", "int+smoothing", "one-hot", "logsumexp", "log_softmax", "softmax"])
def test_logits_computed_in_the_same_jit_give_the_eager_result(fn):
    """XLA copies an elementwise producer of the logits (here 3·r) into every pass and may
    contract it into an FMA there: the passes must still agree on the max and its ties
    (once 161.6 instead of 18.8 under jit)."""
    rng = np.random.default_rng(0)
    r = jnp.asarray(rng.normal(size=(13, 11)) * 3, jnp.float32)
    y = jnp.asarray(rng.integers(0, 11, 13))
    f = lambda r: fn(3.0 * r, y)  # noqa: E731
    np.testing.assert_allclose(jax.jit(f)(r), f(r), rtol=1e-5, atol=1e-6)
