"""Checkpoints: save and load pytrees of arrays as safetensors files, atomically and safely.

``save(path, tree)`` writes any pytree of arrays (params, optimizer state, a step counter,
a PRNG key) to one `safetensors <https://github.com/huggingface/safetensors>`_ file;
``load(path, like=None)`` reads it back, bit for bit.

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
Writes are atomic: ``save`` writes a temporary file next to the target, flushes it to disk
(``fsync``), then renames it over the target (``os.replace``), so a crash or a kill leaves
either the previous checkpoint or the new one, never a mixture. The same tree always gives
the same bytes (the header's keys are sorted), so checkpoints can be compared and hashed.
Saving through a symbolic link writes the file it points to and keeps the link; saving
over an existing file keeps its permission bits.

The temporary file is ``.<name>.<pid>.<host>.<random>.tmp``: the writer's process id, a
hash of its machine's name, and random hex (a name too long for the file system is
shortened and given a hash of the full name). A killed ``save`` leaves its temporary file
behind; the next ``save`` to the same file, on the same machine, deletes those whose
process no longer exists.

``load`` reads regular files only (never a FIFO, a device or a folder), and checks the
file's size against the sizes its header declares before reading the tensor data, so a
truncated file is reported as truncated and reading is bounded by the file's size.
"""

from __future__ import annotations

import errno
import json
import os
import pickletools
import stat
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import safetensors
import safetensors.numpy
from jax.tree_util import DictKey, FlattenedIndexKey, GetAttrKey, SequenceKey

from purenn import files

__all__ = ["load", "save"]

FORMAT = "purenn.checkpoint"
VERSION = "1"

# safetensors dtype codes and the NumPy dtypes they hold (little-endian, as the format is).
_DTYPES = {
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
_SUPPORTED = ", ".join(str(dtype) for dtype in _DTYPES.values())
_RESERVED = "__metadata__"  # the safetensors header's metadata entry
_LIST_LIMIT = 10  # names listed per kind of difference in a mismatch message


class _Tensor(NamedTuple):
    """One tensor read from a file: its data, and how to turn it back into a JAX array."""

    data: np.ndarray
    prng_impl: str | None  # the PRNG implementation when ``data`` is a typed key's data
    weak_type: bool


# --- names -----------------------------------------------------------------------------


def _escape(component: str) -> str:
    return component.replace("~", "~0").replace("/", "~1")


def _unescape(component: str) -> str:
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
    return "/".join(_component(key) for key in key_path)


def _show(name: str) -> str:
    return name if name else "<root>"


def _named_leaves(tree, what: str) -> list[tuple[str, Any]]:
    """``tree``'s leaves with their names, in ``tree_flatten`` order; names checked unique."""
    named = [(_name(key_path), leaf)
             for key_path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]]
    seen = set()
    for name, _ in named:
        if name == _RESERVED:
            raise ValueError(f"{what}: the name {_RESERVED!r} is reserved by the safetensors "
                             f"format; rename that dict key")
        if name in seen:
            raise ValueError(f"{what}: two leaves have the name {_show(name)!r} (a dict "
                             f"with both an int key and the same key as a string?); use "
                             f"distinct string keys")
        seen.add(name)
    return named


# --- arguments -------------------------------------------------------------------------


def _check_path(path, what: str) -> str:
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"{what}: path must be a str or os.PathLike (e.g. "
                        f"'run.safetensors' or pathlib.Path); got {type(path).__name__}")
    path = os.fsdecode(os.fspath(path))
    if not path:
        raise ValueError(f"{what}: the path is empty; give a file name, e.g. "
                         f"'run.safetensors'")
    return path


_KINDS = [(stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket")]


def _kind(mode: int) -> str:
    """What a file of ``st_mode`` ``mode`` is, in words: "a regular file", "a FIFO", ..."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((kind for test, kind in _KINDS if test(mode)), "not a regular file")


def _via(path: str) -> str:
    """`` (a link to '...')`` when ``path`` leads through symbolic links, for messages."""
    real = os.path.realpath(path)
    return f" (a link to {real!r})" if real != os.path.abspath(path) else ""


def _host_array(name: str, leaf) -> tuple[np.ndarray, str | None, bool]:
    """A leaf as (a contiguous NumPy array to store, its PRNG impl or None, its weak_type)."""
    if isinstance(leaf, jax.core.Tracer):
        raise TypeError(f"checkpoint.save: the leaf at {_show(name)} is a traced value; "
                        f"save outside jax.jit (return the tree from the jitted function)")
    if not isinstance(leaf, (jax.Array, np.ndarray, np.generic)):
        hint = (f"; wrap numbers in arrays, e.g. jnp.asarray({leaf!r})"
                if isinstance(leaf, (bool, int, float)) else "")
        raise TypeError(f"checkpoint.save: the leaf at {_show(name)} is a "
                        f"{type(leaf).__name__}, not an array; a checkpoint holds only "
                        f"arrays (jax.Array or numpy.ndarray){hint}")
    prng_impl = None
    if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        prng_impl = _prng_impl_name(leaf)
        leaf = jax.random.key_data(leaf)
    data = np.asarray(leaf)
    stored = data.dtype.newbyteorder("<")  # safetensors is little-endian
    if stored not in _DTYPES.values():
        raise TypeError(f"checkpoint.save: the leaf at {_show(name)} has dtype {data.dtype}, "
                        f"which a checkpoint cannot hold; supported: {_SUPPORTED}")
    data = data.astype(stored, order="C", copy=False)  # a no-op for the usual arrays
    return data, prng_impl, bool(getattr(leaf, "weak_type", False))


def _prng_impl_name(key: jax.Array) -> str:
    impl = jax.random.key_impl(key)
    if isinstance(impl, str):
        return impl
    # Older JAX returns a PRNGSpec wrapping a PRNGImpl, which carries the name.
    return getattr(getattr(impl, "_impl", impl), "name", str(impl))


# --- save ------------------------------------------------------------------------------


def save(path: str | os.PathLike, tree) -> None:
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

    Raises:
      TypeError: a leaf is not an array (its key path is named), or has another dtype.
      ValueError: the tree has no arrays, two leaves would get the same name, ``path`` is
        empty, or it is something other than a file (a FIFO, a device).
      FileNotFoundError: the folder of ``path`` does not exist.
      IsADirectoryError: ``path`` is a folder.

    Example::

      params = model.init(jax.random.key(0))
      pn.checkpoint.save("run.safetensors", {"params": params, "opt_state": opt_state,
                                             "step": jnp.int32(7), "key": key})
    """
    path = _check_path(path, "checkpoint.save")
    target, mode = _save_target(path)
    named = _named_leaves(tree, "checkpoint.save")
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
    metadata = {"format": FORMAT, "version": VERSION,
                "prng_keys": json.dumps(prng_keys, sort_keys=True),
                "weak_type": json.dumps(sorted(weak))}
    # Serialized in memory, then written through our own descriptor so that the fsync
    # covers exactly the bytes that os.replace publishes (save_file may use its own file).
    header, body = _serialize(tensors, metadata)

    files.atomic_write(target, (header, body), mode=mode, what="checkpoint.save")


def _save_target(path: str) -> tuple[str, int | None]:
    """The file that ``save(path, ...)`` writes: ``path`` with symbolic links resolved, so
    that a link is kept and the file it points to replaced; and that file's permission bits,
    or None for a new file. Refuses, before any work, what save could not write."""
    if path.endswith((os.sep, os.altsep or os.sep)):
        raise ValueError(f"checkpoint.save: {path!r} ends with a path separator; give a file "
                         f"name, e.g. {os.path.join(path, 'run.safetensors')!r}")
    target = os.path.realpath(path)
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        if os.path.exists(folder):
            raise NotADirectoryError(errno.ENOTDIR, f"checkpoint.save: cannot write "
                                     f"{path!r}: {folder!r} is not a folder", folder)
        raise FileNotFoundError(errno.ENOENT, f"checkpoint.save: cannot write {path!r}: the "
                                f"folder {folder!r} does not exist; create it first with "
                                f"os.makedirs({folder!r})", folder)
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target, None
    kind = _kind(mode)
    if kind == "a folder":
        raise IsADirectoryError(errno.EISDIR, f"checkpoint.save: {path!r}{_via(path)} is a "
                                f"folder; give a file name, e.g. "
                                f"{os.path.join(path, 'run.safetensors')!r}", path)
    if kind != "a regular file":
        raise ValueError(f"checkpoint.save: {path!r}{_via(path)} is {kind}, not a regular "
                         f"file; save replaces only files")
    return target, stat.S_IMODE(mode) & 0o777


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
    path = _check_path(path, "checkpoint.load")
    where = f"checkpoint {path!r}"
    tensors = _parse(_read(path, where), where)

    if like is None:
        return _nest({name: _to_jax(tensor, name, where) for name, tensor in
                      sorted(tensors.items())}, where)

    named_like = _named_leaves(like, "checkpoint.load: like")
    for name, leaf in named_like:
        if not isinstance(leaf, (jax.Array, np.ndarray, np.generic, jax.ShapeDtypeStruct)):
            raise TypeError(f"checkpoint.load: the leaf of like at {_show(name)} is a "
                            f"{type(leaf).__name__}; like must hold arrays or "
                            f"jax.ShapeDtypeStruct (e.g. freshly initialised params)")
    _check_match(tensors, named_like, where)
    leaves = []
    for name, leaf in named_like:
        sharding = getattr(leaf, "sharding", None)
        if isinstance(leaf, jax.core.Tracer):
            sharding = None
        tensor = tensors[name]._replace(weak_type=bool(getattr(leaf, "weak_type", False)))
        leaves.append(_to_jax(tensor, name, where, sharding))
    return jax.tree_util.tree_structure(like).unflatten(leaves)


def _read(path: str, where: str) -> bytes:
    """The bytes of the regular file at ``path``, after checking that its size is the one
    its header declares: ValueError for a truncated file, never an unbounded read."""
    flags = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
             | getattr(os, "O_CLOEXEC", 0))
    try:
        _check_regular(os.stat(path).st_mode, path, where)  # before open, which could block
        fd = os.open(path, flags)  # O_NONBLOCK: a FIFO swapped in meanwhile cannot block
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, f"{where} does not exist", path) from None
    with open(fd, "rb", closefd=True) as file:
        opened = os.fstat(fd)
        _check_regular(opened.st_mode, path, where)  # the file that was opened, finally
        size = opened.st_size
        if size == 0:
            raise ValueError(f"{where} is empty (0 bytes), not a safetensors file; was its "
                             f"writing interrupted?")
        start = file.read(16)
        if size < 8:
            raise ValueError(f"{where} is not a valid safetensors file: it has {size} bytes, "
                             f"fewer than the 8 of its header length{_guess(start)}")
        length = int.from_bytes(start[:8], "little")
        if length > size - 8:
            raise ValueError(f"{where} is not a valid safetensors file: its header length "
                             f"says {length} bytes, but {size - 8} follow{_guess(start)}")
        file.seek(8)
        data_size = _declared_data_size(file.read(length))
        if data_size is not None and 8 + length + data_size > size:
            raise ValueError(f"{where} is not a valid safetensors file: it is truncated (its "
                             f"header declares {8 + length + data_size} bytes, the file has "
                             f"{size})")
        file.seek(0)
        return file.read(size)


def _check_regular(mode: int, path: str, where: str) -> None:
    """Refuse anything but a regular file: a folder, a FIFO, a device, a socket."""
    kind = _kind(mode)
    if kind == "a folder":
        raise IsADirectoryError(errno.EISDIR, f"{where}{_via(path)} is a folder; pass the "
                                f".safetensors file", path)
    if kind != "a regular file":
        raise ValueError(f"{where}{_via(path)} is {kind}, not a regular file; load reads "
                         f"checkpoint files, as save writes them")


def _declared_data_size(header: bytes) -> int | None:
    """The bytes of tensor data that a safetensors header declares (the largest end
    offset), or None when the header is malformed: safetensors then says how."""
    try:
        entries = json.loads(header)
        ends = [entries[name]["data_offsets"][1] for name in entries if name != _RESERVED]
    except Exception:  # any malformation; safetensors.deserialize then says which
        return None
    if not all(type(end) is int for end in ends):
        return None
    return max(ends, default=0)


def _parse(data: bytes, where: str) -> dict[str, _Tensor]:
    """The tensors of a purenn checkpoint's bytes; ValueError for anything else."""
    try:
        raw = safetensors.deserialize(data)
    except Exception as err:  # safetensors raises SafetensorError; any failure means the same
        raise ValueError(f"{where} is not a valid safetensors file ({err}){_guess(data)}") \
            from err
    header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
    metadata = header.get(_RESERVED) or {}
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        found = json.dumps(metadata)
        found = found if len(found) <= 200 else found[:200] + "..."
        raise ValueError(f"{where} is a safetensors file but not a purenn checkpoint: its "
                         f"metadata lacks format={FORMAT!r} (found {found}); read it with "
                         f"safetensors.numpy.load_file instead")
    if metadata.get("version") != VERSION:
        raise ValueError(f"{where} is a purenn checkpoint of format version "
                         f"{metadata.get('version')!r}, which this purenn cannot read: it "
                         f"reads version {VERSION!r}. Was it written by a newer purenn?")
    try:
        prng_keys = json.loads(metadata.get("prng_keys", "{}"))
        weak = json.loads(metadata.get("weak_type", "[]"))
        if not (isinstance(prng_keys, dict) and isinstance(weak, list)
                and all(isinstance(v, str) for v in [*prng_keys.values(), *weak])):
            raise ValueError("wrong JSON types")
    except ValueError as err:
        raise ValueError(f"{where} has corrupted purenn metadata ({err})") from None

    tensors = {}
    for name, info in raw:
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{where}: tensor {_show(name)} has dtype {info['dtype']}, which "
                             f"a purenn checkpoint never holds; supported: {_SUPPORTED}")
        array = np.frombuffer(info["data"], dtype=dtype).reshape(info["shape"])
        tensors[name] = _Tensor(array, prng_keys.get(name), name in weak)
    for name in [*prng_keys, *weak]:
        if name not in tensors:
            raise ValueError(f"{where} has corrupted purenn metadata: it names a tensor "
                             f"{_show(name)} that the file does not hold")
    for name, tensor in tensors.items():
        if tensor.prng_impl is not None:
            _spec(tensor, name, where)  # raises ValueError for key data that cannot be a key
    return tensors


_PICKLE_OPCODES = {opcode.code.encode("latin-1") for opcode in pickletools.opcodes}


def _guess(data: bytes) -> str:
    """What a file that is not safetensors probably is, from its first bytes (at least 9
    where the file has them), for the error message."""
    if data[8:9] == b"{":  # a header length, then a JSON object: a safetensors file
        return "; it starts like one, so it is truncated or corrupted"
    if data.startswith(b"PK\x03\x04"):
        return ("; it is a zip archive, such as a torch.save file, and purenn never "
                "unpickles")
    # Protocol 2+ pickles start with PROTO, a protocol number, then an opcode; a header
    # length can start with the same two bytes (0x380 = 896), but not the third.
    if data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05") \
            and data[2:3] in _PICKLE_OPCODES:
        return "; it looks like a pickle, and purenn never unpickles (that can run code)"
    if data.startswith(b"\x93NUMPY"):
        return "; it is a NumPy .npy file"
    return "; it is truncated, or not a checkpoint"


def _spec(tensor: _Tensor, name: str, where: str):
    """The shape and dtype ``tensor`` has as a JAX array, without computing it."""
    if tensor.prng_impl is None:
        return jax.ShapeDtypeStruct(tensor.data.shape, tensor.data.dtype)
    try:
        return jax.eval_shape(
            lambda data: jax.random.wrap_key_data(data, impl=tensor.prng_impl),
            jax.ShapeDtypeStruct(tensor.data.shape, tensor.data.dtype))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: tensor {_show(name)} is recorded as a "
                         f"{tensor.prng_impl!r} PRNG key but cannot be one: {err}") from None


def _to_jax(tensor: _Tensor, name: str, where: str, sharding=None) -> jax.Array:
    data = tensor.data
    if tensor.prng_impl is not None:
        value = jax.random.wrap_key_data(jnp.asarray(data), impl=tensor.prng_impl)
    else:
        canonical = jax.dtypes.canonicalize_dtype(data.dtype)
        if canonical != data.dtype:
            raise ValueError(f"{where}: tensor {_show(name)} is {data.dtype}, which JAX "
                             f"would truncate to {canonical} because jax_enable_x64 is off; "
                             f"turn it on before loading: "
                             f"jax.config.update('jax_enable_x64', True)")
        value = jnp.asarray(data)
        if tensor.weak_type:
            value = _weakly_typed(value)
    return value if sharding is None else jax.device_put(value, sharding)


def _weakly_typed(value: jax.Array) -> jax.Array:
    """``value`` marked weakly typed (as ``jnp.asarray(0.5)`` is), so that it promotes in
    arithmetic as the saved array did (e.g. a float64 learning rate times float32 grads)."""
    try:  # JAX has no public way to mark an array weakly typed
        from jax._src.lax.lax import _convert_element_type
    except ImportError:  # pragma: no cover - a JAX that moved it: same bits, strongly typed
        return value
    return _convert_element_type(value, weak_type=True)


def _check_match(tensors: dict[str, _Tensor], named_like, where: str) -> None:
    """Raise ValueError listing every name, shape and dtype that differs from ``like``."""
    differences, missing = [], []
    for name, leaf in named_like:
        if name not in tensors:
            missing.append(name)
            continue
        spec = _spec(tensors[name], name, where)
        file_shape, like_shape = tuple(spec.shape), tuple(leaf.shape)
        file_dtype, like_dtype = spec.dtype, leaf.dtype
        same_shape, same_dtype = file_shape == like_shape, file_dtype == like_dtype
        if same_shape and not same_dtype:
            differences.append(f"{_show(name)} has dtype {file_dtype} in the file, "
                               f"{like_dtype} in like")
        elif same_dtype and not same_shape:
            differences.append(f"{_show(name)} has shape {file_shape} in the file, "
                               f"{like_shape} in like")
        elif not (same_shape and same_dtype):
            differences.append(f"{_show(name)} has shape {file_shape} and dtype {file_dtype} "
                               f"in the file, shape {like_shape} and dtype {like_dtype} in "
                               f"like")
    like_names = {name for name, _ in named_like}
    unexpected = sorted(set(tensors) - like_names)
    if not (differences or missing or unexpected):
        return
    parts = _capped(differences)
    if missing:
        parts.append("missing in file: " + ", ".join(_capped([_show(n) for n in missing])))
    if unexpected:
        parts.append("unexpected in file: "
                     + ", ".join(_capped([_show(n) for n in unexpected])))
    hint = ""
    if not like_names & set(tensors):
        hint = (" (no name in common: was it saved with another top level, e.g. "
                "save(path, params) but loaded with like={'params': params}?)")
    raise ValueError(f"{where} does not match like: " + "; ".join(parts) + hint)


def _capped(items: list[str]) -> list[str]:
    if len(items) <= _LIST_LIMIT:
        return items
    return [*items[:_LIST_LIMIT], f"... and {len(items) - _LIST_LIMIT} more"]


def _nest(leaves: dict[str, jax.Array], where: str):
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
