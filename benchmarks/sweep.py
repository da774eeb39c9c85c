"""Hyperparameter sweeps, timed: the "Hyperparameter sweeps" section of docs/benchmarks.md.

    python -m benchmarks.sweep                              # measure, print the section
    python -m benchmarks.sweep --out docs/benchmarks.md     # ... and put it in the report
    python -m benchmarks.sweep --quick                      # short runs: a smoke test

Two measurements, each of whole processes started fresh, with an empty compilation cache
(``PURENN_NO_CACHE=1`` and a new ``XDG_CACHE_HOME``): what a user waits for.

1. **A sweep against one run.** ``purenn sweep`` of a 3 × 2 grid (weight L2 × dropout)
   × 2 seeds, 12 runs of 2001 epochs, against one ``purenn train`` run of 2001 epochs of
   the grid's largest model (L2 and dropout), alternating, median of ``--reps``. The runs
   of a sweep share one compiled program, so the sweep costs a run's start-up and compile
   once plus twelve short runs.
2. **A 48-run study.** 4 weight-L2 strengths × 4 dropout rates × 3 seeds, 10,001 epochs
   each: spiral 100×3, the book's chapter-14 model (64 hidden units, bias L2 5e-4),
   Adam(0.02, decay 5e-7). purenn: one ``purenn sweep`` process. NumPy: the book's
   classes (``tests/reference/book.py``, float32 arrays as in the main benchmark) in the
   book's training loop, the same 48 runs one after another in one process, from the
   same data and initial weights, with OpenBLAS's thread count that ran a probe faster
   (1 or the default). Both report the mean final validation accuracy, as a check that
   they trained the same thing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN, END = "<!-- benchmarks.sweep: begin -->", "<!-- benchmarks.sweep: end -->"

GRID_ARGS = ["--weight-l2", "0,5e-4,1e-3", "--dropout", "0,0.1", "--seeds", "2"]
ONE_RUN_ARGS = ["--weight-l2", "5e-4", "--dropout", "0.1"]
STUDY_L2 = (0.0, 1e-4, 5e-4, 1e-3)
STUDY_DROPOUT = (0.0, 0.05, 0.1, 0.2)
STUDY_SEEDS = 3
BOOK = ["--bias-l2", "5e-4", "--learning-rate", "0.02", "--decay", "5e-7"]


def _env(cache: str, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env.update(PURENN_NO_CACHE="1", XDG_CACHE_HOME=cache, **extra)
    return env


def _timed(command: list[str], env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=3600)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return elapsed, result.stdout


def _purenn(*args: str) -> list[str]:
    return [sys.executable, "-m", "purenn", *args]


def sweep_against_one_run(epochs: int, reps: int) -> dict:
    times = {"sweep": [], "train": []}
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(reps):
            order = ("sweep", "train") if rep % 2 == 0 else ("train", "sweep")
            for what in order:
                cache = os.path.join(tmp, f"cache-{what}-{rep}")  # empty every time
                if what == "sweep":
                    command = _purenn("sweep", *GRID_ARGS, "--epochs", str(epochs),
                                      "--out", os.path.join(tmp, f"out-{rep}"), "--quiet")
                else:
                    command = _purenn("train", *ONE_RUN_ARGS, "--epochs", str(epochs),
                                      "--quiet")
                elapsed, _ = _timed(command, _env(cache))
                times[what].append(elapsed)
                print(f"  {what}: {elapsed:.2f} s", file=sys.stderr)
    ratios = [s / t for s, t in zip(times["sweep"], times["train"])]
    return {"epochs": epochs, "reps": reps, "load": load,
            "sweep_s": statistics.median(times["sweep"]),
            "train_s": statistics.median(times["train"]),
            "ratio": statistics.median(ratios)}


# --- the book's NumPy code, 48 runs -------------------------------------------------------


def _numpy_study(epochs: int, seeds: int) -> dict:
    """Runs in a worker process (its OpenBLAS thread count set before NumPy loads)."""
    import jax
    import numpy as np

    from benchmarks.contenders import _book_classes
    from purenn import experiments

    book = _book_classes()
    runs = []  # the data and initial weights first: the timing is the training alone
    for l2, rate, seed in itertools.product(STUDY_L2, STUDY_DROPOUT, range(seeds)):
        config = experiments.Config(weight_l2=l2, bias_l2=5e-4, dropout=rate,
                                    optimizer_args=(("learning_rate", 0.02),
                                                    ("decay", 5e-7)), epochs=epochs)
        k_train, k_val, k_init, _ = experiments.seed_keys(seed)
        with jax.enable_x64(False):
            X, y = (np.array(a) for a in config.make_data(k_train, config.samples))
            X_val, y_val = (np.array(a) for a in config.make_data(k_val, 100))
            params = experiments.components(config)[0].init(k_init)
        runs.append((l2, rate, seed, X, y, X_val, y_val, params[0], params[-1]))
    accuracies = []
    start = time.perf_counter()
    for l2, rate, seed, X, y, X_val, y_val, first, last in runs:
        np.random.seed(seed)
        dense1 = book.Layer_Dense(2, 64, weight_regularizer_l2=l2, bias_regularizer_l2=5e-4)
        dense2 = book.Layer_Dense(64, 3)
        dense1.weights, dense1.biases = (np.array(first[k], np.float32)
                                         for k in ("weights", "biases"))
        dense2.weights, dense2.biases = (np.array(last[k], np.float32)
                                         for k in ("weights", "biases"))
        relu = book.Activation_ReLU()
        dropout = book.Layer_Dropout(rate) if rate else None
        loss_activation = book.Activation_Softmax_Loss_CategoricalCrossentropy()
        optimizer = book.Optimizer_Adam(learning_rate=0.02, decay=5e-7)
        X = X.astype(np.float32)
        for _ in range(epochs):
            dense1.forward(X)
            relu.forward(dense1.output)
            hidden = relu.output
            if dropout is not None:  # the book's mask, drawn in float32 to keep float32
                dropout.forward(hidden, mask=np.random.binomial(
                    1, dropout.rate, size=hidden.shape).astype(np.float32))
                hidden = dropout.output
            dense2.forward(hidden)
            data_loss = loss_activation.forward(dense2.output, y)
            regularization_loss = (loss_activation.loss.regularization_loss(dense1)
                                   + loss_activation.loss.regularization_loss(dense2))
            loss = data_loss + regularization_loss  # noqa: F841 (the book computes it)
            accuracy = np.mean(np.argmax(loss_activation.output, axis=1) == y)  # noqa: F841
            loss_activation.backward(loss_activation.output, y)
            dense2.backward(loss_activation.dinputs)
            if dropout is not None:
                dropout.backward(dense2.dinputs)
                relu.backward(dropout.dinputs)
            else:
                relu.backward(dense2.dinputs)
            dense1.backward(relu.dinputs)
            optimizer.pre_update_params()
            optimizer.update_params(dense1)
            optimizer.update_params(dense2)
            optimizer.post_update_params()
        if dense1.weights.dtype != np.float32:
            raise TypeError(f"the weights became {dense1.weights.dtype}")
        dense1.forward(X_val.astype(np.float32))
        relu.forward(dense1.output)
        dense2.forward(relu.output)
        accuracies.append(float(np.mean(np.argmax(dense2.output, axis=1) == y_val)))
    return {"seconds": time.perf_counter() - start, "val_accuracy": float(np.mean(accuracies)),
            "runs": len(accuracies)}


def _numpy_in_worker(epochs: int, seeds: int, threads: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    if threads is not None:
        env.update(OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads)
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.sweep", "--numpy-worker", str(epochs), str(seeds)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=7200)
    if result.returncode != 0:
        raise RuntimeError(f"the NumPy worker failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.splitlines()[-1])


def _purenn_study(epochs: int, seeds: int, tmp: str, rep: int):
    import csv

    out = os.path.join(tmp, f"study-{rep}")
    command = _purenn("sweep", "--weight-l2", ",".join(map(repr, STUDY_L2)),
                      "--dropout", ",".join(map(repr, STUDY_DROPOUT)),
                      "--seeds", str(seeds), "--epochs", str(epochs), *BOOK,
                      "--out", out, "--quiet")
    seconds, _ = _timed(command, _env(os.path.join(tmp, f"cache-{rep}")))
    with open(os.path.join(out, "runs.csv"), newline="") as file:
        rows = list(csv.DictReader(file))
    return seconds, rows, "purenn sweep " + " ".join(command[4:-3])


def study(epochs: int, seeds: int, reps: int) -> dict:
    probe = max(1, epochs // 20)
    probes = {threads: _numpy_in_worker(probe, 1, threads)["seconds"]
              for threads in ("1", None)}
    threads = min(probes, key=probes.get)
    purenn_s, numpy_s = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(reps):
            for what in (("purenn", "numpy") if rep % 2 == 0 else ("numpy", "purenn")):
                if what == "purenn":
                    seconds, rows, command = _purenn_study(epochs, seeds, tmp, rep)
                    purenn_s.append(seconds)
                else:
                    numpy = _numpy_in_worker(epochs, seeds, threads)
                    seconds = numpy["seconds"]
                    numpy_s.append(seconds)
                print(f"  {what}: {seconds:.1f} s", file=sys.stderr)
    return {"epochs": epochs, "runs": len(rows), "reps": reps,
            "purenn_s": statistics.median(purenn_s),
            "purenn_val_accuracy": statistics.fmean(float(r["val_accuracy"]) for r in rows),
            "numpy_s": statistics.median(numpy_s), "numpy_val_accuracy": numpy["val_accuracy"],
            "ratio": statistics.median(n / p for n, p in zip(numpy_s, purenn_s)),
            "numpy_threads": "1" if threads == "1" else "the default", "command": command}


def report(one: dict, many: dict) -> str:
    import platform

    import jax

    grid = " ".join(GRID_ARGS)
    return "\n".join([
        BEGIN,
        "## Hyperparameter sweeps (`purenn sweep`)",
        "",
        f"Generated by `python -m benchmarks.sweep` ({time.strftime('%Y-%m-%d')}, "
        f"{platform.machine()}, {os.cpu_count()} cores shared with other work: load "
        f"average {one['load']:.1f} at the start, {os.getloadavg()[0]:.1f} at the end; "
        f"jax {jax.__version__} ({jax.default_backend()})). Whole processes started fresh, "
        f"with an empty compilation cache, as a user runs them; float32. The runs of a sweep "
        f"that differ only in hyperparameter values and seeds share one compiled training "
        f"program (the grids below have two structures, with and without the L2 term); on "
        f"a CPU they run one after another.",
        "",
        "| what | wall time, s | ratio |",
        "|---|---|---|",
        f"| `purenn train {' '.join(ONE_RUN_ARGS)} --epochs {one['epochs']}` (1 run) | "
        f"{one['train_s']:.2f} | 1 |",
        f"| `purenn sweep {grid} --epochs {one['epochs']}` (12 runs) | {one['sweep_s']:.2f} | "
        f"{one['ratio']:.2f}× the one run (target ≤ 3×) |",
        f"| `{many['command']}` ({many['runs']} runs of {many['epochs']} epochs) | "
        f"{many['purenn_s']:.1f} | 1 |",
        f"| the book's NumPy code, the same {many['runs']} runs one after another (float32, "
        f"{many['numpy_threads']} OpenBLAS threads; training loops only) | "
        f"{many['numpy_s']:.1f} | {many['ratio']:.2f}× purenn's time |",
        "",
        f"Medians of {one['reps']} alternating repetitions for the first two rows and of "
        f"{many['reps']} for the study (ratios: medians of the paired ratios). purenn's times "
        f"are whole processes (start-up, compiling, data, training, the table and the "
        f"picture); NumPy's are its training loops alone. Mean final validation accuracy "
        f"over the {many['runs']} runs: purenn {many['purenn_val_accuracy']:.3f}, NumPy "
        f"{many['numpy_val_accuracy']:.3f} (same data and initial weights; dropout masks "
        f"from different generators).",
        END,
    ])


def _put_in(path: str, section: str) -> None:
    text = open(path).read() if os.path.exists(path) else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with open(path, "w") as file:
        file.write(text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sweep",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs: a smoke test")
    parser.add_argument("--reps", type=int, default=3,
                        help="repetitions of the sweep against one run (default 3)")
    parser.add_argument("--study-reps", type=int, default=2,
                        help="repetitions of the 48-run study (default 2)")
    parser.add_argument("--out", help="put the section into this Markdown report")
    parser.add_argument("--numpy-worker", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.numpy_worker:
        print(json.dumps(_numpy_study(*args.numpy_worker)))
        return 0
    epochs, study_epochs, seeds = (201, 101, 1) if args.quick else (2001, 10001, STUDY_SEEDS)
    print("a sweep against one run:", file=sys.stderr)
    one = sweep_against_one_run(epochs, 1 if args.quick else args.reps)
    print("the 48-run study:", file=sys.stderr)
    many = study(study_epochs, seeds, 1 if args.quick else args.study_reps)
    section = report(one, many)
    print(section)
    if args.out:
        _put_in(args.out, section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
