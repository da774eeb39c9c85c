"""The command's checks before a run starts: a run too large for the machine by XLA's
analysis of its training program is refused with exit 2 (without adding a compile to a
run that fits), and ``--classes`` below 2 is refused."""

import dataclasses
import re

import pytest

from purenn import cli, experiments
from purenn.cli import memory
from tests import counting

WIDE = ["train", "--hidden", "3000", "3000", "--epochs", "2"]


def test_a_run_too_large_by_xlas_analysis_is_refused_before_it_starts(monkeypatch, capsys):
    config = dataclasses.replace(experiments.BOOK["regularization"].config,
                                 hidden=(3000, 3000), epochs=2)
    # 173 MB from shapes alone, which fits; XLA's analysis of the program says 375 MB
    limit = int(1.5 * experiments.estimate_memory(config).total)
    monkeypatch.setattr(experiments, "memory_limit", lambda: (limit, "this machine's memory"))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(WIDE)
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1, err
    assert re.match(r"purenn train: error: this run needs 3\d\d\.\d MB of memory by XLA's "
                    r"analysis of its training program, more than this machine's memory "
                    r"\(259\.7 MB\); use a smaller --hidden", err), err


def test_the_memory_check_adds_no_compile_to_a_run(monkeypatch, capsys):
    # shapes no other test trains, so that this process has not compiled them yet; a
    # limit at 4 times the shapes' estimate (15 MB; XLA's analysis: 23 MB), within
    # MEMORY_SCREEN of it, so that the analysis runs
    argv = ["train", "--hidden", "700", "700", "--samples", "100", "--validation-samples",
            "0", "--epochs", "1", "--quiet"]
    config = dataclasses.replace(experiments.BOOK["regularization"].config,
                                 hidden=(700, 700), samples=100, validation_samples=0)
    limit = 4 * experiments.estimate_memory(config).total
    monkeypatch.setattr(experiments, "memory_limit", lambda: (limit, "this machine's memory"))
    analysed = []
    monkeypatch.setattr(memory, "measure_memory",
                        lambda *a, measure=memory.measure_memory, **k: analysed.append(1)
                        or measure(*a, **k))
    with counting.compiles() as seen:
        assert cli.main(argv) == 0
    assert analysed == [1]
    assert [name for name, _ in seen].count("jit(_run_program)") == 1
    assert len(capsys.readouterr().out.splitlines()) == 1


def test_a_run_far_below_the_limit_skips_xlas_analysis(monkeypatch, capsys):
    # the book's model: 0.3 MB from shapes, far below any machine's memory
    monkeypatch.setattr(memory, "measure_memory", lambda *a, **k: pytest.fail("analysed"))
    assert cli.main(["train", "--epochs", "1", "--quiet"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2  # the epoch and validation lines


@pytest.mark.parametrize("argv", [["train", "--classes", "1"],
                                  ["sweep", "--out", "unused", "--classes", "1,3"]])
def test_classes_below_two_is_an_error(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.endswith(
        "--classes: must be an integer >= 2 (a classifier needs two classes at least), "
        f"got 1 (see 'purenn {argv[0]} --help')\n")
