"""Training: a jitted train step, whole runs compiled once, evaluation and prediction.

``train_step`` builds one pure, jitted step. ``fit`` runs whole epochs inside one compiled
loop whose epoch count is traced, so a run compiles **one** training program whatever its
``epochs``, ``log_every``, ``checkpoint_every`` or ``initial_epoch`` (plus one program for
evaluation when there is validation data). The run leaves the compiled loop at log lines,
validation points, checkpoints and at least every ``CHUNK`` epochs, to print the book's
log line, move a progress bar and check for divergence.

**One compile per structure.** The model and the optimizer are pytrees whose numeric
hyperparameters are leaves; every jitted program here takes them as *arguments* (their
non-numeric parts, such as the loss function or a schedule, are static). Models and
optimizers that differ only in hyperparameter values, seeds, epoch counts or logging
intervals reuse the same compiled programs.

Keys: epoch ``e`` uses ``shuffle_key, dropout_key = epoch_keys(key, e)``; batch ``b`` of
that epoch (``b = 0`` for full batch) gets ``jax.random.fold_in(dropout_key, b)`` as its
step key, and minibatches are taken in the order ``jax.random.permutation(shuffle_key,
N)``. The schedule depends only on ``key`` and the epoch, so chunking, logging, resuming
from a checkpoint and continuing with ``initial_epoch`` never change a run's bits.
"""

from __future__ import annotations

import functools
import numbers
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from purenn import layers, losses, ops, optimizers
from purenn._checks import check_key, check_matrix
from purenn._validate import CATEGORICAL_LOSSES, check_batch_size, check_dataset, check_epochs
from purenn.layers import Layer
from purenn.progress import progress_bar

METRICS = ("loss", "data_loss", "reg_loss", "accuracy", "learning_rate")
VALIDATION = ("val_loss", "val_accuracy")
CHUNK = 100  # the most epochs one call of the compiled loop runs (its metrics buffer)
MAX_EPOCH = 2**31 - 1  # epochs are int32 inside the programs


class DivergenceError(FloatingPointError):
    """The loss, the parameters or the optimizer state became NaN or inf. Nothing is
    lost: the exception carries the last state whose loss was finite.

    Attributes:
      epoch: the first epoch that failed: its loss, or the state its update made, was not
        finite.
      state_epoch: the epoch that ``params`` and ``opt_state`` enter: ``epoch`` itself
        when only its update failed, ``epoch - 1`` when its loss was already not finite
        (the run's first epoch if there is none before it). The training loss at
        ``state_epoch`` was finite, unless ``state_epoch`` is the run's first epoch and
        ``epoch == state_epoch``.
      params, opt_state: that state, all finite, to inspect or to resume from with a
        smaller learning rate (``fit(..., opt_state=e.opt_state, initial_epoch=
        e.state_epoch)``).
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


# --- static and dynamic parts of the components ---------------------------------------


def _is_data(leaf) -> bool:
    return (isinstance(leaf, (jax.Array, np.ndarray, np.generic, numbers.Number))
            and not isinstance(leaf, bool))


class _Static(NamedTuple):
    """The static half of a pytree: its structure and its non-numeric leaves (functions,
    placements), hashable, so a jitted program is keyed on it."""

    treedef: Any
    leaves: tuple  # the non-numeric leaves, None where the leaf is data


class _Unhashable:
    """A non-numeric leaf that cannot be hashed, e.g. an optimizer written as a plain
    ``@dataclass`` (which sets ``__hash__ = None``). It is equal only to itself, so each
    ``_partition`` of it compiles its own program: never one built for older values."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


def _static_leaf(leaf):
    try:
        hash(leaf)
    except TypeError:
        return _Unhashable(leaf)
    return leaf


def _partition(tree) -> tuple[tuple, _Static]:
    """Split ``tree`` into its numeric leaves (jit arguments) and the static rest."""
    leaves, treedef = jax.tree.flatten(tree)
    dynamic = tuple(leaf if _is_data(leaf) else None for leaf in leaves)
    static = tuple(None if _is_data(leaf) else _static_leaf(leaf) for leaf in leaves)
    return dynamic, _Static(treedef, static)


def _combine(dynamic: tuple, static: _Static):
    leaves = [(s.value if isinstance(s, _Unhashable) else s) if d is None else d
              for d, s in zip(dynamic, static.leaves)]
    return jax.tree.unflatten(static.treedef, leaves)


class _Components(NamedTuple):
    """What a program is built from. ``placement`` and the functions are static."""

    model: Layer
    loss: Callable
    optimizer: Any
    accuracy: Callable | None
    placement: Any


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


def _placement(mesh, data_axis):
    return None if mesh is None else _Placement(mesh, data_axis)


# --- checks where the components are handed in -----------------------------------------


def _last_layer(model) -> tuple[Layer, str]:
    """The layer that makes the model's output, looking through serial and dropout, and
    where it sits (``"model.layers[3]"``)."""
    where = "model"
    while isinstance(model, layers.Serial):
        rest = [i for i, layer in enumerate(model.layers)
                if not isinstance(layer, layers.Dropout)]
        if not rest:
            break
        where += f".layers[{rest[-1]}]"
        model = model.layers[rest[-1]]
    return model, where


def check_output_layer(model, loss) -> None:
    """Refuse a last layer that does not fit the loss: a softmax (or sigmoid) before the
    loss that applies its own softmax, or a layer that cannot output probabilities (dense,
    relu) before a loss that expects them. Layers purenn does not know (``custom``) pass.

    Raises:
      ValueError: naming the layer and the fix, e.g. ``the model's last layer,
        model.layers[3], is a softmax layer, but softmax_categorical_crossentropy expects
        logits and applies the softmax itself: remove the softmax layer ...``.
    """
    last, where = _last_layer(model)
    kind = type(last).__name__.lower()
    subject = (f"the model is a {kind} layer" if where == "model" else
               f"the model's last layer, {where}, is a {kind} layer")
    if loss is losses.softmax_categorical_crossentropy and isinstance(
            last, (layers.Softmax, layers.Sigmoid)):
        raise ValueError(f"{subject}, but softmax_categorical_crossentropy expects logits "
                         f"and applies the softmax itself: remove the {kind} layer (or use "
                         f"categorical_crossentropy on probabilities)")
    if loss in (losses.categorical_crossentropy, losses.binary_crossentropy) and isinstance(
            last, (layers.Dense, layers.Relu)):
        name = loss.__name__
        fix = ("add pn.sigmoid() as the last layer" if loss is losses.binary_crossentropy
               else "add pn.softmax() as the last layer, or use "
                    "softmax_categorical_crossentropy on the logits")
        raise ValueError(f"{subject}, which does not output probabilities, but {name} "
                         f"expects probabilities: {fix}")


def _check_components(model, loss, optimizer, accuracy, *, need_optimizer=True):
    if not isinstance(model, Layer):
        raise TypeError(f"model must be a Layer (e.g. pn.serial(...)); got "
                        f"{type(model).__name__}")
    if not callable(loss):
        raise TypeError(f"loss must be a function (y_pred, y_true) -> scalar, e.g. "
                        f"pn.losses.softmax_categorical_crossentropy; got {type(loss).__name__}")
    if need_optimizer and not optimizers.is_optimizer(optimizer):
        hint = " Did you pass adam instead of adam()?" if callable(optimizer) else ""
        raise TypeError(f"optimizer must have init and update methods, e.g. "
                        f"pn.optimizers.adam() or an optax transformation; got "
                        f"{type(optimizer).__name__}.{hint}")
    if accuracy is not None and not callable(accuracy):
        raise TypeError(f"accuracy must be a function (y_pred, y_true) -> scalar or None; "
                        f"got {type(accuracy).__name__}")
    check_output_layer(model, loss)
    return default_accuracy(loss) if accuracy is None else accuracy


# --- one step -------------------------------------------------------------------------


def _first_learning_rate(opt_state):
    """The rate the log line prints: the outermost one the state holds (see
    ``optimizers.learning_rates``), or None."""
    found = optimizers.learning_rates(opt_state)
    return found[0] if found else None


def _step_function(c: _Components):
    """The pure step ``(params, opt_state, x, y, key) -> (params, opt_state, metrics)``."""

    def step(params, opt_state, x, y, key):
        if c.placement is not None:
            x, y = c.placement.shard_batch(x, "x"), c.placement.shard_batch(y, "y")

        def objective(p):
            output = c.model.apply(p, x, key=key, train=True)
            data_loss = c.loss(output, y)
            reg_loss = jnp.asarray(c.model.penalty(p), data_loss.dtype)
            return data_loss + reg_loss, (data_loss, reg_loss, output)

        (total, (data_loss, reg_loss, output)), grads = jax.value_and_grad(
            objective, has_aux=True)(params)
        metrics = {"loss": total, "data_loss": data_loss, "reg_loss": reg_loss}
        if c.accuracy is not None:
            metrics["accuracy"] = jnp.asarray(c.accuracy(output, y), total.dtype)
        learning_rate = _first_learning_rate(opt_state)
        if learning_rate is not None:
            metrics["learning_rate"] = learning_rate
        updates, opt_state = c.optimizer.update(grads, opt_state, params)
        params = optimizers.apply_updates(params, updates)
        if c.placement is not None:
            params, opt_state = c.placement.replicate(params), c.placement.replicate(opt_state)
        return params, opt_state, metrics

    return step


@functools.partial(jax.jit, static_argnums=0)
def _step_program(static, dynamic, params, opt_state, x, y, key):
    return _step_function(_combine(dynamic, static))(params, opt_state, x, y, key)


def train_step(model: Layer, loss: Callable, optimizer, *, accuracy: Callable | None = None,
               mesh: Mesh | None = None, data_axis: str = "data"):
    """A jitted, pure training step.

    Returns ``step(params, opt_state, x, y, key) -> (params, opt_state, metrics)``, where
    ``x`` is a batch ``(N, features)``, ``y`` its labels, ``key`` the step's dropout key,
    and ``metrics`` a dict of scalars ``loss, data_loss, reg_loss, accuracy,
    learning_rate`` of the forward pass that produced this step's gradient (before the
    update), as the book prints them. ``learning_rate`` is the optimizer's current rate,
    the book's ``optimizer.current_learning_rate`` (absent for an optimizer whose state
    holds none).

    Args:
      model: a Layer, e.g. ``pn.serial(...)``.
      loss: ``(y_pred, y_true) -> mean loss``, e.g. ``pn.losses.binary_crossentropy``.
      optimizer: anything with ``init`` and ``update``, e.g. ``pn.optimizers.adam()`` or
        an optax transformation.
      accuracy: ``(y_pred, y_true) -> scalar``; by default the one that fits ``loss``
        (binary for binary cross-entropy, categorical for the categorical losses).
      mesh: a ``jax.sharding.Mesh``: shard the batch over its ``data_axis`` and replicate
        params and optimizer state (data parallelism; the batch size must be a multiple
        of the axis size).
      data_axis: the mesh axis the batch is split over.

    Steps of models and optimizers with the same structure share one compiled program:
    another learning rate or L2 strength compiles nothing new.

    Raises:
      ValueError: the model's last layer does not fit the loss (see
        ``check_output_layer``).
    """
    accuracy = _check_components(model, loss, optimizer, accuracy)
    dynamic, static = _partition(
        _Components(model, loss, optimizer, accuracy, _placement(mesh, data_axis)))

    return _Step(static, dynamic)


class _Step:
    """``train_step``'s result: call it like a function; ``lower`` as on a jitted one."""

    def __init__(self, static, dynamic):
        self._static, self._dynamic = static, dynamic

    def __call__(self, params, opt_state, x, y, key):
        return _step_program(self._static, self._dynamic, params, opt_state, x, y, key)

    def lower(self, params, opt_state, x, y, key):
        """The step lowered for these arguments (``.compile().as_text()`` shows it)."""
        return _step_program.lower(self._static, self._dynamic, params, opt_state, x, y, key)


# --- whole runs -----------------------------------------------------------------------


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

    return full_batch if batch_size is None else minibatches


def _all_finite(tree) -> jax.Array:
    """Whether every inexact leaf of ``tree`` is finite (a traced scalar bool)."""
    checks = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)
              if jnp.issubdtype(jnp.result_type(leaf), jnp.inexact)]
    return jnp.all(jnp.stack(checks)) if checks else jnp.asarray(True)


class RunState(NamedTuple):
    """What the compiled loop carries: the state entering the next epoch and the state
    entering the one before (the last state with a finite loss when the loss fails)."""

    params: Any
    opt_state: Any
    previous_params: Any
    previous_opt_state: Any


class ChunkResult(NamedTuple):
    """One call of the compiled loop: ``done`` epochs ran and were finite; if ``done <
    count`` the epoch after them failed, and ``metrics[done]`` holds its metrics."""

    state: RunState
    metrics: dict  # metric -> (CHUNK,) array; entries past done (+1) are zeros
    done: jax.Array  # int32 scalar


def epochs_function(components: _Components, batch_size: int | None):
    """The pure ``run(state, X, y, key, start, count) -> ChunkResult``: epochs ``start,
    start + 1, ...`` in one ``lax.while_loop``, at most ``count <= CHUNK`` of them,
    stopping early at the first epoch whose loss, parameters or optimizer state is not
    finite. ``start`` and ``count`` are traced: one program serves every chunk of a run.
    ``fit`` jits it; ``purenn.experiments`` vmaps it over runs."""
    epoch = _epoch_function(_step_function(components), batch_size)

    def run(state: RunState, X, y, key, start, count):
        dtype = jnp.result_type(X, *[leaf for leaf in jax.tree.leaves(state.params)
                                     if jnp.issubdtype(jnp.result_type(leaf), jnp.floating)])
        learning_rate = _first_learning_rate(state.opt_state)
        names = [n for n in METRICS if n != "learning_rate" and
                 (n != "accuracy" or components.accuracy is not None)]
        buffer = {name: jnp.zeros(CHUNK, dtype) for name in names}
        if learning_rate is not None:
            buffer["learning_rate"] = jnp.zeros(CHUNK, jnp.result_type(learning_rate))

        def not_done(carry):
            _, _, done, failed = carry
            return (done < count) & ~failed

        def body(carry):
            state, buffer, done, _ = carry
            params, opt_state, metrics = epoch(state.params, state.opt_state, X, y, key,
                                               start + done)
            buffer = {name: buffer[name].at[done].set(metrics[name].astype(buffer[name].dtype))
                      for name in buffer}
            ok = jnp.isfinite(metrics["loss"]) & _all_finite((params, opt_state))
            new_state = RunState(params, opt_state, state.params, state.opt_state)
            state = jax.tree.map(lambda new, old: jnp.where(ok, new, old), new_state, state)
            return state, buffer, done + ok.astype(done.dtype), ~ok

        state, buffer, done, _ = lax.while_loop(
            not_done, body, (state, buffer, jnp.zeros((), jnp.int32), jnp.asarray(False)))
        return ChunkResult(state, buffer, done)

    return run


@functools.partial(jax.jit, static_argnums=(0, 1))
def _run_program(static, batch_size, dynamic, state, X, y, key, start, count):
    run = epochs_function(_combine(dynamic, static), batch_size)
    return run(state, X, y, key, start, count)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _runs_program(static, batch_size, stacked, dynamic, state, X, y, key, start, count):
    """``_run_program`` vmapped over a leading run axis of ``state``, ``X``, ``y`` and
    ``key`` (and of the components' numeric leaves when ``stacked``)."""

    def one(dynamic, state, X, y, key):
        run = epochs_function(_combine(dynamic, static), batch_size)
        return run(state, X, y, key, start, count)

    return jax.vmap(one, in_axes=(0 if stacked else None, 0, 0, 0, 0))(dynamic, state, X, y,
                                                                       key)


def format_log_line(epoch: int, metrics: dict) -> str:
    """The book's log line: ``epoch: 100, acc: 0.703, loss: 0.714 (data_loss: 0.672,
    reg_loss: 0.042), lr: 0.019999010049002574``."""
    accuracy = f"acc: {metrics['accuracy']:.3f}, " if "accuracy" in metrics else ""
    rate = f", lr: {metrics['learning_rate']!s}" if "learning_rate" in metrics else ""
    return (f"epoch: {epoch}, {accuracy}loss: {metrics['loss']:.3f} "
            f"(data_loss: {metrics['data_loss']:.3f}, reg_loss: {metrics['reg_loss']:.3f})"
            f"{rate}")


def format_validation_line(metrics: dict) -> str:
    """The book's validation line: ``validation, acc: 0.830, loss: 0.435``."""
    accuracy = f"acc: {metrics['accuracy']:.3f}, " if "accuracy" in metrics else ""
    return f"validation, {accuracy}loss: {metrics['loss']:.3f}"


class _History:
    """Per-epoch metrics and validation points of a run, as NumPy arrays."""

    def __init__(self, names, first_epoch):
        self.first_epoch = first_epoch
        self.parts = {name: [] for name in names}
        self.validation = {name: [] for name in ("val_epoch", *VALIDATION)}

    def extend(self, chunk: dict, length: int):
        for name, values in chunk.items():
            self.parts[name].append(values[:length])

    def add_validation(self, epoch: int, metrics: dict):
        self.validation["val_epoch"].append(epoch)
        for name in VALIDATION:
            if name[4:] in metrics:
                self.validation[name].append(metrics[name[4:]])

    def keep_validation(self, keep: Callable[[int], bool]):
        """Keep the validation points whose epoch passes ``keep``."""
        rows = [i for i, epoch in enumerate(self.validation["val_epoch"]) if keep(int(epoch))]
        self.validation = {name: [values[i] for i in rows] if values else values
                           for name, values in self.validation.items()}

    def truncate(self, length: int):
        """Keep the first ``length`` epochs."""
        self.parts = {name: [np.concatenate(parts)[:length]] if parts else parts
                      for name, parts in self.parts.items()}

    def epochs_done(self) -> int:
        return sum(len(part) for part in self.parts["loss"])

    def arrays(self, *, with_validation: bool) -> dict:
        done = self.epochs_done()
        out = {"epoch": np.arange(self.first_epoch, self.first_epoch + done, dtype=np.int64)}
        for name, parts in self.parts.items():
            out[name] = np.concatenate(parts) if parts else np.zeros(0)
        if with_validation:
            out["val_epoch"] = np.asarray(self.validation["val_epoch"], np.int64)
            for name in VALIDATION:
                if self.validation[name]:
                    # float32 unless jax_enable_x64: a checkpoint must load in this mode
                    out[name] = np.asarray(self.validation[name],
                                           jax.dtypes.canonicalize_dtype(np.float64))
                elif name == "val_loss" or "accuracy" in self.parts:
                    out[name] = np.zeros(0)
        return out


def _check_every(name, value):
    if value is None or (not isinstance(value, bool) and isinstance(value, numbers.Integral)
                         and value == 0):
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a positive integer (or 0/None to turn it off); "
                         f"got {value!r}")
    return int(value)


def _check_initial_epoch(initial_epoch, epochs) -> int:
    if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, numbers.Integral):
        raise TypeError(f"initial_epoch must be an integer >= 0; got {initial_epoch!r}")
    if initial_epoch < 0:
        raise ValueError(f"initial_epoch must be >= 0; got {initial_epoch}")
    if int(initial_epoch) + epochs > MAX_EPOCH:
        raise ValueError(f"initial_epoch + epochs must be at most {MAX_EPOCH} (epochs are "
                         f"int32); got {int(initial_epoch)} + {epochs}")
    return int(initial_epoch)


def _check_patience(patience, validation_data):
    if patience is None:
        return None
    if isinstance(patience, bool) or not isinstance(patience, numbers.Integral) or patience < 1:
        raise ValueError(f"patience must be a positive integer (validation evaluations "
                         f"without a lower validation loss) or None; got {patience!r}")
    if validation_data is None:
        raise ValueError("patience needs validation_data=(X_val, y_val): early stopping "
                         "watches the validation loss")
    return int(patience)


def _check_checkpoint_path(checkpoint_path, checkpoint_every):
    if checkpoint_every and checkpoint_path is None:
        raise ValueError("checkpoint_every needs checkpoint_path: where to save")
    if checkpoint_path is None:
        return None
    path = os.fspath(checkpoint_path)
    folder = os.path.dirname(os.path.abspath(path)) if path else ""
    if not path or os.path.isdir(path):
        raise ValueError(f"checkpoint_path {path!r} must name a file, e.g. 'run.safetensors'")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"checkpoint_path {path!r}: the folder {folder!r} does not "
                                f"exist; create it first")
    return path


def _check_validation_data(model, loss, params, validation_data):
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
        raise TypeError("validation_data must be a pair (X_val, y_val)")
    return check_dataset(model, loss, params, *validation_data, names=("X_val", "y_val"))


def _next_stop(start: int, end: int, every: int, checkpoint_every: int | None) -> int:
    """The last epoch of the chunk that begins at ``start``: the next multiple of
    ``every`` (where the log line and validation go; epoch 0 included, so its line comes
    at once), the epoch before the next multiple of ``checkpoint_every``, ``CHUNK``
    epochs on, or the run's last epoch ``end - 1``."""
    stop = min(end - 1, start + CHUNK - 1, -(-start // every) * every)
    if checkpoint_every:
        stop = min(stop, -(-(start + 1) // checkpoint_every) * checkpoint_every - 1)
    return max(stop, start)


def fit(model: Layer, loss: Callable, optimizer, params, X, y, *, key: jax.Array,
        epochs: int, batch_size: int | None = None, opt_state=None,
        validation_data: tuple | None = None, patience: int | None = None,
        initial_epoch: int = 0, log_every: int | None = 100,
        log_fn: Callable[[str], Any] | None = print, progress: bool | None = None,
        accuracy: Callable | None = None, checkpoint_path: str | os.PathLike | None = None,
        checkpoint_every: int | None = None, resume: bool = True,
        mesh: Mesh | None = None, data_axis: str = "data"):
    """Train ``params`` for ``epochs`` epochs inside one compiled loop.

    Args:
      model, loss, optimizer, accuracy, mesh, data_axis: as for ``train_step``.
      params: the initial parameters, e.g. ``model.init(key)``.
      X: inputs ``(N, features)``; y: labels ``(N,)``/one-hot ``(N, C)`` or binary targets
        ``(N, J)``. Validated once, here: finite inputs, matching sample counts, labels in
        range.
      key: the run's key; epoch ``e`` draws from ``epoch_keys(key, e)``.
      epochs: how many epochs this call runs, >= 1: epochs ``initial_epoch`` to
        ``initial_epoch + epochs - 1``.
      batch_size: ``None`` for full batch (the book's experiments); otherwise shuffled
        minibatches from the epoch's key, every sample once per epoch.
      opt_state: the optimizer state to continue from; ``optimizer.init(params)`` if None.
      validation_data: ``(X_val, y_val)``, evaluated in inference mode after each log
        epoch (every ``log_every`` epochs, 100 when not logging) and after the last one;
        ``history`` gets ``val_epoch``, ``val_loss``, ``val_accuracy`` and ``validation``
        (the final evaluation, printed as the book's validation line).
      patience: early stopping: stop after this many validation evaluations without a
        lower validation loss, and return the params and optimizer state of the best
        one (``history["best_epoch"]``: the epoch after which they were taken). Needs
        ``validation_data``; None (default) trains every epoch, as the book does. A run
        resumed from its checkpoint counts afresh from the resume (the best params
        before it are not in the checkpoint).
      initial_epoch: the first epoch's number: continue a run's key schedule, e.g. 40
        epochs, then ``epochs=60, initial_epoch=40, opt_state=<the returned state>``
        ends bit-identical to 100 epochs in one call.
      log_every: print the book's log line every this many epochs (0 or None: never).
      log_fn: where log lines go (``print`` by default; None to silence). With several
        processes (``jax.distributed``) only process 0 logs. With ``validation_data`` the
        run ends with the last epoch's line (unless it was just printed), a line saying
        where early stopping stopped (if it did), then the book's validation line.
      progress: show a tqdm progress bar; by default on for runs of >= 1000 epochs when
        stderr is a terminal.
      checkpoint_path, checkpoint_every: save ``params``, ``opt_state``, the next epoch,
        the key and the history to this safetensors file every ``checkpoint_every`` epochs,
        at the end and when interrupted (``KeyboardInterrupt``: the last finished chunk is
        saved, then the exception goes on). With ``resume=True`` and an existing file,
        the run continues from it and ends bit-identical to an uninterrupted run.

    Returns:
      ``(params, opt_state, history)``; ``history`` maps ``epoch`` and each metric
      (``loss, data_loss, reg_loss, accuracy, learning_rate``) to a NumPy array with one
      entry per epoch, plus the validation entries above when ``validation_data`` is given.

    Raises:
      DivergenceError: when the loss, the parameters or the optimizer state become NaN or
        inf; the exception holds the last state whose loss was finite. ``fit`` never
        returns a non-finite state.
      ValueError: bad arguments, e.g. a last layer that does not fit the loss.
    """
    accuracy = _check_components(model, loss, optimizer, accuracy)
    key = check_key("key", key)
    epochs = check_epochs(epochs)
    first = _check_initial_epoch(initial_epoch, epochs)
    end = first + epochs
    X, y = check_dataset(model, loss, params, X, y)
    batch_size = check_batch_size(batch_size, X.shape[0])
    log_every = _check_every("log_every", log_every)
    every = log_every or CHUNK
    checkpoint_every = _check_every("checkpoint_every", checkpoint_every)
    checkpoint_path = _check_checkpoint_path(checkpoint_path, checkpoint_every)
    patience = _check_patience(patience, validation_data)
    if validation_data is not None:
        validation_data = _check_validation_data(model, loss, params, validation_data)
    placement = _placement(mesh, data_axis)
    if opt_state is None:
        opt_state = optimizer.init(params)
    if placement is not None:
        X, y, params, opt_state = placement.place(X, y, params, opt_state)
    components = _Components(model, loss, optimizer, accuracy, placement)
    dynamic, static = _partition(components)
    evaluator = _Evaluator(model, loss, accuracy) if validation_data is not None else None

    names = [name for name in METRICS if name != "accuracy" or accuracy is not None]
    if _first_learning_rate(opt_state) is None:
        names.remove("learning_rate")
    history = _History(names, first)
    start = first
    if checkpoint_path is not None and resume and os.path.exists(checkpoint_path):
        params, opt_state, start, history = _resume(checkpoint_path, params, opt_state, key,
                                                    history)
        if placement is not None:
            params, opt_state = jax.device_put((params, opt_state), placement.replicated)
        else:  # uncommitted, as the caller's arrays are: the same compiled program serves
            params, opt_state = jax.tree.map(lambda a: jnp.asarray(np.asarray(a)),
                                             (params, opt_state))
        # A shorter earlier run validated after its last epoch too; this one does not.
        history.keep_validation(lambda epoch: epoch % every == 0)
        if start > end:
            raise ValueError(f"the checkpoint {checkpoint_path!r} is at epoch {start}, past "
                             f"the run's last epoch {end - 1}; raise epochs or pass "
                             f"resume=False")
    if jax.process_index() != 0:
        log_fn = None
    bar = progress_bar(progress, end - first, initial=start - first)
    write = (bar.write if bar is not None else log_fn) if log_fn is not None else None
    # ``current`` is (state, next epoch), replaced in one assignment, so an interrupt
    # always sees a state and the epoch it enters together.
    current = (RunState(params, opt_state, params, opt_state), start)
    run_start = start
    best = None  # (val_loss, epoch, params, opt_state) of the best validation point
    waited, stopped = 0, False
    try:
        while start < end:
            stop = _next_stop(start, end, every, checkpoint_every)
            result = _run_program(static, batch_size, dynamic, current[0], X, y, key,
                                  np.int32(start), np.int32(stop - start + 1))
            chunk = {name: np.asarray(values) for name, values in result.metrics.items()}
            done = int(result.done)
            if done < stop - start + 1:
                raise _divergence(result, chunk, done, start, run_start, history)
            history.extend(chunk, done)
            validated = evaluator is not None and (stop % every == 0 or stop + 1 == end)
            if validated:  # before the state is taken, so an interrupt keeps them together
                metrics = evaluator(result.state.params, *validation_data)
                history.add_validation(stop, metrics)
            current = (result.state, stop + 1)
            state, start = current
            for offset in range(done):
                epoch = stop + 1 - done + offset
                if write is not None and log_every and epoch % log_every == 0:
                    write(format_log_line(epoch, {name: values[offset]
                                                  for name, values in chunk.items()}))
            if validated:
                if best is None or metrics["loss"] < best[0]:
                    best, waited = (metrics["loss"], stop, state.params, state.opt_state), 0
                else:
                    waited += 1
            if checkpoint_path is not None and (start == end or (
                    checkpoint_every and start % checkpoint_every == 0)):
                _save(checkpoint_path, state.params, state.opt_state, start, key, history)
            if bar is not None:
                bar.update(start - first - bar.n)
            if patience is not None and waited >= patience and start < end:
                stopped = True
                break
    except KeyboardInterrupt:
        if checkpoint_path is not None:
            state, start = current
            history.truncate(start - first)
            history.keep_validation(lambda epoch: epoch < start)
            _save(checkpoint_path, state.params, state.opt_state, start, key, history)
        raise
    finally:
        if bar is not None:
            bar.close()
    state, next_epoch = current
    params, opt_state = state.params, state.opt_state
    out = history.arrays(with_validation=evaluator is not None)
    last = next_epoch - 1
    if patience is not None:
        if best is None:  # nothing left to train: a finished run's checkpoint
            out["best_epoch"] = last
        else:
            _, out["best_epoch"], params, opt_state = best
    if evaluator is not None:
        out["validation"] = evaluator(params, *validation_data)
        if log_fn is not None:
            # The validation line follows the line of the last epoch trained.
            if next_epoch > run_start and not (log_every and last % log_every == 0):
                log_fn(format_log_line(last, {name: out[name][-1] for name in names}))
            if stopped:
                log_fn(f"early stopping after epoch {last}: no lower validation loss in "
                       f"{patience} evaluations; returning the params of epoch "
                       f"{out['best_epoch']} (validation loss {best[0]:.3f})")
            log_fn(format_validation_line(out["validation"]))
    return params, opt_state, out


def _divergence(result, chunk, done, start, run_start, history):
    """The error for a chunk whose epoch ``start + done`` failed, carrying the last state
    whose loss was finite. Only runs when training has diverged."""
    bad = start + done
    loss = chunk["loss"][done]
    failed = result.state
    history.extend(chunk, done)
    if np.isfinite(loss):
        what = f"the parameters or the optimizer state became non-finite at epoch {bad}"
        params, opt_state, state_epoch = failed.params, failed.opt_state, bad
    elif bad > run_start:
        what = f"the loss became {loss} at epoch {bad}"
        params, opt_state = failed.previous_params, failed.previous_opt_state
        state_epoch = bad - 1
        history.truncate(history.epochs_done() - 1)
    else:
        what = f"the loss became {loss} at epoch {bad}, the run's first"
        params, opt_state, state_epoch = failed.params, failed.opt_state, bad
    return DivergenceError(
        f"{what}: training diverged. The exception keeps the last state with a finite loss, "
        f"entering epoch {state_epoch} (.params, .opt_state, .state_epoch, .history); lower "
        f"the learning rate or clip the gradients: "
        f"pn.optimizers.chain(pn.optimizers.clip_by_global_norm(1.0), ...)",
        epoch=bad, state_epoch=state_epoch, params=params, opt_state=opt_state,
        history=history.arrays(with_validation=False))


# --- checkpoints of a run -------------------------------------------------------------


def _key_data(key) -> np.ndarray:
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.asarray(key)


def _save(path, params, opt_state, next_epoch, key, history: _History):
    from purenn import checkpoint

    arrays = history.arrays(with_validation=bool(history.validation["val_epoch"]))
    del arrays["epoch"]  # rebuilt from the first epoch and the length
    arrays = {name: (values.astype(np.int32) if name == "val_epoch" else values)
              for name, values in arrays.items()}
    checkpoint.save(path, {
        "params": params,
        "opt_state": opt_state,
        "epoch": np.asarray(next_epoch, np.int32),  # int32: loads with jax_enable_x64 off
        "initial_epoch": np.asarray(history.first_epoch, np.int32),
        "key": _key_data(key),
        "history": arrays,
    })


def _resume(path, params, opt_state, key, history: _History):
    """The state, next epoch and history saved in a fit checkpoint, checked against this
    run: same key, same first epoch, same structure."""
    from purenn import checkpoint

    raw = checkpoint.load(path)
    if not {"params", "opt_state", "epoch", "key", "history"} <= set(raw):
        raise ValueError(f"{path!r} is not a fit checkpoint (it holds "
                         f"{', '.join(sorted(raw)) or 'nothing'}; a fit checkpoint also has "
                         f"epoch, key and history): pass another checkpoint_path, or "
                         f"resume=False to overwrite it")
    saved_key, key_data = np.asarray(raw["key"]), _key_data(key)
    if saved_key.shape != key_data.shape or not np.array_equal(saved_key, key_data):
        raise ValueError(f"the checkpoint {path!r} was written by a run with another key; "
                         f"pass the same key to resume it, resume=False to start over, or "
                         f"another checkpoint_path")
    saved_first = int(raw.get("initial_epoch", 0))
    if saved_first != history.first_epoch:
        raise ValueError(f"the checkpoint {path!r} is of a run that began at epoch "
                         f"{saved_first}; pass initial_epoch={saved_first} to resume it")
    like = {"params": params, "opt_state": opt_state,
            "epoch": jax.ShapeDtypeStruct((), np.int32),
            "initial_epoch": jax.ShapeDtypeStruct((), np.int32),
            "key": jax.ShapeDtypeStruct(key_data.shape, key_data.dtype),
            "history": {name: jax.ShapeDtypeStruct(np.shape(v), np.asarray(v).dtype)
                        for name, v in raw["history"].items()}}
    state = checkpoint.load(path, like=like)
    saved = {name: np.asarray(values) for name, values in state["history"].items()}
    for name in history.parts:
        if name in saved:
            history.parts[name] = [saved[name]]
    if "val_epoch" in saved:
        history.validation = {name: list(saved.get(name, [])) for name in history.validation}
    return state["params"], state["opt_state"], int(state["epoch"]), history


# --- evaluation and prediction --------------------------------------------------------


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


@functools.partial(jax.jit, static_argnums=0)
def _evaluate_program(static, dynamic, params, X, y):
    model, loss, accuracy = _combine(dynamic, static)
    return evaluation_function(model, loss, accuracy)(params, X, y)


class _Evaluator:
    """``evaluate``'s compiled program for one model, loss and accuracy."""

    def __init__(self, model, loss, accuracy):
        self.dynamic, self.static = _partition((model, loss, accuracy))

    def __call__(self, params, X, y) -> dict[str, float]:
        metrics = _evaluate_program(self.static, self.dynamic, params, X, y)
        return {name: float(value) for name, value in metrics.items()}


def evaluate(model: Layer, loss: Callable, params, X, y, *,
             accuracy: Callable | None = None) -> dict[str, float]:
    """Loss and accuracy of ``params`` on ``(X, y)`` in inference mode (``train=False``:
    dropout off), as the book's validation pass computes them.

    Returns:
      ``{"loss": data loss, "accuracy": ...}`` as Python floats (no regularization term,
      as in the book's validation line).
    """
    accuracy = _check_components(model, loss, None, accuracy, need_optimizer=False)
    X, y = check_dataset(model, loss, params, X, y)
    return _Evaluator(model, loss, accuracy)(params, X, y)


def _probabilities(model, loss, params, X):
    output = model.apply(params, X)
    if loss is losses.softmax_categorical_crossentropy:
        return ops.softmax(output)
    return output


@functools.partial(jax.jit, static_argnums=0)
def _predict_program(static, dynamic, params, X):
    model, loss = _combine(dynamic, static)
    return _probabilities(model, loss, params, X)


def predict(model: Layer, loss: Callable, params, X, *, batch_size: int | None = None
            ) -> jax.Array:
    """The model's probabilities for ``X`` in inference mode (dropout off), jitted.

    For ``softmax_categorical_crossentropy`` (a model that outputs logits) this is the
    softmax of the logits; for the probability losses (``categorical_crossentropy``,
    ``binary_crossentropy``) it is the model's output.

    Args:
      model, loss: as for ``fit``.
      params: the trained parameters.
      X: inputs ``(N, features)``.
      batch_size: predict this many rows at a time (one compiled program; the last
        batch is padded, and may be larger than ``N``), to bound memory; None: all at
        once.

    Returns:
      ``(N, outputs)`` probabilities, in the params' dtype.
    """
    _check_components(model, loss, None, None, need_optimizer=False)
    X = check_matrix("X", X)
    if batch_size is not None:  # larger than N too: one batch_size, one program, any X
        limit = (max(batch_size, X.shape[0]) if isinstance(batch_size, numbers.Integral)
                 else X.shape[0])
        batch_size = check_batch_size(batch_size, limit)
    dynamic, static = _partition((model, loss))
    if batch_size is None:
        return _predict_program(static, dynamic, params, X)
    n = X.shape[0]
    padded = jnp.concatenate([X, jnp.zeros((-n % batch_size, X.shape[1]), X.dtype)])
    parts = [_predict_program(static, dynamic, params, padded[i:i + batch_size])
             for i in range(0, n, batch_size)]
    return jnp.concatenate(parts)[:n]
