"""The row kernels (jaxsoft/kernel.cc: softmax, log_softmax, the row statistics) against long
double and against the jnp path's conventions; the build cache; where they are traced."""

import contextlib
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsoft
from jaxsoft import kernel

NINF, INF, NAN = -np.inf, np.inf, np.nan
DTYPES = {"f32": np.float32, "f64": np.float64}

# The kernels are traced for a CPU backend only (`kernel.applies`).
needs_kernel = pytest.mark.skipif(not kernel.enabled() or jax.default_backend() != "cpu",
                                  reason=f"kernel: {kernel.status()}, {jax.default_backend()}")
# The CPU kernels' routing; on a GPU the Pallas kernels (tests/test_gpu.py) serve these calls.
on_a_cpu = pytest.mark.skipif(jax.default_backend() != "cpu",
                              reason=f"the CPU kernels' routing; on {jax.default_backend()}")


def _shifted(x):
    """(x − m, log1p(s)) in long double, s = (ties − 1) + Σ_{x < m} e^{x − m}: the log of the
    sum 1 + s, or x − (m + log1p(s)), would round away the digits of a tiny log_softmax."""
    xl = np.asarray(x, np.longdouble)
    m = xl.max(-1, keepdims=True)
    s = (np.sum(xl == m, -1, keepdims=True) - 1) + np.where(xl < m, np.exp(xl - m), 0).sum(
        -1, keepdims=True)
    return xl - m, m, np.log1p(s)


REFERENCES = {  # long double, rounded to float64 (exact for float32 results)
    "softmax": lambda x: np.exp(_shifted(x)[0] - _shifted(x)[2]).astype(np.float64),
    "log_softmax": lambda x: (_shifted(x)[0] - _shifted(x)[2]).astype(np.float64),
    "logsumexp": lambda x: (_shifted(x)[1] + _shifted(x)[2])[..., 0].astype(np.float64),
}
FUNCTIONS = {"softmax": jaxsoft.softmax, "log_softmax": jaxsoft.log_softmax,
             "logsumexp": lambda x: jaxsoft.logsumexp(x, axis=-1)}
BOUNDS = {"softmax": 2.5, "log_softmax": 2, "logsumexp": 1}  # float32/float64 ulp


def _jnp(fn, *args):
    with kernel.disabled():
        return fn(*args)


def _has_kernel_call(fn, *args) -> bool:
    return "@jaxsoft_" in jax.jit(fn).lower(*args).as_text()


@needs_kernel
@pytest.mark.parametrize("fn", FUNCTIONS)
@pytest.mark.parametrize("name", DTYPES)
@pytest.mark.parametrize("shape", [
    (1,), (17,), (3, 1), (5, 15), (4, 16), (2, 3, 17), (7, 64), (3, 65),  # one row at a time
    (33, 1), (37, 10), (2, 24, 16), (4099, 7),  # ≤ 16 wide: 16 rows at a time, then the rest
    (512, 300), (2, 40000), (20000, 10)])  # several threads
def test_matches_long_double(fn, name, shape):
    dtype = DTYPES[name]
    x = (4 * np.random.default_rng(sum(shape)).standard_normal(shape)).astype(dtype)
    with jax.enable_x64(dtype == np.float64):
        assert _has_kernel_call(FUNCTIONS[fn], x)
        got = np.asarray(jax.jit(FUNCTIONS[fn])(x), np.float64)
    true = REFERENCES[fn](x)
    scale = np.abs(true)
    if fn == "logsumexp":  # where lse cancels against the max, in ulp of the max (conditioning)
        scale = np.maximum(scale, np.abs(x).max(-1))
    err = np.abs(got - true) / np.spacing(scale.astype(dtype)).astype(np.float64)
    assert err.max() <= BOUNDS[fn], f"max {err.max():.2f} ulp"


@needs_kernel
@pytest.mark.parametrize("shape", [(512, 1000), (3, 40000)])
def test_tiny_softmax_outputs_are_as_exact_as_the_others(shape):
    """The float32 softmax's scaling e·(1/s) rounds once whatever the output's size: its ulp
    error, averaged over ~10^5 entries, is the same below 1e-29 as above 1e-20 (the exp's error
    plus half an ulp). The scaling by a float32 pair hi + lo without its 2^64 lost e·lo to
    XLA's flush of subnormals: 0.43 against 0.36 ulp (measured), within the 2.5-ulp bound."""
    x = np.random.default_rng(0).uniform(-87, 0, shape).astype(np.float32)
    x[:, 0] = 0  # outputs from ~1 down to e^-87 ≈ 1.6e-38
    got = np.asarray(jax.jit(jaxsoft.softmax)(x), np.float64)
    true = REFERENCES["softmax"](x)
    err = np.abs(got - true) / np.spacing(true.astype(np.float32)).astype(np.float64)
    tiny, large = err[(true < 1e-29) & (true > 2e-38)], err[true > 1e-20]
    assert tiny.size > 20000 and abs(tiny.mean() - large.mean()) < 0.02, (
        f"mean {tiny.mean():.3f} ulp below 1e-29, {large.mean():.3f} above 1e-20")


def _soft_labels(shape, dtype, seed):
    """Rows of probabilities, some entries exactly 0 (0·log 0 = 0 in the kernel's loss pass)."""
    u = np.random.default_rng(seed).random(shape)
    u = np.where(u < 0.3, 0, u)
    return (u / np.maximum(u.sum(-1, keepdims=True), 1e-30)).astype(dtype)


@needs_kernel
@pytest.mark.parametrize("name", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (17,), (5, 15), (7, 64), (3, 65), (37, 10), (4099, 13),
                                   (512, 300), (2, 40000)])
def test_soft_cross_entropy_matches_long_double(name, shape):
    dtype = DTYPES[name]
    x = (4 * np.random.default_rng(sum(shape)).standard_normal(shape)).astype(dtype)
    y = _soft_labels(shape, dtype, len(shape))
    with jax.enable_x64(dtype == np.float64):
        assert _has_kernel_call(jaxsoft.softmax_cross_entropy, x, y)
        got = np.asarray(jax.jit(jaxsoft.softmax_cross_entropy)(x, y), np.float64)
    shifted, _, log1p_s = _shifted(x)
    true = np.sum(np.asarray(y, np.longdouble) * (log1p_s - shifted), -1).astype(np.float64)
    err = np.abs(got - true) / np.spacing(np.abs(true).astype(dtype)).astype(np.float64)
    assert err.max() <= 1, f"max {err.max():.2f} ulp"


HALF = {"bf16": jnp.bfloat16, "f16": jnp.float16}


@needs_kernel
@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
@pytest.mark.parametrize("name", HALF)
@pytest.mark.parametrize("shape", [(1,), (17,), (5, 15), (37, 10), (4099, 7), (512, 300),
                                   (2, 40000), (20000, 10)])
def test_16_bit_rows_are_rounded_once(fn, name, shape):
    dtype = HALF[name]
    x = jnp.asarray(4 * np.random.default_rng(sum(shape)).standard_normal(shape), dtype)
    assert _has_kernel_call(FUNCTIONS[fn], x)
    got = np.asarray(jax.jit(FUNCTIONS[fn])(x), np.float64)
    true = REFERENCES[fn](np.asarray(x, np.float64))
    # Within half a unit of the format of the true value, plus float32's few ulp before the
    # rounding (the rounding of a float32 result, not of the exact one).
    fi = jnp.finfo(dtype)
    with np.errstate(divide="ignore"):
        normal = 2.0 ** np.floor(np.log2(np.abs(true))) * float(fi.eps)
    ulp = np.where(np.abs(true) >= float(fi.tiny), normal, float(fi.smallest_subnormal))
    assert np.all(np.abs(got - true) <= 0.5 * ulp + 8e-7 * np.abs(true))


@needs_kernel
@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
@pytest.mark.parametrize("name", HALF)
def test_16_bit_special_rows_and_gradients_follow_the_jnp_path(fn, name):
    dtype = HALF[name]
    f = FUNCTIONS[fn]
    x = jnp.asarray(np.array(SPECIAL_ROWS[:4] + SPECIAL_ROWS[6:], np.float32), dtype)
    got, want = np.asarray(f(x), np.float64), np.asarray(_jnp(f, x), np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got[np.isinf(want)], want[np.isinf(want)])
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=float(jnp.finfo(dtype).eps))
    v = jnp.asarray(np.random.default_rng(4).standard_normal((6, 50)), dtype)

    def loss(v):
        return jnp.sum((f(v) * v).astype(jnp.float32))

    g, w = jax.grad(loss)(v), _jnp(jax.grad(loss), v)
    assert g.dtype == dtype
    # The tangent rule reads the 16-bit output: within a unit of the format of the jnp path's.
    np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(w, np.float64),
                               atol=2 * float(jnp.finfo(dtype).eps) * 4)


SOFT_LABEL_ROWS = [  # (logits, labels): the soft cross-entropy's label conventions
    ([0.0, NINF, 1.0, 2.0], [0.5, 0.0, 0.5, 0.0]),   # 0·log 0 = 0 on a −inf logit
    ([0.0, NINF, 1.0, 2.0], [0.5, 0.25, 0.25, 0.0]),  # mass on a −inf logit: +inf
    ([0.0, 1.0, 2.0, 3.0], [1.5, 0.0, -0.5, 0.0]),    # outside [0, 1]: NaN
    ([0.0, 1.0, 2.0, 3.0], [NAN, 0.0, 1.0, 0.0]),     # NaN label: NaN
    ([NINF, NINF, NINF, NINF], [0.0, 0.0, 0.0, 0.0]),  # empty row, no mass: 0
    ([NINF, NINF, NINF, NINF], [0.0, 1.0, 0.0, 0.0]),  # empty row with mass: +inf
    ([3e38, -3e38, 0.0, 1.0], [0.25, 0.25, 0.25, 0.25]),  # m − x overflows in float32
    ([1.0, 2.0, 3.0, 4.0], [0.5, 0.5, 0.5, 0.5]),     # Σy = 2: 2·lse − Σ y·x
    ([5.0, 5.0, 5.0, 5.0], [0.0, 0.0, 0.0, 0.0]),     # no mass: 0
]


@needs_kernel
@pytest.mark.parametrize("name", DTYPES)
def test_soft_labels_follow_the_jnp_conventions(name):
    dtype = DTYPES[name]
    x = np.array([r[0] for r in SOFT_LABEL_ROWS], dtype) * np.ones((2, 1, 1), dtype)
    y = np.array([r[1] for r in SOFT_LABEL_ROWS], dtype) * np.ones((2, 1, 1), dtype)
    f = jaxsoft.softmax_cross_entropy

    def grads(x, y):  # with respect to logits and labels, where the loss is finite
        return jax.grad(lambda a, b: jnp.sum(jnp.where(jnp.isfinite(f(a, b)), f(a, b), 0)),
                        argnums=(0, 1))(x, y)

    with jax.enable_x64(dtype == np.float64):
        assert _has_kernel_call(f, x, y)
        got, want = np.asarray(f(x, y)), np.asarray(_jnp(f, x, y))
        got_grads, want_grads = grads(x, y), _jnp(grads, x, y)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=4 * np.finfo(dtype).eps, atol=0)
    for g, w in zip(got_grads, want_grads, strict=True):  # gradients: to a few eps absolute
        np.testing.assert_array_equal(np.isnan(g), np.isnan(w))
        np.testing.assert_allclose(g, w, rtol=8 * np.finfo(dtype).eps,
                                   atol=4 * np.finfo(dtype).eps)


SPECIAL_ROWS = [
    [NINF, NINF, NINF, NINF],  # empty row: 0, as the jnp path (not 0/0)
    [1.0, INF, 2.0, 0.0],      # +inf: NaN row
    [1.0, NAN, 2.0, 0.0],      # NaN: NaN row
    [NINF, 0.0, NINF, 1.0],    # masked by −inf: exactly 0
    [3e38, -3e38, 0.0, 1.0],   # x − m overflows to −inf: 0
    [-3e38, -3e38, -3e38, -3e38],
    [0.0, -80.0, -103.0, -120.0],  # below the smallest subnormal: 0 (XLA flushes subnormals)
    [0.0, 0.0, 0.0, -1e-30],
]


def _labels(x):
    return jnp.arange(np.prod(x.shape[:-1], dtype=int)).reshape(x.shape[:-1]) % x.shape[-1]


CE = {  # the cross-entropies whose forward takes the row statistics from the kernel
    "integer labels": lambda x: jaxsoft.softmax_cross_entropy_with_integer_labels(x, _labels(x)),
    "one-hot": lambda x: jaxsoft.softmax_cross_entropy(
        x, jax.nn.one_hot(_labels(x), x.shape[-1], dtype=x.dtype)),
}


@needs_kernel
@pytest.mark.parametrize("fn", [*FUNCTIONS, *CE])
@pytest.mark.parametrize("name", DTYPES)
def test_special_rows_follow_the_jnp_conventions(fn, name):
    dtype = DTYPES[name]
    f = FUNCTIONS.get(fn) or CE[fn]
    x = np.array(SPECIAL_ROWS, dtype) * np.ones((3, 1, 1), dtype)  # 3×8 rows of 4
    with jax.enable_x64(dtype == np.float64):
        got, want = np.asarray(f(x)), np.asarray(_jnp(f, x))
        grad = np.asarray(jax.grad(lambda v: jnp.sum(jnp.where(jnp.isfinite(f(v)), f(v), 0)))(x))
        want_grad = _jnp(jax.grad(lambda v: jnp.sum(jnp.where(jnp.isfinite(f(v)), f(v), 0))), x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=4 * np.finfo(dtype).eps, atol=0)
    np.testing.assert_allclose(grad, want_grad, rtol=8 * np.finfo(dtype).eps, atol=1e-30)
    if fn == "softmax":
        assert not np.any(np.signbit(got[np.isfinite(got)]))  # masked entries are +0.0


@pytest.mark.parametrize("path", ["as is", "jnp"])
@pytest.mark.parametrize("shape", [(0, 5), (3, 0), (0,)])
def test_empty_arrays(shape, path):
    """No rows, or rows of no entries (empty rows: softmax and log_softmax of no entries,
    logsumexp −inf), on the kernel where it applies and on the jnp path (which raised for
    rows of no entries: a max over zero elements)."""
    x = jnp.zeros(shape)
    with jaxsoft.kernel.disabled() if path == "jnp" else contextlib.nullcontext():
        assert jaxsoft.softmax(x).shape == shape
        assert jaxsoft.log_softmax(x).shape == shape
        lse = jaxsoft.logsumexp(x, axis=-1)
    assert lse.shape == shape[:-1] and bool(jnp.all(lse == -jnp.inf))


@needs_kernel
@pytest.mark.parametrize("fn", [*FUNCTIONS, *CE])
def test_vmap_and_gradient_match_the_jnp_path(fn, x64):
    f = FUNCTIONS.get(fn) or CE[fn]
    x = jnp.asarray(np.random.default_rng(1).standard_normal((3, 4, 50)))
    w = jnp.asarray(np.random.default_rng(2).standard_normal(jax.eval_shape(f, x).shape))

    def loss(v):
        return jnp.sum(jax.vmap(f)(v) * w)

    assert _has_kernel_call(loss, x)
    value, grad = jax.value_and_grad(loss)(x)
    ref_value, ref_grad = _jnp(jax.value_and_grad(lambda v: loss(v)), x)
    np.testing.assert_allclose(value, ref_value, rtol=1e-14)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-12, atol=1e-15)


INT_OPTIONS = [{}, {"label_smoothing": 0.1}, {"z_loss": 1e-3}, {"ignore_index": 2},
               {"label_smoothing": 0.2, "z_loss": 0.01, "ignore_index": 0}]


@needs_kernel
@pytest.mark.parametrize("cols", [37, 10])  # 10: rows ≤ 16 wide go 16 rows a block
@pytest.mark.parametrize("options", INT_OPTIONS, ids=str)
@pytest.mark.parametrize("name", DTYPES)
def test_integer_label_gradient_kernel_follows_the_jnp_path(options, name, cols):
    dtype = DTYPES[name]
    rng = np.random.default_rng(5)
    x = (3 * rng.standard_normal((6, 40, cols))).astype(dtype)
    x[0, :4] = np.array(SPECIAL_ROWS, dtype)[:4, :1]  # an empty, a NaN and a +inf row
    labels = rng.integers(0, cols, (6, 40))
    labels[1, :3] = [-1, cols, 2]  # invalid (NaN rows), and the ignored class of some options
    f = functools.partial(jaxsoft.softmax_cross_entropy_with_integer_labels, **options)
    weights = rng.standard_normal((6, 40)).astype(dtype)

    def loss(v):
        return jnp.sum(jnp.where(jnp.isfinite(f(v, labels)), f(v, labels) * weights, 0))

    with jax.enable_x64(dtype == np.float64):
        assert "@jaxsoft_IntGrad" in jax.jit(jax.grad(loss)).lower(x).as_text()
        got, want = jax.grad(loss)(x), _jnp(jax.grad(loss), x)
        closed = jaxsoft.softmax_cross_entropy_with_integer_labels_grad(x, labels, **options)
        closed_jnp = _jnp(lambda v: jaxsoft.softmax_cross_entropy_with_integer_labels_grad(
            v, labels, **options), x)
    for g, w in ((got, want), (closed, closed_jnp)):
        np.testing.assert_array_equal(np.isnan(g), np.isnan(w))
        np.testing.assert_allclose(g, w, rtol=8 * np.finfo(dtype).eps,
                                   atol=4 * np.finfo(dtype).eps)


@needs_kernel
@pytest.mark.parametrize("cols", [37, 10, 1000])
@pytest.mark.parametrize("options", INT_OPTIONS, ids=str)
@pytest.mark.parametrize("name", HALF)
def test_16_bit_integer_label_cross_entropy_reads_its_format(options, name, cols):
    """bf16/f16 logits go to the statistics and gradient kernels as they are (float32 row
    values): the loss and gradient are the float32 ones rounded once, as on the jnp path
    (which computes on the float32 upcast), conventions included."""
    x, labels, loss = int_ce_16_bit(HALF[name], cols, options)
    text = jax.jit(jax.value_and_grad(loss)).lower(x).as_text()
    suffix = {"bf16": "BF16", "f16": "F16"}[name]
    assert f"@jaxsoft_Stats{suffix}" in text and f"@jaxsoft_IntGrad{suffix}" in text
    check_int_ce_16_bit(x, labels, options, loss)


def int_ce_16_bit(dtype, cols, options):
    """(x, labels, loss): 4×30 rows of `cols` 16-bit logits, an empty, a +inf and a NaN row,
    invalid labels and the ignored class of some `options`; loss a weighted sum of the
    finite per-row losses."""
    rng = np.random.default_rng(cols)
    x = np.asarray(3 * rng.standard_normal((4, 30, cols)), np.float32)
    x[0, :3] = np.array(SPECIAL_ROWS, np.float32)[:3, :1]  # an empty, a +inf and a NaN row
    x = jnp.asarray(x, dtype)
    labels = rng.integers(0, cols, (4, 30))
    labels[1, :3] = [-1, cols, 2]  # invalid (NaN rows), and the ignored class of some options
    weights = jnp.asarray(rng.standard_normal((4, 30)), jnp.float32)

    def loss(v):
        per_row = jaxsoft.softmax_cross_entropy_with_integer_labels(v, labels, **options)
        return jnp.sum(jnp.where(jnp.isfinite(per_row), per_row, 0).astype(jnp.float32)
                       * weights)

    return x, labels, loss


def check_int_ce_16_bit(x, labels, options, loss):
    """The per-row loss, the gradient and the closed-form gradient are the jnp path's
    (`_rounded_alike`), the summed loss within 1e-5."""
    per_row = jaxsoft.softmax_cross_entropy_with_integer_labels(x, labels, **options)
    want_row = _jnp(functools.partial(jaxsoft.softmax_cross_entropy_with_integer_labels,
                                      **options), x, labels)
    (got_v, got), (want_v, want) = jax.value_and_grad(loss)(x), _jnp(jax.value_and_grad(loss), x)
    closed = functools.partial(jaxsoft.softmax_cross_entropy_with_integer_labels_grad,
                               **options)
    _rounded_alike(x.dtype, (per_row, want_row), (got, want),
                   (closed(x, labels), _jnp(closed, x, labels)))
    np.testing.assert_allclose(got_v, want_v, rtol=1e-5)


def _rounded_alike(dtype, *pairs):
    """Each (got, want) pair in `dtype`, alike as two roundings of float32 values a few float32
    ulp apart: equal or one unit apart, NaN and ±inf at the same places."""
    eps = float(jnp.finfo(dtype).eps)
    for g, w in pairs:
        assert g.dtype == dtype
        g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
        np.testing.assert_array_equal(np.isnan(g), np.isnan(w))
        np.testing.assert_array_equal(g[np.isinf(w)], w[np.isinf(w)])
        np.testing.assert_allclose(g, w, rtol=eps, atol=eps * 2.0**-7, equal_nan=True)


@needs_kernel
@pytest.mark.parametrize("cols", [37, 1000])
@pytest.mark.parametrize("name", HALF)
def test_16_bit_soft_label_cross_entropy_reads_its_format(name, cols):
    """bf16/f16 logits and labels of their format go to the soft-label kernels as they are:
    loss and both gradients (logits, labels) are the float32 ones rounded once, as on the jnp
    path, the label conventions (0·log 0 = 0, mass on −inf, labels outside [0, 1]) included."""
    x, y = soft_ce_16_bit(HALF[name], cols)
    text = jax.jit(soft_ce_vg).lower(x, y).as_text()
    suffix = {"bf16": "BF16", "f16": "F16"}[name]
    assert f"@jaxsoft_SoftCrossEntropy{suffix}" in text and f"@jaxsoft_SoftGrad{suffix}" in text
    check_soft_ce_16_bit(x, y)


def soft_ce_16_bit(dtype, cols):
    """(x, y): 3×20 rows of `cols` 16-bit logits and soft labels, the first rows
    SOFT_LABEL_ROWS."""
    rng = np.random.default_rng(cols)
    x = np.asarray(3 * rng.standard_normal((3, 20, cols)), np.float32)
    y = _soft_labels((3, 20, cols), np.float32, cols)
    rows = len(SOFT_LABEL_ROWS)
    x[0, :rows, :4] = np.array([r[0] for r in SOFT_LABEL_ROWS], np.float32)
    y[0, :rows] = 0
    y[0, :rows, :4] = np.array([r[1] for r in SOFT_LABEL_ROWS], np.float32)
    big = float(jnp.finfo(dtype).max)  # ±3e38 as the format's ±max (float16)
    x = jnp.asarray(np.where(np.isinf(x), x, np.clip(x, -big, big)), dtype)
    return x, jnp.asarray(y, dtype)


@functools.partial(jax.value_and_grad, argnums=(0, 1))
def soft_ce_vg(a, b):
    per_row = jaxsoft.softmax_cross_entropy(a, b)
    return jnp.sum(jnp.where(jnp.isfinite(per_row), per_row, 0).astype(jnp.float32))


def check_soft_ce_16_bit(x, y):
    """Loss, both gradients and the closed-form gradient are the jnp path's
    (`_rounded_alike`), the summed loss within 1e-5."""
    f, grad = jaxsoft.softmax_cross_entropy, jaxsoft.softmax_cross_entropy_grad
    (got_v, got), (want_v, want) = soft_ce_vg(x, y), _jnp(soft_ce_vg, x, y)
    _rounded_alike(x.dtype, (f(x, y), _jnp(f, x, y)), *zip(got, want, strict=True),
                   (grad(x, y), _jnp(grad, x, y)))
    np.testing.assert_allclose(got_v, want_v, rtol=1e-5)


@needs_kernel
@pytest.mark.parametrize("fn", CE)
def test_16_bit_gradient_is_written_once_in_its_format(fn):
    """No float32 array of the logits' shape in the compiled value_and_grad: the kernels read
    the bf16 logits (and labels) and write the bf16 gradient (the integer-label CE's float32
    upcast written out took 18 passes over memory to optax's 14, 8192×4096)."""
    x = jnp.asarray(np.random.default_rng(4).standard_normal((64, 300)), jnp.bfloat16)
    f = jax.value_and_grad(lambda v: jnp.mean(CE[fn](v)))
    entry = jax.jit(f).lower(x).compile().as_text().split("ENTRY")[1]  # the arrays made
    assert "f32[64,300]" not in entry, entry
    root = next(line for line in entry.splitlines() if "ROOT" in line)
    grad = root.rsplit("%", 1)[1].rstrip(")")  # the tuple's last element: the gradient
    made = next(line for line in entry.splitlines() if line.strip().startswith(f"%{grad} ="))
    assert "GradBF16" in made and "bf16[64,300]" in made, made


@needs_kernel
@pytest.mark.parametrize("cols", [37, 10, 16])
@pytest.mark.parametrize("name", DTYPES)
def test_soft_label_gradient_kernel_follows_the_jnp_path(name, cols):
    dtype = DTYPES[name]
    rng = np.random.default_rng(6)
    x = (3 * rng.standard_normal((5, 41, cols))).astype(dtype)
    x[0, :4] = np.array(SPECIAL_ROWS, dtype)[:4, :1]
    y = _soft_labels((5, 41, cols), dtype, 7)
    weights = rng.standard_normal((5, 41)).astype(dtype)

    def loss(v):
        f = jaxsoft.softmax_cross_entropy(v, y)
        return jnp.sum(jnp.where(jnp.isfinite(f), f * weights, 0))

    with jax.enable_x64(dtype == np.float64):
        assert "@jaxsoft_SoftGrad" in jax.jit(jax.grad(loss)).lower(x).as_text()
        got, want = jax.grad(loss)(x), _jnp(jax.grad(loss), x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=8 * np.finfo(dtype).eps,
                               atol=4 * np.finfo(dtype).eps)


LSM_GRAD_SHAPES = [(40, 10), (37, 16), (2, 17, 7), (5, 1), (3, 12)]  # float32: rows ≤ 16 wide


@needs_kernel
@pytest.mark.parametrize(("name", "shape"), [
    *(("f32", s) for s in LSM_GRAD_SHAPES),
    *((h, s) for h in HALF for s in [*LSM_GRAD_SHAPES, (3, 1000), (4, 33)])])  # 16-bit: any
def test_log_softmax_gradient_kernel_matches_float64(name, shape):
    """ct − e^{y}·Σ ct from the kernel (`softmax.GRAD_KERNEL_WIDTH`) against float64 on the
    same y and ct: within 4 float32 eps of |g| + Σ|ct| (float32 arithmetic, Σ ct in
    float64), 16-bit results also within half a unit of their format (rounded to nearest)."""
    dtype = {"f32": np.float32, **HALF}[name]
    rng = np.random.default_rng(8)
    x = (4 * rng.standard_normal(shape)).astype(np.float32)
    rows = x.reshape(-1, shape[-1])
    if shape[-1] >= 4:
        rows[:len(SPECIAL_ROWS), :4] = np.array(SPECIAL_ROWS, np.float32)[:len(rows)]
    with np.errstate(over="ignore"):  # ±3e38 is ±inf in float16
        x, ct = jnp.asarray(x, dtype), jnp.asarray(rng.standard_normal(shape), dtype)
    pull = jax.jit(lambda v, c: jax.vjp(jaxsoft.log_softmax, v)[1](c)[0])
    assert "@jaxsoft_LogSoftmaxGrad" in pull.lower(x, ct).as_text()
    assert pull(x, ct).dtype == dtype
    got = np.asarray(pull(x, ct), np.float64)
    y, ct = np.asarray(jaxsoft.log_softmax(x), np.float64), np.asarray(ct, np.float64)
    want = ct - np.exp(y) * ct.sum(-1, keepdims=True)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    scale = np.abs(want) + np.abs(ct).sum(-1, keepdims=True)  # |ct − p·Σ ct| ≤ both
    fi = jnp.finfo(dtype)  # half a unit of the 16-bit result (rounded to nearest)
    rounding = 0.5 * np.maximum(float(fi.eps) * np.abs(want), float(fi.smallest_subnormal))
    rounding = rounding if name in HALF else 0
    err = np.where(np.isnan(want), 0, (np.abs(got - want) - rounding) / scale)
    assert err.max() <= 4 * np.finfo(np.float32).eps, f"max {err.max():.2e} of |g| + Σ|ct|"


@needs_kernel
def test_log_softmax_gradient_kernel_only_for_narrow_float32_rows_and_16_bit_ones(x64):
    pull = jax.jit(lambda v: jax.vjp(jaxsoft.log_softmax, v)[1](v)[0])
    for x in (jnp.ones((40, 10), jnp.float32), jnp.ones((4, 17), jnp.float32),
              jnp.ones((40, 10)), jnp.ones((4, 17), jnp.bfloat16),  # float64; 16-bit: any width
              jnp.ones((40, 10), jnp.float16)):
        text = pull.lower(x).as_text()
        assert ("@jaxsoft_LogSoftmaxGrad" in text) == (x.dtype != jnp.float64
                                                        and (x.shape[-1] <= 16
                                                             or x.dtype == jnp.bfloat16))


@needs_kernel
def test_log_softmax_second_derivatives_through_the_gradient_kernel():
    z = jnp.array([0.3, -1.2, 2.0, 0.5])  # float32: the kernel's format
    f = lambda v: jnp.sum(jaxsoft.log_softmax(v) * jnp.array([0.3, 1.7, -0.4, 1.0]))  # noqa: E731
    assert "@jaxsoft_LogSoftmaxGrad" in jax.jit(jax.grad(f)).lower(z).as_text()
    hessian = _jnp(jax.hessian(f), z)
    np.testing.assert_allclose(jax.hessian(f)(z), hessian, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(jax.jacfwd(jax.grad(f))(z), hessian, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(jax.jacfwd(jaxsoft.log_softmax)(z),
                               _jnp(jax.jacrev(jaxsoft.log_softmax), z), rtol=1e-6, atol=1e-7)


@needs_kernel
@pytest.mark.parametrize("fn", CE)
def test_the_gradient_is_written_once_by_the_kernel(fn):
    """`kernel.gradient_dot`: the mean's cotangent is folded into the gradient kernel's row
    coefficients, so the compiled gradient is the kernel's output (no multiply after it)."""
    x = jnp.asarray(np.random.default_rng(4).standard_normal((64, 300)), jnp.float32)
    text = jax.jit(jax.grad(lambda v: jnp.mean(CE[fn](v)))).lower(x).compile().as_text()
    root = next(line for line in text.split("ENTRY")[1].splitlines() if "ROOT" in line)
    assert "custom-call" in root and ("IntGrad" in root or "SoftGrad" in root), root


@needs_kernel
@pytest.mark.parametrize("fn", CE)
def test_hessian_of_a_cross_entropy_through_its_gradient_kernel(fn, x64):
    z = jnp.asarray(np.random.default_rng(6).standard_normal((2, 5)))
    f = lambda v: jnp.sum(CE[fn](v) * jnp.array([0.3, 1.7]))  # noqa: E731
    np.testing.assert_allclose(jax.hessian(f)(z), _jnp(jax.hessian(f), z), rtol=1e-12,
                               atol=1e-15)
    np.testing.assert_allclose(jax.jacfwd(jax.grad(f))(z), _jnp(jax.hessian(f), z),
                               rtol=1e-12, atol=1e-15)


@needs_kernel
def test_hessian_of_a_loss_through_the_row_statistics(x64):
    z, y = jnp.array([0.3, -1.2, 2.0]), jnp.array([0.2, 0.0, 0.8])
    f = lambda v: jaxsoft.softmax_cross_entropy(v, y)  # noqa: E731
    assert _has_kernel_call(f, z)
    np.testing.assert_allclose(jax.hessian(f)(z), _jnp(jax.hessian(f), z), rtol=1e-13)


@needs_kernel
def test_two_softmaxes_in_one_jit_share_the_thread_pool():
    a = jnp.asarray(np.random.default_rng(3).standard_normal((256, 4096)), jnp.float32)
    both = jax.jit(lambda a, b: (jaxsoft.softmax(a), jaxsoft.softmax(b)))
    for _ in range(20):  # a deadlock would hang here
        y, z = both(a, 2 * a)
    np.testing.assert_allclose(np.asarray(y).sum(-1), 1, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(z).sum(-1), 1, rtol=1e-6)


@on_a_cpu
def test_kernel_is_traced_only_where_it_applies():
    x = jnp.ones((4, 6))
    mask = jnp.broadcast_to(jnp.arange(6) < 3, (4, 6))
    for f in (*FUNCTIONS.values(), *CE.values()):
        assert not _has_kernel_call(lambda v, f=f: _jnp(f, v), x)
        half = f is not FUNCTIONS["logsumexp"]  # the others also read 16-bit formats
        for dtype in (jnp.bfloat16, jnp.float16):
            assert _has_kernel_call(f, x.astype(dtype)) == (half and kernel.enabled())
        assert _has_kernel_call(f, x) == kernel.enabled()
    for f in (jaxsoft.softmax, jaxsoft.log_softmax, jaxsoft.logsumexp):
        assert not _has_kernel_call(lambda v, f=f: f(v, axis=0), x)
        assert not _has_kernel_call(lambda v, f=f: f(v, where=mask), x)
    assert not _has_kernel_call(lambda v: jaxsoft.softmax_cross_entropy_with_integer_labels(
        v, jnp.zeros(4, int), where=mask), x)


@on_a_cpu
@pytest.mark.parametrize("fn", [*FUNCTIONS, *CE])
def test_other_backends_lower_the_jnp_formula(fn):
    f = FUNCTIONS.get(fn) or CE[fn]
    exported = jax.export.export(jax.jit(f), platforms=["cuda"])(jnp.ones((4, 6)))
    assert "@jaxsoft_" not in exported.mlir_module()


@needs_kernel
def test_build_is_cached_by_key(tmp_path):
    lib = kernel.build(tmp_path)
    assert lib.exists() and lib.parent == tmp_path
    stamp = lib.stat().st_mtime_ns
    assert kernel.build(tmp_path) == lib and lib.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [lib.name]  # no temporary left behind


def test_build_without_a_compiler_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("CXX", "no-such-compiler-jaxsoft")
    with pytest.raises(RuntimeError, match="no-such-compiler-jaxsoft"):
        kernel.build(tmp_path)


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXSOFT_CACHE_DIR", str(tmp_path / "k"))
    assert kernel.cache_dir() == tmp_path / "k"
    monkeypatch.delenv("JAXSOFT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert kernel.cache_dir() == tmp_path / "jaxsoft"


def test_disabled_restores_the_previous_state():
    before = kernel.status()
    with kernel.disabled():
        assert kernel.status().startswith("off") and not kernel.enabled()
    assert kernel.status() == before
