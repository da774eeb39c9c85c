"""The book's losses as ops: each returns the mean over samples and is differentiated by
the book's backward formula.

Labels: categorical losses take sparse class indices ``(N,)`` of an integer dtype or
one-hot rows ``(N, C)``; binary cross-entropy takes 0/1 targets of the predictions' shape
``(N, J)``.

Autodiff: reverse mode only (``jax.grad``, ``jax.vjp``, ``jax.jacrev``); ``jax.jvp`` and
``jax.jacfwd`` raise ``TypeError``. Second derivatives (``jax.hessian``) work: see
``purenn.ops``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from purenn._checks import check_array, check_matrix
from purenn.ops.activations import softmax_forward

CLIP = 1e-7  # the book clips probabilities to [1e-7, 1 - 1e-7] before taking logs


def _clip(p):
    return jnp.clip(p, CLIP, 1 - CLIP)


def _correct_confidences(clipped, onehot):
    return jnp.sum(clipped * onehot, axis=-1)


def _label_gradient(clipped, correct, g, n):
    # d loss / d onehot: the targets are rarely learned, but the gradient is exact.
    return g * (-clipped / correct[:, None]) / n


# --- categorical cross-entropy on probabilities --------------------------------------


@jax.custom_vjp
def _categorical_crossentropy(probs, onehot):
    return jnp.mean(-jnp.log(_correct_confidences(_clip(probs), onehot)))


def _categorical_crossentropy_fwd(probs, onehot):
    clipped = _clip(probs)
    correct = _correct_confidences(clipped, onehot)
    return jnp.mean(-jnp.log(correct)), (probs, onehot, clipped, correct)


def _categorical_crossentropy_bwd(residuals, g):
    probs, onehot, clipped, correct = residuals
    n = probs.shape[0]
    # The book: -y_true / y_pred / N on the unclipped predictions. Where y_true is 0 the
    # term is 0 (the book's 0/0 would be NaN); a target probability of exactly 0 divides
    # by the clip bound instead of by 0, so the gradient stays finite.
    safe = jnp.where(probs == 0, jnp.asarray(CLIP, probs.dtype), probs)
    dprobs = jnp.where(onehot != 0, -onehot / safe, jnp.zeros_like(probs)) / n
    return g * dprobs, _label_gradient(clipped, correct, g, n)


_categorical_crossentropy.defvjp(_categorical_crossentropy_fwd, _categorical_crossentropy_bwd)


# --- softmax and categorical cross-entropy, combined -----------------------------------


@jax.custom_vjp
def _softmax_categorical_crossentropy(logits, onehot):
    return _categorical_crossentropy(softmax_forward(logits), onehot)


def _softmax_categorical_crossentropy_fwd(logits, onehot):
    probs = softmax_forward(logits)
    clipped = _clip(probs)
    correct = _correct_confidences(clipped, onehot)
    return jnp.mean(-jnp.log(correct)), (probs, onehot, clipped, correct)


def _softmax_categorical_crossentropy_bwd(residuals, g):
    probs, onehot, clipped, correct = residuals
    n = probs.shape[0]
    return g * (probs - onehot) / n, _label_gradient(clipped, correct, g, n)


_softmax_categorical_crossentropy.defvjp(
    _softmax_categorical_crossentropy_fwd, _softmax_categorical_crossentropy_bwd
)


# --- binary cross-entropy -------------------------------------------------------------


def _binary_per_output(clipped, targets):
    return -(targets * jnp.log(clipped) + (1 - targets) * jnp.log(1 - clipped))


@jax.custom_vjp
def _binary_crossentropy(probs, targets):
    return jnp.mean(jnp.mean(_binary_per_output(_clip(probs), targets), axis=-1))


def _binary_crossentropy_fwd(probs, targets):
    clipped = _clip(probs)
    loss = jnp.mean(jnp.mean(_binary_per_output(clipped, targets), axis=-1))
    return loss, (clipped, targets)


def _binary_crossentropy_bwd(residuals, g):
    clipped, targets = residuals
    n, outputs = clipped.shape
    dprobs = -(targets / clipped - (1 - targets) / (1 - clipped)) / outputs / n
    dtargets = -(jnp.log(clipped) - jnp.log(1 - clipped)) / outputs / n
    return g * dprobs, g * dtargets


_binary_crossentropy.defvjp(_binary_crossentropy_fwd, _binary_crossentropy_bwd)


# --- public wrappers: checks and label formats ----------------------------------------


def check_predictions(y_pred, *, what: str) -> jax.Array:
    """``y_pred`` as a non-empty floating ``(N, C)`` array: a mean over no samples (or
    outputs) is undefined, so an empty batch is an error rather than a NaN loss."""
    y_pred = check_matrix("y_pred", y_pred, what=f"{what}: ")
    if 0 in y_pred.shape:
        raise ValueError(f"{what}: y_pred of shape {tuple(y_pred.shape)} is empty; it "
                         f"needs at least one sample and one output")
    return y_pred


def categorical_targets(y_pred: jax.Array, y_true, *, what: str) -> jax.Array:
    """``y_true`` as one-hot rows of ``y_pred``'s dtype, shape ``(N, C)``.

    Accepts sparse integer labels ``(N,)`` or one-hot labels ``(N, C)``. Concrete sparse
    labels are checked to lie in ``[0, C)``.
    """
    n, classes = y_pred.shape
    y_true = check_array("y_true", y_true)
    if y_true.ndim == 1:
        if not jnp.issubdtype(y_true.dtype, jnp.integer):
            raise TypeError(f"{what}: sparse labels y_true must be integers (class indices); "
                            f"got dtype {y_true.dtype}. Use y_true.astype(jnp.int32)")
        if y_true.shape[0] != n:
            raise ValueError(f"{what}: y_true has {y_true.shape[0]} labels for {n} samples "
                             f"in y_pred; they must match")
        if not isinstance(y_true, jax.core.Tracer) and y_true.size:
            labels = np.asarray(y_true)
            low, high = int(labels.min()), int(labels.max())
            if low < 0 or high >= classes:
                raise ValueError(f"{what}: labels y_true must lie in [0, {classes}) for "
                                 f"{classes} classes; got values from {low} to {high}")
        return jax.nn.one_hot(y_true, classes, dtype=y_pred.dtype)
    if y_true.ndim == 2:
        if y_true.shape != (n, classes):
            hint = (" (integer labels of shape (N, 1)? pass y_true.ravel())"
                    if y_true.shape == (n, 1) else "")
            raise ValueError(f"{what}: one-hot y_true must have y_pred's shape {(n, classes)}; "
                             f"got {tuple(y_true.shape)}{hint}")
        return y_true.astype(y_pred.dtype)
    raise ValueError(f"{what}: y_true must be sparse labels (N,) or one-hot (N, C); "
                     f"got shape {tuple(y_true.shape)}")


def categorical_crossentropy(y_pred: jax.Array, y_true) -> jax.Array:
    """Mean categorical cross-entropy of probabilities ``y_pred`` (N, C).

    Forward: ``mean(-log(clip(y_pred, 1e-7, 1 - 1e-7)[i, y_i]))``. Backward (the book's,
    on the unclipped predictions): ``-y_onehot / y_pred / N``.

    Args:
      y_pred: probabilities, shape ``(N, C)``, e.g. a softmax output.
      y_true: sparse integer labels ``(N,)`` or one-hot ``(N, C)``.

    Returns:
      a scalar of ``y_pred``'s dtype.

    >>> import jax.numpy as jnp
    >>> float(categorical_crossentropy(jnp.array([[0.7, 0.2, 0.1]]), jnp.array([0])))
    0.356...
    """
    y_pred = check_predictions(y_pred, what="categorical_crossentropy")
    onehot = categorical_targets(y_pred, y_true, what="categorical_crossentropy")
    return _categorical_crossentropy(y_pred, onehot)


def softmax_categorical_crossentropy(y_pred: jax.Array, y_true) -> jax.Array:
    """Softmax of the logits ``y_pred`` (N, C), then mean categorical cross-entropy.

    The book's combined class: backward with respect to the logits is
    ``(softmax(y_pred) - y_onehot) / N``, one subtraction instead of the Jacobian product.

    Args:
      y_pred: logits (the last dense layer's output), shape ``(N, C)``.
      y_true: sparse integer labels ``(N,)`` or one-hot ``(N, C)``.
    """
    y_pred = check_predictions(y_pred, what="softmax_categorical_crossentropy")
    onehot = categorical_targets(y_pred, y_true, what="softmax_categorical_crossentropy")
    return _softmax_categorical_crossentropy(y_pred, onehot)


def targets_like(y_pred: jax.Array, y_true, *, what: str, target: str = "target",
                 vector: str = "targets") -> jax.Array:
    """``y_true`` checked to have ``y_pred``'s shape ``(N, J)``, in its dtype; the error
    names one ``target`` per output and, for a vector of N, hints at the reshape."""
    y_true = check_array("y_true", y_true)
    if y_true.shape != y_pred.shape:
        hint = (f" (a vector of {vector}? pass y_true.reshape(-1, 1))"
                if y_true.ndim == 1 and y_pred.shape == (y_true.shape[0], 1) else "")
        raise ValueError(f"{what}: y_true must have y_pred's shape {tuple(y_pred.shape)}, one "
                         f"{target} per output; got {tuple(y_true.shape)}{hint}")
    return y_true.astype(y_pred.dtype)


def binary_targets(y_pred: jax.Array, y_true, *, what: str) -> jax.Array:
    """0/1 targets of ``y_pred``'s shape ``(N, J)`` and dtype."""
    return targets_like(y_pred, y_true, what=what, target="0/1 target", vector="labels")


def binary_crossentropy(y_pred: jax.Array, y_true) -> jax.Array:
    """Mean binary cross-entropy of sigmoid outputs ``y_pred`` (N, J) against 0/1 targets.

    Per output ``-(y log p + (1 - y) log(1 - p))`` with ``p`` clipped to
    ``[1e-7, 1 - 1e-7]``; averaged over the J outputs, then over the N samples. Backward
    (clipped the same way): ``-(y / p - (1 - y) / (1 - p)) / J / N``.

    Args:
      y_pred: probabilities, shape ``(N, J)``.
      y_true: targets of the same shape, 0 or 1 (any numeric dtype).
    """
    y_pred = check_predictions(y_pred, what="binary_crossentropy")
    return _binary_crossentropy(y_pred, binary_targets(y_pred, y_true, what="binary_crossentropy"))
