"""Gradient-check report: closed form vs autodiff of the plain reference vs finite differences.

For every registry entry, in float64, on points sampled from its core domain, three dense
Jacobians of the same function are compared:

  closed     the closed-form derivative the library's custom rule uses (`Entry.closed_vjp`
             applied to every output basis vector),
  autodiff   `jax.jacrev` of the *plain reference formula* (ordinary jnp, no custom rule),
  fd         6th-order central finite differences of the reference, step h = `fd_step`
             (1e-2 unless the domain's edge is nearer):
             (f(x+3h) − 9f(x+2h) + 45f(x+h) − 45f(x−h) + 9f(x−2h) − f(x−3h)) / 60h.

It also checks that the public function's own rule (`jax.jacrev` and `jax.jacfwd` of `fn`) is
the closed form. A second section checks the MLP's hand-derived backprop (`mlp.backprop`) for
every head, with a sigmoid and a tanh hidden layer and L2 weight decay: against `jax.grad` of
`mlp.loss` and against 6th-order finite differences of the loss along random directions.

Errors are max |a − b| and max |a − b| / max(|b|, 1e-3·max|b|) (the floor keeps derivatives
near a root from reporting a meaningless relative error).
"""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np

from jaxsoft.registry import REGISTRY, Entry

RTOL_AUTODIFF = 1e-12
RTOL_FD = 1e-9


@dataclasses.dataclass
class Result:
    name: str
    kind: str
    points: int
    max_abs_err: float
    max_rel_err: float
    autodiff_rel_err: float
    fd_rel_err: float
    rule_rel_err: float
    ok: bool

    def as_dict(self):
        return dataclasses.asdict(self)


def _errors(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    diff = np.abs(a - b)
    if not np.all(np.isfinite(a) & np.isfinite(b)):
        return np.inf, np.inf
    floor = max(1e-3 * float(np.max(np.abs(b), initial=0.0)), np.finfo(np.float64).tiny)
    rel = diff / np.maximum(np.abs(b), floor)
    return float(np.max(diff, initial=0.0)), float(np.max(rel, initial=0.0))


def jacobians(entry: Entry, args: tuple) -> dict[str, np.ndarray]:
    """Dense (outputs × inputs) Jacobians of `entry` w.r.t. args[0], four independent ways."""
    x, rest = jnp.asarray(args[0]), args[1:]
    ref = lambda x: entry.reference(x, *rest)  # noqa: E731
    fn = lambda x: entry.fn(x, *rest)  # noqa: E731
    y = ref(x)
    eye_out = jnp.eye(y.size, dtype=y.dtype).reshape((y.size, *y.shape))
    eye_in = jnp.eye(x.size, dtype=x.dtype).reshape((x.size, *x.shape))

    closed = jax.vmap(lambda ct: entry.closed_vjp(ct, x, *rest))(eye_out)

    def fd_column(t):
        f = lambda k: ref(x + k * entry.fd_step * t)  # noqa: E731
        return (f(3) - 9 * f(2) + 45 * f(1) - 45 * f(-1) + 9 * f(-2) - f(-3)) / (60 * entry.fd_step)

    fd = jax.vmap(fd_column)(eye_in).reshape(x.size, y.size).T
    flat = lambda j: np.asarray(j).reshape(y.size, x.size)  # noqa: E731
    return {
        "closed": flat(closed),
        "autodiff": flat(jax.jacrev(ref)(x)),
        "fd": np.asarray(fd),
        "rule_rev": flat(jax.jacrev(fn)(x)),
        "rule_fwd": flat(jax.jacfwd(fn)(x)),
    }


def check(entry: Entry, seed: int = 0) -> Result:
    """Compare the closed form of one entry with autodiff and finite differences (float64)."""
    with jax.enable_x64(True):
        args = entry.sample(np.random.default_rng(seed))
        j = jacobians(entry, args)
    auto_abs, auto_rel = _errors(j["closed"], j["autodiff"])
    fd_abs, fd_rel = _errors(j["closed"], j["fd"])
    rule_rel = max(_errors(j["rule_rev"], j["closed"])[1], _errors(j["rule_fwd"], j["closed"])[1])
    ok = auto_rel <= RTOL_AUTODIFF and fd_rel <= RTOL_FD and rule_rel <= RTOL_AUTODIFF
    return Result(entry.name, entry.kind, int(np.size(args[0])), max(auto_abs, fd_abs),
                  max(auto_rel, fd_rel), auto_rel, fd_rel, rule_rel, bool(ok))


def check_backprop(activation: str, head: str, seed: int = 0, directions: int = 8) -> Result:
    """mlp.backprop vs jax.grad(mlp.loss) vs finite differences, float64, a 5-4-3-K network."""
    from jaxsoft import mlp

    with jax.enable_x64(True):
        rng = np.random.default_rng(seed)
        k = 1 if head == "bernoulli" else 3
        params = mlp.init(jax.random.key(seed), [5, 4, 3, k], "normalized", jnp.float64)
        x = jnp.asarray(rng.standard_normal((6, 5)))
        if head in ("categorical", "sigmoid_quadratic", "softmax_quadratic"):
            y = jnp.asarray(rng.integers(0, k, 6))
        elif head in ("bernoulli", "multilabel"):
            y = jnp.asarray(rng.integers(0, 2, (6, k)).astype(np.float64))
        else:
            y = jnp.asarray(rng.standard_normal((6, k)))
        args = (x, y, activation, head, 0.3, 50)
        _, grads = mlp.backprop(params, *args)
        auto = jax.grad(mlp.loss)(params, *args)
        flat = lambda tree: np.concatenate([np.ravel(v) for v in jax.tree.leaves(tree)])  # noqa
        auto_abs, auto_rel = _errors(flat(grads), flat(auto))
        g = flat(grads)
        leaves, treedef = jax.tree.flatten(params)
        along, fd = [], []
        for _ in range(directions):
            v = [jnp.asarray(rng.standard_normal(leaf.shape)) for leaf in leaves]
            f = lambda t, v=v: mlp.loss(jax.tree.unflatten(  # noqa: E731
                treedef, [a + t * 1e-3 * b for a, b in zip(leaves, v, strict=True)]), *args)
            fd.append((f(3) - 9 * f(2) + 45 * f(1) - 45 * f(-1) + 9 * f(-2) - f(-3)) / 0.06)
            along.append(g @ np.concatenate([np.ravel(b) for b in v]))
        fd_abs, fd_rel = _errors(np.array(along), np.array(fd))
    ok = auto_rel <= 1e-10 and fd_rel <= RTOL_FD
    return Result(f"mlp.backprop({activation}, {head})", "backprop", int(g.size),
                  max(auto_abs, fd_abs), max(auto_rel, fd_rel), auto_rel, fd_rel, 0.0, bool(ok))


BACKPROP_CASES = [(a, h) for a in ("sigmoid", "tanh")
                  for h in ("gaussian", "laplace", "bernoulli", "categorical", "multilabel",
                            "sigmoid_quadratic", "softmax_quadratic")]


def run(names=None, seed: int = 0) -> list[Result]:
    entries = [e for e in REGISTRY if names is None or e.name in names]
    results = [check(e, seed) for e in entries]
    if names is None:
        results += [check_backprop(a, h, seed) for a, h in BACKPROP_CASES]
    return results


def format_table(results: list[Result]) -> str:
    header = (f"{'function':<62} {'kind':<11} {'points':>6} {'max abs err':>11} "
              f"{'rel vs autodiff':>15} {'rel vs fd':>10} {'rule':>9}  ok")
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(f"{r.name:<62} {r.kind:<11} {r.points:>6} {r.max_abs_err:>11.2e} "
                     f"{r.autodiff_rel_err:>15.2e} {r.fd_rel_err:>10.2e} {r.rule_rel_err:>9.2e}"
                     f"  {'PASS' if r.ok else 'FAIL'}")
    failed = sum(not r.ok for r in results)
    lines.append(f"{len(results) - failed} passed, {failed} failed "
                 f"(float64; tolerances: autodiff {RTOL_AUTODIFF:g} (backprop 1e-10), "
                 f"fd {RTOL_FD:g}, rule {RTOL_AUTODIFF:g})")
    return "\n".join(lines)


def main(json_path=None, names=None, seed: int = 0) -> int:
    """Print the report (and write JSON); return 0 if every entry passes, else 1."""
    results = run(names, seed)
    print(format_table(results))
    if json_path:
        with open(json_path, "w") as f:
            json.dump([r.as_dict() for r in results], f, indent=1)
    return 0 if all(r.ok for r in results) else 1
