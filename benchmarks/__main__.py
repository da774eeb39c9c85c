"""``python -m benchmarks``: purenn against plain JAX, the book's NumPy code and, when
installed, Flax + Optax and PyTorch, measured side by side through purenn's public API.

    python -m benchmarks --out docs/benchmarks.md --plot docs/benchmarks.png   # everything
    python -m benchmarks --quick               # one tiny size, 1 repetition: a smoke test
    python -m benchmarks --only job            # one section: epochs, compiles, job, sklearn
    python -m benchmarks --device gpu          # a large MLP's train step in TFLOP/s

Sections: *epochs* (time per epoch of every contender at two sizes, and the XLA ops of
one training step), *compiles* (a first fit in a fresh process against the plain-JAX
script, and the compiles of further fits), *job* (the whole ``purenn book
regularization`` process against the book's NumPy code, empty and warm cache),
*sklearn* (a ``GridSearchCV`` on digits, ``purenn.sklearn.Classifier`` against
scikit-learn's ``MLPClassifier``; noted as not measured without scikit-learn).
"""

from __future__ import annotations

import argparse
import sys
import time

SECTIONS = ("epochs", "compiles", "job", "sklearn")
# The sizes of each mode: epochs section (samples × hidden, epochs per run, seconds of an
# eager run), first fit (samples per class, hidden, epochs, further fits), job epochs,
# the grid search's (epochs, digits used: None for all).
FULL = dict(sizes=((300, 64), (3000, 512)), epochs=4001, eager_seconds=1.0,
            first_fit=(100, 64, 1001, 15), job_epochs=None, search=(50, None))
QUICK = dict(sizes=((30, 8),), epochs=201, eager_seconds=0.05,
             first_fit=(10, 8, 101, 2), job_epochs=101, search=(3, 300))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes, short runs and 1 repetition: checks that all runs")
    p.add_argument("--out", metavar="FILE.md", help="write the Markdown report here")
    p.add_argument("--plot", metavar="FILE.png", help="write the plot here (matplotlib)")
    p.add_argument("--reps", type=int, default=None,
                   help="interleaved repetitions, medians reported (default 3; 1 with "
                        "--quick)")
    p.add_argument("--only", choices=SECTIONS, help="run only this section")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                   help="gpu: a large MLP's train step in TFLOP/s instead of the CPU report")
    return p


def run_sections(args, mode: dict, log) -> dict:
    """The measurements of every chosen section, keyed as ``report.markdown`` reads them."""
    from benchmarks import compiles, contenders, job, sklearn_search

    wanted = [args.only] if args.only else list(SECTIONS)
    results: dict = {}
    if "epochs" in wanted:
        results["epochs"], results["ops"] = {}, {}
        for samples, hidden in mode["sizes"]:
            problem = contenders.make_problem(samples, hidden)
            log(f"== time per epoch, {problem.size}, {mode['epochs']} epochs per run")
            results["epochs"][problem.size] = contenders.measure(
                problem, epochs=mode["epochs"], eager_seconds=mode["eager_seconds"],
                reps=args.reps, log=log)
            results["ops"][problem.size] = compiles.step_ops(samples, hidden)
            log(f"  XLA ops per step: {results['ops'][problem.size]}")
    if "compiles" in wanted:
        samples, hidden, epochs, further = mode["first_fit"]
        log(f"== a first fit in a fresh process, {epochs} epochs, {further} further fits")
        results["compiles"] = compiles.first_fit(args.reps, epochs=epochs, further=further,
                                                 samples=samples, hidden=hidden, log=log)
        log(f"  purenn ÷ plain JAX: {results['compiles']['ratios']}")
    if "job" in wanted:
        log(f"== the whole job: python -m purenn book {job.EXPERIMENT} --quiet vs NumPy")
        results["job"] = job.measure(args.reps, epochs=mode["job_epochs"], log=log)
        log(f"  ÷ NumPy: {results['job']['ratios']}")
    if "sklearn" in wanted:
        epochs, samples = mode["search"]
        log(f"== GridSearchCV on digits, {epochs} epochs: purenn against scikit-learn's MLP")
        results["sklearn"] = sklearn_search.measure(args.reps, epochs=epochs,
                                                    samples=samples, log=log)
    return results


def gpu_main(args, log) -> int:
    import jax

    from benchmarks import gpu, report

    if not gpu.has_gpu():
        print("python -m benchmarks --device gpu: no GPU visible to JAX (backend: "
              f"{jax.default_backend()}); run it on a machine with a GPU and jax[cuda12], "
              "or run the CPU benchmarks without --device", file=sys.stderr)
        return 2
    batch, width = (256, 256) if args.quick else (8192, 4096)
    rows = gpu.run(batch=batch, width=width, reps=max(args.reps, 5), log=log)
    text = "\n".join(["# GPU benchmark", "", *report.environment(sys.argv[1:]), "",
                      gpu.DESCRIPTION.format(batch=batch, width=width), ""]
                     + report.table(gpu.HEADER, rows))
    print(text)
    if args.out:
        report.write(text, args.out)
    return 0


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.reps is None:
        args.reps = 1 if args.quick else 3
    if args.reps < 1:
        parser().error("--reps must be >= 1")

    def log(line):
        print(line, flush=True)

    if args.device == "gpu":
        return gpu_main(args, log)
    import jax

    from benchmarks import report

    jax.config.update("jax_enable_x64", False)  # float32 everywhere, as JAX's default
    started = time.perf_counter()
    env = report.environment(sys.argv[1:] if argv is None else argv)
    for line in env:
        log(line)
    results = run_sections(args, QUICK if args.quick else FULL, log)
    results.update(env=env, elapsed=time.perf_counter() - started, plot=args.plot)
    if args.plot:
        report.plot(results, args.plot)
    text = report.markdown(results)
    if args.out:
        report.write(text, args.out)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
