r"""Issue 5: a next-token model on Python's own source, trained with `linear_cross_entropy`.

Corpus: the top-level modules of this Python's standard library (`Lib/*.py`, read from disk;
nothing is downloaded), split into words and single punctuation characters by the regex
`\w+|[^\w\s]` (whitespace dropped): about a million tokens on Python 3.11. Vocabulary: the
V − 1 most frequent tokens plus one UNK id for all others (at V = 16384 about 1.4 % of the
tokens are UNK on 3.11, the UNK id is an ordinary class). The first 90 % of the token
stream trains, the last 10 % (the alphabetically last modules) is held out.

Model (Bengio et al. 2003's neural language model): the previous 4 tokens are embedded (64
numbers each), concatenated, and mapped to h = tanh(W₁ e + b₁) of size d (--hidden); the next
token is scored over all V tokens by h W_out + b_out, with the loss
`linear_cross_entropy(h, w_out, next, bias=b_out, reduction="mean")`, trained by Adam on
random batches of --batch positions. Printed: the loss falling (train batches, and a fixed
sample of 4096 held-out positions), the final train / held-out loss and perplexity e^loss,
and the unigram baseline (training-set token frequencies) for scale.

Memory: the head holds the model's largest arrays, tokens × V logits (4096 × 16384 float32 =
256 MiB). For one jitted training step (forward, backward and Adam update) at
--measure-batch tokens, the table gives the median time of --reps steps and XLA's planned
temporary memory, `jit(step).lower(...).compile().memory_analysis().temp_size_in_bytes`:
the scratch buffers of the compiled program (parameters, inputs and outputs excluded), a
plan rather than a measurement of the process. Heads: the naive ones on materialized logits
(optax's CE, jaxsoft's CE), and `linear_cross_entropy` with its default chunks and with
--token-chunk (the default blocks hold up to 512 tokens and 2**25 logits, 128 MiB, and XLA
CPU plans a few of them live at once: token_chunk trades speed for memory). `--rss`
adds each step's peak resident memory above its setup, measured in a child process (VmHWM
after resetting it through /proc/self/clear_refs; Linux only).

Run: `python examples/next_token.py [--steps 240] [--vocab 16384] [--quick] [--rss]`;
writes next_token.png (loss curves).
"""

import argparse
import collections
import pathlib
import re
import subprocess
import sys
import sysconfig
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxsoft
from jaxsoft import plots

CONTEXT, EMBED, EVAL = 4, 64, 4096


def corpus(vocab):
    """(token ids [N] int32, number of files): see the module docstring."""
    files = sorted(pathlib.Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
    text = "\n".join(f.read_text(encoding="utf-8", errors="replace") for f in files)
    tokens = re.findall(r"\w+|[^\w\s]", text)
    index = {w: i for i, (w, _) in enumerate(collections.Counter(tokens).most_common(vocab - 1))}
    return np.array([index.get(t, vocab - 1) for t in tokens], np.int32), len(files)


def heads(token_chunk):
    """Loss of the next token from (h [B, d], w_out [d, V], b_out [V], labels [B])."""
    return {
        "naive: optax CE of h @ w_out + b": lambda h, w, b, y:
            optax.losses.softmax_cross_entropy_with_integer_labels(h @ w + b, y).mean(),
        "naive: jaxsoft CE of h @ w_out + b": lambda h, w, b, y:
            jaxsoft.softmax_cross_entropy_with_integer_labels(h @ w + b, y, reduction="mean"),
        "linear_cross_entropy, default chunks": lambda h, w, b, y:
            jaxsoft.linear_cross_entropy(h, w, y, bias=b, reduction="mean"),
        f"linear_cross_entropy, token_chunk={token_chunk}": lambda h, w, b, y:
            jaxsoft.linear_cross_entropy(h, w, y, bias=b, reduction="mean",
                                         token_chunk=token_chunk),
    }


def init(key, vocab, hidden):
    k1, k2, k3 = jax.random.split(key, 3)
    return {"emb": 0.1 * jax.random.normal(k1, (vocab, EMBED)),
            "w1": jax.random.normal(k2, (CONTEXT * EMBED, hidden)) * (CONTEXT * EMBED) ** -0.5,
            "b1": jnp.zeros(hidden),
            "w_out": 0.1 * jax.random.normal(k3, (hidden, vocab)) * hidden**-0.5,
            "b_out": jnp.zeros(vocab)}


def hidden_states(params, ctx):
    """h = tanh(W₁ [e(t₋₄), …, e(t₋₁)] + b₁) for contexts ctx [B, 4] → [B, d]."""
    e = params["emb"][ctx].reshape(ctx.shape[0], CONTEXT * EMBED)
    return jnp.tanh(e @ params["w1"] + params["b1"])


def windows(ids, pos):
    """(contexts [B, 4], next tokens [B]) for the next-token positions pos [B]."""
    return ids[pos[:, None] + np.arange(-CONTEXT, 0)], ids[pos]


def make_step(head, opt):
    def loss(params, ctx, y):
        return head(hidden_states(params, ctx), params["w_out"], params["b_out"], y)

    @jax.jit
    def step(params, state, ctx, y):
        value, grads = jax.value_and_grad(loss)(params, ctx, y)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    return step


@jax.jit
def evaluate(params, ctx, y):
    h = hidden_states(params, ctx)
    return jaxsoft.linear_cross_entropy(h, params["w_out"], y, bias=params["b_out"],
                                        reduction="mean")


def train(args, ids, split, opt):
    rng = np.random.default_rng(args.seed)
    train_eval = windows(ids, rng.integers(CONTEXT, split, EVAL))
    held_eval = windows(ids, rng.integers(split + CONTEXT, len(ids), EVAL))
    params = init(jax.random.key(args.seed), args.vocab, args.hidden)
    head = heads(args.token_chunk)[f"linear_cross_entropy, token_chunk={args.token_chunk}"]
    state, step = opt.init(params), make_step(head, opt)
    losses, held, start = [], [], time.perf_counter()
    for i in range(args.steps + 1):
        if i % args.every == 0 or i == args.steps:
            held.append((i, float(evaluate(params, *held_eval))))
            recent = f"{np.mean(losses[-args.every:]):.3f}" if losses else "  —  "
            print(f"step {i:5d}  train loss (last {args.every} batches) {recent}  "
                  f"held-out loss {held[-1][1]:.3f}")
        if i < args.steps:
            params, state, loss = step(params, state, *windows(ids, rng.integers(
                CONTEXT, split, args.batch)))
            losses.append(float(loss))
    print(f"{args.steps} steps of {args.batch} tokens in {time.perf_counter() - start:.1f} s "
          "(compile and held-out evaluations included)")
    final = {"train": float(evaluate(params, *train_eval)), "held-out": held[-1][1]}
    for name, value in final.items():
        print(f"final {name:>8} loss {value:.3f}, perplexity {np.exp(value):.1f} "
              f"({EVAL} positions)")
    return params, losses, held


def step_inputs(args, ids, opt, params=None):
    params = params or init(jax.random.key(args.seed), args.vocab, args.hidden)
    pos = np.random.default_rng(args.seed).integers(CONTEXT, len(ids), args.measure_batch)
    return jax.device_put((params, opt.init(params), *windows(ids, pos)))


def compare_heads(args, ids, opt, params):
    inputs = step_inputs(args, ids, opt, params)
    print(f"\none training step at {args.measure_batch} tokens × V = {args.vocab} (float32 "
          f"logits {4 * args.measure_batch * args.vocab / 2**20:.0f} MiB), d = {args.hidden}; "
          "temp = XLA's planned temporary memory")
    rss = " peak RSS above setup, MiB |" if args.rss else ""
    print(f"| head | ms per step | temp MiB | temp / naive (optax) |{rss}\n|---|---|---|---|"
          + "---|" * bool(rss))
    temps = {}
    for k, (name, head) in enumerate(heads(args.token_chunk).items()):
        compiled = make_step(head, opt).lower(*inputs).compile()
        temps[name] = compiled.memory_analysis().temp_size_in_bytes / 2**20
        times = []
        for _ in range(args.reps + 1):  # the first call warms up
            start = time.perf_counter()
            jax.block_until_ready(compiled(*inputs))
            times.append(time.perf_counter() - start)
        if args.rss:  # head k's step in a fresh process with the same options
            rss = subprocess.run([sys.executable, __file__, *args.argv, "--child", str(k)],
                                 capture_output=True, text=True, check=True).stdout.split()[-1]
            rss = f" {float(rss):.0f} |"
        print(f"| {name} | {1e3 * np.median(times[1:]):.0f} | {temps[name]:.1f} | "
              f"{temps[name] / next(iter(temps.values())):.2f} |{rss}")
    return temps


def _child(args, ids, opt):
    """`--rss`: compile head k's step, restart VmHWM, run the step once (a second run could
    reuse memory the first one freed and still holds) and print the peak above setup, MiB."""
    inputs = step_inputs(args, ids, opt)
    compiled = make_step(list(heads(args.token_chunk).values())[args.child], opt).lower(
        *inputs).compile()

    def status(key):
        line = next(ln for ln in open("/proc/self/status") if ln.startswith(key))
        return int(line.split()[1]) / 1024

    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # restarts VmHWM from the current RSS
    before = status("VmRSS")
    jax.block_until_ready(compiled(*inputs))
    print(status("VmHWM") - before)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=240, help="Adam steps")
    parser.add_argument("--batch", type=int, default=128, help="training tokens per step")
    parser.add_argument("--vocab", type=int, default=16384, help="V, including UNK")
    parser.add_argument("--hidden", type=int, default=256, help="d, the hidden size")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--every", type=int, default=40, help="print the losses every N steps")
    parser.add_argument("--measure-batch", type=int, default=4096,
                        help="tokens in the step whose memory and time are compared")
    parser.add_argument("--token-chunk", type=int, default=64,
                        help="linear_cross_entropy's token_chunk (training, and a table row)")
    parser.add_argument("--reps", type=int, default=2, help="timed steps per head")
    parser.add_argument("--rss", action="store_true", help="also peak RSS, child processes")
    parser.add_argument("--quick", action="store_true", help="tiny settings (for the tests)")
    parser.add_argument("--plot", default="next_token.png", help="'' to skip the plot")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:  # new defaults; options given explicitly still win
        parser.set_defaults(steps=60, batch=64, vocab=2048, hidden=64, every=20,
                            measure_batch=2048, token_chunk=128, reps=1)
        args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    opt = optax.adam(args.lr)
    ids, n_files = corpus(args.vocab)
    if args.child is not None:
        return _child(args, ids, opt)
    split = int(0.9 * len(ids))
    counts = np.bincount(ids[:split], minlength=args.vocab) + 1  # add-one: no log 0
    unigram = -np.mean(np.log(counts / counts.sum())[ids[split:]])
    print(f"{len(ids)} tokens from {n_files} stdlib modules, V = {args.vocab} "
          f"({100 * np.mean(ids == args.vocab - 1):.1f} % UNK); {split} train, "
          f"{len(ids) - split} held out; unigram held-out loss {unigram:.3f} "
          f"(perplexity {np.exp(unigram):.0f}); ln V = {np.log(args.vocab):.3f}")
    params, losses, held = train(args, ids, split, opt)
    compare_heads(args, ids, opt, params)
    if args.plot:
        with plots.figure(args.plot) as (_, ax):
            ax.plot(losses, lw=0.5, alpha=0.6, label=f"train batch ({args.batch} tokens)")
            ax.plot(*zip(*held, strict=True), "o-", label=f"held-out ({EVAL} positions)")
            ax.axhline(unigram, ls="--", c="gray", label="unigram baseline (held-out)")
            ax.set(xlabel="Adam step", ylabel="cross-entropy (nats)",
                   title=f"next token, V = {args.vocab}, linear_cross_entropy")


if __name__ == "__main__":
    main()
