"""Differentiable primitives, each a ``jax.custom_vjp`` whose backward rule is the book's.

What autodiff does through them:

- **Reverse mode works**: ``jax.grad``, ``jax.value_and_grad``, ``jax.vjp`` and
  ``jax.jacrev`` run the hand-written backward rules.
- **Forward mode does not**: ``jax.jvp`` and ``jax.jacfwd`` of a function that calls an op,
  and applying the linear function ``jax.linearize`` returns, raise ``TypeError: can't
  apply forward-mode autodiff (jvp) to a custom_vjp function``. JAX cannot derive a
  forward rule from a hand-written backward one.
- **Second derivatives work**: the backward rules are ordinary JAX code, so forward over
  reverse (``jax.hessian``, which is ``jax.jacfwd(jax.jacrev(f))``; Hessian-vector
  products ``jax.jvp(jax.grad(f), (x,), (v,))``) and reverse over reverse
  (``jax.jacrev(jax.jacrev(f))``) differentiate them. The results are the derivatives of
  the book's backward formulas: the true second derivatives wherever those formulas are
  the exact gradient, i.e. everywhere but ReLU's kink at 0, the absolute error's at 0,
  and predictions clipped to ``[1e-7, 1 - 1e-7]`` by the cross-entropies.
"""

from purenn.ops.activations import relu, sigmoid, softmax
from purenn.ops.dense import dense
from purenn.ops.dropout import dropout
from purenn.ops.losses import (
    binary_crossentropy,
    categorical_crossentropy,
    softmax_categorical_crossentropy,
)
from purenn.ops.regression import mean_absolute_error, mean_squared_error
from purenn.ops.regularization import l1_penalty, l2_penalty

__all__ = [
    "binary_crossentropy",
    "categorical_crossentropy",
    "dense",
    "dropout",
    "l1_penalty",
    "l2_penalty",
    "mean_absolute_error",
    "mean_squared_error",
    "relu",
    "sigmoid",
    "softmax",
    "softmax_categorical_crossentropy",
]
