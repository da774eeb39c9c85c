"""Where XLA:CPU's compile of the book model's training program goes, and what cuts it.

The program is ``train._run_program``, the one compiled loop ``fit`` runs for the book's
chapter-14 model (300 samples, 64 hidden units, Adam, full batch, float32). Each variant
changes one thing: the dense backward (``lax.platform_dependent``, the optimization
barriers), the per-epoch checks and the undoing of a failed epoch, the metrics buffer, the
loop (``while_loop``, ``fori_loop``, ``scan``), XLA flags; and P4, the change proposed in
``benchmarks/proposals.py``. For each: trace + lower time, XLA compile time (wall and this
process's CPU time, which a busy machine inflates less), the number of XLA:CPU kernels in
the compiled program (fusions XLA emits itself; each is an LLVM module compiled on its
own; library calls such as YNNPACK's dots are counted apart), and the time per epoch of
the compiled program against the shipped one (paired, interleaved).
"""

from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass, field

import jax
import numpy as np

import purenn as pn
from benchmarks import proposals
from benchmarks.contenders import DECAY, LEARNING_RATE, book_model, make_problem
from purenn import train

XLA_FLAGS = {
    "O0": {"xla_backend_optimization_level": 0},
    "O1": {"xla_backend_optimization_level": 1},
    "no expensive LLVM passes": {"xla_llvm_disable_expensive_passes": True},
    "no new fusion emitters": {"xla_cpu_use_fusion_emitters": False},
}


@dataclass
class Variant:
    group: str
    name: str
    options: proposals.LoopOptions | None = None  # None: the shipped train._run_program
    dense: str | None = None  # proposals.dense_backward kind
    flags: dict = field(default_factory=dict)  # XLA compiler options
    lower_ms: list = field(default_factory=list)
    compile_ms: list = field(default_factory=list)
    compile_cpu_ms: list = field(default_factory=list)
    per_epoch: list = field(default_factory=list)
    kernels: int = 0
    library_calls: int = 0
    executable: object = None

    def median(self, name):
        values = getattr(self, name)
        return statistics.median(values) if values else None


def variants(quick: bool = False) -> list[Variant]:
    L = proposals.LoopOptions
    rows = [Variant("shipped", "train._run_program as shipped")]
    if quick:
        return rows + [Variant("proposed", "P4 (proposals.P4)", options=proposals.P4)]
    rows += [
        Variant("check", "stand-in with the shipped options (must match)", options=L()),
        Variant("dense", "dense: only the CPU rule, no platform_dependent", dense="cpu-only"),
        Variant("dense", "dense: no optimization barriers", dense="no-barriers"),
        Variant("dense", "dense: the book's x.T @ dvalues", dense="book"),
        Variant("checks", "per-epoch check: loss + state as one reduction",
                options=L(finite="state-single")),
        Variant("checks", "per-epoch check: loss only", options=L(finite="loss")),
        Variant("checks", "no per-epoch check, no undo", options=L(finite="none")),
        Variant("undo", "undo a failed epoch with one lax.cond", options=L(select="cond")),
        Variant("undo", "no previous state carried", options=L(previous=False)),
        Variant("metrics", "metrics: one stacked buffer", options=L(buffer="stacked")),
        Variant("metrics", "metrics: last epoch only (no buffer)", options=L(buffer="last")),
        Variant("loop", "fori_loop over the traced count", options=L(loop="fori")),
        Variant("loop", "lax.scan of CHUNK epochs", options=L(loop="scan")),
        Variant("loop", "no checks, no undo, no previous, no buffer (the bare loop)",
                options=L(finite="none", previous=False, buffer="last")),
    ]
    rows += [Variant("XLA flags", f"XLA: {name}", flags=flags) for name, flags in
             XLA_FLAGS.items()]
    rows.append(Variant("proposed", "P4 (proposals.P4)", options=proposals.P4))
    return rows


def count_kernels(executable) -> tuple[int, int]:
    """``(kernels, library calls)`` of a compiled CPU program: fusions XLA emits code for
    (one LLVM module each, identical ones reused) and fusions handed to a library."""
    text = executable.as_text()
    kernels = library = 0
    for line in re.findall(r"^\s*%\S+ = .*? fusion\(.*$", text, re.M):
        if "__ynn_fusion" in line or "__xnn_fusion" in line or "kind=kCustom" in line:
            library += 1
        else:
            kernels += 1
    return kernels, library


class BookProgram:
    """The arguments of the book model's training program, and how to lower it."""

    def __init__(self, samples=300, hidden=64):
        self.problem = p = make_problem(samples, hidden)
        model = book_model(hidden)
        loss = pn.losses.softmax_categorical_crossentropy
        opt = pn.optimizers.adam(learning_rate=LEARNING_RATE, decay=DECAY)
        components = train._Components(model, loss, opt, train.default_accuracy(loss), None)
        self.dynamic, self.static = train._partition(components)
        opt_state = opt.init(p.params)
        self.state = train.RunState(p.params, opt_state, p.params, opt_state)
        self.key = jax.random.key(1)

    def arguments(self, start=0, count=train.CHUNK):
        return (self.dynamic, self.state, self.problem.X, self.problem.y, self.key,
                np.int32(start), np.int32(count))

    def lower(self, variant: Variant):
        program = (train._run_program if variant.options is None
                   else proposals.loop_program(variant.options))
        with (proposals.dense_backward(variant.dense) if variant.dense
              else _nothing()):
            return program.lower(self.static, None, *self.arguments())


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def measure_compile(rows: list[Variant], book: BookProgram, reps: int, log=None):
    """Trace + lower and compile every variant ``reps`` times, interleaved, each after
    ``jax.clear_caches()``."""
    for rep in range(reps):
        order = rows[rep % len(rows):] + rows[:rep % len(rows)]
        for v in order:
            jax.clear_caches()
            start = time.perf_counter()
            lowered = book.lower(v)
            v.lower_ms.append((time.perf_counter() - start) * 1e3)
            wall, cpu = time.perf_counter(), time.process_time()
            v.executable = lowered.compile(compiler_options=v.flags or None)
            v.compile_ms.append((time.perf_counter() - wall) * 1e3)
            v.compile_cpu_ms.append((time.process_time() - cpu) * 1e3)
            v.kernels, v.library_calls = count_kernels(v.executable)
        if log is not None:
            log(f"    compile rep {rep + 1}/{reps} done")


def measure_runtime(rows: list[Variant], book: BookProgram, reps: int, calls: int):
    """Seconds per epoch of each compiled variant: ``calls`` calls of CHUNK epochs,
    metrics to the host after each (as fit does), interleaved over ``reps`` rounds."""
    args = book.arguments()
    for v in rows:  # warm up
        jax.block_until_ready(v.executable(*args))
    for rep in range(reps):
        order = rows[rep % len(rows):] + rows[:rep % len(rows)]
        for v in order:
            start = time.perf_counter()
            for _ in range(calls):
                out = v.executable(*args)
                np.asarray(out[2])  # done: waits for the chunk, as fit's host loop does
            v.per_epoch.append((time.perf_counter() - start) / (calls * train.CHUNK))


def paired(v: Variant, base: Variant) -> float:
    return statistics.median(a / b for a, b in zip(v.per_epoch, base.per_epoch))


def evaluation_compile(book: BookProgram, reps: int) -> tuple[float, float, int]:
    """Median (wall ms, CPU ms) and kernels of the evaluation program ``fit`` and
    ``pn.evaluate`` compile for the book model."""
    model = book_model(book.problem.hidden)
    loss = pn.losses.softmax_categorical_crossentropy
    dynamic, static = train._partition((model, loss, train.default_accuracy(loss)))
    walls, cpus, kernels = [], [], 0
    for _ in range(reps):
        jax.clear_caches()
        lowered = train._evaluate_program.lower(static, dynamic, book.problem.params,
                                                book.problem.X, book.problem.y)
        wall, cpu = time.perf_counter(), time.process_time()
        executable = lowered.compile()
        walls.append((time.perf_counter() - wall) * 1e3)
        cpus.append((time.process_time() - cpu) * 1e3)
        kernels = count_kernels(executable)[0]
    return statistics.median(walls), statistics.median(cpus), kernels


def run(reps: int = 3, quick: bool = False, log=print):
    """Measure every variant; returns ``(rows, evaluation)``."""
    book = BookProgram(*((30, 8) if quick else (300, 64)))
    rows = variants(quick)
    measure_compile(rows, book, reps, log=log)
    measure_runtime(rows, book, reps=max(reps, 3), calls=2 if quick else 50)
    evaluation = evaluation_compile(book, reps)
    return rows, evaluation


# --- the eager programs a first run compiles before fit's training program ---------------


def _spiral_op_by_op(key, samples, classes):
    """``pn.data.spiral`` as its operations run one by one (each eager op compiles a small
    program of its own): what ``purenn.data`` did before its generators were jitted."""
    import jax.numpy as jnp

    dtype = jnp.float32
    radius = jnp.tile(jnp.linspace(0.0, 1.0, samples, dtype=dtype), classes)
    starts = jnp.linspace(0.0, 4.0, samples, dtype=dtype)
    angle = (4.0 * jnp.arange(classes, dtype=dtype)[:, None] + starts[None, :]).reshape(-1)
    angle = angle + 0.2 * jax.random.normal(key, (samples * classes,), dtype)
    X = jnp.stack([radius * jnp.sin(2.5 * angle), radius * jnp.cos(2.5 * angle)], axis=1)
    return X, jnp.repeat(jnp.arange(classes, dtype=jnp.int32), samples)


def _jitted(function, tree_argument):
    """``function(tree, *rest)`` jitted with ``tree``'s numeric leaves as arguments."""
    import functools

    @functools.partial(jax.jit, static_argnums=0)
    def program(static, dynamic, *rest):
        return function(train._combine(dynamic, static), *rest)

    def call(tree, *rest):
        dynamic, static = train._partition(tree)
        return program(static, dynamic, *rest)

    return call


def _same_bits(a, b) -> bool:
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return (jax.tree.structure(a) == jax.tree.structure(b) and len(la) == len(lb) and all(
        np.array_equal(np.asarray(x), np.asarray(y)) and x.dtype == y.dtype
        for x, y in zip(la, lb)))


def eager_setup(reps: int = 3) -> list[tuple]:
    """What a fresh ``purenn book regularization`` compiles before its training program,
    piece by piece, each after ``jax.clear_caches()``: rows ``(what, how, programs
    compiled, their XLA compile seconds (sum of wall), CPU ms of the call, same bits as
    shipped)``. The jitted forms of ``model.init`` and ``optimizer.init`` are candidates
    (not in purenn); the op-by-op spiral is purenn before its data generators were
    jitted."""
    from jax import monitoring

    from purenn import experiments

    compiles = []

    def listener(event, seconds, **_):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(seconds)

    monitoring.register_event_duration_secs_listener(listener)
    model = book_model(64)
    opt = pn.optimizers.adam(learning_rate=LEARNING_RATE, decay=DECAY)
    params = model.init(jax.random.key(3))
    k = jax.random.key(7)
    jobs = [
        ("the seed's keys (split in 4)", "as shipped (experiments.seed_keys)",
         lambda: experiments.seed_keys(0), None),
        ("spiral 100×3", "as shipped (pn.data.spiral)",
         lambda: pn.data.spiral(k, 100, 3), None),
        ("spiral 100×3", "op by op (purenn before)", lambda: _spiral_op_by_op(k, 100, 3),
         lambda: pn.data.spiral(k, 100, 3)),
        ("model.init", "as shipped", lambda: model.init(k), None),
        ("model.init", "jitted (not in purenn)",
         lambda: _jitted(lambda m, key: m.init(key), model)(model, k), lambda: model.init(k)),
        ("optimizer.init", "as shipped (eager, inside pn.fit)", lambda: opt.init(params),
         None),
        ("optimizer.init", "jitted (not in purenn)",
         lambda: _jitted(lambda o, p: o.init(p), opt)(opt, params), lambda: opt.init(params)),
    ]
    rows = []
    try:
        for what, how, job, shipped in jobs:
            counts, seconds, cpus = [], [], []
            for _ in range(reps):
                jax.clear_caches()
                compiles.clear()
                cpu = time.process_time()
                result = jax.block_until_ready(job())
                cpus.append((time.process_time() - cpu) * 1e3)
                counts.append(len(compiles))
                seconds.append(sum(compiles))
            same = None if shipped is None else _same_bits(result, shipped())
            rows.append((what, how, max(counts), statistics.median(seconds),
                         statistics.median(cpus), same))
    finally:
        monitoring.unregister_event_duration_listener(listener)
    return rows
