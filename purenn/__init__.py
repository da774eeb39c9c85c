"""purenn: the network pieces of *Neural Networks from Scratch*, as pure JAX functions.

Layers, losses and optimizers are pure functions over pytrees; every gradient is the
book's hand-written backward formula, registered with ``jax.custom_vjp``.
"""

from purenn import checkpoint, data, initializers, layers, losses, ops, optimizers, signals, train
from purenn.layers import Layer, dense, dropout, linear, relu, serial, sigmoid, softmax
from purenn.train import DivergenceError, evaluate, fit, predict, train_step

__version__ = "0.1.0"

__all__ = [
    "DivergenceError",
    "Layer",
    "checkpoint",
    "data",
    "dense",
    "dropout",
    "evaluate",
    "fit",
    "initializers",
    "layers",
    "linear",
    "losses",
    "ops",
    "optimizers",
    "predict",
    "relu",
    "serial",
    "sigmoid",
    "signals",
    "softmax",
    "train",
    "train_step",
]
