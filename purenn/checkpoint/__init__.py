"""Checkpoints: save and load pytrees of arrays as safetensors files, atomically and safely.

``save(path, tree)`` writes any pytree of arrays (params, optimizer state, a step counter,
a PRNG key) to one `safetensors <https://github.com/huggingface/safetensors>`_ file;
``load(path, like=None)`` reads it back, bit for bit; ``read(path)`` gives its tensors as
NumPy arrays and its metadata, converting nothing.

Format
------
A plain safetensors file, readable by any safetensors reader (``safetensors.numpy``,
``safetensors.torch``, ...): an 8-byte little-endian header length, a JSON header, then the
raw little-endian tensor bytes. Nothing is ever pickled, so loading a file cannot run code.

* **One tensor per leaf**, named by the leaf's key path (``jax.tree_util``'s
  ``tree_flatten_with_path``): the path's components joined with ``/``. A dict key is the
  key itself (``str(key)`` for a non-string key), a tuple or list index is the index, a
  ``NamedTuple`` field is the field name. So ``{"params": params, "opt_state": state}``
  holds ``params/0/weights``, ``params/0/biases``, ``opt_state/count``,
  ``opt_state/momentum/0/weights``, ... Within a component, ``~`` is written ``~0`` and
  ``/`` is written ``~1`` (as in a JSON Pointer, RFC 6901), so ``{"a/b": x}`` and
  ``{"a": {"b": y}}`` get different names, ``a~1b`` and ``a/b``. A tree that is a single
  array is stored under the empty name ``""``. Leaves that render to the same name (a dict
  with both ``0`` and ``"0"`` as keys) and the name ``__metadata__`` (reserved by
  safetensors) are refused, so names are always one-to-one with leaves.
* **dtypes** are stored natively and restored exactly: bool, int8/16/32/64,
  uint8/16/32/64, float16, bfloat16, float32, float64 (bfloat16 as safetensors' ``BF16``).
  Scalars are tensors of shape ``()``.
* **Typed PRNG keys** (``jax.random.key(0)``, dtype ``key<fry>``) are stored as their
  ``jax.random.key_data`` (uint32) and restored with ``jax.random.wrap_key_data``; legacy
  uint32 keys are ordinary uint32 arrays.
* **Metadata** (the header's ``__metadata__``, strings only)::

      format      "purenn.checkpoint"
      version     "1"
      prng_keys   JSON object, tensor name -> PRNG implementation, e.g.
                  {"key": "threefry2x32"}
      weak_type   JSON list of the tensors that were weakly typed (``jnp.asarray(0.5)``)

  plus the entries given as ``save(..., metadata={...})`` (``pn.fit`` keeps a run's
  settings there), which ``read`` returns.

  ``load`` refuses a safetensors file without ``format == "purenn.checkpoint"`` (read such
  files with ``safetensors.numpy.load_file``) and any version other than ``"1"``.

Structure
---------
The file keeps the names, not the container types. ``load(path, like=tree)`` rebuilds
``tree``'s exact structure (tuples, dicts, ``NamedTuple`` optimizer states, ``None``
fields, empty ``()`` entries) after checking every name, shape and dtype against it; pass
freshly initialised params/state, or ``jax.ShapeDtypeStruct`` objects from ``jax.eval_shape``.
Without ``like`` you get nested dicts keyed by the path components, as strings:
``params[0]["weights"]`` comes back as ``loaded["params"]["0"]["weights"]``, and subtrees
without leaves (``None``, ``()``) are absent.

Files
-----
Writes are atomic: ``save`` writes through ``purenn.files.atomic_write`` (a temporary file
next to the target, flushed to disk, then renamed over it), so a crash or a kill leaves
either the previous checkpoint or the new one, never a mixture; ``purenn.files`` describes
the temporary files and how stale ones are removed. The same tree always gives the same
bytes (the header's keys are sorted), so checkpoints can be compared and hashed. Saving
through a symbolic link writes the file it points to and keeps the link; saving over an
existing file keeps its permission bits.

``load`` reads regular files only (never a FIFO, a device or a folder), and checks the
file's size against the sizes its header declares before reading the tensor data, so a
truncated file is reported as truncated and reading is bounded by the file's size.

Modules: ``layout`` (the constants, dtypes and tensor names), ``paths`` (the path
arguments and file kinds), ``reading`` (bytes to checked tensors to arrays).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import safetensors.numpy

from purenn import files
from purenn.checkpoint import reading
from purenn.checkpoint.layout import (
    DTYPES,
    FORMAT,
    FORMAT_METADATA,
    SUPPORTED,
    VERSION,
    named_leaves,
    nest,
    show,
)
from purenn.checkpoint.paths import check_path, save_target

__all__ = ["Contents", "load", "read", "save"]


# --- save ------------------------------------------------------------------------------


def save(path: str | os.PathLike, tree, *, metadata: Mapping[str, str] | None = None) -> None:
    """Write the pytree of arrays ``tree`` to ``path`` as a safetensors file, atomically.

    The file gets one tensor per leaf, named by its key path (``params/0/weights``; see the
    module docstring for the format). The write goes to a temporary file in the same
    folder, is flushed to disk, then renamed over ``path``: after a crash or a kill at any
    moment, ``path`` holds the previous checkpoint or the new one, complete. If ``save``
    raises, the previous checkpoint is untouched and no temporary file is left.

    Args:
      path: the file to write (str or os.PathLike), conventionally ``*.safetensors``; its
        folder must exist. An existing file is replaced, keeping its permission bits; a
        symbolic link is kept, and the file it points to replaced.
      tree: a pytree (dicts, tuples, lists, NamedTuples, None) whose leaves are arrays:
        ``jax.Array`` (typed PRNG keys included) or ``numpy.ndarray`` of dtype bool,
        int8-64, uint8-64, float16, bfloat16, float32 or float64.
      metadata: more entries for the header's metadata, name -> string (``read`` gives
        them back); the format's own names (``format``, ``version``, ``prng_keys``,
        ``weak_type``) are refused.

    Raises:
      TypeError: a leaf is not an array (its key path is named), or has another dtype; a
        metadata entry is not a string.
      ValueError: the tree has no arrays, two leaves would get the same name, ``path`` is
        empty, or it is something other than a file (a FIFO, a device).
      FileNotFoundError: the folder of ``path`` does not exist.
      IsADirectoryError: ``path`` is a folder.

    Example::

      params = model.init(jax.random.key(0))
      pn.checkpoint.save("run.safetensors", {"params": params, "opt_state": opt_state,
                                             "step": jnp.int32(7), "key": key})
    """
    path = check_path(path, "checkpoint.save")
    target, mode = save_target(path)
    named = named_leaves(tree, "checkpoint.save")
    if not named:
        raise ValueError(f"checkpoint.save: nothing to save: the tree has no arrays (got "
                         f"{type(tree).__name__} {jax.tree_util.tree_structure(tree)})")
    tensors, prng_keys, weak = {}, {}, []
    for name, leaf in named:
        tensors[name], prng_impl, weak_type = _host_array(name, leaf)
        if prng_impl is not None:
            prng_keys[name] = prng_impl
        if weak_type:
            weak.append(name)
    metadata = {**_check_metadata(metadata), "format": FORMAT, "version": VERSION,
                "prng_keys": json.dumps(prng_keys, sort_keys=True),
                "weak_type": json.dumps(sorted(weak))}
    # Serialized in memory, then written through our own descriptor so that the fsync
    # covers exactly the bytes that os.replace publishes (save_file may use its own file).
    header, body = _serialize(tensors, metadata)
    files.atomic_write(target, (header, body), mode=mode, what="checkpoint.save")


def _check_metadata(metadata) -> dict[str, str]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise TypeError(f"checkpoint.save: metadata must be a dict of strings; got "
                        f"{type(metadata).__name__}")
    for name, value in metadata.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(f"checkpoint.save: metadata must map strings to strings; got "
                            f"{name!r}: {type(value).__name__}")
        if name in FORMAT_METADATA:
            raise ValueError(f"checkpoint.save: the metadata name {name!r} is the format's "
                             f"own; choose another")
    return dict(metadata)


def _host_array(name: str, leaf) -> tuple[np.ndarray, str | None, bool]:
    """A leaf as (a contiguous NumPy array to store, its PRNG impl or None, its weak_type)."""
    if isinstance(leaf, jax.core.Tracer):
        raise TypeError(f"checkpoint.save: the leaf at {show(name)} is a traced value; "
                        f"save outside jax.jit (return the tree from the jitted function)")
    if not isinstance(leaf, (jax.Array, np.ndarray, np.generic)):
        hint = (f"; wrap numbers in arrays, e.g. jnp.asarray({leaf!r})"
                if isinstance(leaf, (bool, int, float)) else "")
        raise TypeError(f"checkpoint.save: the leaf at {show(name)} is a "
                        f"{type(leaf).__name__}, not an array; a checkpoint holds only "
                        f"arrays (jax.Array or numpy.ndarray){hint}")
    prng_impl = None
    if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        prng_impl = _prng_impl_name(leaf)
        leaf = jax.random.key_data(leaf)
    data = np.asarray(leaf)
    stored = data.dtype.newbyteorder("<")  # safetensors is little-endian
    if stored not in DTYPES.values():
        raise TypeError(f"checkpoint.save: the leaf at {show(name)} has dtype {data.dtype}, "
                        f"which a checkpoint cannot hold; supported: {SUPPORTED}")
    data = data.astype(stored, order="C", copy=False)  # a no-op for the usual arrays
    return data, prng_impl, bool(getattr(leaf, "weak_type", False))


def _prng_impl_name(key: jax.Array) -> str:
    impl = jax.random.key_impl(key)
    if isinstance(impl, str):
        return impl
    # Older JAX returns a PRNGSpec wrapping a PRNGImpl, which carries the name.
    return getattr(getattr(impl, "_impl", impl), "name", str(impl))


def _serialize(tensors: dict[str, np.ndarray],
               metadata: dict[str, str]) -> tuple[bytes, memoryview]:
    """The file's bytes as (8-byte header length + header, tensor data), in safetensors'
    layout but with the JSON header's keys sorted: safetensors writes the metadata in
    hash-map order, which changes from run to run, and checkpoints must be reproducible."""
    data = safetensors.numpy.save(tensors, metadata=metadata)
    length = int.from_bytes(data[:8], "little")
    header = json.dumps(json.loads(data[8:8 + length]), sort_keys=True,
                        separators=(",", ":"), ensure_ascii=False).encode()
    header += b" " * (-len(header) % 8)  # padded, as safetensors does: the data stays aligned
    return len(header).to_bytes(8, "little") + header, memoryview(data)[8 + length:]


# --- load ------------------------------------------------------------------------------


def load(path: str | os.PathLike, like=None):
    """Read a checkpoint written by :func:`save`.

    With ``like``, the result has ``like``'s exact structure (tuples, dicts, NamedTuples,
    ``None`` fields), and every name, shape and dtype in the file is checked against it
    first. Without ``like``, the result is nested dicts keyed by the path components, as
    strings (``loaded["params"]["0"]["weights"]``): NamedTuples and tuples need ``like``.
    Leaves come back as ``jax.Array`` objects, bit-identical to what was saved, typed PRNG keys
    and weak types included; with ``like``, on the devices (sharding) of ``like``'s arrays.

    Loading never unpickles: a file that is not a purenn safetensors checkpoint is refused.

    Args:
      path: the checkpoint file (str or os.PathLike).
      like: optional; a pytree of arrays or ``jax.ShapeDtypeStruct`` objects with the structure,
        shapes and dtypes to restore, e.g. freshly initialised params and optimizer state,
        or ``jax.eval_shape`` of the functions that make them.

    Raises:
      FileNotFoundError: there is no file at ``path``.
      IsADirectoryError: ``path`` is a folder.
      ValueError: ``path`` is not a regular file (a FIFO, a device), the file is not a
        valid safetensors file (empty, truncated, a pickle, ...), is not a purenn
        checkpoint, has an unsupported version, or does not match ``like`` (the message
        lists each differing name, shape and dtype).
      TypeError: a leaf of ``like`` is not an array or ``jax.ShapeDtypeStruct``.

    Example::

      like = {"params": model.init(k_init), "opt_state": opt.init(params)}
      restored = pn.checkpoint.load("run.safetensors", like=like)
      restored["opt_state"].count   # a NamedTuple again, as opt.init made it

      pn.checkpoint.load("run.safetensors")["params"]["0"]["weights"]   # without like
    """
    path = check_path(path, "checkpoint.load")
    where = f"checkpoint {path!r}"
    tensors, _ = reading.parse(reading.read(path, where), where)

    if like is None:
        return nest({name: reading.to_jax(tensor, name, where) for name, tensor in
                     sorted(tensors.items())}, where)

    named_like = named_leaves(like, "checkpoint.load: like")
    for name, leaf in named_like:
        if not isinstance(leaf, (jax.Array, np.ndarray, np.generic, jax.ShapeDtypeStruct)):
            raise TypeError(f"checkpoint.load: the leaf of like at {show(name)} is a "
                            f"{type(leaf).__name__}; like must hold arrays or "
                            f"jax.ShapeDtypeStruct (e.g. freshly initialised params)")
    reading.check_match(tensors, named_like, where)
    leaves = []
    for name, leaf in named_like:
        sharding = getattr(leaf, "sharding", None)
        if isinstance(leaf, jax.core.Tracer):
            sharding = None
        tensor = tensors[name]._replace(weak_type=bool(getattr(leaf, "weak_type", False)))
        leaves.append(reading.to_jax(tensor, name, where, sharding))
    return jax.tree_util.tree_structure(like).unflatten(leaves)


# --- read ------------------------------------------------------------------------------


class Contents(NamedTuple):
    """A checkpoint as ``read`` gives it."""

    arrays: dict[str, np.ndarray]  # tensor name -> array; a typed PRNG key as its key data
    metadata: dict[str, str]  # the entries given as save(..., metadata=...)


def read(path: str | os.PathLike) -> Contents:
    """A checkpoint's tensors as NumPy arrays by name (``params/0/weights``), and the
    metadata it was saved with, turning nothing into JAX arrays: a float64 checkpoint reads
    with ``jax_enable_x64`` off, and nothing is placed on a device. The file is checked as
    ``load`` checks it.

    Raises:
      FileNotFoundError, IsADirectoryError, ValueError: as ``load``.

    Example::

      pn.checkpoint.read("run.safetensors").arrays["epoch"]   # array(3001, dtype=int32)
    """
    path = check_path(path, "checkpoint.read")
    where = f"checkpoint {path!r}"
    tensors, metadata = reading.parse(reading.read(path, where), where)
    return Contents({name: tensor.data for name, tensor in sorted(tensors.items())}, metadata)
