r"""Training over several devices: a mesh, arrays placed on it, and data-parallel MLP steps.

Everything goes through `jax.sharding` (`Mesh`, `NamedSharding`, `PartitionSpec`) and
`jax.shard_map`; the only communication is `jax.lax.psum`, and XLA emits it.

**Data parallel.** The parameters are replicated on every device of a 1-D mesh (axis
"data"); a mini-batch of m examples is split into d equal row blocks, one per device. Each
device runs the library's hand-derived `mlp.backprop` on its m/d examples, which returns the
mean over them, and the blocks are combined with the weights of their sizes:

    ∂C/∂θ = Σ_s (m_s / m) · ∂C_s/∂θ = psum_s(∂C_s/∂θ) / d      (m_s = m/d for every shard s)

— the full-batch mean, exactly as `mlp.backprop` on the whole batch (up to the order of the
float additions). The L2 term (λ/n)·W is the same on every shard and so comes out once.
Every device then applies the same SGD update to its copy, so the parameters stay replicated.
`data_parallel_train` runs `jaxsoft.train`'s one-model epoch (a `lax.scan` over shuffled
mini-batches, optax update) with this gradient and reproduces its parameters.

**Multi-host.** The same code runs with one process per host: every process calls
`jax.distributed.initialize` first (coordinator address, process count and id; on Cloud TPU,
SLURM and similar clusters they are detected when left out), `jax.devices()` then lists the
devices of all processes, and the mesh is built over them. Each process loads only its own
rows of every global batch and `jax.make_array_from_process_local_data` assembles the global
array (global shape = local shape with the rows × process count):

    import jax
    from jax.sharding import NamedSharding, PartitionSpec as P
    from jaxsoft import mlp, sharding

    jax.distributed.initialize()   # or (coordinator_address="10.0.0.1:1234",
                                   #     num_processes=4, process_id=i)
    mesh = sharding.mesh_1d("data")               # over jax.devices(): all hosts
    params = sharding.place(mlp.init(jax.random.key(0), [784, 30, 10]), mesh, P())
    rows = NamedSharding(mesh, P("data"))
    for local_x, local_y in my_loader(jax.process_index(), jax.process_count()):
        x = jax.make_array_from_process_local_data(rows, local_x)   # (m, 784), m/d per device
        y = jax.make_array_from_process_local_data(rows, local_y)
        params, cost = sharding.data_parallel_step(
            params, x, y, mesh=mesh, learning_rate=0.1,
            activation="sigmoid", head="categorical")

`place` with the same parameters on every process works because `jax.device_put` accepts
host data for a global sharding when every process passes the same value (it checks).
`shard_shapes` reports only the devices of the calling process (`addressable_shards`).

Sections: meshes and placement · data parallel · (vocabulary parallel: to come, issue 5).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from jaxsoft import mlp, train

P = PartitionSpec

# ------------------------------------------------------------------- meshes and placement


def mesh_1d(axis_name: str = "data", *, devices: Sequence | None = None) -> Mesh:
    """A 1-D mesh over `devices` (default `jax.devices()`: every device of every process).

    The axis type is jax's default for `jax.make_mesh` (Explicit in jax 0.10); the functions
    of this module accept Auto meshes too.

    Example:
      >>> from jaxsoft import sharding
      >>> mesh = sharding.mesh_1d("data")
      >>> mesh.axis_names, mesh.size == len(jax.devices())
      (('data',), True)
    """
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("mesh_1d: devices is empty")
    return jax.make_mesh((len(devices),), (axis_name,), devices=devices)


def place(tree, mesh: Mesh, spec: PartitionSpec):
    """`tree`'s arrays on `mesh` with the layout `spec` (`P()`: a full copy on every device,
    `P("data")`: rows split over the "data" axis). Returns new arrays (`jax.device_put`)."""
    return jax.device_put(tree, NamedSharding(mesh, spec))


def shard_shapes(x: jax.Array) -> dict[int, tuple[int, ...]]:
    """{device id: shape of the piece that device stores} for this process's devices.

    Example:
      >>> from jaxsoft import sharding
      >>> mesh = sharding.mesh_1d("data", devices=jax.devices()[:1])
      >>> sharding.shard_shapes(sharding.place(jnp.zeros((8, 3)), mesh, sharding.P("data")))
      {0: (8, 3)}
    """
    return {s.device.id: tuple(s.data.shape) for s in x.addressable_shards}


def _axis_size(mesh: Mesh, axis_name: str, fn: str) -> int:
    if axis_name not in mesh.axis_names:
        raise ValueError(f"{fn}: the mesh has axes {mesh.axis_names}, not {axis_name!r}")
    return mesh.shape[axis_name]


def _to(tree, mesh: Mesh, spec: PartitionSpec, axis_name: str):
    """Lay `tree` out as `spec` before a `shard_map`: an Explicit mesh axis needs the
    arguments' sharding to match (`jax.reshard`); on an Auto axis `shard_map` moves them."""
    if mesh.axis_types[mesh.axis_names.index(axis_name)] == AxisType.Explicit:
        return jax.reshard(tree, NamedSharding(mesh, spec))
    return tree


# --------------------------------------------------------------------------- data parallel


def data_parallel_grad(params, x, y, *, mesh: Mesh, activation="sigmoid", head="categorical",
                       weight_decay=0.0, n_train=None, axis_name: str = "data"):
    r"""`mlp.backprop(params, x, y, ...)` with the batch split over the mesh axis `axis_name`.

    Each of the d devices computes `mlp.backprop` (the mean over its m/d rows) and the results
    are combined by `jax.lax.psum` weighted by m_s/m = 1/d, which gives the full-batch mean;
    the weight-decay term, equal on every device, comes out once.

    Args:
      params: the layers (replicated on the mesh; placed there if they are not).
      x: inputs `(m, n_in)`; m must be a multiple of the axis size d. Best placed with
        `place(x, mesh, P(axis_name))` (an unplaced or replicated batch is split first).
      y: labels for `head`, one row per example (as `mlp.loss`).
      mesh: the device mesh.
      activation, head, weight_decay: as `mlp.backprop`.
      n_train: n in λ/n (a Python int: it is a static argument); default the batch size m.
      axis_name: the mesh axis the batch is split over.

    Returns:
      `(cost, grads)`, replicated on the mesh; equal to `mlp.backprop` on the whole batch.

    Example:
      >>> import jax, jax.numpy as jnp, jaxsoft.mlp as mlp
      >>> from jaxsoft import sharding
      >>> mesh = sharding.mesh_1d("data")
      >>> params = mlp.init(jax.random.key(0), [3, 4, 2])
      >>> x, y = jax.random.normal(jax.random.key(1), (8, 3)), jnp.arange(8) % 2
      >>> c, g = sharding.data_parallel_grad(params, x, y, mesh=mesh)
      >>> c1, g1 = mlp.backprop(params, x, y)
      >>> bool(jnp.allclose(c, c1)), bool(jnp.allclose(g[0]["w"], g1[0]["w"], atol=1e-6))
      (True, True)
    """
    d = _axis_size(mesh, axis_name, "data_parallel_grad")
    if jnp.ndim(x) != 2 or jnp.ndim(y) < 1 or jnp.shape(y)[0] != jnp.shape(x)[0]:
        raise ValueError(f"data_parallel_grad: x must be (batch, n_in) and y have one row per "
                         f"example, got x.shape {jnp.shape(x)} and y.shape {jnp.shape(y)}")
    m = jnp.shape(x)[0]
    if m % d:
        raise ValueError(f"data_parallel_grad: the batch size {m} is not divisible by the {d} "
                         f"devices of mesh axis {axis_name!r}; use a batch size that is a "
                         f"multiple of {d}")
    decay = jnp.asarray(weight_decay, jax.tree.leaves(params)[0].dtype)
    return _grad_program(params, x, y, decay, mesh=mesh, activation=_static(activation),
                         head=head, n_train=n_train, axis_name=axis_name)


def _static(activation):
    """A hashable activation argument for jit's static arguments (a name or a tuple)."""
    return activation if isinstance(activation, str) else tuple(activation)


_STATIC = ("mesh", "activation", "head", "n_train", "axis_name")


# One jitted program: an eager shard_map runs op by op over the devices (~100× slower).
@functools.partial(jax.jit, static_argnames=_STATIC)
def _grad_program(params, x, y, weight_decay, *, mesh, activation, head, n_train, axis_name):
    m = x.shape[0]
    n = m if n_train is None else n_train

    def local(params, x, y, weight_decay):
        cost, grads = mlp.backprop(params, x, y, activation, head, weight_decay, n)
        # Σ_s (m_s/m)·mean_s: the shard means weighted by their share of the batch.
        return jax.tree.map(lambda t: jax.lax.psum(t * (x.shape[0] / m), axis_name),
                            (cost, grads))

    rows, replicated = P(axis_name), P()
    grad = jax.shard_map(local, mesh=mesh, in_specs=(replicated, rows, rows, replicated),
                         out_specs=replicated)
    return grad(_to(params, mesh, replicated, axis_name), _to(x, mesh, rows, axis_name),
                _to(y, mesh, rows, axis_name), _to(weight_decay, mesh, replicated, axis_name))


def _grad_fn(mesh, activation, head, axis_name):
    """`jaxsoft.train`'s `grad_fn(params, x, y, weight_decay, n_train)`, data-parallel."""

    def grad_fn(params, x, y, weight_decay, n_train):
        return data_parallel_grad(params, x, y, mesh=mesh, activation=activation, head=head,
                                  weight_decay=weight_decay, n_train=n_train,
                                  axis_name=axis_name)

    return grad_fn


def data_parallel_step(params, x, y, *, mesh: Mesh, learning_rate, activation="sigmoid",
                       head="categorical", weight_decay=0.0, n_train=None,
                       axis_name: str = "data"):
    r"""One SGD step θ ← θ − η ∂C/∂θ with the gradient of `data_parallel_grad`.

    The update is `jaxsoft.train`'s (optax SGD); it runs on every device on its copy of the
    parameters, which stay replicated. It is one jitted program (compiled once per mesh,
    activation, head, n_train and shapes).

    Args:
      params, x, y, mesh, activation, head, weight_decay, n_train, axis_name: as
        `data_parallel_grad`.
      learning_rate: η.

    Returns:
      `(new params, cost before the step)`, replicated on the mesh.
    """
    return _step_program(params, x, y, learning_rate, weight_decay, mesh=mesh,
                         activation=_static(activation), head=head, n_train=n_train,
                         axis_name=axis_name)


@functools.partial(jax.jit, static_argnames=_STATIC)
def _step_program(params, x, y, learning_rate, weight_decay, *, mesh, activation, head,
                  n_train, axis_name):
    n = x.shape[0] if n_train is None else n_train
    opt = optax.sgd(learning_rate)
    update = train._update_fn(_grad_fn(mesh, activation, head, axis_name), opt, n)
    params, _, cost = update(params, opt.init(params), weight_decay, x, y)
    return params, cost


def data_parallel_train(params, x, y, *, mesh: Mesh, learning_rate, activation="sigmoid",
                        head="categorical", weight_decay=0.0, optimizer="sgd", batch_size=10,
                        epochs=1, seed=0, axis_name: str = "data"):
    """Train ONE model for `epochs` epochs with data-parallel steps; `jaxsoft.train`'s epoch.

    Each epoch is `jaxsoft.train`'s one-model program (jitted: a `lax.scan` over the shuffled
    mini-batches, the last incomplete one dropped, then the optax update) with
    `data_parallel_grad` as its gradient. The shuffling keys are the ones `train.train` gives
    a single model with the same `seed`, so the parameters equal those of
    `train.train(params stacked as 1 model, ...)` up to float rounding. The training set is
    replicated on the mesh (each device keeps a copy); every mini-batch is split over it.

    Args:
      params: the layers of one model (not stacked).
      x, y: the training set, `(n, n_in)` and one label row per example.
      mesh, activation, head, axis_name: as `data_parallel_grad`.
      learning_rate, weight_decay: η and λ (λ/n with n the training-set size, as `train`).
      optimizer: "sgd", "momentum" or "adam" (`train.OPTIMIZERS`).
      batch_size: mini-batch size, a multiple of the mesh axis size.
      epochs, seed: number of epochs; base of the shuffling keys.

    Returns:
      `(params replicated on the mesh, mean training loss of each epoch as a NumPy array)`.
    """
    d = _axis_size(mesh, axis_name, "data_parallel_train")
    n_train = x.shape[0]
    if batch_size % d:
        raise ValueError(f"data_parallel_train: the batch size {batch_size} is not divisible "
                         f"by the {d} devices of mesh axis {axis_name!r}")
    if batch_size > n_train:
        raise ValueError(f"data_parallel_train: batch_size {batch_size} exceeds the {n_train} "
                         f"training examples")
    opt = train._optimizer(optimizer)(learning_rate=0.0)
    run_epoch = jax.jit(train._one_model_epoch(_grad_fn(mesh, activation, head, axis_name),
                                               opt, batch_size, n_train))
    params, x, y = place((params, x, y), mesh, P())
    opt_state = train._with_lr(opt.init(params), jnp.asarray(learning_rate, jnp.float32))
    decay = jnp.asarray(weight_decay, jnp.float32)
    base_key = jax.random.split(jax.random.key(seed), 1)[0]  # train.train's key of model 0/1
    losses = []
    for epoch in range(epochs):
        key = jax.random.fold_in(base_key, epoch)
        params, opt_state, loss = run_epoch(params, opt_state, key, decay, x, y)
        losses.append(loss)
    return params, np.asarray(jnp.stack(losses) if losses else jnp.zeros(0), np.float64)


# ---------------------------------------------------------------------- vocabulary parallel
# (issue 5, part 3, second half: `linear_cross_entropy` with the classes split over a mesh
# axis, combining `jaxsoft.losses.linear`'s per-shard statistics; not written yet.)
