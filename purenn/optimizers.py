"""Optimizers: the book's SGD, Adagrad, RMSprop and Adam as pure, optax-shaped functions.

Each optimizer is an immutable pytree (an ``Optimizer``) with two pure methods, the shape
of optax's ``GradientTransformation``:

- ``init(params) -> state``: a ``NamedTuple`` pytree holding the update count, the current
  learning rate and, where the rule needs them, moment trees shaped like ``params``;
- ``update(grads, state, params=None) -> (updates, state)``: the step to add to the params.

``apply_updates(params, updates)`` adds them. Nothing is mutated, so a step jits, vmaps
(e.g. over a stack of models) and scans. The numeric hyperparameters (learning rate,
decay, momentum, epsilon, rho, betas) are the optimizer's pytree **leaves** and its
structure (which rule, whether there is a momentum buffer, a schedule function) is
static: optimizers built with equal arguments are equal and hash equal, an optimizer can
be an argument of a jitted function (a new learning rate compiles nothing new), and
``jax.vmap`` runs over a stack of optimizers. Hyperparameters may be scalar arrays, so
``optax.inject_hyperparams(pn.optimizers.adam)(learning_rate=0.02)`` works too. Example:

>>> import jax
>>> import purenn as pn
>>> from purenn import optimizers
>>> model = pn.serial(pn.dense(2, 16), pn.relu(), pn.dense(16, 3))
>>> X, y = pn.data.spiral(jax.random.key(0), 20, 3)
>>> params = model.init(jax.random.key(1))
>>> def loss(p):
...     return pn.losses.softmax_categorical_crossentropy(model.apply(p, X), y)
>>> opt = optimizers.adam(learning_rate=0.02, decay=5e-7)
>>> state = opt.init(params)
>>> updates, state = opt.update(jax.grad(loss)(params), state, params)
>>> params = optimizers.apply_updates(params, updates)
>>> int(state.count), round(float(optimizers.current_learning_rate(state)), 6)
(1, 0.02)

**Learning rate.** ``learning_rate`` is a positive number, or a schedule
``count -> rate`` called on the int32 scalar count of updates done so far (it must be
jit-traceable). ``decay`` is the book's inverse-time decay and applies on top of either::

    lr(count) = learning_rate(count) * (1.0 / (1.0 + decay * count))

(with a number, ``learning_rate(count)`` is that number; a scalar array works too, and a
traced one, e.g. rates swept with ``jax.vmap``, passes unchecked). ``decay = 0`` makes
the factor exactly 1. ``state.learning_rate`` holds
the rate used by the latest update, the book's ``optimizer.current_learning_rate``: before
any update it is the initial rate ``lr(0)``, after ``k`` updates it is ``lr(k - 1)``. So
the value read from the state before an update is what the book prints at the top of that
epoch (e.g. ``0.019900507413187767`` at epoch 10000 for ``adam(0.02, decay=5e-7)``).

**Rules** (``g`` the gradient, ``lr`` the rate above, ``t = count + 1``), exactly the
book's, in the book's order of operations; epsilon sits *outside* the square root:

- ``sgd``: ``-lr * g``; with momentum ``m = momentum * m - lr * g`` and the update ``m``
- ``adagrad``: ``c = c + g**2``; ``-lr * g / (sqrt(c) + epsilon)``
- ``rmsprop``: ``c = rho * c + (1 - rho) * g**2``; ``-lr * g / (sqrt(c) + epsilon)``
- ``adam``: ``m = beta_1 * m + (1 - beta_1) * g``; ``c = beta_2 * c + (1 - beta_2) * g**2``;
  ``-lr * (m / (1 - beta_1**t)) / (sqrt(c / (1 - beta_2**t)) + epsilon)``

Defaults are the book's (not optax's). ``chain(clip_by_global_norm(1.0), adam())``
composes transformations; ``chain`` and everything in purenn that takes an optimizer
accept any object with ``init`` and ``update`` (optax's transformations included).
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Adagrad",
    "AdagradState",
    "Adam",
    "AdamState",
    "Chain",
    "ClipByGlobalNorm",
    "EmptyState",
    "GradientTransformation",
    "Optimizer",
    "Rmsprop",
    "RmspropState",
    "Sgd",
    "SgdState",
    "adagrad",
    "adam",
    "apply_updates",
    "chain",
    "clip_by_global_norm",
    "current_learning_rate",
    "exponential_decay",
    "inverse_time_decay",
    "is_optimizer",
    "learning_rates",
    "rmsprop",
    "sgd",
]

Schedule = Callable[[jax.Array], Any]


class GradientTransformation(NamedTuple):
    """An optimizer as two pure functions (the shape of optax's), for transformations
    written as closures. purenn takes it, or anything else with ``init`` and ``update``,
    wherever it takes an optimizer.

    init:   ``init(params) -> state``
    update: ``update(grads, state, params=None) -> (updates, state)``
    """

    init: Callable[[Any], Any]
    update: Callable[..., tuple[Any, Any]]


class Optimizer:
    """Base of purenn's optimizers: an immutable pytree with ``init`` and ``update``."""

    def init(self, params) -> Any:
        """The initial state for ``params``."""
        raise NotImplementedError

    def update(self, grads, state, params=None) -> tuple[Any, Any]:
        """``(updates, new_state)``; add the updates with ``apply_updates``."""
        raise NotImplementedError


def is_optimizer(value) -> bool:
    """Whether ``value`` looks like an optimizer: callable ``init`` and ``update``."""
    return callable(getattr(value, "init", None)) and callable(getattr(value, "update", None))


def _pytree(*data: str):
    """A frozen dataclass whose fields ``data`` are pytree children; the rest is static."""

    def register(cls):
        cls = dataclasses.dataclass(frozen=True)(cls)
        meta = [f.name for f in dataclasses.fields(cls) if f.name not in data]
        return jax.tree_util.register_dataclass(cls, data_fields=list(data),
                                                meta_fields=meta)

    return register


class EmptyState(NamedTuple):
    """The state of a transformation that keeps none (``clip_by_global_norm``)."""


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


# --- argument checks (when an optimizer is built, outside jit) -------------------------


def _hyperparameter(name: str, value, expected: str, ok: Callable[[float], bool]):
    """A number (returned as a float) or a scalar array (checked when concrete, returned
    as it is: a traced one, e.g. swept under ``vmap``, passes unchecked)."""
    if isinstance(value, (jax.Array, np.ndarray, np.generic)):
        if jnp.ndim(value) != 0:
            raise ValueError(f"{name} must be a scalar ({expected}); got an array of shape "
                             f"{tuple(jnp.shape(value))}")
        if isinstance(value, jax.core.Tracer):
            return value
        concrete = float(value)
    elif isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {expected}; got {value!r} ({type(value).__name__})")
    else:
        value = concrete = float(value)
    if not (np.isfinite(concrete) and ok(concrete)):
        raise ValueError(f"{name} must be {expected}; got {concrete}")
    return value


def _check_positive(name: str, value):
    return _hyperparameter(name, value, "a finite number > 0", lambda v: v > 0)


def _check_nonnegative(name: str, value):
    return _hyperparameter(name, value, "a finite number >= 0", lambda v: v >= 0)


def _check_fraction(name: str, value):
    return _hyperparameter(name, value, "in [0, 1)", lambda v: 0 <= v < 1)


def _check_learning_rate(value):
    """A positive finite number, a scalar array, or a schedule ``count -> rate``."""
    if callable(value) and not isinstance(value, (jax.Array, np.ndarray)):
        return value
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"learning_rate must be a finite number > 0 or a schedule count -> "
                        f"rate; got {value!r} ({type(value).__name__}). Pass e.g. "
                        f"learning_rate=0.01")
    return _check_positive("learning_rate", value)


def _rate(learning_rate, decay, count, dtype) -> jax.Array:
    """The book's current learning rate before update ``count``, in ``dtype``."""
    if callable(learning_rate):
        base = jnp.asarray(learning_rate(count))
        if base.ndim != 0:
            raise ValueError(f"the learning_rate schedule must return a scalar; got "
                             f"shape {tuple(base.shape)}")
    else:
        base = jnp.asarray(learning_rate)
    base = base.astype(dtype)
    # The book's form, operation for operation; decay = 0 multiplies by exactly 1.
    return base * (1.0 / (1.0 + decay * count.astype(dtype)))


# --- tree helpers and trace-time checks --------------------------------------------------


def _float_dtype(params):
    dtypes = [jnp.result_type(leaf) for leaf in jax.tree_util.tree_leaves(params)]
    dtypes = [d for d in dtypes if jnp.issubdtype(d, jnp.floating)]
    if not dtypes:
        return jax.dtypes.canonicalize_dtype(jnp.float64)
    return jnp.result_type(*dtypes)


def _zero_count() -> jax.Array:
    return jnp.zeros((), jnp.int32)


def _zeros_like(tree):
    return jax.tree_util.tree_map(jnp.zeros_like, tree)


def _like(scalar, leaf):
    """A scalar of the rate's dtype, cast to ``leaf``'s dtype so updates keep it."""
    return scalar.astype(jnp.result_type(leaf))


def _at(path) -> str:
    return jax.tree_util.keystr(path) or "the root"


def _check_same_tree(tree, like, *, what: str) -> None:
    """Raise ValueError if ``tree`` differs from ``like`` in structure or leaf shapes.

    ``what`` begins the message, e.g. ``"adam.update: grads does not match the
    optimizer state"``. Runs on static structure and shapes, so also under jit.
    """
    leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
    ref_leaves, ref_treedef = jax.tree_util.tree_flatten_with_path(like)
    if treedef != ref_treedef:
        paths = [_at(p) for p, _ in leaves]
        ref_paths = [_at(p) for p, _ in ref_leaves]
        missing = [p for p in ref_paths if p not in set(paths)]
        extra = [p for p in paths if p not in set(ref_paths)]
        detail = ""
        if missing:
            detail += f"; missing {', '.join(missing[:3])}"
        if extra:
            detail += f"; unexpected {', '.join(extra[:3])}"
        raise ValueError(f"{what}: expected structure {ref_treedef}, got {treedef}{detail}")
    for (path, leaf), (_, ref) in zip(leaves, ref_leaves):
        if jnp.shape(leaf) != jnp.shape(ref):
            raise ValueError(f"{what}: at {_at(path)} expected shape "
                             f"{tuple(jnp.shape(ref))}, got {tuple(jnp.shape(leaf))}")


def _check_state(name: str, state, cls) -> None:
    if not isinstance(state, cls):
        raise TypeError(f"{name}.update: state must be the {cls.__name__} that "
                        f"{name}(...).init(params) returns; got {type(state).__name__}")


def _check_grads(name: str, grads, moments, params) -> None:
    """Check grads against the state's moment tree, or against params without one."""
    if moments is not None:
        _check_same_tree(grads, moments,
                         what=f"{name}.update: grads does not match the optimizer state")
    elif params is not None:
        _check_same_tree(grads, params, what=f"{name}.update: grads does not match params")


# --- the public functions ------------------------------------------------------------


def _cache_scaled_updates(lr, grads, cache, epsilon):
    """Adagrad's and RMSprop's step ``-lr * g / (sqrt(c) + epsilon)``, epsilon outside."""
    return jax.tree_util.tree_map(
        lambda g, c: -_like(lr, g) * g / (jnp.sqrt(c) + epsilon), grads, cache)


def apply_updates(params, updates):
    """``params + updates``, leaf by leaf, each result cast back to its param's dtype.

    Args:
      params: a pytree of arrays.
      updates: a pytree of the same structure and leaf shapes (what ``update`` returns).

    Returns:
      the new params, same structure, shapes and dtypes as ``params``.
    """
    _check_same_tree(updates, params, what="apply_updates: updates does not match params")
    return jax.tree_util.tree_map(
        lambda p, u: jnp.asarray(p + u).astype(jnp.result_type(p)), params, updates)


def learning_rates(state) -> list:
    """The learning rates a state holds, outermost first: the ``learning_rate`` fields of
    NamedTuple states (purenn's hold the rate of their latest update, decay included);
    only if there are none, the ``hyperparams["learning_rate"]`` of
    ``optax.inject_hyperparams``' states."""
    fields, injected = [], []

    def search(node):
        if isinstance(node, tuple) and "learning_rate" in getattr(node, "_fields", ()):
            fields.append(node.learning_rate)
        hyperparams = getattr(node, "hyperparams", None)
        if isinstance(hyperparams, dict) and "learning_rate" in hyperparams:
            injected.append(hyperparams["learning_rate"])
        if isinstance(node, tuple):
            for child in node:
                search(child)

    search(state)
    return fields or injected


def current_learning_rate(state) -> jax.Array:
    """The rate used by the latest update (the initial rate before any update).

    Works on an optimizer's state, on a ``chain(...)`` state (a tuple of states), in
    which exactly one inner state must carry a learning rate, and on the state of
    ``optax.inject_hyperparams(pn.optimizers.adam)(...)`` (the inner state's rate).
    """
    found = learning_rates(state)
    if not found:
        raise ValueError(f"current_learning_rate: this state has no learning rate "
                         f"(got {type(state).__name__}); pass the state of sgd, adagrad, "
                         f"rmsprop or adam, or of a chain that contains one")
    if len(found) > 1:
        raise ValueError(f"current_learning_rate: this chain state holds {len(found)} "
                         f"learning rates; read the one you mean, e.g. state[i].learning_rate")
    return found[0]


@_pytree("learning_rate", "decay", "momentum")
class Sgd(Optimizer):
    """The book's SGD; build it with ``sgd``."""

    learning_rate: Any = 1.0
    decay: Any = 0.0
    momentum: Any = None  # None: no buffer (static); a number: the momentum factor

    def init(self, params):
        buffer = None if self.momentum is None else _zeros_like(params)
        dtype = _float_dtype(params)
        return SgdState(_zero_count(), _rate(self.learning_rate, self.decay, _zero_count(),
                                             dtype), buffer)

    def update(self, grads, state, params=None):
        _check_state("sgd", state, SgdState)
        if (state.momentum is None) != (self.momentum is None):
            raise ValueError("sgd.update: this state was made by an sgd "
                             f"{'without' if state.momentum is None else 'with'} momentum; "
                             "init the state with the optimizer that updates it")
        _check_grads("sgd", grads, state.momentum, params)
        del params  # unused
        lr = _rate(self.learning_rate, self.decay, state.count, state.learning_rate.dtype)
        if self.momentum is None:
            buffer = None
            updates = jax.tree_util.tree_map(lambda g: -_like(lr, g) * g, grads)
        else:
            buffer = jax.tree_util.tree_map(
                lambda m, g: self.momentum * m - _like(lr, g) * g, state.momentum, grads)
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
    return Sgd(_check_learning_rate(learning_rate), _check_nonnegative("decay", decay),
               None if momentum is None else _check_nonnegative("momentum", momentum))


@_pytree("learning_rate", "decay", "epsilon")
class Adagrad(Optimizer):
    """The book's Adagrad; build it with ``adagrad``."""

    learning_rate: Any = 1.0
    decay: Any = 0.0
    epsilon: Any = 1e-7

    def init(self, params):
        dtype = _float_dtype(params)
        return AdagradState(_zero_count(), _rate(self.learning_rate, self.decay,
                                                 _zero_count(), dtype), _zeros_like(params))

    def update(self, grads, state, params=None):
        _check_state("adagrad", state, AdagradState)
        _check_grads("adagrad", grads, state.cache, params)
        del params  # unused
        lr = _rate(self.learning_rate, self.decay, state.count, state.learning_rate.dtype)
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
    return Adagrad(_check_learning_rate(learning_rate), _check_nonnegative("decay", decay),
                   _check_positive("epsilon", epsilon))


@_pytree("learning_rate", "decay", "epsilon", "rho")
class Rmsprop(Optimizer):
    """The book's RMSprop; build it with ``rmsprop``."""

    learning_rate: Any = 0.001
    decay: Any = 0.0
    epsilon: Any = 1e-7
    rho: Any = 0.9

    def init(self, params):
        dtype = _float_dtype(params)
        return RmspropState(_zero_count(), _rate(self.learning_rate, self.decay,
                                                 _zero_count(), dtype), _zeros_like(params))

    def update(self, grads, state, params=None):
        _check_state("rmsprop", state, RmspropState)
        _check_grads("rmsprop", grads, state.cache, params)
        del params  # unused
        lr = _rate(self.learning_rate, self.decay, state.count, state.learning_rate.dtype)
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
    return Rmsprop(_check_learning_rate(learning_rate), _check_nonnegative("decay", decay),
                   _check_positive("epsilon", epsilon), _check_fraction("rho", rho))


@_pytree("learning_rate", "decay", "epsilon", "beta_1", "beta_2")
class Adam(Optimizer):
    """The book's Adam; build it with ``adam``."""

    learning_rate: Any = 0.001
    decay: Any = 0.0
    epsilon: Any = 1e-7
    beta_1: Any = 0.9
    beta_2: Any = 0.999

    def init(self, params):
        dtype = _float_dtype(params)
        return AdamState(_zero_count(), _rate(self.learning_rate, self.decay, _zero_count(),
                                              dtype), _zeros_like(params), _zeros_like(params))

    def update(self, grads, state, params=None):
        _check_state("adam", state, AdamState)
        _check_grads("adam", grads, state.momentum, params)
        del params  # unused
        dtype = state.learning_rate.dtype
        beta_1, beta_2, epsilon = self.beta_1, self.beta_2, self.epsilon
        lr = _rate(self.learning_rate, self.decay, state.count, dtype)
        t = (state.count + 1).astype(dtype)
        correction_1 = 1 - jnp.asarray(beta_1, dtype) ** t
        correction_2 = 1 - jnp.asarray(beta_2, dtype) ** t
        momentum = jax.tree_util.tree_map(
            lambda m, g: beta_1 * m + (1 - beta_1) * g, state.momentum, grads)
        cache = jax.tree_util.tree_map(
            lambda c, g: beta_2 * c + (1 - beta_2) * g**2, state.cache, grads)

        def step(m, c):
            m_hat = m / _like(correction_1, m)
            c_hat = c / _like(correction_2, c)
            return -_like(lr, m) * m_hat / (jnp.sqrt(c_hat) + epsilon)

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
    return Adam(_check_learning_rate(learning_rate), _check_nonnegative("decay", decay),
                _check_positive("epsilon", epsilon), _check_fraction("beta_1", beta_1),
                _check_fraction("beta_2", beta_2))


@_pytree("max_norm")
class ClipByGlobalNorm(Optimizer):
    """Gradient clipping; build it with ``clip_by_global_norm``."""

    max_norm: Any

    def init(self, params):
        del params  # unused
        return EmptyState()

    def update(self, grads, state, params=None):
        _check_state("clip_by_global_norm", state, EmptyState)
        if params is not None:
            _check_same_tree(grads, params,
                             what="clip_by_global_norm.update: grads does not match params")
        del params  # unused
        leaves = jax.tree_util.tree_leaves(grads)
        if not leaves:
            return grads, state
        max_norm = self.max_norm
        norm = jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in leaves))
        scale = jnp.where(norm > max_norm, max_norm / norm, 1.0)  # min(1, max_norm / norm)
        return jax.tree_util.tree_map(lambda g: g * _like(scale, g), grads), state


def clip_by_global_norm(max_norm: float) -> ClipByGlobalNorm:
    """Scale the whole gradient tree by ``min(1, max_norm / global_norm)``.

    ``global_norm = sqrt(sum of g**2 over every leaf)``; a tree whose norm is at most
    ``max_norm`` passes unchanged. Meant for ``chain(clip_by_global_norm(1.0), adam())``.

    Args:
      max_norm: > 0.

    State: ``EmptyState()``.
    """
    return ClipByGlobalNorm(_check_positive("max_norm", max_norm))


@_pytree("transforms")
class Chain(Optimizer):
    """Transformations applied in turn; build it with ``chain``."""

    transforms: tuple

    def init(self, params):
        return tuple(transform.init(params) for transform in self.transforms)

    def update(self, grads, state, params=None):
        n = len(self.transforms)
        if not isinstance(state, tuple) or hasattr(state, "_fields") or len(state) != n:
            got = (f"{len(state)} states" if isinstance(state, tuple)
                   and not hasattr(state, "_fields") else type(state).__name__)
            raise TypeError(f"chain.update: state must be the tuple of {n} states that "
                            f"chain(...).init(params) returns; got {got}")
        new_state = []
        for transform, inner in zip(self.transforms, state):
            grads, inner = transform.update(grads, inner, params)
            new_state.append(inner)
        return grads, tuple(new_state)


def chain(*transforms) -> Chain:
    """Apply transformations one after another: each one's updates are the next one's grads.

    Each transformation is anything with ``init(params)`` and ``update(grads, state,
    params)``: purenn's optimizers, a ``GradientTransformation`` of two functions, or an
    optax transformation.

    State: a tuple with one inner state per transformation, in order.
    """
    for i, transform in enumerate(transforms):
        if not is_optimizer(transform):
            hint = (" Did you pass adam instead of adam()?" if callable(transform) else "")
            raise TypeError(f"chain: argument {i} must be an optimizer or transformation "
                            f"with init and update methods (e.g. adam()); got "
                            f"{type(transform).__name__}.{hint}")
    return Chain(tuple(transforms))


# --- schedules: count -> rate ----------------------------------------------------------


def _as_float(count) -> jax.Array:
    """The count in the default float dtype (float64 under ``jax_enable_x64``)."""
    return jnp.asarray(count).astype(jax.dtypes.canonicalize_dtype(jnp.float64))


def inverse_time_decay(learning_rate: float, decay: float) -> Schedule:
    """The book's decay as a schedule: ``learning_rate * (1 / (1 + decay * count))``.

    ``sgd(inverse_time_decay(lr, d))`` equals ``sgd(lr, decay=d)``.
    """
    learning_rate = _check_positive("learning_rate", learning_rate)
    decay = _check_nonnegative("decay", decay)

    def schedule(count):
        return learning_rate * (1.0 / (1.0 + decay * _as_float(count)))

    return schedule


def exponential_decay(learning_rate: float, decay_rate: float, decay_steps: int) -> Schedule:
    """``learning_rate * decay_rate ** (count / decay_steps)``: the rate falls by a factor
    ``decay_rate`` every ``decay_steps`` updates, smoothly."""
    learning_rate = _check_positive("learning_rate", learning_rate)
    decay_rate = _check_positive("decay_rate", decay_rate)
    if isinstance(decay_steps, bool) or not isinstance(decay_steps, numbers.Integral):
        raise TypeError(f"decay_steps must be a positive integer; got {decay_steps!r} "
                        f"({type(decay_steps).__name__})")
    if decay_steps < 1:
        raise ValueError(f"decay_steps must be a positive integer (>= 1); got {decay_steps}")
    decay_steps = int(decay_steps)

    def schedule(count):
        return learning_rate * decay_rate ** (_as_float(count) / decay_steps)

    return schedule
