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
from typing import Callable

import jax.numpy as jnp
import numpy as np

from jaxsoft import activations as act


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
    """

    name: str
    fn: Callable
    derivative: Callable
    reference: Callable
    sample: Callable[[np.random.Generator], tuple]
    kind: str = "elementwise"

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

ACTIVATIONS = [
    _elementwise("sigmoid", act.sigmoid, act.sigmoid_grad, lambda x: 1 / (1 + jnp.exp(-x))),
    _elementwise("softplus", act.softplus, act.softplus_grad, lambda x: jnp.log(1 + jnp.exp(x))),
]

# ------------------------------------------------------------------------------ softmax family

SOFTMAX = []

# ---------------------------------------------------------------------------------- losses

LOSSES = []

REGISTRY: list[Entry] = ACTIVATIONS + SOFTMAX + LOSSES
BY_NAME = {e.name: e for e in REGISTRY}
assert len(BY_NAME) == len(REGISTRY), "registry names must be unique"
