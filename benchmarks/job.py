"""The whole job, as a user runs it: ``python -m purenn book regularization --quiet`` as
one process, against the book's NumPy code for the same run as one process
(``python -m benchmarks.numpy_job``), interleaved.

purenn runs twice per repetition: with an **empty** compilation cache (a fresh cache
folder each time: what the first run on a machine, or any run with the cache off, pays,
writing the cache included) and with a **warm** one (the same folder, filled by an earlier
run: every run after the first). If the CLI keeps a persistent compilation cache of its
own (it then has ``--no-cache``), the folder is given as ``XDG_CACHE_HOME``; otherwise
JAX's cache is switched on for the process with ``JAX_COMPILATION_CACHE_DIR`` (and no
minimum compile time or entry size), which is the same thing.

Times are wall time and CPU time (user + system, from the kernel's accounting of the
child process) of the whole process, from launch to exit: interpreter start-up, imports,
compiling, training, evaluation. Ratios are paired within a repetition.

``trace`` runs the purenn job once more under ``benchmarks.job_trace`` to split its time
into phases and count its compiles; ``import_times`` asks ``python -X importtime``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENT = "regularization"
_CACHE_VARIABLES = ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
                    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "JAX_ENABLE_COMPILATION_CACHE",
                    "PURENN_NO_CACHE", "XDG_CACHE_HOME", "JAX_ENABLE_X64")


@dataclass
class Process:
    name: str
    command: list
    wall: list = field(default_factory=list)
    cpu: list = field(default_factory=list)
    output: str = ""


def purenn_command(epochs=None):
    extra = ["--epochs", str(epochs)] if epochs else []
    return [sys.executable, "-m", "purenn", "book", EXPERIMENT, "--quiet", *extra]


def numpy_command(epochs=None):
    extra = ["--epochs", str(epochs)] if epochs else []
    return [sys.executable, "-m", "benchmarks.numpy_job", *extra]


def cli_has_cache() -> bool:
    """Whether ``purenn`` keeps a persistent compilation cache (it then has --no-cache)."""
    out = subprocess.run([sys.executable, "-m", "purenn", "book", "--help"], cwd=REPO,
                         capture_output=True, text=True, env=_base_env())
    return "--no-cache" in out.stdout


def _base_env():
    return {k: v for k, v in os.environ.items() if k not in _CACHE_VARIABLES}


def cache_env(folder: str, cli_cache: bool) -> dict:
    """The environment of a purenn process whose compilation cache lives in ``folder``."""
    env = _base_env()
    env["XDG_CACHE_HOME"] = folder
    if not cli_cache:
        env.update(JAX_COMPILATION_CACHE_DIR=os.path.join(folder, "jax"),
                   JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    return env


def _timed(command, env) -> tuple[float, float, str]:
    """``(wall seconds, CPU seconds, stdout)`` of one process, launch to exit. The CPU
    time is the growth of this process's reaped children's (one child at a time here)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({proc.returncode}):\n{err[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out


def measure(reps: int, epochs=None, log=None) -> dict:
    """The whole job, ``reps`` interleaved repetitions of: purenn with an empty cache,
    purenn with a warm cache, the book's NumPy code."""
    cli_cache = cli_has_cache()
    warm = tempfile.mkdtemp(prefix="purenn-bench-warm-")
    empties = []
    try:
        _timed(purenn_command(epochs), cache_env(warm, cli_cache))  # fills the warm cache
        processes = [Process("purenn, empty compilation cache", purenn_command(epochs)),
                     Process("purenn, warm compilation cache", purenn_command(epochs)),
                     Process("NumPy book code (float32)", numpy_command(epochs))]
        for rep in range(reps):
            order = processes[rep % 3:] + processes[:rep % 3]
            for p in order:
                if p.name.startswith("NumPy"):
                    env = _base_env()
                elif "empty" in p.name:
                    empties.append(tempfile.mkdtemp(prefix="purenn-bench-empty-"))
                    env = cache_env(empties[-1], cli_cache)
                else:
                    env = cache_env(warm, cli_cache)
                wall, cpu, out = _timed(p.command, env)
                p.wall.append(wall)
                p.cpu.append(cpu)
                p.output = out
            if log is not None:
                log(f"    job rep {rep + 1}/{reps}: " + ", ".join(
                    f"{p.name.split(',')[-1].strip()} {p.wall[-1]:.1f} s" for p in processes))
        cache_bytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(warm)
                          for f in fs)
    finally:
        shutil.rmtree(warm, ignore_errors=True)
        for folder in empties:
            shutil.rmtree(folder, ignore_errors=True)
    numpy = processes[2]
    ratios = {}
    for p in processes[:2]:
        ratios[p.name] = {
            "wall": statistics.median(a / b for a, b in zip(p.wall, numpy.wall)),
            "cpu": statistics.median(a / b for a, b in zip(p.cpu, numpy.cpu))}
    return {"processes": processes, "ratios": ratios, "cli_cache": cli_cache,
            "cache_bytes": cache_bytes, "epochs": epochs or 10001,
            "load": os.getloadavg()[0]}


# --- where the purenn process's time goes ------------------------------------------------


def trace(epochs=None, warm=False) -> dict:
    """Run the purenn job under ``benchmarks.job_trace`` (empty cache, or a warm one
    filled by an earlier run) and return its phases and compiles."""
    cli_cache = cli_has_cache()
    folder = tempfile.mkdtemp(prefix="purenn-bench-trace-")
    command = [sys.executable, "-m", "benchmarks.job_trace", "book", EXPERIMENT, "--quiet"]
    if epochs:
        command += ["--epochs", str(epochs)]
    try:
        env = cache_env(folder, cli_cache)
        if warm:
            _timed(command, env)
        launched = time.time()
        wall, cpu, out = _timed(command, env)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    line = [line for line in out.splitlines() if line.startswith("TRACE ")][-1]
    data = json.loads(line[len("TRACE "):])
    data["process_wall"], data["process_cpu"] = wall, cpu
    data["startup_wall"] = data["start_wall"] - launched
    data["exit_wall"] = wall - (data["end_wall"] - launched)
    return data


def _is_training_program(name) -> bool:
    return bool(name) and ("run_program" in name or "fast_program" in name)


def summarize_trace(data: dict) -> dict:
    """Rows ``(phase, wall s, CPU s or None, backend compiles, compile s, trace + lower
    s)`` and the compiles, from a ``trace`` result. ``fit`` is split into the training
    program (trace, lower, compile), the eager programs it compiles (``optimizer.init``'s
    operations) and the rest: the epochs and fit's host loop."""
    phases = data["phases"]
    events = data["events"]

    def of(phase, kinds, keep=lambda name: True):
        chosen = [e for e in events if e[0] == phase and e[1] in kinds and keep(e[2])]
        return len(chosen), sum(e[3] for e in chosen)

    compile_kind = ("backend_compile_duration",)
    lower_kinds = ("jaxpr_trace_duration", "jaxpr_to_mlir_module_duration")
    rows = [("python start-up (to the first line of the script)", data["startup_wall"], None,
             0, 0.0, 0.0)]
    for phase in ("import jax", "import purenn", "keys", "data", "init", "fit", "evaluate",
                  "cli (other)"):
        if phase not in phases:
            continue
        wall, cpu = phases[phase]
        n, compile_s = of(phase, compile_kind)
        lower = of(phase, lower_kinds)[1]
        rows.append((phase, wall, cpu, n, compile_s, lower))
        if phase == "fit":
            n_t, compile_t = of(phase, compile_kind, _is_training_program)
            lower_t = of(phase, lower_kinds, _is_training_program)[1]
            rows.append(("fit: the training program (trace, lower, compile)",
                         compile_t + lower_t, None, n_t, compile_t, lower_t))
            rows.append(("fit: eager programs (optimizer.init ...)", (compile_s - compile_t)
                         + (lower - lower_t), None, n - n_t, compile_s - compile_t,
                         lower - lower_t))
            rows.append(("fit: the epochs and fit's host loop (the rest)",
                         wall - compile_s - lower, None, 0, 0.0, 0.0))
    rows.append(("interpreter exit", data["exit_wall"], None, 0, 0.0, 0.0))
    compiles = [(e[0], e[2], e[3]) for e in events if e[1] == "backend_compile_duration"]
    hits = sum(1 for e in events if e[1] == "cache_hits")
    misses = sum(1 for e in events if e[1] == "cache_misses")
    training = [c for c in compiles if c[0] == "fit" and _is_training_program(c[1])]
    return {"rows": rows, "compiles": compiles, "cache_hits": hits, "cache_misses": misses,
            "training_program": training, "wall": data["process_wall"],
            "cpu": data["process_cpu"]}


def import_times() -> dict:
    """Cumulative import times (seconds) of ``jax`` and ``purenn`` (with ``purenn.cli``),
    from ``python -X importtime``, in a fresh process."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import purenn.cli"],
                         cwd=REPO, capture_output=True, text=True, env=_base_env())
    result = {}
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:"):].split("|"))
        if not cumulative.isdigit():
            continue
        top = name.strip()
        if name == name.lstrip() or top in ("jax", "numpy", "purenn", "purenn.cli"):
            if top in ("jax", "numpy", "purenn", "purenn.cli", "tqdm", "safetensors"):
                result[top] = max(result.get(top, 0.0), int(cumulative) / 1e6)
    return result
