"""The minimal plain-JAX training loop a JAX user writes for the book's chapter-14 model.

    Dense(2, H, L2 5e-4 on weights and biases) -> ReLU -> Dense(H, 3) -> softmax + CCE
    Adam(learning_rate=0.02, decay=5e-7), full batch, float32

The forward pass in plain ``jnp``, differentiated by ``jax.value_and_grad`` (autodiff, no
hand-written VJPs), the book's Adam written inline, and one ``lax.scan`` over all the
epochs, whose outputs are every epoch's metrics (loss, data loss, regularization loss,
accuracy, learning rate: what the book prints). Nothing here imports purenn.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

L2 = 5e-4
LEARNING_RATE = 0.02
DECAY = 5e-7
BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7
CLIP = 1e-7


def init_params(key, hidden: int, dtype=jnp.float32) -> tuple:
    """``(W1 (2, H), b1 (1, H), W2 (H, 3), b2 (1, 3))``: 0.01 * normal weights, zero
    biases, as the book initialises them."""
    k1, k2 = jax.random.split(key)
    return (0.01 * jax.random.normal(k1, (2, hidden), dtype), jnp.zeros((1, hidden), dtype),
            0.01 * jax.random.normal(k2, (hidden, 3), dtype), jnp.zeros((1, 3), dtype))


def forward(params, X):
    """Logits ``(N, 3)`` of inputs ``X (N, 2)``."""
    w1, b1, w2, b2 = params
    return jnp.maximum(X @ w1 + b1, 0) @ w2 + b2


def book_loss(params, X, y):
    """The book's loss: softmax, clip to [1e-7, 1 - 1e-7], mean of -log(confidence of the
    true class ``y (N,)``), plus the first layer's L2 penalties. Returns ``(loss,
    (data_loss, reg_loss, logits))``."""
    w1, b1, _, _ = params
    logits = forward(params, X)
    probs = jnp.clip(jax.nn.softmax(logits, axis=1), CLIP, 1 - CLIP)
    data_loss = jnp.mean(-jnp.log(jnp.take_along_axis(probs, y[:, None], axis=1)[:, 0]))
    reg_loss = L2 * jnp.sum(w1 * w1) + L2 * jnp.sum(b1 * b1)
    return data_loss + reg_loss, (data_loss, reg_loss, logits)


def init_adam(params) -> tuple:
    """``(count, momentum, cache)``: a step count and two trees of zeros like params."""
    zeros = tuple(jnp.zeros_like(p) for p in params)
    return jnp.zeros((), jnp.int32), zeros, zeros


def book_adam(params, state, grads):
    """One step of the book's Adam with inverse-time decay: ``(params, state, rate)``."""
    count, momentum, cache = state
    rate = LEARNING_RATE * (1.0 / (1.0 + DECAY * count.astype(jnp.float32)))
    t = (count + 1).astype(jnp.float32)
    correction_1, correction_2 = 1 - BETA_1 ** t, 1 - BETA_2 ** t
    momentum = tuple(BETA_1 * m + (1 - BETA_1) * g for m, g in zip(momentum, grads))
    cache = tuple(BETA_2 * c + (1 - BETA_2) * g ** 2 for c, g in zip(cache, grads))
    params = tuple(p - rate * (m / correction_1) / (jnp.sqrt(c / correction_2) + EPSILON)
                   for p, m, c in zip(params, momentum, cache))
    return params, (count + 1, momentum, cache), rate


def epoch(carry, X, y):
    """One full-batch epoch: ``((params, adam_state), X, y) -> (carry, metrics)``."""
    params, state = carry
    (loss, (data_loss, reg_loss, logits)), grads = jax.value_and_grad(
        book_loss, has_aux=True)(params, X, y)
    params, state, rate = book_adam(params, state, grads)
    accuracy = jnp.mean(jnp.argmax(logits, axis=1) == y)
    return (params, state), {"loss": loss, "data_loss": data_loss, "reg_loss": reg_loss,
                             "accuracy": accuracy, "learning_rate": rate}


step = jax.jit(epoch)  # one epoch as its own program (its XLA ops are counted)


@functools.partial(jax.jit, static_argnames="epochs")
def train(params, X, y, *, epochs: int):
    """``epochs`` epochs in one ``lax.scan``: ``(params, metrics)``, every metric
    ``(epochs,)``."""
    (params, _), metrics = lax.scan(lambda carry, _: epoch(carry, X, y),
                                    (params, init_adam(params)), None, length=epochs)
    return params, metrics


@jax.jit
def evaluate(params, X, y):
    """``{"loss", "accuracy"}`` of inference on ``(X, y)`` (the data loss, as the book's
    validation line)."""
    _, (data_loss, _, logits) = book_loss(params, X, y)
    return {"loss": data_loss, "accuracy": jnp.mean(jnp.argmax(logits, axis=1) == y)}
