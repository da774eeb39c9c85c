"""JAX's default random-number hash, Threefry-2x32, in NumPy: keys and random bits made
on the host, bit for bit those of ``jax.random``, without compiling a program.

A first run compiles few programs (docs/benchmarks.md counts them), and the programs that
draw random numbers are among the slowest to compile (a ``jax.random.split`` alone: about
0.1 s, more than the splitting itself will ever take). ``seed_keys`` and the data sets
draw their keys and bits here instead, where JAX's default key implementation is in use
(``available()``; otherwise they call ``jax.random`` as before).

The hash is the 20-round Threefry-2x32 of Salmon et al. (2011) with JAX's key schedule;
``split`` and ``random_bits`` follow ``jax.random``'s partitionable scheme (the counter of
element ``i`` is the 64-bit ``i``, as two 32-bit halves), JAX's default. The tests check
every function against ``jax.random``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["available", "key_data", "random_bits", "seed", "split", "threefry2x32", "wrap"]

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def available() -> bool:
    """Whether ``jax.random`` uses what this module computes: the threefry2x32 key
    implementation with partitionable counters (JAX's defaults)."""
    return (jax.config.jax_default_prng_impl == "threefry2x32"
            and bool(jax.config.jax_threefry_partitionable))


def threefry2x32(key_data: np.ndarray, x0: np.ndarray, x1: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The hash of the counter pairs ``(x0, x1)`` (uint32 arrays of one shape) under
    ``key_data`` (uint32 ``(2,)``): two uint32 arrays of that shape."""
    k0, k1 = (np.uint32(word) for word in key_data)
    schedule = (k0, k1, k0 ^ k1 ^ _PARITY)
    with np.errstate(over="ignore"):  # uint32 arithmetic wraps around, as in XLA
        x = [np.asarray(x0, np.uint32) + k0, np.asarray(x1, np.uint32) + k1]
        for block in range(5):
            for rotation in _ROTATIONS[block % 2]:
                x[0] = x[0] + x[1]
                x[1] = (x[1] << np.uint32(rotation)) | (x[1] >> np.uint32(32 - rotation))
                x[1] = x[0] ^ x[1]
            x[0] = x[0] + schedule[(block + 1) % 3]
            x[1] = x[1] + schedule[(block + 2) % 3] + np.uint32(block + 1)
    return x[0], x[1]


def seed(value: int) -> np.ndarray:
    """The key data of ``jax.random.key(value)``, uint32 ``(2,)``, for a seed in
    ``[0, 2**31)`` (a seed that JAX reads the same way with and without x64)."""
    if not 0 <= value < 2**31:
        raise ValueError(f"seed must be in [0, 2**31) here; got {value}")
    return np.array([0, value], np.uint32)


def _counters(size: int) -> tuple[np.ndarray, np.ndarray]:
    """The 64-bit counters ``0 .. size - 1`` as (high, low) uint32 halves."""
    counters = np.arange(size, dtype=np.uint64)
    return (counters >> np.uint64(32)).astype(np.uint32), counters.astype(np.uint32)


def split(key_data: np.ndarray, num: int) -> np.ndarray:
    """The key data of ``jax.random.split(key, num)``: uint32 ``(num, 2)``."""
    bits0, bits1 = threefry2x32(key_data, *_counters(num))
    return np.stack([bits0, bits1], axis=1)


def random_bits(key_data: np.ndarray, shape: tuple, width: int) -> np.ndarray:
    """The bits ``jax.random.bits(key, shape, uint32 or uint64)`` draws: ``width`` 32 or
    64."""
    bits0, bits1 = threefry2x32(key_data, *_counters(int(np.prod(shape, dtype=np.int64))))
    if width == 32:
        return (bits0 ^ bits1).reshape(shape)
    if width == 64:
        wide = (bits0.astype(np.uint64) << np.uint64(32)) | bits1.astype(np.uint64)
        return wide.reshape(shape)
    raise ValueError(f"width must be 32 or 64; got {width}")


def key_data(key) -> np.ndarray:
    """A key's data as NumPy (uint32), for a typed key or a legacy uint32 one (a key being
    traced raises ``jax.errors.TracerArrayConversionError``)."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.asarray(key)


def wrap(key_data: np.ndarray) -> jax.Array:
    """A typed key (``jax.random.key``'s kind) of this key data: no program runs."""
    return jax.random.wrap_key_data(np.asarray(key_data, np.uint32))
