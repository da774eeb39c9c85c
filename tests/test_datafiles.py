"""Your own data: ``pn.data.load`` of .csv and .npz files (good files and each bad one),
``split`` and ``standardize``, file data in ``Config``, and ``purenn train --data FILE``
and ``purenn sweep --data FILE``, in-process (``cli.main``), on a CSV file the tests write."""

import contextlib
import io
import re
import runpy
import shlex
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import purenn as pn
from purenn import cli, grids
from purenn.experiments import Config, seed_keys
from tests.cli_calls import run

ROOT = Path(__file__).resolve().parents[1]
VALIDATION = re.compile(r"^validation, acc: (\d\.\d{3}), loss: (\d+\.\d{3})$")
LOG = re.compile(r"^epoch: (\d+), acc: (\d\.\d{3}), loss: (\d+\.\d{3}) ")
NAMES = ("north", "east", "south")


def write_csv(path, header, rows):
    path.write_text("\n".join([",".join(header), *(",".join(map(str, r)) for r in rows)])
                    + "\n")
    return path


def blobs(path, samples=150, features=5, seed=0):
    """Three separable clusters of ``features`` numbers, labelled by name, as a CSV."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 3.0, (3, features))
    labels = rng.integers(0, 3, samples)
    X = centres[labels] + rng.normal(0.0, 1.0, (samples, features))
    rows = [[*(f"{v:.5f}" for v in x), NAMES[c]] for x, c in zip(X, labels)]
    return write_csv(path, [f"f{i}" for i in range(features)] + ["direction"], rows)


# --- loading ------------------------------------------------------------------------------


def test_a_csv_file_loads_with_text_labels_as_named_classes(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["a", "kind", "b"],
                     [[1, "dog", 2.5], [3, "cat", -1], [5, "dog", 0]])
    data = pn.data.load(path, target="kind")
    assert data.X.dtype == np.float32 and data.X.shape == (3, 2)
    np.testing.assert_array_equal(data.X, [[1, 2.5], [3, -1], [5, 0]])
    assert data.y.dtype == np.int32 and data.y.tolist() == [1, 0, 1]
    assert data.classes == ("cat", "dog") and data.features == ("a", "b")
    assert data.target == "kind" and data.validation is None


def test_numeric_labels_stay_numbers(tmp_path):
    rows = [[0.5, 2], [1.5, 0], [2.5, 1]]
    indices = pn.data.load(write_csv(tmp_path / "i.csv", ["x", "label"], rows))  # the last
    assert indices.y.dtype == np.int32 and indices.y.tolist() == [2, 0, 1]
    assert indices.classes is None and indices.target == "label"
    real = pn.data.load(write_csv(tmp_path / "r.csv", ["x", "t"], [[0, 0.25], [1, -3]]))
    assert real.y.dtype == np.float32 and real.y.tolist() == [0.25, -3.0]


def test_a_validation_file_indexes_the_training_files_classes(tmp_path):
    path = write_csv(tmp_path / "v.csv", ["x", "y"], [[1, "dog"], [2, "dog"]])
    data = pn.data.load(path, classes=("cat", "dog"))
    assert data.y.tolist() == [1, 1] and data.classes == ("cat", "dog")
    with pytest.raises(ValueError, match=r"'bird' are not among the classes 'cat', 'dog'"):
        pn.data.load(write_csv(tmp_path / "w.csv", ["x", "y"], [[1, "bird"]]),
                     classes=("cat", "dog"))


def test_an_npz_file_loads_with_its_validation_set(tmp_path):
    X, y = np.arange(12.0).reshape(6, 2), np.array([0, 1, 2, 0, 1, 2])
    np.savez(tmp_path / "d.npz", X=X, y=y, X_val=X[:2] + 0.5, y_val=np.array(["b", "a"]))
    data = pn.data.load(tmp_path / "d.npz")
    np.testing.assert_array_equal(data.X, X)
    assert data.y.tolist() == y.tolist() and data.features == ("x0", "x1")
    X_val, y_val = data.validation
    np.testing.assert_array_equal(X_val, X[:2] + 0.5)
    assert y_val.tolist() == [1, 0]  # text labels: sorted names


BAD_CSV = {
    "empty": ("", r"is empty: a \.csv file needs a header row"),
    "header only": ("a,b\n", r"has a header but no rows"),
    "ragged": ("a,b,c\n1,2,3\n4,5\n", r"row 2 has 2 fields, the header has 3"),
    "text feature": ("a,b,y\n1,2,0\n3,abc,1\n", r"row 2, column 'b': 'abc' is not a number"),
    "NaN": ("a,b,y\n1,nan,0\n", r"row 1, column 'b' is NaN: fill it or drop the row"),
    "empty cell": ("a,b,y\n1,2,0\n,4,1\n", r"row 2, column 'a' is empty"),
    "empty label": ("a,y\n1,0\n2,\n", r"row 2, label column 'y' is empty"),
    "one column": ("y\n1\n", r"has one column, 'y'"),
}


@pytest.mark.parametrize("case", BAD_CSV)
def test_a_bad_csv_file_is_refused_naming_the_problem(tmp_path, case):
    text, message = BAD_CSV[case]
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        pn.data.load(path)


def test_a_missing_file_target_or_format_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"'.*nothere\.csv' does not exist"):
        pn.data.load(tmp_path / "nothere.csv")
    with pytest.raises(ValueError, match=r"must end in \.csv or \.npz; got \.txt"):
        pn.data.load(tmp_path / "d.txt")
    path = write_csv(tmp_path / "d.csv", ["a", "b"], [[1, 0]])
    with pytest.raises(ValueError, match=r"has no column 'label' .*\(its columns: a, b\)"):
        pn.data.load(path, target="label")


def test_a_bad_npz_file_is_refused_naming_the_problem(tmp_path):
    np.savez(tmp_path / "a.npz", X=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"has no y \(it holds X\)"):
        pn.data.load(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", X=np.array([[0.0, np.nan]]), y=np.array([0]))
    with pytest.raises(ValueError, match=r"X holds NaN or inf \(first at row 0, column 1\)"):
        pn.data.load(tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", X=np.zeros((3, 2)), y=np.zeros(3), X_val=np.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"only one of X_val and y_val"):
        pn.data.load(tmp_path / "c.npz")
    with pytest.raises(ValueError, match=r"target names a \.csv column"):
        pn.data.load(tmp_path / "c.npz", target="y")


def test_split_is_drawn_from_the_key_and_standardize_uses_the_first_sets_statistics():
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    (X_a, y_a), (X_b, y_b) = pn.data.split(jax.random.key(3), X, y, 0.3)
    again = pn.data.split(jax.random.key(3), X, y, 0.3)
    other = pn.data.split(jax.random.key(4), X, y, 0.3)
    assert len(y_b) == 3 and sorted([*y_a, *y_b]) == list(range(10))
    np.testing.assert_array_equal(again[1][1], y_b)
    assert other[1][1].tolist() != y_b.tolist()
    train, held = pn.data.standardize(X_a, X_b)
    np.testing.assert_allclose(train.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(train.std(axis=0), 1, atol=1e-6)
    np.testing.assert_allclose(held, (X_b - X_a.mean(0)) / X_a.std(0), rtol=1e-6)


# --- file data in a Config ------------------------------------------------------------------


def test_a_config_takes_its_sizes_and_model_from_the_file(tmp_path):
    path = blobs(tmp_path / "b.csv", samples=50, features=4)
    config = Config(data=str(path), validation_split=0.2, standardize=True, hidden=(8,))
    assert (config.samples, config.validation_samples, config.classes) == (40, 10, 3)
    assert config.model().init(jax.random.key(0))[0]["weights"].shape == (4, 8)
    X, y, (X_val, y_val) = config.make_datasets(*seed_keys(1)[:2])
    again = config.make_datasets(*seed_keys(1)[:2])
    np.testing.assert_array_equal(again[2][1], y_val)  # the seed's split
    assert X.shape == (40, 4) and X_val.shape == (10, 4) and y.dtype == np.int32
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-5)
    assert "b.csv: 40 samples of 4 features, 3 classes, validation 10 (split 0.2)" in (
        config.describe())
    with pytest.raises(ValueError, match=r"'samples' sizes the built-in data sets"):
        grids.check_grid(config, {"samples": [10, 20]})


def test_a_regression_config_takes_real_targets_from_the_file(tmp_path):
    path = write_csv(tmp_path / "r.csv", ["x", "t"], [[i, 0.5 * i + 0.25] for i in range(8)])
    config = Config(data=str(path), task="regression", hidden=(4,))
    assert config.regression and config.classes == 1 and config.validation_samples == 0
    X, y, validation = config.make_datasets(*seed_keys(0)[:2])
    assert y.shape == (8, 1) and validation is None
    assert config.loss() is pn.losses.mean_squared_error
    assert isinstance(config.model().layers[-1], type(pn.linear()))
    with pytest.raises(ValueError, match=r"holds 0\.25, not a class index 0, 1, 2, \.\.\.: "
                                         r"for real-valued targets give task='regression'"):
        Config(data=str(path))


# --- the command --------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def float32_command(tmp_path, monkeypatch):
    monkeypatch.setenv("PURENN_NO_CACHE", "1")  # as tests/test_cli.py: no cache written
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


TRAIN = ["--validation-split", "0.25", "--standardize", "--hidden", "16",
         "--epochs", "101", "--learning-rate", "0.02"]


def test_train_on_a_csv_file_learns(tmp_path, capsys):
    path = blobs(tmp_path / "blobs.csv")
    code, lines, err = run(capsys, "train", "--data", path, *TRAIN, "--quiet")
    assert code == 0, err
    validation = VALIDATION.match(lines[-1])
    assert validation and float(validation[1]) >= 0.9, lines


def test_train_on_scikit_learns_wine_data_learns(tmp_path, capsys):
    datasets = pytest.importorskip("sklearn.datasets")
    wine = datasets.load_wine()
    rows = [[*x, c] for x, c in zip(wine.data, wine.target)]
    path = write_csv(tmp_path / "wine.csv", [*wine.feature_names, "class"], rows)
    code, lines, err = run(capsys, "train", "--data", path, *TRAIN, "--quiet")
    assert code == 0, err
    assert float(VALIDATION.match(lines[-1])[1]) >= 0.9, lines


def test_sweep_on_a_csv_file_and_its_rows_command_reproduces_the_row(tmp_path, capsys):
    path = blobs(tmp_path / "blobs.csv")
    out = tmp_path / "sweep"
    args = [a if a != "0.02" else "0.02,0.05" for a in TRAIN]
    code, _, err = run(capsys, "sweep", "--data", path, *args, "--out", out, "--quiet")
    assert code == 0, err
    header, *rows = [line.split(",", 6) for line in
                     (out / "runs.csv").read_text().splitlines()]
    assert header[0] == "learning_rate" and len(rows) == 2
    row = dict(zip(header, rows[1]))
    assert float(row["val_accuracy"]) >= 0.9
    command = shlex.split(row["command"])
    assert command[:4] == ["purenn", "train", "--data", str(path)]
    code, lines, err = run(capsys, *command[1:], "--quiet")
    assert code == 0, err
    log, validation = LOG.match(lines[0]), VALIDATION.match(lines[1])
    assert (log[2], log[3]) == (f"{float(row['train_accuracy']):.3f}",
                                f"{float(row['train_loss']):.3f}")
    assert (validation[1], validation[2]) == (f"{float(row['val_accuracy']):.3f}",
                                              f"{float(row['val_loss']):.3f}")


@pytest.mark.parametrize("extra, message", [
    (["--samples", "50"], r"--samples: for the built-in data only"),
    (["--validation-split", "0.2", "--validation-data", "v.csv"],
     r"give --validation-data or --validation-split, not both"),
    (["--task", "regression"], r"the label column 'direction' holds text"),
    (["--target", "nope"], r"has no column 'nope'"),
    (["--plot", "x.png"], r"--plot draws the decision regions of a model of two inputs; "
                          r".* has 5 features"),
])
def test_train_refuses_a_bad_file_option_in_one_line(tmp_path, capsys, extra, message):
    path = blobs(tmp_path / "blobs.csv", samples=20)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--data", str(path), *extra])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and len(err.splitlines()) == 1, err


def test_file_options_on_built_in_data_are_refused(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--data", "spiral", "--target", "y"])
    assert "--target: for a data file only" in capsys.readouterr().err


def test_the_example_prints_the_commands_lines(tmp_path, capsys, monkeypatch):
    path = blobs(tmp_path / "blobs.csv")
    options = ["--validation-split", "0.25", "--hidden", "16", "--learning-rate", "0.02",
               "--epochs", "101"]
    script = ROOT / "examples" / "own_data.py"
    monkeypatch.setattr(sys, "argv", [str(script), str(path), *options])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        runpy.run_path(str(script), run_name="__main__")
    logs = out.getvalue().splitlines()
    code, lines, err = run(capsys, "train", "--data", path, *options, "--standardize",
                           "--log-every", 20)
    assert code == 0, err
    assert logs[:len(lines)] == lines and len(lines) == 7  # epochs 0, 20, ..., 100; validation
    named = logs[len(lines):]
    assert len(named) == 5 and all(re.match(r"validation sample \d: (north|east|south) "
                                            r"\(\d\.\d\d\), labelled", line)
                                   for line in named), named
