"""Argument checks shared by the public functions.

Every check runs where the user hands a value in: on Python numbers when a layer or an
optimizer is built, and on static shapes and dtypes when a function is traced, so the same
errors are raised eagerly and under ``jax.jit``. Messages name the argument, what was
expected, what was given, and the fix.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np


def default_float_dtype() -> np.dtype:
    """The dtype purenn computes real numbers in: float32, unless jax_enable_x64 is on."""
    return np.dtype(jax.dtypes.canonicalize_dtype(np.float64))


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


def check_positive_int(name: str, value) -> int:
    """An integer >= 1 (a layer size, a count)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer; got {value!r} "
                        f"({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer (>= 1); got {value}")
    return int(value)


def check_hyperparameter(name: str, value, expected: str, ok: Callable[[float], bool]):
    """A numeric hyperparameter (a strength, a rate, a learning rate, a decay), checked
    where a layer or an optimizer is built.

    A Python or NumPy number comes back as a float. A scalar array of a real dtype comes
    back as it is, checked when concrete; a traced one (e.g. swept under ``vmap``) passes
    unchecked.

    Args:
      name: the argument's name, as the messages say it.
      value: what the user gave.
      expected: the valid values in words, as the messages say them: ``"a finite number
        > 0"``, ``"in [0, 1)"``. A value of the wrong type is told it must be
        ``expected`` ("a number in [0, 1)" where ``expected`` names no number).
      ok: whether a finite float is valid.

    Raises:
      TypeError: ``value`` is not a real number or a real scalar array.
      ValueError: an array that is not a scalar; a number that is not finite or not
        ``ok``: ``"{name} must be {expected}; got {value}"``.
    """
    as_number = expected if "number" in expected else f"a number {expected}"
    if isinstance(value, (jax.Array, np.ndarray)):
        if jnp.ndim(value) != 0:
            raise ValueError(f"{name} must be a scalar ({as_number}); got an array of shape "
                             f"{tuple(jnp.shape(value))}")
        dtype = jnp.result_type(value)
        if not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)):
            raise TypeError(f"{name} must be {as_number}; got an array of dtype {dtype}")
        if isinstance(value, jax.core.Tracer):
            return value
        concrete = float(value)
    elif isinstance(value, bool) or not isinstance(value, numbers.Real):
        # A bool or a complex is a number that is refused: show it; otherwise the type.
        shown = (f"{value!r} ({type(value).__name__})" if isinstance(value, numbers.Number)
                 else type(value).__name__)
        raise TypeError(f"{name} must be {as_number}; got {shown}")
    else:
        value = concrete = float(value)
    if not (np.isfinite(concrete) and ok(concrete)):
        raise ValueError(f"{name} must be {expected}; got {concrete}")
    return value


def check_positive(name: str, value):
    """A hyperparameter > 0 (see ``check_hyperparameter``): a learning rate, an epsilon."""
    return check_hyperparameter(name, value, "a finite number > 0", lambda v: v > 0)


def check_nonnegative(name: str, value):
    """A hyperparameter >= 0 (see ``check_hyperparameter``): a regularization strength,
    a decay, a momentum."""
    return check_hyperparameter(name, value, "a finite number >= 0", lambda v: v >= 0)


def check_fraction(name: str, value):
    """A hyperparameter in [0, 1) (see ``check_hyperparameter``): the dropout rate (the
    fraction of units dropped), RMSprop's rho, Adam's betas."""
    return check_hyperparameter(name, value, "in [0, 1)", lambda v: 0 <= v < 1)
