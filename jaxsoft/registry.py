"""The one table of every differentiable function in jaxsoft.

Each `Entry` holds the public function (with its custom derivative rule), the closed-form
derivative that rule uses, a *plain reference formula* (ordinary `jnp`, textbook form, no
custom rule: autodiff through it is an independent computation) and the core input domain.
Tests, `python -m jaxsoft gradcheck` and the benchmarks iterate over `REGISTRY`.

Kinds:
  * "elementwise": `fn(x)`; `derivative(x)` is f'(x).
  * "vector" / "loss": `fn(x, *rest)`; `derivative(ct, x, *rest)` is the closed-form
    vector-Jacobian product with respect to `x` (the first argument), e.g. for a loss
    ct[..., None] * (softmax(x) - y).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erf

from jaxsoft import activations as act
from jaxsoft import losses as L
from jaxsoft import softmax as sm
from jaxsoft.losses import cross_entropy as ce


@dataclasses.dataclass(frozen=True)
class Entry:
    """One registered function.

    Attributes:
      name: display name (a variant with parameters reads like a call, `swish(beta=1.5)`).
      fn: the public function, custom derivative rule attached.
      derivative: closed form: f'(x) for elementwise entries, else vjp(ct, *args) wrt args[0].
      reference: plain formula with the same signature as `fn`, no custom rule.
      sample: rng -> tuple of float64 NumPy args in the core domain (away from kinks).
      kind: "elementwise", "vector" or "loss".
      fd_step: finite-difference step for the gradient check (smaller near a domain edge).
    """

    name: str
    fn: Callable
    derivative: Callable
    reference: Callable
    sample: Callable[[np.random.Generator], tuple]
    kind: str = "elementwise"
    fd_step: float = 1e-2

    def closed_vjp(self, ct, *args):
        """Closed-form gradient of <ct, fn(*args)> with respect to args[0]."""
        if self.kind == "elementwise":
            return ct * self.derivative(args[0])
        return self.derivative(ct, *args)


def interval(lo: float, hi: float, kinks: tuple = (), n: int = 64, gap: float = 0.05):
    """Sampler of `n` points spread over [lo, hi], at least `gap` away from each kink."""

    def sample(rng: np.random.Generator) -> tuple:
        x = np.concatenate([np.linspace(lo, hi, n // 2), rng.uniform(lo, hi, n - n // 2)])
        for k in kinks:
            near = np.abs(x - k) < gap
            x[near] = k + np.where(x[near] >= k, gap, -gap) * 2
        return (x,)

    return sample


def _elementwise(name, fn, derivative, reference, lo=-10.0, hi=10.0, kinks=()):
    return Entry(name, fn, derivative, reference, interval(lo, hi, kinks))


# ----------------------------------------------------------------------------- activations
# Plain references: the textbook formula, written naively on purpose.

_SELU_A, _SELU_L = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def _ref_gelu_erf(x):
    return x * 0.5 * (1 + erf(x / jnp.sqrt(2.0)))


ACTIVATIONS = [
    _elementwise("identity", act.identity, act.identity_grad, lambda x: x),
    _elementwise("sign", act.sign, act.sign_grad,
                 lambda x: jnp.where(x > 0, 1.0, jnp.where(x < 0, -1.0, 0.0)), kinks=(0.0,)),
    _elementwise("sigmoid", act.sigmoid, act.sigmoid_grad, lambda x: 1 / (1 + jnp.exp(-x))),
    _elementwise("log_sigmoid", act.log_sigmoid, act.log_sigmoid_grad,
                 lambda x: jnp.log(1 / (1 + jnp.exp(-x)))),
    _elementwise("tanh", act.tanh, act.tanh_grad,
                 lambda x: (jnp.exp(x) - jnp.exp(-x)) / (jnp.exp(x) + jnp.exp(-x))),
    _elementwise("relu", act.relu, act.relu_grad, lambda x: jnp.where(x > 0, x, 0.0),
                 kinks=(0.0,)),
    _elementwise("relu6", act.relu6, act.relu6_grad,
                 lambda x: jnp.where(x > 6, 6.0, jnp.where(x > 0, x, 0.0)), kinks=(0.0, 6.0)),
    _elementwise("leaky_relu", act.leaky_relu, act.leaky_relu_grad,
                 lambda x: jnp.where(x > 0, x, 0.01 * x), kinks=(0.0,)),
    _elementwise("leaky_relu(negative_slope=0.2)",
                 lambda x: act.leaky_relu(x, negative_slope=0.2),
                 lambda x: act.leaky_relu_grad(x, 0.2),
                 lambda x: jnp.where(x > 0, x, 0.2 * x), kinks=(0.0,)),
    _elementwise("softplus", act.softplus, act.softplus_grad, lambda x: jnp.log(1 + jnp.exp(x))),
    _elementwise("soft_sign", act.soft_sign, act.soft_sign_grad, lambda x: x / (1 + jnp.abs(x)),
                 kinks=(0.0,)),
    _elementwise("silu", act.silu, act.silu_grad, lambda x: x / (1 + jnp.exp(-x))),
    _elementwise("swish(beta=1.5)", lambda x: act.swish(x, beta=1.5),
                 lambda x: act.swish_grad(x, 1.5), lambda x: x / (1 + jnp.exp(-1.5 * x))),
    _elementwise("elu", act.elu, act.elu_grad,
                 lambda x: jnp.where(x > 0, x, jnp.exp(x) - 1), kinks=(0.0,)),
    _elementwise("elu(alpha=0.5)", lambda x: act.elu(x, alpha=0.5),
                 lambda x: act.elu_grad(x, 0.5),
                 lambda x: jnp.where(x > 0, x, 0.5 * (jnp.exp(x) - 1)), kinks=(0.0,)),
    _elementwise("celu", act.celu, act.celu_grad,
                 lambda x: jnp.where(x > 0, x, jnp.exp(x) - 1), kinks=(0.0,)),
    _elementwise("celu(alpha=0.5)", lambda x: act.celu(x, alpha=0.5),
                 lambda x: act.celu_grad(x, 0.5),
                 lambda x: jnp.where(x > 0, x, 0.5 * (jnp.exp(x / 0.5) - 1)), kinks=(0.0,)),
    _elementwise("selu", act.selu, act.selu_grad,
                 lambda x: _SELU_L * jnp.where(x > 0, x, _SELU_A * (jnp.exp(x) - 1)),
                 kinks=(0.0,)),
    _elementwise("gelu(approximate=True)", act.gelu, act.gelu_grad,
                 lambda x: 0.5 * x * (1 + jnp.tanh(jnp.sqrt(2 / jnp.pi)
                                                   * (x + 0.044715 * x**3))), lo=-4.0),
    _elementwise("gelu(approximate=False)", lambda x: act.gelu(x, approximate=False),
                 lambda x: act.gelu_grad(x, approximate=False), _ref_gelu_erf, lo=-4.0),
    _elementwise("hard_sigmoid", act.hard_sigmoid, act.hard_sigmoid_grad,
                 lambda x: jnp.clip((x + 3) / 6, 0.0, 1.0), kinks=(-3.0, 3.0)),
    _elementwise("hard_tanh", act.hard_tanh, act.hard_tanh_grad,
                 lambda x: jnp.clip(x, -1.0, 1.0), kinks=(-1.0, 1.0)),
    _elementwise("hard_silu", act.hard_silu, act.hard_silu_grad,
                 lambda x: x * jnp.clip((x + 3) / 6, 0.0, 1.0), kinks=(-3.0, 3.0)),
    _elementwise("mish", act.mish, act.mish_grad,
                 lambda x: x * jnp.tanh(jnp.log1p(jnp.exp(x)))),
    _elementwise("squareplus", act.squareplus, act.squareplus_grad,
                 lambda x: (x + jnp.sqrt(x * x + 4)) / 2),
    _elementwise("squareplus(b=1.5)", lambda x: act.squareplus(x, b=1.5),
                 lambda x: act.squareplus_grad(x, 1.5),
                 lambda x: (x + jnp.sqrt(x * x + 1.5)) / 2),
]

# ------------------------------------------------------------------------------ softmax family


def _logits(rng, shape=(4, 5), scale=3.0):
    return rng.standard_normal(shape) * scale


def _ref_softmax(x):
    return jnp.exp(x) / jnp.sum(jnp.exp(x), axis=-1, keepdims=True)


def _ref_logsumexp(x):
    return jnp.log(jnp.sum(jnp.exp(x), axis=-1))


def _softmax_vjp(ct, x):
    y = sm.softmax(x)  # the Jacobian y_n(δ_nm − y_m) is symmetric: vjp = jvp
    return y * (ct - jnp.sum(y * ct, axis=-1, keepdims=True))


SOFTMAX = [
    Entry("logsumexp", functools.partial(sm.logsumexp, axis=-1),
          lambda ct, x: ct[..., None] * sm.softmax(x), _ref_logsumexp,
          lambda rng: (_logits(rng),), kind="vector"),
    Entry("softmax", sm.softmax, _softmax_vjp, _ref_softmax,
          lambda rng: (_logits(rng),), kind="vector"),
    Entry("log_softmax", sm.log_softmax,
          lambda ct, x: ct - sm.softmax(x) * jnp.sum(ct, axis=-1, keepdims=True),
          lambda x: x - _ref_logsumexp(x)[..., None],
          lambda rng: (_logits(rng),), kind="vector"),
]

# ---------------------------------------------------------------------------------- losses
# Plain references: the textbook formula in ordinary jnp (no custom rule, no jaxsoft), so
# autodiff through them is independent of the closed forms. Samplers keep away from kinks
# (|p − t| ≠ 0, ŷ·y ≠ 0 or 1, |r| ≠ δ, distinct scores), from probabilities 0 and 1, and
# keep logits in [−5, 5], where the naive 1 − σ(x) of the reference is still accurate to 1e-13.
# Integer labels are returned as int64 NumPy arrays (the only non-float64 sample args).


def _labels(rng, shape=(4,), classes=5):
    return rng.integers(0, classes, shape)


def _soft_labels(rng, shape=(4, 5)):
    return rng.dirichlet(np.ones(shape[-1]), shape[:-1])


def _ref_ce_int(x, labels, smoothing=0.0, z_loss=0.0):
    target = (1 - smoothing) * jnp.eye(x.shape[-1])[labels] + smoothing / x.shape[-1]
    lse = _ref_logsumexp(x)
    return -jnp.sum(target * jnp.log(_ref_softmax(x)), axis=-1) + z_loss * lse**2


def _ce_int_entry(name, **options):
    def fn(x, labels):
        return ce.softmax_cross_entropy_with_integer_labels(x, labels, **options)

    def vjp(ct, x, labels):
        return ct[..., None] * ce.softmax_cross_entropy_with_integer_labels_grad(
            x, labels, **options)

    def ref(x, labels):
        return _ref_ce_int(x, labels, options.get("label_smoothing", 0.0),
                           options.get("z_loss", 0.0))

    return Entry(name, fn, vjp, ref, lambda rng: (_logits(rng), _labels(rng)), kind="loss")


def _loss(name, fn, derivative, reference, sample, fd_step=1e-2):
    return Entry(name, fn, derivative, reference, sample, kind="loss", fd_step=fd_step)


def _pairs(rng, n=64, lo=-3.0, hi=3.0, gap=0.1, kink=0.0):
    """(x, t) with |x − t − kink| and |x − t + kink| at least `gap`."""
    x = rng.uniform(lo, hi, n)
    r = rng.uniform(gap, 2.0, n) * rng.choice([-1.0, 1.0], n)
    r = np.where(np.abs(np.abs(r) - kink) < gap, r + np.sign(r) * 2 * gap, r)
    return x, x - r


def _prob_rows(rng, n=8, c=4, lo=0.1):
    """Rows of `c` probabilities, each at least `lo / c`, summing to 1."""
    p = rng.uniform(lo, 1.0, (n, c))
    return p / p.sum(-1, keepdims=True)


def _signs(rng, n=64, gap=0.1, kink=0.0):
    """(ŷ, y): y = ±1 and ŷ·y at least `gap` away from `kink`."""
    y = rng.choice([-1.0, 1.0], n)
    m = rng.uniform(-3, 3, n)
    m = np.where(np.abs(m - kink) < gap, kink + np.where(m >= kink, 2, -2) * gap, m)
    return m * y, y


def _scores(rng, n=8, c=5):
    """Scores whose pairwise gaps are 0.3k ± 0.05 (never a tie, never a hinge kink)."""
    s = np.stack([rng.permutation(c) for _ in range(n)]) * 0.3 + rng.uniform(0, 0.05, (n, c))
    return s, rng.integers(0, c, n)


def _one_hot_ref(labels, c, dtype):
    return (labels[..., None] == jnp.arange(c).reshape((1,) * labels.ndim + (-1,))).astype(dtype)


_NLL_WEIGHTS = np.array([0.5, 1.0, 2.0, 1.5])


def _nll_sample(ignore=False):
    def sample(rng):
        lp = np.log(_prob_rows(rng))
        y = rng.integers(0, 4, 8)
        if ignore:
            y[::3] = -100
        return lp, y

    return sample


def _nll_ref(lp, y, weights=None, ignore=None):
    safe = jnp.clip(y, 0, lp.shape[-1] - 1)
    picked = jnp.take_along_axis(lp, safe[..., None], axis=-1)[..., 0]
    w = 1.0 if weights is None else jnp.asarray(weights, lp.dtype)[safe]
    loss = -w * picked
    return loss if ignore is None else jnp.where(y == ignore, 0.0, loss)


def _nll_vjp(weights=None, ignore=None):
    def vjp(ct, lp, y):
        w = jnp.ones(y.shape, lp.dtype) if weights is None else jnp.asarray(weights, lp.dtype)[y]
        ignored = jnp.zeros(y.shape, bool) if ignore is None else y == ignore
        return ct[..., None] * L.nll_loss_grad(lp, y, w, ignored)[0]

    return vjp


def _sigmoid_ref(x):
    return 1 / (1 + jnp.exp(-x))


def _mask(x):
    return jnp.ones(x.shape, bool)


LOSSES = [
    Entry("softmax_cross_entropy", ce.softmax_cross_entropy,
          lambda ct, x, y: ct[..., None] * ce.softmax_cross_entropy_grad(x, y),
          lambda x, y: -jnp.sum(y * jnp.log(_ref_softmax(x)), axis=-1),
          lambda rng: (_logits(rng), _soft_labels(rng)), kind="loss"),
    _ce_int_entry("softmax_cross_entropy_with_integer_labels"),
    _ce_int_entry("softmax_cross_entropy_with_integer_labels(label_smoothing=0.1)",
                  label_smoothing=0.1),
    _ce_int_entry("softmax_cross_entropy_with_integer_labels(z_loss=1e-3)", z_loss=1e-3),
    _loss("squared_error", L.squared_error,
          lambda ct, x, t: ct * L.squared_error_grad(x, t)[0],
          lambda x, t: (x - t) ** 2, _pairs),
    _loss("l2_loss", L.l2_loss,
          lambda ct, x, t: ct * 0.5 * L.squared_error_grad(x, t)[0],
          lambda x, t: 0.5 * (x - t) ** 2, _pairs),
    _loss("absolute_error", L.absolute_error,
          lambda ct, x, t: ct * L.absolute_error_grad(x, t)[0],
          lambda x, t: jnp.abs(x - t), _pairs),
    _loss("huber_loss", L.huber_loss,
          lambda ct, x, t: ct * L.huber_loss_grad(x, t, 1.0)[0],
          lambda x, t: jnp.where(jnp.abs(x - t) <= 1.0, 0.5 * (x - t) ** 2,
                                 jnp.abs(x - t) - 0.5),
          lambda rng: _pairs(rng, kink=1.0)),
    _loss("huber_loss(delta=0.5)", lambda x, t: L.huber_loss(x, t, delta=0.5),
          lambda ct, x, t: ct * L.huber_loss_grad(x, t, 0.5)[0],
          lambda x, t: jnp.where(jnp.abs(x - t) <= 0.5, 0.5 * (x - t) ** 2,
                                 0.5 * (jnp.abs(x - t) - 0.25)),
          lambda rng: _pairs(rng, kink=0.5)),
    _loss("quadratic_loss", L.quadratic_loss,
          lambda ct, x, t: ct[..., None] * L.quadratic_loss_grad(x, t)[0],
          lambda x, t: 0.5 * jnp.sum((x - t) ** 2, axis=-1),
          lambda rng: (rng.normal(size=(8, 4)), rng.normal(size=(8, 4)))),
    _loss("binary_cross_entropy", L.binary_cross_entropy,
          lambda ct, p, y: ct * L.binary_cross_entropy_grad(p, y)[0],
          lambda p, y: -(y * jnp.log(p) + (1 - y) * jnp.log(1 - p)),
          lambda rng: (rng.uniform(0.1, 0.9, 64), rng.uniform(0, 1, 64)), fd_step=1e-3),
    _loss("sigmoid_binary_cross_entropy", L.sigmoid_binary_cross_entropy,
          lambda ct, x, y: ct * L.sigmoid_binary_cross_entropy_grad(x, y, jnp.ones_like(x))[0],
          lambda x, y: -(y * jnp.log(_sigmoid_ref(x)) + (1 - y) * jnp.log(1 - _sigmoid_ref(x))),
          lambda rng: (rng.uniform(-5, 5, 64), rng.uniform(0, 1, 64))),
    _loss("sigmoid_binary_cross_entropy(pos_weight=2)",
          lambda x, y: L.sigmoid_binary_cross_entropy(x, y, pos_weight=2.0),
          lambda ct, x, y: ct * L.sigmoid_binary_cross_entropy_grad(
              x, y, jnp.full_like(x, 2.0))[0],
          lambda x, y: -(2 * y * jnp.log(_sigmoid_ref(x))
                         + (1 - y) * jnp.log(1 - _sigmoid_ref(x))),
          lambda rng: (rng.uniform(-5, 5, 64), rng.uniform(0, 1, 64))),
    _loss("categorical_cross_entropy", L.categorical_cross_entropy,
          lambda ct, p, y: ct[..., None] * L.categorical_cross_entropy_grad(p, y, _mask(p))[0],
          lambda p, y: -jnp.sum(y * jnp.log(p), axis=-1),
          lambda rng: (_prob_rows(rng), _prob_rows(rng, lo=0.0)), fd_step=3e-4),
    _loss("nll_loss", L.nll_loss, _nll_vjp(), _nll_ref, _nll_sample()),
    _loss("nll_loss(weights)", lambda lp, y: L.nll_loss(lp, y, weights=_NLL_WEIGHTS),
          _nll_vjp(weights=_NLL_WEIGHTS), lambda lp, y: _nll_ref(lp, y, weights=_NLL_WEIGHTS),
          _nll_sample()),
    _loss("nll_loss(ignore_index=-100)", lambda lp, y: L.nll_loss(lp, y, ignore_index=-100),
          _nll_vjp(ignore=-100), lambda lp, y: _nll_ref(lp, y, ignore=-100),
          _nll_sample(ignore=True)),
    _loss("kl_divergence", L.kl_divergence,
          lambda ct, lq, t: ct[..., None] * L.kl_divergence_grad(lq, t, _mask(lq))[0],
          lambda lq, t: jnp.sum(t * (jnp.log(t) - lq), axis=-1),
          lambda rng: (np.log(_prob_rows(rng)), _prob_rows(rng))),
    _loss("kl_divergence_with_log_targets", L.kl_divergence_with_log_targets,
          lambda ct, lq, lt: ct[..., None] * L.kl_divergence_with_log_targets_grad(
              lq, lt, _mask(lq))[0],
          lambda lq, lt: jnp.sum(jnp.exp(lt) * (lt - lq), axis=-1),
          lambda rng: (np.log(_prob_rows(rng)), np.log(_prob_rows(rng)))),
    _loss("perceptron_loss", L.perceptron_loss,
          lambda ct, x, y: ct * L.perceptron_loss_grad(x, y)[0],
          lambda x, y: jnp.maximum(-x * y, 0.0), _signs),
    _loss("hinge_loss", L.hinge_loss,
          lambda ct, x, y: ct * L.hinge_loss_grad(x, y)[0],
          lambda x, y: jnp.maximum(1 - x * y, 0.0), lambda rng: _signs(rng, kink=1.0)),
    _loss("multiclass_perceptron_loss", L.multiclass_perceptron_loss,
          lambda ct, s, y: ct[..., None] * L.multiclass_perceptron_loss_grad(s, y)[0],
          lambda s, y: jnp.max(s, axis=-1) - jnp.sum(s * _one_hot_ref(y, s.shape[-1], s.dtype),
                                                     axis=-1),
          _scores),
    _loss("multiclass_hinge_loss", L.multiclass_hinge_loss,
          lambda ct, s, y: ct[..., None] * L.multiclass_hinge_loss_grad(s, y)[0],
          lambda s, y: jnp.max(s + 1 - _one_hot_ref(y, s.shape[-1], s.dtype), axis=-1)
          - jnp.sum(s * _one_hot_ref(y, s.shape[-1], s.dtype), axis=-1),
          _scores),
]

REGISTRY: list[Entry] = ACTIVATIONS + SOFTMAX + LOSSES
BY_NAME = {e.name: e for e in REGISTRY}
assert len(BY_NAME) == len(REGISTRY), "registry names must be unique"
