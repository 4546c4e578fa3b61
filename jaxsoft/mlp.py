r"""Multilayer perceptrons with a hand-written backprop (Nielsen's `network.py`, in JAX).

Parameters are a plain pytree, one dict per layer in Nielsen's orientation:
`[{"w": (n_out, n_in), "b": (n_out,)}, ...]`, and layer l computes

    zˡ = Wˡ aˡ⁻¹ + bˡ,   aˡ = f(zˡ)   (a⁰ = x; the last layer's f is the head's).

`forward` and `predict` act on ONE example (as equinox); batch them with `jax.vmap`.
`loss` is the mean over a batch of the head's per-example loss (through `jax.vmap`), and
`backprop` returns the same gradient from the textbook equations, batched as matrix products:

    δᴸ = ∂loss/∂zᴸ                          (closed form of the head: a − y, σ(z) − y, ...)
    δˡ = (Wˡ⁺¹ᵀ δˡ⁺¹) ⊙ f'(zˡ)              (f' = the activation's public closed form)
    ∂C/∂Wˡ = δˡ aˡ⁻¹ᵀ / m,  ∂C/∂bˡ = Σ δˡ / m   (+ (λ/n)·Wˡ with weight decay λ)

A head pairs the output activation with the per-example loss of the output distribution
(seed 003): gaussian → identity + ½‖a − y‖², laplace → identity + Σ|a − y|, bernoulli →
sigmoid + BCE, categorical → softmax + CE, multilabel → sigmoids + summed BCE; and the two
mismatched pairs seed 001 warns about, sigmoid_quadratic and softmax_quadratic, whose δᴸ keeps
the f'(zᴸ) factor that slows learning when the output saturates.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from jaxsoft import activations as _act
from jaxsoft import losses as _losses
from jaxsoft._checks import compute_dtype
from jaxsoft.softmax import softmax

Params = list  # [{"w": Array (n_out, n_in), "b": Array (n_out,)}, ...]

# ------------------------------------------------------------------------- initialization

SCHEMES = ("large", "normalized", "glorot", "he")


def init(key, sizes: Sequence[int], scheme: str = "normalized", dtype=jnp.float32) -> Params:
    r"""Random parameters for layer sizes `[n_in, hidden..., n_out]`.

    Schemes (per layer with fan-in n_in and fan-out n_out):
      * "large": W, b ~ N(0, 1) (Nielsen's `network.py`; saturates wide layers).
      * "normalized": W ~ N(0, 1/n_in), b ~ N(0, 1) (`network2.py`'s default).
      * "glorot": W ~ U(±√(6/(n_in + n_out))), b = 0 (variance 2/(n_in + n_out)).
      * "he": W ~ N(0, 2/n_in), b = 0 (for rectifiers).

    bfloat16/float16 parameters are sampled in float32 and rounded once.

    Example:
      >>> import jax, jaxsoft.mlp as mlp
      >>> params = mlp.init(jax.random.key(0), [784, 30, 10])
      >>> [(p["w"].shape, p["b"].shape) for p in params]
      [((30, 784), (30,)), ((10, 30), (10,))]
    """
    if scheme not in SCHEMES:
        raise ValueError(f"init: scheme must be one of {SCHEMES}, got {scheme!r}")
    if len(sizes) < 2 or any(not isinstance(n, int) or n < 1 for n in sizes):
        raise ValueError(f"init: sizes must be >= 2 positive ints, got {sizes!r}")
    # bf16/f16: sample in float32 and round once (jax.random.normal in bfloat16 itself has a
    # mean of about −0.01σ, a 6σ bias over a 800×400 layer).
    work = compute_dtype(dtype)
    params = []
    for k, n_in, n_out in zip(jax.random.split(key, len(sizes) - 1), sizes[:-1], sizes[1:],
                              strict=True):
        kw, kb = jax.random.split(k)
        normal_w = jax.random.normal(kw, (n_out, n_in), work)
        normal_b = jax.random.normal(kb, (n_out,), work)
        zeros_b = jnp.zeros((n_out,), work)
        if scheme == "large":
            w, b = normal_w, normal_b
        elif scheme == "normalized":
            w, b = normal_w / math.sqrt(n_in), normal_b
        elif scheme == "glorot":
            lim = math.sqrt(6 / (n_in + n_out))
            w, b = jax.random.uniform(kw, (n_out, n_in), work, -lim, lim), zeros_b
        else:  # he
            w, b = normal_w * math.sqrt(2 / n_in), zeros_b
        params.append({"w": w.astype(dtype), "b": b.astype(dtype)})
    return params


# ---------------------------------------------------------------------------- activations

ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    name: (getattr(_act, name), getattr(_act, name + "_grad"))
    for name in _act.__all__ if not name.endswith("_grad")
}


def _hidden(activation, n_hidden: int, fn: str) -> list[tuple[Callable, Callable]]:
    """(f, f') for each hidden layer from one name or a sequence of names (looked up once)."""
    names = [activation] * n_hidden if isinstance(activation, str) else list(activation)
    if len(names) != n_hidden:
        raise ValueError(f"{fn}: activation has {len(names)} names for {n_hidden} hidden layers")
    for name in names:
        if name not in ACTIVATIONS:
            raise ValueError(f"{fn}: unknown activation {name!r}; choose from "
                             f"{sorted(ACTIVATIONS)}")
    return [ACTIVATIONS[name] for name in names]


# ---------------------------------------------------------------------------------- heads


def _targets(z, y, fn):
    """Float targets of z's shape (per example [K] or batched [m, K]), cast to z's dtype."""
    if not jnp.issubdtype(y.dtype, jnp.floating):
        raise TypeError(f"{fn}: y must be a floating array of targets shaped like the output "
                        f"{z.shape}, got dtype {y.dtype}")
    if y.shape != z.shape:
        raise ValueError(f"{fn}: y.shape {y.shape} must equal the output's shape {z.shape}")
    return y.astype(z.dtype)


def _labels(z, y, fn):
    """Integer class labels of shape z.shape[:-1] (one per example)."""
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise TypeError(f"{fn}: y must be integer class labels, got dtype {y.dtype}")
    if y.shape != z.shape[:-1]:
        raise ValueError(f"{fn}: y.shape {y.shape} must equal {z.shape[:-1]} (one label per "
                         f"example)")
    return y


def _onehot(y, z):
    """onehot(y) with z's last size and dtype: [..., K] from integer labels [...]."""
    classes = jax.lax.broadcasted_iota(y.dtype, z.shape, z.ndim - 1)
    return (classes == y[..., None]).astype(z.dtype)


def _onehot_or_targets(z, y, fn):
    """Integer labels → one-hot targets; float targets are checked and kept."""
    if jnp.issubdtype(y.dtype, jnp.integer):
        return _onehot(_labels(z, y, fn), z)
    return _targets(z, y, fn)


@dataclasses.dataclass(frozen=True)
class Head:
    """Output activation + per-example loss + its closed-form δᴸ = ∂loss/∂zᴸ.

    `prepare(z, y, fn)` checks y (shape, dtype) against the logits z and converts it;
    `activation(z)`, `loss(z, y)` and `delta(z, y)` act on [..., K] logits.
    """

    name: str
    activation: Callable
    loss: Callable
    delta: Callable
    prepare: Callable = _targets
    classify: str | None = None  # "argmax" or "threshold" (accuracy), None for regression


def _softmax_quadratic_delta(z, y):
    # J_softmaxᵀ (a − y) = a ⊙ ((a − y) − ⟨a, a − y⟩): no K×K Jacobian.
    a = softmax(z)
    r = a - y
    return a * (r - jnp.sum(a * r, axis=-1, keepdims=True))


HEADS: dict[str, Head] = {h.name: h for h in (
    # Gaussian mean: C = ½‖z − y‖², δ = z − y.
    Head("gaussian", _act.identity, _losses.quadratic_loss, lambda z, y: z - y),
    # Laplace median: C = Σ|z − y|, δ = sign(z − y) (0 at z = y).
    Head("laplace", _act.identity, lambda z, y: _losses.absolute_error(z, y).sum(-1),
         lambda z, y: jnp.sign(z - y)),
    # Bernoulli (one output, float labels [1] per example): BCE from logits, δ = σ(z) − y.
    Head("bernoulli", _act.sigmoid,
         lambda z, y: _losses.sigmoid_binary_cross_entropy(z, y).sum(-1),
         lambda z, y: _act.sigmoid(z) - y, classify="threshold"),
    # Categorical (integer label): −log softmax(z)_y, δ = softmax(z) − onehot(y).
    Head("categorical", softmax, _losses.softmax_cross_entropy_with_integer_labels,
         lambda z, y: softmax(z) - _onehot(y, z),
         prepare=_labels, classify="argmax"),
    # Independent Bernoullis (float y ∈ {0,1}^K): Σ_j BCE, δ = σ(z) − y.
    Head("multilabel", _act.sigmoid,
         lambda z, y: _losses.sigmoid_binary_cross_entropy(z, y).sum(-1),
         lambda z, y: _act.sigmoid(z) - y, classify="threshold"),
    # Mismatched: C = ½‖σ(z) − y‖², δ = (a − y) ⊙ σ'(z) — small when σ saturates (seed 001).
    Head("sigmoid_quadratic", _act.sigmoid,
         lambda z, y: _losses.quadratic_loss(_act.sigmoid(z), y),
         lambda z, y: (_act.sigmoid(z) - y) * _act.sigmoid_grad(z),
         prepare=_onehot_or_targets, classify="argmax"),
    # Mismatched: C = ½‖softmax(z) − y‖², δ = J_softmaxᵀ (a − y).
    Head("softmax_quadratic", softmax, lambda z, y: _losses.quadratic_loss(softmax(z), y),
         _softmax_quadratic_delta, prepare=_onehot_or_targets, classify="argmax"),
)}


def _head(head, fn) -> Head:
    if head not in HEADS:
        raise ValueError(f"{fn}: unknown head {head!r}; choose from {sorted(HEADS)}")
    return HEADS[head]


# -------------------------------------------------------------------------------- forward


def _check_x(params, x, ndim, fn):
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{fn}: x must be a floating array, got dtype {x.dtype}")
    n_in = params[0]["w"].shape[1]
    shape = "(n_in,)" if ndim == 1 else "(batch, n_in)"
    if x.ndim != ndim or x.shape[-1] != n_in:
        raise ValueError(f"{fn}: x.shape {x.shape} must be {shape} with n_in = {n_in}")
    return x


def _forward(params, x, fs):
    """One example: zˡ = Wˡ aˡ⁻¹ + bˡ, aˡ = f(zˡ) for hidden layers. Returns (zs, as)."""
    zs, acts = [], [x]
    for layer, (f, _) in zip(params[:-1], fs, strict=True):
        zs.append(layer["w"] @ acts[-1] + layer["b"])
        acts.append(f(zs[-1]))
    zs.append(params[-1]["w"] @ acts[-1] + params[-1]["b"])
    return zs, acts


def forward(params, x, activation="sigmoid"):
    r"""One example through the network: zˡ = Wˡ aˡ⁻¹ + bˡ, aˡ = f(zˡ).

    Args:
      params: layers `[{"w": (n_out, n_in), "b": (n_out,)}, ...]`.
      x: one input `(n_in,)` (batch with `jax.vmap`).
      activation: hidden activation name, or one name per hidden layer.

    Returns:
      `(zs, acts)`: the weighted inputs z¹ … zᴸ and the activations a⁰ = x … aᴸ⁻¹;
      zᴸ = `zs[-1]` are the output logits (the head applies the output activation).
    """
    x = _check_x(params, x, 1, "forward")
    return _forward(params, x, _hidden(activation, len(params) - 1, "forward"))


def predict(params, x, activation="sigmoid", head="categorical"):
    """One example's output aᴸ = head activation(zᴸ) (probabilities, or the mean/median)."""
    zs, _ = forward(params, x, activation)
    return _head(head, "predict").activation(zs[-1])


# ----------------------------------------------------------------------------------- loss


def _decay(params, weight_decay, n_train):
    """(λ / 2n) Σ_l ‖Wˡ‖²_F (biases are not decayed), as network2's L2 regularization."""
    return weight_decay / (2 * n_train) * sum(jnp.sum(p["w"] ** 2) for p in params)


def loss(params, x, y, activation="sigmoid", head="categorical", weight_decay=0.0,
         n_train=None):
    r"""Mean head loss over a batch plus network2's L2 term: (1/m) Σ_x C_x + (λ/2n) Σ‖W‖².

    Args:
      params: the layers.
      x: inputs `(m, n_in)`.
      y: labels, per head: float `(m, K)` targets (gaussian, laplace, multilabel; bernoulli
        with K = 1: float `(m, 1)` in {0, 1}), integer `(m,)` classes (categorical), either
        (sigmoid_quadratic, softmax_quadratic: integers become one-hot targets).
      activation: hidden activation name or one per hidden layer.
      head: a key of `HEADS`.
      weight_decay: λ ≥ 0.
      n_train: n in λ/2n, the training-set size (network2 divides by it); default m.

    Returns:
      The scalar cost in the parameters' dtype.
    """
    h, fs = _head(head, "loss"), _hidden(activation, len(params) - 1, "loss")
    x = _check_x(params, x, 2, "loss")
    z = jax.vmap(lambda xi: _forward(params, xi, fs)[0][-1])(x)
    y = h.prepare(z, jnp.asarray(y), "loss")
    n = x.shape[0] if n_train is None else n_train
    return jnp.mean(jax.vmap(h.loss)(z, y)) + _decay(params, weight_decay, n)


def backprop(params, x, y, activation="sigmoid", head="categorical", weight_decay=0.0,
             n_train=None):
    r"""(cost, ∂cost/∂params) by the four backprop equations, batched as matrix products.

    With m examples as rows (Aˡ: (m, n_l), Δˡ: (m, n_l)):

        Δᴸ = head δ(Zᴸ, Y)                       e.g. softmax(Z) − onehot(Y)
        Δˡ = (Δˡ⁺¹ Wˡ⁺¹) ⊙ f'(Zˡ)                (δˡ = (Wˡ⁺¹ᵀ δˡ⁺¹) ⊙ f'(zˡ) per row)
        ∂C/∂Wˡ = Δˡᵀ Aˡ⁻¹ / m + (λ/n) Wˡ,   ∂C/∂bˡ = Σ_rows Δˡ / m

    Same arguments as `loss`; the gradient has `params`' structure and equals
    `jax.grad(loss)` (tested to 1e-10 relative in float64).

    Example:
      >>> import jax, jax.numpy as jnp, jaxsoft.mlp as mlp
      >>> params = mlp.init(jax.random.key(0), [3, 4, 2])
      >>> x, y = jnp.ones((5, 3)), jnp.array([0, 1, 1, 0, 1])
      >>> c, g = mlp.backprop(params, x, y, "tanh", "categorical")
      >>> gj = jax.grad(mlp.loss)(params, x, y, "tanh", "categorical")
      >>> bool(jnp.allclose(c, mlp.loss(params, x, y, "tanh", "categorical")))
      True
      >>> [bool(jnp.allclose(g[l][k], gj[l][k], atol=1e-6)) for l in (0, 1) for k in "wb"]
      [True, True, True, True]
    """
    h, fs = _head(head, "backprop"), _hidden(activation, len(params) - 1, "backprop")
    x = _check_x(params, x, 2, "backprop")
    m = x.shape[0]
    n = m if n_train is None else n_train
    zs, acts = jax.vmap(lambda xi: _forward(params, xi, fs))(x)  # each (m, n_l)
    y = h.prepare(zs[-1], jnp.asarray(y), "backprop")
    cost = jnp.mean(h.loss(zs[-1], y)) + _decay(params, weight_decay, n)
    delta = h.delta(zs[-1], y)  # Δᴸ = ∂C_x/∂zᴸ per row
    grads = [None] * len(params)
    for l in reversed(range(len(params))):  # noqa: E741 — l is the layer index of the book
        grads[l] = {"w": delta.T @ acts[l] / m + weight_decay / n * params[l]["w"],
                    "b": jnp.sum(delta, axis=0) / m}
        if l > 0:  # Δˡ⁻¹ = (Δˡ Wˡ) ⊙ f'(Zˡ⁻¹)
            delta = (delta @ params[l]["w"]) * fs[l - 1][1](zs[l - 1])
    return cost, grads


def accuracy(params, x, y, activation="sigmoid", head="categorical"):
    """Fraction right: argmax for categorical and the quadratic heads (targets' argmax for
    float targets); σ(z) > ½ ⇔ z > 0 vs y > ½ for bernoulli, per output for multilabel."""
    h, fs = _head(head, "accuracy"), _hidden(activation, len(params) - 1, "accuracy")
    if h.classify is None:
        raise ValueError(f"accuracy: head {head!r} is a regression head (no classes)")
    x = _check_x(params, x, 2, "accuracy")
    z = jax.vmap(lambda xi: _forward(params, xi, fs)[0][-1])(x)
    y = jnp.asarray(y)
    if h.classify == "threshold":
        return jnp.mean((z > 0) == (h.prepare(z, y, "accuracy") > 0.5))
    if not jnp.issubdtype(y.dtype, jnp.integer):
        y = jnp.argmax(h.prepare(z, y, "accuracy"), axis=-1)
    return jnp.mean(jnp.argmax(z, axis=-1) == _labels(z, y, "accuracy"))
