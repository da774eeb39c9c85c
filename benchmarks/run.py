"""``python -m benchmarks``: purenn against plain JAX autodiff, the book's NumPy code and,
when installed, Flax+Optax and PyTorch — measured side by side, in one process.

    python -m benchmarks                      # full run (~10 minutes on 2 cores)
    python -m benchmarks --quick              # tiny sizes, seconds: a smoke test
    python -m benchmarks --out docs/benchmarks.md --plot docs/benchmarks.png
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
import subprocess
import sys
import time

TARGETS = {
    "fit_vs_plain_small": 1.0,
    "fit_vs_plain_large": 0.9,
    "numpy_vs_fit_small": 6.0,
    "numpy_vs_fit_large": 4.0,
    "compile_s": 0.8,
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
                        help="skip compile, seeds, ablations and CLI latency")
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


# --- compile time ---------------------------------------------------------------------


def compile_times(samples, hidden, chunk, reps):
    """Trace+lower and XLA-compile times of fit's chunk program for the book model (the
    lengths fit compiles: 1 for epoch 0, ``chunk`` for the rest), plain JAX's chunk, and
    the wall time of a cold first ``fit`` call, as shipped and with P2 (not applied),
    each after clearing JAX's caches."""
    import jax

    import purenn as pn
    from benchmarks import proposals
    from benchmarks.contenders import (
        DECAY,
        LEARNING_RATE,
        PlainJax,
        book_model,
        make_problem,
    )
    from purenn import train

    problem = make_problem(samples, hidden)
    loss = pn.losses.softmax_categorical_crossentropy
    acc = train.default_accuracy(loss)
    out = {}

    def fit_chunk(length, context=None):
        model = book_model(hidden)
        opt = pn.optimizers.adam(learning_rate=LEARNING_RATE, decay=DECAY)
        with (context or _null)():
            run, extra = proposals.fit_program(model, loss, opt, acc, samples, length,
                                               cached=False)
            state, key = opt.init(problem.params), jax.random.key(1)
            start = time.perf_counter()
            lowered = run.lower(problem.params, state, problem.X, problem.y, key, 0, *extra)
            traced = time.perf_counter()
            lowered.compile()
            done = time.perf_counter()
        return traced - start, done - traced

    def first_fit(context=None):
        model = book_model(hidden)
        opt = pn.optimizers.adam(learning_rate=LEARNING_RATE, decay=DECAY)
        start = time.perf_counter()
        with (context or _null)():
            pn.fit(model, loss, opt, problem.params, problem.X, problem.y,
                   key=jax.random.key(1), epochs=10 * chunk + 1, log_every=chunk, log_fn=None,
                   progress=False)
        return time.perf_counter() - start

    def plain():
        start = time.perf_counter()
        PlainJax(problem, chunk).setup()
        return time.perf_counter() - start

    jobs = {
        f"fit chunk, {chunk} epochs": lambda: fit_chunk(chunk),
        "fit chunk, 1 epoch (epoch 0)": lambda: fit_chunk(1),
        f"cold pn.fit(epochs={10 * chunk + 1}), wall (compiles 2 programs)": first_fit,
        f"cold pn.fit(epochs={10 * chunk + 1}), wall, with P2 (not applied; 1 program)":
            lambda: first_fit(lambda: proposals.one_program(chunk)),
        f"plain JAX chunk, {chunk} epochs (trace+lower+compile)": plain,
    }
    samples_of = {name: [] for name in jobs}
    for _ in range(reps):
        for name, job in jobs.items():
            jax.clear_caches()
            proposals.clear_fit_caches()
            samples_of[name].append(job())
    for name, values in samples_of.items():
        if isinstance(values[0], tuple):
            out[name] = (statistics.median(v[0] for v in values),
                         statistics.median(v[1] for v in values))
        else:
            out[name] = (None, statistics.median(values))
    return out


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# --- CLI latency ----------------------------------------------------------------------


_FIT_SCRIPT = """\
import jax, purenn as pn
X, y = pn.data.spiral(jax.random.key(0), 100, 3)
model = pn.serial(pn.dense(2, 64, weight_l2=5e-4, bias_l2=5e-4), pn.relu(), pn.dense(64, 3))
pn.fit(model, pn.losses.softmax_categorical_crossentropy,
       pn.optimizers.adam(learning_rate=0.02, decay=5e-7), model.init(jax.random.key(1)),
       X, y, key=jax.random.key(2), epochs=10001)
"""


def first_line_latency(command, reps, env=None):
    """Seconds from starting ``command`` to its first line on stdout (median of ``reps``);
    the process is then stopped."""
    times, line = [], ""
    for _ in range(reps):
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, env=env, cwd=os.path.dirname(os.path.dirname(
                                    os.path.abspath(__file__))))
        try:
            line = proc.stdout.readline()
            elapsed = time.perf_counter() - start
        finally:
            proc.kill()
            proc.wait()
        if not line:
            return None, "no output"
        times.append(elapsed)
    return statistics.median(times), line.strip()


def cli_latency(reps):
    """First-line latency of the CLI (or, without it, of a ``pn.fit`` script), cold and
    with JAX's persistent compilation cache filled by one earlier run (P3, not applied:
    measured by setting the cache directory for the subprocess)."""
    import importlib.util
    import shutil
    import tempfile

    commands = []
    if importlib.util.find_spec("purenn.cli") is not None:
        commands.append(("`python -m purenn book regularization`",
                         [sys.executable, "-m", "purenn", "book", "regularization"]))
    commands.append(("`python -c '...pn.fit(...)'` (the book model, 10001 epochs)",
                     [sys.executable, "-c", _FIT_SCRIPT]))
    cold_env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_PERSISTENT")
                and k != "JAX_COMPILATION_CACHE_DIR"}
    rows = []
    for name, command in commands:
        median, line = first_line_latency(command, reps, cold_env)
        rows.append((name + ", cold", median, line))
        cache = tempfile.mkdtemp(prefix="purenn-bench-cache-")
        try:
            env = dict(cold_env, JAX_COMPILATION_CACHE_DIR=cache,
                       JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                       JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
            first_line_latency(command, 1, env)  # fills the cache
            median, line = first_line_latency(command, reps, env)
            rows.append((name + ", persistent compilation cache warm (P3, not applied)",
                         median, line))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    return rows


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
    args.chunk = 10 if quick else 100
    if quick:
        main_sizes = [(30, 8), (60, 8)]
        hidden_sweep = (60, [8, 16])
        samples_sweep = (8, [30, 60])
        seeds_cfg = dict(samples=30, hidden=8, seeds=4, epochs=20)
        compile_reps, cli_reps = 1, 0
    else:
        main_sizes = [(300, 64), (3000, 512)]
        hidden_sweep = (3000, [64, 128, 256, 512, 1024, 2048])
        samples_sweep = (64, [300, 999, 3000, 9999, 30000])
        seeds_cfg = dict(samples=300, hidden=64, seeds=16, epochs=1000)
        compile_reps, cli_reps = args.reps, args.reps

    report = Report()
    started = time.perf_counter()
    env = environment_lines()
    for line in env:
        report.say(line)

    measured = {}

    def results_for(samples, hidden, numpy64=False):
        if (samples, hidden) not in measured:
            measured[(samples, hidden)] = compare_size(report, samples, hidden, args,
                                                       numpy64=numpy64)
        return measured[(samples, hidden)]

    for samples, hidden in main_sizes:
        results_for(samples, hidden, numpy64=True)

    sweeps = []
    if not args.no_sweep:
        n, widths = hidden_sweep
        sweeps.append((f"hidden width (samples {n})", widths,
                       [results_for(n, h) for h in widths]))
        h, counts = samples_sweep
        sweeps.append((f"samples (hidden {h})", counts, [results_for(s, h) for s in counts]))

    extras = {}
    if not args.no_extras:
        from benchmarks import ablations
        from benchmarks.contenders import make_problem
        from benchmarks.seeds import measure_seeds
        from benchmarks.timing import measure

        report.say("== compile time of the book model's fit chunk")
        s, h = main_sizes[0]
        extras["compile"] = compile_times(s, h, args.chunk, compile_reps)
        for name, (trace, comp) in extras["compile"].items():
            report.say(f"  compile  {name:58s} trace+lower {_ms(trace)} ms, "
                       f"compile {_ms(comp)} ms")

        report.say("== ablations: fit's compiled chunk program, one change at a time")
        extras["ablations"] = {}
        for s, h in ([] if quick else main_sizes):
            problem = make_problem(s, h)
            results = measure(ablations.ablation_contenders(problem, args.chunk),
                              reps=args.reps, target_seconds=args.target_seconds)
            extras["ablations"][(s, h)] = results
            for r in results:
                report.say(f"  ablation {_size(s, h)}  {r.name:50s} {_ms(r.median)} ms/epoch")
        problem = make_problem(*main_sizes[0])
        extras["traces"] = ablations.count_step_traces(problem, args.chunk, 10 * args.chunk + 1)
        extras["fit_call"] = ablations.fit_call_overhead(problem, args.chunk, args.reps)
        report.say(f"  a warm pn.fit(epochs=1) takes {extras['fit_call'] * 1e3:.2f} ms "
                   f"(validation, optimizer init, one 1-epoch chunk)")
        report.say(f"  model.apply ran {extras['traces']} time(s) during a warm "
                   f"{10 * args.chunk + 1}-epoch fit")

        seeds_size = _size(seeds_cfg["samples"], seeds_cfg["hidden"])
        report.say(f"== {seeds_cfg['seeds']} seeds of {seeds_size}, "
                   f"{seeds_cfg['epochs']} epochs each")
        extras["seeds"] = measure_seeds(reps=args.reps, **seeds_cfg)
        for name, median, *_ in extras["seeds"]:
            report.say(f"  seeds {name:58s} {median:.3f} s")

        if cli_reps:
            report.say("== first-epoch latency from a fresh process")
            extras["cli"] = cli_latency(cli_reps)
            for name, median, line in extras["cli"]:
                report.say(f"  latency {name}: {median:.2f} s to '{line}'")

    elapsed = time.perf_counter() - started
    load_end = os.getloadavg()[0]
    report.say(f"done in {elapsed:.0f} s (load average at the end {load_end:.1f})")
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


def _target_row(what, value, target, better, fmt="{:.2f}"):
    if value is None:
        return (what, "—", target, "not measured")
    met = value <= target if better == "lower" else value >= target
    sign = "≤" if better == "lower" else "≥"
    return (what, fmt.format(value), f"{sign} {fmt.format(target)}", "met" if met else "MISSED")


def write_report(report, args, env, main_sizes, measured, sweeps, extras, elapsed, load_end):
    from benchmarks import proposals
    from benchmarks.timing import paired_ratio

    md = report.md
    md("# Benchmarks")
    md()
    md("Generated by `python -m benchmarks"
       + (" --quick" if args.quick else "") + "`; every number below comes from one process "
       "in which the contenders were interleaved (each repetition times every contender "
       "once, in a rotating order). Times are medians over "
       f"{args.reps} repetitions; ratios are medians of ratios paired within a repetition, "
       "so load from other processes on the machine cancels out better than in the times "
       "themselves. Steady state: compilation is done before timing and reported "
       "separately. The machine is shared (2 cores): absolute times are noisy, ratios less.")
    md()
    md("What is measured: the book's chapter-14 model, Dense(2, H, L2 5e-4 on weights and "
       "biases) → ReLU → Dense(H, 3) → softmax + categorical cross-entropy, Adam(lr 0.02, "
       "decay 5e-7), full batch, float32, from the same initial weights and data, computing "
       "every epoch what the book prints (loss, data loss, regularization loss, accuracy, "
       "learning rate). JAX contenders run chunks of "
       f"{args.chunk} epochs in `lax.scan` and bring the metrics to the host after each "
       "chunk, as `fit` does to print the book's log line; the eager ones loop in Python.")
    md()
    md(f"- **purenn fit**: `pn.fit(..., log_every={args.chunk})` as a user calls it, purenn "
       "as shipped (its dense backward computes `dweights` as a row-major GEMM on CPU: see "
       "*What makes fit fast*).")
    md("- **plain JAX (jax.grad)**: the same model and loss in plain `jnp` ops (softmax, "
       "clip, -log, L2 penalties), differentiated by `jax.value_and_grad`, the book's Adam "
       "inline, epochs in `lax.scan`.")
    md("- **Flax + Optax**: `flax.linen.Dense` layers, `optax.adam` with the book's decay "
       "as a schedule (epsilon outside the root, as the book), the same loss, `lax.scan`.")
    md("- **NumPy book code**: `tests/reference/book.py`'s classes in the book's training "
       "loop; float32 sets the layers' arrays to float32 (same arithmetic as the others), "
       "float64 is the classes as they are.")
    md("- **PyTorch eager**: `nn.Sequential`, `torch.optim.Adam` + `LambdaLR` decay, the "
       "same loss, a Python loop.")
    md()
    md("## Environment")
    md()
    for line in env:
        md(line)
    md(f"- total run time {elapsed:.0f} s; load average at the end {load_end:.1f}")
    md()

    # targets
    small, large = main_sizes
    res_s, res_l = measured[small], measured[large]

    def get(results, prefix):
        for r in results:
            if r.name.startswith(prefix) and not r.skipped:
                return r
        return None

    def ratio(results, a, b):
        ra, rb = get(results, a), get(results, b)
        return paired_ratio(ra, rb) if ra and rb else None

    md("## Targets")
    md()
    md("purenn as shipped. fit ÷ plain JAX and NumPy ÷ fit are paired per-epoch ratios from "
       "the tables below; compile is trace + lower + XLA compile after `jax.clear_caches()`.")
    md()
    numpy32 = "NumPy book code (float32)"
    rows = [
        _target_row(f"fit ÷ plain JAX, {_size(*small)}",
                    ratio(res_s, "purenn fit", "plain JAX"), TARGETS["fit_vs_plain_small"],
                    "lower"),
        _target_row(f"fit ÷ plain JAX, {_size(*large)}",
                    ratio(res_l, "purenn fit", "plain JAX"), TARGETS["fit_vs_plain_large"],
                    "lower"),
        _target_row(f"NumPy (float32) ÷ fit, {_size(*small)}",
                    ratio(res_s, numpy32, "purenn fit"), TARGETS["numpy_vs_fit_small"],
                    "higher"),
        _target_row(f"NumPy (float32) ÷ fit, {_size(*large)}",
                    ratio(res_l, numpy32, "purenn fit"), TARGETS["numpy_vs_fit_large"],
                    "higher"),
    ]
    if "compile" in extras:
        chunks = {k: v for k, v in extras["compile"].items() if k.startswith("fit chunk")}
        one = sum(sum(v) for k, v in chunks.items()
                  if k.startswith(f"fit chunk, {args.chunk} epochs"))
        rows.append(_target_row(f"compile (trace+lower+XLA) of the book model's "
                                f"{args.chunk}-epoch fit chunk, s", one,
                                TARGETS["compile_s"], "lower"))
        rows.append(_target_row("compile of both chunks a fit compiles (1 and "
                                f"{args.chunk} epochs), s", sum(sum(v) for v in chunks.values()),
                                TARGETS["compile_s"], "lower"))
    if "seeds" in extras:
        by = {name: median for name, median, *_ in extras["seeds"]}
        names = list(by)
        best_name = min(names[2:], key=by.get)
        best = by[best_name]
        n_seeds = names[0].split()[0]
        rows.append(_target_row(f"{n_seeds} seeds: sequential whole-run scans ÷ best batched "
                                f"({best_name.split(':')[0]})", by[names[1]] / best,
                                TARGETS["seeds_speedup"], "higher"))
        rows.append(_target_row(f"{n_seeds} seeds: sequential pn.fit runs ÷ best batched",
                                by[names[0]] / best, TARGETS["seeds_speedup"], "higher"))
    if "traces" in extras:
        rows.append(("Python runs of the model during a warm "
                     f"{10 * args.chunk + 1}-epoch fit (per-epoch Python work)",
                     str(extras["traces"]), "1 (the entry shape check), 0 per epoch",
                     "met" if extras["traces"] <= 1 else "MISSED"))
    report.table(("target", "measured", "target", ""), rows)

    md("## Time per epoch, the book's sizes")
    md()
    for size in main_sizes:
        size_table(report, *size, measured[size])

    if sweeps:
        md("## Sweeps")
        md()
        md("![time per epoch vs size](benchmarks.png)")
        md()
        for name, xs, per_size in sweeps:
            names = []
            for results in per_size:
                names += [r.name for r in results if r.name not in names]
            md(f"### {name}: ms per epoch (median) and, in brackets, time ÷ purenn fit")
            md()
            rows = []
            for x, results in zip(xs, per_size):
                fit = results[0]
                by_name = {r.name: r for r in results}
                cells = []
                for contender in names:
                    r = by_name.get(contender)
                    if r is None:
                        cells.append("—")
                    elif r.skipped:
                        cells.append("skipped")
                    elif r is fit:
                        cells.append(_ms(r.median))
                    else:
                        cells.append(f"{_ms(r.median)} ({paired_ratio(r, fit):.2f})")
                rows.append((x, *cells))
            report.table((name.split(" (")[0], *names), rows)

    if "compile" in extras:
        md("## Compile time")
        md()
        md(f"The book model ({_size(*small)}), after `jax.clear_caches()`; medians of "
           f"{len(extras['compile']) and (args.reps if not args.quick else 1)} repetitions. "
           "`fit` compiles two programs on its first call: a 1-epoch chunk (so that epoch "
           "0's log line comes at once) and the "
           f"{args.chunk}-epoch chunk for the rest. The P2 row is an option *not applied* "
           "(see the end of this report), measured with a stand-in for fit's chunk program.")
        md()
        rows = [(name, _ms(trace), _ms(comp), _ms((trace or 0) + comp))
                for name, (trace, comp) in extras["compile"].items()]
        report.table(("program", "trace + lower, ms", "XLA compile, ms", "total, ms"), rows)

    if "ablations" in extras:
        md("## Where fit's time goes")
        md()
        md("`pn.fit`, then fit's own compiled chunk program (`train._chunk_runner`) called "
           "back to back without fit's host loop, then that program with one change at a "
           "time; ratio = time ÷ the chunk program's (paired, same run). `pn.fit` against "
           "the chunk program is fit's host work (validation on entry, history, the NaN "
           "check, once per chunk). Absolute times here come from another moment than the "
           "tables above; compare ratios.")
        md()
        for size, results in extras["ablations"].items():
            base = results[1]
            rows = [(r.name, _ms(r.median), f"{paired_ratio(r, base):.2f}") for r in results]
            md(f"**{_size(*size)}**")
            md()
            report.table(("variant", "ms / epoch", "÷ chunk program"), rows)
        md(f"A warm `pn.fit(epochs=1)` call takes {extras['fit_call'] * 1e3:.2f} ms "
           "(median): the fixed cost of a call (checking the data, `optimizer.init`, the "
           "history), paid once per call, not per epoch.")
        md()
        md(f"Python runs of `model.apply` during a warm {10 * args.chunk + 1}-epoch `fit`: "
           f"**{extras['traces']}** (the shape check on entry): the epochs never come back "
           "to Python; the host loop runs once per chunk.")
        md()

    if "seeds" in extras:
        md("## Many seeds at once")
        md()
        md("The same S runs, several ways, all with purenn as shipped (see "
           "`benchmarks/seeds.py`); time for all S runs, median; compile excluded; the last "
           "column compares each method's per-seed losses at epoch 10 with the sequential "
           "runs' (later, ReLU units that flip on rounding noise make any two implementations "
           "drift apart, as BOOK.md says).")
        md()
        rows_s = extras["seeds"]
        sequential = rows_s[1][1]
        rows = [(name, f"{median:.3f}", f"{sequential / median:.2f}×",
                 "—" if comp is None else f"{comp:.2f}", f"{diff:.1e}")
                for name, median, comp, diff, _ in rows_s]
        report.table(("method", "seconds, all seeds", "speed-up vs sequential scans",
                      "compile, s", "max rel. diff of epoch-10 losses"), rows)

    if "cli" in extras:
        md("## First-epoch latency from a fresh process")
        md()
        md("Wall time from starting the process to its first log line (epoch 0), median of "
           f"{args.reps}: Python start-up, imports, data, tracing and compiling, epoch 0. "
           "The P3 rows are an option *not applied*: the same commands with JAX's persistent "
           "compilation cache switched on by environment variables and filled by one earlier "
           "run.")
        md()
        report.table(("command", "seconds", "first line"),
                     [(name, f"{median:.2f}" if median else "—", f"`{line}`")
                      for name, median, line in extras["cli"]])

    md("## Reading the results")
    md()
    md("- **fit against plain JAX and Flax.** The book's hand-written backward formulas are "
       "what autodiff derives for this model, with one difference in the compiled program: "
       "purenn's dense backward computes `dweights = x.T @ dvalues` as a row-major GEMM on "
       "CPU, where `jax.grad` (plain JAX, Flax) emits a dot that contracts the batch axis "
       "of both operands, which XLA:CPU runs far below the speed of the same FLOPs as a "
       "GEMM (see *What makes fit fast*). What `fit` adds (metrics every epoch, the "
       "chunked host loop, the NaN check) costs little: see *Where fit's time goes*.")
    md("- **NumPy.** The book's NumPy code does the same FLOPs per epoch with OpenBLAS "
       "(best of 1 and 2 threads each repetition). At small sizes an epoch is tens of "
       "microseconds and NumPy's cost is per-op Python and dispatch overhead; at large "
       "sizes both are bound by the same matmuls, so the ratio tends to fall as the hidden "
       "width grows (see the sweep).")
    md("- **Compile.** `fit` compiles two programs on its first call (the 1-epoch chunk "
       "for epoch 0's log line, then the log_every chunk), each a full XLA compile of the "
       "same step; P2 (not applied) would compile one.")
    md("- **Metrics, chunk length, dtype.** The accuracy metric computed every epoch costs "
       "a few percent at most; chunks of 1000 epochs instead of 100 help only where an "
       "epoch is a few microseconds; float64 is slower everywhere (benchmarks use "
       "float32, JAX's default).")
    md("- **Many seeds.** On this CPU, batching seeds (vmap, or stacking them into one "
       "model) makes each kernel bigger but not proportionally faster (bigger kernels go "
       "multi-threaded, and on 2 shared cores that costs), and vmap's batched dots "
       "contract the batch axis again, the slow layout that purenn's dense backward "
       "avoids for one run. Which way wins depends on the machine's load more than "
       "anything else here; on a GPU, where kernels are wide, batching should win (not "
       "measured).")
    md("- **Eager libraries and threads.** NumPy (OpenBLAS) and PyTorch are timed with "
       "1 thread and with their default every repetition and the faster counts: on a "
       "shared 2-core machine the second thread often waits for a core and is many times "
       "slower, sometimes faster.")
    md()
    md("## What makes fit fast: the dense backward as a row-major GEMM on CPU")
    md()
    md("Applied in `purenn/ops/dense.py`; every `purenn fit` number above includes it.")
    md()
    md(proposals.FAST_FIT_DOC)
    md()
    md("```python")
    md(proposals.shipped_dweights_source().rstrip())
    md("```")
    md()
    md("Measured effect: in the run of this benchmark before the change was applied "
       "(2026-11-27, where it was the contender *purenn fit + proposal P1*; the "
       "`docs/benchmarks.md` of commit de1b9ea), it made `pn.fit` 1.78× faster per epoch "
       "at 300×64 (0.0564 → 0.0301 ms) and 2.53× at 3000×512 (4.763 → 1.850 ms), paired "
       "ratios. In this run, the row *the book's dweights = x.T @ dvalues* in *Where fit's "
       "time goes* is fit's chunk program with the change undone.")
    md()
    md("## Options measured but not applied")
    md()
    md("Neither is in purenn; both are documented here as measured options only.")
    md()
    md("### P2: one compiled program per fit (not applied)")
    md()
    md(proposals.P2_DOC)
    md()
    md("Not applied: it replaces the `lax.scan` over epochs, which purenn's specification "
       "requires, with a `lax.fori_loop` (a while loop). Diff: `benchmarks/p2_one_program."
       "diff`; measured in *Compile time* (cold `pn.fit` with P2).")
    md()
    md("### P3: a persistent compilation cache for the CLI (not applied)")
    md()
    md(proposals.P3_DOC)
    md()
    md("Not applied: by default it would write a cache into the user's home directory. "
       "Diff: `benchmarks/p3_cli_cache.diff`; measured in *First-epoch latency* (P3 rows).")
    md()


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
