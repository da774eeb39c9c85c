"""Hyperparameter sweeps: a grid of values, times seeds, each run exactly as ``purenn train``.

A sweep starts from an ``experiments.Config`` (one ``purenn train`` run) and a grid, a
dict from a hyperparameter's name (a numeric ``Config`` field such as ``weight_l2`` or
``dropout``, or an optimizer argument such as ``learning_rate``) to the values it takes.
Every combination of values (a *cell*) is trained once per seed::

    >>> from purenn import experiments, sweep
    >>> base = experiments.Config(hidden=(16,), epochs=51, validation_samples=20)
    >>> results = sweep.run_grid(base, {"weight_l2": [0.0, 5e-4], "dropout": [0.0, 0.1]},
    ...                          seeds=[0, 1], progress=False)
    >>> len(results), results[0].values, results[0].seed
    (8, {'weight_l2': 0.0, 'dropout': 0.0}, 0)
    >>> sorted(results[0].metrics)
    ['train_accuracy', 'train_loss', 'val_accuracy', 'val_loss']
    >>> [cell.values for cell in sweep.summarize(results)][:2]
    [{'weight_l2': 0.0, 'dropout': 0.0}, {'weight_l2': 0.0, 'dropout': 0.1}]

Each run is the run ``purenn train`` makes of ``apply_values(config, values)`` with that
seed: the same data, initial weights, dropout masks and epoch keys, so a run's final
metrics are those the command prints.

**One compile per structure.** Runs whose models and optimizers differ only in the values
of their hyperparameters share one compiled training program: layers and optimizers are
pytrees whose hyperparameters are leaves, and ``pn.fit`` takes them as arguments of its
compiled program. A value of 0 can change a model's structure: ``Config.model()`` has no
dropout layer at rate 0 and no penalty term at strength 0. In a sweep where the dropout
rate is nonzero somewhere, every cell's model gets the dropout layer, at rate 0 where the
cell has 0: it keeps every unit and draws no mask, and the run is bit for bit the
``purenn train`` run without the layer. A penalty term of strength 0 adds 0 too, but its
program can sum the gradients in another order (a last-bit difference that 10,000 epochs
can make visible), so a sweep of ``weight_l2`` over 0 and nonzero values trains two
structures, one program each, when its runs go one after another.

**Sequential or vmapped.** On a CPU the runs go one after another through ``pn.fit``
(faster there than batching them). On an accelerator the runs of one structure are
stacked and trained together by one ``jax.vmap``-ed program, in groups that fit the
device's memory; ``mode="vmap"`` forces that on a CPU too. Vmapped runs agree with the
sequential ones (and their ``purenn train`` commands) to rounding, not bit for bit, so
there penalty terms are added at 0 as well: one structure, one program.

The ``purenn sweep`` command (bottom of this module) runs a grid given as comma lists of
``purenn train`` options and writes ``runs.csv``, ``summary.csv`` and ``sweep.png``.
"""

from __future__ import annotations

import argparse
import copy
import csv
import dataclasses
import functools
import io
import itertools
import math
import os
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import purenn as pn
from purenn import experiments
from purenn import train as _train
from purenn.experiments import OPTIMIZERS, Config
from purenn.progress import progress_bar
from purenn.pytrees import stack, unstack

__all__ = [
    "METRICS",
    "SWEEPABLE",
    "Cell",
    "Result",
    "apply_values",
    "cells",
    "plot",
    "run_grid",
    "summarize",
]

# Config fields a grid may vary (numbers), then the optimizers' arguments.
_CONFIG_FIELDS = ("samples", "classes", "validation_samples", "weight_l1", "weight_l2",
                  "bias_l1", "bias_l2", "dropout", "epochs", "batch_size")
_OPTIMIZER_ARGS = ("learning_rate", "decay", "momentum", "epsilon", "rho", "beta_1",
                   "beta_2")
SWEEPABLE = _CONFIG_FIELDS + _OPTIMIZER_ARGS
# Hyperparameters whose value 0 leaves a piece out of the model (``Config.model()``): no
# dropout layer at rate 0, no penalty term at strength 0. A sweep puts the piece, at 0, in
# every cell where some cell has it; run one after another, only where that is bit for bit
# the run without it (a dropout layer at rate 0: measured and tested); vmapped (where runs
# agree with their own commands to rounding only), always.
_ZERO_OMITS = {"sequential": ("dropout",),
               "vmap": ("dropout", "weight_l1", "weight_l2", "bias_l1", "bias_l2")}

METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")


# --- grids ----------------------------------------------------------------------------


def _check_grid(config: Config, grid: Mapping[str, Sequence[float]]) -> dict:
    if not isinstance(grid, Mapping):
        raise TypeError(f"grid must be a dict from a hyperparameter's name to its values, "
                        f"e.g. {{'weight_l2': [0, 5e-4]}}; got {type(grid).__name__}")
    checked = {}
    for name, values in grid.items():
        if name not in SWEEPABLE:
            raise ValueError(f"grid: {name!r} is not a hyperparameter a sweep can vary; "
                             f"choose from {', '.join(SWEEPABLE)}")
        if name in _OPTIMIZER_ARGS and name not in OPTIMIZERS[config.optimizer]:
            raise ValueError(f"grid: {name!r} is not an argument of {config.optimizer} "
                             f"(it takes {', '.join(OPTIMIZERS[config.optimizer])})")
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
        checked[name] = values
    return checked


def cells(grid: Mapping[str, Sequence[float]]) -> list[dict[str, float]]:
    """The grid's cells, every combination of values, in order: the last name varies
    fastest (``itertools.product``). ``cells({})`` is one empty cell."""
    names = list(grid)
    return [dict(zip(names, combination))
            for combination in itertools.product(*(grid[name] for name in names))]


def apply_values(config: Config, values: Mapping[str, float]) -> Config:
    """``config`` with ``values`` (hyperparameter name -> value) put in: a ``Config``
    field, or an argument of its optimizer (added to ``optimizer_args`` when missing)."""
    fields = {name: value for name, value in values.items() if name in _CONFIG_FIELDS}
    arguments = dict(config.optimizer_args)
    for name, value in values.items():
        if name in _OPTIMIZER_ARGS:
            arguments[name] = value
        elif name not in _CONFIG_FIELDS:
            raise ValueError(f"{name!r} is not a hyperparameter a sweep can vary; choose "
                             f"from {', '.join(SWEEPABLE)}")
    return dataclasses.replace(config, **fields, optimizer_args=tuple(arguments.items()))


# --- one compile per structure -----------------------------------------------------------


def _is_number(leaf) -> bool:
    return isinstance(leaf, (int, float, np.ndarray, np.generic, jax.Array)) and not (
        isinstance(leaf, bool))


def _zeroed_components(config: Config, zero: Sequence[str]):
    """``(model, loss, optimizer)`` of ``config`` with the hyperparameters ``zero`` (each
    0 in ``config``) present at value 0: built twice with two nonzero stand-ins, the
    leaves that differ are those hyperparameters; they are set to 0."""
    if not zero:
        return experiments.components(config)
    builds = []
    for stand_in in (0.5, 0.25):
        values = {name: stand_in for name in zero}
        builds.append(experiments.components(apply_values(config, values)))
    (model_a, loss, opt_a), (model_b, _, opt_b) = builds
    tree_a, tree_b = (model_a, opt_a), (model_b, opt_b)
    if jax.tree.structure(tree_a) != jax.tree.structure(tree_b):
        return None
    leaves = []
    for a, b in zip(jax.tree.leaves(tree_a), jax.tree.leaves(tree_b)):
        if a is b:
            leaves.append(a)
        elif not (_is_number(a) and _is_number(b)):
            return None  # hyperparameters held in closures, not leaves: nothing to share
        elif np.array_equal(np.asarray(a), np.asarray(b)):
            leaves.append(a)
        else:
            leaves.append(jnp.zeros_like(a) if isinstance(a, jax.Array)
                          else type(a)(0) if isinstance(a, (int, float))
                          else np.zeros_like(a))
    model, optimizer = jax.tree.unflatten(jax.tree.structure(tree_a), leaves)
    return model, loss, optimizer


@functools.lru_cache(maxsize=256)
def _run_components(config: Config, padding: tuple[str, ...]):
    """The model, loss and optimizer a sweep trains ``config`` with: its own, or, for
    the hyperparameters in ``padding`` that are 0 in ``config``, the pieces a nonzero
    value would add, at value 0 (see the module's docstring)."""
    zero = tuple(name for name in padding if _value(config, name) == 0)
    built = _zeroed_components(config, zero)
    return built if built is not None else experiments.components(config)


def _value(config: Config, name: str):
    if name in _CONFIG_FIELDS:
        return getattr(config, name)
    return dict(config.optimizer_args).get(name)


def _padding(grid: Mapping[str, Sequence[float]], mode: str) -> tuple[str, ...]:
    """The swept hyperparameters whose piece every cell gets: 0 in some cell and nonzero
    in another, and padded in ``mode``."""
    return tuple(name for name in grid if name in _ZERO_OMITS[mode]
                 and any(v == 0 for v in grid[name]) and any(v != 0 for v in grid[name]))


def _restructure(tree, like):
    """``tree``'s leaves in ``like``'s structure (parameterless layers have no leaves, so
    the params of a model with or without a dropout layer hold the same leaves)."""
    return jax.tree.unflatten(jax.tree.structure(like), jax.tree.leaves(tree))


# --- results --------------------------------------------------------------------------


class Result(NamedTuple):
    """One trained run of a sweep."""

    values: dict[str, float]  # this run's grid values, e.g. {"weight_l2": 5e-4}
    seed: int
    config: Config  # the whole run: the base config with ``values`` put in
    metrics: dict[str, float]  # METRICS: the last epoch's training loss and accuracy (as
    #   purenn train prints them) and the validation loss and accuracy (NaN without a
    #   validation set); all NaN when the run diverged
    history: dict  # as pn.fit returns it: metric -> (epochs,) NumPy array
    params: Any  # the trained params, structured as ``config.model().init`` returns them
    diverged_at: int | None  # the first epoch whose loss was not finite, or None


def _metrics(history, validation) -> dict[str, float]:
    def last(name):
        return float(history[name][-1]) if name in history and len(history[name]) else (
            math.nan)

    nan = math.nan
    return {"train_loss": last("loss"), "train_accuracy": last("accuracy"),
            "val_loss": nan if validation is None else float(validation["loss"]),
            "val_accuracy": nan if validation is None or "accuracy" not in validation
            else float(validation["accuracy"])}


_NAN_METRICS = dict.fromkeys(METRICS, math.nan)


# --- running ------------------------------------------------------------------------------


class _Data:
    """Each seed's data, made once per data shape and shared by every cell."""

    def __init__(self):
        self._cache = {}

    def get(self, config: Config, seed: int):
        key = (seed, config.data, config.samples, config.classes, config.binary,
               config.validation_samples)
        if key not in self._cache:
            k_train, k_val, _, _ = experiments.seed_keys(seed)
            X, y = config.make_data(k_train, config.samples)
            validation = (config.make_data(k_val, config.validation_samples)
                          if config.validation_samples else None)
            self._cache[key] = X, y, validation
        return self._cache[key]


def _initial_params(config: Config, model, seed: int):
    """The initial params ``purenn train`` starts ``config`` from, in ``model``'s
    structure."""
    _, _, k_init, _ = experiments.seed_keys(seed)
    own = experiments.components(config)[0].init(k_init)
    return _restructure(own, jax.eval_shape(model.init, k_init))


def run_grid(config: Config, grid: Mapping[str, Sequence[float]], seeds: Sequence[int], *,
             mode: str | None = None, on_result: Callable[[Result], Any] | None = None,
             skip: Callable[[dict, int], bool] | None = None,
             progress: bool | None = None) -> list[Result]:
    """Train every cell of ``grid`` once per seed, starting from ``config``.

    Args:
      config: the base run (an ``experiments.Config``, as ``purenn train`` builds one).
      grid: hyperparameter name -> the values it takes; names from ``SWEEPABLE``
        (``Config`` fields such as ``weight_l2`` and ``dropout``, and the arguments of
        ``config.optimizer`` such as ``learning_rate``). ``{}`` trains ``config`` alone.
      seeds: the seeds; each cell is trained once per seed, as ``purenn train --seed s``.
      mode: ``"sequential"`` (one ``pn.fit`` after another), ``"vmap"`` (the runs of one
        structure stacked and trained by one vmapped program), or None for
        ``default_mode()``: sequential on a CPU, vmap on an accelerator.
      on_result: called with each ``Result`` as soon as its run ends (in vmap mode, as
        its group ends), e.g. to write it to a file.
      skip: ``skip(values, seed) -> bool``: leave that run out (e.g. done before).
      progress: a tqdm bar over the runs; None: on when stderr is a terminal.

    Returns:
      One ``Result`` per run, in the order of ``cells(grid)`` with seeds innermost. A run
      whose loss diverges gets NaN metrics and its first bad epoch in ``diverged_at``;
      the other runs go on.

    Example::

        from purenn import experiments, sweep
        base = experiments.BOOK["regularization"].config
        results = sweep.run_grid(base, {"weight_l2": [0, 1e-4, 5e-4, 1e-3]},
                                 seeds=range(3))
        for cell in sweep.summarize(results):
            print(cell.values, cell.mean["val_accuracy"], cell.std["val_accuracy"])
    """
    if not isinstance(config, Config):
        raise TypeError(f"config must be an experiments.Config; got {type(config).__name__}")
    grid = _check_grid(config, grid)
    seeds = [_check_seed(seed) for seed in seeds]
    if not seeds:
        raise ValueError("seeds is empty; give at least one seed, e.g. seeds=[0]")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds repeats a seed: {seeds}")
    mode = experiments.default_mode() if mode is None else mode
    if mode not in ("sequential", "vmap"):
        raise ValueError(f"mode must be 'sequential' or 'vmap' (or None); got {mode!r}")
    padding = _padding(grid, mode)
    runs = []
    for values in cells(grid):
        run_config = apply_values(config, values)
        experiments.components(run_config)  # check every cell's values before training
        runs.extend((values, seed, run_config) for seed in seeds
                    if skip is None or not skip(values, seed))

    bar = progress_bar(progress, len(runs), unit="run", minimum=1)
    results: list[Result] = []

    def done(result):
        results.append(result)
        if on_result is not None:
            on_result(result)
        if bar is not None:
            bar.update(1)

    data = _Data()
    try:
        if mode == "sequential":
            for values, seed, run_config in runs:
                done(_train_one(run_config, values, seed, padding, data))
        else:
            _train_vmapped(runs, padding, data, done)
    finally:
        if bar is not None:
            bar.close()
    order = {(tuple(values.items()), seed): i for i, (values, seed, _) in enumerate(runs)}
    return sorted(results, key=lambda r: order[(tuple(r.values.items()), r.seed)])


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not (
            0 <= seed < 2**31):
        raise ValueError(f"seeds must be integers in [0, 2**31); got {seed!r}")
    return int(seed)


def _train_one(config: Config, values: dict, seed: int, padding, data: _Data) -> Result:
    """One run, exactly as ``experiments.run`` (``purenn train``) trains it."""
    model, loss, optimizer = _run_components(config, padding)
    X, y, validation = data.get(config, seed)
    params = _initial_params(config, model, seed)
    _, _, _, k_fit = experiments.seed_keys(seed)
    own_model = experiments.components(config)[0]
    try:
        params, _, history = pn.fit(model, loss, optimizer, params, X, y, key=k_fit,
                                    epochs=config.epochs, batch_size=config.batch_size,
                                    log_every=None, log_fn=None, progress=False)
    except pn.DivergenceError as err:
        return Result(dict(values), seed, config, dict(_NAN_METRICS), err.history,
                      _restructure(err.params, _shape_of(own_model, seed)), err.epoch)
    metrics = None if validation is None else pn.evaluate(model, loss, params, *validation)
    return Result(dict(values), seed, config, _metrics(history, metrics), history,
                  _restructure(params, _shape_of(own_model, seed)), None)


def _shape_of(model, seed):
    return jax.eval_shape(model.init, experiments.seed_keys(seed)[2])


def _structure(config: Config, padding):
    """What runs must share to be stacked: the model's and optimizer's structure (static
    parts included), the loss, the data's shapes, the epochs and the batch size."""
    model, loss, optimizer = _run_components(config, padding)
    numeric = all(_is_number(leaf) for leaf in jax.tree.leaves((model, optimizer)))
    return (jax.tree.structure((model, optimizer)), loss, numeric, config.data,
            config.samples, config.classes, config.binary, config.validation_samples,
            config.epochs, config.batch_size)


_MEMORY_FRACTION = 0.5  # of the device's memory, for one vmapped group
_FALLBACK_MEMORY = 2**30  # bytes, when the device does not say


def _group_size(config: Config, params, count: int) -> int:
    """How many runs of ``config`` one vmapped program trains at once: as many as fit in
    ``_MEMORY_FRACTION`` of the device's memory, by a generous per-run estimate (params,
    gradients and optimizer moments, each kept twice by the loop, the data, and the
    activations of a batch)."""
    itemsize = jnp.zeros((), jnp.float64).dtype.itemsize  # float32, or float64 with x64
    n_params = sum(np.size(leaf) for leaf in jax.tree.leaves(params))
    batch = config.batch_size or config.samples * config.classes
    per_run = itemsize * (12 * n_params + 4 * (config.samples + config.validation_samples)
                          * config.classes + 8 * batch * sum(config.hidden)
                          + 8 * _train.CHUNK)
    try:
        stats = jax.devices()[0].memory_stats() or {}
    except (RuntimeError, NotImplementedError, AttributeError):  # not every backend says
        stats = {}
    budget = _MEMORY_FRACTION * stats.get("bytes_limit", _FALLBACK_MEMORY)
    return int(max(1, min(count, budget // max(per_run, 1))))


def _train_vmapped(runs, padding, data: _Data, done):
    """The runs of each structure, stacked and trained by one vmapped program, in groups
    that fit the device's memory; a group in which some run diverges is trained again
    run by run, so that only that run gets NaN."""
    groups: dict[tuple, list] = {}
    for run in runs:
        groups.setdefault(_structure(run[2], padding), []).append(run)
    for key, members in groups.items():
        if not key[2]:  # a hyperparameter that is not a number (a schedule): no stacking
            for values, seed, config in members:
                done(_train_one(config, values, seed, padding, data))
            continue
        config = members[0][2]
        model = _run_components(config, padding)[0]
        size = _group_size(config, _initial_params(config, model, members[0][1]),
                           len(members))
        for first in range(0, len(members), size):
            for result in _train_group(members[first:first + size], padding, data):
                done(result)


def _train_group(members, padding, data: _Data) -> list[Result]:
    components = [_run_components(config, padding) for _, _, config in members]
    models = [c[0] for c in components]
    loss = components[0][1]
    optimizers = [c[2] for c in components]
    inputs = [data.get(config, seed) for _, seed, config in members]
    params = [_initial_params(config, model, seed)
              for (_, seed, config), model in zip(members, models)]
    keys = jnp.stack([experiments.seed_keys(seed)[3] for _, seed, _ in members])
    config = members[0][2]
    try:
        trained, _, history = experiments.fit_seeds(
            stack(models), loss, stack(optimizers), stack(params),
            stack([i[0] for i in inputs]), stack([i[1] for i in inputs]), keys=keys,
            epochs=config.epochs, batch_size=config.batch_size, progress=False,
            stacked=True)
    except experiments.SeedsDivergedError:
        return [_train_one(config, values, seed, padding, data)
                for values, seed, config in members]
    results = []
    for i, ((values, seed, config), model) in enumerate(zip(members, models)):
        own = unstack(trained, i)
        run_history = {name: (v if name == "epoch" else v[i]) for name, v in history.items()}
        validation = inputs[i][2]
        metrics = None if validation is None else pn.evaluate(model, loss, own, *validation)
        own_model = experiments.components(config)[0]
        results.append(Result(dict(values), seed, config, _metrics(run_history, metrics),
                              run_history, _restructure(own, _shape_of(own_model, seed)),
                              None))
    return results


# --- summaries --------------------------------------------------------------------------


class Cell(NamedTuple):
    """One cell of a grid: the mean and standard deviation (ddof=1) over its seeds."""

    values: dict[str, float]
    seeds: list[int]
    mean: dict[str, float]  # METRICS and "gap" (training minus validation accuracy)
    std: dict[str, float]  # 0 for a single seed
    per_seed: dict[str, list[float]]  # each metric's value for each of ``seeds``


def summarize(results: Sequence[Result]) -> list[Cell]:
    """Each cell's mean ± std (ddof=1) over its seeds of every metric in ``METRICS`` and
    of ``gap``, the training minus the validation accuracy; cells in order of first
    appearance in ``results``."""
    groups: dict[tuple, list[Result]] = {}
    for result in results:
        groups.setdefault(tuple(result.values.items()), []).append(result)
    summary = []
    for key, group in groups.items():
        mean, std, per_seed = {}, {}, {}
        for name in (*METRICS, "gap"):
            values = [_gap(r.metrics) if name == "gap" else r.metrics[name] for r in group]
            mean[name], std[name] = experiments.mean_std(values)
            if any(math.isnan(v) for v in values):
                mean[name] = std[name] = math.nan
            per_seed[name] = values
        summary.append(Cell(dict(key), [r.seed for r in group], mean, std, per_seed))
    return summary


def _gap(metrics):
    return metrics["train_accuracy"] - metrics["val_accuracy"]


# --- the picture -------------------------------------------------------------------------

_FEW = 3  # two options, one with at most this many values: lines, not heat maps
_LABELS = {"train_accuracy": "training acc", "val_accuracy": "validation acc",
           "gap": "gap (training - validation acc)"}


def _label(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def plot(path: str | os.PathLike, summary: Sequence[Cell], grid: Mapping[str, Sequence]
         ) -> None:
    """Write a PNG of a sweep's ``summary`` (from ``summarize``) over ``grid``: the
    training and validation accuracy and their gap against the swept values, mean ± std
    over seeds. One swept option: accuracy and gap against its values. Two, one of them
    with at most 3 values: the same, one line per value of that one. Two with more
    values: heat maps of the validation accuracy, the training accuracy and the gap, each
    cell annotated with its mean ± std. More: one column per option, each value's mean ±
    std over every run that has it. Needs matplotlib."""
    from purenn import plotting

    plotting.require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(grid)
    if not names:
        raise ValueError("nothing to plot: the grid varies no hyperparameter")
    seeds = sorted({len(cell.seeds) for cell in summary})
    over = f"mean ± std over {seeds[0] if len(seeds) == 1 else 'the'} seeds"
    few = [name for name in names if len(grid[name]) <= _FEW]
    if len(names) == 1:
        fig = _lines(Figure, summary, grid, names[0], None, over)
    elif len(names) == 2 and few:  # lines for the option with fewer values
        line_name = min(reversed(few), key=lambda name: len(grid[name]))  # ties: the 2nd
        x_name = next(name for name in names if name != line_name)
        fig = _lines(Figure, summary, grid, x_name, line_name, over)
    elif len(names) == 2:
        fig = _heat_maps(Figure, summary, grid, names, over)
    else:
        fig = _panels(Figure, summary, grid, names)
    FigureCanvasAgg(fig)
    fig.savefig(os.fspath(path), format="png", dpi=plotting.DPI)


def _value_key(value):
    return float(value)


def _lookup(summary):
    return {tuple(_value_key(v) for v in cell.values.values()): cell for cell in summary}


def _panels(Figure, summary, grid, names):
    """Three or more options: one column per option, accuracy above, gap below."""
    from purenn import plotting

    fig = Figure(figsize=(4.6 * len(names) + 0.4, 6.4), dpi=plotting.DPI)
    axes = fig.subplots(2, len(names), squeeze=False, sharey="row")
    colours = {"train_accuracy": "tab:blue", "val_accuracy": "tab:red", "gap": "black"}
    for column, name in enumerate(names):
        values = list(grid[name])
        positions = np.arange(len(values))
        for row, metrics in enumerate((("train_accuracy", "val_accuracy"), ("gap",))):
            ax = axes[row][column]
            for offset, metric in zip((-0.04, 0.04) if len(metrics) == 2 else (0.0,),
                                      metrics):
                means, stds = [], []
                for value in values:  # every run with this value: other options, seeds
                    runs = [m for cell in summary
                            if _value_key(cell.values[name]) == _value_key(value)
                            for m in cell.per_seed[metric]]
                    mean, std = experiments.mean_std(runs) if runs else (math.nan,) * 2
                    means.append(mean)
                    stds.append(std)
                if all(math.isnan(m) for m in means):
                    continue
                ax.errorbar(positions + offset, means, yerr=stds, marker="o", capsize=4,
                            color=colours[metric], label=_LABELS[metric], linewidth=1.4)
            ax.set_xticks(positions, [_label(v) for v in values])
            ax.set_xlim(-0.5, len(values) - 0.5)
            ax.grid(alpha=0.3)
            if row == 1:
                ax.set_xlabel(name)
                ax.axhline(0, color="grey", linewidth=0.8)
            if column == 0:
                ax.set_ylabel("accuracy" if row == 0 else "training - validation acc")
                ax.legend(loc="best", fontsize="small")
    fig.suptitle("final accuracy against each option (mean ± std over the seeds and the "
                 "other options' values)")
    fig.tight_layout()
    return fig


def _lines(Figure, summary, grid, x_name, line_name, over):
    """Accuracy and gap against ``x_name``: one option (``line_name`` None), or two, one
    colour per value of ``line_name``."""
    from purenn import plotting

    xs = list(grid[x_name])
    lines = [None] if line_name is None else list(grid[line_name])
    positions = np.arange(len(xs))

    def key(cell):
        return tuple(_value_key(cell.values[name]) for name in (x_name, line_name)
                     if name is not None)

    cells_by_values = {key(c): c for c in summary}
    fig = Figure(figsize=(13.0, 4.8), dpi=plotting.DPI)
    accuracy, gap = fig.subplots(1, 2)
    spread = 0.06 * (np.arange(len(lines)) - (len(lines) - 1) / 2)
    for k, (line, offset) in enumerate(zip(lines, spread)):
        for ax, metric, style in ((accuracy, "train_accuracy", "--"),
                                  (accuracy, "val_accuracy", "-"), (gap, "gap", "-")):
            cells = [cells_by_values.get((_value_key(x),) if line is None
                                         else (_value_key(x), _value_key(line)))
                     for x in xs]
            means = [c.mean[metric] if c else math.nan for c in cells]
            stds = [c.std[metric] if c else math.nan for c in cells]
            if all(math.isnan(m) for m in means):
                continue
            if line is None:
                colour = {"train_accuracy": "tab:blue", "val_accuracy": "tab:red",
                          "gap": "black"}[metric]
                label = {"train_accuracy": "training", "val_accuracy": "validation",
                         "gap": "training - validation"}[metric]
            else:
                colour = plotting._COLOURS[k % len(plotting._COLOURS)]
                label = f"{line_name} {_label(line)}" + {
                    "train_accuracy": ", training", "val_accuracy": ", validation",
                    "gap": ""}[metric]
            ax.errorbar(positions + offset, means, yerr=stds, marker="o", capsize=4,
                        color=colour, linestyle=style, linewidth=1.4, label=label)
    for ax, title in ((accuracy, "training (dashed) and validation (solid) accuracy"),
                      (gap, _LABELS["gap"])):
        ax.set_xticks(positions, [_label(x) for x in xs])
        ax.set_xlim(-0.5, len(xs) - 0.5)
        ax.set_xlabel(x_name)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    gap.axhline(0, color="grey", linewidth=0.8)
    against = x_name if line_name is None else f"{x_name} and {line_name}"
    fig.suptitle(f"final accuracy against {against} ({over})")
    fig.tight_layout()
    return fig


def _heat_maps(Figure, summary, grid, names, over):
    from purenn import plotting

    rows, columns = (list(grid[name]) for name in names)
    cells_by_key = _lookup(summary)
    metrics = ("val_accuracy", "train_accuracy", "gap")
    width = max(4.2, 0.95 * len(columns) + 1.6)
    height = max(3.6, 0.6 * len(rows) + 1.8)
    fig = Figure(figsize=(width * 3, height), dpi=plotting.DPI)
    axes = fig.subplots(1, 3)
    for ax, metric in zip(axes, metrics):
        mean = np.full((len(rows), len(columns)), np.nan)
        std = np.full_like(mean, np.nan)
        for i, r in enumerate(rows):
            for j, c in enumerate(columns):
                cell = cells_by_key.get((_value_key(r), _value_key(c)))
                if cell is not None:
                    mean[i, j], std[i, j] = cell.mean[metric], cell.std[metric]
        cmap = "magma" if metric == "gap" else "viridis"
        image = ax.imshow(mean, cmap=cmap, aspect="auto", origin="lower")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        finite = mean[np.isfinite(mean)]
        middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
        for i in range(len(rows)):
            for j in range(len(columns)):
                if np.isfinite(mean[i, j]):
                    dark = mean[i, j] < middle
                    ax.text(j, i, f"{mean[i, j]:.3f}\n± {std[i, j]:.3f}", ha="center",
                            va="center", fontsize="small",
                            color="white" if dark else "black")
        ax.set_xticks(np.arange(len(columns)), [_label(v) for v in columns])
        ax.set_yticks(np.arange(len(rows)), [_label(v) for v in rows])
        ax.set_xlabel(names[1])
        ax.set_ylabel(names[0])
        ax.set_title(_LABELS[metric])
    fig.suptitle(f"final accuracy against {names[0]} and {names[1]} ({over})")
    fig.tight_layout()
    return fig


# --- the `purenn sweep` command -----------------------------------------------------------

RUNS, SUMMARY, PICTURE = "runs.csv", "summary.csv", "sweep.png"
# Options of ``purenn train`` a sweep defines its own way, and those it leaves out (each
# run's own outputs: a sweep writes one table and one picture for all of them).
_OWN = ("--out", "--seeds", "--resume")
_LEFT_OUT = ("--plot", "--save", "--log-every", "--checkpoint-every")
_NOT_LISTED = {"seed": "--seed is the first seed; --seeds N trains N seeds (S, S+1, ...)"}
_HELP = {"seed": "the first seed (default 0): run i of a combination uses seed S + i, its "
                 "data, initial weights and dropout masks, as 'purenn train --seed S+i'",
         "quiet": "no progress bar and no notes: only the summary table (the bar is also "
                  "off when stderr is not a terminal)"}


def _listed(kind):
    """An argparse type: a comma list of values, each checked by ``kind``."""

    def parse(text):
        items = [item.strip() for item in text.split(",")]
        if len(items) > 1 and not all(items):
            raise argparse.ArgumentTypeError(
                f"an empty item in {text!r}; separate the values with single commas, "
                f"e.g. 0,5e-4,1e-3")
        values = tuple(kind(item) for item in items)
        repeated = sorted({_label(v) for v in values if values.count(v) > 1})
        if repeated:
            raise argparse.ArgumentTypeError(f"{', '.join(repeated)} given twice in {text!r}")
        return values

    parse.__name__ = getattr(kind, "__name__", "value")
    return parse


def _single(kind, reason):
    """An argparse type: one value (``kind``); a comma list is an error giving ``reason``."""

    def parse(text):
        if "," in text:
            raise argparse.ArgumentTypeError(f"one value only, got {text!r}: {reason}")
        return text if kind is None else kind(text)

    parse.__name__ = getattr(kind, "__name__", "value")
    return parse


def _is_sweepable(action) -> bool:
    return (action.dest in SWEEPABLE and action.nargs is None and action.choices is None
            and action.type is not None and action.option_strings != [])


def add_parser(commands, train: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``purenn sweep`` to ``commands`` (``purenn``'s subparsers), with the options of
    ``train`` (``purenn train``'s parser): each numeric one takes a comma list, checked
    value by value by the option's own type."""
    sweep = commands.add_parser(
        "sweep", help="train a grid of hyperparameter values, times seeds",
        description="Train every combination of the values given as comma lists to the "
                    "numeric options of 'purenn train' (e.g. --weight-l2 0,5e-4 --dropout "
                    "0,0.1: 4 runs per seed), each exactly as 'purenn train' would. "
                    f"Writes DIR/{RUNS} (one row per run, with the 'purenn train' command "
                    f"that reproduces it), DIR/{SUMMARY} (each combination's mean and "
                    f"standard deviation over the seeds, also printed) and DIR/{PICTURE}.",
        epilog="Example: purenn sweep --weight-l2 0,1e-4,5e-4,1e-3 --bias-l2 5e-4 "
               "--learning-rate 0.02 --decay 5e-7 --seeds 3 --out sweep-l2")
    sweep.set_defaults(parser=sweep)
    own = sweep.add_argument_group("sweep")
    own.add_argument("--out", required=True, metavar="DIR",
                     help=f"the folder for {RUNS}, {SUMMARY} and {PICTURE} (created if "
                          f"missing)")
    seeds = next((a for a in train._actions if "--seeds" in a.option_strings), None)
    own.add_argument("--seeds", type=seeds.type if seeds else int, default=1, metavar="N",
                     help="train each combination with N seeds: --seed S, S+1, ... "
                          "(default 1)")
    own.add_argument("--resume", action="store_true",
                     help=f"keep the runs already in DIR/{RUNS} (same values, seed and "
                          f"options) and train only the missing ones")
    groups = {group.title: group for group in sweep._action_groups}
    copied = []
    for group in train._action_groups:
        for action in group._group_actions:
            if isinstance(action, argparse._HelpAction) or any(
                    option in _OWN + _LEFT_OUT for option in action.option_strings):
                continue
            clone = copy.copy(action)
            if _is_sweepable(action):
                clone.type = _listed(action.type)
                clone.metavar = f"{action.metavar or action.dest.upper()}[,...]"
                clone.help = ((action.help + "; " if action.help else "")
                              + "a comma list sweeps it")
            elif action.type is not None or action.choices is not None:
                reason = _NOT_LISTED.get(action.dest, "only numeric options of one value "
                                         "each take a comma list")
                clone.type = _single(action.type, reason)
            clone.help = _HELP.get(action.dest, clone.help)
            if group.title not in groups:
                groups[group.title] = sweep.add_argument_group(group.title,
                                                               group.description)
            groups[group.title]._add_action(clone)
            copied.append(clone)
    sweep.train_options = copied
    return sweep


def _text(value) -> str:
    """A value as a command line or a CSV cell holds it: ints as ints, floats as their
    shortest exact form (``float(_text(x)) == x``)."""
    if isinstance(value, float):
        return "0" if value == 0 else repr(value)
    return str(value)


def _train_command(options, args, seed: int) -> str:
    """The ``purenn train`` command of one run: the options that differ from their
    defaults, then ``--seed``."""
    tokens = ["purenn", "train"]
    for action in options:
        if action.dest in ("seed", "quiet"):
            continue
        value = getattr(args, action.dest)
        if value is None or value == action.default:
            continue
        option = max(action.option_strings, key=len)
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreConstAction)):
            tokens.append(option)
        elif isinstance(value, (list, tuple)):
            tokens += [option, *map(_text, value)]
        else:
            tokens += [option, _text(value)]
    return shlex.join([*tokens, "--seed", str(seed)])


def _error(parser, message):
    parser.error(message)


def _prepare_out(parser, out: str) -> str:
    if os.path.exists(out) and not os.path.isdir(out):
        _error(parser, f"--out {out!r} is a file; give a folder (created if missing)")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as err:
        _error(parser, f"--out {out!r}: cannot create the folder: {err.strerror or err}")
    if not os.access(out, os.W_OK | os.X_OK):
        _error(parser, f"--out {out!r}: the folder is not writable")
    return out


def _read_runs(parser, path, header):
    """The complete rows of an existing runs.csv, checked against ``header`` (a last row
    without its line end, from a process killed while writing it, is left out)."""
    try:
        with open(path, newline="") as file:
            text = file.read()
    except OSError as err:
        _error(parser, f"cannot read {path!r}: {err.strerror or err}")
    except UnicodeDecodeError as err:
        _error(parser, f"{path!r} is not a sweep's {RUNS}: {err}")
    if not text.endswith("\n"):
        text = text[:text.rfind("\n") + 1]
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as err:
        _error(parser, f"{path!r} is not a sweep's {RUNS}: {err}")
    if not rows:
        return []
    if rows[0] != header:
        _error(parser, f"{path!r} has the columns {','.join(rows[0])}, this sweep writes "
                       f"{','.join(header)}: it holds another sweep; give another --out")
    return [dict(zip(header, row)) for row in rows[1:] if len(row) == len(header)]


def _start_runs(path, header, rows):
    """Write ``header`` and ``rows`` (dicts) to ``path``, replacing it atomically."""
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows([row[name] for name in header] for row in rows)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def _row_key(names, values, seed):
    return tuple(float(values[name]) for name in names), int(seed)


def _float(text):
    try:
        return float(text)
    except ValueError:
        return math.nan


def _print_table(summary, names, pm):
    columns = [*names, "seeds", "train acc", "val acc", "gap", "train loss", "val loss"]
    metrics = ("train_accuracy", "val_accuracy", "gap", "train_loss", "val_loss")
    rows = []
    for cell in summary:
        rows.append([*(_label(cell.values[name]) for name in names), str(len(cell.seeds)),
                     *(f"{cell.mean[m]:.3f} {pm} {cell.std[m]:.3f}" for m in metrics)])
    widths = [max(len(row[i]) for row in [columns, *rows]) for i in range(len(columns))]
    for row in [columns, *rows]:
        print("  ".join(text.ljust(width) for text, width in zip(row, widths)).rstrip())


def _write_summary(path, summary, names):
    metrics = (*METRICS, "gap")
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([*names, "seeds", *(f"{m}_{s}" for m in metrics
                                            for s in ("mean", "std"))])
        for cell in summary:
            writer.writerow([*(_text(cell.values[name]) for name in names), len(cell.seeds),
                             *(_text(float(getattr(cell, s)[m])) for m in metrics
                               for s in ("mean", "std"))])


def main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``purenn sweep``, from the parsed ``args``; returns the exit status."""
    from purenn import cli

    names = [a.dest for a in parser.train_options if _is_sweepable(a)
             and isinstance(getattr(args, a.dest), tuple) and len(getattr(args, a.dest)) > 1]
    grid = {name: list(getattr(args, name)) for name in names}
    base_args = copy.copy(args)
    for action in parser.train_options:
        value = getattr(args, action.dest)
        if isinstance(value, tuple):
            setattr(base_args, action.dest, value[0])
    seeds = list(range(args.seed, args.seed + args.seeds))
    if seeds[-1] >= 2**31:
        _error(parser, f"--seed {args.seed} --seeds {args.seeds} goes past the last seed, "
                       f"2**31 - 1")
    config_from_args = getattr(cli, "config_from_args", None) or cli._train_config
    base = config_from_args(base_args, parser)
    commands = {}
    for values in cells(grid):
        cell_args = copy.copy(base_args)
        for name, value in values.items():
            setattr(cell_args, name, value)
        config = config_from_args(cell_args, parser)  # train's checks, cell by cell
        try:
            experiments.components(config)  # the layers and the optimizer check values
        except (ValueError, TypeError) as err:
            _error(parser, str(err))
        assert config == apply_values(base, values), (config, values)
        for seed in seeds:
            commands[_row_key(names, values, seed)] = _train_command(
                parser.train_options, cell_args, seed)

    out = _prepare_out(parser, args.out)
    runs_path = os.path.join(out, RUNS)
    header = [*names, "seed", *METRICS, "command"]
    previous = _read_runs(parser, runs_path, header) if os.path.exists(runs_path) else []
    if previous and not args.resume:
        _error(parser, f"{runs_path!r} already holds {len(previous)} run(s); pass --resume "
                       f"to keep them and train the missing ones, or give another --out")
    kept = {}
    for number, row in enumerate(previous, start=2):
        try:
            key = _row_key(names, row, row["seed"])
        except ValueError:
            _error(parser, f"{runs_path!r} line {number} is not a run: {row}")
        if key in commands and row["command"] != commands[key]:
            _error(parser, f"{runs_path!r} line {number} was trained by "
                           f"'{row['command']}', but this sweep would train "
                           f"'{commands[key]}': the other options differ; give another "
                           f"--out")
        kept.setdefault(key, Result(
            dict(zip(names, (float(row[name]) for name in names))), key[1], None,
            {m: _float(row[m]) for m in METRICS}, {}, None, None))

    note = (lambda message: None) if args.quiet else (
        lambda message: print(f"purenn: {message}", file=sys.stderr))
    enable_cache = getattr(cli, "enable_compilation_cache", None)  # as purenn train does
    if enable_cache is not None and not cli.cache_disabled(args):
        enable_cache(lambda message: print(f"{parser.prog}: warning: {message}",
                                           file=sys.stderr))
    todo = len(commands) - len(kept.keys() & commands.keys())
    if kept:
        note(f"{len(commands) - todo} of {len(commands)} runs already in {runs_path}; "
             f"training the other {todo}")
    finished = 0
    try:
        _start_runs(runs_path, header, previous)
        with open(runs_path, "a", newline="") as file:
            writer = csv.writer(file)

            def write(result):
                nonlocal finished
                key = _row_key(names, result.values, result.seed)
                writer.writerow([*(_text(result.values[name]) for name in names),
                                 result.seed, *(_text(result.metrics[m]) for m in METRICS),
                                 commands[key]])
                file.flush()
                finished += 1
                if result.diverged_at is not None:
                    note(f"diverged at epoch {result.diverged_at} (NaN in {RUNS}): "
                         f"{commands[key]}")

            results = run_grid(base, grid, seeds, on_result=write,
                               skip=lambda values, seed: _row_key(names, values, seed)
                               in kept, progress=False if args.quiet else None)
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted after {finished} of {todo} runs; {runs_path} "
              f"keeps them: run the same command with --resume to train the rest",
              file=sys.stderr)
        return 130
    except OSError as err:
        print(f"{parser.prog}: error: cannot write {runs_path!r}: {err.strerror or err}",
              file=sys.stderr)
        return 1

    try:
        return _finish(out, runs_path, names, grid, commands, results, kept, note)
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted; {runs_path} holds every run", file=sys.stderr)
        return 130


def _finish(out, runs_path, names, grid, commands, results, kept, note):
    """The summary (printed and written) and the picture of a finished sweep."""
    from purenn import cli

    by_key = {_row_key(names, r.values, r.seed): r for r in results}
    by_key.update({key: r for key, r in kept.items() if key in commands})
    ordered = [by_key[key] for key in commands]
    summary = summarize(ordered)
    _print_table(summary, names, cli._plus_minus())
    _write_summary(os.path.join(out, SUMMARY), summary, names)
    wrote = [runs_path, os.path.join(out, SUMMARY)]
    picture = os.path.join(out, PICTURE)
    if not names:
        note(f"no option was given a comma list: nothing to plot, no {PICTURE}")
    else:
        from purenn import plotting

        try:
            plotting.require_matplotlib()
        except ImportError:
            print(f"purenn: no {PICTURE}: drawing it needs matplotlib: pip install "
                  f"'purenn[plot]' (or pip install matplotlib)", file=sys.stderr)
        else:
            plot(picture, summary, grid)
            wrote.append(picture)
    note(f"wrote {', '.join(wrote)}")
    return 0
