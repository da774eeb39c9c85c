"""Learning-rate schedules: functions ``count -> rate`` to pass as ``learning_rate``.

``count`` is the int32 scalar count of updates done so far; a schedule must be
jit-traceable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from purenn._checks import check_nonnegative, check_positive, check_positive_int

__all__ = ["Schedule", "exponential_decay", "inverse_time_decay"]

Schedule = Callable[[jax.Array], Any]


def _as_float(count) -> jax.Array:
    """The count in the default float dtype (float64 under ``jax_enable_x64``)."""
    return jnp.asarray(count).astype(jax.dtypes.canonicalize_dtype(jnp.float64))


def inverse_time_decay(learning_rate: float, decay: float) -> Schedule:
    """The book's decay as a schedule: ``learning_rate * (1 / (1 + decay * count))``.

    ``sgd(inverse_time_decay(lr, d))`` equals ``sgd(lr, decay=d)``.
    """
    learning_rate = check_positive("learning_rate", learning_rate)
    decay = check_nonnegative("decay", decay)

    def schedule(count):
        return learning_rate * (1.0 / (1.0 + decay * _as_float(count)))

    return schedule


def exponential_decay(learning_rate: float, decay_rate: float, decay_steps: int) -> Schedule:
    """``learning_rate * decay_rate ** (count / decay_steps)``: the rate falls by a factor
    ``decay_rate`` every ``decay_steps`` updates, smoothly."""
    learning_rate = check_positive("learning_rate", learning_rate)
    decay_rate = check_positive("decay_rate", decay_rate)
    decay_steps = check_positive_int("decay_steps", decay_steps)

    def schedule(count):
        return learning_rate * decay_rate ** (_as_float(count) / decay_steps)

    return schedule
