"""The exercises of seed 000 (chapter 4: softmax, cross-entropy, the perceptron), computed.

Run: `python examples/softmax_exercises.py [--precision 4] [--png softmax_exercises.png]`.
Every number comes from jaxsoft; the identities the exercises ask to prove are checked
numerically and printed as such. The PNG plots section 4.4's argument: the gradient through
softmax + quadratic loss vanishes for a confidently wrong prediction, cross-entropy's does not.
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np

import jaxsoft
from jaxsoft import plots


def opgave_59_60():
    x = jnp.array([-1.0, 0.0, 1.0])
    y = jaxsoft.softmax(x)
    print("Opgave 59  softmax([-1, 0, 1]) =", y, " sum =", float(y.sum()))
    x = jnp.array([-1e6, (1 + 5**0.5) / 2, np.log(2), np.pi, np.e])
    print("Opgave 60  x =", x)
    print("           max =", float(jnp.max(x)), " argmax =", jaxsoft.argmax_one_hot(x))
    print("           softmax =", jaxsoft.softmax(x), "(e^(-1e6 - pi) underflows to 0)")


def opgave_62_68_69():
    x = jnp.array([0.3, -1.2, 2.5, 0.0])
    shifted = jaxsoft.softmax(x + 100.0)
    print("Opgave 62  softmax(x + 100) - softmax(x), max abs:",
          float(jnp.max(jnp.abs(shifted - jaxsoft.softmax(x)))))
    n = 4
    print(f"Opgave 68  equal inputs, N = {n}: softmax =", jaxsoft.softmax(jnp.zeros(n)))
    print("           Jacobian =\n", jaxsoft.softmax_jacobian(jnp.zeros(n)))
    jac = jaxsoft.softmax_jacobian(x)
    print("Opgave 67  diagonal > 0:", bool(jnp.all(jnp.diag(jac) > 0)),
          " off-diagonal < 0:", bool(jnp.all(jac[~jnp.eye(n, dtype=bool)] < 0)))
    print("Opgave 69  column sums of the Jacobian:", jac.sum(axis=0))


def opgave_70_71():
    a = jnp.linspace(-6.0, 6.0, 7)
    s = jaxsoft.sigmoid(a)
    print("Opgave 70  sigma(a) + sigma(-a) =", s + jaxsoft.sigmoid(-a))
    print("Opgave 71  sigma'(a) - sigma(a)(1 - sigma(a)) =",
          jax.vmap(jax.grad(jaxsoft.sigmoid))(a) - s * (1 - s))


def opgave_73():
    p = jnp.array([0.1, 0.4, 0.2, 0.3])
    for name, label in (("B", 1), ("A", 0)):
        y = jax.nn.one_hot(label, 4)
        quadratic = float(jnp.sum((p - y) ** 2))  # the notes' quadratic loss: no factor 1/2
        ce = float(jaxsoft.categorical_cross_entropy(p, y))
        print(f"Opgave 73  true label {name}: quadratic = {quadratic:.4g}, "
              f"cross-entropy = {ce:.4g}")


def opgave_74():
    q = jnp.linspace(0.05, 0.95, 19)
    total = jax.vmap(lambda q: 60 * jaxsoft.categorical_cross_entropy(
        jnp.array([q, 1 - q]), jnp.array([1.0, 0.0])) + 40 * jaxsoft.categorical_cross_entropy(
        jnp.array([q, 1 - q]), jnp.array([0.0, 1.0])))(q)
    print("Opgave 74  60 A / 40 B: the total cross-entropy is minimal at y_A =",
          round(float(q[jnp.argmin(total)]), 2))


def opgave_75_79():
    h = jnp.array([[2.0, -1.0], [-3.0, 0.5]])
    ce = jaxsoft.softmax_cross_entropy(h, jnp.array([[0.0, 1.0], [0.0, 1.0]]))
    print("Opgave 75  softmax + CE with y = [0, 1]:", ce, " S+(h1 - h2):",
          jaxsoft.softplus(h[:, 0] - h[:, 1]))
    y_hat, y = jnp.array([0.7, -0.2, 1.5, -2.0]), jnp.array([1.0, 1.0, -1.0, -1.0])
    print("Opgave 79  perceptron loss:", jaxsoft.perceptron_loss(y_hat, y),
          " relu(-y_hat * y):", jaxsoft.relu(-y_hat * y))
    a = jnp.array([-2.0, -0.5, 0.5, 2.0])
    print("Opgave 76  relu'(a):", jax.vmap(jax.grad(jaxsoft.relu))(a),
          " (1 + sgn a)/2:", (1 + jnp.sign(a)) / 2)


def saturation():
    """Section 4.4: the gradient through softmax alone vanishes when the model is confidently
    wrong; cross-entropy's a − y does not."""
    y = jnp.array([0.0, 1.0])
    print("Section 4.4  confidently wrong (label 2), h1 - h2 = d:")
    for d in (2.0, 8.0, 16.0):
        h = jnp.array([d, 0.0])
        quad = jax.grad(lambda h: 0.5 * jnp.sum((jaxsoft.softmax(h) - y) ** 2))(h)
        ce = jax.grad(lambda h: jaxsoft.softmax_cross_entropy(h, y))(h)
        print(f"    d = {d:4}: |grad| quadratic + softmax = {float(jnp.abs(quad[0])):.3g}, "
              f"cross-entropy = {float(jnp.abs(ce[0])):.3g}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--precision", type=int, default=4, help="digits printed")
    parser.add_argument("--png", default="softmax_exercises.png", help="'' to skip the plot")
    args = parser.parse_args(argv)
    np.set_printoptions(precision=args.precision, suppress=True)
    jnp.set_printoptions(precision=args.precision, suppress=True)
    for part in (opgave_59_60, opgave_62_68_69, opgave_70_71, opgave_73, opgave_74, opgave_75_79,
                 saturation):
        part()
    if args.png:
        _plot(args.png)


def _plot(path):
    y = jnp.array([0.0, 1.0])
    d = jnp.linspace(-10, 10, 201)
    h = jnp.stack([d, jnp.zeros_like(d)], axis=1)  # h1 − h2 = d, true class 2
    quad = jax.vmap(jax.grad(lambda h: 0.5 * jnp.sum((jaxsoft.softmax(h) - y) ** 2)))(h)
    ce = jax.vmap(jax.grad(lambda h: jaxsoft.softmax_cross_entropy(h, y)))(h)
    with plots.figure(path) as (_, ax):
        ax.plot(d, jnp.abs(quad[:, 0]), label="softmax + quadratic")
        ax.plot(d, jnp.abs(ce[:, 0]), label="softmax + cross-entropy (a − y)")
        ax.set(xlabel="h1 − h2 (true class: 2)", ylabel="|∂loss/∂h1|",
               title="confidently wrong (right side): only cross-entropy keeps learning")


if __name__ == "__main__":
    main()
