"""Argument checks shared by the public functions.

Every check runs where the user hands a value in: on Python numbers when a layer or an
optimizer is built, and on static shapes and dtypes when a function is traced, so the same
errors are raised eagerly and under ``jax.jit``. Messages name the argument, what was
expected, what was given, and the fix.
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np


def _is_concrete(value) -> bool:
    return not isinstance(value, jax.core.Tracer)


def check_array(name: str, value) -> jax.Array:
    """Return ``value`` as a JAX array, or raise TypeError naming ``name``."""
    if isinstance(value, (jax.Array, np.ndarray, numbers.Number, np.generic)):
        return jnp.asarray(value)
    if isinstance(value, (list, tuple)):
        try:
            return jnp.asarray(value)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be an array; got a {type(value).__name__} "
                            f"that cannot become one: {err}") from None
    raise TypeError(f"{name} must be an array (jax.Array or numpy.ndarray); "
                    f"got {type(value).__name__}")


def check_float_array(name: str, value) -> jax.Array:
    """An array of a floating dtype (float16, bfloat16, float32, float64)."""
    value = check_array(name, value)
    if not jnp.issubdtype(value.dtype, jnp.floating):
        raise TypeError(f"{name} must have a floating dtype; got {value.dtype}. "
                        f"Convert it first, e.g. {name}.astype(jnp.float32)")
    return value


def check_matrix(name: str, value, *, width: int | None = None, what: str = "") -> jax.Array:
    """A floating array of shape (N, width): rows are samples, columns features."""
    value = check_float_array(name, value)
    expected = f"(N, {width})" if width is not None else "(N, features)"
    if value.ndim != 2:
        hint = f"; reshape a single sample with {name}[None, :]" if value.ndim == 1 else ""
        raise ValueError(f"{what}{name} must be 2-D of shape {expected}; "
                         f"got shape {tuple(value.shape)}{hint}")
    if width is not None and value.shape[1] != width:
        raise ValueError(f"{what}{name} must have shape {expected}; got shape "
                         f"{tuple(value.shape)}: {value.shape[1]} features where the layer "
                         f"was built for {width}")
    return value


def check_key(name: str, key) -> jax.Array:
    """A ``jax.random`` key: typed (``jax.random.key``) or legacy uint32[2]."""
    if isinstance(key, (jax.Array, np.ndarray)):
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.ndim == 0:
            return key
        if key.dtype == np.uint32 and key.shape == (2,):
            return jnp.asarray(key)
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
            raise TypeError(f"{name} must be a single jax.random key; got a batch of keys "
                            f"of shape {tuple(key.shape)}: index one, e.g. {name}[0]")
        raise TypeError(f"{name} must be a jax.random key, e.g. jax.random.key(0); got an "
                        f"array of dtype {key.dtype} and shape {tuple(key.shape)}")
    raise TypeError(f"{name} must be a jax.random key, e.g. jax.random.key(0); "
                    f"got {type(key).__name__}")


def check_nonnegative(name: str, value) -> float:
    """A finite real number >= 0 (a Python or NumPy scalar)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number >= 0; got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {value}")
    return value


def check_positive_int(name: str, value) -> int:
    """An integer >= 1 (a layer size, a count)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer; got {value!r} "
                        f"({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer (>= 1); got {value}")
    return int(value)


def check_rate(name: str, value) -> float:
    """A fraction in [0, 1): the dropout rate, the fraction of units dropped."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1); got {type(value).__name__}")
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1) (the fraction of units dropped); "
                         f"got {value}")
    return value


def check_strength(name: str, value, dtype) -> jax.Array:
    """A regularization strength >= 0 as a scalar array of ``dtype``.

    Concrete values are checked; traced ones (a strength swept under jit) pass through.
    """
    if isinstance(value, (numbers.Real, np.generic)) and not isinstance(value, bool):
        check_nonnegative(name, value)
    elif isinstance(value, (jax.Array, np.ndarray)):
        if jnp.ndim(value) != 0:
            raise ValueError(f"{name} must be a scalar; got shape {tuple(jnp.shape(value))}")
        if _is_concrete(value) and not (np.isfinite(float(value)) and float(value) >= 0):
            raise ValueError(f"{name} must be a finite number >= 0; got {float(value)}")
    else:
        raise TypeError(f"{name} must be a real number >= 0; got {type(value).__name__}")
    return jnp.asarray(value, dtype=dtype)
