"""Loss functions ``(y_pred, y_true) -> mean loss`` that say what they are, and accuracy
metrics.

The losses are the ops of ``purenn.ops`` (each differentiated by the book's formula),
wrapped in ``Loss`` objects that carry what ``fit``, ``evaluate`` and ``predict`` need to
know about them:

- ``categorical_crossentropy(probs (N, C), labels)``: takes probabilities (a softmax
  output); categorical accuracy; labels checked to be classes of the model's outputs.
- ``softmax_categorical_crossentropy(logits (N, C), labels)``: the book's combined class,
  takes logits; categorical accuracy; ``predict`` returns ``softmax(logits)``.
- ``binary_crossentropy(probs (N, J), targets (N, J))``: takes probabilities (a sigmoid
  output); binary accuracy; targets checked to be 0/1 of the output's shape.
- ``mean_squared_error(outputs (N, J), targets (N, J))`` and ``mean_absolute_error``: the
  book's regression losses (chapter 17), on a linear output; regression accuracy;
  ``predict`` returns the outputs; targets checked finite.

``labels`` are sparse integer class indices ``(N,)`` or one-hot rows ``(N, C)``.

``properties(loss)`` reads these from any loss: a ``Loss``, a ``functools.partial`` of one,
or a user's own function or object that declares them as attributes (``accuracy``,
``from_logits``, ``probabilities``, ``targets``; see ``properties``). A loss that declares
nothing gets no accuracy, no check of the model's last layer, and ``predict`` returns the
model's outputs; so do the bare ops ``purenn.ops.*_crossentropy``: hand ``fit`` these.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from purenn import ops
from purenn.ops import losses as loss_ops
from purenn.ops import regression as regression_ops
from purenn.ops.losses import binary_targets, categorical_targets, check_predictions
from purenn.ops.regression import regression_targets

__all__ = [
    "Loss",
    "LossProperties",
    "TARGETS",
    "binary_accuracy",
    "binary_crossentropy",
    "categorical_accuracy",
    "categorical_crossentropy",
    "mean_absolute_error",
    "mean_squared_error",
    "properties",
    "regression_accuracy",
    "softmax_categorical_crossentropy",
]

REGRESSION_PRECISION = 250  # the book's: a prediction within std(y) / 250 is correct

TARGETS = ("categorical", "binary")  # the kinds of targets fit checks, besides None


def categorical_accuracy(y_pred: jax.Array, y_true) -> jax.Array:
    """Fraction of rows whose ``argmax`` is the label: ``mean(argmax(y_pred, 1) == y)``.

    Args:
      y_pred: scores, probabilities or logits, shape ``(N, C)``.
      y_true: sparse integer labels ``(N,)`` or one-hot ``(N, C)``.

    Returns:
      a scalar in ``[0, 1]`` of ``y_pred``'s dtype.
    """
    y_pred = check_predictions(y_pred, what="categorical_accuracy")
    onehot = categorical_targets(y_pred, y_true, what="categorical_accuracy")
    hits = jnp.argmax(y_pred, axis=1) == jnp.argmax(onehot, axis=1)
    return jnp.mean(hits.astype(y_pred.dtype))


def binary_accuracy(y_pred: jax.Array, y_true) -> jax.Array:
    """Fraction of outputs on the right side of 0.5: ``mean((y_pred > 0.5) == y_true)``.

    Args:
      y_pred: probabilities, shape ``(N, J)``.
      y_true: 0/1 targets of the same shape.
    """
    y_pred = check_predictions(y_pred, what="binary_accuracy")
    targets = binary_targets(y_pred, y_true, what="binary_accuracy")
    hits = (y_pred > 0.5).astype(y_pred.dtype) == targets
    return jnp.mean(hits.astype(y_pred.dtype))


def regression_accuracy(y_pred: jax.Array, y_true) -> jax.Array:
    """The book's regression accuracy: the fraction of outputs within ``std(y_true) /
    250`` of their targets, ``mean(|y_pred - y_true| < std(y_true) / 250)``.

    The precision comes from the targets given, as in the book's chapter 17: in
    ``evaluate`` those of the validation set, in minibatch training those of the batch.

    Args:
      y_pred: predictions, shape ``(N, J)``.
      y_true: targets of the same shape.

    Returns:
      a scalar in ``[0, 1]`` of ``y_pred``'s dtype.
    """
    y_pred = check_predictions(y_pred, what="regression_accuracy")
    targets = regression_targets(y_pred, y_true, what="regression_accuracy")
    precision = jnp.std(targets) / REGRESSION_PRECISION
    return jnp.mean((jnp.abs(y_pred - targets) < precision).astype(y_pred.dtype))


def _check_declared(name: str, accuracy, from_logits, probabilities, targets) -> None:
    """Refuse declared properties of the wrong kind, naming the attribute."""
    if accuracy is not None and not callable(accuracy):
        raise TypeError(f"{name}.accuracy must be a function (y_pred, y_true) -> scalar, "
                        f"e.g. pn.losses.categorical_accuracy, or None; got "
                        f"{type(accuracy).__name__}")
    if from_logits not in (True, False, None):
        raise TypeError(f"{name}.from_logits must be True (the loss takes logits), False "
                        f"(probabilities) or None (not said); got {from_logits!r}")
    if probabilities is not None and not callable(probabilities):
        raise TypeError(f"{name}.probabilities must be a function outputs -> probabilities "
                        f"or None; got {type(probabilities).__name__}")
    if targets is not None and targets not in TARGETS:
        raise ValueError(f"{name}.targets must be one of {', '.join(map(repr, TARGETS))} or "
                         f"None (no check of the labels); got {targets!r}")


class Loss:
    """A loss function ``(y_pred, y_true) -> mean loss`` and what it is.

    Calling it calls ``function``, so ``jax.grad`` of it runs the op's hand-written
    backward rule and its results are the op's, bit for bit. It is immutable and hashable
    (equal when its function and properties are equal), so as a static part of the
    components a jitted program is keyed on it.

    Attributes:
      function: the loss itself.
      accuracy: the accuracy ``(y_pred, y_true) -> scalar`` that fits it, or None.
      from_logits: True when it takes logits (a softmax or sigmoid last layer is refused),
        False when it takes probabilities (a dense or relu last layer is refused), None
        when it does not say.
      targets: ``"categorical"`` (class labels, checked against the model's outputs),
        ``"binary"`` (0/1 targets of the outputs' shape) or None (only checked finite).

    ``__name__`` and ``__doc__`` are the function's.
    """

    def __init__(self, function: Callable, *, accuracy: Callable | None = None,
                 from_logits: bool | None = None, targets: str | None = None):
        if not callable(function):
            raise TypeError(f"function must be a loss (y_pred, y_true) -> scalar; got "
                            f"{type(function).__name__}")
        name = getattr(function, "__name__", type(function).__name__)
        _check_declared(name, accuracy, from_logits, None, targets)
        values = dict(function=function, accuracy=accuracy, from_logits=from_logits,
                      targets=targets, __name__=name,
                      __qualname__=getattr(function, "__qualname__", name),
                      __doc__=getattr(function, "__doc__", None), __wrapped__=function)
        for attribute, value in values.items():
            object.__setattr__(self, attribute, value)

    def __setattr__(self, name, value):
        raise AttributeError(f"a Loss is immutable; build another: pn.losses.Loss({name}=...)")

    def __call__(self, y_pred, y_true) -> jax.Array:
        return self.function(y_pred, y_true)

    def probabilities(self, output: jax.Array) -> jax.Array:
        """The model's outputs as probabilities: the softmax of logits for a loss that
        takes logits, the outputs themselves otherwise."""
        return ops.softmax(output) if self.from_logits else output

    def _key(self):
        return (self.function, self.accuracy, self.from_logits, self.targets)

    def __eq__(self, other):
        return isinstance(other, Loss) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return f"<purenn loss {self.__name__}>"


categorical_crossentropy = Loss(loss_ops.categorical_crossentropy,
                                accuracy=categorical_accuracy, from_logits=False,
                                targets="categorical")
softmax_categorical_crossentropy = Loss(loss_ops.softmax_categorical_crossentropy,
                                        accuracy=categorical_accuracy, from_logits=True,
                                        targets="categorical")
binary_crossentropy = Loss(loss_ops.binary_crossentropy, accuracy=binary_accuracy,
                           from_logits=False, targets="binary")
# The regression losses take any output (from_logits None: no check of the last layer).
mean_squared_error = Loss(regression_ops.mean_squared_error, accuracy=regression_accuracy)
mean_absolute_error = Loss(regression_ops.mean_absolute_error, accuracy=regression_accuracy)


class LossProperties(NamedTuple):
    """What ``properties`` reads from a loss."""

    name: str  # for messages: the function's name
    accuracy: Callable | None  # the accuracy that fits the loss, or None
    from_logits: bool | None  # takes logits (True), probabilities (False), not said (None)
    probabilities: Callable  # outputs -> probabilities, for predict
    targets: str | None  # "categorical", "binary" or None: which labels fit checks


def _identity(output):
    return output


def properties(loss: Callable) -> LossProperties:
    """What ``loss`` is, as ``fit``, ``evaluate`` and ``predict`` use it.

    Read from a ``Loss`` (every purenn loss is one); through ``functools.partial`` (its
    ``.func``); or from the attributes a user's own loss function or object declares:
    ``accuracy`` (a function), ``from_logits`` (True/False), ``probabilities`` (a
    function outputs -> probabilities; by default the softmax when ``from_logits`` is
    True, else the outputs) and ``targets`` (``"categorical"`` or ``"binary"``). Anything
    not declared is None: no accuracy, no check of the last layer or the labels.

    Raises:
      TypeError, ValueError: a declared attribute of the wrong kind, naming it.
    """
    while isinstance(loss, functools.partial):
        loss = loss.func
    name = getattr(loss, "__name__", type(loss).__name__)
    if isinstance(loss, Loss):
        return LossProperties(name, loss.accuracy, loss.from_logits, loss.probabilities,
                              loss.targets)
    declared = [getattr(loss, attribute, None) for attribute in
                ("accuracy", "from_logits", "probabilities", "targets")]
    _check_declared(name, *declared)
    accuracy, from_logits, probabilities, targets = declared
    if probabilities is None:
        probabilities = ops.softmax if from_logits else _identity
    return LossProperties(name, accuracy, from_logits, probabilities, targets)
