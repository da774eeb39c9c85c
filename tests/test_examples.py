"""The scripts in examples/: each runs, prints the book's lines, learns, and prints exactly
what ``purenn book <experiment>`` prints for the same seed and epochs.

The scripts run in this process (``runpy``, as ``python examples/<script>.py`` runs them,
in float32), so that they and the CLI share compiled programs."""

import contextlib
import functools
import io
import re
import runpy
import sys
from pathlib import Path

import pytest

from tests.book_runs import EPOCHS, LAST, book_run, params

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {
    "regularization": "regularization",
    "more_data": "more-data",
    "wider": "wider",
    "dropout": "dropout",
    "dropout_wider": "dropout-wider",
    "binary": "binary",
    "regression": "regression",
}
NO_VALIDATION = {"regression"}  # chapter 17 trains on the sine wave with no validation set

LOG = re.compile(r"^epoch: (\d+), acc: (\d\.\d{3}), loss: (\d+\.\d{3}) "
                 r"\(data_loss: (\d+\.\d{3}), reg_loss: (\d+\.\d{3})\), lr: [0-9.e-]+$")
VALIDATION = re.compile(r"^validation, acc: \d\.\d{3}, loss: \d+\.\d{3}$")


def run_script(script: str, *args: str) -> str:
    """What ``python examples/<script>.py <args>`` prints."""
    path = ROOT / "examples" / f"{script}.py"
    out, argv = io.StringIO(), sys.argv
    sys.argv = [str(path), *args]
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(str(path), run_name="__main__")
    finally:
        sys.argv = argv
    return out.getvalue()


run_example = functools.cache(run_script)


def test_every_experiment_has_an_example():
    from purenn import experiments

    assert sorted(name.replace("-", "_") for name in experiments.BOOK) == sorted(EXAMPLES)
    assert all((ROOT / "examples" / f"{script}.py").is_file() for script in EXAMPLES)


@pytest.mark.parametrize("script", params(EXAMPLES))
def test_example_prints_the_books_lines_and_learns(script):
    logs = run_example(script, "--epochs", str(EPOCHS), "--seed", "0").splitlines()
    if script not in NO_VALIDATION:
        last = logs.pop()
        assert VALIDATION.match(last), last
    matches = [LOG.match(line) for line in logs]
    assert all(matches), [line for line, m in zip(logs, matches) if not m]
    assert [int(m[1]) for m in matches] == [0, LAST]
    losses = [float(m[3]) for m in matches]
    assert losses[-1] < losses[0]
    for m in matches:  # loss = data_loss + reg_loss, to the printed rounding
        assert abs(float(m[3]) - float(m[4]) - float(m[5])) <= 0.0015


@pytest.mark.parametrize("script", params(EXAMPLES))
def test_example_prints_what_the_cli_prints(script):
    example = run_example(script, "--epochs", str(EPOCHS), "--seed", "0")
    code, out, err = book_run(EXAMPLES[script])  # the same run as tests/test_cli.py's
    assert code == 0, err
    assert out == example


def test_example_seed_changes_the_run():
    first = run_example("regularization", "--epochs", str(EPOCHS), "--seed", "0")
    again = run_script("regularization", "--epochs", str(EPOCHS), "--seed", "0")
    other = run_example("regularization", "--epochs", str(EPOCHS), "--seed", "1")
    assert first.splitlines()[-1] != other.splitlines()[-1]
    assert again == first
