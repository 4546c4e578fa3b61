"""Multi-device checks of `jaxsoft.sharding`, run by tests/test_sharding.py in a fresh process.

The CPU shows one device unless XLA is told otherwise before jax starts, so the test runs
`python tests/sharding_child.py` with XLA_FLAGS=--xla_force_host_platform_device_count=8 and
reads the one JSON object this prints (measured errors, shapes, messages); the assertions
live in the test. Importing this file (pytest's doctest collection does) starts nothing.
"""

import functools
import json
import os
import re
import sys
import types

import jax  # XLA reads XLA_FLAGS when the first computation starts, not at import
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType
from test_linear_cross_entropy import _data  # tests/ is on sys.path

import jaxsoft
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


# ------------------------------------------------------------------------ vocabulary parallel

VOCAB_D, VOCAB_V = 5, 48  # 6 classes a device
# (name, dtype, Auto mesh axis?, token shape, bias?, options, (token_chunk, vocab_chunk)):
# every option, each reduction, ragged chunks on a device (14 = 5 + 5 + 4 and 13 = 3·4 + 1
# tokens, 6 = 4 + 2 columns) and one block per device (default chunks: the forward-gradient
# path, where the all-reduces sit between the logits and G).
VOCAB_CASES = [
    ("none: mask, ignore_index, smoothing, z_loss", "float64", False, (2, 7), True,
     dict(where=True, ignore_index=-100, label_smoothing=0.1, z_loss=1e-2), (5, 4)),
    ("mean: ignore_index, smoothing", "float64", False, (13,), True,
     dict(ignore_index=-100, label_smoothing=0.2, reduction="mean"), (None, None)),
    ("sum: softcap, z_loss, no bias", "float64", False, (13,), False,
     dict(softcap=3.0, z_loss=1e-3, reduction="sum"), (4, 4)),
    ("mean: everything, Auto mesh", "float32", True, (13,), True,
     dict(where=True, ignore_index=-100, label_smoothing=0.1, z_loss=1e-2, softcap=4.0,
          reduction="mean"), (None, None)),
]


def vocab_problem(dtype, shape, bias, where, ignore_index, seed=0):
    return _data(shape, dtype, bias, where, ignore_index, seed, d=VOCAB_D, v=VOCAB_V)


def largest_array(hlo):
    """The most elements of any array in a compiled (per-device) HLO text."""
    return max(int(np.prod([int(n) for n in dims.split(",") if n] or [1]))
               for dims in re.findall(r"(?:f64|f32|bf16|f16|s32|s64|pred)\[([\d,]*)\]", hlo))


def loss_and_grads(fn, labels, mask, options, x, w, b, ct):
    """fn's loss and its pullback of `ct` to (x, w, bias)."""
    loss, pull = jax.vjp(lambda x, w, b: fn(x, w, labels, bias=b, where=mask, **options),
                         x, w, b)
    return loss, pull(ct)


def compare_vocab(mesh, dtype, shape, bias, options, chunks, data=None):
    """vocab_parallel_linear_cross_entropy vs linear_cross_entropy: value and gradients (the
    parallel one compiled ahead, its HLO kept), and where the arrays live."""
    options = dict(options)
    where = options.pop("where", False)
    x, w, b, labels, mask = data or vocab_problem(dtype, shape, bias, where,
                                                  options.get("ignore_index"))
    reduction = options.get("reduction", "none")
    ct = (jnp.asarray(np.random.default_rng(9).normal(size=shape), dtype)
          if reduction == "none" else jnp.asarray(0.7, dtype))
    kw = dict(options, token_chunk=chunks[0], vocab_chunk=chunks[1])
    vp = functools.partial(sharding.vocab_parallel_linear_cross_entropy, mesh=mesh)
    xs, labels_s = sharding.place((x, labels), mesh, sharding.P())
    ws = sharding.place(w, mesh, sharding.P(None, "vocab"))
    bs = None if b is None else sharding.place(b, mesh, sharding.P("vocab"))
    run = jax.jit(functools.partial(loss_and_grads, vp, labels_s, mask, kw))
    compiled = run.lower(xs, ws, bs, ct).compile()
    loss, grads = compiled(xs, ws, bs, ct)
    ref, ref_grads = jax.jit(functools.partial(
        loss_and_grads, jaxsoft.linear_cross_entropy, labels, mask, kw))(x, w, b, ct)
    hlo = compiled.as_text()
    row = {"loss_rel_err": rel_err(loss, ref), "out_dtype": str(loss.dtype),
           "tokens": labels.size, "chunked": chunks != (None, None),
           "grad_rel_err": {n: rel_err(g, r) for n, g, r in zip(
               ("x", "w", "bias"), grads, ref_grads, strict=True) if r is not None},
           "w_shard_shapes": sharding.shard_shapes(ws),
           "dw_shard_shapes": sharding.shard_shapes(grads[1]),
           "dx_replicated": grads[0].sharding.is_fully_replicated,
           "loss_replicated": loss.sharding.is_fully_replicated,
           "hlo_all_reduce": hlo.count("all-reduce("), "hlo_all_gather": "all-gather" in hlo,
           "hlo_largest": largest_array(hlo)}
    if b is not None:
        row["db_shard_shapes"] = sharding.shard_shapes(grads[2])
    return row, loss


def check_vocab_parallel(out):
    explicit = sharding.mesh_1d("vocab")
    auto = jax.make_mesh((8,), ("vocab",), axis_types=(AxisType.Auto,))
    for name, dtype, is_auto, shape, bias, options, chunks in VOCAB_CASES:
        with jax.enable_x64(dtype == "float64"):
            row, _ = compare_vocab(auto if is_auto else explicit, jnp.dtype(dtype), shape,
                                   bias, options, chunks)
        out["vocab"].append({"case": name, "dtype": dtype, **row})
    check_vocab_tie(explicit, out)
    try:
        x, w, _, labels, _ = vocab_problem(jnp.float32, (4,), True, False, None)
        sharding.vocab_parallel_linear_cross_entropy(x, w[:, :VOCAB_V - 2],
                                                     labels, mesh=explicit)
        out["vocab_error"] = None
    except ValueError as e:
        out["vocab_error"] = str(e)


def check_vocab_tie(mesh, out):
    """float32 logits z given exactly (x = I, w = z): confident predictions (tiny losses) and
    ties of the row max between devices, vs float64 core CE in ulps and vs one device."""
    rng = np.random.default_rng(3)
    n, per = 8, VOCAB_V // 8
    z = rng.uniform(-95.0, -40.0, (n, VOCAB_V)).astype(np.float32)
    labels = rng.integers(0, VOCAB_V, n)
    z[np.arange(n), labels] = rng.uniform(-5, 5, n)  # confident and correct: loss ~1e-20
    z[1, (labels[1] + 3 * per) % VOCAB_V] = z[1, labels[1]]  # the label's max tied 3 devices on
    z[2, [1, 2 * per + 1, 7 * per]] = 9.0  # a three-device tie above the label: loss ≈ 9 − z_y
    x, w = jnp.eye(n, dtype=jnp.float32), jnp.asarray(z)
    row, loss = compare_vocab(mesh, jnp.float32, (n,), False, {}, (3, 4),
                              data=(x, w, None, jnp.asarray(labels), None))
    with jax.enable_x64(True):
        ref = jaxsoft.softmax_cross_entropy_with_integer_labels(
            jnp.asarray(z, jnp.float64), jnp.asarray(labels))
        ref = np.asarray(ref)
    ulps = np.abs(np.float64(loss) - ref) / np.spacing(np.abs(np.float32(ref)))
    out["vocab_tie"] = {**row, "max_ulps": float(np.max(ulps)),
                        "largest_tiny": float(np.max(np.delete(ref, [1, 2]))),
                        "tie_losses": [float(loss[1]), float(ref[1]), float(loss[2]),
                                       float(ref[2])]}


def main():
    # The test sets XLA_FLAGS; this line makes `python tests/sharding_child.py` work alone.
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_force_host_platform_device_count=8")
    jax.config.update("jax_numpy_rank_promotion", "raise")  # as tests/conftest.py
    jax.config.update("jax_numpy_dtype_promotion", "strict")
    out = {"devices": jax.device_count(), "grad": [], "train": [], "errors": {}, "vocab": []}
    mesh = sharding.mesh_1d("data")
    check_grads(mesh, out)
    check_placement(mesh, out)
    check_steps(mesh, out)
    check_training(mesh, out)
    check_errors(mesh, out)
    check_vocab_parallel(out)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
