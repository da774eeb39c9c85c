"""One training run described as data (``Config``), and the book's experiments
(``BOOK``): docs/book.md's table, and chapter 17's regression of a sine wave.

``purenn.experiments`` runs them; ``purenn train`` builds a ``Config`` from its options.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import purenn as pn

__all__ = ["BOOK", "DATA", "OPTIMIZERS", "REGRESSION_DATA", "Config", "Experiment"]

OPTIMIZERS = {
    "sgd": ("learning_rate", "decay", "momentum"),
    "adagrad": ("learning_rate", "decay", "epsilon"),
    "rmsprop": ("learning_rate", "decay", "epsilon", "rho"),
    "adam": ("learning_rate", "decay", "epsilon", "beta_1", "beta_2"),
}
DATA = ("spiral", "vertical")  # classification data sets: purenn train's --data
REGRESSION_DATA = ("sine",)  # regression data sets: one input, one real target


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

    def __post_init__(self):
        if self.data not in DATA + REGRESSION_DATA:
            raise ValueError(f"data must be one of {', '.join(DATA + REGRESSION_DATA)}; got "
                             f"{self.data!r}")
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
            raise ValueError(f"batch size must be between 1 and the number of training "
                             f"samples ({self.n_samples} = {self.samples} x {self.classes}); "
                             f"got {self.batch_size}")

    @property
    def n_samples(self) -> int:
        return self.samples * self.classes

    @property
    def regression(self) -> bool:
        """Whether the data are regression data (real targets, a linear output)."""
        return self.data in REGRESSION_DATA

    @property
    def n_features(self) -> int:
        """The inputs per sample: 1 for regression data, 2 for the spiral and vertical."""
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
        if self.regression:  # deterministic: no key
            return getattr(pn.data, self.data)(samples)
        X, y = getattr(pn.data, self.data)(key, samples=samples, classes=self.classes)
        return X, (y.reshape(-1, 1) if self.binary else y)

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
        per_class = "" if self.regression else f"x{self.classes}"
        validation = (f", validation {self.validation_samples}{per_class}"
                      if self.validation_samples else "")
        init = ("" if self.init == "book" and self.weight_scale == 0.01
                else f"; weights {self.weight_scale:g} * normal" if self.init == "book"
                else f"; init {self.init}")
        return (f"{self.data} {self.samples}{per_class}{validation}; "
                f"{' -> '.join(parts)}; {self.optimizer.capitalize()}({args}); "
                f"{self.epochs} epochs{init}")


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
