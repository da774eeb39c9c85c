"""How the tests compile and run, and the tests that run in a subprocess compiling
otherwise. The session, and every process it starts, runs on one core (``one_core``).

The session compiles with three XLA flags users do not set (``SESSION_FLAGS``): no LLVM
optimization; XLA:CPU's older fusion emitters, which compile the training loops about
three times faster than the default ones; and each program's LLVM module compiled whole,
not split into parts for parallel code generation (a fifth less CPU with the older
emitters' one module per program). None changes what a program computes beyond its
last bits (LLVM's level can: ``erf_inv``, at level 0 against XLA's default level 2), and
the comparisons with the NumPy reference have tolerances.
Two kinds of test are marked to run otherwise (``MARKS``):

- ``users_codegen``: bits that two *different* programs share, which depend on the code
  generator: the lean loop and its checked replay, a run with a dropout layer of rate 0
  and one without, a data set's or an initializer's program and the eager operations,
  ``jit_program``'s options and a plain jit. purenn promises them as users compile, so
  they run with XLA's default emitters, at the session's LLVM level: the two programs
  of a test compile at one level, and they pass at XLA's default level 2 as well
  (2026-12-07), though some programs' own bits differ between the levels;
- ``optimized``: the runs of thousands of epochs (the book's full runs), compiled with
  LLVM's optimizations at level 1 and otherwise as the session: a fifth less CPU than
  with all of XLA's defaults, compiling included.

The tests of one mark run in one subprocess, ``python -m pytest NODEIDS``, started by the
first of them to run; each then reports its own outcome from that run.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile

import pytest

SESSION_FLAGS = ("--xla_backend_optimization_level=0", "--xla_cpu_use_fusion_emitters=false",
                 "--xla_cpu_parallel_codegen_split_count=1")
# mark -> (the XLA flags its subprocess adds to the environment's, what the mark is for)
MARKS = {
    "users_codegen": (("--xla_backend_optimization_level=0",),
                      "compares the bits of two different programs: runs in a subprocess "
                      "with XLA's default emitters (tests/compiling.py)"),
    "optimized": (("--xla_backend_optimization_level=1", *SESSION_FLAGS[1:]),
                  "runs thousands of epochs: runs in a subprocess that compiles with LLVM's "
                  "optimizations (tests/compiling.py)"),
}

_MODE = "PURENN_TEST_SUBPROCESS"  # the mark whose tests this subprocess runs
_OUTCOMES = "PURENN_TEST_OUTCOMES"  # the JSON file the subprocess writes its outcomes to
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def subprocess_mark() -> str | None:
    """The mark whose tests this process runs, if it is one of the subprocesses."""
    return os.environ.get(_MODE)


def xla_flags(flags: str) -> str:
    """The environment's XLA ``flags`` with this process's own: ``SESSION_FLAGS``, or
    those of the mark whose subprocess it is."""
    mark = subprocess_mark()
    own = SESSION_FLAGS if mark is None else MARKS[mark][0]
    return " ".join(dict.fromkeys([*flags.split(), *own]))


def one_core() -> None:
    """Run this process's threads, and the subprocesses it starts, on one core (where the
    system lets a process choose, as Linux does). XLA's and OpenBLAS's worker threads
    wait for work by spinning: on the tests' small programs they spend more CPU than
    they save (about a tenth of the suite's). Each session takes a core by its process
    id, so that sessions run side by side spread over the cores."""
    if not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    core = {cores[os.getpid() % len(cores)]}
    try:  # every thread of the process; the threads started later take this one's core
        threads = [int(thread) for thread in os.listdir("/proc/self/task")]
    except OSError:
        threads = [0]
    for thread in threads:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(thread, core)


def with_devices(count: int) -> str:
    """This process's XLA flags and ``count`` virtual CPU devices, for a child that needs
    them (the device count of a process is fixed when JAX starts)."""
    return f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={count}"


def _run_subprocess(mark: str, nodeids: list[str]) -> dict:
    """``{nodeid: {"outcome": ..., "text": ...}}`` of ``nodeids`` run by pytest in the
    subprocess of ``mark``."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "outcomes.json")
        env = dict(os.environ, **{_MODE: mark, _OUTCOMES: path})
        env["XLA_FLAGS"] = " ".join(flag for flag in env.get("XLA_FLAGS", "").split()
                                    if flag not in SESSION_FLAGS)
        # without Hypothesis's plugin (a second of start-up): no marked test uses it
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "-p", "no:hypothesispytest", *nodeids], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=1800)
        if not os.path.exists(path):
            pytest.fail(f"the {mark} subprocess wrote no outcomes (exit code "
                        f"{done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}",
                        pytrace=False)
        with open(path) as file:
            return json.load(file)


class ParentSession:
    """The hooks of the session that sends its marked tests to the subprocesses: the
    first test of a mark to run starts its subprocess, for all of them."""

    def __init__(self):
        self.outcomes: dict = {}  # mark -> {nodeid: outcome}

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem):
        mark = _mark_of(pyfuncitem)
        if mark is None:
            return None
        if mark not in self.outcomes:
            self.outcomes[mark] = {}  # started once: if it fails, this test shows why
            self.outcomes[mark] = _run_subprocess(
                mark, [item.nodeid for item in pyfuncitem.session.items
                       if _mark_of(item) == mark])
        outcome = self.outcomes[mark].get(pyfuncitem.nodeid, {
            "outcome": "failed", "text": "not run by the subprocess"})
        if outcome["outcome"] == "skipped":
            pytest.skip(outcome["text"])
        if outcome["outcome"] != "passed":
            pytest.fail(f"in the {mark} subprocess:\n{outcome['text']}", pytrace=False)
        return True


def _mark_of(item) -> str | None:
    """The subprocess mark ``item`` carries, if any."""
    return next((mark for mark in MARKS if item.get_closest_marker(mark)), None)


class SubprocessSession:
    """The hooks of the subprocess: it records each test's outcome and writes them all
    to the file the parent named."""

    def __init__(self, path: str):
        self.path = path
        self.outcomes: dict = {}

    def pytest_runtest_logreport(self, report):
        recorded = self.outcomes.get(report.nodeid)
        if report.failed:
            self.outcomes[report.nodeid] = {"outcome": "failed", "text": report.longreprtext}
        elif report.skipped and recorded is None:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else \
                report.longreprtext
            self.outcomes[report.nodeid] = {"outcome": "skipped", "text": reason}
        elif report.when == "call" and recorded is None:
            self.outcomes[report.nodeid] = {"outcome": "passed", "text": ""}

    def pytest_sessionfinish(self, session):
        with open(self.path, "w") as file:
            json.dump(self.outcomes, file)


def register(config) -> None:
    """Add the marks and this session's hooks (the parent's or a subprocess's)."""
    for mark, (_, help_text) in MARKS.items():
        config.addinivalue_line("markers", f"{mark}: {help_text}")
    if subprocess_mark() is None:
        config.pluginmanager.register(ParentSession())
    elif os.environ.get(_OUTCOMES):
        config.pluginmanager.register(SubprocessSession(os.environ[_OUTCOMES]))
