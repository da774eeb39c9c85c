"""Grids of hyperparameter values: what a sweep may vary, its cells, and their checks.

A grid is a dict from a hyperparameter's name (a numeric ``experiments.Config`` field such
as ``weight_l2``, or an optimizer argument such as ``learning_rate``) to the values it
takes; its *cells* are every combination of values. ``purenn.sweep`` trains them;
``check_grid`` refuses a grid before anything is trained: an unknown name, an empty or
repeated list of values, two values that are one number in the precision the runs compute
in (``0.1`` and ``0.100000001`` in float32), or more than ``max_cells`` cells.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence

import jax
import numpy as np

from purenn.experiments import OPTIMIZERS, Config

__all__ = [
    "CONFIG_FIELDS",
    "FILE_SIZED",
    "INTEGER_FIELDS",
    "MAX_CELLS",
    "OPTIMIZER_ARGS",
    "SWEEPABLE",
    "apply_values",
    "cells",
    "check_grid",
    "count_cells",
    "same_values",
]

# Config fields a grid may vary (numbers), then the optimizers' arguments.
CONFIG_FIELDS = ("samples", "classes", "validation_samples", "weight_l1", "weight_l2",
                 "bias_l1", "bias_l2", "dropout", "epochs", "batch_size")
INTEGER_FIELDS = ("samples", "classes", "validation_samples", "epochs", "batch_size")
FILE_SIZED = ("samples", "classes", "validation_samples")  # a data file sets these
OPTIMIZER_ARGS = ("learning_rate", "decay", "momentum", "epsilon", "rho", "beta_1",
                  "beta_2")
SWEEPABLE = CONFIG_FIELDS + OPTIMIZER_ARGS
# The most cells a grid has unless its caller asks for more: past it a typo (a value list
# pasted twice, an extra option) is more likely than a wish to train for weeks.
MAX_CELLS = 100_000


def cells(grid: Mapping[str, Sequence[float]]) -> list[dict[str, float]]:
    """The grid's cells, every combination of values, in order: the last name varies
    fastest (``itertools.product``). ``cells({})`` is one empty cell."""
    names = list(grid)
    return [dict(zip(names, combination))
            for combination in itertools.product(*(grid[name] for name in names))]


def count_cells(grid: Mapping[str, Sequence[float]]) -> int:
    """How many cells ``grid`` has (the product of its lists' lengths), without making
    them."""
    return math.prod(len(values) for values in grid.values())


def apply_values(config: Config, values: Mapping[str, float]) -> Config:
    """``config`` with ``values`` (hyperparameter name -> value) put in: a ``Config``
    field, or an argument of its optimizer (added to ``optimizer_args`` when missing)."""
    fields = {name: value for name, value in values.items() if name in CONFIG_FIELDS}
    arguments = dict(config.optimizer_args)
    for name, value in values.items():
        if name in OPTIMIZER_ARGS:
            arguments[name] = value
        elif name not in CONFIG_FIELDS:
            raise ValueError(f"{name!r} is not a hyperparameter a sweep can vary; choose "
                             f"from {', '.join(SWEEPABLE)}")
    return dataclasses.replace(config, **fields, optimizer_args=tuple(arguments.items()))


def same_values(name: str, values: Sequence[float]) -> tuple[list[list[float]], str]:
    """The groups (two or more each) of ``values`` of hyperparameter ``name`` that are one
    number where the runs compute with them, and that precision's name: integer fields
    (``INTEGER_FIELDS``) as integers; the others in JAX's default float (float32, or
    float64 when ``jax_enable_x64`` is on). E.g. ``same_values("learning_rate", [0.1,
    0.100000001, 0.2])`` is ``([[0.1, 0.100000001]], "float32")`` in float32."""
    if name in INTEGER_FIELDS:
        precision, keys = "integers", list(values)
    else:
        dtype = jax.dtypes.canonicalize_dtype(np.float64)
        precision = np.dtype(dtype).name
        with np.errstate(over="ignore"):  # 1e300 and 1e301 are both inf in float32
            keys = [np.asarray(value, dtype=dtype).item() for value in values]
    groups: dict[float, list[float]] = {}
    for key, value in zip(keys, values):
        groups.setdefault(key, []).append(value)
    return [group for group in groups.values() if len(group) > 1], precision


def check_grid(config: Config, grid: Mapping[str, Sequence[float]], *,
               max_cells: int = MAX_CELLS) -> dict[str, list]:
    """``grid`` as a dict of lists, checked against ``config`` (its optimizer's
    arguments); anything wrong is a ``ValueError`` or ``TypeError`` naming the entry."""
    if not isinstance(grid, Mapping):
        raise TypeError(f"grid must be a dict from a hyperparameter's name to its values, "
                        f"e.g. {{'weight_l2': [0, 5e-4]}}; got {type(grid).__name__}")
    if isinstance(max_cells, bool) or not isinstance(max_cells, (int, np.integer)) or (
            max_cells < 1):
        raise ValueError(f"max_cells must be a positive integer; got {max_cells!r}")
    checked = {}
    for name, values in grid.items():
        if name not in SWEEPABLE:
            raise ValueError(f"grid: {name!r} is not a hyperparameter a sweep can vary; "
                             f"choose from {', '.join(SWEEPABLE)}")
        if name in OPTIMIZER_ARGS and name not in OPTIMIZERS[config.optimizer]:
            raise ValueError(f"grid: {name!r} is not an argument of {config.optimizer} "
                             f"(it takes {', '.join(OPTIMIZERS[config.optimizer])})")
        if config.is_file and name in FILE_SIZED:
            raise ValueError(f"grid: {name!r} sizes the built-in data sets; "
                             f"{config.data!r} gives its own samples and classes")
        if isinstance(values, np.ndarray) and values.ndim == 1:
            values = values.tolist()
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise TypeError(f"grid[{name!r}] must be a list of values; got "
                            f"{type(values).__name__}")
        values = list(values)
        if not values:
            raise ValueError(f"grid[{name!r}] is empty; give at least one value")
        if len(set(values)) != len(values):
            raise ValueError(f"grid[{name!r}] repeats a value: {values}")
        groups, precision = same_values(name, values)
        if groups:
            raise ValueError(f"grid[{name!r}]: {' and '.join(map(repr, groups[0]))} are the "
                             f"same value in {precision}, the precision the runs compute "
                             f"in; keep one of them")
        checked[name] = values
    count = count_cells(checked)
    if count > max_cells:
        sizes = " x ".join(f"{len(values)} {name}" for name, values in checked.items())
        raise ValueError(f"grid has {count} cells ({sizes}), more than max_cells="
                         f"{max_cells}; pass max_cells={count} to train them all")
    return checked
