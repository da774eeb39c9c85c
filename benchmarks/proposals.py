"""What makes ``fit`` fast, and prototypes of changes that were measured but *not applied*.

Nothing here is imported by purenn, and nothing here changes purenn's dense op: the dense
backward described in ``FAST_FIT_DOC`` is in the library (``purenn/ops/dense.py``) and every
``purenn fit`` contender runs it as shipped. P2 (``one_program``) swaps a stand-in for
``train._chunk_runner`` for the duration of a ``with`` block; P3 needs no code here (an
environment variable for a subprocess). Their diffs against purenn sit beside this file
(``p2_one_program.diff``, ``p3_cli_cache.diff``; ``git apply``), for reference only.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys

import jax.numpy as jnp
from jax import lax

import purenn.ops  # noqa: F401  (makes sure purenn.ops.dense is loaded)

_dense_module = sys.modules["purenn.ops.dense"]

FAST_FIT_DOC = """\
``dweights = x.T @ dvalues`` contracts the batch axis, dimension 0 of *both* operands.
XLA:CPU hands that dot to Eigen with a column-major-ish output layout, and it is slow for
the book's shapes: for ``h.T @ dlogits`` with ``h`` (3000, 512) and ``dlogits`` (3000, 3),
~9 ms where the same FLOPs as a row-major GEMM take ~0.4 ms. Plain ``jax.grad`` emits the
very same dot, so every JAX program with a thin dense layer pays it. purenn's dense op has
a hand-written backward, so it can choose the layout: on CPU it transposes the *smaller*
operand first (``dvalues`` (N, n_out) or ``x`` (N, n_in)) and keeps XLA from folding the
transpose back into the dot with ``lax.optimization_barrier``; when ``n_out < n_in`` the
(n_out, n_in) result is transposed afterwards, behind a second barrier, so the GEMM writes
row-major. Same math, same values up to summation order. On other platforms (GPU, TPU)
``lax.platform_dependent`` keeps the book's ``x.T @ dvalues``."""


def shipped_dweights_source() -> str:
    """The source of purenn's CPU ``dweights`` rule, as the library has it now."""
    return inspect.getsource(_dense_module._dweights_row_major)


@contextlib.contextmanager
def book_dweights():
    """Trace purenn's dense op with the book's plain ``dweights = x.T @ dvalues`` inside
    the block: the library *before* the change above, for the ablation that measures it.
    Outside the block the library is as shipped."""
    module = _dense_module
    fwd, shipped = module._dense_fwd, module._dense_bwd

    def book_bwd(residuals, dvalues):
        x, weights = residuals
        return (dvalues @ weights.T, x.T @ dvalues, jnp.sum(dvalues, axis=0, keepdims=True))

    module._dense.defvjp(fwd, book_bwd)
    try:
        yield
    finally:
        module._dense.defvjp(fwd, shipped)


# --- P2 (not applied): one compiled program per fit, whatever the chunk lengths -------

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


# --- P3 (not applied): JAX's persistent compilation cache in the CLI -----------------

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
