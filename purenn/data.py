"""The book's toy data sets, drawn from explicit ``jax.random`` keys; and your own data
files (``load``, ``split``, ``standardize``, ``Dataset``: ``purenn.datafiles``).

Each returns ``(X, y)``: ``X`` of the default float dtype (float32, or float64 under
``jax_enable_x64``), ``y`` int32 class labels (or float targets for ``sine``).

Drawing a data set compiles two programs per shape and dtype: the noise, drawn and scaled
(behind an optimization barrier, so XLA does not fold the scale into the draw's own
scaling), and the rest, in which no product feeds a sum (XLA would fuse the two into one
rounding). The rest takes the noise as an argument: computed in one program with the
draw, its last bits would differ (XLA evaluates its constant part another way). So the
values are bit for bit those of the same operations run one by one. The draw's random
bits come from the host (``purenn.threefry``, the same bits), so neither program has to
compile JAX's random-number hash.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from purenn import threefry
from purenn._checks import check_key, check_positive_int
from purenn.datafiles import Dataset, load, split, standardize
from purenn.partition import jit_program

__all__ = ["Dataset", "load", "sine", "spiral", "split", "standardize", "vertical"]


def _float():
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def _noise(key, scale: float, shape: tuple, dtype) -> jax.Array:
    """``scale * jax.random.normal(key, shape, dtype)``, bit for bit the draw, then the
    product, each run on its own. Where JAX's default keys are in use the random bits are
    drawn on the host (``purenn.threefry``) and only the rest is compiled: JAX's
    random-number hash takes longer to compile (0.2-0.4 s) than to run."""
    if threefry.available() and not isinstance(key, jax.core.Tracer):
        try:
            data = threefry.key_data(key)
        except jax.errors.TracerArrayConversionError:  # a key closed over inside a trace
            return _drawn_noise(key, scale, shape, dtype)
        bits = threefry.random_bits(data, shape, np.dtype(dtype).itemsize * 8)
        return _scaled_normal(bits, scale, dtype)
    return _drawn_noise(key, scale, shape, dtype)


@jit_program(static_argnums=(1, 2, 3))
def _drawn_noise(key, scale: float, shape: tuple, dtype) -> jax.Array:
    return scale * lax.optimization_barrier(jax.random.normal(key, shape, dtype))


@jit_program(static_argnums=(1, 2))
def _scaled_normal(bits, scale: float, dtype) -> jax.Array:
    """``scale * normal`` from the random ``bits`` (uint32 or uint64 as ``dtype``'s
    width) as ``jax.random.normal`` makes them: the mantissa of a uniform in
    ``[nextafter(-1, 0), 1)``, then ``sqrt(2) * erf_inv``."""
    info = jnp.finfo(dtype)
    uint = bits.dtype
    mantissa = lax.shift_right_logical(bits, jnp.array(info.bits - info.nmant, uint))
    one = jnp.asarray(np.array(1.0, dtype).view(uint), dtype=uint)
    floats = lax.bitcast_convert_type(lax.bitwise_or(mantissa, one), dtype) - jnp.array(1.0,
                                                                                     dtype)
    low = lax.convert_element_type(np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype)),
                                   dtype)
    high = lax.convert_element_type(np.array(1.0, dtype), dtype)
    uniform = lax.max(low, floats * (high - low) + low)
    normal = lax.mul(np.array(np.sqrt(2), dtype), lax.erf_inv(uniform))
    return scale * lax.optimization_barrier(normal)


def _labels(samples: int, classes: int) -> jax.Array:
    return jnp.repeat(jnp.arange(classes, dtype=jnp.int32), samples)


def spiral(key: jax.Array, samples: int, classes: int) -> tuple[jax.Array, jax.Array]:
    """``classes`` interleaved spiral arms of ``samples`` points each.

    For class ``c``: ``r = linspace(0, 1, samples)``, ``t = linspace(4c, 4(c + 1), samples)
    + 0.2 * normal``, points ``(r sin(2.5 t), r cos(2.5 t))``.

    Returns:
      ``X`` of shape ``(samples * classes, 2)`` and ``y`` of shape ``(samples * classes,)``,
      class by class.
    """
    key = check_key("key", key)
    samples = check_positive_int("samples", samples)
    classes = check_positive_int("classes", classes)
    dtype = _float()
    noise = _noise(key, 0.2, (samples * classes,), dtype)
    return _spiral(noise, samples, classes)


@jit_program(static_argnums=(1, 2))
def _spiral(noise, samples, classes):
    dtype = noise.dtype
    radius = jnp.tile(jnp.linspace(0.0, 1.0, samples, dtype=dtype), classes)
    starts = jnp.linspace(0.0, 4.0, samples, dtype=dtype)
    # 4c is exact, so a fused multiply-add rounds 4c + start as two steps would.
    angle = (4.0 * jnp.arange(classes, dtype=dtype)[:, None] + starts[None, :]).reshape(-1)
    angle = angle + noise
    X = jnp.stack([radius * jnp.sin(2.5 * angle), radius * jnp.cos(2.5 * angle)], axis=1)
    return X, _labels(samples, classes)


def vertical(key: jax.Array, samples: int, classes: int) -> tuple[jax.Array, jax.Array]:
    """``classes`` vertical clusters: class ``c`` at ``(0.1 * normal + c / 3, 0.1 * normal
    + 0.5)``.

    Returns:
      ``X`` of shape ``(samples * classes, 2)`` and ``y`` of shape ``(samples * classes,)``.
    """
    key = check_key("key", key)
    samples = check_positive_int("samples", samples)
    classes = check_positive_int("classes", classes)
    dtype = _float()
    noise = _noise(key, 0.1, (samples * classes, 2), dtype)
    return _vertical(noise, samples, classes)


@jit_program(static_argnums=(1, 2))
def _vertical(noise, samples, classes):
    dtype = np.dtype(noise.dtype)
    # c / 3 as XLA computes it, c times the rounded reciprocal of 3, here in NumPy: inside
    # this program the product would be fused into the sum below (one rounding, not two).
    thirds = np.arange(classes, dtype=dtype) * (dtype.type(1) / dtype.type(3))
    centres = jnp.stack([jnp.repeat(jnp.asarray(thirds), samples),
                         jnp.full((samples * classes,), 0.5, dtype)], axis=1)
    return noise + centres, _labels(samples, classes)


def sine(samples: int = 1000) -> tuple[jax.Array, jax.Array]:
    """The book's regression data: ``X = arange(samples) / samples`` as a column and
    ``y = sin(2 pi X)``, both of shape ``(samples, 1)``. Deterministic (no key)."""
    samples = check_positive_int("samples", samples)
    return _sine(samples, _float())


@jit_program(static_argnums=(0, 1))
def _sine(samples, dtype):
    X = (jnp.arange(samples, dtype=dtype) / samples)[:, None]
    return X, jnp.sin(2 * jnp.pi * X)
