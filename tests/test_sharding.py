"""jaxsoft.sharding on 8 devices: the data-parallel gradient, steps and training equal the
single-device ones, the batch is really split, and a batch that does not divide fails clearly.

The CPU has one device unless XLA_FLAGS asks for more before jax starts, so the checks run in
a child process (tests/sharding_child.py, started once per module) that prints its
measurements as JSON; the assertions are here.
"""

import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

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
