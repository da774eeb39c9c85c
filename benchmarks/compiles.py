"""What a first fit compiles, in a fresh process, and the XLA ops of one training step.

``first_fit`` launches two fresh processes per repetition, interleaved: **purenn** makes
the spiral data (training and validation), builds the book's chapter-14 model and runs a
first ``pn.fit`` with validation, then further fits with other hyperparameter values (L2
strengths, learning rate, decay) and seeds, which should compile nothing; **plain JAX**
does the same first run with ``benchmarks.plain_jax`` (the book's NumPy ``spiral_data``,
one ``lax.scan``, a validation pass), importing no purenn. Each child reports the
programs XLA compiled (from ``jax.monitoring``; no persistent cache) and its CPU and wall
time from launch to the end of the first run, start-up and imports included.

``xla_ops`` counts the operations of a compiled step (``pn.train_step(...).lower(...)
.compile().as_text()``, and ``plain_jax.step``'s), ``loop_ops`` those of the epoch loop's
body (``pn.train.chunk_program``, the program ``pn.fit`` runs, and ``plain_jax.train``'s
``lax.scan``): kernels the CPU runs every epoch.

    python -m benchmarks.compiles purenn|jax --epochs N --further K --samples S --hidden H
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time

from benchmarks import job, timing

SLOW_MS = 50  # a program that takes this long or more to compile counts as a slow one
# Instructions of a compiled program's entry that launch no work of their own.
_NO_WORK = ("parameter", "constant", "get-tuple-element", "tuple", "bitcast")


def _purenn_runs(epochs, further, samples, hidden):
    """The purenn child: the first fit with validation, then ``further`` fits."""
    import jax

    import purenn as pn
    from purenn.experiments import seed_keys

    def run(seed, l2, rate, decay):
        k_train, k_val, k_init, k_fit = seed_keys(seed)
        X, y = pn.data.spiral(k_train, samples, 3)
        validation = pn.data.spiral(k_val, samples, 3)
        model = pn.serial(pn.dense(2, hidden, weight_l2=l2, bias_l2=l2), pn.relu(),
                          pn.dense(hidden, 3))
        optimizer = pn.optimizers.adam(learning_rate=rate, decay=decay)
        _, _, history = pn.fit(model, pn.losses.softmax_categorical_crossentropy, optimizer,
                               model.init(k_init), X, y, key=k_fit, epochs=epochs,
                               validation_data=validation, log_fn=None, progress=False)
        return jax.block_until_ready(history["validation"])

    yield run(0, 5e-4, 0.02, 5e-7)
    for i in range(further):
        run(i + 1, 1e-4 * (i + 1), 0.01 + 0.005 * i, 1e-7 * (i + 1))
    yield None


def _plain_jax_runs(epochs, samples, hidden):
    """The plain-JAX child: the same first run."""
    import jax
    import numpy as np

    from benchmarks import numpy_job, plain_jax

    np.random.seed(0)
    X, y = numpy_job.spiral_data(samples, 3, np.float32)
    X_val, y_val = numpy_job.spiral_data(samples, 3, np.float32)
    params = plain_jax.init_params(jax.random.key(0), hidden)
    params, _ = plain_jax.train(params, X, y.astype(np.int32), epochs=epochs)
    yield jax.block_until_ready(plain_jax.evaluate(params, X_val, y_val.astype(np.int32)))


def child(argv=None) -> dict:
    """Run one child's work in this process; returns what ``main`` prints."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compiles")
    parser.add_argument("kind", choices=("purenn", "jax"))
    parser.add_argument("--epochs", type=int, default=1001)
    parser.add_argument("--further", type=int, default=15)
    parser.add_argument("--samples", type=int, default=100, help="per class")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--launched", type=float, default=None, help="time.time() at launch")
    args = parser.parse_args(argv)
    with timing.compile_log() as programs:
        runs = (_purenn_runs(args.epochs, args.further, args.samples, args.hidden)
                if args.kind == "purenn" else _plain_jax_runs(args.epochs, args.samples,
                                                              args.hidden))
        validation = next(runs)
        cpu, now = time.process_time(), time.time()
        first = list(programs)
        next(runs, None)  # the further fits, if any
    return {"programs": first, "cpu": cpu, "wall": now - (args.launched or now),
            "further_programs": programs[len(first):],
            "validation": {k: float(v) for k, v in validation.items() if k != "epoch"}}


def first_fit(reps: int, *, epochs: int, further: int, samples: int, hidden: int,
              log=print) -> dict:
    """``reps`` interleaved pairs of fresh processes (see the module's docstring).
    Returns ``samples`` (``"purenn"``/``"plain JAX"`` -> ``{"cpu", "wall"}`` lists),
    ``runs`` (each child's report, by name), the paired ``ratios`` purenn ÷ plain JAX,
    and the arguments."""
    reports: dict[str, list] = {"purenn": [], "plain JAX": []}

    def launcher(name, kind):
        def call():
            command = [sys.executable, "-m", "benchmarks.compiles", kind, "--epochs",
                       str(epochs), "--further", str(further), "--samples", str(samples),
                       "--hidden", str(hidden), "--launched", repr(time.time())]
            out = job.run_process(command, job.clean_env())["stdout"]
            reports[name].append(json.loads(out.strip().splitlines()[-1]))
            return {"cpu": reports[name][-1]["cpu"], "wall": reports[name][-1]["wall"]}
        return call

    measured = timing.interleave({"purenn": launcher("purenn", "purenn"),
                                  "plain JAX": launcher("plain JAX", "jax")}, reps, log=log)
    ratios = {figure: timing.paired_ratio(measured["purenn"][figure],
                                          measured["plain JAX"][figure])
              for figure in ("cpu", "wall")}
    return {"samples": measured, "runs": reports, "ratios": ratios, "epochs": epochs,
            "further": further, "size": f"{3 * samples}×{hidden}"}


def slow_programs(programs: list) -> list:
    """The ``(name, seconds)`` that took ``SLOW_MS`` or more to compile."""
    return [(name, s) for name, s in programs if s * 1e3 >= SLOW_MS]


def _computation(compiled_text: str, header: str) -> str:
    """The text of the computation whose first line starts with ``header``."""
    start = compiled_text.index(header)
    return compiled_text[start:compiled_text.index("\n}", start)]


def _work(computation: str) -> int:
    kinds = re.findall(r"^\s*(?:ROOT )?%\S+ = .*? ([a-z][a-z0-9-]*)\(", computation, re.M)
    return sum(1 for kind in kinds if kind not in _NO_WORK)


def xla_ops(compiled_text: str) -> int:
    """Operations in the entry computation of a compiled program's text that do work
    (fusions, copies, library calls, loops), i.e. the kernels one call runs at least."""
    return _work(_computation(compiled_text, "\nENTRY"))


def loop_ops(compiled_text: str) -> int:
    """Operations that do work in the body of the largest loop of a compiled program's
    entry (its epoch loop): the kernels each epoch runs."""
    bodies = re.findall(r" while\(.*?body=%([\w.-]+)",
                        _computation(compiled_text, "\nENTRY"))
    return max(_work(_computation(compiled_text, f"\n%{body} ")) for body in bodies)


def step_ops(samples: int, hidden: int) -> dict:
    """XLA ops of one compiled training step at ``samples × hidden``: ``pn.train_step``
    of the book model, and plain JAX's epoch."""
    import jax
    import jax.numpy as jnp

    import purenn as pn
    from benchmarks import contenders, plain_jax

    problem = contenders.make_problem(samples, hidden)
    optimizer = contenders.book_optimizer()
    step = pn.train_step(contenders.book_model(hidden),
                         pn.losses.softmax_categorical_crossentropy, optimizer)
    text = step.lower(problem.params, optimizer.init(problem.params), problem.X, problem.y,
                      jax.random.key(1)).compile().as_text()
    params = tuple(jnp.asarray(a) for a in problem.arrays)
    plain = plain_jax.step.lower((params, plain_jax.init_adam(params)), problem.X,
                                 problem.y).compile().as_text()
    loss = pn.losses.softmax_categorical_crossentropy
    components = pn.train.Components(contenders.book_model(hidden), loss, optimizer,
                                     pn.train.default_accuracy(loss), None)
    count = jnp.asarray(1, jnp.int32)  # the chunk's first epoch and length (traced)
    loop = pn.train.chunk_program(components, None).lower(
        problem.params, optimizer.init(problem.params), problem.X, problem.y,
        jax.random.key(1), count, count).compile().as_text()
    plain_loop = plain_jax.train.lower(params, problem.X, problem.y,
                                       epochs=2).compile().as_text()
    return {"purenn train_step": xla_ops(text), "plain JAX step": xla_ops(plain),
            "purenn fit's epoch loop": loop_ops(loop),
            "plain JAX lax.scan loop": loop_ops(plain_loop)}


if __name__ == "__main__":
    print(json.dumps(child()))
