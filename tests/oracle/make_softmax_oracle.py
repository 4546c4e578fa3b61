"""Generate tests/oracle/softmax.npz: logsumexp, (log_)softmax, soft-label CE at 120 digits.

Run from the repository root: `python tests/oracle/make_softmax_oracle.py`. The rows follow
NUMERICS.md §4: logits scaled 1e-3 … 1e30, −inf entries, ties, common offsets 1e2 … 1e6, a
dominant +40 / +1000 logit, ±max. Every row has WIDTH entries (short rows are padded with
−inf, which is itself one of the cases). The integer-label cross-entropy follows from
log_softmax: CE(z, y) = −log_softmax(z)_y.
"""

import pathlib

import mpmath as mp
import numpy as np

mp.mp.dps = 120
WIDTH = 6
INF = float("inf")


def rows(dtype, rng):
    big = float(np.finfo(dtype).max)
    out = [
        [1e4, 0, -1e4], [1e30, 0], [big, -big], [2.0, 2.0, 2.0], [5.0], [-1.0, 0.0, 1.0],
        [0.0, -INF, 1.0], [0.0, -40.0], [0.0, -68.3, -90.0], [-big, -big], [-big, -INF],
        [1e30, 1e30, 0.0], [3.0, 3.0, 1.0, -INF], [-1e6, 1.618034, 0.693147, 3.141593, 2.718282],
    ]
    out += [[o, o + 1, o + 2] for o in (1e2, 1e3, 1e4, 1e5, 1e6)]
    for scale in np.logspace(-3, 30, 12):
        for k in range(24):
            c = int(rng.integers(2, WIDTH + 1))
            row = rng.standard_normal(c) * scale
            if k % 4 == 1:
                row[rng.integers(c)] += 40 if k % 8 == 1 else 1000
            if k % 6 == 2:
                row[rng.integers(c)] = row.max()  # a tie at the max
            if k % 5 == 3:
                row[rng.integers(c)] = -INF
            out.append(list(row))
    for o in (1e2, 1e4, 1e6):
        out += [list(o + rng.standard_normal(WIDTH)) for _ in range(4)]
    table = np.full((len(out), WIDTH), -INF)
    for i, row in enumerate(out):
        table[i, : len(row)] = row
    return table.astype(dtype)


def oracle(table, labels):
    """Shifted, cancellation-free evaluation: d_j = x_j − m exactly (mpmath exact subtraction),
    L = log1p(Σ_{j ≠ argmax} e^{d_j}), lse = m + L, log_softmax_j = d_j − L."""
    lsm = np.full(table.shape, -np.inf)
    probs = np.zeros(table.shape)
    lse = np.empty(table.shape[0])
    ce = np.empty(table.shape[0])
    for i, row in enumerate(table):
        finite = [j for j, v in enumerate(row) if np.isfinite(v)]
        top = max(finite, key=lambda j: row[j])
        m = mp.mpf(float(row[top]))
        d = {j: mp.fsub(mp.mpf(float(row[j])), m, exact=True) for j in finite}
        big_l = mp.log1p(mp.fsum(mp.exp(d[j]) for j in finite if j != top))
        lse[i] = float(m + big_l)
        for j in finite:
            lsm[i, j] = float(d[j] - big_l)
            probs[i, j] = float(mp.exp(d[j] - big_l))
        terms = [mp.mpf(float(labels[i, j])) * (big_l - d[j]) for j in finite if labels[i, j]]
        ce[i] = float(mp.fsum(terms)) if terms else 0.0
    return lse, lsm, probs, ce


def main():
    rng = np.random.default_rng(20261123)
    arrays = {}
    for name, dtype in (("f32", np.float32), ("f64", np.float64)):
        table = rows(dtype, rng)
        labels = rng.dirichlet(np.ones(WIDTH), table.shape[0]).astype(dtype)
        labels[~np.isfinite(table)] = 0  # no label mass on −inf logits (tested separately)
        lse, lsm, probs, ce = oracle(table, labels)
        arrays.update({f"{name}_x": table, f"{name}_labels": labels, f"{name}_lse": lse,
                       f"{name}_log_softmax": lsm, f"{name}_softmax": probs,
                       f"{name}_soft_ce": ce})
    path = pathlib.Path(__file__).with_name("softmax.npz")
    np.savez_compressed(path, **arrays)
    print(f"wrote {path} ({sum(a.size for a in arrays.values())} numbers)")


if __name__ == "__main__":
    main()
