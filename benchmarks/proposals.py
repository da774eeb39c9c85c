"""What makes ``fit`` fast, and stand-ins for changes to ``fit``'s training program that are
measured here but *not applied* to purenn.

Nothing here is imported by purenn. ``book_dweights`` swaps purenn's dense backward for the
book's plain one inside a ``with`` block (the ablation that measures the shipped rule).
``loop_program`` builds a stand-in for ``train._run_program`` (the compiled loop ``fit``
runs) with one part changed at a time; with its defaults it is the shipped program, op for
op (``benchmarks.compile`` checks that its kernel count matches). ``P4`` is the change
proposed for ``purenn/train.py``, with the diff in ``P4_DIFF`` below.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

import purenn.ops  # noqa: F401  (makes sure purenn.ops.dense is loaded)
from purenn import train

_dense_module = sys.modules["purenn.ops.dense"]

FAST_FIT_DOC = """\
``dweights = x.T @ dvalues`` contracts the batch axis, dimension 0 of *both* operands.
XLA:CPU runs that dot far slower than the same FLOPs as a row-major GEMM for the book's
shapes (for ``h.T @ dlogits`` with ``h`` (3000, 512) and ``dlogits`` (3000, 3), ~9 ms where
the GEMM takes ~0.4 ms). Plain ``jax.grad`` emits the very same dot, so every JAX program
with a thin dense layer pays it. purenn's dense op has a hand-written backward, so it can
choose the layout: on CPU it transposes the *smaller* operand first (``dvalues`` (N, n_out)
or ``x`` (N, n_in)) and keeps XLA from folding the transpose back into the dot with
``lax.optimization_barrier``; when ``n_out < n_in`` the (n_out, n_in) result is transposed
afterwards, behind a second barrier, so the GEMM writes row-major. Same math, same values up
to summation order. On other platforms (GPU, TPU) ``lax.platform_dependent`` keeps the
book's ``x.T @ dvalues``."""


def shipped_dweights_source() -> str:
    """The source of purenn's CPU ``dweights`` rule, as the library has it now."""
    return inspect.getsource(_dense_module._dweights_row_major)


@contextlib.contextmanager
def dense_backward(kind: str):
    """Trace purenn's dense op with another ``dweights`` rule inside the block:

    - ``"book"``: the book's plain ``x.T @ dvalues`` (purenn before its row-major rule);
    - ``"cpu-only"``: the shipped CPU rule, without ``lax.platform_dependent`` (so only
      one branch is lowered);
    - ``"no-barriers"``: the shipped transposes without the optimization barriers.

    Outside the block the library is as shipped."""
    module = _dense_module
    fwd, shipped = module._dense_fwd, module._dense_bwd

    def dweights(x, dvalues):
        if kind == "book":
            return x.T @ dvalues
        if kind == "cpu-only":
            return module._dweights_row_major(x, dvalues)
        if kind == "no-barriers":
            if dvalues.shape[1] < x.shape[1]:
                return (dvalues.T @ x).T
            return x.T @ dvalues
        raise ValueError(f"unknown dense backward {kind!r}")

    def backward(residuals, dvalues):
        x, weights = residuals
        return (dvalues @ weights.T, dweights(x, dvalues),
                jnp.sum(dvalues, axis=0, keepdims=True))

    module._dense.defvjp(fwd, backward)
    try:
        yield
    finally:
        module._dense.defvjp(fwd, shipped)


def book_dweights():
    """The book's plain ``dweights = x.T @ dvalues`` inside the block."""
    return dense_backward("book")


# --- stand-ins for fit's training program ------------------------------------------------


def _stack_metrics(metrics: dict, names: list, dtype) -> jax.Array:
    return jnp.stack([metrics[name].astype(dtype) for name in names])


def _single_finite_check(tree) -> jax.Array:
    """Whether every inexact leaf of ``tree`` is finite, as one reduction per dtype over
    the leaves laid end to end (instead of one reduction per leaf)."""
    groups = {}
    for leaf in jax.tree.leaves(tree):
        if jnp.issubdtype(jnp.result_type(leaf), jnp.inexact):
            groups.setdefault(jnp.result_type(leaf), []).append(jnp.ravel(leaf))
    checks = [jnp.all(jnp.isfinite(jnp.concatenate(leaves))) for leaves in groups.values()]
    return jnp.all(jnp.stack(checks)) if checks else jnp.asarray(True)


class LoopOptions(NamedTuple):
    """One stand-in of ``train._run_program``; the defaults are the shipped program.

    finite: what each epoch checks: ``"state"`` (the loss and every leaf of the new params
      and optimizer state, one reduction per leaf: shipped), ``"state-single"`` (the same,
      as one reduction), ``"loss"`` (the loss only), ``"none"``.
    select: how a failed epoch is undone: ``"where"`` (``jnp.where`` on every leaf:
      shipped), ``"cond"`` (one ``lax.cond``), ``"none"`` (not undone; the loop stops).
    previous: carry the state entering the previous epoch (shipped: True).
    buffer: ``"per-metric"`` (one (CHUNK,) buffer per metric: shipped), ``"stacked"``
      (one (CHUNK, metrics) buffer per dtype), ``"last"`` (only the last epoch's metrics).
    loop: ``"while"`` (shipped), ``"fori"`` (a ``fori_loop`` over the traced count, no
      early stop), ``"scan"`` (a ``lax.scan`` of CHUNK epochs, count ignored).
    chunk_check: check the final state once, after the loop (for ``finite="loss"``).
    """

    finite: str = "state"
    select: str = "where"
    previous: bool = True
    buffer: str = "per-metric"
    loop: str = "while"
    chunk_check: bool = False


def loop_function(components, batch_size, options: LoopOptions):
    """``train.epochs_function`` with the changes ``options`` names. Returns ``run(state,
    X, y, key, start, count) -> (state, metrics, done, failed)``."""
    o = options
    epoch = train._epoch_function(train._step_function(components), batch_size)
    chunk = train.CHUNK
    names = [n for n in train.METRICS if n != "learning_rate" and
             (n != "accuracy" or components.accuracy is not None)]

    def run(state, X, y, key, start, count):
        dtype = jnp.result_type(X, *[leaf for leaf in jax.tree.leaves(state.params)
                                     if jnp.issubdtype(jnp.result_type(leaf), jnp.floating)])
        learning_rate = train._first_learning_rate(state.opt_state)
        rate_dtype = jnp.result_type(learning_rate) if learning_rate is not None else dtype
        if o.buffer == "per-metric":
            buffer = {name: jnp.zeros(chunk, dtype) for name in names}
            if learning_rate is not None:
                buffer["learning_rate"] = jnp.zeros(chunk, rate_dtype)
        elif o.buffer == "stacked":  # one (CHUNK, metrics) buffer, the rate apart (dtype)
            buffer = {"stacked": jnp.zeros((chunk, len(names)), dtype)}
            if learning_rate is not None:
                buffer["learning_rate"] = jnp.zeros(chunk, rate_dtype)
        else:
            buffer = {"stacked": jnp.zeros(len(names), dtype)}

        def write(buffer, done, metrics):
            if o.buffer == "per-metric":
                return {name: buffer[name].at[done].set(metrics[name].astype(buffer[name].dtype))
                        for name in buffer}
            row = jnp.stack([metrics[name].astype(dtype) for name in names])
            if o.buffer == "last":
                return {"stacked": row}
            out = {"stacked": lax.dynamic_update_index_in_dim(buffer["stacked"], row, done, 0)}
            if "learning_rate" in buffer:
                out["learning_rate"] = buffer["learning_rate"].at[done].set(
                    metrics["learning_rate"].astype(rate_dtype))
            return out

        def body(carry):
            current, buffer, done, _ = carry
            params, opt_state, metrics = epoch(current[0], current[1], X, y, key,
                                               start + done)
            buffer = write(buffer, done, metrics)
            if o.finite == "state":
                ok = jnp.isfinite(metrics["loss"]) & train._all_finite((params, opt_state))
            elif o.finite == "state-single":
                ok = jnp.isfinite(metrics["loss"]) & _single_finite_check((params, opt_state))
            elif o.finite == "loss":
                ok = jnp.isfinite(metrics["loss"])
            else:
                ok = jnp.asarray(True)
            new = (params, opt_state, current[0], current[1]) if o.previous else (
                params, opt_state)
            if o.select == "where" and o.finite != "none":
                new = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, current)
            elif o.select == "cond" and o.finite != "none":
                new = lax.cond(ok, lambda: new, lambda: current)
            if o.select == "none":
                return new, buffer, done + 1, ~ok
            return new, buffer, done + ok.astype(done.dtype), ~ok

        current = tuple(state) if o.previous else (state.params, state.opt_state)
        carry = (current, buffer, jnp.zeros((), jnp.int32), jnp.asarray(False))
        if o.loop == "while":
            carry = lax.while_loop(lambda c: (c[2] < count) & ~c[3], body, carry)
        elif o.loop == "fori":
            carry = lax.fori_loop(0, count, lambda i, c: body(c), carry)
        else:
            carry, _ = lax.scan(lambda c, _: (body(c), None), carry, None, length=chunk)
        current, buffer, done, failed = carry
        if o.chunk_check:
            failed = failed | ~_single_finite_check(current[:2])
        if not o.previous:
            current = (*current, None, None)
        return train.RunState(*current), buffer, done, failed

    return run


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _loop_program(options, static, batch_size, dynamic, state, X, y, key, start, count):
    return loop_function(train._combine(dynamic, static), batch_size, options)(
        state, X, y, key, start, count)


def loop_program(options: LoopOptions):
    """``program(static, batch_size, dynamic, state, X, y, key, start, count)``, called
    and lowered as ``train._run_program`` is."""
    return Program(options)


class Program:
    def __init__(self, options):
        self.options = options

    def __call__(self, static, batch_size, dynamic, *args):
        return _loop_program(self.options, static, batch_size, dynamic, *args)

    def lower(self, static, batch_size, dynamic, *args):
        return _loop_program.lower(self.options, static, batch_size, dynamic, *args)


# --- P4 (proposed, not applied): a training loop with fewer kernels -----------------------

P4 = LoopOptions(finite="loss", select="none", previous=False, buffer="stacked",
                 chunk_check=True)

P4_DOC = """\
Each epoch of the shipped loop checks the loss *and* every leaf of the new parameters and
optimizer state (one reduction per leaf), undoes a failed epoch with a ``jnp.where`` on
every leaf of the carried state, carries the state entering the previous epoch too, and
writes each metric into its own buffer. On XLA:CPU every one of those is a kernel of its
own, and each kernel is an LLVM module compiled separately (~15-30 ms each), so they
more than double the kernels of the book model's step. P4 keeps the same results and the
same ``DivergenceError``: the loop checks only the loss each epoch (a scalar it has
anyway) and stops after a non-finite one; it carries only the params and optimizer state,
writes all metrics as one row of one buffer, and checks the final state once, after the
loop, as one reduction. When that check or a loss fails, ``fit`` runs the chunk again
with the shipped, checked loop (compiled only then), which finds the exact epoch and the
last finite state as today: the key schedule makes the replay bit-identical."""

