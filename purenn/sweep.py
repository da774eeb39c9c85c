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

The grid is checked before anything trains (``grids.check_grid``): values that are one
number in the precision the runs compute in (``0.1`` and ``0.100000001`` in float32) would
make two equal cells and are refused, and a grid of more than ``MAX_CELLS`` (100,000) cells
needs ``max_cells=``.

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

``plotting.plot_sweep`` draws a summary. The ``purenn sweep`` command runs a grid given as
comma lists of ``purenn train`` options and writes ``runs.csv``, ``summary.csv`` and
``sweep.png``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import purenn as pn
from purenn import experiments
from purenn.experiments import Config
from purenn.grids import (
    CONFIG_FIELDS,
    MAX_CELLS,
    SWEEPABLE,
    apply_values,
    cells,
    check_grid,
)
from purenn.progress import progress_bar
from purenn.pytrees import stack, unstack

__all__ = [
    "MAX_CELLS",
    "METRICS",
    "SWEEPABLE",
    "Cell",
    "Result",
    "apply_values",
    "cells",
    "format_value",
    "run_grid",
    "summarize",
]

# Hyperparameters whose value 0 leaves a piece out of the model (``Config.model()``): no
# dropout layer at rate 0, no penalty term at strength 0. A sweep puts the piece, at 0, in
# every cell where some cell has it; run one after another, only where that is bit for bit
# the run without it (a dropout layer at rate 0: measured and tested); vmapped (where runs
# agree with their own commands to rounding only), always.
_ZERO_OMITS = {"sequential": ("dropout",),
               "vmap": ("dropout", "weight_l1", "weight_l2", "bias_l1", "bias_l2")}

METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")


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
    if name in CONFIG_FIELDS:
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
        key = (seed, *config.data_fields())
        if key not in self._cache:
            k_train, k_val, _, _ = experiments.seed_keys(seed)
            self._cache[key] = config.make_datasets(k_train, k_val)
        return self._cache[key]


def _initial_params(config: Config, model, seed: int):
    """The initial params ``purenn train`` starts ``config`` from, in ``model``'s
    structure."""
    _, _, k_init, _ = experiments.seed_keys(seed)
    own = experiments.components(config)[0].init(k_init)
    return _restructure(own, jax.eval_shape(model.init, k_init))


def _own_params(config: Config, seed: int, params):
    """Trained ``params`` in the structure of ``config``'s own model (``purenn train``'s)."""
    own = experiments.components(config)[0]
    return _restructure(params, jax.eval_shape(own.init, experiments.seed_keys(seed)[2]))


def run_grid(config: Config, grid: Mapping[str, Sequence[float]], seeds: Sequence[int], *,
             mode: str | None = None, on_result: Callable[[Result], Any] | None = None,
             skip: Callable[[dict, int], bool] | None = None,
             progress: bool | None = None, max_cells: int = MAX_CELLS) -> list[Result]:
    """Train every cell of ``grid`` once per seed, starting from ``config``.

    Args:
      config: the base run (an ``experiments.Config``, as ``purenn train`` builds one),
        on built-in data or a file (``Config(data="wine.csv", validation_split=0.2)``:
        every cell of a seed trains on the same split).
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
      progress: a tqdm bar over the runs; None: on when stderr is a terminal. It
        appears before the cells' values are checked, so at once however large the grid.
      max_cells: the most cells the grid may have (``MAX_CELLS``, 100,000, by default);
        a larger grid is a ``ValueError`` that gives its size.

    Returns:
      One ``Result`` per run, in the order of ``cells(grid)`` with seeds innermost. A run
      whose loss diverges gets NaN metrics and its first bad epoch in ``diverged_at``;
      the other runs go on. (An example: the module's docstring.)
    """
    if not isinstance(config, Config):
        raise TypeError(f"config must be an experiments.Config; got {type(config).__name__}")
    grid = check_grid(config, grid, max_cells=max_cells)
    seeds = [_check_seed(seed) for seed in seeds]
    if not seeds:
        raise ValueError("seeds is empty; give at least one seed, e.g. seeds=[0]")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds repeats a seed: {seeds}")
    mode = experiments.default_mode() if mode is None else mode
    if mode not in ("sequential", "vmap"):
        raise ValueError(f"mode must be 'sequential' or 'vmap' (or None); got {mode!r}")
    padding = _padding(grid, mode)
    configs = [(values, apply_values(config, values)) for values in cells(grid)]
    runs = [(values, seed, run_config) for values, run_config in configs for seed in seeds
            if skip is None or not skip(values, seed)]
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
        for _, run_config in configs:  # every cell's values checked before training
            experiments.components(run_config)
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
    try:
        params, _, history = pn.fit(model, loss, optimizer, params, X, y,
                                    key=experiments.seed_keys(seed)[3], epochs=config.epochs,
                                    batch_size=config.batch_size, log_every=None,
                                    log_fn=None, progress=False)
    except pn.DivergenceError as err:
        return Result(dict(values), seed, config, dict(_NAN_METRICS), err.history,
                      _own_params(config, seed, err.params), err.epoch)
    metrics = None if validation is None else pn.evaluate(model, loss, params, *validation)
    return Result(dict(values), seed, config, _metrics(history, metrics), history,
                  _own_params(config, seed, params), None)


def _structure(config: Config, padding):
    """What runs must share to be stacked: the model's and optimizer's structure (static
    parts included), the loss, the data's shapes, the epochs and the batch size."""
    model, loss, optimizer = _run_components(config, padding)
    numeric = all(_is_number(leaf) for leaf in jax.tree.leaves((model, optimizer)))
    return (jax.tree.structure((model, optimizer)), loss, numeric, *config.data_fields(),
            config.epochs, config.batch_size)


_MEMORY_FRACTION = 0.5  # of the device's memory, for one vmapped group
_FALLBACK_MEMORY = 2**30  # bytes, when neither the device nor the machine says


def _group_size(configs: Sequence[Config], count: int) -> int:
    """How many of ``count`` runs (of ``configs``, one structure) one vmapped program
    trains at once: as many as fit in ``_MEMORY_FRACTION`` of the device's memory, by
    ``experiments.estimate_memory`` of the largest, its params and optimizer state counted
    twice (the loop keeps the best ones beside them)."""
    needs = [experiments.estimate_memory(config, 1, vmap=True) for config in set(configs)]
    per_run = max(need.total + need.state for need in needs)
    limit = experiments.memory_limit()
    budget = _MEMORY_FRACTION * (_FALLBACK_MEMORY if limit is None else limit[0])
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
        size = _group_size([config for _, _, config in members], len(members))
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
    # every run's pieces on a leading run axis, in one program
    run_models, run_optimizers, run_params, X, y, run_keys = stack(
        [(model, optimizer, initial, data_set[0], data_set[1], experiments.seed_keys(seed)[3])
         for (_, seed, _), model, optimizer, initial, data_set in
         zip(members, models, optimizers, params, inputs)])
    config = members[0][2]
    try:
        trained, _, history = experiments.fit_seeds(
            run_models, loss, run_optimizers, run_params, X, y, keys=run_keys,
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
        results.append(Result(dict(values), seed, config, _metrics(run_history, metrics),
                              run_history, _own_params(config, seed, own), None))
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


def format_value(value) -> str:
    """A grid value as the summary table and the picture show it: ``%g`` for a float."""
    return f"{value:g}" if isinstance(value, float) else str(value)
