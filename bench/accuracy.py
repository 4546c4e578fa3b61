"""Accuracy of jaxsoft vs jax.nn and optax on the 120-digit oracle grid (tests/oracle).

Prints a Markdown table of the worst error in ulp, in float32 and float64, for the softmax
family and both softmax cross-entropies, with the count of NaN/inf results where the true
value is finite. Run from the repository root: `python bench/accuracy.py`.
"""

import argparse
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxsoft

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
from test_softmax import ORACLE, ulps  # the test suite's own ulp measure


def every_label(ce):
    """CE of each row against each label: shape (classes, rows), as −log_softmax transposed."""
    def run(x, _):
        labels = jnp.broadcast_to(jnp.arange(x.shape[1])[:, None], (x.shape[1], x.shape[0]))
        return ce(jnp.broadcast_to(x, (x.shape[1], *x.shape)), labels)
    return run


# name: (oracle truth for dtype "f32"/"f64", {library: fn(x, soft_labels)})
CASES = {
    "logsumexp": (lambda n: ORACLE[f"{n}_lse"], {
        "jaxsoft": lambda x, _: jaxsoft.logsumexp(x, axis=-1),
        "jax.nn": lambda x, _: jax.nn.logsumexp(x, axis=-1)}),
    "softmax": (lambda n: ORACLE[f"{n}_softmax"], {
        "jaxsoft": lambda x, _: jaxsoft.softmax(x), "jax.nn": lambda x, _: jax.nn.softmax(x)}),
    "log_softmax": (lambda n: ORACLE[f"{n}_log_softmax"], {
        "jaxsoft": lambda x, _: jaxsoft.log_softmax(x),
        "jax.nn": lambda x, _: jax.nn.log_softmax(x)}),
    "CE, integer labels": (lambda n: -ORACLE[f"{n}_log_softmax"].T, {
        "jaxsoft": every_label(jaxsoft.softmax_cross_entropy_with_integer_labels),
        "optax": every_label(optax.losses.softmax_cross_entropy_with_integer_labels)}),
    "CE, soft labels": (lambda n: ORACLE[f"{n}_soft_ce"], {
        "jaxsoft": jaxsoft.softmax_cross_entropy,
        "optax": optax.losses.softmax_cross_entropy}),
}


def measure(truth, fn, name):
    dtype = np.float32 if name == "f32" else np.float64
    with jax.enable_x64(name == "f64"):
        got = np.asarray(fn(jnp.asarray(ORACLE[f"{name}_x"]),
                            jnp.asarray(ORACLE[f"{name}_labels"])), np.float64)
    err = ulps(got, truth, dtype)
    broken = int(np.sum(~np.isfinite(got) & np.isfinite(truth)))
    return float(np.max(np.where(np.isnan(err), np.inf, err))), broken


def main(argv=None):
    argparse.ArgumentParser(description=__doc__).parse_args(argv)
    print(f"Worst error in ulp over {ORACLE['f32_x'].shape[0]} oracle rows per dtype\n")
    print("| function | dtype | jaxsoft | peer | peer's error |")
    print("|---|---|---|---|---|")
    for case, (truth, libs) in CASES.items():
        for name in ("f32", "f64"):
            cells = {lib: measure(truth(name), fn, name) for lib, fn in libs.items()}
            (ours, _), (peer, (err, broken)) = cells.pop("jaxsoft"), next(iter(cells.items()))
            note = f" ({broken} NaN/inf)" if broken else ""
            print(f"| {case} | {name} | {ours:.3g} | {peer} | {err:.3g}{note} |")


if __name__ == "__main__":
    main()
