"""Sweeps: ``purenn.sweep.run_grid`` and the ``purenn sweep`` command.

Every run of a sweep must be the run ``purenn train`` makes (same printed final lines),
runs that differ only in hyperparameter values and seeds must share one compiled program,
and the vmapped path (what accelerators run) must agree with the sequential one. The
library tests run in float64 (conftest); the command runs in float32, as users run it.
"""

import dataclasses
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import purenn as pn
from purenn import cli, experiments, plotting, sweep
from purenn.cli import options
from purenn.experiments import Config
from tests import fresh_process
from tests.cli_calls import ERROR, call, read_csv
from tests.counting import compiles

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 51
BASE = Config(validation_samples=20, optimizer_args=(("learning_rate", 0.02),), epochs=EPOCHS)
GRID = {"weight_l2": [0.0, 5e-4], "dropout": [0.0, 0.1]}
SEEDS = [0, 1]
SWEEP_ARGS = ["sweep", "--weight-l2", "0,5e-4", "--dropout", "0,0.1", "--seeds", "2",
              "--learning-rate", "0.02", "--epochs", str(EPOCHS), "--validation-samples", "20"]
HEADER = ["weight_l2", "dropout", "seed", "train_loss", "train_accuracy", "val_loss",
          "val_accuracy", "command"]
LOG = re.compile(r"^epoch: (\d+), acc: (\d\.\d{3}), loss: (\d+\.\d{3}) .*")
VALIDATION = re.compile(r"^validation, acc: (\d\.\d{3}), loss: (\d+\.\d{3})$")


# --- the library ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def results():
    return sweep.run_grid(BASE, GRID, SEEDS, mode="sequential", progress=False)


def test_cells_are_the_product_last_name_fastest():
    assert sweep.cells({"a": [1, 2], "b": [3, 4, 5]}) == [
        {"a": 1, "b": 3}, {"a": 1, "b": 4}, {"a": 1, "b": 5},
        {"a": 2, "b": 3}, {"a": 2, "b": 4}, {"a": 2, "b": 5}]
    assert sweep.cells({}) == [{}]


def test_apply_values_sets_config_fields_and_optimizer_arguments():
    config = sweep.apply_values(BASE, {"weight_l2": 1e-3, "dropout": 0.2,
                                       "learning_rate": 0.5, "decay": 1e-4})
    assert (config.weight_l2, config.dropout) == (1e-3, 0.2)
    assert config.optimizer_args == (("learning_rate", 0.5), ("decay", 1e-4))
    assert BASE.weight_l2 == 0.0  # the base is left alone
    with pytest.raises(ValueError, match=r"'hidden' is not a hyperparameter a sweep can vary"):
        sweep.apply_values(BASE, {"hidden": 3})


@pytest.mark.parametrize("grid, seeds, error, message", [
    ({"hidden": [8, 16]}, [0], ValueError, r"'hidden' is not a hyperparameter"),
    ({"momentum": [0.0, 0.9]}, [0], ValueError, r"'momentum' is not an argument of adam"),
    ({"dropout": []}, [0], ValueError, r"grid\['dropout'\] is empty"),
    ({"dropout": [0.1, 0.1]}, [0], ValueError, r"grid\['dropout'\] repeats a value"),
    ({"dropout": 0.1}, [0], TypeError, r"grid\['dropout'\] must be a list of values"),
    ({"dropout": [0.1, 1.5]}, [0], ValueError, r"rate must be in \[0, 1\)"),
    ({"dropout": [0.1]}, [], ValueError, r"seeds is empty"),
    ({"dropout": [0.1]}, [0, 0], ValueError, r"seeds repeats a seed"),
    ({"dropout": [0.1]}, [-1], ValueError, r"seeds must be integers in \[0, 2\*\*31\)"),
])
def test_bad_grids_are_refused_before_training(grid, seeds, error, message):
    with pytest.raises(error, match=message):
        sweep.run_grid(BASE, grid, seeds, progress=False)
    with pytest.raises(ValueError, match=r"mode must be 'sequential' or 'vmap'"):
        sweep.run_grid(BASE, {"dropout": [0.1]}, [0], mode="fast", progress=False)


def test_run_grid_trains_every_cell_for_every_seed(results):
    assert [(r.values, r.seed) for r in results] == [
        (cell, seed) for cell in sweep.cells(GRID) for seed in SEEDS]
    for r in results:
        assert r.config == sweep.apply_values(BASE, r.values)
        assert r.diverged_at is None
        assert set(r.metrics) == set(sweep.METRICS)
        assert all(math.isfinite(v) for v in r.metrics.values())
        assert r.metrics["train_loss"] == r.history["loss"][-1]
        assert len(r.history["loss"]) == EPOCHS
        # params come back in the structure of the run's own model (no dropout layer at 0)
        like = experiments.components(r.config)[0].init(jax.random.key(0))
        assert jax.tree.structure(r.params) == jax.tree.structure(like)
    # the runs differ: seeds and values change the results
    assert len({r.metrics["train_loss"] for r in results}) == len(results)


@pytest.mark.users_codegen
def test_each_run_is_the_run_purenn_train_makes():
    # Both cells run as one structure, with a dropout layer: at rate 0 in the first cell,
    # whose run alone has no such layer, and bit for bit that run.
    runs = sweep.run_grid(BASE, {"dropout": [0.0, 0.1]}, [0], mode="sequential",
                          progress=False)
    assert [r.values for r in runs] == [{"dropout": 0.0}, {"dropout": 0.1}]
    for r in runs:
        alone = experiments.run(r.config, r.seed, log_every=None, log_fn=None,
                                progress=False)
        assert r.metrics["train_loss"] == alone.history["loss"][-1]
        assert r.metrics["train_accuracy"] == alone.history["accuracy"][-1]
        assert r.metrics["val_loss"] == alone.validation["loss"]
        assert r.metrics["val_accuracy"] == alone.validation["accuracy"]
        np.testing.assert_array_equal(r.history["loss"], alone.history["loss"])
        for a, b in zip(jax.tree.leaves(r.params), jax.tree.leaves(alone.params)):
            np.testing.assert_array_equal(a, b)


def test_a_dropout_rate_of_0_keeps_the_layer_in_a_sweep_of_dropout():
    # The padding is internal (its runs are those of the unpadded models, tested above), so
    # which pieces it adds is seen only through the private _padding and _run_components.
    grid = {"weight_l2": [0.0, 1e-4], "dropout": [0.0, 0.1], "learning_rate": [0.01, 0.02]}
    # one after another only where it is bit for bit the run without the piece (dropout);
    # vmapped (equal to rounding only, anyway) penalty terms of strength 0 too
    assert sweep._padding(grid, "sequential") == ("dropout",)
    assert sweep._padding(grid, "vmap") == ("weight_l2", "dropout")
    assert sweep._padding({"dropout": [0.1, 0.2]}, "sequential") == ()
    config = sweep.apply_values(BASE, {"weight_l2": 0.0, "dropout": 0.0})
    own = experiments.components(config)[0]
    assert [type(layer).__name__ for layer in own.layers] == ["Dense", "Relu", "Dense"]
    model = sweep._run_components(config, ("dropout",))[0]
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Relu", "Dropout",
                                                                "Dense"]
    assert model.layers[2].rate == 0.0 and model.layers[0].weight_l2 is None
    model = sweep._run_components(config, ("weight_l2", "dropout"))[0]
    assert model.layers[2].rate == 0.0 and model.layers[0].weight_l2 == 0.0
    assert model.layers[0].bias_l2 is None


def test_summarize_is_the_mean_and_sample_std_over_seeds(results):
    summary = sweep.summarize(results)
    assert [cell.values for cell in summary] == sweep.cells(GRID)
    for cell, pair in zip(summary, (results[i:i + 2] for i in range(0, 8, 2))):
        assert cell.seeds == SEEDS
        for name in sweep.METRICS:
            values = [r.metrics[name] for r in pair]
            assert cell.mean[name] == pytest.approx(np.mean(values), rel=1e-12)
            assert cell.std[name] == pytest.approx(np.std(values, ddof=1), rel=1e-12)
        gaps = [r.metrics["train_accuracy"] - r.metrics["val_accuracy"] for r in pair]
        assert cell.mean["gap"] == pytest.approx(np.mean(gaps), rel=1e-12, abs=1e-15)
        assert cell.per_seed["gap"] == pytest.approx(gaps)


def made_up_summary(grid):
    """A summary over ``grid`` with made-up numbers, two seeds a cell: nothing trained."""
    summary = []
    for i, values in enumerate(sweep.cells(grid)):
        mean = {name: 0.5 + 0.01 * i for name in (*sweep.METRICS, "gap")}
        per_seed = {name: [value - 0.01, value + 0.01] for name, value in mean.items()}
        summary.append(sweep.Cell(values, [0, 1], mean, dict.fromkeys(mean, 0.01), per_seed))
    return summary


@pytest.mark.parametrize("grid, axes", [
    ({"dropout": [0.0, 0.1]}, 2),  # accuracy and gap against the values
    ({"weight_l2": [0.0, 1e-4, 5e-4, 1e-3], "dropout": [0.0, 0.1]}, 2),  # a line per rate
    ({"weight_l2": [0.0, 1e-4, 5e-4, 1e-3], "dropout": [0.0, 0.1, 0.2, 0.3]}, 6),  # 3 maps
    ({"weight_l2": [0.0, 1e-4], "dropout": [0.0, 0.1], "learning_rate": [0.01, 0.02]}, 6),
])
def test_plot_sweep_has_a_layout_for_each_shape_of_grid(grid, axes, tmp_path):
    summary = made_up_summary(grid)
    assert len(plotting.figure_sweep(summary, grid).axes) == axes  # maps: with colour bars
    plotting.plot_sweep(tmp_path / "sweep.png", summary, grid)
    assert (tmp_path / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="nothing to plot: the grid varies no hyperparameter"):
        plotting.figure_sweep(summary, {})


def test_the_library_does_not_import_the_command():
    # a fresh process (the one tests/fresh_process.py starts) imports the library
    assert fresh_process.child()["imports"]["cli"] == []


def test_on_result_and_skip(results):
    seen = []
    done = {(0.0, 0.0, 0), (5e-4, 0.1, 1)}
    new = sweep.run_grid(BASE, GRID, SEEDS, mode="sequential", progress=False,
                         on_result=seen.append,
                         skip=lambda v, s: (v["weight_l2"], v["dropout"], s) in done)
    assert seen == new
    assert len(new) == 6
    assert {(r.values["weight_l2"], r.values["dropout"], r.seed) for r in new}.isdisjoint(done)
    same = {(tuple(r.values.values()), r.seed): r.metrics for r in results}
    for r in new:  # the same runs, whatever ran before them
        assert r.metrics == same[(tuple(r.values.values()), r.seed)]


@pytest.mark.x64
def test_vmapped_runs_are_the_sequential_runs(monkeypatch):
    # The path accelerators take, forced on the CPU, in float64: the same runs to
    # rounding (vmapped dots may sum in another order). Two groups of 4, as if the
    # device's memory held 4 runs: the device's memory decides the group size, so the
    # test replaces the private _group_size (and sees how many runs each structure has).
    # 11 epochs, as tests/test_sweep_safety.py's: the same programs, a fifth of the epochs.
    base = dataclasses.replace(BASE, epochs=11)
    results = sweep.run_grid(base, GRID, SEEDS, mode="sequential", progress=False)
    sizes = []

    def group_size(configs, count):
        sizes.append(count)
        assert len(configs) == count
        return 4

    monkeypatch.setattr(sweep, "_group_size", group_size)
    vmapped = sweep.run_grid(base, GRID, SEEDS, mode="vmap", progress=False)
    assert sizes == [8]  # one structure: L2 terms and dropout layers at 0 where needed
    assert [(r.values, r.seed) for r in vmapped] == [(r.values, r.seed) for r in results]
    for a, b in zip(vmapped, results):
        assert a.diverged_at is None
        for name in sweep.METRICS:
            assert a.metrics[name] == pytest.approx(b.metrics[name], rel=1e-6), name
        np.testing.assert_allclose(a.history["loss"], b.history["loss"], rtol=1e-6)
        for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
            np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("mode", ["sequential", "vmap"])
def test_a_diverging_run_gets_nan_and_the_others_go_on(mode):
    results = sweep.run_grid(BASE, {"learning_rate": [0.02, 1e300]}, [0], progress=False,
                             mode=mode)
    fine, diverged = results
    assert fine.diverged_at is None and math.isfinite(fine.metrics["val_accuracy"])
    assert isinstance(diverged.diverged_at, int) and 0 <= diverged.diverged_at < 21
    assert all(math.isnan(v) for v in diverged.metrics.values())
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(diverged.params))


def test_one_compile_per_structure():
    # Sizes no other test uses, so that the training program is new here.
    config = Config(samples=11, hidden=(7,), validation_samples=5,
                    optimizer_args=(("learning_rate", 0.02),), epochs=21)
    runs = []  # the compiles each run made, by the count of compiles when it ended
    with compiles() as seen:
        sweep.run_grid(config, {"weight_l2": [1e-4, 2e-4], "dropout": [0.0, 0.1]}, [3, 4],
                       progress=False, mode="sequential",
                       on_result=lambda result: runs.append(len(seen)))
    grid = [name for name, _ in seen]
    with compiles() as seen:
        sweep.run_grid(config, {"weight_l2": [5e-4, 3e-4], "dropout": [0.2, 0.0]}, [5, 6],
                       progress=False, mode="sequential")
    again = [name for name, _ in seen]
    # 2 x 2 cells x 2 seeds: the training program and the evaluation program compile once,
    # in the first run (with its data and init); the other 7 runs compile nothing but one
    # init program: a run starts from the params purenn train would, the init of the
    # cell's own model, and a cell with dropout has one layer more (another structure)
    assert sum("_run_program" in name for name in grid) == 1, grid
    assert sum("_evaluate_program" in name for name in grid) == 1, grid
    assert len(runs) == 8 and runs == sorted(runs) and runs[-1] - runs[0] == 1, (runs, grid)
    assert grid[runs[0]:] == ["jit(_method_program)"], grid
    assert again == []  # new values and seeds: nothing new


# --- the command ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "new" / "folder"
    code, stdout, stderr = call([*SWEEP_ARGS, "--out", out])
    assert code == 0, stderr
    return out, stdout, stderr


def test_sweep_writes_one_row_per_run(swept):
    out, _, stderr = swept
    header, rows = read_csv(out / "runs.csv")
    assert header == HEADER
    assert [(float(r["weight_l2"]), float(r["dropout"]), int(r["seed"])) for r in rows] == [
        (w, d, s) for w in (0, 5e-4) for d in (0, 0.1) for s in (0, 1)]
    for row in rows:
        assert 0 < float(row["train_accuracy"]) <= 1 and 0 < float(row["val_accuracy"]) <= 1
        assert float(row["train_loss"]) > 0 and float(row["val_loss"]) > 0
        command = shlex.split(row["command"])
        assert command[:2] == ["purenn", "train"]
        assert command[-2:] == ["--seed", row["seed"]]
    assert "wrote" in stderr and "runs.csv" in stderr


def test_sweep_prints_and_writes_the_summary(swept):
    out, stdout, _ = swept
    _, rows = read_csv(out / "runs.csv")
    header, summary = read_csv(out / "summary.csv")
    assert header[:3] == ["weight_l2", "dropout", "seeds"]
    assert "val_accuracy_mean" in header and "gap_std" in header
    assert len(summary) == 4
    lines = stdout.splitlines()
    assert lines[0].split()[:3] == ["weight_l2", "dropout", "seeds"]
    assert len(lines) == 5
    for cell, line in zip(summary, lines[1:]):
        runs = [r for r in rows if (r["weight_l2"], r["dropout"]) ==
                (cell["weight_l2"], cell["dropout"])]
        assert cell["seeds"] == "2" and len(runs) == 2
        for name in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            values = [float(r[name]) for r in runs]
            assert float(cell[f"{name}_mean"]) == pytest.approx(np.mean(values), rel=1e-9)
            assert float(cell[f"{name}_std"]) == pytest.approx(np.std(values, ddof=1),
                                                               rel=1e-9, abs=1e-12)
        # ± where stdout can encode it, +/- otherwise (here: a StringIO without encoding)
        val = (f"{float(cell['val_accuracy_mean']):.3f} (±|\\+/-) "
               f"{float(cell['val_accuracy_std']):.3f}")
        assert line.split()[:3] == [cell["weight_l2"], cell["dropout"], "2"]
        assert re.search(val, line), (val, line)


def test_sweep_draws_the_picture(swept):
    out, _, _ = swept
    data = (out / "sweep.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # three annotated heat maps, not an empty canvas


@pytest.mark.parametrize("index", [0, 7])  # L2 0 and dropout 0, seed 0; 5e-4 and 0.1, seed 1
def test_a_rows_command_prints_the_rows_numbers(swept, index):
    out, _, _ = swept
    _, rows = read_csv(out / "runs.csv")
    row = rows[index]
    code, stdout, stderr = call(shlex.split(row["command"])[1:] + ["--quiet"])
    assert code == 0, stderr
    log, validation = stdout.splitlines()
    log, validation = LOG.match(log), VALIDATION.match(validation)
    assert int(log[1]) == EPOCHS - 1
    assert (log[2], log[3]) == (f"{float(row['train_accuracy']):.3f}",
                                f"{float(row['train_loss']):.3f}")
    assert (validation[1], validation[2]) == (f"{float(row['val_accuracy']):.3f}",
                                              f"{float(row['val_loss']):.3f}")


def test_the_command_column_rebuilds_the_runs_config(swept):
    out, _, _ = swept
    _, rows = read_csv(out / "runs.csv")
    for row in rows:
        args = cli.build_parser().parse_args(shlex.split(row["command"])[1:])
        config = cli.config_from_args(args, args.parser)
        expected = dataclasses.replace(BASE, weight_l2=float(row["weight_l2"]),
                                       dropout=float(row["dropout"]))
        assert config == expected


def test_resume_trains_only_the_missing_runs(swept, tmp_path):
    out, stdout, _ = swept
    with open(out / "runs.csv", newline="") as file:
        lines = file.read().splitlines(keepends=True)
    (tmp_path / "runs.csv").write_text("".join(lines[:4]))  # header and 3 runs
    code, resumed_out, err = call([*SWEEP_ARGS, "--out", tmp_path, "--resume"])
    assert code == 0, err
    assert "3 of 8 runs already in" in err and "training the other 5" in err
    _, full = read_csv(out / "runs.csv")
    _, resumed = read_csv(tmp_path / "runs.csv")
    assert resumed[:3] == full[:3]
    assert sorted(resumed, key=str) == sorted(full, key=str)
    assert resumed_out == stdout


def test_resume_drops_a_half_written_row(swept, tmp_path):
    # a process killed while writing a row leaves it without its end: it is trained again
    out, _, _ = swept
    with open(out / "runs.csv", newline="") as file:
        lines = file.read().splitlines(keepends=True)
    (tmp_path / "runs.csv").write_text("".join(lines[:8]) + lines[8][:30])
    code, _, err = call([*SWEEP_ARGS, "--out", tmp_path, "--resume", "--quiet"])
    assert code == 0, err
    _, full = read_csv(out / "runs.csv")
    _, resumed = read_csv(tmp_path / "runs.csv")
    assert resumed == full  # the 7 kept rows, then the 8th trained again


def test_an_existing_sweep_needs_resume(swept, tmp_path):
    out, _, _ = swept
    shutil.copy(out / "runs.csv", tmp_path / "runs.csv")
    code, stdout, err = call([*SWEEP_ARGS, "--out", tmp_path])
    assert code == 2 and stdout == ""
    assert ERROR.match(err.strip()), err
    assert "already holds 8 run(s); pass --resume" in err
    # resuming with other options is refused: the rows were trained by other commands
    code, _, err = call([*SWEEP_ARGS[:-1], "30", "--out", tmp_path, "--resume"])
    assert code == 2 and ERROR.match(err.strip()), err
    assert "the other options differ" in err
    # and resuming another sweep's table too
    code, _, err = call(["sweep", "--dropout", "0,0.1", "--epochs", EPOCHS, "--out", tmp_path,
                         "--resume"])
    assert code == 2 and ERROR.match(err.strip()), err
    assert "holds another sweep" in err


def test_interrupted_sweep_keeps_the_finished_rows(tmp_path, monkeypatch):
    fit, calls = pn.fit, []

    def interrupted(*args, **kwargs):  # Ctrl-C during the third run (each is one pn.fit)
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return fit(*args, **kwargs)

    monkeypatch.setattr(pn, "fit", interrupted)
    code, stdout, err = call([*SWEEP_ARGS, "--out", tmp_path])
    assert code == 130
    assert "interrupted after 2 of 8 runs" in err and "--resume" in err
    header, rows = read_csv(tmp_path / "runs.csv")
    assert header == HEADER and len(rows) == 2
    assert not (tmp_path / "summary.csv").exists()


def test_without_matplotlib_the_picture_is_skipped(tmp_path, monkeypatch):
    def missing():
        raise ImportError(plotting.INSTALL_HINT)

    monkeypatch.setattr(plotting, "require_matplotlib", missing)
    code, _, err = call(["sweep", "--dropout", "0,0.1", "--epochs", 11,
                         "--validation-samples", 20, "--out", tmp_path])
    assert code == 0, err
    assert re.search(r"no sweep\.png: drawing it needs matplotlib: pip install", err)
    assert (tmp_path / "runs.csv").exists() and (tmp_path / "summary.csv").exists()
    assert not (tmp_path / "sweep.png").exists()


BAD = [
    (["--weight-l2", "1,,2"], r"argument --weight-l2: an empty item in '1,,2'"),
    (["--weight-l2", "1,"], r"argument --weight-l2: an empty item in '1,'"),
    (["--weight-l2", "0,abc"], r"argument --weight-l2: expected a number, got 'abc'"),
    (["--weight-l2", "1e-3,0.001"], r"argument --weight-l2: 0.001 given twice"),
    (["--dropout", "0,1.5"], r"argument --dropout: must be in \[0, 1\), got 1.5"),
    (["--epochs", "10,0"], r"argument --epochs: must be an integer >= 1, got 0"),
    (["--optimizer", "adam,sgd"], r"argument --optimizer: one value only, got 'adam,sgd'"),
    (["--hidden", "64,32"], r"argument --hidden: one value only, got '64,32'"),
    (["--seed", "0,1"], r"argument --seed: one value only.*--seeds N trains N seeds"),
    (["--momentum", "0,0.9"], r"--momentum does not apply to --optimizer adam"),
    (["--batch-size", "100,400"], r"--batch-size 400 is more than the 300 training"),
    (["--plot", "x.png"], r"unrecognized arguments: --plot x.png"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_sweep_input_is_one_line_and_exit_2(argv, message, tmp_path):
    code, stdout, err = call(["sweep", *argv, "--out", tmp_path / "out"])
    assert code == 2 and stdout == ""
    assert len(err.splitlines()) == 1 and ERROR.match(err.strip()), err
    assert re.search(message, err), err
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_out_is_required_and_must_be_a_folder(tmp_path):
    code, _, err = call(["sweep", "--dropout", "0,0.1"])
    assert code == 2 and ERROR.match(err.strip()), err
    assert "the following arguments are required: --out" in err
    (tmp_path / "file").write_text("")
    code, _, err = call(["sweep", "--dropout", "0,0.1", "--out", tmp_path / "file"])
    assert code == 2 and ERROR.match(err.strip()), err
    assert "--out '" in err and "is a file; give a folder" in err


def test_sweep_takes_every_option_of_train():
    # The parsers as built: argparse has no public way to list a parser's options.
    parser = cli.build_parser()
    subcommands = parser._subparsers._group_actions[0].choices
    train, sweep_parser = subcommands["train"], subcommands["sweep"]
    train_options = {o for a in train._actions for o in a.option_strings}
    mine = {o for a in sweep_parser._actions for o in a.option_strings}
    # all but those that write one run's own files and its validation clock
    assert train_options - mine == {"--plot", "--save", "--log-every", "--checkpoint-every",
                                    "--resume-with-changes", "--validation-every"}
    assert {"--out", "--resume", "--seeds"} <= mine


def test_the_sweepable_options_are_what_the_library_sweeps():
    swept = [o.dest for o in options.OPTIONS if o.sweepable]
    assert sorted(swept) == sorted(sweep.SWEEPABLE)
    assert all("train" in o.commands and "sweep" in o.commands
               for o in options.OPTIONS if o.sweepable)


def test_a_sweep_from_the_shell(tmp_path):
    # As users run it: a fresh process, float32, no terminal (so no progress bar).
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), PURENN_NO_CACHE="1")
    result = subprocess.run(
        [sys.executable, "-m", "purenn", "sweep", "--weight-l2", "5e-4,1e-3", "--dropout",
         "0.1", "--learning-rate", "0.02", "--epochs", "31", "--validation-samples", "20",
         "--out", str(tmp_path / "s")],
        capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr  # no progress bar without a terminal
    assert result.stdout.splitlines()[0].split()[:2] == ["weight_l2", "seeds"]
    assert "± " in result.stdout or "+/- " in result.stdout
    _, rows = read_csv(tmp_path / "s" / "runs.csv")
    assert [r["weight_l2"] for r in rows] == ["0.0005", "0.001"]
    assert (tmp_path / "s" / "summary.csv").exists() and (tmp_path / "s" / "sweep.png").exists()
    row = rows[1]  # its command, run here (this structure is compiled already)
    code, stdout, err = call(shlex.split(row["command"])[1:] + ["--quiet"])
    assert code == 0, err
    log, validation = stdout.splitlines()
    assert LOG.match(log)[2] == f"{float(row['train_accuracy']):.3f}"
    assert VALIDATION.match(validation)[1] == f"{float(row['val_accuracy']):.3f}"
