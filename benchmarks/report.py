"""The Markdown report and the plot of ``python -m benchmarks``, from the figures of the
run that writes them. Nothing here measures anything."""

from __future__ import annotations

import datetime
import os
import platform
import sys

from benchmarks import timing
from benchmarks.compiles import SLOW_MS, slow_programs
from benchmarks.job import EMPTY, EXPERIMENT, NUMPY, WARM
from benchmarks.sklearn_search import BATCH, HIDDEN

# (what, the better direction, the bound): every figure is purenn ÷ the other, or a count.
TARGETS = {
    "epoch_small": ("per epoch, fit ÷ plain JAX, {small}", "≤", 0.7),
    "epoch_large": ("per epoch, fit ÷ plain JAX, {large}", "≤", 0.45),
    "first_fit_cpu": ("fresh process, first fit with validation ÷ plain-JAX script, "
                      "CPU time", "≤", 1.0),
    "slow_programs": ("programs ≥ 50 ms to compile in a first fit", "≤", 4),
    "further_compiles": ("compiles in {further} further fits (other hyperparameters)",
                         "=", 0),
    "job_empty": ("whole job ÷ NumPy, empty compilation cache, wall time", "≤", 0.9),
    "job_warm": ("whole job ÷ NumPy, warm compilation cache, wall time", "≤", 0.5),
}
OPTIONAL = ("flax", "optax", "torch")


def table(header, rows) -> list[str]:
    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows] + [""])


def environment(argv) -> list[str]:
    """Date, command, machine, CPU, load average and versions, as Markdown list lines."""
    import jax
    import numpy as np

    cpu = platform.processor() or "unknown CPU"
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
    installed = []
    for module in OPTIONAL:
        try:
            installed.append(f"{module} {__import__(module).__version__}")
        except ImportError:
            installed.append(f"{module} not installed")
    return [f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
            f"- command: `{' '.join(['python -m benchmarks', *argv])}`",
            f"- machine: {platform.machine()}, {os.cpu_count()} cores, {cpu}",
            f"- load average at the start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}",
            f"- python {platform.python_version()}, jax {jax.__version__} "
            f"({jax.default_backend()}), numpy {np.__version__}; {', '.join(installed)}"]


def _ms(seconds) -> str:
    ms = seconds * 1e3
    return f"{ms:.4f}" if ms < 0.1 else f"{ms:.3f}" if ms < 10 else f"{ms:.1f}"


def measured_targets(results) -> dict:
    """Target name -> the measured figure (None where its section did not run)."""
    figures = dict.fromkeys(TARGETS)
    for key, rows in zip(("epoch_small", "epoch_large"), (results.get("epochs") or {}).values()):
        fit, plain = rows[0], rows[1]  # contenders.CONTENDERS' order
        if fit.per_epoch and plain.per_epoch:
            figures[key] = timing.paired_ratio(fit.per_epoch, plain.per_epoch)
    first = results.get("compiles")
    if first:
        runs = first["runs"]["purenn"]
        figures["first_fit_cpu"] = first["ratios"]["cpu"]
        figures["slow_programs"] = timing.median([len(slow_programs(r["programs"]))
                                                  for r in runs])
        figures["further_compiles"] = max(len(r["further_programs"]) for r in runs)
    whole = results.get("job")
    if whole:
        figures["job_empty"] = whole["ratios"][EMPTY]["wall"]
        figures["job_warm"] = whole["ratios"][WARM]["wall"]
    return figures


def targets_section(results) -> list[str]:
    sizes = list(results.get("epochs") or {}) + ["—", "—"]
    further = (results.get("compiles") or {}).get("further", "—")
    rows = []
    for key, figure in measured_targets(results).items():
        what, sense, bound = TARGETS[key]
        what = what.format(small=sizes[0], large=sizes[1], further=further)
        if figure is None:
            rows.append((what, "not measured in this run", f"{sense} {bound}", "—"))
            continue
        met = figure <= bound if sense == "≤" else figure == bound
        shown = f"{figure:.2f}" if isinstance(bound, float) else f"{figure:g}"
        rows.append((what, shown, f"{sense} {bound}", "met" if met else "missed"))
    return ["## Targets", ""] + table(("target", "measured", "target", ""), rows)


def epochs_section(results) -> list[str]:
    lines = ["## Time per epoch", "",
             "Steady state: each contender is built and compiled before timing (the last "
             "column: plain JAX's lower + compile; purenn's first `fit` call, of one "
             "epoch). The compiled contenders train the same number of epochs per run "
             "(fit with `log_every=100`); the eager ones as many as take about a second. "
             "*purenn fit ÷ this*: the median of the ratios paired within a repetition.",
             ""]
    for size, rows in results["epochs"].items():
        fit = rows[0]
        body = []
        for row in rows:
            if row.skipped:
                body.append((row.name, "—", "—", "—", "—", row.skipped))
                continue
            low, high = min(row.per_epoch), max(row.per_epoch)
            body.append((row.name, _ms(timing.median(row.per_epoch)),
                         f"{_ms(low)} – {_ms(high)}",
                         f"{timing.paired_ratio(fit.per_epoch, row.per_epoch):.2f}",
                         row.epochs, f"{row.setup_seconds:.2f}"
                         if row.setup_seconds is not None else row.note))
        lines += [f"### {size}", ""] + table(
            ("contender", "ms / epoch (median)", "min – max", "purenn fit ÷ this",
             "epochs / run",
             "compile (first call), s / note"), body)
    ops = results.get("ops") or {}
    if ops:
        lines += ["### XLA ops per training step", "",
                  "Operations that do work (fusions, library calls, copies; from "
                  "`.compile().as_text()`): in one compiled step, and in the body of the "
                  "epoch loop of the program `pn.fit` runs (`pn.train.chunk_program`) and "
                  "of plain JAX's `lax.scan`: the kernels the CPU runs every epoch.",
                  ""]
        lines += table(("size", *next(iter(ops.values()))),
                       [(size, *counts.values()) for size, counts in ops.items()])
    return lines


def compiles_section(first) -> list[str]:
    runs = first["runs"]
    last = runs["purenn"][-1]
    rows = []
    for name, reports in runs.items():
        cpu, wall = first["samples"][name]["cpu"], first["samples"][name]["wall"]
        rows.append((name, f"{timing.median(cpu):.2f}", f"{timing.median(wall):.2f}",
                     len(reports[-1]["programs"]),
                     f"{sum(s for _, s in reports[-1]['programs']):.2f}",
                     len(slow_programs(reports[-1]["programs"])),
                     ", ".join(f"{k} {v:.3f}" for k, v in reports[-1]["validation"].items())))
    slow = ", ".join(f"`{name}` {s:.2f} s" for name, s in
                     sorted(slow_programs(last["programs"]), key=lambda p: -p[1]))
    return ["## A first fit in a fresh process", "",
            f"A fresh process makes the spiral data ({first['size']}), builds the model and "
            f"trains {first['epochs']} epochs with validation; CPU and wall time from launch "
            "to the end of that run (start-up and imports included), medians of "
            f"{len(runs['purenn'])}; programs XLA compiled, from `jax.monitoring`, no "
            "persistent cache.", ""] + table(
        ("process", "CPU, s", "wall, s", "programs compiled", "their compile, s",
         f"≥ {SLOW_MS} ms", "validation"), rows) + [
        f"Programs ≥ {SLOW_MS} ms in purenn's last first fit: {slow or 'none'}. "
        f"Then {first['further']} further fits with other L2 strengths, learning rates, "
        f"decays and seeds compiled {len(last['further_programs'])} programs.", ""]


def job_section(whole) -> list[str]:
    rows = []
    for name, figures in whole["samples"].items():
        ratio = whole["ratios"].get(name, {"wall": 1.0, "cpu": 1.0})
        rows.append((name, f"{timing.median(figures['wall']):.2f}",
                     f"{timing.median(figures['cpu']):.2f}", f"{ratio['wall']:.2f}",
                     f"{ratio['cpu']:.2f}", f"`{whole['lines'][name]}`"))
    return ["## The whole job", "",
            f"`python -m purenn book {EXPERIMENT} --quiet` ({whole['epochs']} epochs, then "
            f"validation) against `python -m benchmarks.numpy_job` ({NUMPY}), each a whole "
            "process from launch to exit, interleaved, medians of "
            f"{len(whole['samples'][NUMPY]['wall'])}. Empty cache: a fresh "
            "`XDG_CACHE_HOME` per run; warm: the folder a first run filled "
            f"({whole['cache_bytes'] / 1024:.0f} KiB).", ""] + table(
        ("process", "wall, s", "CPU, s", "÷ NumPy (wall)", "÷ NumPy (CPU)", "last line"),
        rows)


def sklearn_section(search) -> list[str]:
    lines = ["## Model selection with scikit-learn", ""]
    if "skipped" in search:
        return lines + [f"Not measured: {search['skipped']}.", ""]
    rows = []
    for name, row in search["rows"].items():
        walls = row["walls"]
        best = ", ".join(f"{k} {v:g}" for k, v in row["best"].items())
        rows.append((name, f"{walls[0]:.1f}", f"{timing.median(walls[1:] or walls):.1f}",
                     f"{row['cv_accuracy']:.3f}", f"{row['test_accuracy']:.3f}", best,
                     "—" if row["programs"] is None else row["programs"]))
    return lines + [
        f"`GridSearchCV` over {search['settings']} settings (4 learning rates × 2 L2 "
        f"strengths) × {search['folds']} folds, then the refit of the best, on "
        f"scikit-learn's digits ({search['train']} images searched, {search['test']} held "
        f"out): one hidden layer of {HIDDEN} ReLU units, Adam, batches of {BATCH}, "
        f"{search['epochs']} epochs each, float32 for purenn (scikit-learn's MLP runs in "
        "float64). Wall time of the whole search, first and median of the repetitions "
        "after it (purenn's first compiles its programs; with one repetition both are the "
        "first); the best setting's mean cross-validated accuracy and its accuracy on the "
        "held-out images; the training programs purenn compiled in the first search. "
        "See `benchmarks/sklearn_search.py` for how the settings correspond.", ""] + table(
        ("estimator", "search wall, s (first)", "(median after)", "CV accuracy",
         "held-out accuracy", "best setting", "training programs"), rows)


def markdown(results) -> str:
    lines = ["# Benchmarks", "",
             "Generated by `python -m benchmarks`; every figure below comes from the run "
             "described under *Environment*. The model is the book's chapter-14 network: "
             "Dense(2, H, L2 5e-4 on weights and biases) → ReLU → Dense(H, 3) → softmax + "
             "categorical cross-entropy, Adam(0.02, decay 5e-7), full batch, float32. "
             "Contenders are interleaved and ratios are paired within a repetition, so "
             "load from elsewhere cancels out better than in the times themselves.", "",
             "## Environment", "", *results["env"],
             f"- run time {results['elapsed']:.0f} s; load average at the end "
             f"{os.getloadavg()[0]:.1f}", ""]
    lines += targets_section(results)
    if results.get("epochs"):
        lines += epochs_section(results)
    if results.get("plot"):
        lines += [f"![time per epoch and whole job]({os.path.basename(results['plot'])})", ""]
    if results.get("compiles"):
        lines += compiles_section(results["compiles"])
    if results.get("job"):
        lines += job_section(results["job"])
    if results.get("sklearn"):
        lines += sklearn_section(results["sklearn"])
    return "\n".join(lines).rstrip() + "\n"


def _bars(axes, names, groups: dict, ylabel: str, title: str) -> None:
    """Grouped bars: one group per name, one bar per ``groups`` label (its values by name)."""
    width = 0.8 / max(1, len(groups))
    for i, (label, values) in enumerate(groups.items()):
        axes.bar([j + width * i for j in range(len(names))], values, width, label=label)
    axes.set_xticks([j + 0.4 - width / 2 for j in range(len(names))], names, rotation=15)
    axes.set(ylabel=ylabel, title=title)
    axes.legend()


def plot(results, path: str) -> None:
    """Bars: ms per epoch of the measured contenders at each size (log scale), and the
    whole job's wall and CPU seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    epochs = results.get("epochs") or {}
    if epochs:
        names = [row.name for row in next(iter(epochs.values())) if row.per_epoch]
        _bars(left, [name.split(" (")[0] for name in names],
              {size: [timing.median(row.per_epoch) * 1e3 for row in rows if row.per_epoch]
               for size, rows in epochs.items()}, "ms per epoch (median)", "time per epoch")
        left.set_yscale("log")
    whole = results.get("job")
    if whole:
        names = list(whole["samples"])
        _bars(right, [name.replace(" compilation cache", "") for name in names],
              {f"{figure} time": [timing.median(whole["samples"][n][figure]) for n in names]
               for figure in ("wall", "cpu")}, "seconds (median)", "the whole job")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(text: str, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    print(f"wrote {path}", file=sys.stderr)
