"""Prototypes of changes proposed to purenn, measured next to the library as it is.

Nothing here is imported by purenn. ``patched()`` swaps the proposed backward rule into
``purenn.ops.dense``'s ``custom_vjp`` for the duration of a ``with`` block; a contender
that runs under it is traced (and so compiled) with the proposal. Outside the block the
library is untouched.

Proposal P1 — the dense layer's ``dweights`` as a row-major GEMM on CPU
-----------------------------------------------------------------------
``dweights = x.T @ dvalues`` contracts the batch axis, dimension 0 of *both* operands.
XLA:CPU hands that dot to Eigen with a column-major-ish output layout, and it is slow for
the book's shapes: for ``h.T @ dlogits`` with ``h`` (3000, 512) and ``dlogits`` (3000, 3),
~9 ms where the same FLOPs as a row-major GEMM take ~0.4 ms. Plain ``jax.grad`` emits the
very same dot, so every JAX program with a thin dense layer pays it. The fix transposes the
*smaller* operand first (``dvalues`` (N, n_out) or ``x`` (N, n_in)) and keeps XLA from
folding the transpose back into the dot with ``lax.optimization_barrier``; when
``n_out < n_in`` the (n_out, n_in) result is transposed afterwards, behind a second
barrier so the GEMM writes row-major. Same math, same values (up to summation order). On
other platforms (GPU, TPU), where the library's dot is already fine, ``platform_dependent``
keeps the original rule.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys

import jax.numpy as jnp
from jax import lax

import purenn.ops  # noqa: F401  (makes sure the module below is loaded)

_dense_module = sys.modules["purenn.ops.dense"]
ORIGINAL_DENSE_BWD = _dense_module._dense_bwd


def _dweights_row_major(x, dvalues):
    """``x.T @ dvalues`` as a GEMM over row-major operands (see the module docstring)."""
    n_in, n_out = x.shape[1], dvalues.shape[1]
    if n_out < n_in:
        dweights_t = lax.optimization_barrier(dvalues.T) @ x  # (n_out, n_in)
        return lax.optimization_barrier(dweights_t).T
    return lax.optimization_barrier(x.T) @ dvalues  # (n_in, n_out)


def _dweights_plain(x, dvalues):
    return x.T @ dvalues


def proposed_dense_bwd(residuals, dvalues):
    """P1: the book's dense backward with ``dweights`` computed as a row-major GEMM on CPU."""
    x, weights = residuals
    dinputs = dvalues @ weights.T
    dweights = lax.platform_dependent(x, dvalues, cpu=_dweights_row_major,
                                      default=_dweights_plain)
    dbiases = jnp.sum(dvalues, axis=0, keepdims=True)
    return dinputs, dweights, dbiases


# The diffs, against purenn as of this benchmark, sit beside this file (``git apply``).
_HERE = os.path.dirname(os.path.abspath(__file__))


def proposed_diff(name: str) -> str:
    """The text of ``benchmarks/<name>.diff``, e.g. ``p1_dense_bwd``."""
    with open(os.path.join(_HERE, f"{name}.diff")) as f:
        return f.read()


@contextlib.contextmanager
def patched():
    """Trace ``purenn.ops.dense`` with the proposed backward rule inside the block."""
    fwd = _dense_module._dense_fwd
    _dense_module._dense.defvjp(fwd, proposed_dense_bwd)
    try:
        yield
    finally:
        _dense_module._dense.defvjp(fwd, ORIGINAL_DENSE_BWD)


# --- P2: one compiled program per fit, whatever the chunk lengths ------------------------

P2_DOC = """\
``fit`` compiles one ``lax.scan`` program per distinct chunk length: a 1-epoch chunk for
epoch 0 (so its log line comes at once), the ``log_every``-epoch chunk, and one more for a
last chunk of another length (e.g. ``epochs=1000``: lengths 1, 100 and 99). Each is a full
XLA compile of the same step. P2 compiles one program per ``log_every``: a
``lax.fori_loop`` over a *traced* epoch count (at most ``log_every``) that writes each
epoch's metrics into preallocated ``(log_every,)`` buffers; the host keeps the first
``count`` entries. Same epochs, same keys, same ops per epoch."""


@functools.cache
def _one_program_runner(max_length):
    """A stand-in for ``train._chunk_runner`` that serves every chunk length up to
    ``max_length`` from one compiled program (see ``P2_DOC``)."""
    import functools

    import jax
    import numpy as np

    from purenn import train

    example = []  # the arguments of the latest call, to read the original's outputs
    original = getattr(train._chunk_runner, "__wrapped__", None)
    if original is None:
        raise RuntimeError("one_program() must not be nested")

    @functools.lru_cache(maxsize=64)
    def program(model, loss, optimizer, accuracy, placement, n_samples, batch_size, length):
        epoch = train._epoch_function(
            train._step_function(model, loss, optimizer, accuracy, placement),
            n_samples, batch_size)

        def run(params, opt_state, X, y, key, start, count):
            shapes = jax.eval_shape(lambda p, s: epoch(p, s, X, y, key, start)[2],
                                    params, opt_state)
            buffers = jax.tree.map(lambda s: jnp.zeros((length, *s.shape), s.dtype), shapes)

            def body(i, carry):
                params, opt_state, buffers = carry
                params, opt_state, metrics = epoch(params, opt_state, X, y, key, start + i)
                buffers = jax.tree.map(
                    lambda b, m: lax.dynamic_update_index_in_dim(b, m, i, 0), buffers, metrics)
                return params, opt_state, buffers

            params, opt_state, buffers = lax.fori_loop(0, count, body,
                                                       (params, opt_state, buffers))
            if with_finite:  # train._chunk_runner's 4th output since b8097ea
                finite = jnp.all(jnp.array([jnp.all(jnp.isfinite(leaf))
                                            for leaf in jax.tree.leaves(params)]))
                return params, opt_state, buffers, finite
            return params, opt_state, buffers

        with_finite = len(jax.eval_shape(
            original(model, loss, optimizer, accuracy, placement, n_samples, batch_size, 1),
            *example)) == 4
        return jax.jit(run)

    def chunk_runner(model, loss, optimizer, accuracy, placement, n_samples, batch_size,
                     length):
        def run(params, opt_state, X, y, key, start):
            example[:] = [params, opt_state, X, y, key, start]
            compiled = program(model, loss, optimizer, accuracy, placement, n_samples,
                               batch_size, max(max_length, length))
            params, opt_state, buffers, *rest = compiled(params, opt_state, X, y, key, start,
                                                         length)
            metrics = {k: np.asarray(v)[:length] for k, v in buffers.items()}
            return (params, opt_state, metrics, *rest)

        return run

    return chunk_runner


@contextlib.contextmanager
def one_program(max_length):
    """Run ``fit`` with P2 inside the block (``max_length`` = the fit's ``log_every``)."""
    from purenn import train

    if hasattr(train, "_chunk_program"):  # P2 is in the library already
        yield
        return
    original = train._chunk_runner
    train._chunk_runner = _one_program_runner(max_length)
    try:
        yield
    finally:
        train._chunk_runner = original


@contextlib.contextmanager
def all_proposals(max_length):
    """P1 and P2 together."""
    with patched(), one_program(max_length):
        yield


# --- P3: JAX's persistent compilation cache in the CLI -----------------------------------

P3_DOC = """\
A fresh ``purenn book regularization`` spends most of its time to the first log line
compiling: dozens of small eager programs (the data, ``model.init``, ``optimizer.init``)
and the first chunk. JAX can keep compiled programs on disk across processes
(``jax_compilation_cache_dir``); the CLI could turn it on for its own runs (a user cache
directory, overridable, off with an environment variable), so every run after the first
starts in about a second. Same compiled programs, same bits. Measured here by setting
``JAX_COMPILATION_CACHE_DIR`` (and a zero minimum compile time / entry size) for the
subprocess: no change to purenn needed for the measurement."""


# --- the library's chunk program, before and after P2 ----------------------------------


def fit_program(model, loss, optimizer, accuracy, n_samples, length, *, cached=True):
    """``(jitted, extra)``: the jitted program ``fit`` runs for chunks of ``length``
    epochs, called as ``jitted(params, opt_state, X, y, key, start, *extra)`` and returning
    ``(params, opt_state, metrics, ...)`` with ``length`` rows of metrics. Works with
    purenn as it is (``train._chunk_runner``, a ``lax.scan``) and with P2 applied
    (``train._chunk_program``, whose traced ``length`` is the extra argument)."""
    from purenn import train

    program = getattr(train, "_chunk_program", None)
    if program is not None:  # P2 is in the library
        factory = program if cached else program.__wrapped__
        return factory(model, loss, optimizer, accuracy, None, n_samples, None, length), (
            length,)
    runner = train._chunk_runner
    factory = runner if cached else getattr(runner, "__wrapped__", runner)
    return factory(model, loss, optimizer, accuracy, None, n_samples, None, length), ()


def clear_fit_caches():
    """Forget every compiled chunk program of ``fit`` (and of P2's stand-in)."""
    from purenn import train

    for name in ("_chunk_runner", "_chunk_program"):
        cache_clear = getattr(getattr(train, name, None), "cache_clear", None)
        if cache_clear is not None:
            cache_clear()
    _one_program_runner.cache_clear()
