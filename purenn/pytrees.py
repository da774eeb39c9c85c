"""Small pytree helpers shared by the library.

``dataclass`` makes a class an immutable dataclass registered as a pytree: its fields are
the pytree's children (numeric hyperparameters become leaves), except the fields declared
with ``static()``, which are part of the structure. Layers and optimizers are built this
way (like equinox modules), so equal arguments give equal, equal-hash objects and a new
hyperparameter value compiles nothing new::

    @pytrees.dataclass
    class Dense(Layer):
        n_inputs: int = pytrees.static()   # structure: a new size is a new program
        weight_l2: Any = None              # a leaf (None: no leaf, an empty subtree)

``stack(trees)`` puts equal-structure pytrees on a new leading axis (the run axis of
vmapped seeds and sweeps); ``unstack(tree, i)`` takes entry ``i`` back out. Each is one
compiled program per structure and shapes, not an eager operation per leaf shape.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from purenn.partition import jit_program

__all__ = ["dataclass", "stack", "static", "unstack"]

_STATIC = "static"  # the field metadata key that marks a field as structure


def static(**field_args):
    """A dataclass field that is static: part of the pytree's structure (its treedef),
    compared by equality and hashed, never a leaf. Takes ``dataclasses.field``'s arguments,
    e.g. ``static(default=None)``."""
    metadata = {**field_args.pop("metadata", {}), _STATIC: True}
    return dataclasses.field(metadata=metadata, **field_args)


def dataclass(cls):
    """Make ``cls`` a frozen dataclass and register it as a pytree.

    Every field is a child (a leaf, or a subtree such as a tuple of layers), in the order
    the fields are declared, except those declared with ``static()``, which are static.
    ``dataclasses.replace`` works as on any dataclass.
    """
    cls = dataclasses.dataclass(frozen=True)(cls)
    fields = dataclasses.fields(cls)
    return jax.tree_util.register_dataclass(
        cls, data_fields=[f.name for f in fields if not f.metadata.get(_STATIC, False)],
        meta_fields=[f.name for f in fields if f.metadata.get(_STATIC, False)])


@jit_program
def _stacked(trees: tuple):
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


@jit_program
def _entry(tree, i):
    return jax.tree.map(lambda leaf: leaf[i], tree)


def stack(trees: Sequence):
    """Stack equal-structure pytrees leaf by leaf: leaves ``(...)`` become ``(S, ...)``
    for ``S = len(trees)`` (dtypes and weak types as ``jnp.stack`` gives them)."""
    return _stacked(tuple(trees))


def unstack(tree, i: int):
    """Entry ``i`` of a pytree stacked by ``stack``: leaves ``(S, ...)`` become
    ``(...)``. ``i`` is an argument of the program: every entry shares it.

    Raises:
      IndexError: ``i`` is not in ``[-S, S)``.
    """
    leaves = jax.tree.leaves(tree)
    if not leaves:  # nothing stacked (a stateless optimizer's state): nothing to take out
        return tree
    count = len(leaves[0])
    if not -count <= i < count:
        raise IndexError(f"unstack: entry {i} of a stack of {count}")
    return _entry(tree, i)
