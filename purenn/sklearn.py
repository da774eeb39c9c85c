"""scikit-learn estimators over purenn: ``Classifier`` and ``Regressor``.

They hold a purenn network as scikit-learn holds a model, so scikit-learn's tools for
model selection take them: ``GridSearchCV``, ``cross_val_score``, ``Pipeline`` (with a
``StandardScaler`` in front, say). scikit-learn is an optional extra (``pip install
'purenn[sklearn]'``); ``import purenn`` never imports this module.

The constructor arguments are the ``purenn train`` options: ``hidden`` sizes, ``dropout``,
the L1/L2 strengths of every hidden dense layer, ``init``, the optimizer by name and its
hyperparameters (``None``: the book's default for that optimizer), ``epochs``,
``batch_size`` and ``patience``; ``random_state`` stands for ``--seed``. The network is
``dense -> relu [-> dropout]`` per hidden size, then ``dense`` to softmax + categorical
cross-entropy (``Classifier``, one output per class, two classes included) or to a linear
output with mean squared error (``Regressor``, one output per target). ``fit`` trains it
with ``pn.fit`` in float32 (scikit-learn's float64 inputs are converted), whatever
``jax_enable_x64`` says.

**One compile per structure.** The strengths, the dropout rate and the optimizer's
hyperparameters are pytree leaves, so a grid over their values trains every cell with the
same compiled program (tested: a ``GridSearchCV`` over 2 learning rates x 2 L2 strengths
compiles one training program). What changes the structure compiles anew: the hidden
sizes, the optimizer, ``init``, ``batch_size``, the number of features, classes and
training samples, and whether the dropout rate is 0 (no dropout layer) or not. A
strength of 0 is a value like the others (a zero penalty), so a grid over strengths that
includes 0 is one program too.

Keys: ``random_state`` ``s`` (an int) gives the keys ``purenn train --seed s`` uses
(``purenn.experiments.seed_keys``): ``k_init`` draws the weights, ``k_fit`` the epochs'
shuffles and dropout masks, ``k_val`` the validation split of early stopping. ``None`` or
a ``numpy.random.RandomState`` draws the seed from that generator, as scikit-learn's
estimators do (``None``: NumPy's global one, so each fit differs).
"""

from __future__ import annotations

import numbers

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data
except ImportError as err:  # validate_data and __sklearn_tags__ came in scikit-learn 1.6
    raise ImportError(f"purenn.sklearn needs scikit-learn >= 1.6 ({err}): pip install "
                      f"'purenn[sklearn]'") from err

import jax
import numpy as np

import purenn as pn
from purenn.configs import OPTIMIZERS
from purenn.experiments import seed_keys

__all__ = ["Classifier", "Regressor"]

# The optimizers' hyperparameters, as constructor arguments; purenn.configs.OPTIMIZERS
# says which optimizer takes which.
_OPTIMIZER_ARGUMENTS = ("learning_rate", "decay", "momentum", "epsilon", "rho", "beta_1",
                        "beta_2")
_STRENGTHS = ("weight_l1", "weight_l2", "bias_l1", "bias_l2")


def _real(name: str, value) -> float:
    """``value`` as a Python float: an int and a float of one value are one program."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number; got {value!r}")
    return float(value)


class _Network(BaseEstimator):
    """The hyperparameters, the network and its training that both estimators share.
    A subclass says the loss (``_loss()``) and the layers after the hidden ones
    (``_output_layers(width, outputs, weight_init)``)."""

    def __init__(self, hidden=(64,), *, dropout=0.0, weight_l1=0.0, weight_l2=0.0,
                 bias_l1=0.0, bias_l2=0.0, init="book", optimizer="adam",
                 learning_rate=None, decay=None, momentum=None, epsilon=None, rho=None,
                 beta_1=None, beta_2=None, epochs=200, batch_size=200, patience=None,
                 validation_every=100, validation_fraction=0.1, random_state=None):
        self.hidden = hidden
        self.dropout = dropout
        self.weight_l1 = weight_l1
        self.weight_l2 = weight_l2
        self.bias_l1 = bias_l1
        self.bias_l2 = bias_l2
        self.init = init
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.decay = decay
        self.momentum = momentum
        self.epsilon = epsilon
        self.rho = rho
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epochs = epochs
        self.batch_size = batch_size
        self.patience = patience
        self.validation_every = validation_every
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    # --- the network ------------------------------------------------------------------

    def _hidden_sizes(self) -> tuple[int, ...]:
        sizes = (self.hidden,) if isinstance(self.hidden, numbers.Integral) else self.hidden
        try:
            sizes = tuple(sizes)
        except TypeError:
            sizes = None
        if (not sizes or any(isinstance(s, bool) or not isinstance(s, numbers.Integral)
                             or s < 1 for s in sizes)):
            raise ValueError(f"hidden must be a positive int or a non-empty sequence of "
                             f"them, e.g. hidden=(64,) or hidden=(64, 64); got "
                             f"{self.hidden!r}")
        return tuple(int(s) for s in sizes)

    def _network(self, features: int, outputs: int) -> pn.Layer:
        """``dense -> relu [-> dropout]`` per hidden size, then the output layers."""
        if self.init not in pn.initializers.NAMES:
            raise ValueError(f"init must be one of {', '.join(pn.initializers.NAMES)}; got "
                             f"{self.init!r}")
        weight_init = pn.initializers.by_name(self.init)
        # Every strength is a leaf, 0 included (a term that adds 0 to the loss and its
        # gradients), so a grid of strengths that includes 0 is one structure. A dropout
        # rate of 0 is no layer.
        strengths = {name: _real(name, getattr(self, name)) for name in _STRENGTHS}
        rate = _real("dropout", self.dropout)
        layers, width = [], features
        for size in self._hidden_sizes():
            layers += [pn.dense(width, size, weight_init=weight_init, **strengths), pn.relu()]
            if rate:
                layers.append(pn.dropout(rate))
            width = size
        layers += self._output_layers(width, outputs, weight_init)
        return pn.serial(*layers)

    def _make_optimizer(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got "
                             f"{self.optimizer!r}")
        takes = OPTIMIZERS[self.optimizer]
        arguments = {}
        for name in _OPTIMIZER_ARGUMENTS:
            value = getattr(self, name)
            if value is None:
                continue
            if name not in takes:
                raise ValueError(f"{name}={value!r} does not apply to optimizer="
                                 f"{self.optimizer!r} (it takes {', '.join(takes)}); leave "
                                 f"{name} None")
            arguments[name] = _real(name, value)
        return getattr(pn.optimizers, self.optimizer)(**arguments)

    def _keys(self):
        """``(k_val, k_init, k_fit)`` of ``random_state``."""
        seed = self.random_state
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            seed = check_random_state(seed).randint(np.iinfo(np.int32).max)
        _, k_val, k_init, k_fit = seed_keys(int(seed))
        return k_val, k_init, k_fit

    def _validation_split(self, key, X, y):
        """``(X, y, validation_data)``: all of it and None without ``patience``; else a
        random ``validation_fraction`` of the samples held out for early stopping."""
        if self.patience is None:
            return X, y, None
        fraction = _real("validation_fraction", self.validation_fraction)
        held = int(round(fraction * X.shape[0]))
        if not 0 < fraction < 1 or not 1 <= held < X.shape[0]:
            raise ValueError(f"early stopping (patience={self.patience!r}) holds out "
                             f"validation_fraction={self.validation_fraction!r} of the "
                             f"{X.shape[0]} samples, which must leave at least one on each "
                             f"side; give a fraction in (0, 1), more samples, or "
                             f"patience=None")
        order = np.asarray(jax.random.permutation(key, X.shape[0]))
        val, train = order[:held], order[held:]
        return X[train], y[train], (X[val], y[val])

    def _train(self, X: np.ndarray, targets: np.ndarray, outputs: int):
        """Fit the network to float32 ``X`` ``(N, features)`` and ``targets`` (class
        indices ``(N,)`` or real targets ``(N, outputs)``); set the fitted attributes."""
        model = self._network(X.shape[1], outputs)
        optimizer = self._make_optimizer()
        k_val, k_init, k_fit = self._keys()
        X, targets, validation = self._validation_split(k_val, X, targets)
        batch_size = self.batch_size
        if isinstance(batch_size, numbers.Integral) and not isinstance(batch_size, bool):
            batch_size = min(int(batch_size), X.shape[0])  # as scikit-learn's MLP clips it
        params, _, history = pn.fit(
            model, self._loss(), optimizer, model.init(k_init), X, targets, key=k_fit,
            epochs=self.epochs, batch_size=batch_size, validation_data=validation,
            patience=self.patience,
            validation_every=None if validation is None else self.validation_every,
            log_every=None, log_fn=None, progress=False)
        self.params_ = jax.device_get(params)  # NumPy: pickles, and needs no device
        self.history_ = history
        self.n_outputs_ = outputs

    def _outputs(self, X) -> np.ndarray:
        """The network's ``pn.predict`` for ``X``: ``(N, outputs)``, computed in float32,
        returned in float64 (as scikit-learn's estimators return their outputs)."""
        check_is_fitted(self)
        with jax.enable_x64(False):
            X = validate_data(self, X, dtype=np.float32, reset=False)
            model = self._network(self.n_features_in_, self.n_outputs_)
            outputs = pn.predict(model, self._loss(), self.params_, X)
        return np.asarray(outputs, dtype=np.float64)


class Classifier(ClassifierMixin, _Network):
    """A purenn network as a scikit-learn classifier: hidden ``dense -> relu [->
    dropout]`` blocks, then one output per class, softmax + categorical cross-entropy.

    Args (every one a hyperparameter that ``GridSearchCV`` can search):
      hidden: the hidden layers' sizes, e.g. ``(64,)`` or ``(64, 64)`` (an int: one).
      dropout: the fraction of each hidden layer's outputs dropped in training; 0: none.
      weight_l1, weight_l2, bias_l1, bias_l2: every hidden dense layer's penalties (0:
        a penalty term that adds 0).
      init: the dense layers' weights: ``"book"`` (0.01 * normal), ``"he"`` (He normal)
        or ``"glorot"`` (Glorot uniform), as ``purenn train --init``.
      optimizer: ``"sgd"``, ``"adagrad"``, ``"rmsprop"`` or ``"adam"``.
      learning_rate, decay, momentum, epsilon, rho, beta_1, beta_2: the optimizer's
        hyperparameters; ``None`` takes the book's default. Giving one the optimizer
        does not take (``momentum`` to Adam) is an error at ``fit``.
      epochs: training epochs, each a pass over the training samples.
      batch_size: samples per step (at most the training set: more is clipped to it, as
        scikit-learn's MLP does); None: full batch, as the book trains.
      patience: early stopping: hold out ``validation_fraction`` of the samples, evaluate
        them every ``validation_every`` epochs, stop after ``patience`` evaluations
        without a lower validation loss and keep the best params. None: train every epoch
        on every sample.
      validation_every: epochs between those evaluations (default 100).
      validation_fraction: the share held out when ``patience`` is set.
      random_state: an int seed (the keys of ``purenn train --seed``), a
        ``numpy.random.RandomState``, or None (a fresh seed from NumPy's global
        generator at each fit).

    Attributes after ``fit``: ``classes_`` (the labels, sorted), ``n_features_in_``
    (``feature_names_in_`` for a DataFrame with string column names), ``params_`` (the
    trained params, NumPy arrays), ``history_`` (``pn.fit``'s history), ``n_outputs_``.
    """

    def _loss(self):
        return pn.losses.softmax_categorical_crossentropy

    def _output_layers(self, width: int, outputs: int, weight_init) -> list:
        return [pn.dense(width, outputs, weight_init=weight_init)]

    def fit(self, X, y):
        """Train on ``X`` ``(N, features)`` and labels ``y`` ``(N,)`` of any type (at
        least two distinct); returns ``self``."""
        with jax.enable_x64(False):
            X, y = validate_data(self, X, y, dtype=np.float32)
            y = column_or_1d(y, warn=True)
            check_classification_targets(y)
            self.classes_, labels = np.unique(y, return_inverse=True)
            if len(self.classes_) < 2:
                raise ValueError(f"y holds 1 class ({self.classes_.tolist()[0]!r}); a classifier "
                                 f"needs samples of at least 2 classes")
            self._train(X, labels.astype(np.int32), len(self.classes_))
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(N, classes)``, columns in the order of ``classes_``:
        the softmax computed in float32, returned in float64 with each row divided by its
        sum, so that rows sum to 1 at float64's precision (scikit-learn's metrics, such as
        ``log_loss``, check that they do)."""
        probabilities = self._outputs(X)
        return probabilities / probabilities.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        """The most probable label of each sample, ``(N,)``, from ``classes_``."""
        probabilities = self._outputs(X)  # first: it checks that the model is fitted
        return self.classes_[np.argmax(probabilities, axis=1)]


class Regressor(RegressorMixin, _Network):
    """A purenn network as a scikit-learn regressor: hidden ``dense -> relu [->
    dropout]`` blocks, then a linear output per target, mean squared error (chapter 17).

    The arguments are ``Classifier``'s. ``y`` may be ``(N,)`` or ``(N, targets)`` (one
    output each); ``predict`` returns ``(N,)`` for one target, as scikit-learn's MLP.
    Attributes after ``fit``: ``n_features_in_``, ``params_``, ``history_``,
    ``n_outputs_``.
    """

    def _loss(self):
        return pn.losses.mean_squared_error

    def _output_layers(self, width: int, outputs: int, weight_init) -> list:
        return [pn.dense(width, outputs, weight_init=weight_init), pn.linear()]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X, y):
        """Train on ``X`` ``(N, features)`` and real targets ``y`` ``(N,)`` or ``(N,
        targets)``; returns ``self``."""
        with jax.enable_x64(False):
            X, y = validate_data(self, X, y, dtype=np.float32, y_numeric=True,
                                 multi_output=True)
            targets = np.asarray(y, dtype=np.float32).reshape(y.shape[0], -1)
            self._train(X, targets, targets.shape[1])
        return self

    def predict(self, X) -> np.ndarray:
        """Predictions ``(N,)`` for one target, ``(N, targets)`` for several (float64,
        computed in float32)."""
        outputs = self._outputs(X)
        return outputs[:, 0] if self.n_outputs_ == 1 else outputs
