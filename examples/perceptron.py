"""Seed 000 §4.5: the perceptron as identity activation + perceptron loss, next to logistic
regression (sigmoid + binary cross-entropy), on a linearly separable set.

The perceptron loss max(−ŷ·y, 0) = relu(−ŷ·y) (Opgave 79) has gradient −y·x on a mistake and 0
otherwise, so gradient descent on it, one example at a time, IS Rosenblatt's update rule: it
stops as soon as every point is on the right side. Logistic regression keeps pushing the
boundary away from the points (its loss never reaches 0), ending with a larger margin.

Run: `python examples/perceptron.py [--epochs 50]`; writes perceptron.png.
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np

import jaxsoft
from jaxsoft import plots


def separable(n=80, seed=0, gap=0.3):
    """Two Gaussian blobs in 2-D, labels ±1, with no point within `gap` of the line x₁ = x₂."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4 * n, 2)).astype(np.float32)
    margin = (x[:, 0] - x[:, 1]) / np.sqrt(2)
    keep = np.abs(margin) > gap
    x, y = x[keep][:n], np.sign(margin[keep][:n]).astype(np.float32)
    return jnp.asarray(x), jnp.asarray(y)


def train(loss, x, y, epochs, lr):
    """Per-example gradient descent on loss(w·x + b, y); returns (w, b, mistakes per epoch)."""

    def example(params, xy):
        xi, yi = xy
        g = jax.grad(lambda p: loss(jnp.dot(p[:2], xi) + p[2], yi))(params)
        return params - lr * g, None

    def epoch(params, _):
        params, _ = jax.lax.scan(example, params, (x, y))
        mistakes = jnp.sum(jnp.sign(x @ params[:2] + params[2]) != y)
        return params, mistakes

    params, mistakes = jax.lax.scan(epoch, jnp.zeros(3), None, epochs)
    return params, np.asarray(mistakes)


LOSSES = {
    "perceptron (identity + perceptron loss)": lambda z, y: jaxsoft.perceptron_loss(z, y),
    "logistic regression (sigmoid + BCE)": lambda z, y: jaxsoft.sigmoid_binary_cross_entropy(
        z, (y + 1) / 2),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--png", default="perceptron.png", help="'' to skip the plot")
    args = parser.parse_args(argv)
    x, y = separable()
    fits = {}
    for name, loss in LOSSES.items():
        params, mistakes = train(loss, x, y, args.epochs, args.lr)
        done = int(np.argmax(mistakes == 0)) + 1 if np.any(mistakes == 0) else None
        w, b = params[:2], params[2]
        margin = float(jnp.min(y * (x @ w + b)) / jnp.linalg.norm(w))
        print(f"{name}: training mistakes per epoch {mistakes[:6].tolist()}…; no mistakes "
              f"from epoch {done}; smallest geometric margin {margin:.3f}")
        fits[name] = params
    if args.png:
        _plot(x, y, fits, args.png)


def _plot(x, y, fits, path):
    grid = np.linspace(-3, 3, 2)
    with plots.figure(path, figsize=(5, 5)) as (_, ax):
        ax.scatter(x[:, 0], x[:, 1], c=np.asarray(y), cmap="coolwarm", s=12)
        for name, p in fits.items():
            ax.plot(grid, -(p[0] * grid + p[2]) / p[1], label=name.split(" (")[0])
        ax.set(xlim=(-3, 3), ylim=(-3, 3), aspect="equal")


if __name__ == "__main__":
    main()
