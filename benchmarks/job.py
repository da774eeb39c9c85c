"""The whole job, as a user runs it: ``python -m purenn book regularization --quiet`` as
one process, against the book's NumPy code for the same run (``python -m
benchmarks.numpy_job``), interleaved.

purenn runs with an **empty** compilation cache (a fresh ``XDG_CACHE_HOME`` each time: the
first run on a machine pays for compiling and for writing the cache) and with a **warm**
one (the folder the first empty run filled: every run after the first). The command keeps
its cache in ``$XDG_CACHE_HOME/purenn``. Figures are the wall time and the CPU time (user
+ system, the kernel's accounting of the child) of each process, launch to exit.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from benchmarks import timing

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENT = "regularization"
EMPTY, WARM, NUMPY = ("purenn, empty compilation cache", "purenn, warm compilation cache",
                      "NumPy book code (float32)")
# Settings of the environment that would change what the processes compile or cache.
_CACHE_VARIABLES = ("JAX_COMPILATION_CACHE_DIR", "JAX_ENABLE_COMPILATION_CACHE",
                    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
                    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "PURENN_NO_CACHE",
                    "XDG_CACHE_HOME", "JAX_ENABLE_X64")


def clean_env(cache_home: str | None = None) -> dict:
    """This process's environment without cache or precision settings; with
    ``XDG_CACHE_HOME=cache_home`` when given."""
    env = {k: v for k, v in os.environ.items() if k not in _CACHE_VARIABLES}
    if cache_home is not None:
        env["XDG_CACHE_HOME"] = cache_home
    return env


def run_process(command: list, env: dict) -> dict:
    """``{"wall", "cpu"}`` seconds and ``"stdout"`` of one child process, launch to exit."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({proc.returncode}):\n"
                           f"{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "stdout": proc.stdout}


def measure(reps: int, epochs: int | None = None, log=print) -> dict:
    """``reps`` interleaved repetitions of the three processes. Returns ``samples`` (name
    -> ``{"wall": [...], "cpu": [...]}``), ``lines`` (name -> last stdout line),
    ``ratios`` (purenn name -> paired ``{"wall", "cpu"}`` ratio to NumPy), ``epochs`` and
    ``cache_bytes`` (the warm cache's size)."""
    folders: list[str] = []
    warm: list[str] = []  # the first empty run's folder, warm from then on
    lines: dict[str, str] = {}
    extra = ["--epochs", str(epochs)] if epochs else []
    purenn = [sys.executable, "-m", "purenn", "book", EXPERIMENT, "--quiet", *extra]
    command = {EMPTY: purenn, WARM: purenn,
               NUMPY: [sys.executable, "-m", "benchmarks.numpy_job", *extra]}

    def one(name):
        def call():
            if name == NUMPY:
                env = clean_env()
            elif name == EMPTY:
                folders.append(tempfile.mkdtemp(prefix="purenn-bench-cache-"))
                env = clean_env(folders[-1])
            else:  # interleave runs EMPTY first: its folder is warm by now
                env = clean_env(warm[0])
            result = run_process(command[name], env)
            if name == EMPTY and not warm:
                warm.append(folders[-1])
            lines[name] = result["stdout"].strip().splitlines()[-1]
            return {"wall": result["wall"], "cpu": result["cpu"]}
        return call

    try:
        samples = timing.interleave({name: one(name) for name in (EMPTY, WARM, NUMPY)}, reps,
                                    log=log)
        cache_bytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in
                          os.walk(warm[0]) for f in files)
    finally:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
    ratios = {name: {figure: timing.paired_ratio(samples[name][figure], samples[NUMPY][figure])
                     for figure in ("wall", "cpu")} for name in (EMPTY, WARM)}
    return {"samples": samples, "lines": lines, "ratios": ratios,
            "epochs": epochs or 10001, "cache_bytes": cache_bytes}
