"""The partition of a pytree into its numeric leaves and a static, hashable rest.

**Why.** purenn's layers and optimizers are pytrees whose numeric hyperparameters (L2
strengths, dropout rates, learning rates) are leaves, and whose structure and non-numeric
parts (the loss function, a schedule, a placement on a mesh) are not. A jitted program
that closes over a model is compiled again for every new value; one that takes the model
as an argument cannot hash it. ``partition`` splits a tree in two: the numeric leaves
(``dynamic``, passed to the program as arguments, traced) and the rest (``static``,
hashable, passed as a static argument, so the program is keyed on it). Models and
optimizers that differ only in values share one ``static`` and so one compiled program:
**one compile per structure, hyperparameters as data**. Inside the program ``combine``
puts the tree back together from the traced leaves.

    @functools.partial(jax.jit, static_argnums=0)
    def program(static, dynamic, x):
        model = combine(dynamic, static)
        return model.apply(..., x)

    dynamic, static = partition(model)
    program(static, dynamic, x)

``BoundProgram`` does this for a program of that shape; ``compiled_method`` does it for a
method of the tree (a layer's or an optimizer's ``init``), so that ``model.init(key)`` is
one program per model structure. A non-numeric leaf that cannot be
hashed (a plain ``@dataclass`` optimizer sets ``__hash__ = None``) is kept in a wrapper
equal only to itself: each ``partition`` of it compiles its own program, never reusing one
built for older values.
"""

from __future__ import annotations

import functools
import numbers
from typing import Any, NamedTuple

import jax
import numpy as np

__all__ = ["CPU_COMPILER_OPTIONS", "BoundProgram", "Program", "Static", "combine",
           "compiled_method", "is_data", "jit_program", "partition"]

# XLA:CPU options for the programs that run once or now and then (``jit_program``: data
# sets, keys, initializers, evaluation, prediction): XLA's older fusion emitters compile
# them in about two thirds of the CPU time, to the same bits. The training loops keep
# XLA's defaults: under the older emitters an epoch's last bits can depend on the program
# around it (the lean loop, the checked loop, a vmapped sweep), and those must agree.
CPU_COMPILER_OPTIONS = {"xla_cpu_use_fusion_emitters": False}


def is_data(leaf) -> bool:
    """Whether ``leaf`` is numeric data (an array or a number, not a bool): a jit argument."""
    return (isinstance(leaf, (jax.Array, np.ndarray, np.generic, numbers.Number))
            and not isinstance(leaf, bool))


class Static(NamedTuple):
    """The static half of a pytree: its structure and its non-numeric leaves (functions,
    placements), hashable, so a jitted program is keyed on it."""

    treedef: Any
    leaves: tuple  # the non-numeric leaves, None where the leaf is data


class _Unhashable:
    """A non-numeric leaf that cannot be hashed. It is equal only to itself (object
    identity), so each ``partition`` of it compiles its own program."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


def _static_leaf(leaf):
    try:
        hash(leaf)
    except TypeError:
        return _Unhashable(leaf)
    return leaf


def partition(tree) -> tuple[tuple, Static]:
    """Split ``tree`` into ``(dynamic, static)``: ``dynamic`` holds the numeric leaves in
    ``jax.tree.leaves`` order (None in place of the others), the jit arguments;
    ``static`` the structure and the other leaves, hashable."""
    leaves, treedef = jax.tree.flatten(tree)
    dynamic = tuple(leaf if is_data(leaf) else None for leaf in leaves)
    static = tuple(None if is_data(leaf) else _static_leaf(leaf) for leaf in leaves)
    return dynamic, Static(treedef, static)


def combine(dynamic: tuple, static: Static):
    """The tree ``partition`` split, from its numeric leaves (traced or not) and its
    static half."""
    leaves = [(s.value if isinstance(s, _Unhashable) else s) if d is None else d
              for d, s in zip(dynamic, static.leaves)]
    return jax.tree.unflatten(static.treedef, leaves)


class BoundProgram:
    """A jitted ``program(static, *options, dynamic, *args)`` bound to one tree's
    partition and to static ``options`` (its static arguments are ``static`` and the
    options): calling it with ``*args`` runs the program; ``lower(*args)`` lowers it as
    a jitted function is lowered (``.compile().as_text()`` shows the program)."""

    def __init__(self, program, tree, *options):
        self.program, self.options = program, options
        self.dynamic, self.static = partition(tree)

    def __call__(self, *args):
        return self.program(self.static, *self.options, self.dynamic, *args)

    def lower(self, *args):
        """The program lowered for these arguments."""
        return self.program.lower(self.static, *self.options, self.dynamic, *args)


class Program:
    """``jax.jit(fun, **jit_options)`` that compiles with ``CPU_COMPILER_OPTIONS`` on CPU;
    build it with ``jit_program``.

    JAX takes compiler options only for a program of its own: inside another traced
    function (jit, vmap, grad, eval_shape) and on other backends ``fun`` is the plain
    jitted function, traced inline as usual. Call it as the jitted function; ``lower``
    lowers the program a call with these arguments runs."""

    def __init__(self, fun, **jit_options):
        self.plain = jax.jit(fun, **jit_options)
        self.tuned = jax.jit(fun, compiler_options=CPU_COMPILER_OPTIONS, **jit_options)
        functools.update_wrapper(self, fun)

    def _choose(self, args):
        if jax.default_backend() != "cpu" or any(
                isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(args)):
            return self.plain
        return self.tuned

    def __call__(self, *args):
        program = self._choose(args)
        if program is self.plain:
            return program(*args)
        try:
            return program(*args)
        except ValueError as error:  # concrete arguments, but inside another trace
            if "compiler_options" not in str(error):
                raise
            return self.plain(*args)

    def lower(self, *args):
        """The program a call with ``args`` runs, lowered."""
        return self._choose(args).lower(*args)

    def _cache_size(self) -> int:  # the programs compiled on their own (tests count them)
        return self.tuned._cache_size()


def jit_program(fun=None, **jit_options) -> Program:
    """``Program(fun, **jit_options)``: ``jax.jit`` for a program that runs once or now
    and then, used as ``@jit_program`` or ``@jit_program(static_argnums=...)``."""
    if fun is None:
        return functools.partial(jit_program, **jit_options)
    return Program(fun, **jit_options)


@jit_program(static_argnums=(0, 1))
def _method_program(method, static, dynamic, *args):
    return method(combine(dynamic, static), *args)


def compiled_method(method):
    """``method(self, *args)``, a pure method of a pytree class, run as one compiled
    program per structure of ``self``: ``self`` is partitioned, its numeric leaves are the
    program's arguments and ``method`` with the static rest key it, so trees that differ
    only in values share the program (with ``args`` of the same shapes and dtypes). Inside
    a traced function (jit, vmap, eval_shape) it is traced inline: nothing is compiled on
    its own. Use it as a decorator, or as ``compiled = compiled_method(plain)`` in a class
    body to keep both."""

    @functools.wraps(method)
    def compiled(self, *args):
        dynamic, static = partition(self)
        return _method_program(method, static, dynamic, *args)

    return compiled
