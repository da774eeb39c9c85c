"""Optimizers: the book's SGD, Adagrad, RMSprop and Adam as pure, optax-shaped functions.

Each optimizer is an immutable pytree (an ``Optimizer``) with two pure methods, the shape
of optax's ``GradientTransformation``:

- ``init(params) -> state``: a ``NamedTuple`` pytree holding the update count, the current
  learning rate and, where the rule needs them, moment trees shaped like ``params``;
- ``update(grads, state, params=None) -> (updates, state)``: the step to add to the params.

``apply_updates(params, updates)`` adds them. Nothing is mutated, so a step jits, vmaps
(e.g. over a stack of models) and scans. The numeric hyperparameters (learning rate,
decay, momentum, epsilon, rho, betas) are the optimizer's pytree **leaves** and its
structure (which rule, whether there is a momentum buffer, a schedule function) is
static: optimizers built with equal arguments are equal and hash equal, an optimizer can
be an argument of a jitted function (a new learning rate compiles nothing new), and
``jax.vmap`` runs over a stack of optimizers. Hyperparameters may be scalar arrays, so
``optax.inject_hyperparams(pn.optimizers.adam)(learning_rate=0.02)`` works too. Example:

>>> import jax
>>> import purenn as pn
>>> from purenn import optimizers
>>> model = pn.serial(pn.dense(2, 16), pn.relu(), pn.dense(16, 3))
>>> X, y = pn.data.spiral(jax.random.key(0), 20, 3)
>>> params = model.init(jax.random.key(1))
>>> def loss(p):
...     return pn.losses.softmax_categorical_crossentropy(model.apply(p, X), y)
>>> opt = optimizers.adam(learning_rate=0.02, decay=5e-7)
>>> state = opt.init(params)
>>> updates, state = opt.update(jax.grad(loss)(params), state, params)
>>> params = optimizers.apply_updates(params, updates)
>>> int(state.count), round(float(optimizers.current_learning_rate(state)), 6)
(1, 0.02)

**Learning rate.** ``learning_rate`` is a positive number, or a schedule
``count -> rate`` called on the int32 scalar count of updates done so far (it must be
jit-traceable). ``decay`` is the book's inverse-time decay and applies on top of either::

    lr(count) = learning_rate(count) * (1.0 / (1.0 + decay * count))

(with a number, ``learning_rate(count)`` is that number; a scalar array works too, and a
traced one, e.g. rates swept with ``jax.vmap``, passes unchecked). ``decay = 0`` makes
the factor exactly 1. ``state.learning_rate`` holds
the rate used by the latest update, the book's ``optimizer.current_learning_rate``: before
any update it is the initial rate ``lr(0)``, after ``k`` updates it is ``lr(k - 1)``. So
the value read from the state before an update is what the book prints at the top of that
epoch (e.g. ``0.019900507413187767`` at epoch 10000 for ``adam(0.02, decay=5e-7)``).

**Rules** (``g`` the gradient, ``lr`` the rate above, ``t = count + 1``), exactly the
book's, in the book's order of operations; epsilon sits *outside* the square root:

- ``sgd``: ``-lr * g``; with momentum ``m = momentum * m - lr * g`` and the update ``m``
- ``adagrad``: ``c = c + g**2``; ``-lr * g / (sqrt(c) + epsilon)``
- ``rmsprop``: ``c = rho * c + (1 - rho) * g**2``; ``-lr * g / (sqrt(c) + epsilon)``
- ``adam``: ``m = beta_1 * m + (1 - beta_1) * g``; ``c = beta_2 * c + (1 - beta_2) * g**2``;
  ``-lr * (m / (1 - beta_1**t)) / (sqrt(c / (1 - beta_2**t)) + epsilon)``

Defaults are the book's (not optax's). ``chain(clip_by_global_norm(1.0), adam())``
composes transformations; ``chain`` and everything in purenn that takes an optimizer
accept any object with ``init`` and ``update`` (optax's transformations included).

Modules: ``base`` (the ``Optimizer`` protocol, ``apply_updates``, reading the learning
rate, the checks the rules share), ``rules`` (sgd, adagrad, rmsprop, adam), ``compose``
(clip_by_global_norm, chain), ``schedules`` (count -> rate functions).
"""

from purenn.optimizers.base import (
    GradientTransformation,
    Optimizer,
    apply_updates,
    current_learning_rate,
    is_optimizer,
    learning_rates,
)
from purenn.optimizers.compose import (
    Chain,
    ClipByGlobalNorm,
    EmptyState,
    chain,
    clip_by_global_norm,
)
from purenn.optimizers.rules import (
    Adagrad,
    AdagradState,
    Adam,
    AdamState,
    Rmsprop,
    RmspropState,
    Sgd,
    SgdState,
    adagrad,
    adam,
    rmsprop,
    sgd,
)
from purenn.optimizers.schedules import exponential_decay, inverse_time_decay

__all__ = [
    "Adagrad",
    "AdagradState",
    "Adam",
    "AdamState",
    "Chain",
    "ClipByGlobalNorm",
    "EmptyState",
    "GradientTransformation",
    "Optimizer",
    "Rmsprop",
    "RmspropState",
    "Sgd",
    "SgdState",
    "adagrad",
    "adam",
    "apply_updates",
    "chain",
    "clip_by_global_norm",
    "current_learning_rate",
    "exponential_decay",
    "inverse_time_decay",
    "is_optimizer",
    "learning_rates",
    "rmsprop",
    "sgd",
]
