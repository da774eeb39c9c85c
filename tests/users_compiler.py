"""How the tests compile, and the tests that compile as users' processes do.

The session compiles with two XLA flags users do not set (``SESSION_FLAGS``): no LLVM
optimization, and XLA:CPU's older fusion emitters, which compile the training loops about
three times faster than the default ones. Neither changes what a program computes, only
how its machine code is made, and the comparisons with the NumPy reference have
tolerances. Two kinds of test need the compiler users run, XLA's defaults, and are marked
``users_compiler``:

- those of bits that two *different* programs share, which depend on the code generator:
  the lean loop and its checked replay, a run with a dropout layer of rate 0 and one
  without, an initializer's program and the eager operations, ``jit_program``'s options
  and a plain jit; purenn promises them as users compile;
- those that run thousands of epochs (the book's full runs), 2-3 times faster in CPU
  with the optimized code than with the session's, compiling included.

All of a session's ``users_compiler`` tests run in one subprocess, ``python -m pytest
NODEIDS`` with the environment's own XLA flags, started by the first of them to run; each
then reports its own outcome from that run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import pytest

MARKER = "users_compiler"
MARKER_HELP = (f"{MARKER}: the test runs in a subprocess that compiles with XLA's defaults, "
               f"as users' processes do (tests/users_compiler.py)")

SESSION_FLAGS = ("--xla_backend_optimization_level=0", "--xla_cpu_use_fusion_emitters=false")

_MODE = "PURENN_TEST_COMPILER"  # "users" in the subprocess
_OUTCOMES = "PURENN_TEST_OUTCOMES"  # the JSON file the subprocess writes its outcomes to
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def in_users_compiler() -> bool:
    """Whether this process is the subprocess that runs the ``users_compiler`` tests."""
    return os.environ.get(_MODE) == "users"


def xla_flags(flags: str) -> str:
    """The environment's XLA ``flags``, with ``SESSION_FLAGS`` added except in the
    ``users_compiler`` subprocess."""
    own = () if in_users_compiler() else SESSION_FLAGS
    return " ".join(dict.fromkeys([*flags.split(), *own]))


def _run_subprocess(nodeids: list[str]) -> dict:
    """``{nodeid: {"outcome": ..., "text": ...}}`` of ``nodeids`` run by pytest in a
    subprocess that compiles with the environment's own XLA flags."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "outcomes.json")
        env = dict(os.environ, **{_MODE: "users", _OUTCOMES: path})
        env["XLA_FLAGS"] = " ".join(flag for flag in env.get("XLA_FLAGS", "").split()
                                    if flag not in SESSION_FLAGS)
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               *nodeids], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=1800)
        if not os.path.exists(path):
            pytest.fail(f"the users_compiler subprocess wrote no outcomes (exit code "
                        f"{done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}",
                        pytrace=False)
        with open(path) as file:
            return json.load(file)


class ParentSession:
    """The hooks of the session that sends its ``users_compiler`` tests to the
    subprocess: the first such test to run starts it, for all of them."""

    def __init__(self):
        self.outcomes: dict | None = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem):
        if pyfuncitem.get_closest_marker(MARKER) is None:
            return None
        if self.outcomes is None:
            self.outcomes = {}  # started once: if it fails, this test shows why
            self.outcomes = _run_subprocess(
                [item.nodeid for item in pyfuncitem.session.items
                 if item.get_closest_marker(MARKER) is not None])
        outcome = self.outcomes.get(pyfuncitem.nodeid, {"outcome": "failed",
                                                        "text": "not run by the subprocess"})
        if outcome["outcome"] == "skipped":
            pytest.skip(outcome["text"])
        if outcome["outcome"] != "passed":
            pytest.fail(f"in the users_compiler subprocess:\n{outcome['text']}",
                        pytrace=False)
        return True


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
    """Add the marker and this session's hooks (parent or subprocess) to ``config``."""
    config.addinivalue_line("markers", MARKER_HELP)
    if in_users_compiler() and os.environ.get(_OUTCOMES):
        config.pluginmanager.register(SubprocessSession(os.environ[_OUTCOMES]))
    elif not in_users_compiler():
        config.pluginmanager.register(ParentSession())
