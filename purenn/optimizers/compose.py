"""Transformations that compose: gradient clipping and chains of transformations."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from purenn import pytrees
from purenn._checks import check_positive
from purenn.optimizers.base import (
    Optimizer,
    cast_like,
    check_same_tree,
    check_state,
    is_optimizer,
)
from purenn.optimizers.rules import Adagrad, Adam, Rmsprop, Sgd
from purenn.partition import compiled_method

__all__ = ["Chain", "ClipByGlobalNorm", "EmptyState", "chain", "clip_by_global_norm"]


class EmptyState(NamedTuple):
    """The state of a transformation that keeps none (``clip_by_global_norm``)."""


@pytrees.dataclass
class ClipByGlobalNorm(Optimizer):
    """Gradient clipping; build it with ``clip_by_global_norm``."""

    max_norm: Any

    def init(self, params):
        del params  # unused
        return EmptyState()

    def update(self, grads, state, params=None):
        check_state("clip_by_global_norm", state, EmptyState)
        if params is not None:
            check_same_tree(grads, params,
                            what="clip_by_global_norm.update: grads does not match params")
        del params  # unused
        leaves = jax.tree_util.tree_leaves(grads)
        if not leaves:
            return grads, state
        max_norm = self.max_norm
        norm = jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in leaves))
        scale = jnp.where(norm > max_norm, max_norm / norm, 1.0)  # min(1, max_norm / norm)
        return jax.tree_util.tree_map(lambda g: g * cast_like(scale, g), grads), state


def clip_by_global_norm(max_norm: float) -> ClipByGlobalNorm:
    """Scale the whole gradient tree by ``min(1, max_norm / global_norm)``.

    ``global_norm = sqrt(sum of g**2 over every leaf)``; a tree whose norm is at most
    ``max_norm`` passes unchanged. Meant for ``chain(clip_by_global_norm(1.0), adam())``.

    Args:
      max_norm: > 0.

    State: ``EmptyState()``.
    """
    return ClipByGlobalNorm(check_positive("max_norm", max_norm))


@pytrees.dataclass
class Chain(Optimizer):
    """Transformations applied in turn; build it with ``chain``."""

    transforms: tuple

    def init(self, params):
        """A tuple of the transformations' states, in order: one compiled program per
        structure when every transformation is purenn's own; otherwise each one's
        ``init`` is called as it is (an optax one included)."""
        if _init_compiles(self):
            return self._compiled_states(params)
        return self._states(params)

    def _states(self, params):
        return tuple(transform.init(params) for transform in self.transforms)

    _compiled_states = compiled_method(_states)

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


_OWN_TRANSFORMS = (Sgd, Adagrad, Rmsprop, Adam, ClipByGlobalNorm)


def _init_compiles(transform) -> bool:
    """Whether ``transform.init`` may run inside one compiled program: purenn's own
    transformations (their ``init`` is pure), and chains of them."""
    if type(transform) is Chain:
        return all(_init_compiles(inner) for inner in transform.transforms)
    return type(transform) in _OWN_TRANSFORMS


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
