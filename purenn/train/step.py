"""One training step: the components a program is built from, their checks, and the
jitted, pure ``train_step``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from purenn import layers, losses, optimizers
from purenn.layers import Layer
from purenn.partition import BoundProgram, combine
from purenn.train.sharding import Placement, placement

__all__ = [
    "Components",
    "check_components",
    "check_output_layer",
    "default_accuracy",
    "first_learning_rate",
    "step_function",
    "train_step",
]


class Components(NamedTuple):
    """What a training program is built from. Partitioned (``purenn.partition``), the
    numeric hyperparameters of ``model`` and ``optimizer`` are the program's arguments;
    the functions and ``placement`` are static."""

    model: Layer
    loss: Callable
    optimizer: Any
    accuracy: Callable | None
    placement: Placement | None = None


def default_accuracy(loss: Callable) -> Callable | None:
    """The accuracy that fits ``loss``, as the loss says (``purenn.losses.properties``):
    binary for binary cross-entropy, categorical for the categorical losses, none for a
    loss that declares none."""
    return losses.properties(loss).accuracy


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
    """Refuse a last layer that does not fit the loss: a softmax (or sigmoid) before a
    loss that takes logits and applies its own softmax, or a layer that cannot output
    probabilities (dense, relu) before a loss that takes probabilities. Whether a loss
    takes logits is its ``from_logits`` (``purenn.losses.properties``); a loss that does
    not say, and layers purenn does not know (``custom``), pass.

    Raises:
      ValueError: naming the layer and the fix, e.g. ``the model's last layer,
        model.layers[3], is a softmax layer, but softmax_categorical_crossentropy expects
        logits and applies the softmax itself: remove the softmax layer ...``.
    """
    said = losses.properties(loss)
    last, where = _last_layer(model)
    kind = type(last).__name__.lower()
    subject = (f"the model is a {kind} layer" if where == "model" else
               f"the model's last layer, {where}, is a {kind} layer")
    if said.from_logits is True and isinstance(last, (layers.Softmax, layers.Sigmoid)):
        raise ValueError(f"{subject}, but {said.name} expects logits and applies the "
                         f"softmax itself: remove the {kind} layer (or use "
                         f"categorical_crossentropy on probabilities)")
    if said.from_logits is False and isinstance(last, (layers.Dense, layers.Relu)):
        fix = ("add pn.sigmoid() as the last layer" if said.targets == "binary"
               else "add pn.softmax() as the last layer, or use "
                    "softmax_categorical_crossentropy on the logits")
        raise ValueError(f"{subject}, which does not output probabilities, but "
                         f"{said.name} expects probabilities: {fix}")


def check_components(model, loss, optimizer, accuracy, *, need_optimizer=True):
    """Check the components handed to ``train_step``, ``fit``, ``evaluate`` or ``predict``
    and return the accuracy to use: ``accuracy``, or the loss's when it is None.

    Raises:
      TypeError: a component of the wrong kind, naming it and what fits.
      ValueError: a last layer that does not fit the loss (``check_output_layer``).
    """
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


def first_learning_rate(opt_state):
    """The rate the log line prints: the outermost one the state holds (see
    ``optimizers.learning_rates``), or None."""
    found = optimizers.learning_rates(opt_state)
    return found[0] if found else None


def step_function(c: Components):
    """The pure step ``(params, opt_state, x, y, key) -> (params, opt_state, metrics)``
    of ``c`` (see ``train_step``)."""

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
        learning_rate = first_learning_rate(opt_state)
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
    return step_function(combine(dynamic, static))(params, opt_state, x, y, key)


def train_step(model: Layer, loss: Callable, optimizer, *, accuracy: Callable | None = None,
               mesh: Mesh | None = None, data_axis: str = "data") -> BoundProgram:
    """A jitted, pure training step.

    Returns ``step(params, opt_state, x, y, key) -> (params, opt_state, metrics)``, where
    ``x`` is a batch ``(N, features)``, ``y`` its labels, ``key`` the step's dropout key,
    and ``metrics`` a dict of scalars ``loss, data_loss, reg_loss, accuracy,
    learning_rate`` of the forward pass that produced this step's gradient (before the
    update), as the book prints them. ``learning_rate`` is the optimizer's current rate,
    the book's ``optimizer.current_learning_rate`` (absent for an optimizer whose state
    holds none). ``step.lower(...)`` lowers it as a jitted function is lowered.

    Args:
      model: a Layer, e.g. ``pn.serial(...)``.
      loss: ``(y_pred, y_true) -> mean loss``, e.g. ``pn.losses.binary_crossentropy``.
      optimizer: anything with ``init`` and ``update``, e.g. ``pn.optimizers.adam()`` or
        an optax transformation.
      accuracy: ``(y_pred, y_true) -> scalar``; by default the one the loss carries
        (binary for binary cross-entropy, categorical for the categorical losses; see
        ``purenn.losses.properties``).
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
    accuracy = check_components(model, loss, optimizer, accuracy)
    components = Components(model, loss, optimizer, accuracy, placement(mesh, data_axis))
    return BoundProgram(_step_program, components)
