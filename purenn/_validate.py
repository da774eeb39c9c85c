"""Checks of concrete data where it enters ``fit``, ``evaluate`` and the CLI.

These look at values (label ranges, NaN/inf), so they run once on the host, in NumPy,
outside jit: they compile nothing. Shape and dtype problems inside a traced function are
caught by ``purenn._checks``.
"""

from __future__ import annotations

import numbers

import jax
import numpy as np

from purenn import losses


def check_epochs(epochs) -> int:
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral):
        raise TypeError(f"epochs must be an integer >= 1; got {epochs!r}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1; got {epochs}")
    return int(epochs)


def check_batch_size(batch_size, n_samples: int) -> int | None:
    """``None`` (full batch) or an integer in ``[1, n_samples]``."""
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(f"batch_size must be a positive integer or None (full batch); "
                        f"got {batch_size!r}")
    if not 1 <= batch_size <= n_samples:
        raise ValueError(f"batch_size must be between 1 and the number of samples "
                         f"({n_samples}); got {batch_size}. Use batch_size=None for full "
                         f"batch")
    return int(batch_size)


def _as_host_array(name: str, value) -> np.ndarray:
    if isinstance(value, (jax.Array, np.ndarray, list, tuple)):
        try:
            return np.asarray(value)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be an array; got a {type(value).__name__} that "
                            f"cannot become one: {err}") from None
    raise TypeError(f"{name} must be an array (jax.Array or numpy.ndarray); "
                    f"got {type(value).__name__}")


def _on_device(value, host: np.ndarray) -> jax.Array:
    """``value`` as a JAX array: itself, or its host copy transferred (no compile, unlike
    ``jnp.asarray``, which compiles a program per shape)."""
    return value if isinstance(value, jax.Array) else jax.device_put(host)


def check_dataset(model, loss, params, X, y, *, names=("X", "y")):
    """Validate inputs ``X`` and labels/targets ``y`` for ``model`` and ``loss``.

    Returns ``(X, y)`` as JAX arrays. Raises ValueError/TypeError naming the argument:
    empty data, wrong rank or width, NaN/inf inputs, sample-count mismatch, labels of the
    wrong dtype or out of range, binary targets of the wrong shape or not 0/1. Which
    check ``y`` gets is the loss's ``targets`` (``purenn.losses.properties``).
    """
    x_name, y_name = names
    X_host, y_host = _as_host_array(x_name, X), _as_host_array(y_name, y)
    if X_host.ndim != 2:
        raise ValueError(f"{x_name} must be 2-D of shape (samples, features); got shape "
                         f"{X_host.shape}")
    if X_host.shape[0] == 0:
        raise ValueError(f"{x_name} is empty (0 samples): there is nothing to train on")
    if not np.issubdtype(X_host.dtype, np.floating):
        raise TypeError(f"{x_name} must have a floating dtype; got {X_host.dtype}. Convert "
                        f"it with {x_name}.astype(jnp.float32)")
    if not np.all(np.isfinite(X_host)):
        bad = np.argwhere(~np.isfinite(X_host))[0]
        raise ValueError(f"{x_name} holds NaN or inf values (first at row {bad[0]}, column "
                         f"{bad[1]}): clean or drop those samples first")
    if y_host.ndim == 0 or y_host.shape[0] != X_host.shape[0]:
        got = "a scalar" if y_host.ndim == 0 else f"{y_host.shape[0]} samples"
        raise ValueError(f"{x_name} and {y_name} must have the same number of samples; "
                         f"{x_name} has {X_host.shape[0]}, {y_name} has {got}")
    out = jax.eval_shape(lambda p, v: model.apply(p, v), params,
                         jax.ShapeDtypeStruct(X_host.shape,
                                              jax.dtypes.canonicalize_dtype(X_host.dtype)))
    targets = losses.properties(loss).targets
    if targets == "categorical":
        _check_categorical_labels(y_name, y_host, out.shape[1])
    elif targets == "binary":
        _check_binary_targets(y_name, y_host, out.shape)
    elif np.issubdtype(y_host.dtype, np.floating) and not np.all(np.isfinite(y_host)):
        raise ValueError(f"{y_name} holds NaN or inf values: clean them first")
    return _on_device(X, X_host), _on_device(y, y_host)


def _check_categorical_labels(name: str, y: np.ndarray, classes: int) -> None:
    if y.ndim == 1:
        if not np.issubdtype(y.dtype, np.integer):
            raise TypeError(f"{name} must hold integer class indices for a categorical loss; "
                            f"got dtype {y.dtype}. Use {name}.astype(jnp.int32), or pass "
                            f"one-hot rows of shape (samples, {classes})")
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= classes:
            raise ValueError(f"{name} labels must lie in [0, {classes}) for a model with "
                             f"{classes} outputs; got values from {low} to {high}")
    elif y.ndim == 2 and y.shape[1] == classes:
        if not np.all((y == 0) | (y == 1)) or not np.all(y.sum(axis=1) == 1):
            raise ValueError(f"{name} of shape {y.shape} must be one-hot rows (a single 1, "
                             f"the rest 0); pass sparse integer labels of shape (samples,) "
                             f"otherwise")
    else:
        raise ValueError(f"{name} must be integer labels of shape (samples,) or one-hot rows "
                         f"of shape (samples, {classes}) for a model with {classes} outputs; "
                         f"got shape {y.shape}")


def _check_binary_targets(name: str, y: np.ndarray, out_shape) -> None:
    if y.shape != tuple(out_shape):
        hint = (f" (pass {name}.reshape(-1, 1))" if y.ndim == 1 and out_shape[1] == 1 else "")
        raise ValueError(f"{name} must have the model output's shape {tuple(out_shape)} for "
                         f"binary cross-entropy, one 0/1 target per output; got "
                         f"{y.shape}{hint}")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError(f"{name} must hold 0/1 targets for binary cross-entropy; got values "
                         f"such as {y[(y != 0) & (y != 1)][0]!r}")
