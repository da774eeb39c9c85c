"""A deep net, from the book's initialization and from He's.

Five hidden layers of 64 ReLU units on the spiral data: with the book's weights
(0.01 * normal) the signal shrinks about tenfold per layer and the net starts slowly;
with ``jax.nn.initializers.he_normal()`` it keeps its scale and learns far sooner (301
epochs, seed 0: training accuracy 0.670 against 0.957). Validation runs on its own clock
(``validation_every``), and early stopping (``patience``) counts those evaluations.

    python examples/deep_init.py [--epochs 1001] [--seed 0]
"""

import argparse

import jax

import purenn as pn

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=1001)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

k_train, k_val, k_init, k_fit = jax.random.split(jax.random.key(args.seed), 4)
X, y = pn.data.spiral(k_train, 100, 3)
validation = pn.data.spiral(k_val, 100, 3)


def deep_model(init):
    """2 -> 64 -> ... (five hidden layers) -> 3, every dense layer's weights from init."""
    sizes = [2, 64, 64, 64, 64, 64]
    layers = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        layers += [pn.dense(n_in, n_out, weight_init=init), pn.relu()]
    return pn.serial(*layers, pn.dense(64, 3, weight_init=init))


for name, init in [("book", pn.initializers.book()),
                   ("he_normal", jax.nn.initializers.he_normal())]:
    model = deep_model(init)
    params, _, history = pn.fit(
        model, pn.losses.softmax_categorical_crossentropy,
        pn.optimizers.adam(learning_rate=0.005), model.init(k_init), X, y, key=k_fit,
        epochs=args.epochs, validation_data=validation, validation_every=50, patience=4,
        log_fn=None)
    print(f"{name}: trained {len(history['loss'])} epochs, training acc "
          f"{history['accuracy'][-1]:.3f}, validation acc "
          f"{history['validation']['accuracy']:.3f} (best epoch {history['best_epoch']})")
