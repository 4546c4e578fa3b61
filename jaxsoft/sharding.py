r"""Several devices: a mesh, arrays placed on it, data-parallel MLP steps, vocabulary-parallel CE.

Everything goes through `jax.sharding` (`Mesh`, `NamedSharding`, `PartitionSpec`) and
`jax.shard_map`; the only communication is `jax.lax.psum` (and `pmax`), and XLA emits it.

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

**Vocabulary parallel** (Megatron-LM's parallel cross-entropy). The weight w [d, V] of
`jaxsoft.linear_cross_entropy` is split by columns over a mesh axis of k devices: device i
holds w_i = w[:, i·V/k : (i+1)·V/k] (and that slice of the bias); x and the labels are on
every device. Device i runs `linear_cross_entropy`'s chunk loop on its own columns only and
gets, for every token, the exact statistics of its slice of the logits z (`Partials`):

    m_i = max_{j∈i} z_j,   1 + s_i = Σ_{j∈i} e^{z_j − m_i},   z_{y,i} = z_y if y ∈ i else 0,
    Σ_{j∈i} (z_j − m_i),   V/k.

All-reduces over the axis give every device the row's statistics (`_combine` with
`reduce_max = pmax`, `reduce_sum = psum`):

    M = pmax_i m_i,   1 + s = psum_i (1 + s_i)·e^{m_i − M},   z_y = psum_i z_{y,i},

where the shard(s) holding M add s_i (and a tie count) exactly and the others
(1 + s_i)·e^{δ}(1 + ε) with m_i − M = δ + ε by TwoSum, and then every device finishes the same
CE = log1p(s) − (z_y − M) (`_token_loss`; label smoothing uses the psum of Σ (z_j − M) and of
the column counts). Megatron all-reduces the max, the target logit and Σ e^{z − M}; here it
is one pmax and five psums per token chunk. psum is exact enough, no all_gather is needed:
every sum is of same-signed terms (s, ties and counts ≥ 0, Σ (z_j − M) ≤ 0, and z_y has one
non-zero term), so the all-reduce's order changes the last bit only, never the relative
accuracy of a tiny loss, and the max is exact in any order. (An all_gather of the k partials
and the chunk-axis `_combine` would only buy results independent of that order.)

Gradients: with the combined row stats (M, log1p s, lse), device i makes G_i = ∂CE/∂z on its
columns and ∂/∂x = psum_i G_i w_iᵀ (the one collective of the backward), ∂/∂w_i = xᵀ G_i,
∂/∂b_i = Σ_tokens G_i, so dw and dbias come out split like w and bias.

**Multi-host, vocabulary parallel.** After `jax.distributed.initialize()` the mesh spans all
hosts' devices and each process provides only the columns of its own devices:

    jax.distributed.initialize()
    mesh = sharding.mesh_1d("vocab")                        # every device of every host
    cols = NamedSharding(mesh, P(None, "vocab"))
    w = jax.make_array_from_callback((d, V), cols, lambda index: w_file[index])  # its columns
    b = jax.make_array_from_callback((V,), NamedSharding(mesh, P("vocab")),
                                     lambda index: b_file[index])
    x = sharding.place(x_host, mesh, P())        # the same tokens on every process (or x
    labels = sharding.place(y_host, mesh, P())   # straight from the model's forward pass)
    loss, (dx, dw, db) = jax.jit(jax.value_and_grad(
        lambda x, w, b: sharding.vocab_parallel_linear_cross_entropy(
            x, w, labels, bias=b, mesh=mesh, reduction="mean"), argnums=(0, 1, 2)))(x, w, b)

(`w_file` e.g. `np.load(path, mmap_mode="r")`: the callback reads the slice `index` of each
local device.) dw and db stay split over the hosts like w and b; each process sees its own
columns in `dw.addressable_shards`. `jax.make_array_from_process_local_data(cols, local_w)`
does the same from the process's contiguous block of columns.

Sections: meshes and placement · data parallel · vocabulary parallel.
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
from jaxsoft.losses import linear

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

VOCAB_FN = "vocab_parallel_linear_cross_entropy"


def vocab_parallel_linear_cross_entropy(x, w, labels, *, mesh: Mesh, axis_name: str = "vocab",
                                        bias=None, where=None, ignore_index=None,
                                        label_smoothing=0.0, z_loss=0.0, softcap=None,
                                        reduction="none", token_chunk=None, vocab_chunk=None):
    r"""`jaxsoft.linear_cross_entropy` with the classes split over the mesh axis `axis_name`.

    Device i of the k on the axis holds the columns i·V/k ... (i + 1)·V/k − 1 of w (and of
    the bias) and computes, chunk by chunk as `linear_cross_entropy` does, the exact
    statistics of its slice of every token's logits (max, Σ e^{z − max}, target logit,
    Σ (z − max) and the column count); `jax.lax.pmax`/`psum` over the axis combine them into
    the row's (`_combine`, the Megatron combine in exact form), and every device finishes the
    same loss. No device holds w or the tokens × V logits: besides the replicated x (and
    dx) it has its (d, V/k) slice of w (and of dw), V/k of the bias and one token_chunk ×
    vocab_chunk block of logits at a time.

    Derivatives (the custom VJP of `linear_cross_entropy`, run on each device): with the
    combined row stats, each device makes its block G_i = ∂CE/∂z of its columns and

        ∂/∂x = Σ_i G_i w_iᵀ  (a psum over the axis),   ∂/∂w_i = xᵀ G_i,   ∂/∂b_i = Σ_tok G_i,

    so dw and dbias stay split like w and bias (no communication) and dx is replicated.
    `jax.grad` goes through the jitted `shard_map`. On an Explicit mesh (`jax.make_mesh`'s
    default) JAX needs eager `jax.grad` of any function of mesh arrays inside `jax.jit` or
    `with jax.set_mesh(mesh)` (it builds the output's unit cotangent on the mesh).

    Args:
      x: [..., d] hidden states, replicated on the mesh (placed there if not: tokens split
        over another mesh axis are gathered first; token parallelism is not built in).
      w: [d, V] weights; V must be a multiple of the axis size k. Best placed with
        `place(w, mesh, P(None, axis_name))` (it is split over the axis if not).
      labels: integer array of shape x.shape[:-1] (global class indices), replicated.
      mesh: the device mesh; axis_name: its axis the classes are split over.
      bias, where, ignore_index, label_smoothing, z_loss, softcap, reduction: as
        `jaxsoft.linear_cross_entropy` (bias placed as `P(axis_name)`).
      token_chunk, vocab_chunk: block sizes on each device (vocab_chunk ≤ V/k; None: the
        defaults of `linear_cross_entropy` for V/k columns).

    Returns:
      The losses of `linear_cross_entropy` (labels.shape, or a scalar when reduced),
      replicated on the mesh; equal to it up to the rounding of the combine's sums.

    Example:
      >>> import jax, jax.numpy as jnp, jaxsoft
      >>> from jaxsoft import sharding
      >>> mesh = sharding.mesh_1d("vocab")
      >>> x = jax.random.normal(jax.random.key(0), (6, 4))
      >>> w = jax.random.normal(jax.random.key(1), (4, 8 * mesh.size))
      >>> y = jnp.array([0, 3, 7, 1, 2, 5])
      >>> loss = sharding.vocab_parallel_linear_cross_entropy(x, w, y, mesh=mesh,
      ...                                                    reduction="mean")
      >>> one = jaxsoft.linear_cross_entropy(x, w, y, reduction="mean")
      >>> bool(jnp.allclose(loss, one, rtol=1e-6))
      True

    References:
      Shoeybi et al., "Megatron-LM: Training Multi-Billion Parameter Language Models Using
      Model Parallelism" (2019), section 3 (the parallel cross-entropy).
    """
    k = _axis_size(mesh, axis_name, VOCAB_FN)
    x, w, bias, labels, where = linear._check_inputs(x, w, bias, labels, where, VOCAB_FN)
    vocab = w.shape[1]
    if vocab % k:
        raise ValueError(f"{VOCAB_FN}: the vocabulary size V = {vocab} (w.shape[1]) is not "
                         f"divisible by the size {k} of mesh axis {axis_name!r}; V must be a "
                         f"multiple of {k}")
    tokens = labels.size
    opts = linear._options(tokens, vocab // k, ignore_index=ignore_index,
                           label_smoothing=label_smoothing, z_loss=z_loss, softcap=softcap,
                           reduction=reduction, token_chunk=token_chunk,
                           vocab_chunk=vocab_chunk, axis_name=axis_name, fn=VOCAB_FN)
    mask = None if where is None else where.reshape(-1)
    loss = _vocab_program(x.reshape(tokens, x.shape[-1]), w, bias, labels.reshape(-1), mask,
                          mesh=mesh, opts=opts)
    if reduction == "none":
        loss = loss.reshape(labels.shape)
    return loss.astype(x.dtype)


@functools.partial(jax.jit, static_argnames=("mesh", "opts"))
def _vocab_program(x, w, bias, labels, mask, *, mesh, opts):
    """One jitted `shard_map` of `linear._lce`, whose custom VJP then runs on each device too.

    Its backward psums dx, so the cotangent of the replicated x leaves each device already
    summed and `shard_map`'s transpose adds nothing; dw and dbias leave as the shards they are.
    """
    ax, replicated = opts.axis_name, P()
    specs = (replicated, P(None, ax), P(ax), replicated, replicated)
    args = tuple(_to(a, mesh, spec, ax) for a, spec in zip((x, w, bias, labels, mask), specs,
                                                              strict=True))
    local = jax.shard_map(lambda *a: linear._lce(*a, opts), mesh=mesh, in_specs=specs,
                          out_specs=replicated)
    return local(*args)
