"""Experiments: several configurations × several seeds of one MLP architecture, trained at once.

Configurations differ in learning rate (and may differ in weight decay); every configuration
is trained with `models` seeds, and all `configurations × models` networks share one jitted
program (`jaxsoft.train`). Results are summarized per configuration as mean ± std over seeds.
"""

from __future__ import annotations

import dataclasses
import json
import time

import jax
import numpy as np

from jaxsoft import mlp, plots, train


@dataclasses.dataclass
class Result:
    """One configuration's outcome over its seeds."""

    config: dict
    history: train.History  # rows are this configuration's seeds
    seconds: float

    def summary(self) -> dict:
        best = self.history.test_accuracy.max(axis=1)
        final = self.history.test_accuracy[:, -1]
        return {"config": self.config,
                "test_accuracy_best_mean": float(best.mean()),
                "test_accuracy_best_std": float(best.std()),
                "test_accuracy_final_mean": float(final.mean()),
                "test_accuracy_final_std": float(final.std()),
                "test_loss_final_mean": float(self.history.test_loss[:, -1].mean()),
                "epochs": int(self.history.epochs),
                "interrupted": bool(self.history.interrupted),
                "seconds": self.seconds}


def run(data, *, hidden=(30,), activation="sigmoid", head="categorical", init="normalized",
        batch_size=10, learning_rates=(0.5,), weight_decay=0.0, optimizer="sgd", epochs=30,
        models=8, seed=0, shuffle="per_model", checkpoint=None,
        progress=True) -> list[Result]:
    """Train `len(learning_rates) × models` networks at once on `data`; one Result per rate."""
    data = _for_head(data, head)
    n_out = data.num_classes if head == "categorical" else _output_width(data, head)
    sizes = (data.x_train.shape[1], *hidden, n_out)
    rates = np.repeat(np.asarray(learning_rates, np.float32), models)
    keys = jax.random.split(jax.random.key(seed), rates.size)
    params = jax.vmap(lambda k: mlp.init(k, sizes, init))(keys)

    def grad_fn(p, x, y, decay, n_train):
        return mlp.backprop(p, x, y, activation, head, weight_decay=decay, n_train=n_train)

    classifies = mlp.HEADS[head].classify is not None if head in mlp.HEADS else True

    def eval_fn(p, x, y):
        acc = mlp.accuracy(p, x, y, activation, head) if classifies else np.float32(np.nan)
        return mlp.loss(p, x, y, activation, head), acc

    start = time.perf_counter()
    _, history = train.train(params, data, grad_fn=grad_fn, eval_fn=eval_fn,
                             learning_rates=rates, weight_decays=weight_decay,
                             optimizer=optimizer, batch_size=batch_size, epochs=epochs,
                             seed=seed, shuffle=shuffle, checkpoint=checkpoint,
                             progress=progress)
    seconds = time.perf_counter() - start
    results = []
    for i, lr in enumerate(learning_rates):
        rows = slice(i * models, (i + 1) * models)
        part = train.History(history.train_loss[rows], history.test_loss[rows],
                             history.test_accuracy[rows], history.interrupted)
        config = {"data": data.name, "sizes": list(sizes), "activation": activation,
                  "head": head, "init": init, "batch_size": batch_size, "learning_rate": lr,
                  "weight_decay": weight_decay, "optimizer": optimizer, "epochs": epochs,
                  "models": models, "seed": seed, "shuffle": shuffle}
        results.append(Result(config, part, seconds / len(learning_rates)))
    return results


def _for_head(data, head):
    """Labels in the form the head takes: integer classes become a float (n, 1) column for
    the Bernoulli head and float one-hot rows for the multi-label and regression heads."""
    if data.num_classes is None or head in ("categorical", "sigmoid_quadratic",
                                            "softmax_quadratic"):
        return data
    if head == "bernoulli":
        if data.num_classes != 2:
            raise ValueError(f"experiments: the bernoulli head needs 2 classes, {data.name} has "
                             f"{data.num_classes}")
        convert = lambda y: y.astype(np.float32)[:, None]  # noqa: E731
    else:
        convert = lambda y: np.eye(data.num_classes, dtype=np.float32)[y]  # noqa: E731
    return dataclasses.replace(data, y_train=convert(data.y_train), y_test=convert(data.y_test))


def _output_width(data, head):
    if data.num_classes is None:  # regression target of shape (n, width)
        return data.y_train.shape[1]
    return 1 if head == "bernoulli" else data.num_classes


def format_table(results: list[Result]) -> str:
    lines = ["| data | sizes | activation | head | lr | models | epochs | best test acc | "
             "final test acc | final test loss | seconds |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    pct = lambda m, sd: "n/a" if np.isnan(m) else f"{100 * m:.2f} ± {100 * sd:.2f} %"  # noqa: E731
    for r in results:
        s, c = r.summary(), r.config
        lines.append(
            f"| {c['data']} | {'-'.join(map(str, c['sizes']))} | {c['activation']} | "
            f"{c['head']} | {c['learning_rate']:g} | {c['models']} | {s['epochs']} | "
            f"{pct(s['test_accuracy_best_mean'], s['test_accuracy_best_std'])} | "
            f"{pct(s['test_accuracy_final_mean'], s['test_accuracy_final_std'])} | "
            f"{s['test_loss_final_mean']:.4f} | {s['seconds']:.1f} |")
    return "\n".join(lines)


def write_json(results: list[Result], path: str) -> None:
    with open(path, "w") as f:
        json.dump([r.summary() for r in results], f, indent=1)


def plot(results: list[Result], path: str) -> None:
    """Mean (and range of) test accuracy per epoch, one curve per configuration."""
    with plots.figure(path, figsize=(7, 4)) as (_, ax):
        for r in results:
            acc = 100 * r.history.test_accuracy
            epochs = np.arange(1, acc.shape[1] + 1)
            c = r.config
            label = f"{'-'.join(map(str, c['sizes']))} {c['head']} lr {c['learning_rate']:g}"
            ax.plot(epochs, acc.mean(0), label=label)
            ax.fill_between(epochs, acc.min(0), acc.max(0), alpha=0.2)
        ax.set(xlabel="epoch", ylabel="test accuracy (%)", title=results[0].config["data"])
