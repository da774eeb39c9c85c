"""purenn: the network pieces of *Neural Networks from Scratch*, as pure JAX functions.

Layers, losses and optimizers are pure functions over pytrees; every gradient is the
book's hand-written backward formula, registered with ``jax.custom_vjp``.
"""

from purenn import data, layers, losses, ops
from purenn.layers import Layer, dense, dropout, relu, serial, sigmoid, softmax

__version__ = "0.1.0"

__all__ = [
    "Layer",
    "data",
    "dense",
    "dropout",
    "layers",
    "losses",
    "ops",
    "relu",
    "serial",
    "sigmoid",
    "softmax",
]
