"""The book's regression losses as ops (chapter 17): each returns the mean over samples of
the mean over outputs, and is differentiated by the book's backward formula.

Targets are real numbers of the predictions' shape ``(N, J)``, one per output.

Autodiff: reverse mode only (``jax.grad``, ``jax.vjp``, ``jax.jacrev``); ``jax.jvp`` and
``jax.jacfwd`` raise ``TypeError``. See ``purenn.ops``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from purenn.ops.losses import check_predictions, targets_like


def _mean(per_output):
    """The mean over the outputs of each sample, then over the samples."""
    return jnp.mean(jnp.mean(per_output, axis=-1))


# --- mean squared error ---------------------------------------------------------------


@jax.custom_vjp
def _mean_squared_error(y_pred, y_true):
    return _mean((y_true - y_pred) ** 2)


def _mean_squared_error_fwd(y_pred, y_true):
    return _mean((y_true - y_pred) ** 2), (y_pred, y_true)


def _mean_squared_error_bwd(residuals, g):
    y_pred, y_true = residuals
    n, outputs = y_pred.shape
    dpred = -2 * (y_true - y_pred) / outputs / n  # the book's
    return g * dpred, g * -dpred


_mean_squared_error.defvjp(_mean_squared_error_fwd, _mean_squared_error_bwd)


# --- mean absolute error --------------------------------------------------------------


@jax.custom_vjp
def _mean_absolute_error(y_pred, y_true):
    return _mean(jnp.abs(y_true - y_pred))


def _mean_absolute_error_fwd(y_pred, y_true):
    return _mean(jnp.abs(y_true - y_pred)), (y_pred, y_true)


def _mean_absolute_error_bwd(residuals, g):
    y_pred, y_true = residuals
    n, outputs = y_pred.shape
    # The book prints sign(y_true - y_pred) / outputs / samples, the gradient with
    # respect to y_true; with respect to y_pred it is the negative.
    dpred = -jnp.sign(y_true - y_pred) / outputs / n
    return g * dpred, g * -dpred


_mean_absolute_error.defvjp(_mean_absolute_error_fwd, _mean_absolute_error_bwd)


# --- public wrappers: checks ----------------------------------------------------------


def regression_targets(y_pred: jax.Array, y_true, *, what: str) -> jax.Array:
    """``y_true`` as real targets of ``y_pred``'s shape ``(N, J)`` and dtype."""
    return targets_like(y_pred, y_true, what=what)


def mean_squared_error(y_pred: jax.Array, y_true) -> jax.Array:
    """Mean squared error of predictions ``y_pred`` (N, J) against targets ``y_true``.

    Forward: ``mean((y_true - y_pred) ** 2)`` over the J outputs, then over the N samples.
    Backward (the book's): ``-2 (y_true - y_pred) / J / N``.

    Args:
      y_pred: predictions, shape ``(N, J)``, e.g. a linear output.
      y_true: targets of the same shape (any real dtype).

    Returns:
      a scalar of ``y_pred``'s dtype.

    >>> import jax.numpy as jnp
    >>> float(mean_squared_error(jnp.array([[1.0], [2.0]]), jnp.array([[1.5], [2.0]])))
    0.125
    """
    y_pred = check_predictions(y_pred, what="mean_squared_error")
    return _mean_squared_error(y_pred, regression_targets(y_pred, y_true,
                                                          what="mean_squared_error"))


def mean_absolute_error(y_pred: jax.Array, y_true) -> jax.Array:
    """Mean absolute error of predictions ``y_pred`` (N, J) against targets ``y_true``.

    Forward: ``mean(|y_true - y_pred|)`` over the J outputs, then over the N samples.
    Backward: ``-sign(y_true - y_pred) / J / N`` (0 where a prediction equals its target).
    The book prints ``sign(y_true - y_pred) / J / N``, without the minus: that is the
    gradient with respect to ``y_true``, and descending it would climb the loss.

    Args:
      y_pred: predictions, shape ``(N, J)``, e.g. a linear output.
      y_true: targets of the same shape (any real dtype).

    Returns:
      a scalar of ``y_pred``'s dtype.

    >>> import jax.numpy as jnp
    >>> float(mean_absolute_error(jnp.array([[1.0], [2.0]]), jnp.array([[1.5], [2.0]])))
    0.25
    """
    y_pred = check_predictions(y_pred, what="mean_absolute_error")
    return _mean_absolute_error(y_pred, regression_targets(y_pred, y_true,
                                                           what="mean_absolute_error"))
