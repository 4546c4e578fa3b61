"""The examples run as plain scripts and print what they claim."""

import pathlib
import subprocess
import sys

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def test_softmax_exercises_prints_the_seeds_numbers(tmp_path):
    png = tmp_path / "ex.png"
    out = subprocess.run([sys.executable, str(EXAMPLES / "softmax_exercises.py"), "--png",
                          str(png)], capture_output=True, text=True, check=True).stdout
    assert png.exists() and png.stat().st_size > 1000
    assert "Opgave 59  softmax([-1, 0, 1]) = [0.09   0.2447 0.6652]" in out
    assert "minimal at y_A = 0.6" in out
    assert "true label B: quadratic = 0.5, cross-entropy = 0.9163" in out
    assert "d = 16.0: |grad| quadratic + softmax = 2.38e-07, cross-entropy = 1" in out


def test_learning_slowdown_reproduces_seed_001(tmp_path):
    png = tmp_path / "slowdown.png"
    out = subprocess.run([sys.executable, str(EXAMPLES / "learning_slowdown.py"), "--png",
                          str(png)], capture_output=True, text=True, check=True).stdout
    lines = {line.split(":")[0]: line for line in out.splitlines()}
    # quadratic from (0.6, 0.9) ends near 0.09; from (2, 2) it has barely moved at epoch 151
    assert "epoch 300: a = 0.094" in lines["(w, b) = (0.6, 0.9),     quadratic"]
    assert "epoch 151: a = 0.933" in lines["(w, b) = (2.0, 2.0),     quadratic"]
    assert "epoch 51: a = 0.099" in lines["(w, b) = (2.0, 2.0), cross-entropy"]
    assert png.exists() and png.stat().st_size > 1000


def test_nielsen_mnist_runs_on_the_real_files(tmp_path):
    """A one-epoch, two-seed smoke run of the seed's MNIST table (the full run is in README)."""
    data_dir = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    assert data_dir.is_dir(), f"MNIST files expected at {data_dir} (shared/ beside the clone)"
    out = subprocess.run([sys.executable, str(EXAMPLES / "nielsen_mnist.py"), "--data-dir",
                          str(data_dir), "--epochs", "1", "--models", "2", "--hidden", "30",
                          "--png", str(tmp_path / "n.png")],
                         capture_output=True, text=True, check=True).stdout
    rows = [line for line in out.splitlines() if line.startswith("| 784-30-10")]
    assert len(rows) == 4  # two configurations, printed as they finish and in the table
    accuracy = float(rows[-1].split("|")[5].split("±")[0])
    assert accuracy > 80  # one epoch of either cost already classifies MNIST


def _run(script, *args):
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args],
                          capture_output=True, text=True, check=True).stdout


def test_output_heads_mean_median_and_label_structure(tmp_path):
    out = _run("output_heads.py", "--png", str(tmp_path / "h.png"))
    gauss = next(line for line in out.splitlines() if "gaussian head →" in line).split()
    laplace = next(line for line in out.splitlines() if "laplace head →" in line).split()
    assert abs(float(gauss[3]) - float(gauss[6])) < 1e-3  # fitted constant = sample mean
    assert abs(float(laplace[3]) - float(laplace[6])) < 1e-3  # = sample median
    same = float(out.split("at the same weights:")[1].split()[0])
    assert same < 1e-6  # one sigmoid = two-class softmax
    for line in [ln for ln in out.splitlines() if "independent sigmoids" in ln]:
        sig = float(line.split("sigmoids ")[1].split(" %")[0])
        soft = float(line.split("1/3) ")[1].split(" %")[0])
        assert sig > soft  # a softmax cannot say yes to several labels


def test_perceptron_stops_at_zero_mistakes(tmp_path):
    out = _run("perceptron.py", "--png", str(tmp_path / "p.png"))
    for line in out.splitlines()[:2]:
        assert "no mistakes from epoch" in line and "epoch None" not in line


def test_next_token_loss_falls_and_the_chunked_head_plans_less_memory(tmp_path):
    png = tmp_path / "next_token.png"
    out = _run("next_token.py", "--quick", "--plot", str(png))
    held = [float(line.split("held-out loss")[1]) for line in out.splitlines()
            if line.startswith("step")]
    assert len(held) >= 3 and held[-1] < held[0] - 1  # from ln V at step 0
    temp = {cells[1].strip(): float(cells[3]) for cells in
            (line.split("|") for line in out.splitlines() if line.startswith(("| naive", "| lin")))}
    assert len(temp) == 4  # two naive heads, linear_cross_entropy's default and token_chunk
    # XLA's planned temporaries of one training step: the chunked head's are below the naive's
    assert temp["linear_cross_entropy, token_chunk=128"] < temp["naive: optax CE of h @ w_out + b"]
    assert png.exists() and png.stat().st_size > 1000
