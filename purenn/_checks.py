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


def _scalar_array(name: str, value, expected: str):
    """A scalar jax/NumPy array, or raise. Returns ``(array, concrete_float_or_None)``:
    a traced value (e.g. a hyperparameter swept under ``vmap``) is not checked."""
    if jnp.ndim(value) != 0:
        raise ValueError(f"{name} must be a scalar ({expected}); got an array of shape "
                         f"{tuple(jnp.shape(value))}")
    if not jnp.issubdtype(jnp.result_type(value), jnp.floating) and not jnp.issubdtype(
            jnp.result_type(value), jnp.integer):
        raise TypeError(f"{name} must be {expected}; got an array of dtype "
                        f"{jnp.result_type(value)}")
    return value, (float(value) if _is_concrete(value) else None)


def check_rate(name: str, value):
    """A fraction in [0, 1): the dropout rate, the fraction of units dropped.

    A Python or NumPy number comes back as a float; a scalar array is checked when
    concrete and comes back as it is (a traced one passes unchecked)."""
    expected = "a number in [0, 1)"
    if isinstance(value, (jax.Array, np.ndarray)):
        value, concrete = _scalar_array(name, value, expected)
    elif isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {expected}; got {type(value).__name__}")
    else:
        value = concrete = float(value)
    if concrete is not None and not 0.0 <= concrete < 1.0:
        raise ValueError(f"{name} must be in [0, 1) (the fraction of units dropped); "
                         f"got {concrete}")
    return value


def check_strength_value(name: str, value):
    """A regularization strength >= 0: a number (returned as a float) or a scalar array
    (checked when concrete, returned as it is)."""
    expected = "a finite number >= 0"
    if isinstance(value, (jax.Array, np.ndarray)):
        value, concrete = _scalar_array(name, value, expected)
    elif isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number >= 0; got {type(value).__name__}")
    else:
        value = concrete = float(value)
    if concrete is not None and not (np.isfinite(concrete) and concrete >= 0):
        raise ValueError(f"{name} must be a finite number >= 0; got {concrete}")
    return value


def check_strength(name: str, value, dtype) -> jax.Array:
    """A regularization strength >= 0 as a scalar array of ``dtype`` (see
    ``check_strength_value``)."""
    return jnp.asarray(check_strength_value(name, value), dtype=dtype)
