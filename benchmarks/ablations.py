"""Where fit's time goes: fit's own compiled training program (``train._run_program``),
called directly, and variants of it with one thing changed at a time (the accuracy metric,
float64, the dense backward as the book writes it, and P4: the loop proposed in
``benchmarks/proposals.py``). Each variant is a contender for ``timing.measure``."""

from __future__ import annotations

import contextlib
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

import purenn as pn
from benchmarks import proposals
from benchmarks.contenders import DECAY, LEARNING_RATE, Contender, Problem, book_model
from purenn import train


class TrainingProgram(Contender):
    """fit's training program — the one compiled loop ``fit`` runs — called back to back
    for ``epochs // CHUNK`` calls of ``CHUNK`` epochs, each call's metrics brought to the
    host (as fit does), without fit's host loop (log lines, history, validation)."""

    compiled = True
    quantum = train.CHUNK

    def __init__(self, problem: Problem, name: str, *, accuracy=True, dtype=jnp.float32,
                 context=None, options: proposals.LoopOptions | None = None):
        self.problem, self.name = problem, name
        self.accuracy, self.dtype = accuracy, jnp.dtype(dtype)
        self.context = context or contextlib.nullcontext
        self.options = options

    def _x64(self):
        return jax.enable_x64(self.dtype == jnp.float64)

    def setup(self):
        return self._setup()

    def _setup(self):
        with self._x64(), self.context():
            p = self.problem
            params = jax.tree.map(lambda a: jnp.asarray(a, self.dtype), p.params)
            self.X, self.y = jnp.asarray(p.X, self.dtype), jnp.asarray(p.y)
            opt = pn.optimizers.adam(learning_rate=LEARNING_RATE, decay=DECAY)
            loss = pn.losses.softmax_categorical_crossentropy
            accuracy = train.default_accuracy(loss) if self.accuracy else None
            components = train._Components(book_model(p.hidden), loss, opt, accuracy, None)
            self.dynamic, static = train._partition(components)
            opt_state = opt.init(params)
            self.state = train.RunState(params, opt_state, params, opt_state)
            self.key = jax.random.key(1)
            if self.options is not None:
                program = proposals.loop_program(self.options)
            elif self.context is not contextlib.nullcontext:
                # A jit of its own: its trace is not shared with (nor reused from) the
                # shipped program's, so the context's change is what gets compiled.
                program = jax.jit(functools.partial(train._run_program.__wrapped__),
                                  static_argnums=(0, 1))
            else:
                program = train._run_program
            start = time.perf_counter()
            self.program = program.lower(static, None, self.dynamic, self.state, self.X,
                                         self.y, self.key, np.int32(0),
                                         np.int32(train.CHUNK)).compile()
            return time.perf_counter() - start

    def run(self, epochs):
        state = self.state
        with self._x64():
            for i in range(epochs // train.CHUNK):
                out = self.program(self.dynamic, state, self.X, self.y, self.key,
                                   np.int32(i * train.CHUNK), np.int32(train.CHUNK))
                state, metrics = out[0], out[1]
                if state.previous_params is None:  # a stand-in that keeps no previous state
                    state = train.RunState(state.params, state.opt_state, state.params,
                                           state.opt_state)
                loss = np.asarray(metrics["loss"] if "loss" in metrics
                                  else metrics["stacked"][:, 0])
                if not np.all(np.isfinite(loss)):
                    raise FloatingPointError(f"{self.name}: the loss became non-finite")
            jax.block_until_ready(state)


def ablation_contenders(problem: Problem, chunk: int):
    from benchmarks.contenders import PurennFit

    return [
        PurennFit(problem, chunk, name=f"pn.fit (log_every={chunk})"),
        TrainingProgram(problem, "fit's training program, called directly"),
        TrainingProgram(problem, "  without the accuracy metric", accuracy=False),
        TrainingProgram(problem, "  float64 (jax_enable_x64)", dtype=jnp.float64),
        TrainingProgram(problem, "  the book's dweights = x.T @ dvalues (before the "
                        "row-major GEMM)", context=proposals.book_dweights),
        TrainingProgram(problem, "  P4: loss-only checks, one final state check (proposed)",
                        options=proposals.P4),
    ]


def count_step_traces(problem: Problem, chunk: int, epochs: int):
    """How often Python runs the model during a warm ``fit`` of ``epochs`` epochs: once
    for the shape check at entry, never per epoch, if the epochs run inside XLA."""
    model = book_model(problem.hidden)
    calls = [0]

    def apply(params, x, **kwargs):
        calls[0] += 1
        return model.apply(params, x, **kwargs)

    counted = pn.layers.custom(model.init, apply, model.penalty)
    opt = pn.optimizers.adam(learning_rate=LEARNING_RATE, decay=DECAY)
    loss = pn.losses.softmax_categorical_crossentropy

    def fit(n):
        pn.fit(counted, loss, opt, problem.params, problem.X, problem.y, key=jax.random.key(1),
               epochs=n, log_every=chunk, log_fn=None, progress=False)

    fit(chunk + 1)  # compiles the training program
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
