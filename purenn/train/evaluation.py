"""Evaluation and prediction in inference mode (dropout off), jitted once per structure."""

from __future__ import annotations

import numbers
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from purenn import losses
from purenn._checks import check_matrix
from purenn._validate import check_batch_size, check_dataset
from purenn.layers import Layer
from purenn.partition import BoundProgram, combine, jit_program
from purenn.train.step import check_components

__all__ = ["Evaluator", "evaluate", "evaluation_function", "predict"]


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


@jit_program(static_argnums=(0, 1))
def _evaluate_program(static, runs, dynamic, params, X, y):
    model, loss, accuracy = combine(dynamic, static)
    evaluate_batch = evaluation_function(model, loss, accuracy)
    return jax.vmap(evaluate_batch)(params, X, y) if runs else evaluate_batch(params, X, y)


class Evaluator:
    """``evaluate``'s compiled program for one model, loss and accuracy: call it with
    ``(params, X, y)`` for ``{"loss", "accuracy"}`` as Python floats. With ``runs=True``
    every argument carries a leading axis of runs (seeds) and the metrics are arrays
    ``(S,)``, one program for all of them. Models of one structure share the program."""

    def __init__(self, model, loss, accuracy, *, runs: bool = False):
        self.runs = runs
        self.program = BoundProgram(_evaluate_program, (model, loss, accuracy), runs)

    def __call__(self, params, X, y) -> dict:
        metrics = self.program(params, X, y)
        if self.runs:
            return metrics
        return {name: float(value) for name, value in metrics.items()}


def evaluate(model: Layer, loss: Callable, params, X, y, *,
             accuracy: Callable | None = None) -> dict[str, float]:
    """Loss and accuracy of ``params`` on ``(X, y)`` in inference mode (``train=False``:
    dropout off), as the book's validation pass computes them.

    Returns:
      ``{"loss": data loss, "accuracy": ...}`` as Python floats (no regularization term,
      as in the book's validation line; no accuracy for a loss that carries none and no
      ``accuracy`` argument).

    Raises:
      ValueError: ``X`` is empty (a mean over no samples has no value), or any problem
        ``fit`` refuses in its data.
    """
    accuracy = check_components(model, loss, None, accuracy, need_optimizer=False)
    shape = getattr(X, "shape", ())
    if len(shape) == 2 and shape[0] == 0:  # before check_dataset, whose words are fit's
        raise ValueError("X is empty (0 samples): there is nothing to evaluate; give at "
                         "least one sample")
    X, y = check_dataset(model, loss, params, X, y)
    return Evaluator(model, loss, accuracy)(params, X, y)


@jit_program(static_argnums=0)
def _predict_program(static, dynamic, params, X):
    model, loss = combine(dynamic, static)
    return losses.properties(loss).probabilities(model.apply(params, X))


def predict(model: Layer, loss: Callable, params, X, *, batch_size: int | None = None
            ) -> jax.Array:
    """The model's probabilities for ``X`` in inference mode (dropout off), jitted.

    The loss says how outputs become probabilities (``purenn.losses.properties``): for
    ``softmax_categorical_crossentropy`` (a model that outputs logits) and any loss that
    declares ``from_logits=True`` this is the softmax of the logits; for the probability
    losses (``categorical_crossentropy``, ``binary_crossentropy``) and a loss that says
    nothing it is the model's output.

    Args:
      model, loss: as for ``fit``.
      params: the trained parameters.
      X: inputs ``(N, features)``; with N = 0 the result is empty, ``(0, outputs)``
        (nothing is compiled for it).
      batch_size: predict this many rows at a time (one compiled program; the last
        batch is padded), to bound memory; more than N: one batch of N rows, as None.
        None: all at once.

    Returns:
      ``(N, outputs)`` probabilities, in the params' dtype.
    """
    check_components(model, loss, None, None, need_optimizer=False)
    X = check_matrix("X", X)
    if batch_size is not None:  # larger than N too: clipped to N below
        limit = (max(batch_size, X.shape[0]) if isinstance(batch_size, numbers.Integral)
                 else X.shape[0])
        batch_size = check_batch_size(batch_size, limit)
    program = BoundProgram(_predict_program, (model, loss))
    n = X.shape[0]
    if n == 0:
        result = jax.eval_shape(program, params, X)
        return jax.device_put(np.zeros(result.shape, result.dtype))
    if batch_size is None or batch_size >= n:
        return program(params, X)
    padded = jnp.concatenate([X, jnp.zeros((-n % batch_size, X.shape[1]), X.dtype)])
    parts = [program(params, padded[i:i + batch_size]) for i in range(0, n, batch_size)]
    return jnp.concatenate(parts)[:n]
