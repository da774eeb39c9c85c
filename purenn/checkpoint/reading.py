"""Reading a checkpoint safely: bounded reads of regular files, safetensors parsed
without unpickling, the purenn metadata checked, tensors matched against ``like`` and
turned back into JAX arrays."""

from __future__ import annotations

import errno
import json
import os
import pickletools
from typing import NamedTuple

import jax
import numpy as np
import safetensors

from purenn.checkpoint.layout import (
    DTYPES,
    FORMAT,
    FORMAT_METADATA,
    RESERVED,
    SUPPORTED,
    VERSION,
    show,
)
from purenn.checkpoint.paths import check_regular

__all__ = ["Tensor", "check_match", "parse", "read", "to_jax"]

_LIST_LIMIT = 10  # names listed per kind of difference in a mismatch message


class Tensor(NamedTuple):
    """One tensor read from a file: its data, and how to turn it back into a JAX array."""

    data: np.ndarray
    prng_impl: str | None  # the PRNG implementation when ``data`` is a typed key's data
    weak_type: bool


def read(path: str, where: str) -> bytes:
    """The bytes of the regular file at ``path``, after checking that its size is the one
    its header declares: ValueError for a truncated file, never an unbounded read."""
    flags = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
             | getattr(os, "O_CLOEXEC", 0))
    try:
        check_regular(os.stat(path).st_mode, path, where)  # before open, which could block
        fd = os.open(path, flags)  # O_NONBLOCK: a FIFO swapped in meanwhile cannot block
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, f"{where} does not exist", path) from None
    with open(fd, "rb", closefd=True) as file:
        opened = os.fstat(fd)
        check_regular(opened.st_mode, path, where)  # the file that was opened, finally
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


def _declared_data_size(header: bytes) -> int | None:
    """The bytes of tensor data that a safetensors header declares (the largest end
    offset), or None when the header is malformed: safetensors then says how."""
    try:
        entries = json.loads(header)
        ends = [entries[name]["data_offsets"][1] for name in entries if name != RESERVED]
    except Exception:  # any malformation; safetensors.deserialize then says which
        return None
    if not all(type(end) is int for end in ends):
        return None
    return max(ends, default=0)


def parse(data: bytes, where: str) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The tensors of a purenn checkpoint's bytes, and the metadata its saver gave
    (``save``'s ``metadata``: the header's metadata without ``FORMAT_METADATA``);
    ValueError for anything else."""
    try:
        raw = safetensors.deserialize(data)
    except Exception as err:  # safetensors raises SafetensorError; any failure means the same
        raise ValueError(f"{where} is not a valid safetensors file ({err}){_guess(data)}") \
            from err
    header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
    metadata = header.get(RESERVED) or {}
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
        dtype = DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{where}: tensor {show(name)} has dtype {info['dtype']}, which "
                             f"a purenn checkpoint never holds; supported: {SUPPORTED}")
        array = np.frombuffer(info["data"], dtype=dtype).reshape(info["shape"])
        tensors[name] = Tensor(array, prng_keys.get(name), name in weak)
    for name in [*prng_keys, *weak]:
        if name not in tensors:
            raise ValueError(f"{where} has corrupted purenn metadata: it names a tensor "
                             f"{show(name)} that the file does not hold")
    for name, tensor in tensors.items():
        if tensor.prng_impl is not None:
            _spec(tensor, name, where)  # raises ValueError for key data that cannot be a key
    own = {name: value for name, value in metadata.items() if name not in FORMAT_METADATA}
    if not all(isinstance(value, str) for value in own.values()):
        raise ValueError(f"{where} has corrupted metadata: its entries must be strings")
    return tensors, own


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


def _spec(tensor: Tensor, name: str, where: str):
    """The shape and dtype ``tensor`` has as a JAX array, without computing it."""
    if tensor.prng_impl is None:
        return jax.ShapeDtypeStruct(tensor.data.shape, tensor.data.dtype)
    try:
        return jax.eval_shape(
            lambda data: jax.random.wrap_key_data(data, impl=tensor.prng_impl),
            jax.ShapeDtypeStruct(tensor.data.shape, tensor.data.dtype))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: tensor {show(name)} is recorded as a "
                         f"{tensor.prng_impl!r} PRNG key but cannot be one: {err}") from None


def to_jax(tensor: Tensor, name: str, where: str, sharding=None) -> jax.Array:
    data = tensor.data
    if tensor.prng_impl is not None:  # placed after wrapping: its data has one more axis
        key = jax.random.wrap_key_data(jax.device_put(data), impl=tensor.prng_impl)
        return key if sharding is None else jax.device_put(key, sharding)
    canonical = jax.dtypes.canonicalize_dtype(data.dtype)
    if canonical != data.dtype:
        raise ValueError(f"{where}: tensor {show(name)} is {data.dtype}, which JAX "
                         f"would truncate to {canonical} because jax_enable_x64 is off; "
                         f"turn it on before loading: "
                         f"jax.config.update('jax_enable_x64', True)")
    # one transfer, onto the devices asked for (jnp.asarray compiles a copy per shape)
    value = jax.device_put(data, sharding)
    return _weakly_typed(value) if tensor.weak_type else value


def _weakly_typed(value: jax.Array) -> jax.Array:
    """``value`` marked weakly typed (as ``jnp.asarray(0.5)`` is), so that it promotes in
    arithmetic as the saved array did (e.g. a float64 learning rate times float32 grads)."""
    try:  # JAX has no public way to mark an array weakly typed
        from jax._src.lax.lax import _convert_element_type
    except ImportError:  # pragma: no cover - a JAX that moved it: same bits, strongly typed
        return value
    return _convert_element_type(value, weak_type=True)


def check_match(tensors: dict[str, Tensor], named_like, where: str) -> None:
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
            differences.append(f"{show(name)} has dtype {file_dtype} in the file, "
                               f"{like_dtype} in like")
        elif same_dtype and not same_shape:
            differences.append(f"{show(name)} has shape {file_shape} in the file, "
                               f"{like_shape} in like")
        elif not (same_shape and same_dtype):
            differences.append(f"{show(name)} has shape {file_shape} and dtype {file_dtype} "
                               f"in the file, shape {like_shape} and dtype {like_dtype} in "
                               f"like")
    like_names = {name for name, _ in named_like}
    unexpected = sorted(set(tensors) - like_names)
    if not (differences or missing or unexpected):
        return
    parts = _capped(differences)
    if missing:
        parts.append("missing in file: " + ", ".join(_capped([show(n) for n in missing])))
    if unexpected:
        parts.append("unexpected in file: "
                     + ", ".join(_capped([show(n) for n in unexpected])))
    hint = ""
    if not like_names & set(tensors):
        hint = (" (no name in common: was it saved with another top level, e.g. "
                "save(path, params) but loaded with like={'params': params}?)")
    raise ValueError(f"{where} does not match like: " + "; ".join(parts) + hint)


def _capped(items: list[str]) -> list[str]:
    if len(items) <= _LIST_LIMIT:
        return items
    return [*items[:_LIST_LIMIT], f"... and {len(items) - _LIST_LIMIT} more"]

