"""The softmax row kernel (jaxsoft/kernel.cc) against a long-double softmax and against the jnp
path's conventions; its build cache; where it is and is not traced."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsoft
from jaxsoft import kernel

NINF, INF, NAN = -np.inf, np.inf, np.nan
DTYPES = {"f32": np.float32, "f64": np.float64}

needs_kernel = pytest.mark.skipif(not kernel.enabled(), reason=f"kernel: {kernel.status()}")


def _reference(x):
    xl = np.asarray(x, np.longdouble)
    e = np.exp(xl - xl.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(np.float64)


def _jnp(fn, *args):
    with kernel.disabled():
        return fn(*args)


def _has_kernel_call(fn, *args) -> bool:
    return "jaxsoft_softmax" in jax.jit(fn).lower(*args).as_text()


@needs_kernel
@pytest.mark.parametrize("name", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (17,), (3, 1), (5, 15), (4, 16), (2, 3, 17), (7, 64),
                                   (3, 65), (512, 300), (2, 40000)])  # the last two: threads
def test_matches_long_double_within_2_5_ulp(name, shape):
    dtype = DTYPES[name]
    x = (4 * np.random.default_rng(sum(shape)).standard_normal(shape)).astype(dtype)
    with jax.enable_x64(dtype == np.float64):
        assert _has_kernel_call(jaxsoft.softmax, x)
        got = np.asarray(jax.jit(jaxsoft.softmax)(x), np.float64)
    true = _reference(x)
    err = np.abs(got - true) / np.spacing(true.astype(dtype)).astype(np.float64)
    assert err.max() <= 2.5, f"max {err.max():.2f} ulp"


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


@needs_kernel
@pytest.mark.parametrize("name", DTYPES)
def test_special_rows_follow_the_jnp_conventions(name):
    dtype = DTYPES[name]
    x = np.array(SPECIAL_ROWS, dtype) * np.ones((3, 1, 1), dtype)  # 3×8 rows of 4
    with jax.enable_x64(dtype == np.float64):
        got, want = np.asarray(jaxsoft.softmax(x)), np.asarray(_jnp(jaxsoft.softmax, x))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=4 * np.finfo(dtype).eps, atol=0)
    assert not np.any(np.signbit(got[np.isfinite(got)]))  # masked entries are +0.0


@needs_kernel
@pytest.mark.parametrize("shape", [(0, 5), (3, 0), (0,)])
def test_empty_arrays(shape):
    x = jnp.zeros(shape)
    assert jaxsoft.softmax(x).shape == shape


@needs_kernel
def test_vmap_and_gradient_match_the_jnp_path(x64):
    x = jnp.asarray(np.random.default_rng(1).standard_normal((3, 4, 50)))
    w = jnp.asarray(np.random.default_rng(2).standard_normal((3, 4, 50)))

    def loss(v):
        return jnp.sum(jax.vmap(jaxsoft.softmax)(v) * w)

    assert _has_kernel_call(loss, x)
    value, grad = jax.value_and_grad(loss)(x)
    ref_value, ref_grad = _jnp(jax.value_and_grad(lambda v: loss(v)), x)
    np.testing.assert_allclose(value, ref_value, rtol=1e-14)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-12, atol=1e-15)


@needs_kernel
def test_two_softmaxes_in_one_jit_share_the_thread_pool():
    a = jnp.asarray(np.random.default_rng(3).standard_normal((256, 4096)), jnp.float32)
    both = jax.jit(lambda a, b: (jaxsoft.softmax(a), jaxsoft.softmax(b)))
    for _ in range(20):  # a deadlock would hang here
        y, z = both(a, 2 * a)
    np.testing.assert_allclose(np.asarray(y).sum(-1), 1, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(z).sum(-1), 1, rtol=1e-6)


def test_kernel_is_traced_only_where_it_applies():
    x = jnp.ones((4, 6))
    mask = jnp.broadcast_to(jnp.arange(6) < 3, (4, 6))
    assert not _has_kernel_call(lambda v: jaxsoft.softmax(v, axis=0), x)
    assert not _has_kernel_call(lambda v: jaxsoft.softmax(v, where=mask), x)
    assert not _has_kernel_call(jaxsoft.softmax, x.astype(jnp.bfloat16))
    assert not _has_kernel_call(lambda v: _jnp(jaxsoft.softmax, v), x)
    assert _has_kernel_call(jaxsoft.softmax, x) == kernel.enabled()


def test_other_backends_lower_the_jnp_formula():
    exported = jax.export.export(jax.jit(jaxsoft.softmax), platforms=["cuda"])(jnp.ones((4, 6)))
    assert "jaxsoft_softmax" not in exported.mlir_module()


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
