"""Model selection with scikit-learn's tools: the same ``GridSearchCV`` (4 learning rates x
2 L2 strengths, 3 folds, then the refit of the best) over ``purenn.sklearn.Classifier``
and over scikit-learn's ``MLPClassifier``, on scikit-learn's digits (8 x 8 images, 10
classes, pixels scaled to [0, 1]), three quarters searched, one quarter held out.

Both networks have one hidden layer of ``HIDDEN`` ReLU units, train with Adam on batches
of 200 for the same number of epochs (``MLPClassifier`` with its stopping rule turned off,
so that it runs every epoch) and start from their own initializations (purenn's default,
the book's 0.01 * normal; scikit-learn's Glorot uniform). The L2 strengths are the same
penalty on the hidden layer's weights: purenn's ``weight_l2 * sum(W**2)`` on the mean loss is
scikit-learn's ``alpha / (2 * batch) * sum(W**2)`` with ``alpha = 2 * batch * weight_l2``
(scikit-learn also penalizes the output layer's weights). Figures: the wall time of each
whole search (every fit and score; purenn's first includes its compiles), the best
setting's mean cross-validated accuracy, its accuracy on the held-out quarter, and the
training programs purenn compiled (one per data shape: the folds', the refit's).
"""

from __future__ import annotations

import time
import warnings

from benchmarks.timing import compile_log

HIDDEN = 64
BATCH = 200
LEARNING_RATES = (0.001, 0.002, 0.005, 0.01)
WEIGHT_L2 = (1e-5, 1e-4)
PURENN = "purenn.sklearn.Classifier"
MLP = "sklearn MLPClassifier"


def _searches(epochs: int, seed: int):
    """``{name: GridSearchCV}`` of both contenders, equal settings."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.neural_network import MLPClassifier

    from purenn.sklearn import Classifier

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    folds = StratifiedKFold(3, shuffle=True, random_state=seed)
    ours = Classifier(hidden=(HIDDEN,), epochs=epochs, batch_size=BATCH, random_state=seed)
    theirs = MLPClassifier(hidden_layer_sizes=(HIDDEN,), solver="adam", batch_size=BATCH,
                           max_iter=epochs, n_iter_no_change=epochs + 1, random_state=seed)
    return {
        PURENN: GridSearchCV(ours, {"learning_rate": list(LEARNING_RATES),
                                    "weight_l2": list(WEIGHT_L2)}, cv=folds),
        MLP: GridSearchCV(theirs, {"learning_rate_init": list(LEARNING_RATES),
                                   "alpha": [2 * BATCH * s for s in WEIGHT_L2]}, cv=folds),
    }


def _training_programs(seen: list) -> int:
    return sum(1 for name, _ in seen if name == "jit(_run_program)")


def measure(reps: int, *, epochs: int = 50, samples: int | None = None, seed: int = 0,
            log=print) -> dict:
    """``reps`` interleaved repetitions of both searches. Returns ``{"skipped": why}``
    without scikit-learn, else ``rows`` (name -> figures), ``epochs``, ``settings``,
    ``folds``, ``train`` and ``test`` sizes."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        return {"skipped": "scikit-learn not installed (pip install 'purenn[sklearn]')"}
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    if samples is not None:
        X, y = X[:samples], y[:samples]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                        random_state=seed)
    walls: dict = {PURENN: [], MLP: []}
    figures: dict = {}
    with compile_log() as seen:
        for rep in range(reps):
            for name, search in _searches(epochs, seed).items():
                before = len(seen)
                start = time.perf_counter()
                search.fit(X_train, y_train)
                walls[name].append(time.perf_counter() - start)
                if rep == 0:
                    programs = _training_programs(seen[before:])
                    figures[name] = dict(best=search.best_params_,
                                         cv_accuracy=float(search.best_score_),
                                         test_accuracy=float(search.score(X_test, y_test)),
                                         programs=programs if name == PURENN else None)
                log(f"  {name}: {walls[name][-1]:.2f} s, best {search.best_params_}, "
                    f"cv accuracy {search.best_score_:.3f}")
    rows = {name: dict(figures[name], walls=walls[name]) for name in (PURENN, MLP)}
    return dict(rows=rows, epochs=epochs, settings=len(LEARNING_RATES) * len(WEIGHT_L2),
                folds=3, train=len(y_train), test=len(y_test))
