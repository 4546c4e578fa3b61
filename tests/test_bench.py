"""The benchmark suite runs and writes its rows; no timing is asserted.

Every softmax/loss workload runs for every dtype and impl at one tiny shape, the MLP rows for
one configuration; the CLI runs the linear-CE (one child process per impl) and malloc-reuse
(a child `python -m jaxsoft bench`) paths with `--quick --only ...`; so the file stays fast.
"""

import json

import pytest

from jaxsoft import bench_process, benchmarks, cli


@pytest.fixture
def lim():
    return {"copy_gbps": 10.0, "read_gbps": 10.0, "matmul_gflops": 100.0}


def test_every_workload_runs_at_a_tiny_shape(monkeypatch, lim):
    monkeypatch.setattr(benchmarks, "SHAPES", dict.fromkeys(benchmarks.SHAPES, ([], [(8, 16)])))
    rows = benchmarks.array_rows(True, 1, lim)
    cases = {(r.workload, r.dtype) for r in rows}
    assert cases == {(w.name, d) for w in benchmarks.WORKLOADS for d in w.dtypes}
    impls = {r.impl for r in rows}
    assert {"jaxsoft", "jax.nn", "optax"} <= impls
    assert ("numpy" in impls) == (not benchmarks.on_gpu())  # NumPy would time the host
    assert ("torch" in impls) == (benchmarks._torch() is not None)
    assert not any(r.impl == "numpy" and r.dtype == "bfloat16" for r in rows)
    assert all(r.median_ms > 0 and r.gbps > 0 and r.ratio_ours_over_impl > 0 for r in rows)
    assert all(r.ratio_ours_over_impl == 1 for r in rows if r.impl == "jaxsoft")
    assert all(0 < r.min_ms <= r.median_ms for r in rows)
    table = benchmarks.format_markdown(lim, rows)
    assert "| shape | dtype | impl | median ms | min ms | jaxsoft / impl |" in table
    assert all(line.count("|") == 9 for line in table.splitlines() if line.startswith("| 8×16"))


def test_rows_are_the_median_of_rounds_taken_in_turns(monkeypatch, lim):
    """Each implementation sampled in ROUNDS rounds, all implementations in turns between
    rounds; a row's median is its fastest round's, its min the fastest sample."""
    monkeypatch.setattr(benchmarks, "SHAPES", dict.fromkeys(benchmarks.SHAPES, ([], [(8, 16)])))
    monkeypatch.setattr(benchmarks, "ROUNDS", (3, 3))
    per_round = [[50.0, 70.0], [3.0, 4.0], [1.0, 2.5, 3.0]]  # round medians 60, 3.5, 2.5
    calls = []

    def samples(fn, *args, reps):
        calls.append(fn)
        return per_round[calls.count(fn) - 1]

    monkeypatch.setattr(benchmarks, "samples_ms", samples)
    rows = benchmarks.array_rows(True, 1, lim, only=["log_softmax value_and_grad"])
    impls = sum(r.dtype == rows[0].dtype for r in rows)  # the first case's, sampled first
    assert impls >= 2 and len(calls) == 3 * len(rows) and len(set(calls[:impls])) == impls
    assert all(r.median_ms == 2.5 and r.min_ms == 1.0 and r.rounds_ms == [60.0, 3.5, 2.5]
               for r in rows)


def test_mlp_step_and_epoch_rows(monkeypatch, lim):
    monkeypatch.setattr(benchmarks, "MLP_EXAMPLES", (0, 100))
    monkeypatch.setattr(benchmarks, "MLP_BATCHES", (10,))
    monkeypatch.setattr(benchmarks, "MLP_MODELS", ((), (2,)))
    rows = benchmarks.mlp_rows(True, 1, lim)
    assert [(r.workload, r.shape, r.note) for r in rows] == [
        ("MLP training step", (10, 784), "batch 10, 2 model(s), shared order"),
        ("MLP training epoch", (100, 784), "batch 10, 2 model(s), shared order")]
    assert all(r.median_ms > 0 and r.gflops > 0 for r in rows)


def test_bench_quick_cli_writes_rows(tmp_path, capsys):
    path = tmp_path / "bench.json"
    argv = ["bench", "--quick", "--reps", "1", "--only", "linear CE", "--json", str(path)]
    assert cli.main(argv) == 0
    rows = json.loads(path.read_text())
    keys = {"workload", "shape", "dtype", "impl", "median_ms", "gbps", "gflops",
            "fraction_of_limit", "ratio_ours_over_impl", "peak_mb", "env"}
    assert all(keys <= set(r) for r in rows)
    assert {r["workload"] for r in rows} == {"copy bandwidth", "read bandwidth", "matmul",
                                             "linear CE value_and_grad"}
    assert all(r["median_ms"] > 0 and r["env"] == "default" for r in rows)
    linear = [r for r in rows if r["workload"] == "linear CE value_and_grad"]
    assert "optax" in {r["impl"] for r in linear}
    assert all(r["peak_mb"] >= 0 and r["gflops"] > 0 for r in linear)
    assert all((r["planned_mb"] is None) == (r["impl"] == "torch") for r in linear)
    assert "### linear CE value_and_grad" in capsys.readouterr().out


def test_malloc_reuse_reruns_the_same_command_with_the_glibc_settings(monkeypatch):
    calls = []
    monkeypatch.setattr(bench_process.subprocess, "call",
                        lambda argv, env: calls.append((argv, env)) or 0)
    assert cli.main(["bench", "--quick", "--only", "softmax", "--malloc-reuse"]) == 0
    [(argv, env)] = calls
    assert argv[1:] == ["-m", "jaxsoft", "bench", "--reps", "5", "--quick", "--only", "softmax"]
    assert benchmarks.MALLOC_REUSE.items() <= env.items()


def test_compare_malloc_runs_a_malloc_reuse_child_and_prints_both(tmp_path, capsys):
    path = tmp_path / "bench.json"
    argv = ["bench", "--quick", "--reps", "1", "--only", "sigmoid BCE", "--json", str(path)]
    assert cli.main([*argv, "--compare-malloc"]) == 0
    rows = json.loads(path.read_text())
    assert {r["env"] for r in rows} == {"default", "malloc_reuse"}
    assert "| workload | shape | dtype | impl | default ms | malloc reuse ms |" in (
        capsys.readouterr().out)


def _saved(workload, shape, impl, median, fastest=None, env="default", gbps=None):
    return {"workload": workload, "shape": list(shape), "dtype": "float32", "impl": impl,
            "median_ms": median, "min_ms": fastest, "env": env, "gbps": gbps,
            "fraction_of_limit": None if gbps is None else gbps / 10}


def test_summary_of_saved_runs_counts_the_target_rows(tmp_path, capsys):
    """jaxsoft against the peer it replaces, per run; only the issue's shapes counted, other
    environments and implementations left out."""
    target, beside = benchmarks.TARGET_SHAPES[0], (4096, 1000)
    first = [_saved("copy bandwidth", (1,), "limit", 1.0),
             _saved("softmax", target, "jaxsoft", 2.0, 1.5, gbps=8.4),
             _saved("softmax", target, "jax.nn", 4.0, 2.0), _saved("softmax", target, "torch", 8.0),
             _saved("softmax", target, "jaxsoft", 9.0, env="malloc_reuse"),
             _saved("CE", target, "jaxsoft", 3.0), _saved("CE", target, "optax", 2.0),
             _saved("CE", beside, "jaxsoft", 1.0), _saved("CE", beside, "optax", 2.0),
             _saved("MLP", (10, 784), "jaxsoft", 1.0)]
    second = [_saved("softmax", target, "jaxsoft", 3.0, 1.0),
              _saved("softmax", target, "jax.nn", 2.0, 2.0),
              _saved("CE", target, "jaxsoft", 1.0)]  # its optax row missing
    paths = []
    for i, run in enumerate((first, second)):
        paths.append(tmp_path / f"run{i}.json")
        paths[-1].write_text(json.dumps(run))
    assert cli.main(["bench", "--summary", *map(str, paths)]) == 0
    out = capsys.readouterr().out
    shape = "×".join(map(str, target))
    assert (f"| softmax | {shape} | float32 | 2 | 84% copy | jax.nn | 4 | 0.50 (0.75) | "
            "1.50 (0.50) | 8 |") in out
    assert f"| CE | {shape} | float32 | 3 |  | optax | 2 | 1.50 | — |  |" in out
    assert "| CE | 4096×1000 | float32 | 1 |  | optax | 2 | 0.50 | — |  |" in out
    assert "MLP" not in out and "copy bandwidth" not in out
    assert out.rstrip().endswith("at or below 1.0×: 1 of 2 (run 1; 1 by fastest calls), "
                                 "0 of 1 (run 2; 1 by fastest calls)")


def test_summary_of_a_malloc_reuse_run_shows_its_rows(tmp_path, capsys):
    target = benchmarks.TARGET_SHAPES[0]
    path = tmp_path / "reuse.json"
    path.write_text(json.dumps([_saved("softmax", target, "jaxsoft", 1.0, env="malloc_reuse"),
                                _saved("softmax", target, "jax.nn", 2.0, env="malloc_reuse")]))
    assert cli.main(["bench", "--summary", str(path)]) == 0
    out = capsys.readouterr().out
    assert "| jax.nn | 2 | 0.50 |" in out and "1 of 1 (run 1" in out
