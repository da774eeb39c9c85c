"""Counting the programs a block of code compiles, for the tests of "one compile per
structure": ``compiles`` (every program XLA compiles, by name), ``is_eager_op`` (which of
those are single operations run outside jit) and ``init_programs`` (the inits compiled
per structure)."""

from __future__ import annotations

import jax

# Every program XLA compiles in a block, ``(function name, seconds)``, in this process:
# ``with compiles() as seen:``. The benchmarks' record, shared.
from benchmarks.timing import COMPILE_EVENT
from benchmarks.timing import compile_log as compiles

__all__ = ["COMPILE_EVENT", "compiles", "init_programs", "is_eager_op"]


def is_eager_op(name: str) -> bool:
    """``jit(multiply)``: one jax.numpy or jax.lax operation run outside jit."""
    inner = name[len("jit("):-1] if name.startswith("jit(") else name
    return any(hasattr(module, inner) for module in (jax.numpy, jax.lax, jax.random))


def init_programs() -> int:
    """How many programs ``compiled_method`` holds (layers' and optimizers' inits). The
    jitted function is private to purenn.partition: its cache size is the count."""
    from purenn.partition import _method_program  # private: see the docstring
    return _method_program._cache_size()
