"""Where a ``purenn book <experiment>`` process spends its time: the CLI as it ships,
with timers around its parts. Run as a whole process by ``benchmarks.job``:

    python -m benchmarks.job_trace regularization --quiet

It imports JAX and purenn (timed), registers ``jax.monitoring`` listeners for tracing,
lowering and backend compiles (each with the name of the jitted function), wraps the
functions the CLI's run goes through (the seed's keys, the data, ``model.init``,
``pn.fit``, ``pn.evaluate``) with phase timers, runs ``purenn.cli.main`` with the given
arguments, and prints one line ``TRACE <json>`` after the CLI's own output.
"""

from __future__ import annotations

import time

START_WALL, START_CPU = time.time(), time.process_time()  # noqa: E402 (before any import)

import json  # noqa: E402
import sys  # noqa: E402

PHASES = ("import jax", "import purenn", "keys", "data", "init", "fit", "evaluate")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    phases = {}  # name -> [wall, cpu]
    events = []  # (phase, event, fun_name, seconds)
    current = ["startup"]

    def add(name, wall, cpu):
        entry = phases.setdefault(name, [0.0, 0.0])
        entry[0] += wall
        entry[1] += cpu

    wall, cpu = time.perf_counter(), time.process_time()
    import jax
    from jax import monitoring
    add("import jax", time.perf_counter() - wall, time.process_time() - cpu)

    def on_duration(event, seconds, *, fun_name=None, **_):
        if event.startswith("/jax/core/compile/") or event.startswith("/jax/compilation_cache"):
            events.append((current[0], event.rsplit("/", 1)[-1], fun_name, seconds))

    def on_event(event, **_):
        if event.startswith("/jax/compilation_cache/cache_"):
            events.append((current[0], event.rsplit("/", 1)[-1], None, 0.0))

    monitoring.register_event_duration_secs_listener(on_duration)
    monitoring.register_event_listener(on_event)

    wall, cpu = time.perf_counter(), time.process_time()
    import purenn as pn
    from purenn import cli, experiments, layers
    add("import purenn", time.perf_counter() - wall, time.process_time() - cpu)

    def timed(name, function):
        def wrapper(*args, **kwargs):
            outer = current[0]
            if outer in PHASES[2:]:  # nested (fit calls init?): count it in the outer phase
                return function(*args, **kwargs)
            current[0] = name
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                add(name, time.perf_counter() - wall, time.process_time() - cpu)
                current[0] = outer

        return wrapper

    patches = [(experiments, "seed_keys", "keys"), (experiments.Config, "make_data", "data"),
               (layers.Serial, "init", "init"), (pn, "fit", "fit"),
               (pn, "evaluate", "evaluate")]
    for owner, attribute, phase in patches:
        if hasattr(owner, attribute):
            setattr(owner, attribute, timed(phase, getattr(owner, attribute)))

    current[0] = "cli (other)"
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        code = cli.main(argv)
    except SystemExit as exit_:
        code = exit_.code
    add("cli (other)", time.perf_counter() - wall, time.process_time() - cpu)
    for name in PHASES[2:]:  # the CLI's time outside the phases it contains
        if name in phases:
            phases["cli (other)"][0] -= phases[name][0]
            phases["cli (other)"][1] -= phases[name][1]
    sys.stdout.flush()
    print("TRACE " + json.dumps({
        "start_wall": START_WALL, "start_cpu": START_CPU, "end_wall": time.time(),
        "end_cpu": time.process_time(), "phases": phases, "events": events,
        "jax": jax.__version__, "backend": jax.default_backend(),
        "cache_dir": jax.config.jax_compilation_cache_dir}), flush=True)
    return int(code or 0)


if __name__ == "__main__":
    raise SystemExit(main())
