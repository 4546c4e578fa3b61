"""Training speed of the K-model trainer in the Nielsen setting (784-30-10, sigmoid, batch 10).

Times one epoch over the 60,000 MNIST training images (compile excluded: the epoch program is
run once before timing) for K = 1, 8, 32 models, with per-model and with shared mini-batch
order, and prints seconds per epoch and per model-epoch.
Run: `python bench/mlp_speed.py --data-dir ../shared/data/mnist [--models 1 8 32]`.
"""

import argparse
import time

import jax
import jax.numpy as jnp

from jaxsoft import datasets, mlp, train


def epoch_seconds(data, models, hidden=30, batch=10, shuffle="per_model", repeats=2):
    sizes = (784, hidden, 10)
    params = jax.vmap(lambda k: mlp.init(k, sizes, "large"))(
        jax.random.split(jax.random.key(0), models))
    opt = train._optimizer("sgd")(learning_rate=0.0)
    state = jax.vmap(lambda p: train._with_lr(opt.init(p), jnp.float32(0.5)))(params)

    def grad_fn(p, x, y, decay, n):
        return mlp.backprop(p, x, y, "sigmoid", "categorical", weight_decay=decay, n_train=n)

    run = train._epoch_program(grad_fn, opt, batch, data.x_train.shape[0], shuffle)
    keys = jax.random.split(jax.random.key(1), models)
    decays = jnp.zeros(models)
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    jax.block_until_ready(run(params, state, keys, decays, x, y))  # compile
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(run(params, state, keys, decays, x, y))
        best = min(best, time.perf_counter() - start)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir")
    parser.add_argument("--models", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--hidden", type=int, default=30)
    args = parser.parse_args(argv)
    data = datasets.load("mnist", data_dir=args.data_dir)
    print(f"784-{args.hidden}-10 sigmoid, batch 10, one epoch of 60,000 images, "
          f"{jax.devices()[0].platform}\n")
    print("| models | shuffle | s per epoch | s per model-epoch |")
    print("|---|---|---|---|")
    for k in args.models:
        for shuffle in ("per_model", "shared"):
            s = epoch_seconds(data, k, args.hidden, shuffle=shuffle)
            print(f"| {k} | {shuffle} | {s:.2f} | {s / k:.3f} |", flush=True)


if __name__ == "__main__":
    main()
