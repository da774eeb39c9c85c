"""Training: a jitted train step, whole runs compiled with ``lax.scan``, evaluation.

``train_step`` builds one pure, jitted step. ``fit`` runs whole epochs inside ``lax.scan``
in chunks: the run leaves the compiled loop only at chunk boundaries (every ``log_every``
epochs), to print the book's log line, move a progress bar, check for divergence and write
a checkpoint.

Keys: epoch ``e`` uses ``shuffle_key, dropout_key = epoch_keys(key, e)``; batch ``b`` of
that epoch (``b = 0`` for full batch) gets ``jax.random.fold_in(dropout_key, b)`` as its
step key, and minibatches are taken in the order ``jax.random.permutation(shuffle_key,
N)``. The schedule depends only on ``key`` and the epoch, so chunking, logging and
resuming from a checkpoint never change a run's bits.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from purenn import losses, optimizers
from purenn._checks import check_key
from purenn._validate import CATEGORICAL_LOSSES, check_batch_size, check_dataset, check_epochs
from purenn.layers import Layer

METRICS = ("loss", "data_loss", "reg_loss", "accuracy", "learning_rate")


class DivergenceError(FloatingPointError):
    """The loss became NaN or inf. Nothing is lost: the exception carries the last state
    whose loss was finite.

    Attributes:
      epoch: the first epoch that failed: its loss, or the update it made, was not finite.
      state_epoch: the epoch that ``params`` and ``opt_state`` are ready to run: ``epoch``
        itself, or the start of its chunk if the state entering ``epoch`` was not finite.
      params, opt_state: that state, finite, to inspect or to resume from with a smaller
        learning rate.
      history: the per-epoch metrics of the epochs before ``state_epoch``.
    """

    def __init__(self, message, *, epoch, state_epoch, params, opt_state, history):
        super().__init__(message)
        self.epoch, self.state_epoch, self.history = epoch, state_epoch, history
        self.params, self.opt_state = params, opt_state


def default_accuracy(loss: Callable) -> Callable | None:
    """The accuracy that fits ``loss``: binary for binary cross-entropy, categorical for the
    categorical losses, none for anything else."""
    if loss is losses.binary_crossentropy:
        return losses.binary_accuracy
    if loss in CATEGORICAL_LOSSES:
        return losses.categorical_accuracy
    return None


def epoch_keys(key: jax.Array, epoch) -> tuple[jax.Array, jax.Array]:
    """``(shuffle_key, dropout_key)`` of epoch ``epoch``: ``split(fold_in(key, epoch))``."""
    shuffle_key, dropout_key = jax.random.split(jax.random.fold_in(key, epoch))
    return shuffle_key, dropout_key


# --- sharding -------------------------------------------------------------------------


class _Placement:
    """Where a step's arrays live: the batch split over ``axis`` of ``mesh``, the rest
    replicated. XLA's SPMD partitioner inserts the gradient all-reduce."""

    def __init__(self, mesh: Mesh, axis: str):
        if not isinstance(mesh, Mesh):
            raise TypeError(f"mesh must be a jax.sharding.Mesh, e.g. "
                            f"jax.make_mesh((n,), ('data',)); got {type(mesh).__name__}")
        if axis not in mesh.axis_names:
            raise ValueError(f"data_axis {axis!r} is not an axis of the mesh "
                             f"{mesh.axis_names}; pass data_axis=<one of them>")
        # Auto axes let the partitioner place the intermediate results, whatever axis types
        # the caller's mesh has (jax.make_mesh gives Explicit axes on recent JAX).
        auto = Mesh(mesh.devices, mesh.axis_names,
                    axis_types=(AxisType.Auto,) * len(mesh.axis_names))
        self.axis, self.devices = axis, mesh.shape[axis]
        self.batch = NamedSharding(auto, PartitionSpec(axis))
        self.replicated = NamedSharding(auto, PartitionSpec())

    def __hash__(self):
        return hash((self.batch, self.replicated))

    def __eq__(self, other):
        return isinstance(other, _Placement) and (self.batch, self.replicated) == (
            other.batch, other.replicated)

    def shard_batch(self, x, name):
        if x.shape[0] % self.devices:
            raise ValueError(
                f"{name}: a batch of {x.shape[0]} samples does not divide evenly over the "
                f"{self.devices} devices of mesh axis {self.axis!r}; use a batch size (or "
                f"sample count) that is a multiple of {self.devices}")
        return lax.with_sharding_constraint(x, self.batch)

    def place(self, X, y, params, opt_state):
        """Put a data set on the mesh once: split over the axis where it divides evenly
        (otherwise replicated, and each batch is split inside the step)."""
        rows = self.batch if X.shape[0] % self.devices == 0 else self.replicated
        params, opt_state = jax.device_put((params, opt_state), self.replicated)
        return jax.device_put(X, rows), jax.device_put(y, rows), params, opt_state

    def replicate(self, tree):
        return jax.tree.map(lambda a: lax.with_sharding_constraint(a, self.replicated), tree)


# --- one step -------------------------------------------------------------------------


def _step_function(model: Layer, loss: Callable, optimizer, accuracy, placement):
    """The pure step ``(params, opt_state, x, y, key) -> (params, opt_state, metrics)``."""

    def step(params, opt_state, x, y, key):
        if placement is not None:
            x, y = placement.shard_batch(x, "x"), placement.shard_batch(y, "y")

        def objective(p):
            output = model.apply(p, x, key=key, train=True)
            data_loss = loss(output, y)
            reg_loss = jnp.asarray(model.penalty(p), data_loss.dtype)
            return data_loss + reg_loss, (data_loss, reg_loss, output)

        (total, (data_loss, reg_loss, output)), grads = jax.value_and_grad(
            objective, has_aux=True)(params)
        metrics = {"loss": total, "data_loss": data_loss, "reg_loss": reg_loss,
                   "learning_rate": optimizers.current_learning_rate(opt_state)}
        if accuracy is not None:
            metrics["accuracy"] = jnp.asarray(accuracy(output, y), total.dtype)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optimizers.apply_updates(params, updates)
        if placement is not None:
            params, opt_state = placement.replicate(params), placement.replicate(opt_state)
        return params, opt_state, metrics

    return step


def _check_components(model, loss, optimizer, accuracy):
    if not isinstance(model, Layer):
        raise TypeError(f"model must be a Layer (e.g. pn.serial(...)); got "
                        f"{type(model).__name__}")
    if not callable(loss):
        raise TypeError(f"loss must be a function (y_pred, y_true) -> scalar, e.g. "
                        f"pn.losses.softmax_categorical_crossentropy; got {type(loss).__name__}")
    if not isinstance(optimizer, optimizers.GradientTransformation):
        raise TypeError(f"optimizer must be a GradientTransformation, e.g. "
                        f"pn.optimizers.adam(); got {type(optimizer).__name__}")
    if accuracy is not None and not callable(accuracy):
        raise TypeError(f"accuracy must be a function (y_pred, y_true) -> scalar or None; "
                        f"got {type(accuracy).__name__}")
    return default_accuracy(loss) if accuracy is None else accuracy


def _placement(mesh, data_axis):
    return None if mesh is None else _Placement(mesh, data_axis)


@functools.lru_cache(maxsize=64)
def _jitted_step(model, loss, optimizer, accuracy, placement):
    return jax.jit(_step_function(model, loss, optimizer, accuracy, placement))


def train_step(model: Layer, loss: Callable, optimizer, *, accuracy: Callable | None = None,
               mesh: Mesh | None = None, data_axis: str = "data"):
    """A jitted, pure training step.

    Returns ``step(params, opt_state, x, y, key) -> (params, opt_state, metrics)``, where
    ``x`` is a batch ``(N, features)``, ``y`` its labels, ``key`` the step's dropout key,
    and ``metrics`` a dict of scalars ``loss, data_loss, reg_loss, accuracy,
    learning_rate`` of the forward pass that produced this step's gradient (before the
    update), as the book prints them. ``learning_rate`` is the optimizer's current rate,
    the book's ``optimizer.current_learning_rate``.

    Args:
      model: a Layer, e.g. ``pn.serial(...)``.
      loss: ``(y_pred, y_true) -> mean loss``, e.g. ``pn.losses.binary_crossentropy``.
      optimizer: a ``GradientTransformation``, e.g. ``pn.optimizers.adam()``.
      accuracy: ``(y_pred, y_true) -> scalar``; by default the one that fits ``loss``
        (binary for binary cross-entropy, categorical for the categorical losses).
      mesh: a ``jax.sharding.Mesh``: shard the batch over its ``data_axis`` and replicate
        params and optimizer state (data parallelism; the batch size must be a multiple
        of the axis size).
      data_axis: the mesh axis the batch is split over.

    The same arguments give the same compiled step: building it twice does not recompile.
    """
    accuracy = _check_components(model, loss, optimizer, accuracy)
    return _jitted_step(model, loss, optimizer, accuracy, _placement(mesh, data_axis))


# --- whole runs -----------------------------------------------------------------------


def _epoch_function(step, n_samples: int, batch_size: int | None):
    """One epoch: a full-batch step, or shuffled minibatches that visit each sample once
    (the last batch smaller when ``batch_size`` does not divide ``n_samples``)."""

    def full_batch(params, opt_state, X, y, key, epoch):
        _, dropout_key = epoch_keys(key, epoch)
        return step(params, opt_state, X, y, jax.random.fold_in(dropout_key, 0))

    def minibatches(params, opt_state, X, y, key, epoch):
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
        metrics["learning_rate"] = per_batch["learning_rate"][0]
        return params, opt_state, metrics

    return full_batch if batch_size is None else minibatches


def epochs_function(model, loss, optimizer, accuracy, placement, n_samples, batch_size,
                    length):
    """The pure ``run(params, opt_state, X, y, key, start) -> (params, opt_state, metrics,
    finite)``: epochs ``start .. start + length - 1`` in one ``lax.scan``, metrics stacked
    per epoch, ``finite`` whether every parameter is finite at the end. ``fit`` jits it;
    ``purenn.experiments`` vmaps it over seeds."""
    epoch = _epoch_function(_step_function(model, loss, optimizer, accuracy, placement),
                            n_samples, batch_size)

    def run(params, opt_state, X, y, key, start):
        def body(carry, offset):
            params, opt_state, metrics = epoch(*carry, X, y, key, start + offset)
            return (params, opt_state), metrics

        (params, opt_state), metrics = lax.scan(body, (params, opt_state),
                                                jnp.arange(length))
        finite = jnp.all(jnp.array([jnp.all(jnp.isfinite(leaf))
                                    for leaf in jax.tree.leaves(params)]))
        return params, opt_state, metrics, finite

    return run


@functools.lru_cache(maxsize=64)
def _chunk_runner(model, loss, optimizer, accuracy, placement, n_samples, batch_size, length):
    """``epochs_function`` compiled, once per distinct set of arguments."""
    return jax.jit(epochs_function(model, loss, optimizer, accuracy, placement, n_samples,
                                   batch_size, length))


def _chunk_ends(epochs: int, first: int, every: int, checkpoint_every: int | None):
    """The epochs after which a run leaves the compiled loop: every multiple of ``every``
    (epoch 0 included, so its log line comes at once), the epoch before each multiple of
    ``checkpoint_every``, and the last epoch."""
    ends = {e for e in range(first, epochs) if e % every == 0}
    if checkpoint_every:
        ends |= {e for e in range(first, epochs) if (e + 1) % checkpoint_every == 0}
    if first < epochs:
        ends.add(epochs - 1)
    return sorted(ends)


def format_log_line(epoch: int, metrics: dict) -> str:
    """The book's log line: ``epoch: 100, acc: 0.703, loss: 0.714 (data_loss: 0.672,
    reg_loss: 0.042), lr: 0.019999010049002574``."""
    accuracy = f"acc: {metrics['accuracy']:.3f}, " if "accuracy" in metrics else ""
    return (f"epoch: {epoch}, {accuracy}loss: {metrics['loss']:.3f} "
            f"(data_loss: {metrics['data_loss']:.3f}, reg_loss: {metrics['reg_loss']:.3f}), "
            f"lr: {metrics['learning_rate']!s}")


def format_validation_line(metrics: dict) -> str:
    """The book's validation line: ``validation, acc: 0.830, loss: 0.435``."""
    accuracy = f"acc: {metrics['accuracy']:.3f}, " if "accuracy" in metrics else ""
    return f"validation, {accuracy}loss: {metrics['loss']:.3f}"


def _progress_bar(progress, total: int, initial: int):
    if progress is None:
        progress = total >= 1000 and sys.stderr.isatty()
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is a dependency; a stripped install just runs without a bar
        return None
    return tqdm(total=total, initial=initial, unit="epoch", leave=False, dynamic_ncols=True)


def _all_finite(tree) -> bool:
    return all(bool(np.all(np.isfinite(np.asarray(leaf)))) for leaf in jax.tree.leaves(tree)
               if jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.inexact))


def fit(model: Layer, loss: Callable, optimizer, params, X, y, *, key: jax.Array,
        epochs: int, batch_size: int | None = None, opt_state=None,
        validation_data: tuple | None = None, log_every: int | None = 100,
        log_fn: Callable[[str], Any] | None = print, progress: bool | None = None,
        accuracy: Callable | None = None, checkpoint_path: str | os.PathLike | None = None,
        checkpoint_every: int | None = None, resume: bool = True,
        mesh: Mesh | None = None, data_axis: str = "data"):
    """Train ``params`` for ``epochs`` epochs; the epochs run inside ``lax.scan``.

    Args:
      model, loss, optimizer, accuracy, mesh, data_axis: as for ``train_step``.
      params: the initial parameters, e.g. ``model.init(key)``.
      X: inputs ``(N, features)``; y: labels ``(N,)``/one-hot ``(N, C)`` or binary targets
        ``(N, J)``. Validated once, here: finite inputs, matching sample counts, labels in
        range.
      key: the run's key; epoch ``e`` draws from ``epoch_keys(key, e)``.
      epochs: number of epochs, >= 1.
      batch_size: ``None`` for full batch (the book's experiments); otherwise shuffled
        minibatches from the epoch's key, every sample once per epoch.
      opt_state: the optimizer state to continue from; ``optimizer.init(params)`` if None.
      validation_data: ``(X_val, y_val)``, evaluated after training (the book's
        validation line).
      log_every: print the book's log line every this many epochs (0 or None: never). It
        is also the length of the compiled chunks (100 when not logging).
      log_fn: where log lines go (``print`` by default; None to silence).
      progress: show a tqdm progress bar; by default on for runs of >= 1000 epochs when
        stderr is a terminal.
      checkpoint_path, checkpoint_every: save ``params``, ``opt_state``, the next epoch,
        the key and the history to this safetensors file every ``checkpoint_every`` epochs
        and at the end (atomically). With ``resume=True`` and an existing file, the run
        continues from it and ends bit-identical to an uninterrupted run.

    Returns:
      ``(params, opt_state, history)``; ``history`` maps ``epoch`` and each metric
      (``loss, data_loss, reg_loss, accuracy, learning_rate``) to a NumPy array with one
      entry per epoch, and ``validation`` to the validation metrics when given.

    Raises:
      DivergenceError: when the loss becomes NaN or inf; the exception holds the last
        finite state (see ``DivergenceError``). The function never returns NaN params.
    """
    accuracy = _check_components(model, loss, optimizer, accuracy)
    key = check_key("key", key)
    epochs = check_epochs(epochs)
    X, y = check_dataset(model, loss, params, X, y)
    batch_size = check_batch_size(batch_size, X.shape[0])
    every = _check_every("log_every", log_every) or 100
    checkpoint_every = _check_every("checkpoint_every", checkpoint_every)
    if checkpoint_every and checkpoint_path is None:
        raise ValueError("checkpoint_every needs checkpoint_path: where to save")
    if validation_data is not None:
        validation_data = _check_validation_data(model, loss, params, validation_data)
    placement = _placement(mesh, data_axis)
    if opt_state is None:
        opt_state = optimizer.init(params)
    if placement is not None:
        X, y, params, opt_state = placement.place(X, y, params, opt_state)

    history = {name: [] for name in ("epoch", *METRICS)
               if name != "accuracy" or accuracy is not None}
    first = 0
    if checkpoint_path is not None and resume and os.path.exists(checkpoint_path):
        params, opt_state, first, saved = _resume(checkpoint_path, params, opt_state, key)
        history = {name: saved.get(name, []) for name in history}
        if first > epochs:
            raise ValueError(f"the checkpoint {os.fspath(checkpoint_path)!r} is at epoch "
                             f"{first}, past epochs={epochs}; raise epochs or pass "
                             f"resume=False")
    bar = _progress_bar(progress, epochs, first)
    write = (bar.write if bar is not None else log_fn) if log_fn is not None else None
    start = first
    try:
        for end in _chunk_ends(epochs, first, every, checkpoint_every):
            run = _chunk_runner(model, loss, optimizer, accuracy, placement, X.shape[0],
                                batch_size, end - start + 1)
            new_params, new_opt_state, chunk, finite = run(params, opt_state, X, y, key, start)
            chunk = {name: np.asarray(values) for name, values in chunk.items()}
            if not (finite and np.all(np.isfinite(chunk["loss"]))):
                raise _divergence(model, loss, optimizer, accuracy, placement, batch_size,
                                  params, opt_state, X, y, key, start, chunk, history)
            params, opt_state = new_params, new_opt_state
            _extend(history, start, chunk)
            for epoch in range(start, end + 1):
                if write is not None and log_every and epoch % log_every == 0:
                    write(format_log_line(epoch, {name: values[epoch - start]
                                                  for name, values in chunk.items()}))
            if checkpoint_path is not None and (
                    end == epochs - 1 or (checkpoint_every and (end + 1) % checkpoint_every == 0)):
                _save(checkpoint_path, params, opt_state, end + 1, key, history)
            if bar is not None:
                bar.update(end - start + 1)
            start = end + 1
    finally:
        if bar is not None:
            bar.close()
    history = _stack(history)
    if validation_data is not None:
        history["validation"] = evaluate(model, loss, params, *validation_data,
                                         accuracy=accuracy)
        if log_fn is not None:
            log_fn(format_validation_line(history["validation"]))
    return params, opt_state, history


def _check_every(name, value):
    if value is None or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a positive integer (or 0/None to turn it off); "
                         f"got {value!r}")
    return value


def _check_validation_data(model, loss, params, validation_data):
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
        raise TypeError("validation_data must be a pair (X_val, y_val)")
    return check_dataset(model, loss, params, *validation_data, names=("X_val", "y_val"))


def _extend(history, start, chunk):
    """Append a chunk's per-epoch metrics (NumPy arrays, dtypes kept) to ``history``."""
    length = len(chunk["loss"])
    history["epoch"].append(np.arange(start, start + length))
    for name, values in chunk.items():
        history[name].append(values)


def _stack(history):
    return {name: np.concatenate(parts) if parts else np.zeros(0)
            for name, parts in history.items()}


def _divergence(model, loss, optimizer, accuracy, placement, batch_size, params, opt_state,
                X, y, key, start, chunk, history):
    """Find the first bad epoch of a chunk, replay up to the last finite state, and build
    the error. Only runs when training has diverged."""
    finite_loss = np.isfinite(chunk["loss"])
    length = len(finite_loss)
    if finite_loss.all():  # the losses were fine, the final update was not
        bad = start + length
        what = f"the parameters became non-finite at epoch {bad - 1}"
    else:
        bad = start + int(np.argmin(finite_loss))
        what = f"the loss became {chunk['loss'][bad - start]} at epoch {bad}"
    state_epoch = start
    for target in (bad, bad - 1):  # the state entering the first bad epoch, or the one before
        if target <= start:
            continue
        run = _chunk_runner(model, loss, optimizer, accuracy, placement, X.shape[0],
                            batch_size, target - start)
        replayed_params, replayed_opt_state, _, finite = run(params, opt_state, X, y, key,
                                                             start)
        if finite and _all_finite(replayed_opt_state):
            params, opt_state, state_epoch = replayed_params, replayed_opt_state, target
            _extend(history, start, {name: values[:target - start]
                                     for name, values in chunk.items()})
            break
    return DivergenceError(
        f"{what}: training diverged. The exception keeps the last finite state, entering "
        f"epoch {state_epoch} (.params, .opt_state, .state_epoch, .history); lower the "
        f"learning rate or clip the gradients: "
        f"pn.optimizers.chain(pn.optimizers.clip_by_global_norm(1.0), ...)",
        epoch=min(bad, start + length - 1), state_epoch=state_epoch, params=params,
        opt_state=opt_state, history=_stack(history))


# --- checkpoints of a run -------------------------------------------------------------


def _save(path, params, opt_state, next_epoch, key, history):
    from purenn import checkpoint

    checkpoint.save(path, {
        "params": params,
        "opt_state": opt_state,
        "epoch": np.asarray(next_epoch, np.int64),
        "key": jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
        else key,
        "history": _stack(history),
    })


def _resume(path, params, opt_state, key):
    from purenn import checkpoint

    raw = checkpoint.load(path)
    saved_key = np.asarray(raw.get("key"))
    key_data = np.asarray(jax.random.key_data(key) if jnp.issubdtype(
        key.dtype, jax.dtypes.prng_key) else key)
    if saved_key.shape != key_data.shape or not np.array_equal(saved_key, key_data):
        raise ValueError(f"the checkpoint {os.fspath(path)!r} was written by a run with "
                         f"another key; pass the same key to resume it, resume=False to "
                         f"start over, or another checkpoint_path")
    like = {"params": params, "opt_state": opt_state,
            "epoch": jax.ShapeDtypeStruct((), np.int64),
            "key": jax.ShapeDtypeStruct(key_data.shape, key_data.dtype),
            "history": {name: jax.ShapeDtypeStruct(np.shape(values), np.asarray(values).dtype)
                        for name, values in raw["history"].items()}}
    state = checkpoint.load(path, like=like)
    history = {name: [np.asarray(values)] for name, values in state["history"].items()}
    return state["params"], state["opt_state"], int(state["epoch"]), history


# --- evaluation -----------------------------------------------------------------------


def evaluation_function(model, loss, accuracy):
    """The pure ``evaluate_batch(params, X, y) -> {"loss", "accuracy"}`` in inference mode.
    ``evaluate`` jits it; ``purenn.experiments`` vmaps it over seeds."""

    def evaluate_batch(params, X, y):
        output = model.apply(params, X)
        metrics = {"loss": loss(output, y)}
        if accuracy is not None:
            metrics["accuracy"] = accuracy(output, y)
        return metrics

    return evaluate_batch


@functools.lru_cache(maxsize=64)
def _jitted_evaluate(model, loss, accuracy):
    return jax.jit(evaluation_function(model, loss, accuracy))


def evaluate(model: Layer, loss: Callable, params, X, y, *,
             accuracy: Callable | None = None) -> dict[str, float]:
    """Loss and accuracy of ``params`` on ``(X, y)`` in inference mode (``train=False``:
    dropout off), as the book's validation pass computes them.

    Returns:
      ``{"loss": data loss, "accuracy": ...}`` as Python floats (no regularization term,
      as in the book's validation line).
    """
    if not isinstance(model, Layer):
        raise TypeError(f"model must be a Layer (e.g. pn.serial(...)); got "
                        f"{type(model).__name__}")
    accuracy = default_accuracy(loss) if accuracy is None else accuracy
    X, y = check_dataset(model, loss, params, X, y)
    metrics = _jitted_evaluate(model, loss, accuracy)(params, X, y)
    return {name: float(value) for name, value in metrics.items()}
