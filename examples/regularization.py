"""The book's regularization experiment (chapter 14).

A 64-unit network with L2 regularization on 300 spiral points, checked against 300 new
ones. The book ends at ``epoch: 10000, acc: 0.947, loss: 0.217 (data_loss: 0.157,
reg_loss: 0.060), lr: 0.019900507413187767`` and ``validation, acc: 0.830, loss: 0.435``.

    python examples/regularization.py [--epochs 10001] [--seed 0]
"""

import argparse

import jax

import purenn as pn

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=10001)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

k_train, k_val, k_init, k_fit = jax.random.split(jax.random.key(args.seed), 4)
X, y = pn.data.spiral(k_train, samples=100, classes=3)
X_val, y_val = pn.data.spiral(k_val, samples=100, classes=3)

model = pn.serial(
    pn.dense(2, 64, weight_l2=5e-4, bias_l2=5e-4),
    pn.relu(),
    pn.dense(64, 3),
)
loss = pn.losses.softmax_categorical_crossentropy  # softmax + cross-entropy, from logits
optimizer = pn.optimizers.adam(learning_rate=0.02, decay=5e-7)

params = model.init(k_init)
params, opt_state, history = pn.fit(model, loss, optimizer, params, X, y, key=k_fit,
                                    epochs=args.epochs, validation_data=(X_val, y_val),
                                    log_every=100)
