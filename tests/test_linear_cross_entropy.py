"""linear_cross_entropy: the chunked CE of x @ w (+ bias) against the naive core CE.

The reference is the plain composition: logits = x @ w + bias (softcapped if asked), then
`softmax_cross_entropy_with_integer_labels` with the token mask as a class mask. It is run as
two separate programs (logits, then the CE on materialized logits) so that XLA cannot fuse the
logits' arithmetic into the CE's exact row statistics.
"""

import importlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import checkify

import jaxsoft
from jaxsoft.losses import linear

SOFTMAX = importlib.import_module("jaxsoft.softmax")
LCE = jaxsoft.linear_cross_entropy
CE = jaxsoft.softmax_cross_entropy_with_integer_labels
D, V = 5, 11
ALL = dict(where=True, ignore_index=-100, label_smoothing=0.1, z_loss=1e-2, softcap=3.0)


def _data(shape, dtype, bias=True, where=False, ignore_index=None, seed=0, d=D, v=V):
    """(x, w, bias, labels, token mask): random, with masked tokens holding invalid labels and
    every fourth label `ignore_index` (also used by tests/sharding_child.py)."""
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(*shape, d)), dtype)
    w = jnp.asarray(rng.normal(size=(d, v)), dtype)
    b = jnp.asarray(rng.normal(size=(v,)), dtype) if bias else None
    labels = rng.integers(0, v, shape)
    mask = None
    if where:
        mask = rng.random(shape) > 0.25
        labels = np.where(mask, labels, v + 7)  # an invalid label on a masked token: no NaN
        mask = jnp.asarray(mask)
    if ignore_index is not None:
        labels.reshape(-1)[::4] = ignore_index
    return x, w, b, jnp.asarray(labels), mask


def _logits(x, w, b, softcap):
    z = jnp.einsum("...d,dv->...v", x, w)
    if b is not None:
        z = z + b.reshape((1,) * (z.ndim - 1) + (-1,))
    return z if softcap is None else softcap * jnp.tanh(z / softcap)


def _naive(x, w, b, labels, mask, ct, softcap=None, **options):
    """(value, (dx, dw, dbias)) of the naive composition, pulled back with cotangent `ct`."""

    def ce(z):
        where = None if mask is None else jnp.broadcast_to(mask[..., None], z.shape)
        return CE(z, labels, where=where, **options)

    args = (x, w) if b is None else (x, w, b)
    z, pull_logits = jax.vjp(lambda *a: _logits(*a, softcap) if b is not None
                             else _logits(*a, None, softcap), *args)
    loss, pull_ce = jax.vjp(jax.jit(ce), z)
    return loss, pull_logits(*pull_ce(ct))


def _ours(x, w, b, labels, mask, ct, **options):
    def f(*a):
        return LCE(*a[:2], labels, bias=a[2] if b is not None else None, where=mask, **options)

    args = (x, w) if b is None else (x, w, b)

    def run(ct, *args):
        loss, pull = jax.vjp(f, *args)
        return loss, pull(ct)

    return jax.jit(run)(ct, *args)


def _cotangent(reduction, shape, dtype):
    if reduction == "none":
        return jnp.asarray(np.random.default_rng(9).normal(size=shape), dtype)
    return jnp.asarray(0.7, dtype)


def _compare(shape, dtype, bias, options, chunks, rtol):
    options = dict(options)
    where, reduction = options.pop("where", False), options.get("reduction", "none")
    x, w, b, labels, mask = _data(shape, dtype, bias, where, options.get("ignore_index"))
    ct = _cotangent(reduction, shape, dtype)
    got, got_grads = _ours(x, w, b, labels, mask, ct, token_chunk=chunks[0],
                           vocab_chunk=chunks[1], **options)
    ref, ref_grads = _naive(x, w, b, labels, mask, ct, **options)
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.dtype == ref.dtype and got.shape == ref.shape
    assert np.all(np.isfinite(ref))
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=0)
    assert len(got_grads) == len(ref_grads)
    for name, g, r in zip("x w bias".split(), got_grads, ref_grads, strict=False):
        assert g.dtype == r.dtype and g.shape == r.shape, name
        scale = float(jnp.max(jnp.abs(r)))
        assert float(jnp.max(jnp.abs(g - r))) <= rtol * scale, name


# (shape, bias, options, (token_chunk, vocab_chunk)): every option alone and together, each
# reduction, ragged last chunks in both axes (14 = 3·4 + 2 tokens, 11 = 3·3 + 2 classes), a
# chunk ≥ the axis, one-wide chunks, and leading batch dims. The softcap case with 13 = 3·4 + 1
# tokens is the regression test for XLA contracting m − c·tanh into an FMA in a one-token
# chunk (the tie count broke: loss 671 instead of 1.28).
CASES = [
    ((13,), False, {}, (None, None)),
    ((2, 7), True, {}, (4, 3)),
    ((2, 7), True, dict(where=True, reduction="mean"), (5, 4)),
    ((13,), False, dict(ignore_index=-100, reduction="sum"), (4, 11)),
    ((13,), True, dict(label_smoothing=0.2), (13, 3)),
    ((2, 7), False, dict(z_loss=1e-2, reduction="mean"), (100, 100)),
    ((13,), True, dict(softcap=3.0), (4, 3)),
    ((2, 7), True, dict(ALL), (4, 3)),
    ((2, 7), True, dict(ALL, reduction="mean"), (4, 3)),
    ((2, 7), False, dict(ALL, reduction="sum"), (3, 11)),
    ((13,), True, dict(ALL, reduction="mean"), (1, 1)),
    ((2, 3, 2), True, dict(ALL, reduction="none"), (5, 2)),
]


@pytest.mark.parametrize("shape, bias, options, chunks", CASES)
def test_matches_the_naive_ce_float64(shape, bias, options, chunks, x64):
    _compare(shape, jnp.float64, bias, options, chunks, rtol=1e-10)


@pytest.mark.parametrize("shape, bias, options, chunks", [CASES[1], CASES[8], CASES[11]])
def test_matches_the_naive_ce_float32(shape, bias, options, chunks):
    _compare(shape, jnp.float32, bias, options, chunks, rtol=2e-5)


@pytest.mark.parametrize("options, chunks", [(dict(ALL, reduction="mean"), (4, None)),
                                             (dict(ALL), (5, 8)), ({}, (14, None))])
def test_sub_rows_match_the_naive_ce_float64(options, chunks, monkeypatch, x64):
    """Block rows cut into sub-rows by `Stats` (`jaxsoft.softmax.sub_rows`: two here, or three
    for the 24-wide rows) and merged exactly; the reference runs before the patch, whole."""
    options = dict(options)
    where, reduction = options.pop("where", False), options.get("reduction", "none")
    x, w, b, labels, mask = _data((2, 7), jnp.float64, True, where,
                                  options.get("ignore_index"), v=24)
    ct = _cotangent(reduction, (2, 7), jnp.float64)
    ref, ref_grads = _naive(x, w, b, labels, mask, ct, **options)
    monkeypatch.setattr(SOFTMAX, "sub_rows", lambda rows, width: 3 if width == 24 else
                        2 if width in (8, 12) else 1)
    calls, merge = [], SOFTMAX.merge
    monkeypatch.setattr(SOFTMAX, "merge", lambda *a: calls.append(1) or merge(*a))
    got, got_grads = _ours(x, w, b, labels, mask, ct, token_chunk=chunks[0],
                           vocab_chunk=chunks[1], **options)
    assert calls, "the sub-row path did not run"
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=0)
    for g, r in zip(got_grads, ref_grads, strict=True):
        assert float(jnp.max(jnp.abs(g - r))) <= 1e-10 * float(jnp.max(jnp.abs(r)))


# ------------------------------------------------------------------------- memory and cost


def _largest_array(compiled_text):
    sizes = [int(np.prod([int(n) for n in dims.split(",") if n] or [1]))
             for dims in re.findall(r"(?:f64|f32|bf16|f16|s32|s64|pred)\[([\d,]*)\]",
                                    compiled_text)]
    return max(sizes)


@pytest.mark.parametrize("reduction, chunks", [("mean", (16, 256)), ("mean", (16, 64)),
                                               ("none", (16, 64)), ("sum", (24, 100))])
def test_no_tokens_by_vocab_array_in_the_compiled_gradient(reduction, chunks):
    n, d, vocab = 64, 8, 256
    x, w = jnp.ones((n, d)), jnp.ones((d, vocab))
    b, labels = jnp.ones((vocab,)), jnp.zeros((n,), jnp.int32)

    def ours(x, w, b):
        loss = LCE(x, w, labels, bias=b, reduction=reduction, token_chunk=chunks[0],
                   vocab_chunk=chunks[1], label_smoothing=0.1, z_loss=1e-3, softcap=5.0)
        return jnp.sum(loss)

    def naive(x, w, b):
        return jnp.sum(CE(x @ w + b[None, :], labels, reduction=reduction))

    def largest(f):
        grad = jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2)))
        return _largest_array(grad.lower(x, w, b).compile().as_text())

    assert largest(naive) >= n * vocab  # the detector sees the naive logits
    # one block of logits, w-sized dw, x-sized dx: all well below tokens × V
    assert largest(ours) <= max(chunks[0] * chunks[1], d * vocab, n * d) < n * vocab // 2


@pytest.mark.parametrize("reduction, vocab_chunk, matmuls",
                         [("mean", None, 3), ("sum", None, 3), ("none", None, 4),
                          ("mean", 4, 4)])
def test_matmul_count(reduction, vocab_chunk, matmuls):
    """Gradients made in the forward keep the naive three matmuls when V fits one chunk."""
    x, w, b, labels, _ = _data((13,), jnp.float32)

    def f(x, w, b):
        return jnp.sum(LCE(x, w, labels, bias=b, reduction=reduction, vocab_chunk=vocab_chunk))

    jaxpr = str(jax.make_jaxpr(jax.value_and_grad(f, argnums=(0, 1, 2)))(x, w, b))
    if vocab_chunk is None:
        assert jaxpr.count("dot_general[") == matmuls
    else:  # chunks: the scan body is traced once, the ragged remainder once more
        assert jaxpr.count("dot_general[") == 2 * matmuls


def test_default_chunk_policy():
    assert linear.default_chunks(1024, 8192) == (512, 8192)  # at most MAX_TOKENS
    tokens, vocab = linear.default_chunks(4096, 65_536)  # V in one chunk, 512-token blocks
    assert (tokens, vocab) == (512, 65_536)
    tokens, vocab = linear.default_chunks(100_000, 128_256)  # Llama 3: V in one chunk
    assert vocab == 128_256 and 256 <= tokens and tokens * vocab <= linear.LOGITS_BUDGET
    tokens, vocab = linear.default_chunks(100_000, 256_000)  # Gemma: two vocabulary chunks
    assert vocab == 128_000 and tokens * vocab <= linear.LOGITS_BUDGET
    assert linear.default_chunks(1, 10) == (1, 10)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_dw_added_in_pieces_matches_the_naive_ce_float64(reduction, monkeypatch, x64):
    """∂w updated two columns at a time (`_add_dw`; ragged: 11 = 5·2 + 1, and 3-wide chunks)."""
    monkeypatch.setattr(linear, "DW_PIECE", 2 * D)
    _compare((2, 7), jnp.float64, True, dict(ALL, reduction=reduction), (4, None), rtol=1e-10)
    _compare((2, 7), jnp.float64, True, dict(ALL, reduction=reduction), (4, 3), rtol=1e-10)


def test_no_w_sized_temporary_besides_dw(monkeypatch):
    """∂w's block updates go in pieces (`_add_dw`): XLA plans no second ∂w-sized array (it
    does when one matmul makes the whole update: the check can fail). Compiled only."""
    n, d, vocab = 256, 1024, 65_536
    args = [jax.ShapeDtypeStruct(shape, dtype) for shape, dtype in
            (((n, d), jnp.float32), ((d, vocab), jnp.float32), ((n,), jnp.int32))]

    def temps(piece):
        monkeypatch.setattr(linear, "DW_PIECE", piece)
        grad = jax.jit(jax.grad(lambda x, w, y: LCE(x, w, y, reduction="mean", token_chunk=64),
                                argnums=(0, 1)))
        return grad.lower(*args).compile().memory_analysis().temp_size_in_bytes

    dw_bytes = d * vocab * 4
    assert temps(2**19) < dw_bytes / 8 and temps(d * vocab) >= dw_bytes


# ------------------------------------------------------------------------- dtypes, numerics


def test_bfloat16_inputs():
    x, w, b, labels, _ = _data((13,), jnp.bfloat16)

    @jax.jit
    def run(x, w, b):
        def mean(x, w, b):
            return LCE(x, w, labels, bias=b, reduction="mean", vocab_chunk=3).astype(
                jnp.float32)

        per_token = LCE(x, w, labels, bias=b, token_chunk=4, vocab_chunk=3)
        return per_token, jax.grad(mean, argnums=(0, 1, 2))(x, w, b)

    loss, grads = run(x, w, b)
    assert loss.dtype == jnp.bfloat16
    up = [a.astype(jnp.float32) for a in (x, w, b)]
    ref, ref_grads = run(*up)
    np.testing.assert_allclose(loss.astype(jnp.float32), ref, rtol=1e-2)  # one bf16 rounding
    for g, r in zip(grads, ref_grads, strict=True):
        assert g.dtype == jnp.bfloat16
        assert float(jnp.max(jnp.abs(g.astype(jnp.float32) - r))) <= 2e-2 * float(
            jnp.max(jnp.abs(r)))


def _identity_logits(z):
    """x = I, w = z: the matmul is exact, so the logits are exactly z."""
    return jnp.eye(z.shape[0], dtype=z.dtype), z


def _ulps(got, ref64):
    ref32 = np.asarray(ref64, np.float32)
    return np.abs(np.asarray(got, np.float64) - np.asarray(ref64)) / np.spacing(np.abs(ref32))


def test_tiny_loss_within_4_ulp_across_chunks(x64):
    rng = np.random.default_rng(3)
    n, vocab = 8, 64
    z = rng.uniform(-95.0, -40.0, (n, vocab)).astype(np.float32)
    labels = rng.integers(0, vocab, n)
    z[np.arange(n), labels] = rng.uniform(-5, 5, n)  # a confident, correct prediction
    z[1, (labels[1] + 17) % vocab] = z[1, labels[1]]  # a tie with another chunk: loss log 2
    z = jnp.asarray(z)
    x, w = _identity_logits(z)
    labels = jnp.asarray(labels)
    ref = CE(z.astype(jnp.float64), labels)
    assert float(jnp.max(jnp.delete(ref, 1))) < 1e-15  # tiny losses
    assert np.max(_ulps(CE(z, labels), ref)) <= 4  # the core CE, for the record
    for vocab_chunk in (64, 16, 7):
        got = jax.jit(lambda x, w, k=vocab_chunk: LCE(x, w, labels, vocab_chunk=k,
                                                      token_chunk=3))(x, w)
        assert got.dtype == jnp.float32
        assert np.max(_ulps(got, ref)) <= 4, vocab_chunk


def test_large_offset_and_huge_logits_stay_finite_and_exact():
    big = float(jnp.finfo(jnp.float32).max)
    z = jnp.array([[1e4, 1e4 + 1, 1e4 + 2, 1e4 - 3],
                   [1e6, 1e6 + 1, 1e6 + 2, 1e6],
                   [big, 0.0, -big, 1.0],
                   [-big, -big, big, big]], jnp.float32)
    x, w = _identity_logits(z)
    labels = jnp.array([2, 0, 1, 3])
    g_core = jax.grad(lambda z: jnp.sum(CE(z, labels)))(z)
    # the error bound of the dot products G wᵀ (the true dx overflows where |G||w|ᵀ does)
    bound = 6 * 2**-24 * (np.abs(np.float64(g_core)) @ np.abs(np.float64(z)).T)
    for vocab_chunk in (4, 2, 1):
        got = jax.jit(lambda x, w, k=vocab_chunk: LCE(x, w, labels, vocab_chunk=k))(x, w)
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, CE(z, labels), rtol=4 * 2**-23)
        dx, dw = jax.jit(jax.grad(lambda x, w, k=vocab_chunk: jnp.sum(
            LCE(x, w, labels, vocab_chunk=k)), argnums=(0, 1)))(x, w)
        np.testing.assert_allclose(dw, g_core, rtol=0, atol=4 * 2**-23)  # x = I: dw = G
        exact = np.float64(g_core) @ np.float64(z).T
        ok = np.isfinite(bound) & (np.abs(exact) < big)
        assert np.all(np.abs(np.float64(dx) - exact)[ok] <= bound[ok])


@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_invalid_label_poisons_its_token(reduction):
    x, w, b, _, _ = _data((6,), jnp.float32)
    labels = jnp.array([0, V, 3, -1, -100, 2])
    mask = jnp.array([True, True, True, True, True, False])
    bad = np.array([False, True, False, True, False, False])

    def f(x, w, b):
        return LCE(x, w, labels, bias=b, where=mask, ignore_index=-100, reduction=reduction,
                   vocab_chunk=4)

    loss, (dx, dw, db) = jax.jit(jax.value_and_grad(lambda *a: jnp.sum(f(*a)) if
                                                   reduction == "none" else f(*a),
                                                   argnums=(0, 1, 2)))(x, w, b)
    loss = np.asarray(jax.jit(f)(x, w, b))
    if reduction == "none":
        assert np.all(np.isnan(loss[bad])) and np.all(np.isfinite(loss[~bad]))
        assert loss[4] == 0 and loss[5] == 0  # ignored, masked
        assert np.all(np.isnan(dx[bad])) and np.all(np.isfinite(dx[~bad]))
        np.testing.assert_array_equal(dx[4:], 0)
    else:
        assert np.isnan(loss) and np.all(np.isnan(dw)) and np.all(np.isnan(db))
    # without the bad tokens everything is finite
    good = jax.jit(lambda x: LCE(x, w, jnp.where(jnp.asarray(bad), 0, labels), bias=b,
                                 where=mask, ignore_index=-100, reduction=reduction))(x)
    assert np.all(np.isfinite(good))


def test_masked_and_ignored_tokens_do_not_read_x():
    x, w, _, labels, _ = _data((5,), jnp.float32, bias=False)
    x = x.at[1].set(jnp.nan).at[3].set(jnp.inf)
    labels = labels.at[3].set(-100)
    mask = jnp.array([True, False, True, True, True])

    def f(x, w):
        return LCE(x, w, labels, where=mask, ignore_index=-100, reduction="mean")

    loss, grads = jax.jit(jax.value_and_grad(f, argnums=(0, 1)))(x, w)
    assert np.isfinite(loss) and all(np.all(np.isfinite(g)) for g in grads)
    np.testing.assert_array_equal(grads[0][jnp.array([1, 3])], 0)


# ------------------------------------------------------------------ pieces reused by sharding


def test_combine_with_collectives_equals_the_chunk_axis_combine(x64):
    x, w, b, labels, _ = _data((9,), jnp.float64)
    partials = jax.jit(linear._partials, static_argnames=("vocab_start", "softcap"))
    parts = [partials(x, w[:, s:s + 3], b[s:s + 3], labels, s, softcap=4.0)
             for s in range(0, V, 3)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *parts)
    default = jax.jit(linear._combine)(stacked)

    def collective(p):
        return linear._combine(p, reduce_max=lambda a: jax.lax.pmax(a, "v"),
                               reduce_sum=lambda a: jax.lax.psum(a, "v"))

    named = jax.jit(jax.vmap(collective, axis_name="v"))(stacked)
    for a, c in zip(default, named, strict=True):
        np.testing.assert_array_equal(a[0], c[0])


# ----------------------------------------------------------------------- checks and errors


def test_checked_mode_under_jit_and_grad():
    x, w, _, labels, _ = _data((4,), jnp.float32)
    mask = jnp.array([True, True, True, False])

    def loss(x, labels):
        return LCE(x, w, labels, where=mask, reduction="mean", validate=True)

    f = jaxsoft.checked(jax.jit(jax.grad(loss)))
    f(x, labels.at[3].set(V + 1))  # a masked token's label is not checked
    with pytest.raises(checkify.JaxRuntimeError, match=r"labels must lie in \[0, 11\)"):
        f(x, labels.at[0].set(V))
    jaxpr = jax.make_jaxpr(lambda x: LCE(x, w, labels))(x)
    assert "check" not in str(jaxpr)


def test_bad_input_is_named_at_trace_time():
    x, w, b, labels, _ = _data((4,), jnp.float32)
    bad = [
        (ValueError, r"x.shape\[-1\] \(5\) must equal w.shape\[0\] \(4\)",
         dict(w=w[:4])),
        (ValueError, r"labels.shape \(4, 1\) must equal \(4,\)", dict(labels=labels[:, None])),
        (TypeError, "labels must be an integer array", dict(labels=labels.astype(float))),
        (ValueError, r"bias.shape \(10,\) must equal \(11,\)", dict(bias=b[:10])),
        (TypeError, "where must be a boolean array", dict(where=jnp.ones(4))),
        (ValueError, r"where.shape \(3,\) must equal \(4,\)", dict(where=jnp.ones(3, bool))),
        (TypeError, "w.dtype bfloat16 must equal x.dtype float32",
         dict(w=w.astype(jnp.bfloat16))),
        (ValueError, "token_chunk must be a positive int", dict(token_chunk=0)),
        (TypeError, "vocab_chunk must be a positive int", dict(vocab_chunk=2.0)),
        (ValueError, "softcap must be a positive number", dict(softcap=0.0)),
        (ValueError, r"label_smoothing must lie in \[0, 1\]", dict(label_smoothing=-0.1)),
        (ValueError, "reduction must be one of", dict(reduction="avg")),
        (ValueError, r"x must be \[..., d\] and w \[d, V\]", dict(w=w[None])),
    ]
    for error, message, change in bad:
        args = dict(x=x, w=w, labels=labels, bias=b) | change
        with pytest.raises(error, match="linear_cross_entropy: " + message):
            LCE(args.pop("x"), args.pop("w"), args.pop("labels"), **args)
