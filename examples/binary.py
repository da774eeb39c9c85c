"""The book's binary logistic regression (chapter 16).

Two spiral classes and one sigmoid output that answers "is this class 1?", trained with
binary cross-entropy. The labels become a column of 0/1 targets, shape (N, 1): one
target per output.

    python examples/binary.py [--epochs 10001] [--seed 0]
"""

import argparse

import jax

import purenn as pn

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=10001)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

k_train, k_val, k_init, k_fit = jax.random.split(jax.random.key(args.seed), 4)
X, y = pn.data.spiral(k_train, samples=100, classes=2)
X_val, y_val = pn.data.spiral(k_val, samples=100, classes=2)
y, y_val = y.reshape(-1, 1), y_val.reshape(-1, 1)

model = pn.serial(
    pn.dense(2, 64, weight_l2=5e-4, bias_l2=5e-4),
    pn.relu(),
    pn.dense(64, 1),
    pn.sigmoid(),
)
loss = pn.losses.binary_crossentropy
optimizer = pn.optimizers.adam(decay=5e-7)  # the book's default learning rate, 0.001

params = model.init(k_init)
params, opt_state, history = pn.fit(model, loss, optimizer, params, X, y, key=k_fit,
                                    epochs=args.epochs, validation_data=(X_val, y_val),
                                    log_every=100)
