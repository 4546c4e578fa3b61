"""Generate `sigmoid_bce.npz`: a 120-digit mpmath oracle for sigmoid binary cross-entropy.

    python tests/oracle/make_loss_oracle.py

For every float32 logit x on a grid of magnitudes 1e-3 … 1e30 (plus the special points of
NUMERICS.md §4, ±float32 max and ±inf), every label y in {0, 1, 0.25, 0.5, 0.7} and pos_weight
w in {1, 2}, stores (as float64, from exact float32 inputs):
  loss  = (1 − y)·log(1 + e^x) + w·y·log(1 + e^−x)
  grad  = (1 − y)·σ(x) − w·y·σ(−x)
  scale = (1 − y)·σ(x) + w·y·σ(−x)      (Σ|terms|, for the near-root tolerance)
The limits are used at x = ±inf (+inf where the loss diverges).
"""

from __future__ import annotations

import pathlib

import mpmath
import numpy as np

mpmath.mp.dps = 120


def grid() -> np.ndarray:
    mags = np.logspace(-3, 30, 133)
    special = [0.0, 1.0, 15.0, 17.0, 37.0, 88.72, 1e4, 33.3, 89.0, 144.0,
               float(np.finfo(np.float32).max), np.inf]
    x = np.concatenate([mags, special]).astype(np.float32)
    x = np.unique(np.concatenate([x, -x]))
    return x


def _terms(x, y, w):
    y, w = mpmath.mpf(float(y)), mpmath.mpf(float(w))
    if np.isinf(x):
        sp_pos = mpmath.inf if x > 0 else mpmath.mpf(0)  # log(1 + e^x)
        sp_neg = mpmath.mpf(0) if x > 0 else mpmath.inf  # log(1 + e^-x)
        s_pos = mpmath.mpf(1) if x > 0 else mpmath.mpf(0)
    else:
        xm = mpmath.mpf(float(x))
        sp_pos = mpmath.log1p(mpmath.exp(xm))
        sp_neg = mpmath.log1p(mpmath.exp(-xm))
        s_pos = 1 / (1 + mpmath.exp(-xm))
    s_neg = 1 - s_pos
    a = (1 - y) * sp_pos if y != 1 else mpmath.mpf(0)
    b = w * y * sp_neg if y != 0 else mpmath.mpf(0)
    return a + b, (1 - y) * s_pos - w * y * s_neg, (1 - y) * s_pos + w * y * s_neg


def main() -> None:
    xs = grid()
    labels = np.array([0.0, 1.0, 0.25, 0.5, 0.7], np.float32)
    weights = np.array([1.0, 2.0], np.float32)
    X, Y, W = (a.ravel() for a in np.meshgrid(xs, labels, weights, indexing="ij"))
    out = np.array([[float(v) for v in _terms(x, y, w)] for x, y, w in zip(X, Y, W, strict=True)])
    path = pathlib.Path(__file__).with_name("sigmoid_bce.npz")
    np.savez_compressed(path, logits=X, labels=Y, pos_weight=W, loss=out[:, 0],
                        grad=out[:, 1], grad_scale=out[:, 2])
    print(f"wrote {path} ({len(X)} points)")


if __name__ == "__main__":
    main()
