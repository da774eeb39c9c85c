"""ReLU, sigmoid and softmax, each with the book's backward formula.

Autodiff: reverse mode only (``jax.grad``, ``jax.vjp``, ``jax.jacrev``); ``jax.jvp`` and
``jax.jacfwd`` raise ``TypeError``. Second derivatives (``jax.hessian``) work: see
``purenn.ops``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from purenn._checks import check_float_array


@jax.custom_vjp
def _relu(x):
    return jnp.maximum(x, 0)


def _relu_fwd(x):
    return jnp.maximum(x, 0), x


def _relu_bwd(x, dvalues):
    # The book zeroes the gradient where x <= 0: at exactly 0 the gradient is 0.
    return (jnp.where(x > 0, dvalues, jnp.zeros_like(dvalues)),)


_relu.defvjp(_relu_fwd, _relu_bwd)


def relu(x: jax.Array) -> jax.Array:
    """``max(0, x)`` elementwise; any shape, dtype kept.

    Backward: ``dvalues`` with zeros where ``x <= 0`` (so the gradient at exactly 0 is 0).
    """
    return _relu(check_float_array("x", x))


def _sigmoid_forward(x):
    return 1 / (1 + jnp.exp(-x))


@jax.custom_vjp
def _sigmoid(x):
    return _sigmoid_forward(x)


def _sigmoid_fwd(x):
    outputs = _sigmoid_forward(x)
    return outputs, outputs


def _sigmoid_bwd(outputs, dvalues):
    return (dvalues * (1 - outputs) * outputs,)


_sigmoid.defvjp(_sigmoid_fwd, _sigmoid_bwd)


def sigmoid(x: jax.Array) -> jax.Array:
    """``1 / (1 + exp(-x))`` elementwise; any shape, dtype kept.

    Large negative inputs overflow ``exp`` to ``inf`` and give exactly 0, which is the
    correctly rounded result. Backward: ``dvalues * (1 - s) * s`` with ``s`` the output.
    """
    return _sigmoid(check_float_array("x", x))


def softmax_forward(x):
    """The book's softmax over the last axis, without the custom gradient."""
    exponentials = jnp.exp(x - jnp.max(x, axis=-1, keepdims=True))
    return exponentials / jnp.sum(exponentials, axis=-1, keepdims=True)


@jax.custom_vjp
def _softmax(x):
    return softmax_forward(x)


def _softmax_fwd(x):
    outputs = softmax_forward(x)
    return outputs, outputs


def _softmax_bwd(outputs, dvalues):
    # The book's per-sample Jacobian product (diag(s) - s s^T) @ dvalues, without forming
    # the (C, C) Jacobian: s * dvalues - s * (s . dvalues).
    dot = jnp.sum(outputs * dvalues, axis=-1, keepdims=True)
    return (outputs * (dvalues - dot),)


_softmax.defvjp(_softmax_fwd, _softmax_bwd)


def softmax(x: jax.Array) -> jax.Array:
    """Softmax over the last axis: each row of ``x`` (shape ``(N, C)``) becomes probabilities.

    Computed as ``e = exp(x - max(x))``, ``e / sum(e)``, so logits of any size are safe.
    Backward: per sample ``(diag(s) - s sᵀ) @ dvalues``, vectorised over the batch.
    """
    x = check_float_array("x", x)
    if x.ndim < 1:
        raise ValueError("softmax: x must have at least one axis (the classes); got a scalar")
    return _softmax(x)
