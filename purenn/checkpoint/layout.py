"""The checkpoint file's layout: its metadata constants, the dtypes it holds, and
the tensor names (a leaf's key path joined with ``/``, escaped as in a JSON Pointer).

See the ``purenn.checkpoint`` docstring for the format itself.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import DictKey, FlattenedIndexKey, GetAttrKey, SequenceKey

__all__ = ["DTYPES", "FORMAT", "FORMAT_METADATA", "RESERVED", "SUPPORTED", "VERSION",
           "named_leaves", "nest", "show"]

FORMAT = "purenn.checkpoint"
VERSION = "1"
# The metadata entries of the format itself; any other entry is the saver's own.
FORMAT_METADATA = ("format", "version", "prng_keys", "weak_type")

# safetensors dtype codes and the NumPy dtypes they hold (little-endian, as the format is).
DTYPES = {
    "BOOL": np.dtype(np.bool_),
    "I8": np.dtype("<i1"),
    "U8": np.dtype("<u1"),
    "I16": np.dtype("<i2"),
    "U16": np.dtype("<u2"),
    "I32": np.dtype("<i4"),
    "U32": np.dtype("<u4"),
    "I64": np.dtype("<i8"),
    "U64": np.dtype("<u8"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype(jnp.bfloat16),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
}
SUPPORTED = ", ".join(str(dtype) for dtype in DTYPES.values())
RESERVED = "__metadata__"  # the safetensors header's metadata entry


# --- names -----------------------------------------------------------------------------


def _escape(component: str) -> str:
    """A key path component as it appears in a name: ``~`` as ``~0``, ``/`` as ``~1``."""
    return component.replace("~", "~0").replace("/", "~1")


def _unescape(component: str) -> str:
    """The inverse of ``_escape``."""
    return component.replace("~1", "/").replace("~0", "~")


def _component(key) -> str:
    if isinstance(key, DictKey):
        return _escape(key.key if isinstance(key.key, str) else str(key.key))
    if isinstance(key, SequenceKey):
        return str(key.idx)
    if isinstance(key, GetAttrKey):
        return _escape(key.name)
    if isinstance(key, FlattenedIndexKey):
        return str(key.key)
    return _escape(str(key))


def _name(key_path) -> str:
    """The name of the leaf at ``key_path`` (``jax.tree_util`` keys): ``params/0/weights``."""
    return "/".join(_component(key) for key in key_path)


def show(name: str) -> str:
    """A name for messages: the empty name (a tree that is one array) is ``<root>``."""
    return name if name else "<root>"


def named_leaves(tree, what: str) -> list[tuple[str, Any]]:
    """``tree``'s leaves with their names, in ``tree_flatten`` order; names checked unique."""
    named = [(_name(key_path), leaf)
             for key_path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]]
    seen = set()
    for name, _ in named:
        if name == RESERVED:
            raise ValueError(f"{what}: the name {RESERVED!r} is reserved by the safetensors "
                             f"format; rename that dict key")
        if name in seen:
            raise ValueError(f"{what}: two leaves have the name {show(name)!r} (a dict "
                             f"with both an int key and the same key as a string?); use "
                             f"distinct string keys")
        seen.add(name)
    return named


def nest(leaves: dict[str, jax.Array], where: str):
    """Nested dicts from ``/``-separated names; a lone tensor named ``""`` is the tree."""
    if list(leaves) == [""]:
        return leaves[""]
    root: dict = {}
    for name, value in leaves.items():
        *folders, last = [_unescape(part) for part in name.split("/")]
        node = root
        for depth, folder in enumerate(folders):
            node = node.setdefault(folder, {})
            if not isinstance(node, dict):
                prefix = "/".join(name.split("/")[:depth + 1])
                raise ValueError(f"{where} is inconsistent: {prefix} is both a tensor and "
                                 f"the start of {name}")
        if last in node:
            raise ValueError(f"{where} is inconsistent: {name} is both a tensor and the "
                             f"start of other tensors' names")
        node[last] = value
    return root
