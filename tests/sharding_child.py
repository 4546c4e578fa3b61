"""Multi-device checks of `jaxsoft.sharding`, run by tests/test_sharding.py in a fresh process.

The CPU shows one device unless XLA is told otherwise before jax starts, so the test runs
`python tests/sharding_child.py` with XLA_FLAGS=--xla_force_host_platform_device_count=8 and
reads the one JSON object this prints (measured errors, shapes, messages); the assertions
live in the test. Importing this file (pytest's doctest collection does) starts nothing.
"""

import functools
import json
import os
import sys
import types

import jax  # XLA reads XLA_FLAGS when the first computation starts, not at import
import jax.numpy as jnp
import numpy as np

from jaxsoft import mlp, sharding, train

# The single-device reference, jitted (eager, each new shape compiles every op: ~2 s a call).
backprop = jax.jit(mlp.backprop, static_argnums=(3, 4, 6))


def rel_err(a, b):
    """max |a − b| / max |b| over all leaves of two pytrees."""
    num = max(float(np.max(np.abs(np.asarray(u, np.float64) - np.asarray(v, np.float64))))
              for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))
    den = max(float(np.max(np.abs(np.asarray(v, np.float64)))) for v in jax.tree.leaves(b))
    return num / den


def problem(dtype, head, sizes, m, seed=0):
    """Parameters, inputs (m, n_in) and labels for `head` (categorical: integers)."""
    kp, kx, ky = jax.random.split(jax.random.key(seed), 3)
    params = jax.tree.map(lambda a: a.astype(dtype), mlp.init(kp, sizes))
    x = jax.random.normal(kx, (m, sizes[0]), dtype)
    if head == "categorical":
        y = jax.random.randint(ky, (m,), 0, sizes[-1])
    else:
        y = jax.random.normal(ky, (m, sizes[-1]), dtype)
    return params, x, y


def check_grads(mesh, out):
    """data_parallel_grad vs mlp.backprop on the whole batch, float64 and float32."""
    cases = [("sigmoid", "categorical", [6, 5, 4]), ("tanh", "gaussian", [6, 5, 4, 3])]
    for name, dtype in (("float64", jnp.float64), ("float32", jnp.float32)):
        with jax.enable_x64(name == "float64"):
            for act, head, sizes in cases:
                params, x, y = problem(dtype, head, sizes, 16)
                kw = dict(activation=act, head=head, weight_decay=0.3, n_train=100)
                c, g = sharding.data_parallel_grad(params, x, y, mesh=mesh, **kw)
                c1, g1 = backprop(params, x, y, act, head, 0.3, 100)
                out["grad"].append({"dtype": name, "case": f"{act}/{head}",
                                    "grad_rel_err": rel_err(g, g1),
                                    "cost_rel_err": rel_err(c, c1),
                                    "out_dtype": str(g[0]["w"].dtype)})


def check_placement(mesh, out):
    """Where the batch, the parameters and the results live; the compiled program's psum."""
    params, x, y = problem(jnp.float32, "categorical", [6, 5, 4], 16)
    xs = sharding.place(x, mesh, sharding.P("data"))
    ys = sharding.place(y, mesh, sharding.P("data"))
    rows = {s.device.id: np.asarray(s.data).tolist() for s in xs.addressable_shards}
    out["x_shard_shapes"] = sharding.shard_shapes(xs)
    out["x_shard_rows_ok"] = all(
        rows[dev.id] == np.asarray(x[2 * i:2 * i + 2]).tolist()
        for i, dev in enumerate(mesh.devices.flat))
    pr = sharding.place(params, mesh, sharding.P())
    out["params_shard_shapes"] = sharding.shard_shapes(pr[0]["w"])
    step = jax.jit(functools.partial(sharding.data_parallel_step, mesh=mesh, learning_rate=0.5))
    new, _ = step(pr, xs, ys)
    out["new_params_shard_shapes"] = sharding.shard_shapes(new[0]["w"])
    out["new_params_replicated"] = all(a.sharding.is_fully_replicated
                                       for a in jax.tree.leaves(new))
    hlo = step.lower(pr, xs, ys).compile().as_text()
    out["hlo_all_reduce"] = "all-reduce" in hlo


def check_steps(mesh, out):
    """Three data-parallel SGD steps vs three single-device ones (float64)."""
    with jax.enable_x64(True):
        params, x, y = problem(jnp.float64, "categorical", [6, 5, 4], 24, seed=1)
        p_dp, p_1 = params, params
        for s in range(3):
            xb, yb = x[8 * s:8 * s + 8], y[8 * s:8 * s + 8]
            p_dp, _ = sharding.data_parallel_step(p_dp, xb, yb, mesh=mesh, learning_rate=0.5,
                                                  weight_decay=0.1, n_train=24)
            _, g = backprop(p_1, xb, yb, "sigmoid", "categorical", 0.1, 24)
            p_1 = jax.tree.map(lambda p, gi: p - 0.5 * gi, p_1, g)
        out["steps_rel_err"] = rel_err(p_dp, p_1)


def check_training(mesh, out):
    """data_parallel_train vs train.train with one model: same parameters and losses."""
    params, x, y = problem(jnp.float32, "categorical", [6, 5, 4], 64, seed=2)
    data = types.SimpleNamespace(x_train=x, y_train=y, x_test=x[:8], y_test=y[:8])

    def grad_fn(p, xb, yb, decay, n_train):
        return mlp.backprop(p, xb, yb, "tanh", "categorical", weight_decay=decay,
                            n_train=n_train)

    def eval_fn(p, xe, ye):
        return mlp.loss(p, xe, ye, "tanh"), mlp.accuracy(p, xe, ye, "tanh")

    for optimizer in ("sgd", "momentum"):
        kw = dict(learning_rate=0.3, weight_decay=0.2, optimizer=optimizer, batch_size=16,
                  epochs=2, seed=5)
        p_dp, losses = sharding.data_parallel_train(params, x, y, mesh=mesh, activation="tanh",
                                                    **kw)
        kw["learning_rates"], kw["weight_decays"] = kw.pop("learning_rate"), kw.pop(
            "weight_decay")
        stacked = jax.tree.map(lambda a: a[None], params)
        p_1, history = train.train(stacked, data, grad_fn=grad_fn, eval_fn=eval_fn,
                                   progress=False, **kw)
        out["train"].append({
            "optimizer": optimizer,
            "params_rel_err": rel_err(p_dp, jax.tree.map(lambda a: a[0], p_1)),
            "loss_rel_err": float(np.max(np.abs(losses - history.train_loss[0]))
                                  / np.max(np.abs(history.train_loss[0]))),
            "moved": rel_err(p_dp, params),
            "replicated": all(a.sharding.is_fully_replicated for a in jax.tree.leaves(p_dp))})


def check_errors(mesh, out):
    """Batch sizes that do not divide the device count."""
    params, x, y = problem(jnp.float32, "categorical", [6, 5, 4], 12)
    for fn, call in (
        ("grad", lambda: sharding.data_parallel_grad(params, x, y, mesh=mesh)),
        ("train", lambda: sharding.data_parallel_train(params, x, y, mesh=mesh,
                                                       learning_rate=0.1, batch_size=6)),
    ):
        try:
            call()
            out["errors"][fn] = None
        except ValueError as e:
            out["errors"][fn] = str(e)


def main():
    # The test sets XLA_FLAGS; this line makes `python tests/sharding_child.py` work alone.
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_force_host_platform_device_count=8")
    jax.config.update("jax_numpy_rank_promotion", "raise")  # as tests/conftest.py
    jax.config.update("jax_numpy_dtype_promotion", "strict")
    out = {"devices": jax.device_count(), "grad": [], "train": [], "errors": {}}
    mesh = sharding.mesh_1d("data")
    check_grads(mesh, out)
    check_placement(mesh, out)
    check_steps(mesh, out)
    check_training(mesh, out)
    check_errors(mesh, out)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
