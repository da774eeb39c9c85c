"""The book's regression of a sine wave (chapter 17).

1000 points of y = sin(2 pi x) on [0, 1), two hidden layers of 64 ReLU units and one
linear output, trained with mean squared error. Accuracy is the book's: the fraction of
predictions within std(y) / 250 of their targets. The weights start at 0.1 * normal:
with the book's usual 0.01 the model stays stuck near a flat line.

    python examples/regression.py [--epochs 10001] [--seed 0]
"""

import argparse

import jax

import purenn as pn

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=10001)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

k_train, k_val, k_init, k_fit = jax.random.split(jax.random.key(args.seed), 4)
X, y = pn.data.sine(1000)  # (1000, 1), (1000, 1); drawn from no key

init = pn.initializers.book(0.1)
model = pn.serial(
    pn.dense(1, 64, weight_init=init),
    pn.relu(),
    pn.dense(64, 64, weight_init=init),
    pn.relu(),
    pn.dense(64, 1, weight_init=init),
    pn.linear(),
)
loss = pn.losses.mean_squared_error
optimizer = pn.optimizers.adam(learning_rate=0.005, decay=1e-3)

params = model.init(k_init)
params, opt_state, history = pn.fit(model, loss, optimizer, params, X, y, key=k_fit,
                                    epochs=args.epochs, log_every=100)
if (args.epochs - 1) % 100:  # the last epoch's line, as purenn book regression prints it
    print(pn.train.format_log_line(args.epochs - 1, {name: history[name][-1] for name in
                                                     pn.train.METRICS if name in history}))
