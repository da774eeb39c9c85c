"""Loss functions ``(y_pred, y_true) -> mean loss`` and accuracy metrics.

The losses are the ops of ``purenn.ops`` (each differentiated by the book's formula):

- ``categorical_crossentropy(probs (N, C), labels)``
- ``softmax_categorical_crossentropy(logits (N, C), labels)``: the book's combined class
- ``binary_crossentropy(probs (N, J), targets (N, J))``

``labels`` are sparse integer class indices ``(N,)`` or one-hot rows ``(N, C)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from purenn.ops.losses import (
    binary_crossentropy,
    binary_targets,
    categorical_crossentropy,
    categorical_targets,
    check_predictions,
    softmax_categorical_crossentropy,
)

__all__ = [
    "binary_accuracy",
    "binary_crossentropy",
    "categorical_accuracy",
    "categorical_crossentropy",
    "softmax_categorical_crossentropy",
]


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
