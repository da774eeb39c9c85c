"""Data parallelism: where a step's arrays live on a mesh.

``placement(mesh, data_axis)`` is None without a mesh, else a ``Placement``: the batch
split over ``data_axis``, params and optimizer state replicated. It is a static part of
the components (hashable), so equal meshes share compiled programs.
"""

from __future__ import annotations

import jax
from jax import lax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

__all__ = ["Placement", "placement"]


class Placement:
    """Where a step's arrays live: the batch split over ``axis`` of ``mesh``, the rest
    replicated. XLA's SPMD partitioner inserts the gradient all-reduce."""

    def __init__(self, mesh: Mesh, axis: str):
        if not isinstance(mesh, Mesh):
            raise TypeError(f"mesh must be a jax.sharding.Mesh, e.g. "
                            f"jax.make_mesh((n,), ('data',)); got {type(mesh).__name__}")
        if axis not in mesh.axis_names:
            raise ValueError(f"data_axis {axis!r} is not an axis of the mesh "
                             f"{mesh.axis_names}; pass data_axis=<one of them>")
        # Auto axes let the partitioner place the intermediate results, whatever axis types
        # the caller's mesh has (jax.make_mesh gives Explicit axes on recent JAX).
        auto = Mesh(mesh.devices, mesh.axis_names,
                    axis_types=(AxisType.Auto,) * len(mesh.axis_names))
        self.axis, self.devices = axis, mesh.shape[axis]
        self.batch = NamedSharding(auto, PartitionSpec(axis))
        self.replicated = NamedSharding(auto, PartitionSpec())

    def __hash__(self):
        return hash((self.batch, self.replicated))

    def __eq__(self, other):
        return isinstance(other, Placement) and (self.batch, self.replicated) == (
            other.batch, other.replicated)

    def shard_batch(self, x, name):
        """``x`` (a batch, traced) constrained to be split over the axis."""
        if x.shape[0] % self.devices:
            raise ValueError(
                f"{name}: a batch of {x.shape[0]} samples does not divide evenly over the "
                f"{self.devices} devices of mesh axis {self.axis!r}; use a batch size (or "
                f"sample count) that is a multiple of {self.devices}")
        return lax.with_sharding_constraint(x, self.batch)

    def place(self, X, y, params, opt_state):
        """Put a data set on the mesh once: split over the axis where it divides evenly
        (otherwise replicated, and each batch is split inside the step)."""
        rows = self.batch if X.shape[0] % self.devices == 0 else self.replicated
        params, opt_state = jax.device_put((params, opt_state), self.replicated)
        return jax.device_put(X, rows), jax.device_put(y, rows), params, opt_state

    def replicate(self, tree):
        """Every leaf of ``tree`` (traced) constrained to be replicated."""
        return jax.tree.map(lambda a: lax.with_sharding_constraint(a, self.replicated), tree)


def placement(mesh: Mesh | None, data_axis: str) -> Placement | None:
    """None without a mesh, else the ``Placement`` of the batch over ``data_axis``."""
    return None if mesh is None else Placement(mesh, data_axis)
