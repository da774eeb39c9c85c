"""Your own data: ``.csv`` and ``.npz`` files read into arrays, a validation split drawn
from a key, and standardization by the training samples' statistics.

``purenn.data`` re-exports everything here: ``pn.data.load``, ``pn.data.split``,
``pn.data.standardize``, ``pn.data.Dataset``.

A ``.csv`` file has a header row naming its columns; every other row is one sample. The
label (target) column is ``target``, the last column by default; every other column is a
feature and must hold a number in every row. Labels that are text are class names: they
become class indices ``0..K-1`` in sorted order, their names kept in ``Dataset.classes``.
Numeric labels stay numbers: integers ``0..K-1`` are class indices (int32), any other
numbers are real targets (float), e.g. for regression.

An ``.npz`` file (``numpy.savez``) holds ``X`` (samples, features) and ``y`` (samples,),
and may hold a validation set, ``X_val`` and ``y_val``.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from typing import NamedTuple

import jax
import numpy as np

from purenn._checks import default_float_dtype

__all__ = ["SUFFIXES", "Dataset", "held_out", "load", "split", "standardize"]

SUFFIXES = (".csv", ".npz")


class Dataset(NamedTuple):
    """A data set read from a file by ``load``.

    ``X`` (N, F) in the default float dtype (float32, or float64 under
    ``jax_enable_x64``); ``y`` (N,): int32 class indices, or real targets in the default
    float dtype; ``validation``: ``(X_val, y_val)`` alike, or None (only an ``.npz`` holds
    one); ``features``: the F column names (an ``.npz``'s are ``x0, x1, ...``);
    ``target``: the label column's name; ``classes``: the class names of text labels, in
    index order, or None when the labels were numbers.
    """

    X: np.ndarray
    y: np.ndarray
    validation: tuple[np.ndarray, np.ndarray] | None
    features: tuple[str, ...]
    target: str
    classes: tuple[str, ...] | None



def load(path: str | os.PathLike, *, target: str | None = None,
         classes: Sequence[str] | None = None) -> Dataset:
    """Read a ``.csv`` or ``.npz`` file (see the module's docstring).

    Args:
      path: the file; its suffix says its format.
      target: a ``.csv``'s label column (default: the last column).
      classes: the class names text labels index (e.g. the training file's
        ``Dataset.classes``, so that a validation file's labels index the same classes);
        default: the file's own labels, sorted.

    Raises:
      FileNotFoundError: no such file.
      ValueError: an unknown suffix, an empty file, a missing target column, a ragged
        row, an empty, NaN or non-numeric feature (naming its row and column), a label not
        in ``classes``.
    """
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path!r}: the data file must end in .csv or .npz; got "
                         f"{suffix or 'no suffix'}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path!r} does not exist")
    if suffix == ".npz":
        if target is not None:
            raise ValueError(f"{path!r}: target names a .csv column; an .npz file holds X "
                             f"and y: leave target out")
        return _load_npz(path, classes)
    return _load_csv(path, target, classes)


# --- .csv -----------------------------------------------------------------------------


def _read_rows(path: str) -> tuple[list[str], list[list[str]]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            rows = [row for row in csv.reader(file, strict=True)]
    except (UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"{path!r} is not a readable .csv file: {err}") from None
    rows = [row for row in rows if any(cell.strip() for cell in row)]  # blank lines
    if not rows:
        raise ValueError(f"{path!r} is empty: a .csv file needs a header row naming its "
                         f"columns, then one row per sample")
    header = [name.strip() for name in rows[0]]
    if len(rows) == 1:
        raise ValueError(f"{path!r} has a header but no rows: there are no samples")
    if len(header) < 2:
        raise ValueError(f"{path!r} has one column, {header[0]!r}: it needs at least one "
                         f"feature column beside the label column")
    for number, row in enumerate(rows[1:], start=1):
        if len(row) != len(header):
            raise ValueError(f"{path!r} row {number} has {len(row)} fields, the header has "
                             f"{len(header)}: every row needs one value per column")
    return header, [[cell.strip() for cell in row] for row in rows[1:]]


def _number(path, text, number, column) -> float:
    where = f"{path!r} row {number}, column {column!r}"
    if not text:
        raise ValueError(f"{where} is empty: fill it or drop the row")
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a number (every column but the "
                         f"label column is a feature, and features are numbers)") from None
    if math.isnan(value):
        raise ValueError(f"{where} is NaN: fill it or drop the row")
    if math.isinf(value):
        raise ValueError(f"{where} is {text}: features must be finite")
    return value


def _load_csv(path, target, classes) -> Dataset:
    header, rows = _read_rows(path)
    if target is None:
        column = len(header) - 1
    elif target in header:
        column = header.index(target)
    else:
        raise ValueError(f"{path!r} has no column {target!r} to take the labels from (its "
                         f"columns: {', '.join(header)})")
    features = [i for i in range(len(header)) if i != column]
    try:  # NumPy parses the numbers; a problem is then located cell by cell
        X = np.array([[row[i] for i in features] for row in rows], dtype=np.float64)
    except ValueError:
        X = None
    if X is None or not np.all(np.isfinite(X)):
        X = np.array([[_number(path, row[i], n, header[i]) for i in features]
                      for n, row in enumerate(rows, start=1)], dtype=np.float64)
    labels = [row[column] for row in rows]
    for number, label in enumerate(labels, start=1):
        if not label or label.lower() == "nan":
            raise ValueError(f"{path!r} row {number}, label column {header[column]!r} is "
                             f"{'empty' if not label else 'NaN'}: give every sample its "
                             f"label, or drop the row")
    y, names = _labels(path, np.array(labels), classes)
    return Dataset(X.astype(default_float_dtype()), y, None, tuple(header[i] for i in features),
                   header[column], names)


def _labels(path, labels: np.ndarray, classes):
    """``labels`` (text or numbers) as ``(y, class names or None)``."""
    if labels.dtype.kind in "US":
        try:
            values = labels.astype(np.float64)
        except ValueError:
            return _class_indices(path, labels.astype(str), classes)
    else:
        values = labels.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{path!r}: the labels hold NaN or inf; give every sample a label")
    if np.all(values == np.round(values)) and values.min() >= 0:
        return values.astype(np.int32), None  # class indices 0..K-1
    return values.astype(default_float_dtype()), None


def _class_indices(path, names: np.ndarray, classes):
    """Text labels as indices into ``classes`` (default: the sorted labels)."""
    known = tuple(sorted(set(names.tolist()))) if classes is None else tuple(classes)
    index = {name: i for i, name in enumerate(known)}
    missing = sorted(set(names.tolist()) - index.keys())
    if missing:
        raise ValueError(f"{path!r}: the label(s) {', '.join(map(repr, missing[:5]))} are "
                         f"not among the classes {', '.join(map(repr, known))}")
    return np.array([index[name] for name in names.tolist()], dtype=np.int32), known


# --- .npz -----------------------------------------------------------------------------


def _npz_arrays(path, file, x_name, y_name, classes):
    X, y = file[x_name], file[y_name]
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"{path!r}: {x_name} must be 2-D (samples, features) with one "
                         f"sample at least; got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{path!r}: {x_name} must hold numbers; got dtype {X.dtype}")
    bad = np.argwhere(~np.isfinite(X.astype(np.float64)))
    if bad.size:
        raise ValueError(f"{path!r}: {x_name} holds NaN or inf (first at row {bad[0][0]}, "
                         f"column {bad[0][1]}): clean or drop those samples first")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"{path!r}: {y_name} must hold one label per row of {x_name} "
                         f"(shape ({X.shape[0]},)); got shape {y.shape}")
    if y.dtype.kind in "US":
        y, names = _class_indices(path, y.astype(str), classes)
    elif y.dtype.kind in "biuf":
        y, names = _labels(path, y, None)
    else:
        raise ValueError(f"{path!r}: {y_name} must hold numbers or text; got dtype {y.dtype}")
    return X.astype(default_float_dtype()), y, names


def _load_npz(path, classes) -> Dataset:
    try:
        file = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path!r} is not a readable .npz file: {err}") from None
    with file:
        names = set(file.files)
        missing = [name for name in ("X", "y") if name not in names]
        if missing:
            raise ValueError(f"{path!r} has no {' and no '.join(missing)} (it holds "
                             f"{', '.join(sorted(names)) or 'nothing'}): save it with "
                             f"numpy.savez(path, X=X, y=y)")
        if ("X_val" in names) != ("y_val" in names):
            raise ValueError(f"{path!r} holds only one of X_val and y_val; a validation "
                             f"set needs both")
        try:
            X, y, labels = _npz_arrays(path, file, "X", "y", classes)
            validation = None
            if "X_val" in names:
                X_val, y_val, _ = _npz_arrays(path, file, "X_val", "y_val", labels or classes)
                if X_val.shape[1] != X.shape[1]:
                    raise ValueError(f"{path!r}: X_val has {X_val.shape[1]} features, X "
                                     f"has {X.shape[1]}")
                validation = X_val, y_val
        except ValueError as err:
            if "Object arrays" not in str(err):
                raise
            raise ValueError(f"{path!r} holds Python objects; save numbers or text "
                             f"arrays") from None
    return Dataset(X, y, validation, tuple(f"x{i}" for i in range(X.shape[1])), "y", labels)


# --- splitting and scaling ----------------------------------------------------------------


def held_out(count: int, fraction: float) -> int:
    """How many of ``count`` samples ``split`` holds out: ``round(fraction * count)``, at
    least 1 and at most ``count - 1``."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie in (0, 1); got {fraction!r}")
    if count < 2:
        raise ValueError(f"cannot split {count} sample(s) into training and validation "
                         f"sets: it takes 2 at least")
    return min(max(round(fraction * count), 1), count - 1)


def split(key: jax.Array, X, y, fraction: float):
    """Hold out ``held_out(N, fraction)`` of the ``N`` samples, drawn by a permutation
    from ``key``: the same key, the same split.

    Returns:
      ``((X_train, y_train), (X_val, y_val))``, NumPy arrays, each in the permuted order.
    """
    X, y = np.asarray(X), np.asarray(y)
    count = X.shape[0]
    held = held_out(count, fraction)
    order = np.asarray(jax.random.permutation(key, count))
    train, validation = order[held:], order[:held]
    return (X[train], y[train]), (X[validation], y[validation])


def standardize(X, *others):
    """``X`` and each of ``others`` as ``(value - mean) / std``, by each feature's mean and
    standard deviation over ``X``'s rows only (a feature constant in ``X`` is centred,
    not scaled). NumPy arrays in ``X``'s dtype."""
    X = np.asarray(X)
    values = X.astype(np.float64)
    mean, std = values.mean(axis=0), values.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return tuple(((np.asarray(a, dtype=np.float64) - mean) / std).astype(X.dtype)
                 for a in (X, *others))
