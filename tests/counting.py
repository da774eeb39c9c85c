"""Counting the programs a block of code compiles, for the tests of "one compile per
structure": ``compiles`` (every program XLA compiles, by name), ``is_eager_op`` (which of
those are single operations run outside jit) and ``init_programs`` (the inits compiled
per structure)."""

from __future__ import annotations

import contextlib

import jax

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def compiles():
    """Collect ``(function name, seconds)`` of every program XLA compiles in the block, in
    this process (the tests that count compiles share it)."""
    seen = []

    def listener(event, seconds, **kwargs):
        if event == COMPILE_EVENT:
            seen.append((kwargs.get("fun_name", "?"), seconds))

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield seen
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def is_eager_op(name: str) -> bool:
    """``jit(multiply)``: one jax.numpy or jax.lax operation run outside jit."""
    inner = name[len("jit("):-1] if name.startswith("jit(") else name
    return any(hasattr(module, inner) for module in (jax.numpy, jax.lax, jax.random))


def init_programs() -> int:
    """How many programs ``compiled_method`` holds (layers' and optimizers' inits). The
    jitted function is private to purenn.partition: its cache size is the count."""
    from purenn.partition import _method_program  # private: see the docstring
    return _method_program._cache_size()
