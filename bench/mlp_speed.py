"""Training speed of the K-model trainer in the Nielsen setting (784-30-10, sigmoid, batch 10).

Times one epoch over the 60,000 MNIST training images (compile excluded) for K = 1, 8, 32
models, with per-model and with shared mini-batch order, and prints seconds per epoch and per
model-epoch. Run: `python bench/mlp_speed.py --data-dir ../shared/data/mnist`.
"""

import argparse

import jax
import jax.numpy as jnp

from jaxsoft import benchmarks, datasets


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir")
    parser.add_argument("--models", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--hidden", type=int, default=30)
    args = parser.parse_args(argv)
    data = datasets.load("mnist", data_dir=args.data_dir)
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    print(f"784-{args.hidden}-10 sigmoid, batch 10, one epoch of 60,000 images, "
          f"{jax.devices()[0].platform}\n")
    print("| models | shuffle | s per epoch | s per model-epoch |")
    print("|---|---|---|---|")
    for k in args.models:
        for shuffle in ("per_model", "shared"):
            s = benchmarks.mlp_epoch_ms(x, y, k, shuffle, args.hidden) / 1e3
            print(f"| {k} | {shuffle} | {s:.2f} | {s / k:.3f} |", flush=True)


if __name__ == "__main__":
    main()
