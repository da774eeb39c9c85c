"""Where fit's time goes: fit's own compiled chunk program, called directly, and variants
of it with one thing changed at a time (metrics, chunk length, dtype, and the dense
backward as the book writes it: purenn before its row-major ``dweights``). Each variant
is a contender for ``timing.measure``."""

from __future__ import annotations

import contextlib
import time

import jax
import jax.numpy as jnp
import numpy as np

import purenn as pn
from benchmarks import proposals
from benchmarks.contenders import DECAY, LEARNING_RATE, Contender, Problem, book_model
from purenn import train


class ChunkProgram(Contender):
    """``train._chunk_runner`` — the program ``fit`` runs — called back to back for
    ``epochs // length`` chunks, metrics brought to the host after each, without fit's
    host loop (validation, history, log lines)."""

    compiled = True

    def __init__(self, problem: Problem, length: int, name: str, *, accuracy=True,
                 dtype=jnp.float32, context=None):
        self.problem, self.quantum, self.name = problem, length, name
        self.accuracy, self.dtype = accuracy, jnp.dtype(dtype)
        self.context = context or contextlib.nullcontext

    def _x64(self):
        return jax.enable_x64(self.dtype == jnp.float64)

    def setup(self):
        with self._x64(), self.context():
            p = self.problem
            model = book_model(p.hidden)
            self.params = jax.tree.map(lambda a: jnp.asarray(a, self.dtype), p.params)
            self.X = jnp.asarray(p.X, self.dtype)
            self.y = jnp.asarray(p.y)
            opt = pn.optimizers.adam(learning_rate=LEARNING_RATE, decay=DECAY)
            loss = pn.losses.softmax_categorical_crossentropy
            accuracy = train.default_accuracy(loss) if self.accuracy else None
            run, self.extra = proposals.fit_program(model, loss, opt, accuracy, p.samples,
                                                    self.quantum, cached=False)
            self.state = opt.init(self.params)
            self.key = jax.random.key(1)
            start = time.perf_counter()
            self.program = run.lower(self.params, self.state, self.X, self.y, self.key,
                                     0, *self.extra).compile()
            return time.perf_counter() - start

    def run(self, epochs):
        params, state = self.params, self.state
        with self._x64():
            for i in range(epochs // self.quantum):
                # (params, opt_state, metrics, ...): later versions of train add outputs
                params, state, metrics = self.program(params, state, self.X, self.y, self.key,
                                                      i * self.quantum, *self.extra)[:3]
                metrics = {k: np.asarray(v) for k, v in metrics.items()}
                if not np.all(np.isfinite(metrics["loss"])):
                    raise FloatingPointError(f"{self.name}: the loss became non-finite")
            jax.block_until_ready(params)


def ablation_contenders(problem: Problem, chunk: int):
    from benchmarks.contenders import PurennFit

    long = chunk * 10
    return [
        PurennFit(problem, chunk, name=f"pn.fit (log_every={chunk})"),
        ChunkProgram(problem, chunk, f"fit's chunk program ({chunk} epochs), called directly"),
        ChunkProgram(problem, chunk, "  without the accuracy metric", accuracy=False),
        ChunkProgram(problem, long, f"  chunks of {long} epochs"),
        ChunkProgram(problem, chunk, "  float64 (jax_enable_x64)", dtype=jnp.float64),
        ChunkProgram(problem, chunk, "  the book's dweights = x.T @ dvalues (before the "
                     "row-major GEMM)", context=proposals.book_dweights),
    ]


def count_step_traces(problem: Problem, chunk: int, epochs: int):
    """How often Python runs the model during a warm ``fit`` of ``epochs`` epochs: once
    for the shape check at entry, never per epoch, if the epochs run inside XLA."""
    model = book_model(problem.hidden)
    calls = [0]

    def apply(params, x, **kwargs):
        calls[0] += 1
        return model.apply(params, x, **kwargs)

    counted = pn.Layer(model.init, apply, model.penalty)
    opt = pn.optimizers.adam(learning_rate=LEARNING_RATE, decay=DECAY)
    loss = pn.losses.softmax_categorical_crossentropy

    def fit(n):
        pn.fit(counted, loss, opt, problem.params, problem.X, problem.y, key=jax.random.key(1),
               epochs=n, log_every=chunk, log_fn=None, progress=False)

    fit(chunk + 1)  # compiles chunks of length 1 and `chunk`
    calls[0] = 0
    fit(epochs)
    return calls[0]


def fit_call_overhead(problem: Problem, chunk: int, reps: int) -> float:
    """Median seconds of a warm ``pn.fit(epochs=1)``: the fixed cost of one call."""
    model = book_model(problem.hidden)
    opt = pn.optimizers.adam(learning_rate=LEARNING_RATE, decay=DECAY)
    loss = pn.losses.softmax_categorical_crossentropy

    def fit():
        params, _, _ = pn.fit(model, loss, opt, problem.params, problem.X, problem.y,
                              key=jax.random.key(1), epochs=1, log_every=chunk, log_fn=None,
                              progress=False)
        jax.block_until_ready(params)

    fit()
    times = []
    for _ in range(max(reps, 5)):
        start = time.perf_counter()
        fit()
        times.append(time.perf_counter() - start)
    return float(np.median(times))
