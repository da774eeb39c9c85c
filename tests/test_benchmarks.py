"""Smoke test of ``python -m benchmarks``: it runs at tiny sizes, prints a row for every
contender and size that ``--quick`` includes, and writes the report and the plot.

Nothing here asserts a time: the machine is shared, and the numbers are the report's job.
"""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # one --quick run: ~40-60 s of compiling on 2 cores

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

QUICK_SIZES = ("30×8", "60×8", "60×16")
CONTENDERS = ("purenn fit", "plain JAX (jax.grad)", "Flax + Optax", "NumPy book code (float32)",
              "PyTorch eager")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    table, plot = out / "benchmarks.md", out / "benchmarks.png"
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(table), "--plot",
         str(plot)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    return proc, table, plot


def test_quick_run_succeeds_and_writes_the_report(quick_run):
    proc, table, plot = quick_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = table.read_text()
    assert text.startswith("# Benchmarks")
    for section in ("## Targets", "## Time per epoch, the book's sizes", "## Sweeps",
                    "## Compile time", "## Many seeds at once", "## What makes fit fast",
                    "## Options measured but not applied", "### P2: one compiled program "
                    "per fit (not applied)", "### P3: a persistent compilation cache for the "
                    "CLI (not applied)"):
        assert section in text
    # the dense change is in the library: no contender applies it (again) as a proposal
    assert not [row for row in text.splitlines() if row.startswith("| ") and "P1" in row]
    assert "_dweights_row_major" in text  # the shipped rule, quoted from purenn
    assert plot.stat().st_size > 1000
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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
    for name in ("× pn.fit (sequential)", "whole-run scan (sequential)", "vmap over seeds",
                 "block-stacked", "seed-major"):
        assert any(line.strip().startswith("seeds ") and name in line for line in lines), name
    assert any(line.strip().startswith("compile  fit chunk") for line in lines)


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
