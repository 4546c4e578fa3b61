"""Command line: `python -m jaxsoft gradcheck|train ...`."""

from __future__ import annotations

import argparse


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",")]


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxsoft", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    gc = commands.add_parser(
        "gradcheck",
        help="closed-form derivatives vs autodiff of plain references vs finite differences")
    gc.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    gc.add_argument("--only", nargs="+", metavar="NAME", help="check only these entries")
    gc.add_argument("--seed", type=int, default=0, help="seed of the sampled points")

    bench = commands.add_parser("bench", help="jitted benchmarks next to jax.nn, optax, NumPy, "
                                "torch, with the machine's limits measured in the same run")
    bench.add_argument("--quick", action="store_true", help="small shapes (under a minute)")
    bench.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    bench.add_argument("--reps", type=int, default=5, help="timed repetitions per row")
    bench.add_argument("--only", nargs="+", metavar="NAME",
                       help="only the workloads whose name contains one of these strings")
    malloc = bench.add_mutually_exclusive_group()
    malloc.add_argument("--malloc-reuse", action="store_true",
                        help="run in a child process with glibc told to reuse memory "
                             "(MALLOC_ARENA_MAX=1, MALLOC_MMAP_THRESHOLD_=4294967296, ...)")
    malloc.add_argument("--compare-malloc", action="store_true",
                        help="run default and --malloc-reuse, print them side by side "
                             "(default selection: the softmax and loss workloads)")
    malloc.add_argument("--summary", nargs="+", metavar="RUN.json",
                        help="measure nothing: jaxsoft against its peer in runs saved by --json")

    tr = commands.add_parser("train", help="train MLPs (several seeds and learning rates at once)")
    tr.add_argument("--data", default="digits",
                    help="digits (default), iris, breast_cancer, iris_regression or mnist")
    tr.add_argument("--data-dir", help="directory of the MNIST IDX files (else $JAXSOFT_DATA)")
    tr.add_argument("--hidden", type=_ints, default=[30], help="hidden widths, e.g. 100,30")
    tr.add_argument("--activation", default="sigmoid", help="hidden activation (any jaxsoft one)")
    tr.add_argument("--head", default="categorical",
                    help="categorical, bernoulli, multilabel, gaussian, laplace, "
                         "sigmoid_quadratic, softmax_quadratic")
    tr.add_argument("--init", default="normalized", help="large, normalized, glorot or he")
    tr.add_argument("--batch", type=int, default=10, help="mini-batch size")
    tr.add_argument("--lr", type=_floats, default=[0.5], help="learning rate(s), e.g. 0.1,0.5,3")
    tr.add_argument("--weight-decay", type=float, default=0.0, help="L2 λ (Nielsen's network2)")
    tr.add_argument("--optimizer", default="sgd", help="sgd, momentum or adam")
    tr.add_argument("--epochs", type=int, default=30)
    tr.add_argument("--models", type=int, default=8, help="seeds per configuration")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--shuffle", default="per_model",
                    help="per_model (default) or shared mini-batch order (faster)")
    tr.add_argument("--checkpoint", metavar="PATH", help="save after every epoch; resume from it")
    tr.add_argument("--json", metavar="FILE", help="write one summary object per configuration")
    tr.add_argument("--plot", metavar="PNG", help="plot test accuracy curves (needs matplotlib)")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    if args.command == "gradcheck":
        from jaxsoft import gradcheck

        return gradcheck.main(args.json, args.only, args.seed)
    if args.command == "bench":
        from jaxsoft import benchmarks

        if args.summary:
            return benchmarks.summary(args.summary)
        return benchmarks.main(args.quick, args.json, args.reps, args.only, args.malloc_reuse,
                               args.compare_malloc)
    return _train(args)


def _train(args) -> int:
    from jaxsoft import datasets, experiments

    data = datasets.load(args.data, data_dir=args.data_dir, seed=args.seed)
    print(f"{data.name}: {data.x_train.shape[0]} train / {data.x_test.shape[0]} test examples, "
          f"{data.x_train.shape[1]} features; training {len(args.lr)} configuration(s) × "
          f"{args.models} seeds at once")
    results = experiments.run(
        data, hidden=tuple(args.hidden), activation=args.activation, head=args.head,
        init=args.init, batch_size=args.batch, learning_rates=args.lr,
        weight_decay=args.weight_decay, optimizer=args.optimizer, epochs=args.epochs,
        models=args.models, seed=args.seed, shuffle=args.shuffle, checkpoint=args.checkpoint,
        progress=not args.no_progress)
    print(experiments.format_table(results))
    if results[0].history.interrupted:
        print(f"interrupted after {results[0].history.epochs} epoch(s): results so far")
    if args.json:
        experiments.write_json(results, args.json)
    if args.plot:
        experiments.plot(results, args.plot)
    return 0
