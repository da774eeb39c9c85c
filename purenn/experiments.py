"""The book's experiments as data, and the runs behind the ``purenn`` command.

A ``Config`` describes one training run: the data set, the model (one or more hidden
``dense -> relu [-> dropout]`` blocks, then a softmax, a sigmoid or a linear output), the
optimizer and the epochs. ``BOOK`` names the experiments of the book's table
(docs/book.md) and chapter 17's regression. Both live in ``purenn.configs`` and are
re-exported here.

Keys: a run with seed ``s`` uses ``k_train, k_val, k_init, k_fit =
jax.random.split(jax.random.key(s), 4)``, the same split the scripts in ``examples/`` use,
so ``purenn book regularization --seed 3`` and ``python examples/regularization.py
--seed 3`` print the same lines.

``run`` trains one seed with ``pn.fit``. ``run_seeds`` trains several: one ``pn.fit``
after another, or (``mode="vmap"``) with ``fit_seeds``, the whole training of every seed
``jax.vmap``-ed into one compiled ``lax.scan`` (params, optimizer states, data and keys
stacked on a leading seed axis). On CPU the first is as fast or faster (see
``run_seeds``), so the CLI uses it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

import purenn as pn
from purenn import threefry, train
from purenn.configs import BOOK, DATA, OPTIMIZERS, REGRESSION_DATA, Config, Experiment
from purenn.partition import compiled_method, jit_program
from purenn.progress import progress_bar
from purenn.pytrees import stack, unstack

__all__ = [
    "BOOK",
    "DATA",
    "OPTIMIZERS",
    "REGRESSION_DATA",
    "Config",
    "Experiment",
    "MemoryEstimate",
    "Run",
    "SeedsDivergedError",
    "Seeds",
    "components",
    "default_mode",
    "estimate_memory",
    "memory_limit",
    "final_metrics",
    "fit_seeds",
    "mean_std",
    "run",
    "run_seeds",
    "seed_keys",
]


@functools.lru_cache(maxsize=32)
def _components(config: Config):
    # One model/loss/optimizer per configuration (whatever its epochs), so that runs of
    # the same configuration in one process reuse the compiled programs.
    return config.model(), config.loss(), config.make_optimizer()


def components(config: Config):
    """``(model, loss, optimizer)`` of ``config``; the same objects for equal configs."""
    return _components(dataclasses.replace(config, epochs=1))


def seed_keys(seed: int):
    """``(k_train, k_val, k_init, k_fit)`` of a seed (the split the examples use), made
    on the host (``purenn.threefry``: no program to compile) where JAX's default keys are
    in use, else by one compiled program for every seed."""
    seed = int(seed)
    if threefry.available() and 0 <= seed < 2**31:
        return tuple(threefry.wrap(data) for data in threefry.split(threefry.seed(seed), 4))
    # jax.random.key takes a Python int as an int64 (canonicalized): the same keys.
    return _seed_keys(np.int64(seed))


@jit_program
def _seed_keys(seed):
    return tuple(jax.random.split(jax.random.key(seed), 4))


class _RunInputs(NamedTuple):
    """What one seed's run starts from: its data, validation set, initial params and
    ``pn.fit`` key."""

    X: jax.Array
    y: jax.Array
    validation: tuple | None  # (X_val, y_val)
    params: Any
    key: jax.Array


def _inputs(config: Config, seed: int, model) -> _RunInputs:
    k_train, k_val, k_init, k_fit = seed_keys(seed)
    X, y, validation = config.make_datasets(k_train, k_val)
    return _RunInputs(X, y, validation, model.init(k_init), k_fit)


class Run(NamedTuple):
    """One trained seed."""

    seed: int
    model: pn.Layer
    params: Any
    opt_state: Any
    X: jax.Array
    y: jax.Array
    history: dict  # metric -> (epochs,) array, as pn.fit returns
    validation: dict | None  # {"loss", "accuracy"} of the validation set


def run(config: Config, seed: int, *, log_every: int | None = 100,
        validation_every: int | None = None,
        log_fn: Callable[[str], Any] | None = print, progress: bool | None = None,
        checkpoint_path: str | os.PathLike | None = None, checkpoint_every: int | None = None,
        resume: bool = False, resume_with_changes: bool = False,
        settings: dict[str, str] | None = None) -> Run:
    """Train one seed with ``pn.fit``, printing the book's lines through ``log_fn``:
    every ``log_every`` epochs, the last epoch's line (if not printed already), then the
    validation line. ``validation_every``: passed to ``pn.fit`` when the config has
    validation data (None: fit's default).

    ``checkpoint_path``, ``checkpoint_every``: passed to ``pn.fit``, which saves the run
    there as it goes, at the end and when interrupted. ``resume=True`` continues from that
    file; ``resume=False`` (the default) starts over and overwrites it.
    ``resume_with_changes``, ``settings``: passed to ``pn.fit`` with the checkpoint."""
    model, loss, optimizer = components(config)
    X, y, validation, params, k_fit = _inputs(config, seed, model)
    checkpoint = {} if checkpoint_path is None else dict(
        checkpoint_path=checkpoint_path, checkpoint_every=checkpoint_every, resume=resume,
        resume_with_changes=resume_with_changes, settings=settings)
    if validation is not None:
        checkpoint["validation_every"] = validation_every
    params, opt_state, history = pn.fit(
        model, loss, optimizer, params, X, y, key=k_fit, epochs=config.epochs,
        batch_size=config.batch_size, validation_data=validation, log_every=log_every,
        log_fn=log_fn, progress=progress, **checkpoint)
    # With validation data, fit prints the last epoch's line and the validation line.
    last = config.epochs - 1
    if log_fn is not None and validation is None and not (log_every and last % log_every == 0):
        log_fn(train.format_log_line(last, final_metrics(history)))
    return Run(seed, model, params, opt_state, X, y, history, history.get("validation"))


class MemoryEstimate(NamedTuple):
    """A lower bound on the memory a run holds at once, in bytes (see ``estimate_memory``)."""

    parameters: int  # the model's parameter count (one seed)
    state: int  # params, their gradients and the optimizer's state, all seeds held
    data: int  # training and validation data, all seeds
    activations: int  # the layers' outputs and their gradients for one batch
    dtype: str  # the floating-point dtype the sizes are counted in

    @property
    def total(self) -> int:
        return self.state + self.data + self.activations


def memory_limit() -> tuple[int, str] | None:
    """``(bytes, whose)``: the memory a run can use and whose it is, the accelerator's
    (``"the GPU's memory"``) or, on a CPU, this machine's; None when neither says."""
    device = jax.devices()[0]
    try:
        stats = device.memory_stats()
    except (RuntimeError, NotImplementedError, AttributeError):
        stats = None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"]), f"the {device.platform.upper()}'s memory"
    if device.platform == "cpu":
        try:
            return (os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
                    "this machine's memory")
        except (AttributeError, ValueError, OSError):
            return None
    return None


def estimate_memory(config: Config, seeds: int = 1, *, vmap: bool = False) -> MemoryEstimate:
    """What training ``config`` for ``seeds`` seeds holds in memory at least, counted from
    shapes alone (``jax.eval_shape``: nothing is allocated or compiled): the parameters,
    their gradients and the optimizer's state (Adam: two moment copies), the data, and
    every layer's output and gradient for one batch. ``run_seeds`` keeps each seed's data
    and parameters; with ``vmap=True`` every seed also trains at once."""
    model, _, optimizer = components(config)
    params = jax.eval_shape(lambda: model.init(jax.random.key(0)))
    opt_state = jax.eval_shape(optimizer.init, params)

    def size(tree):
        return sum(math.prod(leaf.shape) * np.dtype(leaf.dtype).itemsize
                   for leaf in jax.tree.leaves(tree))

    count = sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(params))
    X, y, validation = config.data_shapes()
    dtype = np.dtype(jax.tree.leaves(params)[0].dtype)
    batch = max(config.batch_size or X.shape[0],
                0 if validation is None else validation[0].shape[0])
    outputs = sum(config.hidden) * (2 if config.dropout else 1) + sum(config.hidden)
    outputs += 1 if config.binary else config.classes
    together = seeds if vmap else 1
    return MemoryEstimate(
        parameters=count,
        state=(seeds + together) * size(params) + seeds * size(opt_state),
        data=seeds * size((X, y, validation)),
        activations=together * 2 * batch * outputs * dtype.itemsize,
        dtype=str(dtype))


def final_metrics(history: dict) -> dict:
    """The last epoch's metrics of a (single run's) history."""
    return {name: history[name][-1] for name in train.METRICS if name in history}


# --- many seeds -----------------------------------------------------------------------


class SeedsDivergedError(FloatingPointError):
    """Some seeds' loss became NaN or inf."""


@compiled_method
def _runs_opt_state(optimizer, params):
    """The optimizer states of runs stacked on the leading axis of ``params``: one
    program per structure."""
    return jax.vmap(optimizer.init)(params)


@compiled_method
def _stacked_runs_opt_state(optimizer, params):
    """As ``_runs_opt_state``, the optimizer's hyperparameters stacked on the run axis
    too."""
    return jax.vmap(lambda o, p: o.init(p))(optimizer, params)


def fit_seeds(model, loss, optimizer, params, X, y, *, keys, epochs: int,
              batch_size: int | None = None, progress: bool | None = None,
              stacked: bool = False):
    """``pn.fit`` for a stack of independent runs, all in one vmapped compiled loop.

    ``params``, ``X``, ``y`` and ``keys`` carry a leading axis of ``S`` runs (stack them
    with ``jax.tree.map(lambda *a: jnp.stack(a), *trees)``); run ``i`` uses exactly
    ``pn.fit``'s epoch keys from ``keys[i]``. With ``stacked=True`` the numeric
    hyperparameters of ``model`` and ``optimizer`` carry the run axis too (models and
    optimizers of one structure, stacked the same way): one program trains a grid of
    hyperparameters. The epochs run in compiled chunks of ``pn.train.CHUNK`` epochs
    (``pn.train.runs_program``: one compile per structure); between chunks the loss is
    checked and the progress bar moves.

    Returns ``(params, opt_state, history)`` stacked on the run axis; ``history`` maps
    ``epoch`` to ``(epochs,)`` and each metric to ``(S, epochs)``.

    Raises SeedsDivergedError when the loss of some run stops being finite.
    """
    accuracy = train.default_accuracy(loss)
    opt_state = (_stacked_runs_opt_state if stacked else _runs_opt_state)(optimizer, params)
    program = train.runs_program(train.Components(model, loss, optimizer, accuracy),
                                 batch_size, stacked=stacked)
    state = train.RunState(params, opt_state, params, opt_state)
    bar = progress_bar(progress, epochs)
    chunks, start = [], 0
    try:
        while start < epochs:
            length = min(train.CHUNK, epochs - start)
            result = program(state, X, y, keys, np.int32(start), np.int32(length))
            done = np.asarray(result.done)
            if not np.all(done == length):
                runs = np.flatnonzero(done < length)
                raise SeedsDivergedError(
                    f"training diverged: the loss, the parameters or the optimizer state of "
                    f"run(s) {', '.join(map(str, runs))} stopped being finite between "
                    f"epochs {start} and {start + length - 1}; lower the learning rate")
            state = result.state
            chunks.append({name: np.asarray(values)[:, :length]
                           for name, values in result.metrics.items()})
            if bar is not None:
                bar.update(length)
            start += length
    finally:
        if bar is not None:
            bar.close()
    history = {"epoch": np.arange(epochs)}
    history.update({name: np.concatenate([c[name] for c in chunks], axis=1)
                    for name in chunks[0]})
    return state.params, state.opt_state, history


class Seeds(NamedTuple):
    """Several trained seeds, stacked on a leading axis."""

    seeds: list[int]
    model: pn.Layer
    params: Any  # every leaf (S, ...)
    opt_state: Any
    X: jax.Array  # (S, N, 2)
    y: jax.Array
    history: dict  # metric -> (S, epochs)
    validation: dict | None  # metric -> (S,)

    def unstack(self, i: int) -> Run:
        """Seed ``self.seeds[i]`` as a single ``Run``."""
        history = {name: (values if name == "epoch" else values[i])
                   for name, values in self.history.items()}
        validation = (None if self.validation is None else
                      {name: float(v[i]) for name, v in self.validation.items()})
        params, opt_state, X, y = unstack((self.params, self.opt_state, self.X, self.y), i)
        return Run(self.seeds[i], self.model, params, opt_state, X, y, history, validation)


def default_mode() -> str:
    """How ``--seeds`` runs: ``"sequential"`` on a CPU, where it measured as fast or faster
    than vmap (see ``run_seeds``), ``"vmap"`` on an accelerator, where one small run alone
    leaves most of the device idle."""
    return "sequential" if jax.default_backend() == "cpu" else "vmap"


def run_seeds(config: Config, seeds: Sequence[int], *, progress: bool | None = None,
              mode: str = "sequential") -> Seeds:
    """Train ``config`` once per seed: ``mode="sequential"``, one ``pn.fit`` after
    another (what the CLI uses), or ``mode="vmap"``, all seeds in one vmapped program
    (``fit_seeds``). Both use each seed's own data, initial params and epoch keys, and
    agree to rounding.

    Measured on a 2-core CPU (16 seeds x 1000 epochs, warm, alternating runs), vmap was
    never faster: 0.88 s vs 0.87 s for the 300-sample, 64-unit experiment, 2.67 s vs
    2.49 s with 3000 samples (5 seeds), 127 s vs 90 s with 512 units. ``pn.fit`` already
    runs its epochs inside ``lax.scan``, so there is no per-step overhead for vmap to
    amortize on a CPU; on an accelerator, where one small run leaves the device idle,
    measure again with ``mode="vmap"``."""
    seeds = list(seeds)
    model, loss, optimizer = components(config)
    inputs = [_inputs(config, seed, model) for seed in seeds]
    X, y = stack([(i.X, i.y) for i in inputs])
    validation_sets = [i.validation for i in inputs]
    if mode == "vmap":
        initial, keys = stack([(i.params, i.key) for i in inputs])
        params, opt_state, history = fit_seeds(
            model, loss, optimizer, initial, X, y, keys=keys, epochs=config.epochs,
            batch_size=config.batch_size, progress=progress)
    elif mode == "sequential":
        results = []
        for (X_s, y_s, _, params_s, k_fit) in inputs:
            try:
                results.append(pn.fit(model, loss, optimizer, params_s, X_s, y_s, key=k_fit,
                                      epochs=config.epochs, batch_size=config.batch_size,
                                      log_every=None, log_fn=None, progress=progress))
            except pn.DivergenceError as err:
                raise SeedsDivergedError(
                    f"training diverged: the loss of seed {seeds[len(results)]} stopped "
                    f"being finite (first at epoch {err.epoch}); lower the learning "
                    f"rate") from None
        params, opt_state = stack([r[:2] for r in results])
        history = {"epoch": results[0][2]["epoch"]}
        history.update({name: np.stack([r[2][name] for r in results])
                        for name in results[0][2] if name != "epoch"})
    else:
        raise ValueError(f"mode must be 'sequential' or 'vmap'; got {mode!r}")
    validation = None
    if config.validation_samples and mode == "vmap":
        evaluator = train.Evaluator(model, loss, train.default_accuracy(loss), runs=True)
        metrics = evaluator(params, *stack(validation_sets))
        validation = {name: np.asarray(values) for name, values in metrics.items()}
    elif config.validation_samples:  # exactly what a single run of each seed prints
        metrics = [pn.evaluate(model, loss, r[0], *v) for r, v in zip(results,
                                                                         validation_sets)]
        validation = {name: np.array([m[name] for m in metrics]) for name in metrics[0]}
    return Seeds(seeds, model, params, opt_state, X, y, history, validation)


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value)."""
    values = np.asarray(values, dtype=np.float64)
    std = float(np.std(values, ddof=1)) if values.size > 1 else 0.0
    mean = float(np.mean(values))
    return mean, (std if math.isfinite(std) else 0.0)
