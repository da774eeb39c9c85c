"""``python -m benchmarks``: one ``--quick`` run writes a report with every section, every
target and every contender (measured, or "not installed"), and a plot; the NumPy job prints
what the command line prints; ``--device gpu`` without a GPU says so; and the benchmarks use
only purenn's public names, in a one-way import graph.

The ``--quick`` run is ``benchmarks``' own ``main`` in this process, and so are the
processes it would launch (the first-fit children, ``purenn book`` and the NumPy job): the
report machinery is what is tested here; the NumPy job's own process is launched once.

Nothing here asserts a time: the machine may be shared, and the numbers are the report's job.
"""

import ast
import contextlib
import io
import json
import os
import re
import subprocess
import sys
import time

import pytest

from benchmarks import compiles, job, numpy_job
from benchmarks.__main__ import main as benchmarks_main
from purenn import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = os.path.join(REPO, "benchmarks")
CONTENDERS = ("purenn fit", "plain JAX (jax.grad, lax.scan)", "Flax + Optax",
              "NumPy book code (float32)", "PyTorch eager")
SECTIONS = ("## Environment", "## Targets", "## Time per epoch", "### 30×8",
            "### XLA ops per training step", "## A first fit in a fresh process",
            "## The whole job")
TARGETS = ("per epoch, fit ÷ plain JAX, 30×8", "fresh process, first fit with validation",
           "programs ≥ 50 ms to compile in a first fit", "compiles in 2 further fits",
           "whole job ÷ NumPy, empty compilation cache", "whole job ÷ NumPy, warm compilation")
LAST_LINE = re.compile(r"^epoch: \d+, acc: \d\.\d{3}, loss: \d+\.\d{3} \(data_loss: \d+\.\d{3}, "
                       r"reg_loss: \d+\.\d{3}\), lr: [0-9.e-]+$")
VALIDATION_LINE = re.compile(r"^validation, acc: \d\.\d{3}, loss: \d+\.\d{3}$")
# What job.run_process would launch as ``python -m MODULE ARGS``, run here instead.
IN_PROCESS = {"purenn": cli.main, "benchmarks.numpy_job": numpy_job.main,
              "benchmarks.compiles": lambda argv: print(json.dumps(compiles.child(argv)))}


def run_in_process(command: list, env: dict) -> dict:
    """``job.run_process``'s result for ``[python, "-m", module, *args]``, from the module's
    main run in this process (``env`` is the child's, unused here)."""
    assert command[:2] == [sys.executable, "-m"], command
    module, argv = command[2], command[3:]
    out = io.StringIO()
    wall, cpu = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(out):
        code = IN_PROCESS[module](argv)
    assert code in (None, 0), (command, code)
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
            "stdout": out.getvalue()}


def _env():
    return {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    table, plot = out / "benchmarks.md", out / "benchmarks.png"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(job, "run_process", run_in_process)
        assert benchmarks_main(["--quick", "--out", str(table), "--plot", str(plot)]) == 0
    return table.read_text(), plot


@pytest.mark.slow  # one --quick run: every section compiles its programs once
def test_quick_report_has_every_section_target_and_contender(quick_report):
    text, plot = quick_report
    assert text.startswith("# Benchmarks")
    for section in SECTIONS:
        assert f"\n{section}\n" in text, section
    for target in TARGETS:
        row = [line for line in text.splitlines() if line.startswith(f"| {target}")]
        assert row and re.search(r"\| (met|missed) \|$", row[0]), target
    for name in CONTENDERS:
        row = [line for line in text.splitlines() if line.startswith(f"| {name} |")]
        assert row, name
        assert "not installed" in row[0] or re.match(rf"\| {re.escape(name)} \| \d", row[0])
    for process in ("purenn", "plain JAX", "purenn, empty compilation cache",
                    "purenn, warm compilation cache", "NumPy book code (float32)"):
        assert f"\n| {process} | " in text, process
    assert re.search(r"\| 30×8 \| \d+ \| \d+ \| \d+ \| \d+ \|", text)  # XLA ops: step, loop
    assert re.search(r"- date: \d{4}-\d\d-\d\dT", text) and "- machine: " in text
    assert "- load average at the start: " in text and "jax " in text
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_the_job_rows_end_with_the_lines_the_command_prints(quick_report):
    text, _ = quick_report
    job = text[text.index("## The whole job"):]
    rows = [line for line in job.splitlines() if line.startswith("| purenn, ")
            or line.startswith("| NumPy ")]
    assert len(rows) == 3
    for row in rows:
        assert VALIDATION_LINE.match(row.rsplit("`", 2)[1]), row


def test_numpy_job_prints_what_the_cli_prints():
    # the NumPy job is the process a reader of the book runs: no JAX in it
    script = ("import sys, runpy; sys.argv = ['x', '--epochs', '3']\n"
              "try:\n    runpy.run_module('benchmarks.numpy_job', run_name='__main__')\n"
              "except SystemExit as done:\n    assert done.code == 0, done.code\n"
              "assert 'jax' not in sys.modules")
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    last, validation = proc.stdout.splitlines()
    assert LAST_LINE.match(last) and last.startswith("epoch: 2, "), last
    assert VALIDATION_LINE.match(validation), validation


def test_gpu_mode_without_a_gpu_says_so_and_exits_2(capsys):
    jax = pytest.importorskip("jax")
    try:
        has_gpu = bool(jax.devices("gpu"))
    except RuntimeError:
        has_gpu = False
    if has_gpu:
        pytest.skip("a GPU is present: --device gpu would run the real benchmark")
    assert benchmarks_main(["--device", "gpu"]) == 2
    assert "no GPU visible to JAX" in capsys.readouterr().err


def _modules():
    for name in sorted(os.listdir(BENCHMARKS)):
        if name.endswith(".py"):
            with open(os.path.join(BENCHMARKS, name)) as f:
                yield name[:-3], ast.parse(f.read())


def test_benchmarks_use_no_private_purenn_name():
    for module, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("purenn"):
                names = [node.module, *(alias.name for alias in node.names)]
                assert not any(n.split(".")[-1].startswith("_") for n in names), module
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                    and not node.attr.startswith("__"):
                assert not (isinstance(node.value, ast.Name)
                            and node.value.id in ("pn", "purenn", "train", "experiments")), (
                    f"benchmarks/{module}.py uses {node.value.id}.{node.attr}")


def test_benchmarks_import_each_other_one_way():
    imports = {}
    for module, tree in _modules():
        imports[module] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "benchmarks":
                imports[module] |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "benchmarks."):
                imports[module].add(node.module.split(".")[1])
    done = set()
    while len(done) < len(imports):  # take a module whose imports are all taken
        ready = [m for m in imports if m not in done and imports[m] <= done]
        assert ready, f"an import cycle among {sorted(set(imports) - done)}"
        done |= set(ready)
