"""The book's update rules: SGD (with optional momentum), Adagrad, RMSprop and Adam.

Each rule is a ``pytrees.dataclass`` whose hyperparameters are leaves, built and checked
by its function (``sgd``, ``adagrad``, ``rmsprop``, ``adam``), with a ``NamedTuple`` state.
Each ``init`` is one compiled program per structure (``purenn.partition.compiled_method``):
optimizers that differ only in values, for params of the same shapes, share it.
The formulas are in the ``purenn.optimizers`` docstring.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from purenn import pytrees
from purenn._checks import check_fraction, check_nonnegative, check_positive
from purenn.optimizers.base import (
    Optimizer,
    cast_like,
    check_grads,
    check_learning_rate,
    check_state,
    float_dtype,
    learning_rate_at,
    zero_count,
    zeros_like,
)
from purenn.partition import compiled_method

__all__ = ["Adagrad", "AdagradState", "Adam", "AdamState", "Rmsprop", "RmspropState", "Sgd",
           "SgdState", "adagrad", "adam", "rmsprop", "sgd"]


class SgdState(NamedTuple):
    count: jax.Array  # int32, shape (): updates done so far
    learning_rate: jax.Array  # shape (), params' float dtype: rate of the latest update
    momentum: Any  # tree like params (same shapes and dtypes), or None without momentum


class AdagradState(NamedTuple):
    count: jax.Array  # int32, shape (): updates done so far
    learning_rate: jax.Array  # shape (), params' float dtype: rate of the latest update
    cache: Any  # tree like params: the running sum of g**2


class RmspropState(NamedTuple):
    count: jax.Array  # int32, shape (): updates done so far
    learning_rate: jax.Array  # shape (), params' float dtype: rate of the latest update
    cache: Any  # tree like params: the moving average of g**2


class AdamState(NamedTuple):
    count: jax.Array  # int32, shape (): updates done so far
    learning_rate: jax.Array  # shape (), params' float dtype: rate of the latest update
    momentum: Any  # tree like params: the moving average of g (uncorrected)
    cache: Any  # tree like params: the moving average of g**2 (uncorrected)


def _rate_at(rule, count, dtype) -> jax.Array:
    """The learning rate of ``rule`` (its ``learning_rate`` and ``decay``) before update
    ``count``, in ``dtype``."""
    return learning_rate_at(rule.learning_rate, rule.decay, count, dtype)


def _cache_scaled_updates(lr, grads, cache, epsilon):
    """Adagrad's and RMSprop's step ``-lr * g / (sqrt(c) + epsilon)``, epsilon outside."""
    return jax.tree_util.tree_map(
        lambda g, c: -cast_like(lr, g) * g / (jnp.sqrt(c) + epsilon), grads, cache)


@pytrees.dataclass
class Sgd(Optimizer):
    """The book's SGD; build it with ``sgd``."""

    learning_rate: Any = 1.0
    decay: Any = 0.0
    momentum: Any = None  # None: no buffer (and no leaf); a number: the momentum factor

    @compiled_method
    def init(self, params):
        buffer = None if self.momentum is None else zeros_like(params)
        dtype = float_dtype(params)
        return SgdState(zero_count(), _rate_at(self, zero_count(), dtype), buffer)

    def update(self, grads, state, params=None):
        check_state("sgd", state, SgdState)
        if (state.momentum is None) != (self.momentum is None):
            raise ValueError("sgd.update: this state was made by an sgd "
                             f"{'without' if state.momentum is None else 'with'} momentum; "
                             "init the state with the optimizer that updates it")
        check_grads("sgd", grads, state.momentum, params)
        del params  # unused
        lr = _rate_at(self, state.count, state.learning_rate.dtype)
        if self.momentum is None:
            buffer = None
            updates = jax.tree_util.tree_map(lambda g: -cast_like(lr, g) * g, grads)
        else:
            buffer = jax.tree_util.tree_map(
                lambda m, g: self.momentum * m - cast_like(lr, g) * g, state.momentum, grads)
            updates = buffer
        return updates, SgdState(state.count + 1, lr, buffer)


def sgd(learning_rate=1.0, decay: float = 0.0, momentum: float | None = None) -> Sgd:
    """The book's stochastic gradient descent, with optional momentum.

    Without momentum the update is ``-lr * g``. With momentum the buffer ``m`` (zeros at
    first) holds the update itself, with the rate **inside** it:
    ``m = momentum * m - lr * g``; update ``m``.

    Args:
      learning_rate: a number > 0, or a schedule ``count -> rate``.
      decay: inverse-time decay, ``lr = learning_rate * (1 / (1 + decay * count))``; >= 0.
      momentum: the momentum factor, >= 0. ``None`` (the default, the book's momentum 0)
        carries no buffer (``state.momentum`` is None); any number, 0 included, carries
        one, so momenta can be swept under ``jit``/``vmap`` with one structure.

    State: ``SgdState(count, learning_rate, momentum)``.
    """
    return Sgd(check_learning_rate(learning_rate), check_nonnegative("decay", decay),
               None if momentum is None else check_nonnegative("momentum", momentum))


@pytrees.dataclass
class Adagrad(Optimizer):
    """The book's Adagrad; build it with ``adagrad``."""

    learning_rate: Any = 1.0
    decay: Any = 0.0
    epsilon: Any = 1e-7

    @compiled_method
    def init(self, params):
        dtype = float_dtype(params)
        return AdagradState(zero_count(), _rate_at(self, zero_count(), dtype), zeros_like(params))

    def update(self, grads, state, params=None):
        check_state("adagrad", state, AdagradState)
        check_grads("adagrad", grads, state.cache, params)
        del params  # unused
        lr = _rate_at(self, state.count, state.learning_rate.dtype)
        cache = jax.tree_util.tree_map(lambda c, g: c + g**2, state.cache, grads)
        updates = _cache_scaled_updates(lr, grads, cache, self.epsilon)
        return updates, AdagradState(state.count + 1, lr, cache)


def adagrad(learning_rate=1.0, decay: float = 0.0, epsilon: float = 1e-7) -> Adagrad:
    """The book's Adagrad: a per-parameter rate from the sum of squared gradients.

    ``c = c + g**2``; update ``-lr * g / (sqrt(c) + epsilon)`` (epsilon outside the root).

    Args:
      learning_rate: a number > 0, or a schedule ``count -> rate``.
      decay: inverse-time decay, ``lr = learning_rate * (1 / (1 + decay * count))``; >= 0.
      epsilon: > 0, keeps the division finite.

    State: ``AdagradState(count, learning_rate, cache)``.
    """
    return Adagrad(check_learning_rate(learning_rate), check_nonnegative("decay", decay),
                   check_positive("epsilon", epsilon))


@pytrees.dataclass
class Rmsprop(Optimizer):
    """The book's RMSprop; build it with ``rmsprop``."""

    learning_rate: Any = 0.001
    decay: Any = 0.0
    epsilon: Any = 1e-7
    rho: Any = 0.9

    @compiled_method
    def init(self, params):
        dtype = float_dtype(params)
        return RmspropState(zero_count(), _rate_at(self, zero_count(), dtype), zeros_like(params))

    def update(self, grads, state, params=None):
        check_state("rmsprop", state, RmspropState)
        check_grads("rmsprop", grads, state.cache, params)
        del params  # unused
        lr = _rate_at(self, state.count, state.learning_rate.dtype)
        rho = self.rho
        cache = jax.tree_util.tree_map(
            lambda c, g: rho * c + (1 - rho) * g**2, state.cache, grads)
        updates = _cache_scaled_updates(lr, grads, cache, self.epsilon)
        return updates, RmspropState(state.count + 1, lr, cache)


def rmsprop(learning_rate=0.001, decay: float = 0.0, epsilon: float = 1e-7,
            rho: float = 0.9) -> Rmsprop:
    """The book's RMSprop: a per-parameter rate from a moving average of squared gradients.

    ``c = rho * c + (1 - rho) * g**2``; update ``-lr * g / (sqrt(c) + epsilon)`` (epsilon
    outside the root, unlike optax's default).

    Args:
      learning_rate: a number > 0, or a schedule ``count -> rate``.
      decay: inverse-time decay, ``lr = learning_rate * (1 / (1 + decay * count))``; >= 0.
      epsilon: > 0, keeps the division finite.
      rho: the cache's decay, in ``[0, 1)``.

    State: ``RmspropState(count, learning_rate, cache)``.
    """
    return Rmsprop(check_learning_rate(learning_rate), check_nonnegative("decay", decay),
                   check_positive("epsilon", epsilon), check_fraction("rho", rho))


@pytrees.dataclass
class Adam(Optimizer):
    """The book's Adam; build it with ``adam``."""

    learning_rate: Any = 0.001
    decay: Any = 0.0
    epsilon: Any = 1e-7
    beta_1: Any = 0.9
    beta_2: Any = 0.999

    @compiled_method
    def init(self, params):
        dtype = float_dtype(params)
        return AdamState(zero_count(), _rate_at(self, zero_count(), dtype), zeros_like(params),
                         zeros_like(params))

    def update(self, grads, state, params=None):
        check_state("adam", state, AdamState)
        check_grads("adam", grads, state.momentum, params)
        del params  # unused
        dtype = state.learning_rate.dtype
        beta_1, beta_2, epsilon = self.beta_1, self.beta_2, self.epsilon
        lr = _rate_at(self, state.count, dtype)
        t = (state.count + 1).astype(dtype)
        correction_1 = 1 - jnp.asarray(beta_1, dtype) ** t
        correction_2 = 1 - jnp.asarray(beta_2, dtype) ** t
        momentum = jax.tree_util.tree_map(
            lambda m, g: beta_1 * m + (1 - beta_1) * g, state.momentum, grads)
        cache = jax.tree_util.tree_map(
            lambda c, g: beta_2 * c + (1 - beta_2) * g**2, state.cache, grads)

        def step(m, c):
            m_hat = m / cast_like(correction_1, m)
            c_hat = c / cast_like(correction_2, c)
            return -cast_like(lr, m) * m_hat / (jnp.sqrt(c_hat) + epsilon)

        updates = jax.tree_util.tree_map(step, momentum, cache)
        return updates, AdamState(state.count + 1, lr, momentum, cache)


def adam(learning_rate=0.001, decay: float = 0.0, epsilon: float = 1e-7, beta_1: float = 0.9,
         beta_2: float = 0.999) -> Adam:
    """The book's Adam: momentum plus an RMSprop cache, both bias-corrected.

    With ``t = count + 1`` (the number of this update)::

        m = beta_1 * m + (1 - beta_1) * g
        c = beta_2 * c + (1 - beta_2) * g**2
        m_hat = m / (1 - beta_1**t);  c_hat = c / (1 - beta_2**t)
        update = -lr * m_hat / (sqrt(c_hat) + epsilon)

    Args:
      learning_rate: a number > 0, or a schedule ``count -> rate``.
      decay: inverse-time decay, ``lr = learning_rate * (1 / (1 + decay * count))``; >= 0.
      epsilon: > 0, added outside the square root.
      beta_1, beta_2: the moving averages' factors, each in ``[0, 1)``.

    State: ``AdamState(count, learning_rate, momentum, cache)``; ``momentum`` and ``cache``
    hold the uncorrected averages.
    """
    return Adam(check_learning_rate(learning_rate), check_nonnegative("decay", decay),
                check_positive("epsilon", epsilon), check_fraction("beta_1", beta_1),
                check_fraction("beta_2", beta_2))
