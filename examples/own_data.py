"""Your own data: a .csv file, its validation split, standardized inputs, a classifier.

Reads FILE (a header row, one sample per row, the label in the last column or --target;
text labels are class names), holds out --validation-split of the samples (drawn from the
seed), scales the inputs by the training samples' statistics, and trains dense -> ReLU ->
dense with softmax cross-entropy, the book's classifier, sized by the file. Then it names
the predicted class of the first validation samples.

    python examples/own_data.py FILE.csv [--target NAME] [--epochs 1001] [--seed 0]

Its log lines are those of ``purenn train --data FILE.csv --validation-split 0.2
--standardize --learning-rate 0.005 --log-every 200`` (the same seed, the same split, the
same run).
"""

import argparse

import jax
import numpy as np

import purenn as pn

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("file", help="a .csv or .npz file")
parser.add_argument("--target", help="the label column (default: the last)")
parser.add_argument("--validation-split", type=float, default=0.2)
parser.add_argument("--hidden", type=int, default=64)
parser.add_argument("--learning-rate", type=float, default=0.005)
parser.add_argument("--epochs", type=int, default=1001)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

data = pn.data.load(args.file, target=args.target)  # X (N, F) float32, y (N,) int32
k_train, k_val, k_init, k_fit = jax.random.split(jax.random.key(args.seed), 4)
(X, y), (X_val, y_val) = pn.data.split(k_val, data.X, data.y, args.validation_split)
X, X_val = pn.data.standardize(X, X_val)  # the training samples' mean and std only
classes = data.classes or tuple(str(c) for c in range(int(data.y.max()) + 1))

model = pn.serial(pn.dense(X.shape[1], args.hidden), pn.relu(),
                  pn.dense(args.hidden, len(classes)))
loss = pn.losses.softmax_categorical_crossentropy
optimizer = pn.optimizers.adam(learning_rate=args.learning_rate)
params, _, history = pn.fit(model, loss, optimizer, model.init(k_init), X, y, key=k_fit,
                            epochs=args.epochs, validation_data=(X_val, y_val),
                            log_every=max(args.epochs // 5, 1))

probabilities = pn.predict(model, loss, params, X_val[:5])
for sample, row in enumerate(np.asarray(probabilities)):
    print(f"validation sample {sample}: {classes[row.argmax()]} ({row.max():.2f}), "
          f"labelled {classes[y_val[sample]]}")
