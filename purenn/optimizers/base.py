"""The optimizer protocol and what every rule shares.

``Optimizer`` and ``GradientTransformation`` (the shape of optax's), ``apply_updates``,
and reading the learning rate from a state (``learning_rates``, ``current_learning_rate``).
The rest is shared by the rules and ``compose``: the learning-rate argument's check and
its value at an update count (``check_learning_rate``, ``learning_rate_at``), the state's
building blocks, and the trace-time checks of states and gradient trees.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from purenn._checks import check_positive

__all__ = [
    "GradientTransformation",
    "Optimizer",
    "apply_updates",
    "cast_like",
    "check_grads",
    "check_learning_rate",
    "check_same_tree",
    "check_state",
    "current_learning_rate",
    "float_dtype",
    "is_optimizer",
    "learning_rate_at",
    "learning_rates",
    "zero_count",
    "zeros_like",
]

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


# --- the learning rate (checked when an optimizer is built, outside jit) ----------------


def check_learning_rate(value):
    """A positive finite number, a scalar array, or a schedule ``count -> rate``."""
    if callable(value) and not isinstance(value, (jax.Array, np.ndarray)):
        return value
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"learning_rate must be a finite number > 0 or a schedule count -> "
                        f"rate; got {value!r} ({type(value).__name__}). Pass e.g. "
                        f"learning_rate=0.01")
    return check_positive("learning_rate", value)


def learning_rate_at(learning_rate, decay, count: jax.Array, dtype) -> jax.Array:
    """The book's current learning rate before update ``count`` (an int32 scalar), a
    scalar of ``dtype``: ``learning_rate(count) * (1 / (1 + decay * count))``."""
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


# --- state building blocks and trace-time checks -----------------------------------------


def float_dtype(params):
    """The float dtype of ``params``' leaves (promoted), the dtype of the state's rate;
    the default float dtype when there are none."""
    dtypes = [jnp.result_type(leaf) for leaf in jax.tree_util.tree_leaves(params)]
    dtypes = [d for d in dtypes if jnp.issubdtype(d, jnp.floating)]
    if not dtypes:
        return jax.dtypes.canonicalize_dtype(jnp.float64)
    return jnp.result_type(*dtypes)


def zero_count() -> jax.Array:
    """A state's update count before any update: int32, shape ()."""
    return jnp.zeros((), jnp.int32)


def zeros_like(tree):
    """A moment tree (momentum, cache) of zeros, shaped like ``tree``."""
    return jax.tree_util.tree_map(jnp.zeros_like, tree)


def cast_like(scalar, leaf):
    """A scalar of the rate's dtype, cast to ``leaf``'s dtype so updates keep it."""
    return scalar.astype(jnp.result_type(leaf))


def _at(path) -> str:
    return jax.tree_util.keystr(path) or "the root"


def check_same_tree(tree, like, *, what: str) -> None:
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


def check_state(name: str, state, cls) -> None:
    """Raise TypeError unless ``state`` is the ``cls`` that ``name(...).init`` returns."""
    if not isinstance(state, cls):
        raise TypeError(f"{name}.update: state must be the {cls.__name__} that "
                        f"{name}(...).init(params) returns; got {type(state).__name__}")


def check_grads(name: str, grads, moments, params) -> None:
    """Check grads against the state's moment tree, or against params without one."""
    if moments is not None:
        check_same_tree(grads, moments,
                        what=f"{name}.update: grads does not match the optimizer state")
    elif params is not None:
        check_same_tree(grads, params, what=f"{name}.update: grads does not match params")


# --- applying updates and reading the learning rate ------------------------------------


def apply_updates(params, updates):
    """``params + updates``, leaf by leaf, each result cast back to its param's dtype.

    Args:
      params: a pytree of arrays.
      updates: a pytree of the same structure and leaf shapes (what ``update`` returns).

    Returns:
      the new params, same structure, shapes and dtypes as ``params``.
    """
    check_same_tree(updates, params, what="apply_updates: updates does not match params")
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
