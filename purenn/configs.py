"""One training run described as data (``Config``), and the book's experiments
(``BOOK``): docs/book.md's table, and chapter 17's regression of a sine wave.

``purenn.experiments`` runs them; ``purenn train`` builds a ``Config`` from its options.
A run trains on a built-in data set (``DATA``, ``REGRESSION_DATA``) or on a ``.csv`` or
``.npz`` file (``purenn.datafiles``), read once per file version and kept.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from typing import NamedTuple

import jax
import numpy as np

import purenn as pn
from purenn import datafiles, files
from purenn._checks import default_float_dtype

__all__ = ["BOOK", "DATA", "OPTIMIZERS", "REGRESSION_DATA", "TASKS", "Config", "Experiment",
           "is_data_file"]

OPTIMIZERS = {
    "sgd": ("learning_rate", "decay", "momentum"),
    "adagrad": ("learning_rate", "decay", "epsilon"),
    "rmsprop": ("learning_rate", "decay", "epsilon", "rho"),
    "adam": ("learning_rate", "decay", "epsilon", "beta_1", "beta_2"),
}
DATA = ("spiral", "vertical")  # classification data sets: purenn train's --data
REGRESSION_DATA = ("sine",)  # regression data sets: one input, one real target
TASKS = ("classification", "regression")


def is_data_file(data: str) -> bool:
    """Whether ``data`` names a data file (``.csv`` or ``.npz``), not a built-in data set."""
    return os.path.splitext(data)[1].lower() in datafiles.SUFFIXES


@dataclasses.dataclass(frozen=True)
class Config:
    """One training run, as the ``purenn train`` options describe it.

    The model is ``dense(2, h1, <regularization>) -> relu [-> dropout(rate)]`` for each
    hidden size ``h`` (each dense layer gets the regularization strengths), then
    ``dense(h_last, classes)`` with softmax + categorical cross-entropy, or, when
    ``binary``, ``dense(h_last, 1) -> sigmoid`` with binary cross-entropy on labels shaped
    ``(N, 1)`` (``classes`` must then be 2). On regression data (``sine``: ``samples``
    points, ``classes`` 1) the first layer takes one input and the output is
    ``dense(h_last, 1) -> linear`` with mean squared error.

    Every dense layer's weights start as ``init`` makes them (``pn.initializers.by_name``):
    the book's ``weight_scale * normal``, He normal or Glorot uniform.

    **File data**: ``data`` is the path of a ``.csv`` or ``.npz`` file (``pn.data.load``,
    labels in the column ``target``), ``task`` says whether its labels are classes
    (the default) or real targets (``"regression"``: a linear output, mean squared error).
    The validation set is the file's own (an ``.npz``'s ``X_val``, ``y_val``), another
    file (``validation_data``), the fraction ``validation_split`` of the file's samples
    held out (drawn from the run's seed), or none. The file sets ``samples`` (training
    samples), ``validation_samples`` and ``classes`` (1 for regression); the first layer
    takes its features. ``standardize``, on any data: inputs scaled by the training
    samples' mean and standard deviation, the validation set by the same.
    """

    data: str = "spiral"
    samples: int = 100  # per class, training
    classes: int = 3
    validation_samples: int = 100  # per class; 0: no validation set
    hidden: tuple[int, ...] = (64,)
    weight_l1: float = 0.0
    weight_l2: float = 0.0
    bias_l1: float = 0.0
    bias_l2: float = 0.0
    dropout: float = 0.0  # fraction dropped; 0: no dropout layer
    binary: bool = False
    optimizer: str = "adam"
    optimizer_args: tuple[tuple[str, float], ...] = ()  # only those given; book defaults
    epochs: int = 10001
    batch_size: int | None = None  # None: full batch, as in the book
    init: str = "book"  # the dense layers' weights: one of pn.initializers.NAMES
    weight_scale: float = 0.01  # init "book": weights scale * normal (chapter 17: 0.1)
    target: str | None = None  # file data: the label column (default: the last)
    validation_data: str | None = None  # file data: a file of validation samples
    validation_split: float = 0.0  # file data: the fraction held out for validation
    standardize: bool = False  # inputs scaled by the training samples' mean and std
    task: str | None = None  # one of TASKS; None: the data's own (sine: regression)

    def __post_init__(self):
        if self.task is not None and self.task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)} (or None); got "
                             f"{self.task!r}")
        if self.is_file:
            self._take_sizes_from_file()
        else:
            self._check_built_in()
        if self.regression and (self.binary or self.classes != 1):
            raise ValueError(f"{self.data} is regression data, one real target per sample: "
                             f"give classes=1 and binary=False")
        if self.init not in pn.initializers.NAMES:
            raise ValueError(f"init must be one of {', '.join(pn.initializers.NAMES)}; got "
                             f"{self.init!r}")
        if self.init != "book" and self.weight_scale != 0.01:
            raise ValueError(f"weight_scale is the scale of init 'book'; init "
                             f"{self.init!r} takes none")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got "
                             f"{self.optimizer!r}")
        for name, _ in self.optimizer_args:
            if name not in OPTIMIZERS[self.optimizer]:
                raise ValueError(f"{name} does not apply to {self.optimizer} (it takes "
                                 f"{', '.join(OPTIMIZERS[self.optimizer])})")
        if self.binary and self.classes != 2:
            raise ValueError(f"a binary model separates 2 classes; got classes={self.classes}")
        if not self.hidden:
            raise ValueError("hidden needs at least one layer size, e.g. hidden=(64,)")
        if self.batch_size is not None and not 1 <= self.batch_size <= self.n_samples:
            count = (f"{self.n_samples}" if self.is_file or self.regression
                     else f"{self.n_samples} = {self.samples} x {self.classes}")
            raise ValueError(f"batch size must be between 1 and the number of training "
                             f"samples ({count}); got {self.batch_size}")

    def _check_built_in(self):
        if self.data not in DATA + REGRESSION_DATA:
            raise ValueError(f"data must be one of {', '.join(DATA + REGRESSION_DATA)}, or "
                             f"a .csv or .npz file; got {self.data!r}")
        given = [name for name in ("target", "validation_data", "validation_split")
                 if getattr(self, name)]
        if given:
            raise ValueError(f"{', '.join(given)} apply to file data; {self.data} is built "
                             f"in: its validation set is validation_samples (per class)")
        own = "regression" if self.data in REGRESSION_DATA else "classification"
        if self.task not in (None, own):
            raise ValueError(f"{self.data} is {own} data; leave task out or give "
                             f"task={own!r}")

    def _take_sizes_from_file(self):
        """Set ``samples``, ``validation_samples`` and ``classes`` from the file (this
        dataclass is frozen: ``object.__setattr__``, once, at construction)."""
        if not 0 <= self.validation_split < 1:
            raise ValueError(f"validation_split must lie in [0, 1); got "
                             f"{self.validation_split!r}")
        data = self._file_data()
        count = data.X.shape[0]
        held = datafiles.held_out(count, self.validation_split) if self.validation_split else 0
        validation = held or (0 if data.validation is None else data.validation[0].shape[0])
        object.__setattr__(self, "samples", count - held)
        object.__setattr__(self, "validation_samples", validation)
        object.__setattr__(self, "classes", data.classes)

    def _file_data(self) -> FileData:
        identity = tuple(files.file_version(path)
                         for path in (self.data, self.validation_data))
        return _file_data(self.data, self.target, self.validation_data, self.regression,
                          self.binary, self.validation_split > 0, identity,
                          str(default_float_dtype()))

    def data_fields(self) -> tuple:
        """The fields that make a run's data (``make_datasets``): runs with equal ones
        (and equal seeds) train on the same data."""
        return (self.data, self.samples, self.classes, self.binary, self.validation_samples,
                self.target, self.validation_data, self.validation_split, self.standardize,
                self.task)

    @property
    def is_file(self) -> bool:
        """Whether ``data`` is a file's path (``is_data_file``)."""
        return is_data_file(self.data)

    @property
    def n_samples(self) -> int:
        """The training samples (``samples`` per class for the built-in classification
        data)."""
        if self.is_file or self.regression:
            return self.samples
        return self.samples * self.classes

    @property
    def regression(self) -> bool:
        """Whether the targets are real numbers (a linear output, mean squared error)."""
        if self.task is not None:
            return self.task == "regression"
        return self.data in REGRESSION_DATA

    @property
    def n_features(self) -> int:
        """The inputs per sample: the file's features; 1 for sine, 2 for the spiral and
        vertical."""
        if self.is_file:
            return self._file_data().X.shape[1]
        return 1 if self.regression else 2

    def weight_init(self) -> pn.initializers.Initializer:
        """The dense layers' weight initializer that ``init`` and ``weight_scale`` name."""
        if self.init == "book":
            return pn.initializers.book(self.weight_scale)
        return pn.initializers.by_name(self.init)

    def model(self) -> pn.Layer:
        """The network, built with the public layer constructors."""
        # A strength of 0 adds no term (None), as the book's layer skips it.
        strengths = {name: getattr(self, name) or None
                     for name in ("weight_l1", "weight_l2", "bias_l1", "bias_l2")}
        init = self.weight_init()
        layers, width = [], self.n_features
        for size in self.hidden:
            layers += [pn.dense(width, size, weight_init=init, **strengths), pn.relu()]
            if self.dropout:
                layers.append(pn.dropout(self.dropout))
            width = size
        if self.regression:
            layers += [pn.dense(width, 1, weight_init=init), pn.linear()]
        elif self.binary:
            layers += [pn.dense(width, 1, weight_init=init), pn.sigmoid()]
        else:
            layers.append(pn.dense(width, self.classes, weight_init=init))
        return pn.serial(*layers)

    def loss(self) -> Callable:
        if self.regression:
            return pn.losses.mean_squared_error
        return (pn.losses.binary_crossentropy if self.binary
                else pn.losses.softmax_categorical_crossentropy)

    def make_optimizer(self) -> pn.optimizers.GradientTransformation:
        return getattr(pn.optimizers, self.optimizer)(**dict(self.optimizer_args))

    def make_data(self, key, samples):
        """``samples`` (per class) of the built-in data set, drawn from ``key``."""
        if self.regression:  # deterministic: no key
            return getattr(pn.data, self.data)(samples)
        X, y = getattr(pn.data, self.data)(key, samples=samples, classes=self.classes)
        return X, (y.reshape(-1, 1) if self.binary else y)

    def _unscaled_datasets(self, k_train, k_val):
        if not self.is_file:
            X, y = self.make_data(k_train, self.samples)
            validation = (self.make_data(k_val, self.validation_samples)
                          if self.validation_samples else None)
            return X, y, validation
        data = self._file_data()
        if self.validation_split:
            (X, y), validation = datafiles.split(k_val, data.X, data.y,
                                                 self.validation_split)
            return X, y, validation
        return data.X, data.y, data.validation

    def make_datasets(self, k_train, k_val):
        """``(X, y, validation)`` of a run: the training set and the validation set
        ``(X_val, y_val)`` (None without one). Built-in data are drawn from ``k_train``
        and ``k_val``; a file's ``validation_split`` is drawn from ``k_val``. With
        ``standardize``, both are scaled by the training set's statistics."""
        X, y, validation = self._unscaled_datasets(k_train, k_val)
        if not self.standardize:
            return X, y, validation
        if validation is None:
            return datafiles.standardize(X)[0], y, None
        X, X_val = datafiles.standardize(X, validation[0])
        return X, y, (X_val, validation[1])

    def data_shapes(self):
        """``make_datasets``'s ``(X, y, validation)`` as ``jax.ShapeDtypeStruct``s:
        nothing drawn, read or computed (a file's shapes are those read at
        construction)."""
        if not self.is_file:
            def datasets():  # the key made inside the trace: nothing compiles
                key = jax.random.key(0)
                return self._unscaled_datasets(key, key)

            return jax.eval_shape(datasets)
        data = self._file_data()

        def shape(array, rows):
            return jax.ShapeDtypeStruct((rows, *array.shape[1:]), array.dtype)

        validation = None
        if self.validation_samples:
            like = data.validation if data.validation is not None else (data.X, data.y)
            validation = tuple(shape(a, self.validation_samples) for a in like)
        return shape(data.X, self.samples), shape(data.y, self.samples), validation

    def describe(self) -> str:
        """One line: data, model, optimizer, e.g. for ``purenn book --list``."""
        def strength(value):
            return f"{value:g}"

        reg = [f"{name}={strength(getattr(self, name))}" for name in
               ("weight_l1", "weight_l2", "bias_l1", "bias_l2") if getattr(self, name)]
        parts, width = [], self.n_features
        for size in self.hidden:
            parts += [f"Dense({width},{size}{', ' + ', '.join(reg) if reg else ''})", "ReLU"]
            if self.dropout:
                parts.append(f"Dropout({self.dropout:g})")
            width = size
        parts += ([f"Dense({width},1)", "Linear+MSE"] if self.regression
                  else [f"Dense({width},1)", "Sigmoid+BCE"] if self.binary
                  else [f"Dense({width},{self.classes})", "Softmax+CCE"])
        args = ", ".join(f"{name}={value:g}" for name, value in self.optimizer_args)
        init = ("" if self.init == "book" and self.weight_scale == 0.01
                else f"; weights {self.weight_scale:g} * normal" if self.init == "book"
                else f"; init {self.init}")
        return (f"{self._describe_data()}; {' -> '.join(parts)}; "
                f"{self.optimizer.capitalize()}({args}); {self.epochs} epochs{init}")

    def _describe_data(self) -> str:
        scaled = "; standardized" if self.standardize else ""
        if self.is_file:
            kind = "targets" if self.regression else f"{self.classes} classes"
            source = (f" (split {self.validation_split:g})" if self.validation_split
                      else f" ({self.validation_data})" if self.validation_data else "")
            validation = (f", validation {self.validation_samples}{source}"
                          if self.validation_samples else "")
            return (f"{self.data}: {self.samples} samples of {self.n_features} features, "
                    f"{kind}{validation}{scaled}")
        per_class = "" if self.regression else f"x{self.classes}"
        validation = (f", validation {self.validation_samples}{per_class}"
                      if self.validation_samples else "")
        return f"{self.data} {self.samples}{per_class}{validation}{scaled}"


# --- file data ---------------------------------------------------------------------------



class FileData(NamedTuple):
    """A data file's samples as a run trains on them: labels as the task needs them."""

    X: np.ndarray  # (N, F)
    y: np.ndarray  # (N,) int32 classes; (N, 1) 0/1 for a binary model, or real targets
    validation: tuple[np.ndarray, np.ndarray] | None  # the .npz's or validation_data's
    classes: int  # the model's outputs: the number of classes; 1 for regression


def _targets(path, dataset: pn.data.Dataset, y, regression: bool, binary: bool, classes=None):
    """The labels ``y`` of ``dataset`` (read from ``path``; ``y`` is its own, or its
    ``validation``'s) for the task; ``classes``: the training set's number of classes, for
    a validation set."""
    if regression:
        if dataset.classes is not None:
            raise ValueError(f"{path!r}: the label column {dataset.target!r} holds text "
                             f"(class names); regression needs numbers, classification "
                             f"takes names: leave task='regression' (--task) out")
        return y.astype(default_float_dtype()).reshape(-1, 1), 1
    if not np.issubdtype(y.dtype, np.integer):
        bad = y[(y != np.round(y)) | (y < 0)][0]
        raise ValueError(f"{path!r}: the label column {dataset.target!r} holds {bad:g}, not "
                         f"a class index 0, 1, 2, ...: for real-valued targets give "
                         f"task='regression' (--task regression)")
    count = classes or (len(dataset.classes) if dataset.classes else int(y.max()) + 1)
    if int(y.max()) >= count:
        raise ValueError(f"{path!r}: the label {int(y.max())} is not one of the training "
                         f"data's {count} classes (0 to {count - 1})")
    if count < 2:
        raise ValueError(f"{path!r}: the labels hold one class only; a classifier needs two "
                         f"at least")
    if binary:
        if count != 2:
            raise ValueError(f"{path!r} holds {count} classes; a binary model (binary=True, "
                             f"--binary) separates 2")
        return y.reshape(-1, 1), 2
    return y, count


@functools.lru_cache(maxsize=16)
def _file_data(path, target, validation_path, regression, binary, split, identity, dtype
               ) -> FileData:
    """``path`` (and ``validation_path``) read for a run; kept for each version of the
    files (``identity``) and float dtype."""
    del identity, dtype  # the cache's keys: another file version, another dtype, read again
    train = pn.data.load(path, target=target)
    y, classes = _targets(path, train, train.y, regression, binary)
    validation = train.validation
    if validation is not None and (validation_path or split):
        raise ValueError(f"{path!r} holds its own validation set (X_val, y_val); leave out "
                         f"validation_data and validation_split")
    if validation_path and split:
        raise ValueError("give validation_data or validation_split, not both")
    if validation_path:
        other = pn.data.load(validation_path, target=target, classes=train.classes)
        mismatch = (other.features != train.features if path.lower().endswith(".csv")
                    and validation_path.lower().endswith(".csv")
                    else other.X.shape[1] != train.X.shape[1])
        if mismatch:
            raise ValueError(f"validation_data {validation_path!r} has the features "
                             f"{', '.join(other.features)}; {path!r} has "
                             f"{', '.join(train.features)}")
        validation = other.X, _targets(validation_path, other, other.y, regression, binary,
                                       classes)[0]
    elif validation is not None:
        validation = validation[0], _targets(path, train, validation[1], regression, binary,
                                             classes)[0]
    return FileData(train.X, y, validation, classes)


class Experiment(NamedTuple):
    name: str
    summary: str
    config: Config
    book: tuple[float, float] | None  # the book's (training acc, validation acc)


def _book_config(samples, hidden, *, dropout=0.0, binary=False, optimizer_args):
    return Config(samples=samples, classes=2 if binary else 3, hidden=(hidden,),
                  weight_l2=5e-4, bias_l2=5e-4, dropout=dropout, binary=binary,
                  optimizer="adam", optimizer_args=optimizer_args, epochs=10001)


_SLOW = (("learning_rate", 0.02), ("decay", 5e-7))
_FAST = (("learning_rate", 0.05), ("decay", 5e-5))

BOOK: dict[str, Experiment] = {e.name: e for e in (
    Experiment("regularization", "L2 on 300 samples (chapter 14)",
               _book_config(100, 64, optimizer_args=_SLOW), (0.947, 0.830)),
    Experiment("more-data", "the same model on 3000 samples (chapter 14)",
               _book_config(1000, 64, optimizer_args=_SLOW), (0.895, 0.873)),
    Experiment("wider", "512 hidden units on 3000 samples (chapter 14)",
               _book_config(1000, 512, optimizer_args=_SLOW), (0.918, 0.920)),
    Experiment("dropout", "dropout 0.1 after the hidden layer (chapter 15)",
               _book_config(1000, 64, dropout=0.1, optimizer_args=_FAST), (0.688, 0.757)),
    Experiment("dropout-wider", "dropout 0.1 with 512 hidden units (chapter 15)",
               _book_config(1000, 512, dropout=0.1, optimizer_args=_FAST), (0.859, 0.857)),
    Experiment("binary", "one sigmoid output, binary cross-entropy (chapter 16)",
               _book_config(100, 64, binary=True, optimizer_args=(("decay", 5e-7),)), None),
    Experiment("regression", "a sine wave, linear output, mean squared error (chapter 17)",
               Config(data="sine", samples=1000, classes=1, validation_samples=0,
                      hidden=(64, 64), weight_scale=0.1, optimizer="adam",
                      optimizer_args=(("learning_rate", 0.005), ("decay", 1e-3)),
                      epochs=10001), None),
)}
