"""The GPU kernels (jaxsoft/gpu.py) without a GPU: their Pallas bodies run by Pallas'
interpreter (`kernel.gpu_interpreted`) in the GPU form of the formulas, against long double
and against the jnp path; their blocks, masks, batching; and their lowering to Triton for
CUDA (which no interpreter checks: an operation without a Triton rule fails there)."""

import functools
import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_kernel import (
    CE,
    FUNCTIONS,
    INT_OPTIONS,
    REFERENCES,
    SPECIAL_ROWS,
    check_int_ce_16_bit,
    check_soft_ce_16_bit,
    int_ce_16_bit,
    soft_ce_16_bit,
)

import jaxsoft
from jaxsoft import gpu, kernel

SOFTMAX = importlib.import_module("jaxsoft.softmax")
DTYPES = {"f32": np.float32, "f64": np.float64}
# The jnp formulas' bounds in their GPU form (sums in the input's precision; the interpreter
# evaluates them with XLA's CPU exp and log1p: log_softmax 4.4 ulp at 300×33 in float32).
BOUNDS = {"softmax": 8, "log_softmax": 6, "logsumexp": 2}
TRITON = "__gpu$xla.gpu.triton"


@pytest.fixture
def interpreted(monkeypatch):
    """The GPU form (`softmax.on_gpu`) with the GPU kernels interpreted; yields a counter of
    the kernels traced. Clears JAX's caches before and after: `jax.jit` of the same function
    and shapes would otherwise reuse another test's trace (here, or these elsewhere)."""
    jax.clear_caches()
    calls = []
    monkeypatch.setattr(SOFTMAX, "on_gpu", lambda: True)
    pallas = gpu._pallas
    monkeypatch.setattr(gpu, "_pallas", lambda *a: calls.append(1) or pallas(*a))
    with kernel.gpu_interpreted():
        yield calls
    jax.clear_caches()


def _jnp(fn, *args):
    with kernel.disabled():
        return fn(*args)


@pytest.mark.parametrize(("rows", "width", "expected"), [
    (65536, 10, (128, 16, 4)), (4096, 1000, (2, 1024, 4)), (8192, 4096, (1, 4096, 8)),
    (1024, 32768, (1, 32768, 16)), (3, 10, (4, 16, 4)), (1, 1, (1, 1, 4))])
def test_plan(rows, width, expected):
    br, bc, _ = gpu.plan(rows, width)
    assert bc >= width and bc & (bc - 1) == 0 and br & (br - 1) == 0
    assert br * bc >= min(gpu.BLOCK, rows * bc)
    assert gpu.plan(rows, width) == expected


@pytest.mark.parametrize(("rows", "width", "expected"), [
    (8192, 4096, (1, 2048, 4)), (1024, 32768, (1, 2048, 4)), (65536, 10, (128, 16, 4)),
    (4096, 1000, (2, 1024, 4))])
def test_plan_in_column_blocks(rows, width, expected):
    assert gpu.plan(rows, width, columns=2048) == expected


@pytest.mark.parametrize("fn", FUNCTIONS)
@pytest.mark.parametrize("name", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (5, 1), (37, 10), (3, 1000), (2, 3, 17), (300, 33),
                                   (2, 4097)])
def test_matches_long_double(fn, name, shape, interpreted):
    dtype = DTYPES[name]
    x = (4 * np.random.default_rng(sum(shape)).standard_normal(shape)).astype(dtype)
    with jax.enable_x64(dtype == np.float64):
        got = np.asarray(jax.jit(FUNCTIONS[fn])(x), np.float64)
        assert interpreted, "no GPU kernel was traced"
    true = REFERENCES[fn](x)
    scale = np.abs(true)
    if fn == "logsumexp":  # in ulp of the max where lse cancels against it (as test_kernel)
        scale = np.maximum(scale, np.abs(x).max(-1))
    err = np.abs(got - true) / np.spacing(scale.astype(dtype)).astype(np.float64)
    assert err.max() <= BOUNDS[fn], f"max {err.max():.2f} ulp"


@pytest.mark.parametrize("fn", [*FUNCTIONS, *CE])
@pytest.mark.parametrize("name", [*DTYPES, "bf16", "f16"])
def test_special_rows_and_gradients_follow_the_jnp_path(fn, name, interpreted):
    dtype = {**DTYPES, "bf16": jnp.bfloat16, "f16": jnp.float16}[name]
    f = FUNCTIONS.get(fn) or CE[fn]
    with np.errstate(over="ignore"):  # ±3e38 is ±inf in float16
        x = np.asarray(np.array(SPECIAL_ROWS) * np.ones((3, 1, 1)), dtype)  # 3×8 rows of 4

    def grad(v):
        return jax.grad(lambda v: jnp.sum(jnp.where(jnp.isfinite(f(v)), f(v), 0)))(v)

    with jax.enable_x64(dtype == np.float64):
        got, got_grad = jax.jit(f)(x), jax.jit(grad)(x)
        # (16-bit logsumexp: the jnp path, `Stats` without its compensation)
        assert bool(interpreted) == (fn != "logsumexp" or name in DTYPES)
        want, want_grad = _jnp(jax.jit(f), x), _jnp(jax.jit(grad), x)
    np.testing.assert_array_equal(np.asarray(got, np.float64), np.asarray(want, np.float64))
    np.testing.assert_allclose(np.asarray(got_grad, np.float64),
                               np.asarray(want_grad, np.float64),
                               rtol=8 * float(jnp.finfo(dtype).eps), atol=1e-30)


@pytest.mark.parametrize("columns", [2048, 16])  # 16: 37-wide rows in 3 column blocks
@pytest.mark.parametrize("options", INT_OPTIONS, ids=str)
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_16_bit_integer_label_cross_entropy_reads_its_format(dtype, options, columns,
                                                             interpreted, monkeypatch):
    """As on the CPU (test_kernel): the Pallas statistics and gradient read the 16-bit
    logits, computing in float32; the results are the jnp path's rounded alike."""
    monkeypatch.setattr(gpu, "COLUMNS", columns)
    x, labels, loss = int_ce_16_bit(dtype, 37, options)
    check_int_ce_16_bit(x, labels, options, loss)
    assert interpreted


@pytest.mark.parametrize("width", [37, gpu.PAIR_WIDTH + 1])  # the forward a kernel, or jnp
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_16_bit_soft_label_cross_entropy_reads_its_format(dtype, width, interpreted):
    x, y = soft_ce_16_bit(dtype, width)
    check_soft_ce_16_bit(x, y)
    assert interpreted


@pytest.mark.parametrize("columns", [2048, 16])  # 16: 37-wide rows in 3 column blocks
@pytest.mark.parametrize("options", INT_OPTIONS, ids=str)
def test_integer_label_gradient_follows_the_jnp_path(options, columns, interpreted,
                                                     monkeypatch):
    monkeypatch.setattr(gpu, "COLUMNS", columns)
    rng = np.random.default_rng(5)
    x = (3 * rng.standard_normal((6, 40, 37))).astype(np.float32)
    x[0, :4] = np.array(SPECIAL_ROWS, np.float32)[:4, :1]  # an empty, a NaN and a +inf row
    labels = rng.integers(0, 37, (6, 40))
    labels[1, :3] = [-1, 37, 2]  # invalid (NaN rows), and the ignored class of some options
    f = functools.partial(jaxsoft.softmax_cross_entropy_with_integer_labels, **options)
    weights = rng.standard_normal((6, 40)).astype(np.float32)

    def loss(v):
        return jnp.sum(jnp.where(jnp.isfinite(f(v, labels)), f(v, labels) * weights, 0))

    got = jax.jit(jax.value_and_grad(loss))(x)
    assert interpreted
    want = _jnp(jax.jit(jax.value_and_grad(loss)), x)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
    np.testing.assert_array_equal(np.isnan(got[1]), np.isnan(want[1]))
    eps = np.finfo(np.float32).eps  # to a few eps absolute, as test_kernel's
    np.testing.assert_allclose(got[1], want[1], rtol=8 * eps, atol=4 * eps)


@pytest.mark.parametrize("columns", [2048, 16])  # 16: the CE gradients in column blocks
@pytest.mark.parametrize("fn", [*FUNCTIONS, *CE])
def test_vmap_and_gradient_match_the_jnp_path(fn, columns, x64, interpreted, monkeypatch):
    monkeypatch.setattr(gpu, "COLUMNS", columns)
    f = FUNCTIONS.get(fn) or CE[fn]
    x = jnp.asarray(np.random.default_rng(1).standard_normal((3, 4, 50)))
    w = jnp.asarray(np.random.default_rng(2).standard_normal(jax.eval_shape(f, x).shape))

    def loss(v):
        return jnp.sum(jax.vmap(f)(v) * w)

    value, grad = jax.jit(jax.value_and_grad(loss))(x)
    assert interpreted
    ref_value, ref_grad = _jnp(jax.value_and_grad(loss), x)
    np.testing.assert_allclose(value, ref_value, rtol=1e-14)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-12, atol=1e-15)


def test_unbatched_labels_are_broadcast_under_vmap(interpreted):
    x = jnp.asarray(np.random.default_rng(3).standard_normal((2, 5, 7)), jnp.float32)
    labels = jnp.arange(5) % 7
    f = jax.value_and_grad(lambda v: jaxsoft.softmax_cross_entropy_with_integer_labels(
        v, labels, reduction="mean"))
    value, grad = jax.vmap(f)(x)
    for k in range(2):
        v, g = _jnp(f, x[k])
        np.testing.assert_allclose(value[k], v, rtol=1e-6)
        np.testing.assert_allclose(grad[k], g, rtol=1e-6, atol=1e-9)


@pytest.fixture
def on_a_gpu(monkeypatch):
    """JAX's default backend reported as a GPU, JAXSOFT_GPU_KERNEL unset (the kernels on)."""
    jax.clear_caches()  # as `interpreted`
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    monkeypatch.delenv("JAXSOFT_GPU_KERNEL", raising=False)
    yield
    jax.clear_caches()


@pytest.fixture
def lowering_for_an_h100(on_a_gpu, monkeypatch):
    """`on_a_gpu`, and on JAX ≥ 0.11 Pallas told it lowers for an H100 (it asks the device
    otherwise)."""
    try:
        from jax._src.pallas.triton import gpu_info, pallas_call_registration
    except ImportError:  # JAX < 0.11 lowers for compute capability 9.0 without a device
        return
    h100 = gpu_info.get_gpu_info_from_version(gpu_info.GpuVersion.H100)
    monkeypatch.setattr(pallas_call_registration.gpu_info_lib, "get_gpu_info", lambda: h100)


WORKLOADS = {  # name: (function, kernels in its jit)
    **{fn: (FUNCTIONS[fn], 1) for fn in FUNCTIONS},
    **{f"{fn} value_and_grad": (jax.value_and_grad(lambda v, f=f: jnp.sum(f(v))), 1)
       for fn, f in FUNCTIONS.items() if fn != "logsumexp"},
    **{f"{fn} CE value_and_grad": (jax.value_and_grad(lambda v, f=f: jnp.mean(f(v))), 2)
       for fn, f in CE.items()},
}


@pytest.mark.parametrize("workload", WORKLOADS)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("shape", [(64, 10), (8, 32768)])
def test_lowers_to_triton_for_cuda(workload, dtype, shape, lowering_for_an_h100):
    f, count = WORKLOADS[workload]
    if dtype == jnp.bfloat16 and "logsumexp" in workload:
        count = 0  # its 16-bit inputs take the jnp path (`Stats`: compensate=False)
    text = jax.export.export(
        jax.jit(f), platforms=["cuda"],
        disabled_checks=[jax.export.DisabledSafetyCheck.custom_call(TRITON)],
    )(jax.ShapeDtypeStruct(shape, dtype)).mlir_module()
    assert text.count(f"@{TRITON}") == count
    assert "@jaxsoft_" not in text  # no CPU kernel


def test_traced_on_a_gpu_unless_jaxsoft_gpu_kernel_is_0(on_a_gpu, monkeypatch):
    x = jnp.ones((4, 6))
    assert kernel.applies(x, (1,), None) and kernel.status() == "in use (jaxsoft.gpu)"
    assert not kernel.applies(x, (0,), None) and not kernel.applies(x, (1,), x > 0)
    assert not kernel.applies(jnp.ones((2, gpu.MAX_WIDTH + 1)), (1,), None)
    assert not kernel.applies(jnp.ones((0, 6)), (1,), None)
    with kernel.disabled():
        assert not kernel.applies(x, (1,), None)
    monkeypatch.setenv("JAXSOFT_GPU_KERNEL", "0")
    assert not kernel.applies(x, (1,), None) and "JAXSOFT_GPU_KERNEL=0" in kernel.status()


@pytest.mark.parametrize(("width", "forward"), [(gpu.PAIR_WIDTH, "soft_cross_entropy"),
                                                (gpu.PAIR_WIDTH + 1, "stats")])
def test_soft_label_forward_kernel_only_up_to_pair_width(width, forward, lowering_for_an_h100,
                                                         monkeypatch):
    called = []
    call = kernel._call
    monkeypatch.setattr(kernel, "_call", lambda fn, *a: called.append(fn) or call(fn, *a))
    f = jax.value_and_grad(lambda v, y: jnp.mean(jaxsoft.softmax_cross_entropy(v, y)))
    arg = jax.ShapeDtypeStruct((8, width), jnp.float32)
    text = jax.export.export(
        jax.jit(f), platforms=["cuda"],
        disabled_checks=[jax.export.DisabledSafetyCheck.custom_call(TRITON)],
    )(arg, arg).mlir_module()
    assert called == [forward, "soft_grad"] and text.count(f"@{TRITON}") == 2
