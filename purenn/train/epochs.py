"""The compiled epochs loops: a chunk of epochs in one ``lax.while_loop``.

Two loops run a chunk of at most ``CHUNK`` epochs. The **lean** one
(``lean_epochs_function``, jitted by ``chunk_program``) is what ``fit`` runs: it carries
only the params and the optimizer state, checks only the loss each epoch and the whole
state once, after the chunk. The **checked** one (``epochs_function``, jitted by
``checked_chunk_program``) checks every leaf of the state every epoch and carries the
state before, so it stops at the exact epoch that failed with the last sound state:
``fit`` compiles and runs it only to replay a chunk the lean loop found at fault (the two
compute the same bits), and ``runs_program`` runs it ``jax.vmap``-ed over a leading axis
of independent runs (seeds, or a grid of hyperparameters of one structure), for
``purenn.experiments``. Each is keyed on the components' structure
(``purenn.partition``): one compile per structure.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from purenn.partition import BoundProgram, combine
from purenn.train.history import METRICS
from purenn.train.step import Components, first_learning_rate, step_function

__all__ = [
    "CHUNK",
    "ChunkResult",
    "LeanResult",
    "RunState",
    "checked_chunk_program",
    "chunk_program",
    "epoch_keys",
    "epochs_function",
    "lean_epochs_function",
    "runs_program",
]

CHUNK = 100  # the most epochs one call of the compiled loop runs (its metrics buffer)


def epoch_keys(key: jax.Array, epoch) -> tuple[jax.Array, jax.Array]:
    """``(shuffle_key, dropout_key)`` of epoch ``epoch``: ``split(fold_in(key, epoch))``."""
    shuffle_key, dropout_key = jax.random.split(jax.random.fold_in(key, epoch))
    return shuffle_key, dropout_key


# --- the compiled loop ------------------------------------------------------------------


def _epoch_function(step, batch_size: int | None):
    """One epoch: a full-batch step, or shuffled minibatches that visit each sample once
    (the last batch smaller when ``batch_size`` does not divide the sample count)."""

    def full_batch(params, opt_state, X, y, key, epoch):
        _, dropout_key = epoch_keys(key, epoch)
        return step(params, opt_state, X, y, jax.random.fold_in(dropout_key, 0))

    def minibatches(params, opt_state, X, y, key, epoch):
        n_samples = X.shape[0]
        shuffle_key, dropout_key = epoch_keys(key, epoch)
        order = jax.random.permutation(shuffle_key, n_samples)
        n_full, rest = divmod(n_samples, batch_size)

        def batch_step(carry, inputs):
            indices, batch = inputs
            params, opt_state, metrics = step(*carry, X[indices], y[indices],
                                              jax.random.fold_in(dropout_key, batch))
            return (params, opt_state), metrics

        batches = order[:n_full * batch_size].reshape(n_full, batch_size)
        (params, opt_state), per_batch = lax.scan(batch_step, (params, opt_state),
                                                  (batches, jnp.arange(n_full)))
        sizes = jnp.full((n_full,), batch_size)
        if rest:
            indices = order[n_full * batch_size:]
            params, opt_state, last = step(params, opt_state, X[indices], y[indices],
                                           jax.random.fold_in(dropout_key, n_full))
            per_batch = jax.tree.map(lambda a, b: jnp.concatenate([a, b[None]]),
                                     per_batch, last)
            sizes = jnp.concatenate([sizes, jnp.array([rest])])
        weights = sizes / n_samples
        metrics = {name: jnp.sum(values * weights.astype(values.dtype))
                   for name, values in per_batch.items() if name != "learning_rate"}
        if "learning_rate" in per_batch:
            metrics["learning_rate"] = per_batch["learning_rate"][0]
        return params, opt_state, metrics

    one_epoch = full_batch if batch_size is None else minibatches

    def epoch(params, opt_state, X, y, key, epoch):
        # Behind the barrier, what each loop does with an epoch's results (checks, writes,
        # keeps the state before) cannot change how XLA fuses, and so rounds, the epoch
        # itself: the lean and the checked loop compute it to the same bits.
        return lax.optimization_barrier(one_epoch(params, opt_state, X, y, key, epoch))

    return epoch


def _all_finite(tree) -> jax.Array:
    """Whether every inexact leaf of ``tree`` is finite (a traced scalar bool): one
    reduction over all of them, a few kernels where a check per leaf makes two per leaf
    (behind the barrier XLA cannot split the reduction into one per leaf again)."""
    flags = [jnp.ravel(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)
             if jnp.issubdtype(jnp.result_type(leaf), jnp.inexact)]
    if not flags:
        return jnp.asarray(True)
    return jnp.all(lax.optimization_barrier(jnp.concatenate(flags)))


def _metric_dtypes(components: Components, params, opt_state, X) -> dict:
    """The dtype each metric of a chunk is kept in, by name, in ``METRICS`` order: the
    floating dtype of ``X`` and the params, and the learning rate's own dtype (the log
    line prints it as it is: ``lr: 0.019900506`` in float32)."""
    dtype = jnp.result_type(X, *[leaf for leaf in jax.tree.leaves(params)
                                 if jnp.issubdtype(jnp.result_type(leaf), jnp.floating)])
    learning_rate = first_learning_rate(opt_state)
    dtypes = {name: dtype for name in METRICS if name != "learning_rate" and
              (name != "accuracy" or components.accuracy is not None)}
    if learning_rate is not None:
        dtypes["learning_rate"] = jnp.result_type(learning_rate)
    return dtypes


def _metric_rows(dtypes: dict) -> dict:
    """The buffers a chunk's metrics are written into: ``(names) -> (CHUNK, len(names))``
    zeros, one per dtype (in float32 all five metrics share one), names in ``METRICS``
    order. The names are the dict's keys, so they travel through jit and vmap with the
    buffers (``metric_columns`` reads them back)."""
    groups: dict = {}
    for name, dtype in dtypes.items():
        groups.setdefault(dtype, []).append(name)
    return {tuple(names): jnp.zeros((CHUNK, len(names)), dtype)
            for dtype, names in groups.items()}


def _write_row(rows: dict, metrics: dict, index) -> dict:
    """``rows`` with one epoch's ``metrics`` written as row ``index`` of each buffer: one
    write per buffer."""
    return {names: lax.dynamic_update_slice(
                buffer, jnp.stack([metrics[n].astype(buffer.dtype) for n in names])[None],
                (index, jnp.zeros((), index.dtype)))
            for names, buffer in rows.items()}


def metric_columns(rows: dict) -> dict:
    """``{metric: values}``, NumPy arrays ``(..., CHUNK)``, of a chunk's metric buffers
    (``LeanResult.rows``, ``ChunkResult.rows``; a leading run axis stays)."""
    columns = {}
    for names, buffer in rows.items():
        values = np.asarray(buffer)
        columns.update((name, values[..., i]) for i, name in enumerate(names))
    return {name: columns[name] for name in METRICS if name in columns}


class LeanResult(NamedTuple):
    """One call of the lean loop (``chunk_program``). ``done`` epochs ran with a finite
    loss; if ``done < count`` the epoch after them had a non-finite loss and the loop
    stopped there. ``params`` and ``opt_state`` are the state after the last epoch run,
    and ``finite`` says whether all of it is finite. The chunk is sound when ``done ==
    count`` and ``finite``; otherwise ``fit`` replays it with the checked loop."""

    params: Any
    opt_state: Any
    rows: dict  # (metric names) -> (CHUNK, len(names)): one row per epoch, zeros past done
    done: jax.Array  # int32 scalar
    finite: jax.Array  # bool scalar

    @property
    def metrics(self) -> dict:
        """``{metric: (CHUNK,) NumPy array}``; entries past ``done`` (+1) are zeros."""
        return metric_columns(self.rows)


def lean_epochs_function(components: Components, batch_size: int | None):
    """The pure ``run(params, opt_state, X, y, key, start, count) -> LeanResult``: epochs
    ``start, start + 1, ...`` in one ``lax.while_loop``, at most ``count <= CHUNK`` of
    them, stopping early at the first epoch whose loss is not finite. It carries only the
    state and the metric rows (``_metric_rows``), checks only the loss each epoch and the
    whole state once, after the loop. ``start`` and ``count`` are traced.
    ``chunk_program`` jits it."""
    epoch = _epoch_function(step_function(components), batch_size)

    def run(params, opt_state, X, y, key, start, count):
        rows = _metric_rows(_metric_dtypes(components, params, opt_state, X))

        def not_done(carry):
            *_, done, finite_loss = carry
            return (done < count) & finite_loss

        def body(carry):
            params, opt_state, rows, done, _ = carry
            params, opt_state, metrics = epoch(params, opt_state, X, y, key, start + done)
            finite_loss = jnp.isfinite(metrics["loss"])
            return (params, opt_state, _write_row(rows, metrics, done),
                    done + finite_loss.astype(done.dtype), finite_loss)

        params, opt_state, rows, done, _ = lax.while_loop(
            not_done, body, (params, opt_state, rows, jnp.zeros((), jnp.int32),
                             jnp.asarray(True)))
        return LeanResult(params, opt_state, rows, done, _all_finite((params, opt_state)))

    return run


class RunState(NamedTuple):
    """What the checked loop carries: the state entering the next epoch and the state
    entering the one before (the last state with a finite loss when the loss fails)."""

    params: Any
    opt_state: Any
    previous_params: Any
    previous_opt_state: Any


class ChunkResult(NamedTuple):
    """One call of the checked loop: ``done`` epochs ran and were finite; if ``done <
    count`` the epoch after them failed, and ``metrics[done]`` holds its metrics."""

    state: RunState
    rows: dict  # (metric names) -> (CHUNK, len(names)), as ``LeanResult.rows``
    done: jax.Array  # int32 scalar

    @property
    def metrics(self) -> dict:
        """``{metric: (CHUNK,) NumPy array}`` (``(S, CHUNK)`` for ``runs_program``);
        entries past ``done`` (+1) are zeros."""
        return metric_columns(self.rows)


def epochs_function(components: Components, batch_size: int | None):
    """The checked loop, the pure ``run(state, X, y, key, start, count) -> ChunkResult``:
    epochs ``start, start + 1, ...`` in one ``lax.while_loop``, at most ``count <= CHUNK``
    of them, stopping early at the first epoch whose loss, parameters or optimizer state
    is not finite, and keeping the last state whose loss was. Slower than the lean loop
    (it checks and carries more every epoch) but exact about where a run failed: ``fit``
    runs it on a chunk the lean loop found at fault; ``checked_chunk_program`` jits it,
    ``runs_program`` vmaps it. ``start`` and ``count`` are traced."""
    epoch = _epoch_function(step_function(components), batch_size)

    def run(state: RunState, X, y, key, start, count):
        rows = _metric_rows(_metric_dtypes(components, state.params, state.opt_state, X))

        def not_done(carry):
            _, _, done, failed = carry
            return (done < count) & ~failed

        def body(carry):
            state, rows, done, _ = carry
            params, opt_state, metrics = epoch(state.params, state.opt_state, X, y, key,
                                               start + done)
            rows = _write_row(rows, metrics, done)
            ok = jnp.isfinite(metrics["loss"]) & _all_finite((params, opt_state))
            new_state = RunState(params, opt_state, state.params, state.opt_state)
            state = jax.tree.map(lambda new, old: jnp.where(ok, new, old), new_state, state)
            return state, rows, done + ok.astype(done.dtype), ~ok

        state, rows, done, _ = lax.while_loop(
            not_done, body, (state, rows, jnp.zeros((), jnp.int32), jnp.asarray(False)))
        return ChunkResult(state, rows, done)

    return run


@functools.partial(jax.jit, static_argnums=(0, 1))
def _run_program(static, batch_size, dynamic, params, opt_state, X, y, key, start, count):
    run = lean_epochs_function(combine(dynamic, static), batch_size)
    return run(params, opt_state, X, y, key, start, count)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _checked_program(static, batch_size, dynamic, state, X, y, key, start, count):
    run = epochs_function(combine(dynamic, static), batch_size)
    return run(state, X, y, key, start, count)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _runs_program(static, batch_size, stacked, dynamic, state, X, y, key, start, count):
    def one(dynamic, state, X, y, key):
        run = epochs_function(combine(dynamic, static), batch_size)
        return run(state, X, y, key, start, count)

    return jax.vmap(one, in_axes=(0 if stacked else None, 0, 0, 0, 0))(dynamic, state, X, y,
                                                                       key)


def chunk_program(components: Components, batch_size: int | None) -> BoundProgram:
    """``lean_epochs_function(components, batch_size)`` jitted, the program ``fit`` runs:
    ``program(params, opt_state, X, y, key, start, count) -> LeanResult``, with ``start``
    and ``count`` int32 scalars. Components of one structure share the compiled program."""
    return BoundProgram(_run_program, components, batch_size)


def checked_chunk_program(components: Components, batch_size: int | None) -> BoundProgram:
    """``epochs_function(components, batch_size)`` jitted, the checked loop: ``program(
    state, X, y, key, start, count) -> ChunkResult``. ``fit`` compiles it only when the
    lean loop finds a chunk at fault, to find the exact epoch and the last sound state."""
    return BoundProgram(_checked_program, components, batch_size)


def runs_program(components: Components, batch_size: int | None, *,
                 stacked: bool = False) -> BoundProgram:
    """Many independent runs in one compiled loop: ``checked_chunk_program``
    ``jax.vmap``-ed over a leading run axis ``S`` of ``state``, ``X``, ``y`` and ``key``
    (``start`` and ``count`` are shared; the result's leaves carry the run axis, ``done``
    is ``(S,)``). With ``stacked=True`` the numeric leaves of the components (the
    hyperparameters of models and optimizers of one structure, stacked with
    ``purenn.pytrees.stack``) carry the run axis too: one program trains a grid of
    hyperparameters. One compile per structure, as for ``chunk_program``."""
    return BoundProgram(_runs_program, components, batch_size, stacked)
