"""Initializers for ``pn.dense(..., weight_init=..., bias_init=...)``, compared by what
they compute.

An initializer is any function ``(key, shape, dtype) -> array``: purenn's ``book`` and
``zeros``, or any of ``jax.nn.initializers`` (``he_normal()``, ``glorot_uniform()``,
``normal(0.1)``, ...). ``dense`` wraps the one it is given in an ``Initializer``: part
of the layer's structure (static), so a new initializer is a new program, and two equal
initializers are one program. ``jax.nn.initializers.he_normal()`` returns a new closure
at each call, equal to no other by Python's rules; an ``Initializer`` is equal to
another when their functions are the same code over equal captured values (closures'
cells, ``functools.partial`` arguments, defaults), so ``he_normal()`` called twice is
one structure, one compiled ``init``. A function that captures something unhashable
(an array) is equal only to itself.

``by_name(name)`` gives the initializers of the command line's ``--init``: ``book`` (the
book's ``0.01 * normal``), ``he`` (``jax.nn.initializers.he_normal()``) and ``glorot``
(``jax.nn.initializers.glorot_uniform()``).
"""

from __future__ import annotations

import functools
import math
import numbers
import types
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["NAMES", "Initializer", "as_initializer", "book", "by_name", "zeros"]


class _Identity:
    """Stands for a value that cannot be compared by what it computes: equal only to a
    stand-in of the same object."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return isinstance(other, _Identity) and other.value is self.value

    def __hash__(self):
        return id(self.value)


def _fingerprint(value):
    """A hashable value, equal for functions that compute the same thing: the code and
    the captured values of a function, the parts of a ``functools.partial``, typed
    values (so that 2 and 2.0 differ). A value that holds something unhashable (an
    array) is stood for by its identity."""
    if isinstance(value, Initializer):
        return value.fingerprint
    if isinstance(value, functools.partial):
        parts = ("partial", _fingerprint(value.func), tuple(map(_fingerprint, value.args)),
                 tuple(sorted((k, _fingerprint(v)) for k, v in value.keywords.items())))
    elif isinstance(value, types.FunctionType):
        cells = tuple(_fingerprint(cell.cell_contents) for cell in value.__closure__ or ())
        parts = ("function", value.__module__, value.__qualname__, value.__code__, cells,
                 tuple(map(_fingerprint, value.__defaults__ or ())),
                 tuple(sorted((k, _fingerprint(v))
                              for k, v in (value.__kwdefaults__ or {}).items())))
    elif isinstance(value, tuple):
        parts = ("tuple", *map(_fingerprint, value))
    else:
        parts = (type(value), value)
    try:
        hash(parts)
    except TypeError:
        return _Identity(value)
    return parts


def _describe(function) -> str:
    """``function`` in readable form: its name and what it captures, without addresses,
    e.g. ``jax.nn.initializers.variance_scaling(scale=2.0, mode='fan_in', ...)``."""
    if isinstance(function, functools.partial):
        arguments = [repr(a) for a in function.args]
        arguments += [f"{k}={v!r}" for k, v in function.keywords.items()]
        return f"{_describe(function.func)}({', '.join(arguments)})"
    if not isinstance(function, types.FunctionType):
        return repr(function)
    module = function.__module__ or ""
    if module.startswith("jax._src.nn.initializers"):
        module = "jax.nn.initializers"
    name = function.__qualname__.split(".<locals>")[0]
    if not function.__closure__:
        return f"{module}.{name}"
    captured = ", ".join(f"{var}={cell.cell_contents!r}" for var, cell in
                         zip(function.__code__.co_freevars, function.__closure__))
    return f"{module}.{name}({captured})"


class Initializer:
    """An initializer ``(key, shape, dtype) -> array`` that is equal to another when it
    computes the same thing (see the module's docstring), and hashable: a static part of
    a layer.

    Attributes:
      function: the initializer itself.
      fingerprint: what equality and the hash compare.
    """

    __slots__ = ("function", "fingerprint", "_name")

    def __init__(self, function: Callable, *, name: str | None = None):
        if not callable(function):
            raise TypeError(f"an initializer must be a function (key, shape, dtype) -> "
                            f"array, e.g. jax.nn.initializers.he_normal(); got "
                            f"{type(function).__name__}")
        object.__setattr__(self, "function", function)
        object.__setattr__(self, "fingerprint", _fingerprint(function))
        object.__setattr__(self, "_name", name)

    def __setattr__(self, name, value):
        raise AttributeError("an Initializer is immutable; build another")

    def __call__(self, key: jax.Array, shape: tuple[int, ...], dtype) -> jax.Array:
        """An array of ``shape`` and ``dtype`` drawn from ``key``."""
        return self.function(key, shape, dtype)

    def __eq__(self, other):
        return isinstance(other, Initializer) and self.fingerprint == other.fingerprint

    def __hash__(self):
        return hash(self.fingerprint)

    def __repr__(self):
        return self._name or _describe(self.function)


def as_initializer(value, name: str = "init") -> Initializer:
    """``value`` as an ``Initializer`` (itself when it is one already); ``name`` is the
    argument's, for the error."""
    if isinstance(value, Initializer):
        return value
    if not callable(value):
        raise TypeError(f"{name} must be an initializer (key, shape, dtype) -> array, e.g. "
                        f"jax.nn.initializers.he_normal() or pn.initializers.book(0.1); got "
                        f"{type(value).__name__}")
    return Initializer(value)


def _scaled_normal(key, shape, dtype, *, scale: float):
    # The barrier keeps XLA from folding the scale into the draw's own scaling: the same
    # bits as drawing, then scaling, each as a program of its own.
    return scale * lax.optimization_barrier(jax.random.normal(key, shape, dtype))


def book(scale: float = 0.01) -> Initializer:
    """The book's weights: ``scale * standard_normal``, ``scale`` 0.01 (the default of
    ``dense``) or 0.1 (chapter 17's regression model, which 0.01 leaves stuck).

    Bit for bit the draw, then the product, each run on its own."""
    if (isinstance(scale, bool) or not isinstance(scale, numbers.Real)
            or not math.isfinite(scale) or scale <= 0):
        raise ValueError(f"scale must be a finite number > 0, e.g. book(0.1); got {scale!r}")
    scale = float(scale)
    return Initializer(functools.partial(_scaled_normal, scale=scale),
                       name=f"book(scale={scale!r})")


def _zeros(key, shape, dtype):
    del key  # unused
    return jnp.zeros(shape, dtype)


def zeros() -> Initializer:
    """All zeros: the book's biases (the default ``bias_init`` of ``dense``)."""
    return Initializer(_zeros, name="zeros()")


NAMES = ("book", "he", "glorot")  # the command line's --init


def by_name(name: str) -> Initializer:
    """The weight initializer ``--init NAME`` names: ``book`` (``book()``, 0.01 *
    normal), ``he`` (``jax.nn.initializers.he_normal()``) or ``glorot``
    (``jax.nn.initializers.glorot_uniform()``)."""
    if name == "book":
        return book()
    if name in ("he", "glorot"):
        function = {"he": "he_normal", "glorot": "glorot_uniform"}[name]
        return Initializer(getattr(jax.nn.initializers, function)(),
                           name=f"jax.nn.initializers.{function}()")
    raise ValueError(f"init must be one of {', '.join(NAMES)}; got {name!r}")
