"""Jitted speed of jaxsoft vs jax.nn and optax, same run, same inputs (CPU or whatever JAX uses).

Median of several timed calls after a warm-up (compile excluded, `block_until_ready`), and the
ratio ours/peer. Run: `python bench/speed.py [--shape 8192 4096] [--reps 7]`.
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxsoft


def median_ms(f, *args, reps):
    jax.block_until_ready(f(*args))  # compile and warm up
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        jax.block_until_ready(f(*args))
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def value_and_grad_of_mean(loss):
    return jax.jit(jax.value_and_grad(lambda z, y: jnp.mean(loss(z, y))))


def workloads(z, labels, onehot, bits):
    """name -> (jaxsoft fn, peer name, peer fn, args)."""
    x = (z,)
    return {
        "softmax": (jax.jit(jaxsoft.softmax), "jax.nn", jax.jit(jax.nn.softmax), x),
        "log_softmax": (jax.jit(jaxsoft.log_softmax), "jax.nn", jax.jit(jax.nn.log_softmax), x),
        "grad sum(softmax·z)": (
            jax.jit(jax.grad(lambda z: jnp.sum(jaxsoft.softmax(z) * z))), "jax.nn",
            jax.jit(jax.grad(lambda z: jnp.sum(jax.nn.softmax(z) * z))), x),
        "CE int labels, value_and_grad": (
            value_and_grad_of_mean(jaxsoft.softmax_cross_entropy_with_integer_labels), "optax",
            value_and_grad_of_mean(optax.losses.softmax_cross_entropy_with_integer_labels),
            (z, labels)),
        "CE one-hot, value_and_grad": (
            value_and_grad_of_mean(jaxsoft.softmax_cross_entropy), "optax",
            value_and_grad_of_mean(optax.losses.softmax_cross_entropy), (z, onehot)),
        "sigmoid BCE, value_and_grad": (
            value_and_grad_of_mean(jaxsoft.sigmoid_binary_cross_entropy), "optax",
            value_and_grad_of_mean(optax.losses.sigmoid_binary_cross_entropy), (z, bits)),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shape", type=int, nargs=2, default=(8192, 4096))
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args(argv)
    rows, classes = args.shape
    key_z, key_y, key_b = jax.random.split(jax.random.key(0), 3)
    z = 3 * jax.random.normal(key_z, (rows, classes))
    labels = jax.random.randint(key_y, (rows,), 0, classes)
    onehot = jax.nn.one_hot(labels, classes)
    bits = jax.random.bernoulli(key_b, 0.5, (rows, classes)).astype(jnp.float32)
    print(f"float32 {rows}×{classes} on {jax.devices()[0].platform}, median of {args.reps}\n")
    print("| workload | jaxsoft ms | peer | peer ms | ours/peer |")
    print("|---|---|---|---|---|")
    for name, (ours, peer, theirs, fargs) in workloads(z, labels, onehot, bits).items():
        a, b = median_ms(ours, *fargs, reps=args.reps), median_ms(theirs, *fargs, reps=args.reps)
        print(f"| {name} | {a:.1f} | {peer} | {b:.1f} | {a / b:.2f} |")


if __name__ == "__main__":
    main()
