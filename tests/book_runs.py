"""``purenn book <experiment> --epochs 31 --seed 0``, run once per test session in this
process and shared by the tests that read what it prints (tests/test_cli.py,
tests/test_examples.py): the larger experiments take seconds each, and the same run
serves every check of its lines."""

from __future__ import annotations

import functools

import pytest

from tests.cli_calls import call

EPOCHS = 31  # two log lines: epoch 0 and the last, 30
LAST = EPOCHS - 1
# Enough for every experiment to print a lower loss on its last line (the slowest learner,
# ``binary``, Adam at 0.001: 0.693 -> 0.691), in a third of 101 epochs' CPU.
# The experiments whose epochs take longest: their tests run where programs are
# compiled with LLVM's optimizations (tests/compiling.py), several times faster.
LONG = {"dropout-wider"}


def params(names) -> list:
    """``names`` for ``pytest.mark.parametrize``: those of ``LONG`` experiments (``-``
    or ``_`` in their names) marked ``optimized``."""
    return [pytest.param(name, marks=pytest.mark.optimized)
            if name.replace("_", "-") in LONG else name for name in names]


@functools.cache
def book_run(name: str) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of ``purenn book NAME --epochs 31 --seed 0`` run
    in this process, in float32 (``tests/cli_calls.call``)."""
    return call(["book", name, "--epochs", EPOCHS, "--seed", 0])
