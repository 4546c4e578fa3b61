"""Seed 003: choose the output activation and loss by the distribution you assume for the target.

1. Regression on iris (sepal length → sepal width): a Gaussian head (identity + quadratic)
   estimates the conditional mean, a Laplace head (identity + absolute error) the median —
   shown on the intercept-only model, whose optimum is exactly the sample mean / median.
2. Binary classification (breast cancer): one sigmoid output + binary cross-entropy is the same
   model as a two-class softmax + cross-entropy (seed 000 §4.3): with the second output's
   weights at zero the two give identical probabilities, and both train to the same accuracy.
3. Multi-label (digits, three yes/no questions at once): independent sigmoids + BCE can say
   "yes" to several labels; a softmax spreads one unit of probability over them and cannot.

Run: `python examples/output_heads.py [--steps 2000]`; writes output_heads.png.
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxsoft import datasets, mlp, plots


def fit(params, x, y, activation, head, steps, lr=0.05):
    """Full-batch Adam (learning rate decayed to 0) on the hand-derived gradient."""
    opt = optax.adam(optax.cosine_decay_schedule(lr, steps))

    def step(carry, _):
        params, state = carry
        loss, grads = mlp.backprop(params, x, y, activation, head)
        updates, state = opt.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), loss

    (params, _), losses = jax.lax.scan(step, (params, opt.init(params)), None, steps)
    return params, losses


def regression(steps):
    data = datasets.load("iris_regression")
    y = data.y_train
    ones = jnp.zeros((y.shape[0], 1))  # intercept only: the prediction is one constant
    print("1. iris sepal width (cm), intercept-only model:")
    for head, stat, name in (("gaussian", np.mean, "mean"), ("laplace", np.median, "median")):
        params = mlp.init(jax.random.key(0), [1, 1], "glorot")
        params, _ = fit(params, ones, y, "identity", head, steps)
        fitted = float(params[0]["b"][0])
        print(f"   {head:>8} head → {fitted:.4f}   sample {name} {float(stat(y)):.4f}")
    lines = {}
    for head in ("gaussian", "laplace"):
        params = mlp.init(jax.random.key(0), [1, 1], "glorot")
        params, _ = fit(params, jnp.asarray(data.x_train), y, "identity", head, steps)
        lines[head] = params
        test = float(mlp.loss(params, data.x_test, data.y_test, "identity", head))
        print(f"   {head:>8} head, linear in sepal length: slope {float(params[0]['w'][0, 0]):.4f}"
              f" cm per std, test loss {test:.4f}")
    return data, lines


def binary(steps):
    data = datasets.load("breast_cancer")
    y01 = data.y_train.astype(np.float32)[:, None]
    sig = mlp.init(jax.random.key(1), [data.x_train.shape[1], 1], "glorot")
    # the same model as a two-class softmax: class 1's logit is w·x + b, class 0's is 0
    soft = [{"w": jnp.concatenate([jnp.zeros_like(sig[0]["w"]), sig[0]["w"]]),
             "b": jnp.concatenate([jnp.zeros(1), sig[0]["b"]])}]
    # float32 matmuls: on a GPU the default precision (TF32) rounds w·x differently in the
    # 1- and 2-output layers (2.3e-4 apart on an H200), which is not the identity's error
    with jax.default_matmul_precision("float32"):
        p_sig = jax.vmap(lambda x: mlp.predict(sig, x, "identity", "bernoulli"))(
            data.x_test)[:, 0]
        p_soft = jax.vmap(lambda x: mlp.predict(soft, x, "identity", "categorical"))(
            data.x_test)
    print("2. breast cancer: max |σ(z) − softmax([0, z])₁| at the same weights:",
          f"{float(jnp.max(jnp.abs(p_sig - p_soft[:, 1]))):.2e}")
    sig, _ = fit(sig, data.x_train, y01, "identity", "bernoulli", steps, lr=0.01)
    soft, _ = fit(soft, data.x_train, data.y_train, "identity", "categorical", steps, lr=0.01)
    acc_sig = mlp.accuracy(sig, data.x_test, data.y_test.astype(np.float32)[:, None],
                           "identity", "bernoulli")
    acc_soft = mlp.accuracy(soft, data.x_test, data.y_test, "identity", "categorical")
    print(f"   after training: sigmoid + BCE {100 * float(acc_sig):.2f} %, "
          f"two-class softmax + CE {100 * float(acc_soft):.2f} % test accuracy")


def multilabel(steps):
    data = datasets.load("digits")
    questions = ("even", "greater than 4", "prime")

    def answers(d):
        return np.stack([d % 2 == 0, d > 4, np.isin(d, [2, 3, 5, 7])], 1).astype(np.float32)

    y, y_test = answers(data.y_train), answers(data.y_test)
    sizes = [data.x_train.shape[1], 32, 3]
    sig = mlp.init(jax.random.key(2), sizes, "glorot")
    sig, _ = fit(sig, data.x_train, y, "tanh", "multilabel", steps, lr=0.01)
    # softmax + CE on the answers normalized to a distribution: the best it can do
    target = y / np.maximum(y.sum(1, keepdims=True), 1)
    soft = mlp.init(jax.random.key(2), sizes, "glorot")
    soft_loss = lambda p: jnp.mean(-jnp.sum(target * jax.nn.log_softmax(  # noqa: E731
        jax.vmap(lambda x: mlp.forward(p, x, "tanh")[0][-1])(data.x_train)), axis=1))
    opt = optax.adam(optax.cosine_decay_schedule(0.01, steps))

    def step(carry, _):
        params, state = carry
        updates, state = opt.update(jax.grad(soft_loss)(params), state, params)
        return (optax.apply_updates(params, updates), state), None

    (soft, _), _ = jax.lax.scan(step, (soft, opt.init(soft)), None, steps)
    p_sig = jax.vmap(lambda x: mlp.predict(sig, x, "tanh", "multilabel"))(data.x_test)
    p_soft = jax.vmap(lambda x: mlp.predict(soft, x, "tanh", "categorical"))(data.x_test)
    print("3. digits, three questions at once (test accuracy per question):")
    for k, q in enumerate(questions):
        a_sig = np.mean((np.asarray(p_sig[:, k]) > 0.5) == (y_test[:, k] > 0.5))
        a_soft = np.mean((np.asarray(p_soft[:, k]) > 1 / 3) == (y_test[:, k] > 0.5))
        print(f"   {q:>15}: independent sigmoids {100 * a_sig:.1f} %, "
              f"softmax (threshold 1/3) {100 * a_soft:.1f} %")
    both = (y_test.sum(1) >= 2)
    print(f"   digits with 2+ yes answers: sigmoids say yes to all of them with mean "
          f"probability {float(np.mean(np.asarray(p_sig)[both][y_test[both] > 0.5])):.2f}, "
          f"the softmax's probabilities must share 1 "
          f"(mean {float(np.mean(np.asarray(p_soft)[both][y_test[both] > 0.5])):.2f})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=2000, help="full-batch optimizer steps")
    parser.add_argument("--png", default="output_heads.png", help="'' to skip the plot")
    args = parser.parse_args(argv)
    data, lines = regression(args.steps)
    binary(args.steps)
    multilabel(args.steps // 2)
    if args.png:
        _plot(data, lines, args.png)


def _plot(data, lines, path):
    grid = np.linspace(data.x_train.min(), data.x_train.max(), 50)[:, None].astype(np.float32)
    with plots.figure(path) as (_, ax):
        ax.scatter(data.x_train[:, 0], data.y_train[:, 0], s=10, alpha=0.5, label="iris (train)")
        for head, params in lines.items():
            pred = jax.vmap(lambda x, p=params, h=head: mlp.predict(p, x, "identity", h))(grid)
            ax.plot(grid[:, 0], pred[:, 0], label=f"{head} head (conditional "
                    f"{'mean' if head == 'gaussian' else 'median'})")
        ax.set(xlabel="sepal length (standardized)", ylabel="sepal width (cm)")


if __name__ == "__main__":
    main()
