"""Make tests/oracle/activations.npz: activation values and derivatives at 120 digits (mpmath).

For each registry activation and each dtype (float32, float64) the grid x (rounded to the
dtype) gets value and derivative as a float64 pair hi + lo, and `scale`, the sum of the
absolute terms of the derivative (for the near-root tolerance 8·eps·Σ|terms|). Parameters
(alpha, beta, ...) are rounded to the dtype first, as the library does.

Run: python tests/oracle/make_activation_oracle.py   (about a minute)
"""

from __future__ import annotations

import pathlib

import mpmath as mp
import numpy as np

mp.mp.dps = 120
HERE = pathlib.Path(__file__).parent

SPECIAL = [0.0, 1.0, 15.0, 17.0, 37.0, 88.72, 8.0, 20.0, 33.3, 89.0, 40.0, 128.0, 91.2,
           1.27846, 0.7518, 1.1924, 1.5, 3.0, 6.0, 0.5, 2.0, 10.0, 50.0, 87.5, 43.9, 100.0]


def grid(dtype) -> np.ndarray:
    fi = np.finfo(dtype)
    mag = np.concatenate([
        np.logspace(-8, np.log10(float(fi.max)) - 1e-9, 120),
        np.linspace(0.01, 12.0, 60),
        SPECIAL, [float(fi.tiny), float(fi.eps), float(fi.max)],
    ])
    x = np.concatenate([mag, -mag]).astype(dtype)
    return np.unique(x.astype(np.float64))


def sig(z):
    return 1 / (1 + mp.exp(-z))


def sech2(z):
    return 1 / mp.cosh(z) ** 2 if abs(z) < 10**6 else mp.mpf(0)


def _swish(beta):
    def f(x):
        z = beta * x
        s, sm = sig(z), sig(-z)
        return x * s, (s + z * s * sm, [s, z * s * sm])
    return f


def _elu(alpha, scale=1):
    def f(x):
        if x > 0:
            return scale * x, (mp.mpf(scale), [scale])
        return scale * alpha * mp.expm1(x), (scale * alpha * mp.exp(x), [scale * alpha * mp.exp(x)])
    return f


def _celu(alpha):
    def f(x):
        if x > 0:
            return x, (mp.mpf(1), [1])
        return alpha * mp.expm1(x / alpha), (mp.exp(x / alpha), [mp.exp(x / alpha)])
    return f


def _gelu_tanh(x):
    c = mp.sqrt(2 / mp.pi)
    k = mp.mpf("0.044715")
    u = c * (x + k * x**3)
    s, sm = sig(2 * u), sig(-2 * u)
    du = c * (1 + 3 * k * x**2)
    t2 = 2 * x * du * s * sm
    return x * s, (s + t2, [s, t2])


def _gelu_erf(x):
    if abs(x) > 10**4:  # Φ is 0 or 1 to far more than 120 digits
        return (x if x > 0 else mp.mpf(0)), ((mp.mpf(1) if x > 0 else mp.mpf(0)), [1])
    phi_cdf = mp.erfc(-x / mp.sqrt(2)) / 2
    t2 = x * mp.exp(-x * x / 2) / mp.sqrt(2 * mp.pi)
    return x * phi_cdf, (phi_cdf + t2, [phi_cdf, t2])


def _mish(x):
    sp = mp.log1p(mp.exp(x))
    t = mp.tanh(sp)
    t2 = x * sig(x) * sech2(sp)
    return x * t, (t + t2, [t, t2])


def _squareplus(b):
    def f(x):
        s = mp.sqrt(x * x + b)
        if x < 0:  # (x + s)/2 cancels completely for x = −1e300, even at 120 digits
            return b / (2 * (s - x)), (b / (2 * s * (s - x)), [b / (2 * s * (s - x))])
        return (x + s) / 2, ((1 + x / s) / 2, [mp.mpf(1) / 2, x / s / 2])
    return f


def _pw(value, deriv):
    def f(x):
        d = mp.mpf(deriv(x))
        return mp.mpf(value(x)), (d, [d])
    return f


def formulas(dt):
    """name -> x ↦ (value, (derivative, terms)); parameters rounded to dtype `dt`."""
    r = lambda p: mp.mpf(float(dt(p)))  # noqa: E731
    lam = mp.mpf("1.0507009873554804934193349852946")
    alp = mp.mpf("1.6732632423543772848170429916717")
    return {
        "identity": _pw(lambda x: x, lambda x: 1),
        "sign": _pw(mp.sign, lambda x: 0),
        "sigmoid": _pw(sig, lambda x: sig(x) * sig(-x)),
        "log_sigmoid": _pw(lambda x: -mp.log1p(mp.exp(-x)), lambda x: sig(-x)),
        "tanh": _pw(mp.tanh, sech2),
        "relu": _pw(lambda x: max(x, 0), lambda x: 1 if x > 0 else 0),
        "relu6": _pw(lambda x: min(max(x, 0), 6), lambda x: 1 if 0 < x < 6 else 0),
        "leaky_relu": _pw(lambda x: x if x >= 0 else r(0.01) * x,
                          lambda x: 1 if x >= 0 else r(0.01)),
        "leaky_relu(negative_slope=0.2)": _pw(lambda x: x if x >= 0 else r(0.2) * x,
                                              lambda x: 1 if x >= 0 else r(0.2)),
        "softplus": _pw(lambda x: mp.log1p(mp.exp(x)), sig),
        "soft_sign": _pw(lambda x: x / (1 + abs(x)), lambda x: 1 / (1 + abs(x)) ** 2),
        "silu": _swish(mp.mpf(1)),
        "swish(beta=1.5)": _swish(r(1.5)),
        "elu": _elu(mp.mpf(1)),
        "elu(alpha=0.5)": _elu(r(0.5)),
        "celu": _celu(mp.mpf(1)),
        "celu(alpha=0.5)": _celu(r(0.5)),
        "selu": _elu(alp, lam),
        "gelu(approximate=True)": _gelu_tanh,
        "gelu(approximate=False)": _gelu_erf,
        "hard_sigmoid": _pw(lambda x: min(max(x + 3, 0), 6) / 6,
                            lambda x: mp.mpf(1) / 6 if -3 < x < 3 else 0),
        "hard_tanh": _pw(lambda x: min(max(x, -1), 1), lambda x: 1 if -1 <= x <= 1 else 0),
        "hard_silu": _pw(lambda x: x * min(max(x + 3, 0), 6) / 6,
                         lambda x: 0 if x <= -3 else (1 if x >= 3 else (2 * x + 3) / 6)),
        "mish": _mish,
        "squareplus": _squareplus(mp.mpf(4)),
        "squareplus(b=1.5)": _squareplus(r(1.5)),
    }


def split(v) -> tuple[float, float]:
    hi = float(v)
    return hi, float(v - mp.mpf(hi)) if np.isfinite(hi) else 0.0


def main() -> None:
    out = {}
    for dt in (np.float32, np.float64):
        tag = np.dtype(dt).name
        x = grid(dt)
        out[f"{tag}/x"] = x
        for name, f in formulas(dt).items():
            rows = []
            for xi in x:
                v, (d, terms) = f(mp.mpf(xi))
                rows.append((*split(v), *split(d), float(sum(abs(mp.mpf(t)) for t in terms))))
            out[f"{tag}/{name}"] = np.array(rows)
    np.savez_compressed(HERE / "activations.npz", **out)


if __name__ == "__main__":
    main()
