"""The scripts in examples/: each runs, prints the book's lines, learns, and prints exactly
what ``purenn book <experiment>`` prints for the same seed and epochs."""

import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from purenn import cli

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {
    "regularization": "regularization",
    "more_data": "more-data",
    "wider": "wider",
    "dropout": "dropout",
    "dropout_wider": "dropout-wider",
    "binary": "binary",
}
EPOCHS = 201

LOG = re.compile(r"^epoch: (\d+), acc: (\d\.\d{3}), loss: (\d+\.\d{3}) "
                 r"\(data_loss: (\d+\.\d{3}), reg_loss: (\d+\.\d{3})\), lr: [0-9.e-]+$")
VALIDATION = re.compile(r"^validation, acc: \d\.\d{3}, loss: \d+\.\d{3}$")


@functools.cache
def run_example(script: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / f"{script}.py"), *args],
        capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_every_experiment_has_an_example():
    from purenn import experiments

    assert sorted(name.replace("-", "_") for name in experiments.BOOK) == sorted(EXAMPLES)
    assert all((ROOT / "examples" / f"{script}.py").is_file() for script in EXAMPLES)


@pytest.mark.parametrize("script", EXAMPLES)
def test_example_prints_the_books_lines_and_learns(script):
    lines = run_example(script, "--epochs", str(EPOCHS), "--seed", "0").splitlines()
    *logs, last = lines
    matches = [LOG.match(line) for line in logs]
    assert all(matches), [line for line, m in zip(logs, matches) if not m]
    assert [int(m[1]) for m in matches] == [0, 100, 200]
    assert VALIDATION.match(last), last
    losses = [float(m[3]) for m in matches]
    assert losses[-1] < losses[0]
    for m in matches:  # loss = data_loss + reg_loss, to the printed rounding
        assert abs(float(m[3]) - float(m[4]) - float(m[5])) <= 0.0015


@pytest.fixture
def float32():
    with jax.enable_x64(False):  # what a user's script gets (conftest turns x64 on)
        yield


@pytest.mark.parametrize("script", EXAMPLES)
def test_example_prints_what_the_cli_prints(script, capsys, float32):
    example = run_example(script, "--epochs", str(EPOCHS), "--seed", "0")
    assert cli.main(["book", EXAMPLES[script], "--epochs", str(EPOCHS), "--seed", "0"]) == 0
    assert capsys.readouterr().out == example


def test_example_seed_changes_the_run():
    first = run_example("regularization", "--epochs", "101", "--seed", "0")
    again = run_example.__wrapped__("regularization", "--epochs", "101", "--seed", "0")
    other = run_example("regularization", "--epochs", "101", "--seed", "1")
    assert first.splitlines()[-1] != other.splitlines()[-1]
    assert again == first
