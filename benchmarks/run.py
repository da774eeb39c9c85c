"""``python -m benchmarks``: purenn against plain JAX autodiff, the book's NumPy code and,
when installed, Flax+Optax and PyTorch — measured side by side.

    python -m benchmarks                      # everything (~15-20 minutes on 2 busy cores)
    python -m benchmarks --quick              # tiny sizes, short runs: a smoke test
    python -m benchmarks --out docs/benchmarks.md --plot docs/benchmarks.png
    python -m benchmarks --job                # only the whole job: the CLI against NumPy
    python -m benchmarks --compile            # only where the training program's compile goes
    python -m benchmarks --device gpu         # large-MLP TFLOP/s on a GPU

For a fair NumPy number, run it with OpenBLAS's own kernel choice:
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks`` (the report says
which kernel ran). Rows are printed as they are measured; the report is written at the end.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time

TARGETS = {
    "fit_vs_plain_small": 0.6,  # per epoch, purenn fit ÷ plain JAX, 300×64
    "fit_vs_plain_large": 0.4,  # the same at 3000×512
    "numpy_vs_fit_small": 6.0,
    "numpy_vs_fit_large": 4.0,
    "first_fit_compile_s": 0.5,  # XLA compile of the book model's first fit (all programs)
    "job_empty": 0.9,  # whole job, purenn ÷ NumPy, empty compilation cache
    "job_warm": 0.5,  # the same with a warm cache
    "seeds_speedup": 1.5,
}


def _parser():
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and short runs: checks that everything runs")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                        help="cpu: the book-model comparison (default); gpu: a large MLP's "
                             "train step in TFLOP/s")
    parser.add_argument("--out", default=None, help="write the Markdown report here")
    parser.add_argument("--plot", default=None, help="write the PNG plot here")
    parser.add_argument("--reps", type=int, default=5,
                        help="timed repetitions per contender (median reported; >= 5)")
    parser.add_argument("--target-seconds", type=float, default=None,
                        help="length of one timed run (default 0.25 s; 0.01 s with --quick)")
    parser.add_argument("--no-sweep", action="store_true", help="skip the size sweeps")
    parser.add_argument("--no-extras", action="store_true",
                        help="skip the whole job, compile analysis, seeds and ablations")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--job", action="store_true",
                      help="only the whole-job benchmark: `python -m purenn book "
                           "regularization --quiet` against the book's NumPy code, as "
                           "processes, with an empty and a warm compilation cache")
    only.add_argument("--compile", action="store_true",
                      help="only the compile analysis of the book model's training program")
    parser.add_argument("--job-reps", type=int, default=None,
                        help="repetitions of the whole job (default 5; 1 with --quick)")
    return parser


class Report:
    """Collects Markdown lines and echoes table rows to stdout as they come."""

    def __init__(self):
        self.lines: list[str] = []

    def md(self, text=""):
        self.lines.append(text)

    def say(self, text):
        print(text, flush=True)

    def table(self, header, rows):
        self.md("| " + " | ".join(header) + " |")
        self.md("|" + "|".join("---" for _ in header) + "|")
        for row in rows:
            self.md("| " + " | ".join(str(c) for c in row) + " |")
        self.md()


def _ms(seconds):
    if seconds is None:
        return "—"
    ms = seconds * 1e3
    return f"{ms:.4f}" if ms < 0.1 else f"{ms:.3f}" if ms < 10 else f"{ms:.1f}"


def _size(samples, hidden):
    return f"{samples}×{hidden}"


def environment_lines():
    import jax
    import numpy as np

    lines = [f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
             f"- command: `python -m benchmarks {' '.join(sys.argv[1:])}`".replace(
                 "python -m benchmarks ", "python -m benchmarks ").rstrip(),
             f"- machine: {platform.machine()}, {os.cpu_count()} cores "
             f"({_cpu_model()}), load average at start {os.getloadavg()[0]:.1f}",
             f"- python {platform.python_version()}, jax {jax.__version__} "
             f"({jax.default_backend()}), numpy {np.__version__}"]
    try:
        import threadpoolctl

        blas = [f"{i['internal_api']} {i.get('version')} kernel {i.get('architecture')}, "
                f"{i['num_threads']} threads" for i in threadpoolctl.threadpool_info()
                if i["user_api"] == "blas"]
        lines.append(f"- NumPy BLAS: {'; '.join(blas) or 'unknown'}")
    except ImportError:
        lines.append("- NumPy BLAS: unknown (pip install threadpoolctl to report it)")
    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                      "OMP_NUM_THREADS", "XLA_FLAGS") if k in os.environ}
    unset = "no OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE / OMP_NUM_THREADS / XLA_FLAGS set"
    lines.append(f"- environment: {env or unset}")
    for module in ("flax", "optax", "torch"):
        try:
            mod = __import__(module)
            extra = ""
            if module == "torch":
                extra = f", {mod.get_num_threads()} threads"
            lines.append(f"- {module} {mod.__version__}{extra}")
        except ImportError:
            lines.append(f"- {module}: not installed (its rows are skipped; "
                         f"`pip install -e .[bench]`)")
    return lines


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


# --- the main comparison ----------------------------------------------------------------


def contenders_for(problem, chunk, *, numpy64):
    from benchmarks.contenders import (
        BookNumpy,
        FlaxOptax,
        PlainJax,
        PurennFit,
        TorchEager,
    )

    contenders = [
        PurennFit(problem, chunk),  # purenn as shipped
        PlainJax(problem, chunk),
        FlaxOptax(problem, chunk),
        BookNumpy(problem, "float32"),
    ]
    if numpy64:
        contenders.append(BookNumpy(problem, "float64"))
    contenders.append(TorchEager(problem))
    return contenders


def compare_size(report, samples, hidden, args, *, numpy64):
    from benchmarks.contenders import make_problem
    from benchmarks.timing import measure, paired_ratio

    problem = make_problem(samples, hidden)
    report.say(f"== {_size(samples, hidden)} (spiral {samples // 3}×3, hidden {hidden})")
    results = measure(contenders_for(problem, args.chunk, numpy64=numpy64), reps=args.reps,
                      target_seconds=args.target_seconds)
    fit = results[0]
    for r in results:
        if r.skipped:
            report.say(f"  {_size(samples, hidden)}  {r.name:34s} skipped: {r.skipped}")
            continue
        ratio = paired_ratio(r, fit)
        report.say(f"  {_size(samples, hidden)}  {r.name:34s} {_ms(r.median):>9s} ms/epoch  "
                   f"×{ratio:.2f} of purenn fit  (min {_ms(r.spread[0])}, "
                   f"max {_ms(r.spread[1])}, {r.epochs} epochs/run)"
                   + (f"  [{r.note}]" if r.note else ""))
    return results


def size_table(report, samples, hidden, results):
    from benchmarks.timing import paired_ratio

    fit = results[0]
    rows = []
    for r in results:
        if r.skipped:
            rows.append((r.name, "skipped", "", "", "", r.skipped))
            continue
        ratio = paired_ratio(r, fit)
        rows.append((r.name, _ms(r.median), f"{_ms(r.spread[0])} – {_ms(r.spread[1])}",
                     f"{ratio:.2f}", f"{1 / ratio:.2f}",
                     f"{r.setup_seconds:.2f} s" if r.compiled else r.note or "—"))
    report.md(f"### {_size(samples, hidden)} (spiral {samples // 3}×3, hidden {hidden})")
    report.md()
    report.table(("contender", "ms / epoch (median)", "min – max", "time ÷ purenn fit",
                  "purenn fit speed-up", "first call (compile + 1 chunk) / note"), rows)


# --- compile of a first fit, in this process ------------------------------------------


def first_fit(samples, hidden, reps):
    """A first ``pn.fit`` of the book model (101 epochs) and ``pn.evaluate``, each time
    after ``jax.clear_caches()``: wall seconds of each call and the programs XLA compiled
    for them, ``(name, seconds)``; and plain JAX's chunk compile for comparison."""
    import jax
    from jax import monitoring

    import purenn as pn
    from benchmarks.contenders import DECAY, LEARNING_RATE, PlainJax, book_model, make_problem

    problem = make_problem(samples, hidden)
    loss = pn.losses.softmax_categorical_crossentropy
    compiles = []

    def listener(event, seconds, *, fun_name=None, **_):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append((fun_name, seconds))

    monitoring.register_event_duration_secs_listener(listener)
    runs = []
    try:
        for _ in range(reps):
            model = book_model(hidden)
            opt = pn.optimizers.adam(learning_rate=LEARNING_RATE, decay=DECAY)
            key = jax.random.key(1)
            jax.clear_caches()
            compiles.clear()
            start = time.perf_counter()
            params, _, _ = pn.fit(model, loss, opt, problem.params, problem.X, problem.y,
                                  key=key, epochs=101, log_fn=None, progress=False)
            fit_wall = time.perf_counter() - start
            fit_compiles = list(compiles)
            compiles.clear()
            start = time.perf_counter()
            pn.evaluate(model, loss, params, problem.X, problem.y)
            evaluate_wall = time.perf_counter() - start
            jax.clear_caches()
            start = time.perf_counter()
            PlainJax(problem, 100).setup()
            plain = time.perf_counter() - start
            runs.append({"fit_wall": fit_wall, "fit_compiles": fit_compiles,
                         "evaluate_wall": evaluate_wall, "evaluate_compiles": list(compiles),
                         "plain_jax_chunk": plain})
    finally:
        monitoring.unregister_event_duration_listener(listener)
    return runs


# --- main -----------------------------------------------------------------------------


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.reps < 1:
        print("python -m benchmarks: error: --reps must be >= 1", file=sys.stderr)
        return 2
    if args.device == "gpu":
        return gpu_main(args)

    import jax

    jax.config.update("jax_enable_x64", False)  # float32 everywhere: JAX's default
    quick = args.quick
    if args.target_seconds is None:
        args.target_seconds = 0.01 if quick else 0.25
    if args.job_reps is None:
        args.job_reps = 1 if quick else 5
    args.chunk = 10 if quick else 100
    if quick:
        main_sizes = [(30, 8), (60, 8)]
        hidden_sweep = (60, [8, 16])
        samples_sweep = (8, [30, 60])
        seeds_cfg = dict(samples=30, hidden=8, seeds=4, epochs=20)
        job_epochs, compile_reps = 101, 1
    else:
        main_sizes = [(300, 64), (3000, 512)]
        hidden_sweep = (3000, [64, 128, 256, 512, 1024, 2048])
        samples_sweep = (64, [300, 999, 3000, 9999, 30000])
        seeds_cfg = dict(samples=300, hidden=64, seeds=16, epochs=1000)
        job_epochs, compile_reps = None, args.reps
    everything = not (args.job or args.compile)
    extras_on = everything and not args.no_extras

    report = Report()
    started = time.perf_counter()
    env = environment_lines()
    for line in env:
        report.say(line)

    measured, sweeps, extras = {}, [], {}

    def results_for(samples, hidden, numpy64=False):
        if (samples, hidden) not in measured:
            measured[(samples, hidden)] = compare_size(report, samples, hidden, args,
                                                       numpy64=numpy64)
        return measured[(samples, hidden)]

    if everything:
        for samples, hidden in main_sizes:
            results_for(samples, hidden, numpy64=True)
        if not args.no_sweep:
            n, widths = hidden_sweep
            sweeps.append((f"hidden width (samples {n})", widths,
                           [results_for(n, h) for h in widths]))
            h, counts = samples_sweep
            sweeps.append((f"samples (hidden {h})", counts,
                           [results_for(s, h) for s in counts]))

    if args.job or extras_on:
        from benchmarks import job

        report.say(f"== the whole job: `python -m purenn book {job.EXPERIMENT} --quiet` "
                   f"against the book's NumPy code, {args.job_reps} repetitions")
        extras["job"] = job.measure(args.job_reps, epochs=job_epochs, log=report.say)
        for p in extras["job"]["processes"]:
            report.say(f"  job {p.name:34s} wall {statistics.median(p.wall):6.2f} s, "
                       f"CPU {statistics.median(p.cpu):6.2f} s")
        for name, ratio in extras["job"]["ratios"].items():
            report.say(f"  job {name} ÷ NumPy: wall {ratio['wall']:.2f}, CPU {ratio['cpu']:.2f}")
        report.say("== where the purenn job's time goes (one traced run per cache state)")
        extras["trace"] = job.summarize_trace(job.trace(epochs=job_epochs))
        if not quick:
            extras["trace_warm"] = job.summarize_trace(job.trace(epochs=job_epochs, warm=True))
        extras["imports"] = job.import_times()
        for row in extras["trace"]["rows"]:
            report.say(f"  trace {row[0]:50s} wall {row[1]:6.2f} s, {row[3]} compiles "
                       f"({row[4]:.2f} s)")

    if args.compile or extras_on:
        from benchmarks import compile as compile_analysis

        report.say("== where the training program's compile goes (variants)")
        rows, evaluation = compile_analysis.run(reps=compile_reps, quick=quick,
                                                log=report.say)
        base = rows[0]
        for v in rows:
            report.say(f"  compile {v.name:62s} {v.kernels:4d} kernels, XLA "
                       f"{v.median('compile_ms'):6.0f} ms (CPU {v.median('compile_cpu_ms'):5.0f}"
                       f"), epoch ×{compile_analysis.paired(v, base):.2f}")
        extras["compile"] = (rows, evaluation)
        extras["compile_size"] = "30×8" if quick else "300×64"
        extras["eager"] = compile_analysis.eager_setup(compile_reps)
        for row in extras["eager"]:
            report.say(f"  eager {row[0]:30s} {row[1]:36s} {row[2]:3d} programs, "
                       f"{row[3]:.2f} s compile, {row[4]:.0f} ms CPU")

    if extras_on:
        from benchmarks import ablations
        from benchmarks.contenders import make_problem
        from benchmarks.seeds import measure_seeds
        from benchmarks.timing import measure

        report.say("== a first fit of the book model in this process")
        s, h = main_sizes[0]
        extras["first_fit"] = first_fit(s, h, compile_reps)
        for run_ in extras["first_fit"]:
            report.say(f"  first fit {run_['fit_wall']:.2f} s, {len(run_['fit_compiles'])} "
                       f"programs ({sum(c for _, c in run_['fit_compiles']):.2f} s compile); "
                       f"evaluate {run_['evaluate_wall']:.2f} s")

        report.say("== ablations: fit's training program, one change at a time")
        extras["ablations"] = {}
        for s, h in ([] if quick else main_sizes):
            problem = make_problem(s, h)
            results = measure(ablations.ablation_contenders(problem, args.chunk),
                              reps=args.reps, target_seconds=args.target_seconds)
            extras["ablations"][(s, h)] = results
            for r in results:
                report.say(f"  ablation {_size(s, h)}  {r.name:58s} {_ms(r.median)} ms/epoch")
        problem = make_problem(*main_sizes[0])
        extras["traces"] = ablations.count_step_traces(problem, args.chunk, 10 * args.chunk + 1)
        extras["fit_call"] = ablations.fit_call_overhead(problem, args.chunk, args.reps)
        report.say(f"  a warm pn.fit(epochs=1) takes {extras['fit_call'] * 1e3:.2f} ms")
        report.say(f"  model.apply ran {extras['traces']} time(s) during a warm "
                   f"{10 * args.chunk + 1}-epoch fit")

        seeds_size = _size(seeds_cfg["samples"], seeds_cfg["hidden"])
        report.say(f"== {seeds_cfg['seeds']} seeds of {seeds_size}, "
                   f"{seeds_cfg['epochs']} epochs each")
        extras["seeds"] = measure_seeds(reps=args.reps, **seeds_cfg)
        for name, median, *_ in extras["seeds"]:
            report.say(f"  seeds {name:58s} {median:.3f} s")

    elapsed = time.perf_counter() - started
    load_end = os.getloadavg()[0]
    report.say(f"done in {elapsed:.0f} s (load average at the end {load_end:.1f})")
    from benchmarks.report import write_report

    write_report(report, args, env, main_sizes, measured, sweeps, extras, elapsed, load_end)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write("\n".join(report.lines) + "\n")
        report.say(f"wrote {args.out}")
    if args.plot and sweeps:
        write_plot(args.plot, sweeps, measured)
        report.say(f"wrote {args.plot}")
    return 0


# --- plot -----------------------------------------------------------------------------


def write_plot(path, sweeps, main_results):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    panels = [(name, xs, per_size) for name, xs, per_size in sweeps if xs]
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.6), squeeze=False)
    names = []
    for _, _, per_size in panels:
        for results in per_size:
            names += [r.name for r in results if not r.skipped and r.name not in names]
    colors = {name: f"C{i % 10}" for i, name in enumerate(names)}
    for ax, (name, xs, per_size) in zip(axes[0], panels):
        for contender in names:
            ys = []
            for results in per_size:
                match = [r for r in results if r.name == contender and not r.skipped]
                ys.append(match[0].median * 1e3 if match else float("nan"))
            if sum(y == y for y in ys) < 2:  # measured at fewer than 2 sizes: no line
                continue
            style = "-o" if contender.startswith("purenn") else "--s"
            ax.plot(xs, ys, style, label=contender, markersize=4, color=colors[contender])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(xs)
        ax.set_xticklabels([str(x) for x in xs])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel(name)
        ax.set_ylabel("ms per epoch (median)")
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title(f"time per epoch vs {name}")
    axes[0][0].legend(fontsize=7)
    if len(panels) > 1:
        axes[0][1].legend(fontsize=7)
    fig.suptitle("Book model, Adam, full batch, float32, CPU — lower is better", fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def gpu_main(args) -> int:
    import jax

    from benchmarks import gpu

    if not gpu.has_gpu():
        print("python -m benchmarks --device gpu: no GPU visible to JAX "
              f"(backend: {jax.default_backend()}); install jax[cuda12] on a GPU machine, or "
              "run the CPU benchmarks with --device cpu", file=sys.stderr)
        return 2
    batch, width = (256, 256) if args.quick else (8192, 4096)
    report = Report()
    report.say(f"== GPU: MLP {width} wide, batch {batch}, on {jax.devices('gpu')[0]}")
    rows = gpu.run_gpu(batch=batch, width=width, reps=max(args.reps, 5), log=report.say)
    report.md("# GPU benchmark")
    report.md()
    report.md(f"`pn.train_step` of a {width}-wide MLP (3 hidden layers, 16 classes, Adam), "
              f"batch {batch}, on {jax.devices('gpu')[0].device_kind}. Achieved TFLOP/s counts "
              "the matmuls only; the peak is a (batch, W) @ (W, W) matmul in the same run.")
    report.md()
    report.table(("dtype", "step, ms", "achieved TFLOP/s", "matmul peak TFLOP/s",
                  "fraction of peak", "first call, s"),
                 [(d, f"{ms:.2f}", f"{t:.1f}", f"{p:.1f}", f"{f:.0%}", f"{first:.1f}")
                  for d, ms, t, p, f, first in rows])
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(report.lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
