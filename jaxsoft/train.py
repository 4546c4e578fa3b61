"""Train K models at once: one jitted program, an epoch is a `lax.scan` over mini-batches.

The models share the data but not their randomness or hyperparameters: each has its own
initial parameters, shuffling key, learning rate and weight decay. Parameters and optimizer
states are stacked along a leading model axis and every step is `jax.vmap`-ed over it.

Long runs: a progress bar per epoch (tqdm, when installed), Ctrl-C returns the epochs done so
far, `checkpoint=PATH` saves everything needed to continue after each epoch (atomically), and
resuming from it continues the run bit for bit. A NaN loss stops the run with a message
naming the model and the epoch.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

OPTIMIZERS = {
    "sgd": lambda learning_rate: optax.sgd(learning_rate),
    "momentum": lambda learning_rate: optax.sgd(learning_rate, momentum=0.9),
    "adam": lambda learning_rate: optax.adam(learning_rate),
}


@dataclasses.dataclass
class History:
    """Per-model, per-epoch results; arrays of shape (models, epochs_done)."""

    train_loss: np.ndarray
    test_loss: np.ndarray
    test_accuracy: np.ndarray
    interrupted: bool = False

    @property
    def epochs(self) -> int:
        return self.train_loss.shape[1]


class NaNLossError(FloatingPointError):
    """Raised when a model's training loss becomes NaN."""


def _optimizer(name: str):
    if name not in OPTIMIZERS:
        raise ValueError(f"train: optimizer must be one of {sorted(OPTIMIZERS)}, got {name!r}")
    return optax.inject_hyperparams(OPTIMIZERS[name])


def _batches(key, n_train, batch_size):
    """One epoch's mini-batch indices, (steps, batch_size): a permutation of the training set
    drawn from `key`, the last incomplete batch dropped."""
    steps = n_train // batch_size
    return jax.random.permutation(key, n_train)[: steps * batch_size].reshape(steps, -1)


def _update_fn(grad_fn, opt, n_train):
    """(params, opt_state, decay, xb, yb) -> (params, opt_state, loss): one optimizer step of
    ONE model on one mini-batch; `grad_fn(params, x, y, weight_decay, n_train)`."""

    def update(params, opt_state, decay, xb, yb):
        loss, grads = grad_fn(params, xb, yb, decay, n_train)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return update


def _one_model_epoch(grad_fn, opt, batch_size, n_train):
    """(params, opt_state, key, decay, x, y) -> (params, opt_state, mean batch loss): one
    epoch of ONE model, a `lax.scan` of `_update_fn` over `_batches(key)` (not jitted; also
    used by `jaxsoft.sharding` with a data-parallel `grad_fn`)."""
    update = _update_fn(grad_fn, opt, n_train)

    def one_model(params, opt_state, key, decay, x, y):
        def step(carry, idx):
            params, opt_state, loss = update(*carry, decay, x[idx], y[idx])
            return (params, opt_state), loss

        batches = _batches(key, n_train, batch_size)
        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), batches)
        return params, opt_state, jnp.mean(losses)

    return one_model


def _epoch_program(grad_fn, opt, batch_size, n_train, shuffle):
    """jit((params, opt_state, keys, decays, x, y) -> (params, opt_state, mean batch losses))
    over K stacked models; `grad_fn(params, x, y, weight_decay, n_train) -> (loss, grads)`.

    shuffle="per_model": each model draws its own mini-batch order from its key (the whole
    epoch is vmapped over models). shuffle="shared": all models see the same order (from the
    first key); the step is vmapped over models with the batch shared, so XLA computes the
    first layer of all K models as one matrix product (measured 1.5–2× faster on CPU).
    """
    if shuffle not in ("per_model", "shared"):
        raise ValueError(f"train: shuffle must be 'per_model' or 'shared', got {shuffle!r}")

    def all_models(params, opt_state, keys, decays, x, y):
        every = jax.vmap(_update_fn(grad_fn, opt, n_train), in_axes=(0, 0, 0, None, None))

        def step(carry, idx):
            params, opt_state, loss = every(*carry, decays, x[idx], y[idx])
            return (params, opt_state), loss

        batches = _batches(keys[0], n_train, batch_size)
        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), batches)
        return params, opt_state, jnp.mean(losses, axis=0)

    if shuffle == "shared":
        return jax.jit(all_models)
    one_model = _one_model_epoch(grad_fn, opt, batch_size, n_train)
    return jax.jit(jax.vmap(one_model, in_axes=(0, 0, 0, 0, None, None)))


def train(params, data, *, grad_fn: Callable, eval_fn: Callable, learning_rates,
          weight_decays=0.0, optimizer="sgd", batch_size=10, epochs=30, seed=0,
          shuffle="per_model", checkpoint=None, progress=True,
          on_epoch=None) -> tuple[object, History]:
    """Train the stacked models `params` (leading axis = models) on `data`.

    Args:
      params: pytree whose leaves have a leading axis of size K (one slice per model).
      data: object with `x_train, y_train, x_test, y_test` arrays (e.g. `datasets.Dataset`).
      grad_fn: `(params, x, y, weight_decay, n_train) -> (mean loss, grads)` for ONE model on
        a batch (e.g. `mlp.backprop` with the activation and head bound).
      eval_fn: `(params, x, y) -> (mean loss, accuracy)` for ONE model on a whole set.
      learning_rates: K learning rates (or one, broadcast).
      weight_decays: K L2 coefficients λ (or one), passed to `grad_fn`.
      optimizer: "sgd" (default), "momentum" (0.9) or "adam".
      batch_size: mini-batch size; the last incomplete batch of an epoch is dropped.
      epochs: total number of epochs (a resumed run continues up to this number).
      seed: base of the per-model, per-epoch shuffling keys.
      shuffle: "per_model" (each model its own mini-batch order) or "shared" (one order for
        all models: faster, the models then differ only in initialization and hyperparameters).
      checkpoint: optional path; state is saved there after every epoch and a run started
        with an existing checkpoint resumes from it.
      progress: show a progress bar per epoch (needs tqdm).
      on_epoch: optional `(epoch, (train_loss, test_loss, test_accuracy)) -> None` called after
        each epoch (after the checkpoint is written), e.g. for logging.

    Returns:
      (trained params, History).
    """
    models = jax.tree.leaves(params)[0].shape[0]
    learning_rates = jnp.broadcast_to(jnp.asarray(learning_rates, jnp.float32), (models,))
    decays = jnp.broadcast_to(jnp.asarray(weight_decays, jnp.float32), (models,))
    opt = _optimizer(optimizer)(learning_rate=0.0)
    opt_state = jax.vmap(lambda p, lr: _with_lr(opt.init(p), lr))(params, learning_rates)
    x_train, y_train = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    x_test, y_test = jnp.asarray(data.x_test), jnp.asarray(data.y_test)
    n_train = x_train.shape[0]
    if batch_size > n_train:
        raise ValueError(f"train: batch_size {batch_size} exceeds the {n_train} training examples")
    run_epoch = _epoch_program(grad_fn, opt, batch_size, n_train, shuffle)
    evaluate = jax.jit(jax.vmap(eval_fn, in_axes=(0, None, None)))
    base_keys = jax.random.split(jax.random.key(seed), models)

    rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    start = 0
    run_id = {"seed": seed, "models": models, "shuffle": shuffle, "batch_size": batch_size,
              "optimizer": optimizer, "learning_rates": np.asarray(learning_rates).tolist()}
    if checkpoint and os.path.exists(checkpoint):
        params, opt_state, rows, start = _load(checkpoint, run_id)
    bar = _progress(range(start, epochs), progress, start, epochs)
    interrupted = False
    try:
        for epoch in bar:
            keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(base_keys, epoch)
            params, opt_state, train_loss = run_epoch(params, opt_state, keys, decays,
                                                      x_train, y_train)
            test_loss, test_acc = evaluate(params, x_test, y_test)
            row = tuple(np.asarray(v, np.float64) for v in (train_loss, test_loss, test_acc))
            _stop_on_nan(row[0], epoch)
            rows.append(row)
            if checkpoint:
                _save(checkpoint, params, opt_state, rows, epoch + 1, run_id)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{row[0].mean():.4f}", acc=f"{row[2].mean():.4f}")
            if on_epoch:
                on_epoch(epoch, row)
    except KeyboardInterrupt:
        interrupted = True
    return params, _history(rows, models, interrupted)


def _with_lr(state, lr):
    state.hyperparams["learning_rate"] = lr
    return state


def _stop_on_nan(train_loss, epoch):
    bad = np.flatnonzero(np.isnan(train_loss))
    if bad.size:
        raise NaNLossError(f"train: the training loss of model(s) {bad.tolist()} became NaN in "
                           f"epoch {epoch + 1} (try a smaller learning rate)")


def _history(rows, models, interrupted):
    if not rows:
        empty = np.zeros((models, 0))
        return History(empty, empty.copy(), empty.copy(), interrupted)
    stacked = [np.stack(col, axis=1) for col in zip(*rows, strict=True)]
    return History(*stacked, interrupted=interrupted)


def _progress(epochs, enabled, start, total):
    if not enabled:
        return epochs
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return epochs
    return tqdm(epochs, initial=start, total=total, unit="epoch", leave=False)


def _save(path, params, opt_state, rows, epoch, run_id):
    """Write the checkpoint atomically: a temporary file in the same directory, then rename.

    The shuffling keys are not stored: they are derived from (seed, model, epoch), and the
    seed is part of `run_id`, which a resume must match.
    """
    state = {"params": jax.tree.map(np.asarray, params),
             "opt_state": jax.tree.map(np.asarray, opt_state), "rows": rows, "epoch": epoch,
             "run": run_id}
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        pickle.dump(state, f)
    os.replace(tmp, path)


def _load(path, run_id):
    """Read a checkpoint written by `_save` (a pickle: load only files you wrote yourself)."""
    with open(path, "rb") as f:
        state = pickle.load(f)
    if state["run"] != run_id:
        raise ValueError(f"train: checkpoint {path} belongs to a different run: it was saved "
                         f"with {state['run']}, this run has {run_id}")
    to_jax = lambda tree: jax.tree.map(jnp.asarray, tree)  # noqa: E731
    return to_jax(state["params"]), to_jax(state["opt_state"]), state["rows"], state["epoch"]
