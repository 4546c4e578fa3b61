"""Measure the prototype FFI softmax kernel (bench/ffi_softmax.cc) beside jaxsoft and jax.nn.

Run: python bench/ffi_softmax.py   (needs g++ and an AVX-512 CPU; builds into a temp dir)

The question it answers (issue 4): can a row kernel outside XLA's YNNPACK fusion give the
exact softmax at jax.nn's speed? It prints, per shape, the worst error in float32 ulp against a
long-double softmax and the median time of interleaved jitted calls (fresh output each call,
as in `python -m jaxsoft bench`).
"""

import ctypes
import pathlib
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxsoft

SHAPES = [(8192, 4096), (1024, 32768), (65536, 10), (4096, 1000), (512, 1024)]


def build() -> ctypes.CDLL:
    source = pathlib.Path(__file__).with_name("ffi_softmax.cc")
    lib = pathlib.Path(tempfile.mkdtemp()) / "libffi_softmax.so"
    cmd = ["g++", "-O3", "-march=native", "-std=c++17", "-shared", "-fPIC", "-w",
           f"-I{jax.ffi.include_dir()}", str(source), "-o", str(lib)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"build failed (needs g++ and AVX-512):\n{done.stderr[-2000:]}")
    return ctypes.cdll.LoadLibrary(str(lib))


def ulps(got, x):
    xl = x.astype(np.longdouble)
    e = np.exp(xl - xl.max(-1, keepdims=True))
    true = (e / e.sum(-1, keepdims=True)).astype(np.float64)
    spacing = np.spacing(true.astype(np.float32)).astype(np.float64)
    return float(np.max(np.abs(np.asarray(got, np.float64) - true) / spacing))


def main() -> None:
    jax.ffi.register_ffi_target("ffi_softmax", jax.ffi.pycapsule(build().Softmax), platform="cpu")

    def ffi_softmax(x):
        out = jax.ShapeDtypeStruct(x.shape, x.dtype)
        return jax.ffi.ffi_call("ffi_softmax", out, vmap_method="broadcast_all")(x)

    impls = {"ffi": ffi_softmax, "jaxsoft": jaxsoft.softmax, "jax.nn": jax.nn.softmax}
    cols = ["shape", "ffi ms", "jaxsoft ms", "jax.nn ms", "ffi / jax.nn", "ulp ffi", "ulp jaxsoft",
            "ulp jax.nn"]
    print("| " + " | ".join(cols) + " |\n" + "|---" * len(cols) + "|")
    for shape in SHAPES:
        x = jnp.asarray(3 * np.random.default_rng(0).standard_normal(shape), jnp.float32)
        fns = {k: jax.jit(f) for k, f in impls.items()}
        err = {k: ulps(f(x), np.asarray(x)) for k, f in fns.items()}
        times = {k: [] for k in fns}
        for _ in range(21):
            for k, f in fns.items():
                t0 = time.perf_counter()
                f(x).block_until_ready()
                times[k].append(time.perf_counter() - t0)
        ms = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
        print(f"| {shape[0]}×{shape[1]} | {ms['ffi']:.2f} | {ms['jaxsoft']:.2f} | "
              f"{ms['jax.nn']:.2f} | {ms['ffi'] / ms['jax.nn']:.2f} | {err['ffi']:.2f} | "
              f"{err['jaxsoft']:.2f} | {err['jax.nn']:.2f} |")


if __name__ == "__main__":
    main()
