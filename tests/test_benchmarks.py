"""Smoke test of ``python -m benchmarks``: it runs at tiny sizes, prints a row for every
contender and size that ``--quick`` includes, and writes the report and the plot; and the
NumPy job prints what the CLI prints.

Nothing here asserts a time: the machine is shared, and the numbers are the report's job.
"""

import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

QUICK_SIZES = ("30×8", "60×8", "60×16")
CONTENDERS = ("purenn fit", "plain JAX (jax.grad)", "Flax + Optax", "NumPy book code (float32)",
              "PyTorch eager")
LAST_LINE = re.compile(r"^epoch: \d+, acc: \d\.\d{3}, loss: \d+\.\d{3} \(data_loss: \d+\.\d{3}, "
                       r"reg_loss: \d+\.\d{3}\), lr: [0-9.e-]+$")
VALIDATION_LINE = re.compile(r"^validation, acc: \d\.\d{3}, loss: \d+\.\d{3}$")


def _env():
    return {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    table, plot = out / "benchmarks.md", out / "benchmarks.png"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(table), "--plot",
         str(plot)],
        cwd=REPO, env=_env(), capture_output=True, text=True, timeout=900)
    return proc, table, plot


@pytest.mark.slow  # one --quick run: ~1.5 min of compiling on 2 busy cores
def test_quick_run_succeeds_and_writes_the_report(quick_run):
    proc, table, plot = quick_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = table.read_text()
    assert text.startswith("# Benchmarks")
    for section in ("## Targets", "## Time per epoch, the book's sizes", "## Sweeps",
                    "## Compile time of a first fit", "## The whole job",
                    "### Where the purenn process's time goes",
                    "## Where the training program's compile goes",
                    "### The programs a first run compiles before the training program",
                    "## Many seeds at once", "## What makes fit fast",
                    "## Proposed, not applied: P4"):
        assert section in text, section
    # what the one-program fit replaced is gone from the report
    assert "P2" not in text and "P3" not in text and "chunk_runner" not in text
    assert "_dweights_row_major" in text  # the shipped rule, quoted from purenn
    for target in ("whole job, empty compilation cache", "whole job, warm compilation cache",
                   "XLA compile of a first `pn.fit`", "per epoch: fit ÷ plain JAX"):
        assert f"| {target}" in text, target
    assert plot.stat().st_size > 1000
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_quick_run_prints_a_row_for_every_contender_and_size(quick_run):
    proc, table, _ = quick_run
    lines = proc.stdout.splitlines()
    text = table.read_text()
    for size in QUICK_SIZES:
        for name in CONTENDERS:
            rows = [line for line in lines
                    if line.strip().startswith(size + " ") and f" {name} " in line + " "]
            assert rows, f"no row for {name} at {size}:\n" + "\n".join(lines)
            # measured (a time and a ratio), or skipped with a reason (optional packages)
            assert all("ms/epoch" in row or "skipped: not installed" in row for row in rows)
    # the table: one section per main size, one row per sweep point
    for size in ("30×8", "60×8"):
        assert f"### {size} " in text
    assert "### hidden width (samples 60)" in text and "### samples (hidden 8)" in text
    for row in ("| 8 |", "| 16 |", "| 30 |", "| 60 |"):
        assert row in text
    for name in CONTENDERS:
        assert f"| {name} |" in text
    # the book's NumPy classes as they are (float64) only at the main sizes
    assert any("NumPy book code (float64)" in line for line in lines)
    for name in ("× pn.fit (sequential)", "fit's training program (sequential)",
                 "vmap over seeds", "block-stacked", "seed-major"):
        assert any(line.strip().startswith("seeds ") and name in line for line in lines), name
    for name in ("train._run_program as shipped", "P4 (proposals.P4)"):
        assert any(line.strip().startswith("compile ") and name in line for line in lines)
    # the whole job: three processes, both purenn ones ending with the validation line
    for name in ("purenn, empty compilation cache", "purenn, warm compilation cache",
                 "NumPy book code (float32)"):
        assert any(line.strip().startswith(f"job {name}") for line in lines), name
    assert "| purenn, empty compilation cache |" in text
    for phase in ("| import jax |", "| data |", "| init |", "| fit |",
                  "| fit: the training program (trace, lower, compile) |"):
        assert phase in text, phase


def test_numpy_job_prints_what_the_cli_prints():
    proc = subprocess.run([sys.executable, "-m", "benchmarks.numpy_job", "--epochs", "3"],
                          cwd=REPO, env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    last, validation = proc.stdout.splitlines()
    assert LAST_LINE.match(last) and last.startswith("epoch: 2, "), last
    assert VALIDATION_LINE.match(validation), validation
    # the NumPy job is the process a reader of the book runs: no JAX in it
    proc = subprocess.run([sys.executable, "-c", "import sys, runpy; sys.argv = ['x', "
                           "'--epochs', '1']; runpy.run_module('benchmarks.numpy_job', "
                           "run_name='__main__'); assert 'jax' not in sys.modules"],
                          cwd=REPO, env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_the_job_runs_purenn_with_the_cache_folder_it_is_given(tmp_path):
    from benchmarks import job

    env = job.cache_env(str(tmp_path), cli_cache=False)
    assert env["XDG_CACHE_HOME"] == str(tmp_path)
    assert env["JAX_COMPILATION_CACHE_DIR"].startswith(str(tmp_path))
    assert env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0"
    env = job.cache_env(str(tmp_path), cli_cache=True)
    assert env["XDG_CACHE_HOME"] == str(tmp_path)
    assert "JAX_COMPILATION_CACHE_DIR" not in env and "PURENN_NO_CACHE" not in env


def test_gpu_mode_without_a_gpu_says_so_and_exits_2():
    jax = pytest.importorskip("jax")
    try:
        has_gpu = bool(jax.devices("gpu"))
    except RuntimeError:
        has_gpu = False
    if has_gpu:
        pytest.skip("a GPU is present: --device gpu would run the real benchmark")
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--device", "gpu"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "no GPU visible to JAX" in proc.stderr
