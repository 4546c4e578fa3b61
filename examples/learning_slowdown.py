"""Seed 001's learning slowdown: one sigmoid neuron, quadratic cost vs cross-entropy.

The neuron maps input 1 to a = σ(w + b) and is trained by gradient descent (η = 0.15, 300
epochs) towards the target 0, from (w, b) = (0.6, 0.9) and from (2.0, 2.0). With the quadratic
cost ½(a − y)² the gradient carries a factor σ'(z), tiny when the neuron starts saturated, so
the (2, 2) run barely moves for 150 epochs; with the cross-entropy the gradient is a − y and
both runs learn fast. Prints the outputs and costs along the way and writes a PNG of cost vs
epoch. Run: `python examples/learning_slowdown.py [--epochs 300] [--png slowdown.png]`.
"""

import argparse

import jax
import jax.numpy as jnp

import jaxsoft
from jaxsoft import plots

COSTS = {
    "quadratic": lambda z, y: jaxsoft.quadratic_loss(jaxsoft.sigmoid(z)[None], y[None]),
    "cross-entropy": lambda z, y: jaxsoft.sigmoid_binary_cross_entropy(z, y),
}


def run(cost, w, b, eta, epochs):
    """Gradient descent on cost(σ(w·1 + b), 0); returns the cost and output at every epoch."""
    x, y = jnp.float32(1.0), jnp.float32(0.0)

    def step(params, _):
        c, (gw, gb) = jax.value_and_grad(lambda p: cost(p[0] * x + p[1], y))(params)
        a = jaxsoft.sigmoid(params[0] * x + params[1])
        return params - eta * jnp.stack([gw, gb]), (c, a)

    _, (costs, outputs) = jax.lax.scan(step, jnp.array([w, b], jnp.float32), None, epochs)
    return costs, outputs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--eta", type=float, default=0.15)
    parser.add_argument("--png", default="learning_slowdown.png", help="'' to skip the plot")
    args = parser.parse_args(argv)

    curves = {}
    for start in ((0.6, 0.9), (2.0, 2.0)):
        for name, cost in COSTS.items():
            costs, outputs = run(cost, *start, args.eta, args.epochs)
            curves[(start, name)] = costs
            marks = [e for e in (0, 50, 150, args.epochs - 1) if e < args.epochs]
            trace = ", ".join(f"epoch {e + 1}: a = {float(outputs[e]):.3f}" for e in marks)
            print(f"(w, b) = {start}, {name:>13}: {trace}; final cost {float(costs[-1]):.4f}")
    print("Seed 001: quadratic from (0.6, 0.9) ends near 0.09; from (2, 2) it barely moves for "
          "150 epochs; cross-entropy learns fast from both.")
    if args.png:
        _plot(curves, args.png)


def _plot(curves, path):
    with plots.figure(path, ncols=2, figsize=(10, 4)) as (_, axes):
        for ax, start in zip(axes, ((0.6, 0.9), (2.0, 2.0)), strict=True):
            for name in COSTS:
                ax.plot(curves[(start, name)], label=name)
            ax.set(title=f"start (w, b) = {start}", xlabel="epoch", ylabel="cost")


if __name__ == "__main__":
    main()
