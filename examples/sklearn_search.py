"""Model selection with scikit-learn's tools: a purenn network in a ``Pipeline`` with a
``StandardScaler``, its learning rate and L2 strength chosen by ``GridSearchCV``, then
scored on held-out data.

Needs scikit-learn (``pip install 'purenn[sklearn]'``). Every setting of the grid has
the same structure, so all its fits run one compiled training program (plus one for the
refit's larger training set).

    python examples/sklearn_search.py [--epochs 50] [--seed 0]
"""

import argparse

from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from purenn.sklearn import Classifier

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=50)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

X, y = load_digits(return_X_y=True)  # (1797, 64) pixel values 0-16, labels 0-9
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                    random_state=args.seed)
pipeline = Pipeline([
    ("scale", StandardScaler()),
    ("net", Classifier(hidden=(64,), epochs=args.epochs, batch_size=200,
                       random_state=args.seed)),
])
grid = {"net__learning_rate": [0.001, 0.01], "net__weight_l2": [1e-5, 1e-4]}
search = GridSearchCV(pipeline, grid, cv=3).fit(X_train, y_train)

for params, mean, std in zip(search.cv_results_["params"],
                             search.cv_results_["mean_test_score"],
                             search.cv_results_["std_test_score"]):
    print(f"learning_rate {params['net__learning_rate']:g}, weight_l2 "
          f"{params['net__weight_l2']:g}: accuracy {mean:.3f} +- {std:.3f}")
best = search.best_params_
print(f"best: learning_rate {best['net__learning_rate']:g}, weight_l2 "
      f"{best['net__weight_l2']:g}; held-out accuracy {search.score(X_test, y_test):.3f}")
