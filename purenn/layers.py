"""Layers: each a ``Layer`` of three pure functions, composed with ``serial``.

A layer's ``init(key)`` returns its parameters (a pytree), ``apply(params, x, *, key=None,
train=False)`` maps a batch ``x`` of shape ``(N, features)`` forward, and
``penalty(params)`` returns its regularization loss (a scalar, 0 when it has none).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from purenn import ops
from purenn._checks import (
    check_key,
    check_matrix,
    check_nonnegative,
    check_positive_int,
    check_rate,
)


class Layer(NamedTuple):
    """A layer as pure functions (like ``stax``'s ``(init_fun, apply_fun)`` pair).

    init:    ``init(key) -> params``
    apply:   ``apply(params, x, *, key=None, train=False) -> y``
    penalty: ``penalty(params) -> scalar`` regularization loss
    """

    init: Callable[[jax.Array], Any]
    apply: Callable[..., jax.Array]
    penalty: Callable[[Any], jax.Array]


def _no_penalty(params) -> jax.Array:
    del params  # unused
    return jnp.asarray(0.0)  # weakly typed: adds to any float dtype without promoting it


def _no_params(key) -> tuple:
    if key is not None:
        check_key("key", key)
    return ()


def _checked_key(key):
    return None if key is None else check_key("key", key)


def dense(n_inputs: int, n_neurons: int, *, weight_l1: float = 0.0, weight_l2: float = 0.0,
          bias_l1: float = 0.0, bias_l2: float = 0.0, dtype=None) -> Layer:
    """A fully connected layer ``x @ weights + biases`` with optional L1/L2 regularization.

    Params: ``{"weights": (n_inputs, n_neurons), "biases": (1, n_neurons)}``; weights start
    as ``0.01 * standard_normal``, biases at zero (the book's initialisation).
    ``apply`` maps ``(N, n_inputs) -> (N, n_neurons)``. ``penalty`` is
    ``weight_l1 * sum|W| + weight_l2 * sum(W²) + bias_l1 * sum|b| + bias_l2 * sum(b²)``.

    Args:
      n_inputs, n_neurons: positive layer sizes.
      weight_l1, weight_l2, bias_l1, bias_l2: regularization strengths, >= 0.
      dtype: parameter dtype; default float32, or float64 when ``jax_enable_x64`` is on.
    """
    n_inputs = check_positive_int("n_inputs", n_inputs)
    n_neurons = check_positive_int("n_neurons", n_neurons)
    strengths = {
        "weight_l1": check_nonnegative("weight_l1", weight_l1),
        "weight_l2": check_nonnegative("weight_l2", weight_l2),
        "bias_l1": check_nonnegative("bias_l1", bias_l1),
        "bias_l2": check_nonnegative("bias_l2", bias_l2),
    }
    name = f"dense({n_inputs}, {n_neurons})"
    shapes = {"weights": (n_inputs, n_neurons), "biases": (1, n_neurons)}

    def init(key):
        key = check_key("key", key)
        param_dtype = dtype or jax.dtypes.canonicalize_dtype(jnp.float64)
        weights = 0.01 * jax.random.normal(key, shapes["weights"], param_dtype)
        return {"weights": weights, "biases": jnp.zeros(shapes["biases"], param_dtype)}

    def check_params(params):
        if not isinstance(params, dict) or set(params) != set(shapes):
            raise TypeError(f"{name}: params must be a dict with keys 'weights' and 'biases' "
                            f"(what init returns); got {type(params).__name__}")
        for field, shape in shapes.items():
            if tuple(jnp.shape(params[field])) != shape:
                raise ValueError(f"{name}: params['{field}'] must have shape {shape}; got "
                                 f"{tuple(jnp.shape(params[field]))}. Were these params made "
                                 f"by another model's init?")

    def apply(params, x, *, key=None, train=False):
        del train  # unused: a dense layer behaves the same in training and inference
        _checked_key(key)
        check_params(params)
        x = check_matrix("x", x, width=n_inputs, what=f"{name}: ")
        return ops.dense(x, params["weights"], params["biases"])

    def penalty(params):
        check_params(params)
        total = _no_penalty(params)
        for field, prefix in (("weights", "weight"), ("biases", "bias")):
            if strengths[prefix + "_l1"] > 0:
                total = total + ops.l1_penalty(params[field], strengths[prefix + "_l1"])
            if strengths[prefix + "_l2"] > 0:
                total = total + ops.l2_penalty(params[field], strengths[prefix + "_l2"])
        return total

    return Layer(init, apply, penalty)


def _activation(op: Callable[[jax.Array], jax.Array]) -> Layer:
    def apply(params, x, *, key=None, train=False):
        del params, train  # unused: no parameters, same in training and inference
        _checked_key(key)
        return op(x)

    return Layer(_no_params, apply, _no_penalty)


def relu() -> Layer:
    """ReLU, ``max(0, x)``; no parameters (params ``()``), any input shape."""
    return _activation(ops.relu)


def sigmoid() -> Layer:
    """Sigmoid, ``1 / (1 + exp(-x))``; no parameters (params ``()``), any input shape."""
    return _activation(ops.sigmoid)


def softmax() -> Layer:
    """Softmax over the last axis: ``(N, C)`` logits to ``(N, C)`` probabilities."""
    return _activation(ops.softmax)


def dropout(rate: float) -> Layer:
    """Dropout of a fraction ``rate`` of the units in training; identity in inference.

    ``apply(params, x, key=k, train=True)`` keeps each unit with probability ``1 - rate``
    and scales it by ``1 / (1 - rate)``; with ``train=False`` it returns ``x`` unchanged.

    Args:
      rate: the fraction of units **dropped**, in ``[0, 1)``.
    """
    rate = check_rate("rate", rate)

    def apply(params, x, *, key=None, train=False):
        del params  # unused
        key = _checked_key(key)
        if not train:
            return x
        if key is None:
            raise ValueError("dropout needs a key when train=True: "
                             "apply(params, x, key=k, train=True)")
        return ops.dropout(x, key, rate)

    return Layer(_no_params, apply, _no_penalty)


def serial(*layers: Layer) -> Layer:
    """Layers applied one after another; params are a tuple, one entry per layer.

    ``init`` and ``apply`` split their key once per layer, in order, so layer ``i`` gets
    ``jax.random.split(key, len(layers))[i]``.
    """
    if not layers:
        raise ValueError("serial needs at least one layer, e.g. serial(dense(2, 3), relu())")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(f"serial: argument {i} must be a Layer (from pn.dense, pn.relu, "
                            f"...); got {type(layer).__name__}. Did you pass pn.relu "
                            f"instead of pn.relu()?")

    def split(key):
        if key is None:
            return (None,) * len(layers)
        return tuple(jax.random.split(check_key("key", key), len(layers)))

    def check_params(params):
        if not isinstance(params, (tuple, list)) or len(params) != len(layers):
            got = (f"{len(params)} entries" if isinstance(params, (tuple, list))
                   else type(params).__name__)
            raise TypeError(f"serial: params must be a tuple with one entry per layer "
                            f"({len(layers)}), as init returns; got {got}")

    def init(key):
        if key is None:
            raise TypeError("serial.init needs a key, e.g. model.init(jax.random.key(0))")
        return tuple(layer.init(k) for layer, k in zip(layers, split(key)))

    def apply(params, x, *, key=None, train=False):
        check_params(params)
        for layer, layer_params, layer_key in zip(layers, params, split(key)):
            x = layer.apply(layer_params, x, key=layer_key, train=train)
        return x

    def penalty(params):
        check_params(params)
        total = _no_penalty(params)
        for layer, layer_params in zip(layers, params):
            total = total + layer.penalty(layer_params)
        return total

    return Layer(init, apply, penalty)
