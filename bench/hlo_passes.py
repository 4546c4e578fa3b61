"""The profile behind a benchmark row: the kernels XLA compiled and the memory they move.

For each selected workload of `jaxsoft.benchmarks.WORKLOADS` (the jax implementations:
jaxsoft, jax.nn, optax) at one shape, compiles the timed program for the default backend and
lists the ENTRY computation's kernels (fusions, custom calls, reductions, scatters, copies)
with the bytes each reads (its operands) and writes (its result), then the total as passes
over the logits (bytes / logits bytes). A fusion inside a loop (a scan) is counted once; a
scatter counts its indices and updates only (it updates its operand in place).

Run: `python bench/hlo_passes.py [--shape 8192,4096] [--dtype float32] [--only NAME ...]
[--hlo DIR]` (`--hlo`: also write each program's optimized HLO text there).
"""

from __future__ import annotations

import argparse
import math
import pathlib
import re

import jax
import jax.numpy as jnp

from jaxsoft import benchmarks as bm

ITEMSIZE = {"pred": 1, "s8": 1, "u8": 1, "bf16": 2, "f16": 2, "s16": 2, "u16": 2, "f32": 4,
            "s32": 4, "u32": 4, "f64": 8, "s64": 8, "u64": 8}
# ENTRY instructions that launch no kernel (views, constants, bookkeeping).
FREE = {"parameter", "constant", "tuple", "get-tuple-element", "bitcast", "after-all",
        "opt-barrier", "partition-id", "replica-id"}
LINE = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(.*?)\s+([\w\-]+)\((.*?)\)(.*)$")
ARRAY = re.compile(r"\b(pred|[suf]\d+|bf16)\[([\d,]*)\]")


def _nbytes(shape_text):
    """Bytes of every array in an HLO shape (a tuple counts its elements)."""
    return sum(ITEMSIZE.get(t, 4) * math.prod(int(d) for d in dims.split(",") if d)
               for t, dims in ARRAY.findall(shape_text))


def entry_kernels(hlo_text):
    """[(name, op and kind, bytes read, bytes written)] of the ENTRY computation's kernels."""
    body = hlo_text[hlo_text.index("\nENTRY"):].split("\n")[1:]
    sizes, kernels = {}, []
    for line in body:
        if line.startswith("}"):
            break
        match = LINE.match(line)
        if not match:
            continue
        name, shape, op, operands, rest = match.groups()
        sizes[name] = _nbytes(shape)
        if op in FREE:
            continue
        kind = re.search(r"kind=(\w+)", rest)
        if '"__triton' in rest or "triton" in rest.split("calls=")[-1][:40]:
            kind_text = "triton"
        else:
            kind_text = kind.group(1) if kind else ""
        read = [sizes.get(o.strip().lstrip("%"), 0) for o in operands.split(",")]
        if "scatter" in name or op == "scatter":  # in place: the updates are what moves
            kernels.append((name, f"{op} {kind_text}".strip(), sum(read[1:]), sum(read[2:])))
        else:
            kernels.append((name, f"{op} {kind_text}".strip(), sum(read), sizes[name]))
    return kernels


def report(workload, shape, dtype, hlo_dir=None):
    """Lines of the kernel table for each jax implementation of `workload`."""
    inputs = bm.Inputs(shape, dtype)
    logits = math.prod(shape) * jnp.dtype(dtype).itemsize
    lines = []
    for impl in workload.fns:
        if impl in ("numpy", "torch"):
            continue
        compiled = workload.compiled(impl).lower(*inputs.args(workload.args, impl)).compile()
        text = compiled.as_text()
        if hlo_dir:
            safe = re.sub(r"\W+", "_", f"{workload.name}_{impl}_{'x'.join(map(str, shape))}")
            pathlib.Path(hlo_dir).mkdir(parents=True, exist_ok=True)
            (pathlib.Path(hlo_dir) / f"{safe}.hlo").write_text(text)
        kernels = entry_kernels(text)
        moved = sum(r + w for _, _, r, w in kernels)
        lines += [f"{workload.name} {'×'.join(map(str, shape))} {dtype}, {impl}: "
                  f"{len(kernels)} kernels, {moved / 1e6:.1f} MB moved = "
                  f"{moved / logits:.2f} passes over the logits; planned temporaries "
                  f"{compiled.memory_analysis().temp_size_in_bytes / 1e6:.1f} MB"]
        lines += [f"    {name:<28} {kind:<22} read {r / 1e6:9.1f} MB  write {w / 1e6:9.1f} MB"
                  for name, kind, r, w in kernels]
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="8192,4096")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--only", nargs="+", metavar="NAME")
    parser.add_argument("--hlo", metavar="DIR", help="write each optimized HLO text here")
    args = parser.parse_args(argv)
    shape = tuple(int(v) for v in args.shape.split(","))
    print(f"{bm.device_name()}, jax {jax.__version__}")
    for w in bm.WORKLOADS:
        if bm._selected(w.name, args.only) and args.dtype in w.dtypes:
            print("\n".join(report(w, shape, args.dtype, args.hlo)), flush=True)


if __name__ == "__main__":
    main()
