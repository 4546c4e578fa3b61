"""The examples run as plain scripts and print what they claim."""

import pathlib
import subprocess
import sys

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def test_softmax_exercises_prints_the_seeds_numbers():
    out = subprocess.run([sys.executable, str(EXAMPLES / "softmax_exercises.py")],
                         capture_output=True, text=True, check=True).stdout
    assert "Opgave 59  softmax([-1, 0, 1]) = [0.09   0.2447 0.6652]" in out
    assert "minimal at y_A = 0.6" in out
    assert "true label B: quadratic = 0.5, cross-entropy = 0.9163" in out
    assert "d = 16.0: |grad| quadratic + softmax = 2.38e-07, cross-entropy = 1" in out
