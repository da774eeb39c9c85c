"""Small pytree helpers shared by the library.

``stack(trees)`` puts equal-structure pytrees on a new leading axis (the run axis of
vmapped seeds and sweeps); ``unstack(tree, i)`` takes entry ``i`` back out.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

__all__ = ["stack", "unstack"]


def stack(trees: Sequence):
    """Stack equal-structure pytrees leaf by leaf: leaves ``(...)`` become ``(S, ...)``
    for ``S = len(trees)``."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def unstack(tree, i: int):
    """Entry ``i`` of a pytree stacked by ``stack``: leaves ``(S, ...)`` become
    ``(...)``."""
    return jax.tree.map(lambda leaf: leaf[i], tree)
