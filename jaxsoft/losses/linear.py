r"""Linear cross-entropy: the cross-entropy of logits x @ w (+ bias), never built whole.

The loss is `softmax_cross_entropy_with_integer_labels(x @ w + bias, labels)` (same options
and conventions), computed over (token chunk × vocabulary chunk) blocks, so no tokens × V
array exists in the forward or the backward.

Exactness. Each vocabulary chunk c of a token's logits gives exact partial statistics, as
`jaxsoft.softmax.Stats` does for a whole row (`_partials`):

    m_c = max_{j∈c} z_j,    Σ_{j∈c} e^{z_j − m_c} = 1 + s_c,

and the chunks are combined exactly (`_combine`): with M = max_c m_c and m_c − M = δ_c + ε_c
recovered by TwoSum,

    s = (ties − 1) + Σ_{m_c = M} s_c + Σ_{m_c < M} (1 + s_c)·e^{δ_c}(1 + ε_c),

a sum of non-negative terms in which the chunk(s) holding M enter exactly. The loss is then
the core formula (log1p(s) − (z_y − M)) with z_y − M split by TwoSum, so it keeps the core
library's ≤ 4 ulp (relative, also for the tiny loss of a confident prediction).

Vocabulary parallel (`jaxsoft.sharding.vocab_parallel_linear_cross_entropy`). `_lce` itself
runs under `jax.shard_map` on each device's columns of w when `_Opts.axis_name` names the
mesh axis they are split over: the chunk loop (`_rows`) yields that shard's `Partials` (its
`vocab_start` = axis index × V_local), `_all_columns` combines the shards' with
`_combine(p, reduce_max=partial(lax.pmax, ...), reduce_sum=partial(lax.psum, ...))`, and
`_token_loss` and `_logit_grad` (with the global V) finish; the gradient loop (`_chunk_grads`)
is driven by those combined row stats, and dx is summed over the shards (`_sum_shards`).

Gradients (a `jax.custom_vjp`). With G = ∂CE/∂z = softmax(z)·(1 + 2·z_loss·lse) − target
(times c·tanh's derivative 1 − tanh²(r/c) with a softcap), ∂/∂x = G wᵀ, ∂/∂w = xᵀ G and
∂/∂bias = Σ_tokens G. For reduction "mean"/"sum" they are computed in the forward pass,
chunk by chunk, and only scaled by the cotangent in the backward (Liger-Kernel style: three
matmuls, as the naive version, when one vocabulary chunk holds V). For "none" the forward
keeps the per-token (max, log1p(s), lse) and the backward recomputes the chunk logits.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsoft import _checks
from jaxsoft.losses.cross_entropy import _row_factor
from jaxsoft.softmax import Stats, merge, probs, two_diff_halved

FN = "linear_cross_entropy"
# Elements in one chunk of logits by default: 128 MiB of float32. Measured at N = 4096,
# d = 1024, V = 65536 (jitted value_and_grad of the mean, 2-core CPU; naive 4.99 s and
# 2048 MiB of planned temporaries): blocks of 64/128/256/512/1024 tokens took
# 7.40/5.67/4.87/4.42/4.23 s and planned 25/42/75/142/276 MiB. Small blocks lose on the
# matmuls: ∂x = G wᵀ with few rows repacks all of w per block, and each block adds its xᵀG
# into ∂w.
LOGITS_BUDGET = 2**25
MIN_TOKENS = 256  # the default vocabulary chunk leaves room for at least this many tokens
# ... and a default token chunk holds at most MAX_TOKENS: at d = 256, V = 16384
# (examples/next_token.py) 512-token blocks took 396 ms a step and planned 69 MiB, 2048-token
# blocks 451 ms and 260 MiB.
MAX_TOKENS = 512
DW_PIECE = 2**21  # elements of dw updated by one matmul (`_add_dw`)


# -------------------------------------------------------------------- chunk statistics (exact)


class Partials(NamedTuple):
    """Exact per-token statistics of one vocabulary chunk (or of several, once combined).

    Every field has the tokens' shape [T] (plus any leading chunk axis):
      m: max of the chunk's logits (−finfo.max for a chunk of −inf logits).
      s: Σ_{j∈c} e^{z_j − m} − 1, as `Stats.s` (ties − 1 + Σ_{z<m} e^{d}(1 + err)); −1 for a
        chunk of −inf logits.
      z_y: the target logit if the label falls in the chunk, else 0 (so a sum over chunks
        picks it out exactly).
      sum_shift: Σ_{j∈c} (z_j − m), each term exact (≤ 0), for label smoothing.
      count: the number of columns in the chunk (as a float).
    """

    m: jax.Array
    s: jax.Array
    z_y: jax.Array
    sum_shift: jax.Array
    count: jax.Array


def _chunk_logits(x_chunk, w_chunk, bias_chunk, softcap):
    """(z, t): the block's logits in the compute dtype, and t = tanh(r/c) (None w/o softcap).

    The matmul runs in the input dtype and accumulates in the compute dtype (float32 for
    bf16/f16). With a softcap c the logits are z = c·tanh(r/c) of the raw r = x w + b.
    """
    ct = _checks.compute_dtype(x_chunk.dtype)
    z = jnp.matmul(x_chunk, w_chunk, preferred_element_type=ct)
    if bias_chunk is not None:
        z = z + bias_chunk.astype(ct)[None, :]
    if softcap is None:
        return z, None
    t = jnp.tanh(z / softcap)
    # The max() (a no-op, t ≥ −1) rounds c·t before any consumer sees it: XLA fuses the
    # product into each consumer and on CPU contracts m − c·t into an FMA, which made
    # m − z ≠ 0 at the max (measured: s off by 1, before `Stats` read x through min(x, m));
    # the target logit z_y, gathered from z, relies on it still.
    return jnp.maximum(softcap * t, -softcap), t


def _partials_of_logits(z, labels, vocab_start, *, sums=True):
    """`Partials` of a logits block z [T, Vc] whose column j is class `vocab_start + j`.

    (m, s) come from `Stats` (which cuts few long rows into sub-rows itself). sums=False
    leaves out sum_shift (0): only label smoothing needs it, and a third row sum costs a pass.
    """
    width = z.shape[1]
    local = labels - jnp.asarray(vocab_start).astype(labels.dtype)
    st = Stats(z, (1,), None, rows_kernel=False)  # the chunk loop keeps its own fusions
    z_y = jnp.take_along_axis(st.x, jnp.clip(local, 0, width - 1)[:, None], axis=1)[:, 0]
    count = jnp.full(labels.shape, width, z.dtype)
    # Σ (z_j − m), each term exact (≤ 0)
    sum_shift = jnp.sum(st.d + st.err, axis=1) if sums else jnp.zeros_like(count)
    return Partials(m=st.m[:, 0], s=st.s[:, 0], z_y=jnp.where((local >= 0) & (local < width),
                                                             z_y, 0),
                    sum_shift=sum_shift, count=count)


def _partials(x_chunk, w_chunk, bias_chunk, labels, vocab_start, *, softcap=None, sums=True):
    """Exact per-token statistics of one vocabulary chunk of the logits x w + b.

    Args:
      x_chunk: [T, d] hidden states of a chunk of tokens.
      w_chunk: [d, Vc] the columns `vocab_start ... vocab_start + Vc − 1` of w.
      bias_chunk: [Vc] the same slice of the bias, or None.
      labels: [T] integer labels (global class indices).
      vocab_start: the class index of the chunk's first column (int or traced scalar).
      softcap: optional c > 0: the logits are c·tanh((x w + b)/c).
      sums: False leaves sum_shift out (0): only label smoothing needs it.

    Returns:
      `Partials`, each field [T], in the compute dtype.
    """
    z, _ = _chunk_logits(x_chunk, w_chunk, bias_chunk, softcap)
    return _partials_of_logits(z, labels, vocab_start, sums=sums)


def _chunk_max(a):
    return jnp.max(a, axis=0, keepdims=True)


def _chunk_sum(a):
    return jnp.sum(a, axis=0, keepdims=True)


def _combine(partials, reduce_max=_chunk_max, reduce_sum=_chunk_sum):
    """Combine the `Partials` of several vocabulary chunks into those of their union, exactly.

    (m, s) by `jaxsoft.softmax.merge`: M = max_c m_c, 1 + s = Σ_c (1 + s_c) e^{m_c − M} as
    non-negative terms. z_y and the counts are sums (z_y is 0 outside the label's chunk);
    sum_shift moves each chunk's Σ(z_j − m_c) to the new max by count·(m_c − M).

    Args:
      partials: `Partials` whose fields carry the chunks along the axis the reductions reduce.
      reduce_max, reduce_sum: the reductions over chunks; their result must broadcast against
        their input. Default: over a leading chunk axis, kept as size 1. Under `shard_map`,
        `partial(jax.lax.pmax, axis_name=ax)` and `partial(jax.lax.psum, axis_name=ax)`.

    Returns:
      `Partials` of the union (the shape of the reductions' results).
    """
    p = partials
    m, s, (delta, err) = merge(p.m, p.s, reduce_max, reduce_sum)
    moved = p.count * (delta + err)
    return Partials(m=m, s=s, z_y=reduce_sum(p.z_y), sum_shift=reduce_sum(p.sum_shift + moved),
                    count=reduce_sum(p.count))


# ------------------------------------------------------------------------- loss and gradient


class _Opts(NamedTuple):
    smoothing: float
    z_loss: float
    ignore_index: int | None
    softcap: float | None
    reduction: str
    token_chunk: int
    vocab_chunk: int
    axis_name: str | None = None  # the `shard_map` axis w's columns are split over, if any


def _columns(opts, local_vocab):
    """(vocab_start, V): the class of w's first column and the number of classes.

    One device: (0, w.shape[1]). With the classes split over the `jax.shard_map` axis
    `opts.axis_name`, shard i holds the classes i·V_l ... (i + 1)·V_l − 1 of V = V_l·(size).
    """
    if opts.axis_name is None:
        return 0, local_vocab
    ax = opts.axis_name
    return jax.lax.axis_index(ax) * local_vocab, jax.lax.axis_size(ax) * local_vocab


def _all_columns(rows, opts):
    """A token's `Partials` over all V classes from this shard's: `_combine` with pmax/psum
    over the shards (Megatron's all-reduces of the max, target logit and Σ exp, in exact
    form). One device: `rows` unchanged."""
    if opts.axis_name is None:
        return rows
    ax = opts.axis_name
    return _combine(rows, reduce_max=functools.partial(jax.lax.pmax, axis_name=ax),
                    reduce_sum=functools.partial(jax.lax.psum, axis_name=ax))


def _sum_shards(a, opts):
    """Σ over the column shards (dx = Σ_shards G_l w_lᵀ); one device: `a` unchanged."""
    return a if opts.axis_name is None else jax.lax.psum(a, opts.axis_name)


def _zeros(shape, dtype, opts):
    """An accumulator of this shard's gradient contributions, typed as differing between the
    shards (`shard_map` checks that a loop's carry keeps its type); one device: zeros."""
    a = jnp.zeros(shape, dtype)
    return a if opts.axis_name is None else jax.lax.pcast(a, opts.axis_name, to="varying")


def _token_flags(labels, mask, vocab, ignore_index, dtype):
    """(counted, keep, poison) per token, as the core CE: counted tokens (not ignored, not
    masked) have keep 1, the others 0; poison is NaN for a counted token with a label outside
    [0, V), else 0 (made as 0/0 only there)."""
    valid = (labels >= 0) & (labels < vocab)
    ignored = labels == ignore_index if ignore_index is not None else jnp.zeros_like(valid)
    present = mask if mask is not None else jnp.ones_like(valid)
    keep, poison = _row_factor(valid, ignored, present)
    return keep > 0, keep.astype(dtype), poison.astype(dtype)


def _token_loss(rows, keep, poison, smoothing, z_loss):
    """Per-token loss from a row's combined `Partials` (the core CE's formula), and the row
    stats (m, log1p(s), lse) the gradient needs."""
    log1p_s = jnp.log1p(jnp.maximum(rows.s, 0))
    d_y, err_y = two_diff_halved(rows.z_y, rows.m)
    loss = (log1p_s - d_y) - err_y  # −log softmax_y, both terms ≥ 0
    if smoothing:
        mean_shift = rows.sum_shift / jnp.maximum(rows.count, 1)
        loss = (1 - smoothing) * loss + smoothing * (log1p_s - mean_shift)
    lse = rows.m + jnp.log1p(rows.s)
    if z_loss:
        loss = loss + z_loss * lse**2
    return jnp.where(keep == 0, 0, loss) + poison, (rows.m, log1p_s, lse)


def _logit_grad(z, t, labels, vocab_start, stats, smoothing, z_loss, vocab):
    """∂CE/∂r on a logits block: (softmax·(1 + 2·z_loss·lse) − target)·(1 − t²).

    target = (1 − α)·onehot(y) + α/V; t = tanh(r/c) with a softcap (else no factor); `stats`
    = (m, log1p(s), lse) per token, from `_token_loss`. Not yet scaled per token.
    """
    m, log1p_s, lse = (a[:, None] for a in stats)
    p = probs(z, m, log1p_s)
    if z_loss:
        p = p * (1 + 2 * z_loss * jnp.where(jnp.isfinite(lse), lse, 0))
    local = labels - jnp.asarray(vocab_start).astype(labels.dtype)
    onehot = jax.lax.broadcasted_iota(labels.dtype, z.shape, 1) == local[:, None]
    g = p - (1 - smoothing) * onehot.astype(z.dtype)
    if smoothing:
        g = g - smoothing / vocab
    return g if t is None else g * (1 - t * t)  # d/dr c·tanh(r/c) = 1 − tanh²(r/c)


# ------------------------------------------------------------------------------ chunk loops


def _chunks(total, size, body, carry):
    """Run `body(carry, start, n) -> (carry, out)` over [0, total) in chunks of `size`.

    The full chunks run in one `lax.scan` (start traced); a ragged remainder runs once more at
    its own static width, so nothing is ever padded. Returns the carry and the outputs stacked
    along a new leading axis (None when `body` returns None).
    """
    full, rest = divmod(total, size)
    outs = []
    if full == 1:
        carry, out = body(carry, 0, size)
        outs.append(jax.tree.map(lambda a: a[None], out))
    elif full > 1:
        carry, out = jax.lax.scan(lambda c, i: body(c, i * size, size), carry,
                                  jnp.arange(full))
        outs.append(out)
    if rest:
        carry, out = body(carry, full * size, rest)
        outs.append(jax.tree.map(lambda a: a[None], out))
    if len(outs) < 2:
        return carry, outs[0] if outs else None
    return carry, jax.tree.map(lambda *a: jnp.concatenate(a), *outs)


def _slice(a, start, n, axis):
    return None if a is None else jax.lax.dynamic_slice_in_dim(a, start, n, axis)


def _rows(x_c, w, bias, labels_c, opts, vocab_start=0):
    """The combined `Partials` of a token chunk over w's columns (classes `vocab_start` on): a
    loop over vocabulary chunks, then one `_combine` of all their partials (exact, whatever
    their number)."""

    def body(_, start, n):
        return None, _partials(x_c, _slice(w, start, n, 1), _slice(bias, start, n, 0),
                               labels_c, vocab_start + start, softcap=opts.softcap,
                               sums=bool(opts.smoothing))

    _, stacked = _chunks(w.shape[1], opts.vocab_chunk, body, None)
    return jax.tree.map(lambda a: a[0], _combine(stacked))


def _add_dw(dw, x_c, g_in, start, acc):
    """dw[:, start:start + n] += x_cᵀ G, in pieces of ≤ `DW_PIECE` elements: XLA on CPU writes
    a matmul's result to a temporary before adding it, so a piece is all of dw that is ever
    doubled (measured at N = 4096, d = 1024, V = 65536, 256-token blocks: 322 → 75 MiB of
    planned temporaries, same time)."""
    columns = max(DW_PIECE // x_c.shape[1], 1)

    def body(dw, s, m):
        piece = jnp.matmul(x_c.T, _slice(g_in, s, m, 1), preferred_element_type=acc)
        return jax.lax.dynamic_update_slice_in_dim(
            dw, _slice(dw, start + s, m, 1) + piece, start + s, 1), None

    return _chunks(g_in.shape[1], columns, body, dw)[0]


def _accumulate(g, x_c, w_k, start, grads):
    """Add one block's contributions: dx_c += G w_kᵀ, dw[:, block] += x_cᵀ G, db += Σ G."""
    dx_c, dw, db = grads
    acc, n = g.dtype, g.shape[1]
    g_in = g.astype(x_c.dtype)  # the matmuls run in the input dtype, accumulate in `acc`
    dx_c = dx_c + jnp.matmul(g_in, w_k.T, preferred_element_type=acc)
    dw = _add_dw(dw, x_c, g_in, start, acc)
    if db is not None:
        db = jax.lax.dynamic_update_slice_in_dim(db, _slice(db, start, n, 0) + g.sum(0),
                                                 start, 0)
    return dx_c, dw, db


def _chunk_grads(x_c, w, bias, labels_c, stats, scale, opts, dw, db):
    """(dx_c, dw, db) of a token chunk given its final row stats (over all V classes): a loop
    over w's vocabulary chunks recomputing each block of logits; `scale` [T] multiplies each
    token's G. With the classes split over shards, dx_c is this shard's part G_l w_lᵀ."""
    vocab_start, vocab = _columns(opts, w.shape[1])

    def body(grads, start, n):
        w_k = _slice(w, start, n, 1)
        z, t = _chunk_logits(x_c, w_k, _slice(bias, start, n, 0), opts.softcap)
        g = _logit_grad(z, t, labels_c, vocab_start + start, stats, opts.smoothing,
                        opts.z_loss, vocab)
        return _accumulate(g * scale[:, None], x_c, w_k, start, grads), None

    dx_c = _zeros(x_c.shape, dw.dtype, opts)
    return _chunks(w.shape[1], opts.vocab_chunk, body, (dx_c, dw, db))[0]


def _forward(x, w, bias, labels, mask, opts, grads):
    """Per-token losses [N] and row stats; with `grads`, also (dx, dw, db) for "mean"/"sum"
    (unscaled by the cotangent), all in the compute dtype. Classes split over shards
    (`opts.axis_name`): w and bias are this shard's columns, dw and db its slices."""
    n = labels.shape[0]
    vocab_start, vocab = _columns(opts, w.shape[1])
    ct = _checks.compute_dtype(x.dtype)
    counted, keep_all, _ = _token_flags(labels, mask, vocab, opts.ignore_index, ct)
    scale = 1.0
    if opts.reduction == "mean":
        scale = 1 / jnp.maximum(jnp.sum(keep_all), 1e-30)  # as `_checks.reduce`
    zero_rows = mask is not None or opts.ignore_index is not None
    one_vocab_chunk = opts.vocab_chunk >= w.shape[1]

    def body(carry, start, size):
        loss, stats, dx, dw, db = carry
        x_c, labels_c = _slice(x, start, size, 0), _slice(labels, start, size, 0)
        counted_c, keep, poison = _token_flags(labels_c, _slice(mask, start, size, 0), vocab,
                                               opts.ignore_index, ct)
        if zero_rows:  # tokens that do not count never see their x: no NaN can leak in
            x_c = jnp.where(counted_c[:, None], x_c, 0)
        if grads and one_vocab_chunk:  # one block of logits serves the loss and G
            z, t = _chunk_logits(x_c, w, bias, opts.softcap)
            rows = jax.tree.map(lambda a: a[0], _combine(jax.tree.map(
                lambda a: a[None], _partials_of_logits(z, labels_c, vocab_start,
                                                       sums=bool(opts.smoothing)))))
        else:
            rows = _rows(x_c, w, bias, labels_c, opts, vocab_start)
        rows = _all_columns(rows, opts)
        loss_c, stats_c = _token_loss(rows, keep, poison, opts.smoothing, opts.z_loss)
        loss = jax.lax.dynamic_update_slice_in_dim(loss, loss_c, start, 0)
        stats = tuple(jax.lax.dynamic_update_slice_in_dim(a, b, start, 0)
                      for a, b in zip(stats, stats_c, strict=True))
        if grads:
            row_scale = (keep + poison) * scale
            if one_vocab_chunk:
                g = _logit_grad(z, t, labels_c, vocab_start, stats_c, opts.smoothing,
                                opts.z_loss, vocab)
                zero = jnp.zeros(x_c.shape, ct)
                dx_c, dw, db = _accumulate(g * row_scale[:, None], x_c, w, 0, (zero, dw, db))
            else:
                dx_c, dw, db = _chunk_grads(x_c, w, bias, labels_c, stats_c, row_scale, opts,
                                            dw, db)
            dx = jax.lax.dynamic_update_slice_in_dim(dx, dx_c, start, 0)
        return (loss, stats, dx, dw, db), None

    row = jnp.zeros((n,), ct)
    carry = (row, (row, row, row), None, None, None)
    if grads:
        db = None if bias is None else _zeros(bias.shape, ct, opts)
        carry = (row, (row, row, row), _zeros(x.shape, ct, opts), _zeros(w.shape, ct, opts),
                 db)
    (loss, stats, dx, dw, db), _ = _chunks(n, opts.token_chunk, body, carry)
    if grads:
        dx = _sum_shards(dx, opts)
    return loss, stats, (dx, dw, db), jnp.sum(counted)


def _finish(loss, count, reduction):
    return _checks.reduce(loss, reduction, FN, count=count)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _lce(x, w, bias, labels, mask, opts):
    loss, _, _, count = _forward(x, w, bias, labels, mask, opts, grads=False)
    return _finish(loss, count, opts.reduction)


def _lce_fwd(x, w, bias, labels, mask, opts):
    if opts.reduction == "none":
        loss, stats, _, count = _forward(x, w, bias, labels, mask, opts, grads=False)
        return loss, (x, w, bias, labels, mask, stats)
    loss, _, (dx, dw, db), count = _forward(x, w, bias, labels, mask, opts, grads=True)
    db = None if db is None else db.astype(bias.dtype)
    return _finish(loss, count, opts.reduction), (dx.astype(x.dtype), dw.astype(w.dtype), db)


def _lce_bwd(opts, residuals, ct):
    if opts.reduction != "none":  # gradients made in the forward: scale by the cotangent
        dx, dw, db = residuals
        dx, dw = dx * ct.astype(dx.dtype), dw * ct.astype(dw.dtype)
        db = None if db is None else db * ct.astype(db.dtype)
        return dx, dw, db, None, None
    x, w, bias, labels, mask, stats = residuals
    vocab, acc = _columns(opts, w.shape[1])[1], ct.dtype
    zero_rows = mask is not None or opts.ignore_index is not None

    def body(carry, start, size):
        dx, dw, db = carry
        x_c, labels_c = _slice(x, start, size, 0), _slice(labels, start, size, 0)
        counted_c, keep, poison = _token_flags(labels_c, _slice(mask, start, size, 0), vocab,
                                               opts.ignore_index, acc)
        if zero_rows:
            x_c = jnp.where(counted_c[:, None], x_c, 0)
        stats_c = tuple(_slice(a, start, size, 0) for a in stats)
        row_scale = (keep + poison) * _slice(ct, start, size, 0)
        dx_c, dw, db = _chunk_grads(x_c, w, bias, labels_c, stats_c, row_scale, opts, dw, db)
        return (jax.lax.dynamic_update_slice_in_dim(dx, dx_c, start, 0), dw, db), None

    db = None if bias is None else _zeros(bias.shape, acc, opts)
    carry = (_zeros(x.shape, acc, opts), _zeros(w.shape, acc, opts), db)
    (dx, dw, db), _ = _chunks(labels.shape[0], opts.token_chunk, body, carry)
    dx = _sum_shards(dx, opts)
    db = None if db is None else db.astype(bias.dtype)
    return dx.astype(x.dtype), dw.astype(w.dtype), db, None, None


_lce.defvjp(_lce_fwd, _lce_bwd)


# ---------------------------------------------------------------------------------- public


def _even_chunk(total, most):
    """The chunk size ≤ `most` that splits `total` into the fewest, most equal chunks."""
    parts = max(-(-total // most), 1)
    return max(-(-total // parts), 1)


def default_chunks(tokens, vocab):
    """The default (token_chunk, vocab_chunk): one chunk of logits holds ≤ `LOGITS_BUDGET`
    elements (128 MiB of float32) and ≤ `MAX_TOKENS` tokens; vocab_chunk = V when V ≤
    LOGITS_BUDGET / MIN_TOKENS (131072, which holds Llama 3's 128256), else V split into
    equal chunks no larger than that."""
    vocab_chunk = _even_chunk(vocab, LOGITS_BUDGET // MIN_TOKENS)
    return _token_chunk(tokens, vocab_chunk), vocab_chunk


def _token_chunk(tokens, vocab_chunk):
    return _even_chunk(tokens, min(LOGITS_BUDGET // vocab_chunk, MAX_TOKENS))


def _chunk_arg(value, name, fn=FN):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{fn}: {name} must be a positive int or None, got {value!r}")
    if value <= 0:
        raise ValueError(f"{fn}: {name} must be a positive int or None, got {value}")
    return int(value)


def _check_inputs(x, w, bias, labels, where, fn=FN):
    x = _checks.as_float(x, "x", fn)
    w = _checks.as_float(w, "w", fn)
    if x.ndim < 1 or w.ndim != 2:
        raise ValueError(f"{fn}: x must be [..., d] and w [d, V], got x.shape {x.shape} and "
                         f"w.shape {w.shape}")
    if x.shape[-1] != w.shape[0]:
        raise ValueError(f"{fn}: x.shape[-1] ({x.shape[-1]}) must equal w.shape[0] "
                         f"({w.shape[0]}), the hidden size d (x {x.shape}, w {w.shape})")
    if w.shape[1] < 1:
        raise ValueError(f"{fn}: w.shape {w.shape} has no class (V = 0)")
    if w.dtype != x.dtype:
        raise TypeError(f"{fn}: w.dtype {w.dtype} must equal x.dtype {x.dtype}")
    if bias is not None:
        bias = _checks.as_float(bias, "bias", fn)
        _checks.same_shape(bias, (w.shape[1],), "bias", fn, "one bias per class, w.shape[1]")
        if bias.dtype != x.dtype:
            raise TypeError(f"{fn}: bias.dtype {bias.dtype} must equal x.dtype {x.dtype}")
    labels = _checks.as_labels(labels, "labels", fn)
    _checks.same_shape(labels, x.shape[:-1], "labels", fn, "x.shape[:-1], one label per token")
    where = _checks.as_mask(where, labels.shape, "where", fn)
    return x, w, bias, labels, where


def _options(tokens, local_vocab, *, ignore_index, label_smoothing, z_loss, softcap,
             reduction, token_chunk, vocab_chunk, axis_name=None, fn=FN):
    """The checked `_Opts`; default chunks sized for w's `local_vocab` columns."""
    if reduction not in _checks.REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be one of {_checks.REDUCTIONS}, "
                         f"got {reduction!r}")
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"{fn}: label_smoothing must lie in [0, 1], got {label_smoothing}")
    if softcap is not None and not softcap > 0:
        raise ValueError(f"{fn}: softcap must be a positive number or None, got {softcap}")
    token_chunk = _chunk_arg(token_chunk, "token_chunk", fn)
    vocab_chunk = _chunk_arg(vocab_chunk, "vocab_chunk", fn)
    vocab_chunk = min(vocab_chunk or default_chunks(tokens, local_vocab)[1], local_vocab)
    if token_chunk is None:  # the default for the vocab_chunk in use
        token_chunk = _token_chunk(tokens, vocab_chunk)
    token_chunk = max(min(token_chunk, tokens), 1)
    return _Opts(float(label_smoothing), float(z_loss),
                 None if ignore_index is None else int(ignore_index),
                 None if softcap is None else float(softcap), reduction, token_chunk,
                 vocab_chunk, axis_name)


def linear_cross_entropy(x, w, labels, *, bias=None, where=None, ignore_index=None,
                         label_smoothing=0.0, z_loss=0.0, softcap=None, reduction="none",
                         token_chunk=None, vocab_chunk=None, validate=False):
    r"""Cross-entropy of the logits z = x w (+ bias) against integer labels, in chunks.

    Equals `softmax_cross_entropy_with_integer_labels(x @ w + bias, labels, ...)` (with the
    same label_smoothing, z_loss, ignore_index, reduction and poison conventions) without
    ever holding the tokens × V logits: the forward and backward work on blocks of
    token_chunk × vocab_chunk logits and combine exact per-chunk normalizer statistics, so
    the loss keeps the core ≤ 4 ulp (relative, also for tiny losses).

    CE = log1p(s) − (z_y − M) with M = max_j z_j and Σ_j e^{z_j − M} = 1 + s. With a softcap
    c the logits are z = c·tanh(r/c), r = x w + b (Gemma 2).

    Derivative: with G = softmax(z)·(1 + 2·z_loss·lse) − target (target = (1 − α)·onehot(y)
    + α/V) times 1 − tanh²(r/c) under a softcap, ∂CE/∂x = G wᵀ, ∂CE/∂w = xᵀ G, ∂CE/∂bias =
    Σ_tokens G (each token's G times the cotangent, 1/count for "mean").

    Conventions (as the core CE): `where` False tokens and tokens whose label equals
    `ignore_index` give loss 0 and gradient 0 and are left out of the mean (their x is not
    read, so even NaN there stays out); a counted token with a label outside [0, V) gives NaN
    loss and NaN gradient (its dx row, and all of dw and dbias); `validate=True` checks the
    labels of counted tokens instead (run under `jaxsoft.checked`). A "mean" over no counted
    token is 0.

    Memory: the temporaries are blocks of logits (and their G), token_chunk × vocab_chunk in
    the compute dtype; by default ≤ 2**25 elements (128 MiB of float32) and ≤ 512 tokens a
    block, with vocab_chunk = V up to V = 131072, plus 8 MiB pieces of ∂w's update.
    token_chunk trades speed for memory (at N = 4096, d = 1024, V = 65536 on a 2-core CPU:
    the default 512-token blocks 4.42 s and 142 MiB of planned temporaries, 64-token blocks
    7.40 s and 25 MiB; the naive head 4.99 s and 2048 MiB).
    For "mean"/"sum" the gradients are computed in the forward pass and stored (x- and
    w-sized residuals; the backward only scales them), which keeps three matmuls when one
    vocabulary chunk holds V (four otherwise: the logits are recomputed once the row
    normalizer is known). For "none" the forward keeps three numbers per token and the
    backward recomputes the logits (four matmuls). Reverse mode only (a
    `jax.custom_vjp`): `jax.jvp`/`jacfwd` are not supported.

    Args:
      x: [..., d] floating hidden states (any leading token dims).
      w: [d, V] weights, the dtype of x.
      labels: integer array of shape x.shape[:-1].
      bias: optional [V] bias, the dtype of x.
      where: optional boolean token mask of labels.shape; False tokens do not count.
      ignore_index: optional label value to ignore.
      label_smoothing: α ∈ [0, 1].
      z_loss: coefficient of z_loss·(log Σ_j e^{z_j})².
      softcap: optional c > 0: logits c·tanh((x w + b)/c).
      reduction: "none" (per token, default), "mean" (over counted tokens) or "sum".
      token_chunk, vocab_chunk: block sizes (positive ints; None picks them as above; a
        size ≥ the axis means one chunk; ragged last chunks are fine).
      validate: record a run-time check of the labels (see `jaxsoft.checked`).

    Returns:
      Per-token losses of labels.shape (or a scalar when reduced) in x.dtype. bf16/f16 inputs:
      matmuls in the input dtype accumulating in float32, all statistics in float32, the
      loss rounded once; gradients in the dtypes of x, w and bias.

    Example:
      >>> import jax, jax.numpy as jnp, jaxsoft
      >>> x = jax.random.normal(jax.random.key(0), (6, 4))
      >>> w = jax.random.normal(jax.random.key(1), (4, 10))
      >>> y = jnp.array([0, 3, 9, 1, 2, 5])
      >>> fast = jaxsoft.linear_cross_entropy(x, w, y, reduction="mean", token_chunk=4,
      ...                                     vocab_chunk=3)
      >>> naive = jaxsoft.softmax_cross_entropy_with_integer_labels(x @ w, y, reduction="mean")
      >>> bool(jnp.allclose(fast, naive, rtol=1e-6))
      True

    References:
      Liger-Kernel's fused linear cross-entropy (Hsu et al., 2024); Wijmans et al., "Cut
      Your Losses in Large-Vocabulary Language Models" (2024).
    """
    x, w, bias, labels, where = _check_inputs(x, w, bias, labels, where)
    tokens, vocab = labels.size, w.shape[1]
    opts = _options(tokens, vocab, ignore_index=ignore_index, label_smoothing=label_smoothing,
                    z_loss=z_loss, softcap=softcap, reduction=reduction,
                    token_chunk=token_chunk, vocab_chunk=vocab_chunk)
    if validate:
        ok = ((labels >= 0) & (labels < vocab)) | (labels == opts.ignore_index)
        if where is not None:
            ok = ok | ~where
        _checks.runtime_check(ok, f"{FN}: labels must lie in [0, {vocab}) or equal "
                              f"ignore_index={opts.ignore_index}")
    mask = None if where is None else where.reshape(-1)
    loss = _lce(x.reshape(tokens, x.shape[-1]), w, bias, labels.reshape(-1), mask, opts)
    if reduction == "none":
        loss = loss.reshape(labels.shape)
    return loss.astype(x.dtype)
