"""The K-model trainer: resume = uninterrupted (bit for bit), NaN stops, Ctrl-C keeps results."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsoft
from jaxsoft import train


def _data(n=64, d=5, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 0.5).astype(np.int32)
    return types.SimpleNamespace(x_train=x[:48], y_train=y[:48], x_test=x[48:], y_test=y[48:],
                                 num_classes=classes)


def _softmax_regression():
    """A one-layer model with the hand-written gradient (softmax − onehot) xᵀ / m."""

    def loss(params, x, y):
        return jnp.mean(jaxsoft.softmax_cross_entropy_with_integer_labels(
            x @ params["w"].T + params["b"][None, :], y))

    def grad_fn(params, x, y, decay, n_train):
        z = x @ params["w"].T + params["b"][None, :]
        delta = jaxsoft.softmax_cross_entropy_with_integer_labels_grad(z, y) / x.shape[0]
        grads = {"w": delta.T @ x + decay / n_train * params["w"], "b": delta.sum(0)}
        return loss(params, x, y), grads

    def eval_fn(params, x, y):
        z = x @ params["w"].T + params["b"][None, :]
        return loss(params, x, y), jnp.mean(jnp.argmax(z, -1) == y)

    return grad_fn, eval_fn


def _params(models=3, d=5, classes=3):
    keys = jax.random.split(jax.random.key(1), models)
    return jax.vmap(lambda k: {"w": 0.1 * jax.random.normal(k, (classes, d)),
                               "b": jnp.zeros(classes)})(keys)


def _run(**kwargs):
    grad_fn, eval_fn = _softmax_regression()
    options = {"learning_rates": [0.1, 0.5, 1.0], "batch_size": 8, "progress": False,
               "grad_fn": grad_fn, "eval_fn": eval_fn} | kwargs
    return train.train(_params(), _data(), **options)


def test_trains_every_model_with_its_own_learning_rate():
    _, history = _run(epochs=5)
    assert history.train_loss.shape == (3, 5) and history.test_accuracy.shape == (3, 5)
    assert np.all(history.train_loss[:, -1] < history.train_loss[:, 0])
    assert len({float(v) for v in history.train_loss[:, -1]}) == 3


@pytest.mark.parametrize("shuffle", ["per_model", "shared"])
def test_resume_equals_uninterrupted_bit_for_bit(tmp_path, shuffle):
    path = str(tmp_path / "run.ckpt")
    straight, h_straight = _run(epochs=4, shuffle=shuffle)
    _run(epochs=2, checkpoint=path, shuffle=shuffle)
    resumed, h_resumed = _run(epochs=4, checkpoint=path, shuffle=shuffle)
    for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(h_straight.train_loss, h_resumed.train_loss)
    np.testing.assert_array_equal(h_straight.test_accuracy, h_resumed.test_accuracy)


def test_resume_refuses_a_different_run(tmp_path):
    path = str(tmp_path / "run.ckpt")
    _run(epochs=1, checkpoint=path)
    with pytest.raises(ValueError, match="belongs to a different run"):
        _run(epochs=2, checkpoint=path, seed=7)


def test_nan_loss_names_the_model_and_epoch():
    with pytest.raises(train.NaNLossError, match=r"model\(s\) \[2\].*epoch 1"):
        _run(epochs=3, learning_rates=[0.1, 0.1, float("nan")])


def test_ctrl_c_returns_the_epochs_done():
    def interrupt(epoch, row):
        if epoch == 1:
            raise KeyboardInterrupt

    _, history = _run(epochs=5, on_epoch=interrupt)
    assert history.interrupted and history.epochs == 2


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_optimizers(optimizer):
    # optax's adam mixes a Python float with an int32 step count: not strict-promotion clean.
    with jax.numpy_dtype_promotion("standard"):
        _, history = _run(epochs=3, optimizer=optimizer, learning_rates=0.05)
    assert np.all(np.isfinite(history.train_loss))


def test_shared_order_trains_and_differs_from_per_model():
    _, shared = _run(epochs=3, shuffle="shared")
    _, own = _run(epochs=3)
    assert np.all(shared.train_loss[:, -1] < shared.train_loss[:, 0])
    assert not np.array_equal(shared.train_loss, own.train_loss)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="shuffle must be 'per_model' or 'shared'"):
        _run(epochs=1, shuffle="random")
    with pytest.raises(ValueError, match="optimizer must be one of"):
        _run(epochs=1, optimizer="lbfgs")
    with pytest.raises(ValueError, match="batch_size 100 exceeds the 48 training examples"):
        _run(epochs=1, batch_size=100)
