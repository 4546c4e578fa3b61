"""Seed 001's MNIST table (Nielsen, ch. 3): quadratic vs cross-entropy cost, 30 and 100 hidden.

784-30-10 and 784-100-10 sigmoid networks, mini-batch 10, Nielsen's "large" N(0, 1)
initialization, 30 epochs: cross-entropy (softmax output here, the categorical head) with
η = 0.5 against the quadratic cost on sigmoid outputs with η = 3.0. Several seeds of every
configuration are trained at once (sharing the mini-batch order, so that XLA computes their
first layers as one matrix product: the seeds differ in their initialization); the table prints
mean ± std and the range of the best test accuracy next to the book's single-run numbers, and
the wall time.

Needs the MNIST IDX files: `--data-dir DIR` or `JAXSOFT_DATA`. Run:
`python examples/nielsen_mnist.py --data-dir ../shared/data/mnist [--models 8] [--epochs 30]`.
"""

import argparse
import time

from jaxsoft import datasets, experiments

# (hidden, head, η, the book's test accuracy in %)
CONFIGS = [
    (30, "categorical", 0.5, 95.49),
    (30, "sigmoid_quadratic", 3.0, 95.42),
    (100, "categorical", 0.5, 96.82),
    (100, "sigmoid_quadratic", 3.0, 96.59),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", help="directory of the MNIST IDX files")
    parser.add_argument("--models", type=int, default=8, help="seeds per configuration")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--hidden", type=int, nargs="+", default=[30, 100])
    parser.add_argument("--png", default="nielsen_mnist.png", help="'' to skip the plot")
    args = parser.parse_args(argv)

    data = datasets.load("mnist", data_dir=args.data_dir)
    start = time.perf_counter()
    rows, results = [], []
    for hidden, head, lr, book in CONFIGS:
        if hidden not in args.hidden:
            continue
        (result,) = experiments.run(data, hidden=(hidden,), head=head, init="large",
                                    batch_size=10, learning_rates=(lr,), epochs=args.epochs,
                                    models=args.models, shuffle="shared", progress=False)
        s = result.summary()
        best = 100 * result.history.test_accuracy.max(axis=1)
        rows.append(f"| 784-{hidden}-10 | {head} | {lr} | {book:.2f} % | "
                    f"{100 * s['test_accuracy_best_mean']:.2f} ± "
                    f"{100 * s['test_accuracy_best_std']:.2f} % | {best.min():.2f}–{best.max():.2f}"
                    f" % | {s['seconds']:.0f} s |")
        results.append(result)
        print(rows[-1], flush=True)
    print(f"\n{args.models} seeds × {args.epochs} epochs per configuration, "
          f"{time.perf_counter() - start:.0f} s in all\n")
    print("| network | cost (head) | η | book | jaxsoft best test accuracy | range | time |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if args.png and results:
        experiments.plot(results, args.png)


if __name__ == "__main__":
    main()
