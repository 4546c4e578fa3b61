"""`python -m jaxsoft bench --quick` runs and writes its rows; no timing is asserted."""

import json

from jaxsoft import cli


def test_bench_quick_writes_rows(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert cli.main(["bench", "--quick", "--reps", "1", "--json", str(path)]) == 0
    rows = json.loads(path.read_text())
    assert all({"workload", "shape", "dtype", "impl", "median_ms"} <= set(r) for r in rows)
    impls = {r["impl"] for r in rows}
    assert {"jaxsoft", "jax.nn", "optax", "numpy", "limit"} <= impls
    workloads = {r["workload"] for r in rows}
    assert {"softmax", "log_softmax", "CE integer labels value_and_grad",
            "CE one-hot value_and_grad", "sigmoid BCE value_and_grad"} <= workloads
    assert all(r["median_ms"] > 0 for r in rows)
    assert "| workload | shape | impl | median ms |" in capsys.readouterr().out
