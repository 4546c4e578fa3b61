"""jaxsoft.sharding on 8 devices: the data-parallel gradient, steps and training equal the
single-device ones, the batch is really split, and a batch that does not divide fails clearly;
the vocabulary-parallel linear CE equals the single-device one in value and gradients, each
device holds only its columns of w and dw, and a V that does not divide fails clearly.

The CPU has one device unless XLA_FLAGS asks for more before jax starts, so the checks run in
a child process (tests/sharding_child.py, started once per module) that prints its
measurements as JSON; the assertions are here.
"""

import functools
import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsoft
from jaxsoft import mlp, sharding

CHILD = pathlib.Path(__file__).with_name("sharding_child.py")
DEVICES = 8


@pytest.fixture(scope="module")
def report():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "")
                        + f" --xla_force_host_platform_device_count={DEVICES}")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(CHILD.parent.parent), env.get("PYTHONPATH")) if p)
    run = subprocess.run([sys.executable, str(CHILD)], env=env, capture_output=True, text=True,
                         timeout=300, check=False)
    assert run.returncode == 0, f"child failed:\n{run.stderr[-4000:]}"
    out = json.loads(run.stdout)
    assert out["devices"] == DEVICES
    return out


def test_gradient_equals_single_device_backprop(report):
    assert len(report["grad"]) == 4
    for row in report["grad"]:
        tol = 1e-12 if row["dtype"] == "float64" else 2e-6
        assert row["out_dtype"] == row["dtype"], row
        assert row["grad_rel_err"] <= tol, row
        assert row["cost_rel_err"] <= tol, row


def test_batch_is_split_and_params_replicated(report):
    # a batch of 16 rows: each of the 8 devices holds its own 2 (rows 2i, 2i + 1 on device i)
    assert report["x_shard_shapes"] == {str(i): [2, 6] for i in range(DEVICES)}
    assert report["x_shard_rows_ok"]
    # the (5, 6) first-layer weights: a full copy on every device, before and after a step
    assert report["params_shard_shapes"] == {str(i): [5, 6] for i in range(DEVICES)}
    assert report["new_params_shard_shapes"] == report["params_shard_shapes"]
    assert report["new_params_replicated"]
    assert report["hlo_all_reduce"]  # the psum is a real cross-device reduction


def test_sgd_steps_equal_single_device_steps(report):
    assert report["steps_rel_err"] <= 1e-12  # float64, three steps of 8 examples (1 a device)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_training_equals_train_train(report, optimizer):
    (row,) = [r for r in report["train"] if r["optimizer"] == optimizer]
    assert row["moved"] > 0.1  # the parameters did change: 2 epochs × 4 steps
    assert row["params_rel_err"] <= 1e-6, row  # float32
    assert row["loss_rel_err"] <= 1e-6, row
    assert row["replicated"]


def test_batch_not_divisible_by_devices_is_a_clear_error(report):
    grad, train = report["errors"]["grad"], report["errors"]["train"]
    assert grad is not None and "batch size 12" in grad and "8 devices" in grad
    assert train is not None and "batch size 6" in train and "8 devices" in train


def test_unknown_mesh_axis_and_bad_shapes():
    mesh = sharding.mesh_1d("data", devices=jax.devices()[:1])
    params = mlp.init(jax.random.key(0), [3, 2])
    x, y = jnp.ones((4, 3)), jnp.zeros((4,), jnp.int32)
    with pytest.raises(ValueError, match=r"axes \('data',\), not 'model'"):
        sharding.data_parallel_grad(params, x, y, mesh=mesh, axis_name="model")
    with pytest.raises(ValueError, match=r"y.shape \(3,\)"):
        sharding.data_parallel_grad(params, x, y[:3], mesh=mesh)


# ------------------------------------------------------------------------ vocabulary parallel
# d = 5, V = 48 over 8 devices: 6 columns each (tests/sharding_child.py, VOCAB_CASES).


def _vocab_rows(report):
    return [*report["vocab"], dict(report["vocab_tie"], case="tie", dtype="float32")]


def test_vocab_parallel_equals_single_device(report):
    assert len(report["vocab"]) == 4
    for row in _vocab_rows(report):
        # float64 measured ≤ 2e-16, float32 ≤ 2e-7: the combine's sums in another order only
        tol = 1e-13 if row["dtype"] == "float64" else 2e-6
        assert row["out_dtype"] == row["dtype"], row
        assert row["loss_rel_err"] <= tol, row
        assert set(row["grad_rel_err"]) >= {"x", "w"}, row
        assert all(err <= tol for err in row["grad_rel_err"].values()), row
    assert sum("bias" in row["grad_rel_err"] for row in report["vocab"]) == 3


def test_vocab_parallel_ties_across_devices_and_tiny_losses(report):
    tie = report["vocab_tie"]
    assert tie["largest_tiny"] < 1e-15  # confident predictions: losses of 1e-16 and below
    assert tie["max_ulps"] <= 4  # vs the float64 core CE, as linear_cross_entropy promises
    got_log2, ref_log2, got_three, ref_three = tie["tie_losses"]
    assert got_log2 == float(np.float32(np.log(2))) and abs(ref_log2 - np.log(2)) < 1e-15
    assert abs(got_three - ref_three) <= 4 * np.spacing(np.float32(ref_three))


def test_vocab_parallel_each_device_holds_its_columns(report):
    for row in _vocab_rows(report):
        d = 8 if row["case"] == "tie" else 5  # the tie case has x = I (d = 8 tokens)
        assert row["w_shard_shapes"] == {str(i): [d, 6] for i in range(DEVICES)}, row
        assert row["dw_shard_shapes"] == row["w_shard_shapes"], row
        if "db_shard_shapes" in row:
            assert row["db_shard_shapes"] == {str(i): [6] for i in range(DEVICES)}, row
        assert row["dx_replicated"] and row["loss_replicated"], row
        # the combine and dx's sum are real cross-device reductions; nothing is gathered
        assert row["hlo_all_reduce"] >= 2 and not row["hlo_all_gather"], row
        # no device holds w (d × 48) or the logits (tokens × 48); with chunks smaller than
        # its 6 columns, nothing larger than x and dx (tokens × d; d = 5: not tokens × 6)
        assert row["hlo_largest"] < min(d * 48, row["tokens"] * 48), row
        if row["chunked"]:
            assert row["hlo_largest"] <= row["tokens"] * d, row


def test_vocab_not_divisible_by_devices_is_a_clear_error(report):
    message = report["vocab_error"]
    assert message is not None and "V = 46" in message and "size 8 of mesh axis 'vocab'" in message


def test_vocab_parallel_on_one_device_and_bad_arguments():
    mesh = sharding.mesh_1d("vocab", devices=jax.devices()[:1])
    x = jax.random.normal(jax.random.key(0), (6, 4))
    w = jax.random.normal(jax.random.key(1), (4, 10))
    y = jnp.array([0, 3, 9, 1, -100, 5])
    kw = dict(ignore_index=-100, label_smoothing=0.1, reduction="mean")
    got = sharding.vocab_parallel_linear_cross_entropy(x, w, y, mesh=mesh, vocab_chunk=3, **kw)
    ref = jax.jit(functools.partial(jaxsoft.linear_cross_entropy, **kw))(x, w, y)
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    vp = sharding.vocab_parallel_linear_cross_entropy
    with pytest.raises(ValueError, match=r"axes \('vocab',\), not 'model'"):
        vp(x, w, y, mesh=mesh, axis_name="model")
    with pytest.raises(ValueError, match=r"vocab_parallel_linear_cross_entropy: label_smooth"):
        vp(x, w, y, mesh=mesh, label_smoothing=2.0)
    with pytest.raises(ValueError, match=r"vocab_parallel_linear_cross_entropy: x.shape\[-1\]"):
        vp(x, w[:3], y, mesh=mesh)
