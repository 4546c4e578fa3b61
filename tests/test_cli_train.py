"""`python -m jaxsoft train`: tables, JSON, checkpoint/resume through the CLI, heads per data."""

import json

import pytest

from jaxsoft import cli


def test_train_digits_json_and_resume(tmp_path, capsys):
    out_json, ckpt = tmp_path / "r.json", tmp_path / "run.ckpt"
    args = ["train", "--epochs", "2", "--models", "2", "--lr", "0.1,0.5", "--no-progress",
            "--json", str(out_json), "--checkpoint", str(ckpt)]
    assert cli.main(args) == 0
    first = json.loads(out_json.read_text())
    assert [r["config"]["learning_rate"] for r in first] == [0.1, 0.5]
    for r in first:
        assert {"config", "test_accuracy_best_mean", "test_accuracy_best_std",
                "test_accuracy_final_mean", "seconds"} <= set(r)
        assert 0.5 < r["test_accuracy_best_mean"] <= 1
    table = capsys.readouterr().out
    assert "| digits | 64-30-10 | sigmoid | categorical | 0.1 | 2 | 2 |" in table
    # resuming the finished 2-epoch run up to 3 epochs trains exactly one more epoch
    assert cli.main([*args[:2], "3", *args[3:]]) == 0
    assert json.loads(out_json.read_text())[0]["epochs"] == 3


@pytest.mark.parametrize("data,head", [("breast_cancer", "bernoulli"), ("iris", "multilabel"),
                                       ("iris", "sigmoid_quadratic"),
                                       ("iris_regression", "laplace")])
def test_train_other_heads(data, head, capsys):
    assert cli.main(["train", "--data", data, "--head", head, "--epochs", "2", "--models", "2",
                     "--no-progress"]) == 0
    assert f"| {data} |" in capsys.readouterr().out


def test_bernoulli_head_needs_two_classes():
    with pytest.raises(ValueError, match="bernoulli head needs 2 classes, iris has 3"):
        cli.main(["train", "--data", "iris", "--head", "bernoulli", "--epochs", "1",
                  "--no-progress"])


def test_train_plot(tmp_path, capsys):
    png = tmp_path / "curves.png"
    assert cli.main(["train", "--data", "iris", "--epochs", "2", "--models", "2",
                     "--no-progress", "--plot", str(png)]) == 0
    assert png.stat().st_size > 1000 and f"wrote {png}" in capsys.readouterr().out
