"""Differentiable primitives, each a ``jax.custom_vjp`` whose backward rule is the book's."""

from purenn.ops.activations import relu, sigmoid, softmax
from purenn.ops.dense import dense
from purenn.ops.dropout import dropout
from purenn.ops.losses import (
    binary_crossentropy,
    categorical_crossentropy,
    softmax_categorical_crossentropy,
)
from purenn.ops.regularization import l1_penalty, l2_penalty

__all__ = [
    "binary_crossentropy",
    "categorical_crossentropy",
    "dense",
    "dropout",
    "l1_penalty",
    "l2_penalty",
    "relu",
    "sigmoid",
    "softmax",
    "softmax_categorical_crossentropy",
]
