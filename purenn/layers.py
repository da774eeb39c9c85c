"""Layers: immutable pytrees with three pure methods, composed with ``serial``.

A layer's ``init(key)`` returns its parameters (a pytree), ``apply(params, x, *, key=None,
train=False)`` maps a batch ``x`` of shape ``(N, features)`` forward, and
``penalty(params)`` returns its regularization loss (a scalar, 0 when it has none).

A layer is itself a pytree (like an equinox module): its numeric hyperparameters (the
L1/L2 strengths, the dropout rate) are **leaves**, its structure (kind, sizes, which
regularizers exist) is static. So two layers built with equal arguments are equal and hash
equal, a model can be an argument of a jitted function (a new strength or rate compiles
nothing new), and ``jax.vmap`` runs over a stack of models::

    models = [pn.serial(pn.dense(2, 64, weight_l2=l2), pn.relu(), pn.dense(64, 3))
              for l2 in (1e-4, 5e-4, 1e-3)]
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *models)
    penalties = jax.vmap(lambda m, p: m.penalty(p), in_axes=(0, None))(stacked, params)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from purenn import initializers, ops, pytrees
from purenn._checks import (
    check_fraction,
    check_key,
    check_matrix,
    check_nonnegative,
    check_positive_int,
)
from purenn.partition import compiled_method, jit_program

__all__ = ["Custom", "Dense", "Dropout", "Layer", "Linear", "Relu", "Serial", "Sigmoid",
           "Softmax", "custom", "dense", "dropout", "linear", "relu", "serial", "sigmoid",
           "softmax"]


def _zero() -> jax.Array:
    return jnp.asarray(0.0)  # weakly typed: adds to any float dtype without promoting it


def _checked_key(key):
    return None if key is None else check_key("key", key)


class Layer:
    """A layer: an immutable pytree with three pure methods.

    - ``init(key) -> params``: the layer's parameters (``()`` when it has none).
    - ``apply(params, x, *, key=None, train=False) -> y``: the forward pass of a batch.
      ``train=True`` is the training pass (dropout drops units, and needs ``key``);
      ``train=False`` is inference (dropout is the identity).
    - ``penalty(params) -> scalar``: the regularization loss (0 when there is none).

    Subclasses are ``pytrees.dataclass`` classes: frozen dataclasses whose numeric
    hyperparameters are pytree leaves, and whose ``pytrees.static()`` fields (sizes,
    functions) are structure.
    Wrap your own functions with ``pn.layers.custom(init, apply, penalty)``.

    ``pure_init``: whether ``init`` may run inside one compiled program (no Python side
    effects, JAX arrays out); ``serial`` then compiles a whole model's ``init`` into one
    program. False here and for ``custom`` layers; True for purenn's own layers. A
    subclass whose ``init`` is pure may set it True.
    """

    pure_init = False

    def init(self, key: jax.Array) -> Any:
        """The initial parameters, drawn from ``key``."""
        del key  # unused
        return ()

    def apply(self, params, x: jax.Array, *, key: jax.Array | None = None,
              train: bool = False) -> jax.Array:
        """Map a batch ``x`` (``(N, features_in)``) to ``(N, features_out)``.

        ``train=True`` is the training pass: layers that behave differently in training
        (dropout) do so, drawing from ``key``; ``train=False`` (the default) is inference.
        ``key`` is a ``jax.random`` key or None; layers that draw nothing ignore it.
        """
        raise NotImplementedError

    def penalty(self, params) -> jax.Array:
        """The regularization loss of ``params``: a scalar, 0 by default."""
        del params  # unused
        return _zero()


# --- dense ----------------------------------------------------------------------------

@pytrees.dataclass
class Dense(Layer):
    """``x @ weights + biases`` with optional L1/L2 penalties; build it with ``dense``."""

    pure_init = True

    n_inputs: int = pytrees.static()
    n_neurons: int = pytrees.static()
    weight_l1: Any = None  # a strength (a leaf), or None: no such term (no leaf)
    weight_l2: Any = None
    bias_l1: Any = None
    bias_l2: Any = None
    dtype: Any = pytrees.static(default=None)
    weight_init: initializers.Initializer = pytrees.static(default=initializers.book())
    bias_init: initializers.Initializer = pytrees.static(default=initializers.zeros())

    @property
    def _name(self) -> str:
        return f"dense({self.n_inputs}, {self.n_neurons})"

    @property
    def _shapes(self) -> dict[str, tuple[int, int]]:
        return {"weights": (self.n_inputs, self.n_neurons), "biases": (1, self.n_neurons)}

    def init(self, key):
        """``{"weights": weight_init (n_inputs, n_neurons), "biases": bias_init (1,
        n_neurons)}`` in ``dtype`` (default float32, float64 under ``jax_enable_x64``);
        by default the book's ``0.01 * normal`` weights and zero biases. The weights are
        drawn from ``key``, the biases from ``jax.random.fold_in(key, 1)``. One compiled
        program per structure (sizes, dtype, which strengths exist, initializers)."""
        return self._params(check_key("key", key))

    @compiled_method
    def _params(self, key):
        dtype = self.dtype or jax.dtypes.canonicalize_dtype(jnp.float64)
        shapes = self._shapes
        weights = self.weight_init(key, shapes["weights"], dtype)
        biases = self.bias_init(jax.random.fold_in(key, 1), shapes["biases"], dtype)
        for init, field, value in (("weight_init", "weights", weights),
                                   ("bias_init", "biases", biases)):
            if tuple(jnp.shape(value)) != shapes[field] or jnp.result_type(value) != dtype:
                raise ValueError(f"{self._name}: {init} returned {field} of shape "
                                 f"{tuple(jnp.shape(value))} and dtype "
                                 f"{jnp.result_type(value)}; it must return the shape "
                                 f"{shapes[field]} and dtype {dtype} it is given")
        return {"weights": weights, "biases": biases}

    def _check_params(self, params):
        if not isinstance(params, dict) or set(params) != {"weights", "biases"}:
            raise TypeError(f"{self._name}: params must be a dict with keys 'weights' and "
                            f"'biases' (what init returns); got {type(params).__name__}")
        for field, shape in self._shapes.items():
            if tuple(jnp.shape(params[field])) != shape:
                raise ValueError(f"{self._name}: params['{field}'] must have shape {shape}; "
                                 f"got {tuple(jnp.shape(params[field]))}. Were these params "
                                 f"made by another model's init?")

    def apply(self, params, x, *, key=None, train=False):
        """``(N, n_inputs) -> (N, n_neurons)``; the same in training and inference
        (``key`` and ``train`` are accepted and unused)."""
        del train  # unused: a dense layer behaves the same in training and inference
        _checked_key(key)
        self._check_params(params)
        x = check_matrix("x", x, width=self.n_inputs, what=f"{self._name}: ")
        return ops.dense(x, params["weights"], params["biases"])

    def penalty(self, params):
        """``weight_l1 * sum|W| + weight_l2 * sum(W²) + bias_l1 * sum|b| + bias_l2 *
        sum(b²)`` over the strengths that were given."""
        self._check_params(params)
        total = _zero()
        for field, prefix in (("weights", "weight"), ("biases", "bias")):
            for kind, op in (("l1", ops.l1_penalty), ("l2", ops.l2_penalty)):
                strength = getattr(self, f"{prefix}_{kind}")
                if strength is not None:
                    total = total + op(params[field], strength)
        return total


def dense(n_inputs: int, n_neurons: int, *, weight_l1: float | None = None,
          weight_l2: float | None = None, bias_l1: float | None = None,
          bias_l2: float | None = None, dtype=None,
          weight_init: Callable | None = None, bias_init: Callable | None = None) -> Dense:
    """A fully connected layer ``x @ weights + biases`` with optional L1/L2 regularization.

    Params: ``{"weights": (n_inputs, n_neurons), "biases": (1, n_neurons)}``; weights start
    as ``0.01 * standard_normal``, biases at zero (the book's initialisation), unless
    ``weight_init`` or ``bias_init`` says otherwise.
    ``apply`` maps ``(N, n_inputs) -> (N, n_neurons)``. ``penalty`` is
    ``weight_l1 * sum|W| + weight_l2 * sum(W²) + bias_l1 * sum|b| + bias_l2 * sum(b²)``.

    Args:
      n_inputs, n_neurons: positive layer sizes (static).
      weight_l1, weight_l2, bias_l1, bias_l2: regularization strengths, >= 0 (a number
        or a scalar array). A strength left as ``None`` adds no term at all; any number,
        0 included, is a pytree leaf, so values can be swept under ``jit``/``vmap``
        without compiling again (give ``0.0`` rather than ``None`` to the cells of a
        sweep that include no penalty, so every cell has the same structure).
      dtype: parameter dtype; default float32, or float64 when ``jax_enable_x64`` is on.
      weight_init, bias_init: initializers ``(key, shape, dtype) -> array``: any of
        ``jax.nn.initializers`` (``he_normal()``, ``glorot_uniform()``, ...) or
        ``pn.initializers`` (``book(0.1)``, ``zeros()``). None: the book's,
        ``pn.initializers.book()`` (``0.01 * normal``) and ``pn.initializers.zeros()``.
        Static: equal initializers (``he_normal()`` called twice included) share one
        compiled ``init`` (see ``purenn.initializers``).
    """
    n_inputs = check_positive_int("n_inputs", n_inputs)
    n_neurons = check_positive_int("n_neurons", n_neurons)
    given = {"weight_l1": weight_l1, "weight_l2": weight_l2, "bias_l1": bias_l1,
             "bias_l2": bias_l2}
    strengths = {name: None if value is None else check_nonnegative(name, value)
                 for name, value in given.items()}
    inits = {name: initializers.as_initializer(value, name)
             for name, value in (("weight_init", weight_init), ("bias_init", bias_init))
             if value is not None}
    return Dense(n_inputs, n_neurons, dtype=dtype, **strengths, **inits)


# --- activations and dropout ----------------------------------------------------------


class _Activation(Layer):
    """A parameterless layer applying ``_op`` elementwise (or per row)."""

    pure_init = True

    _op: Callable[[jax.Array], jax.Array]

    def init(self, key):
        """No parameters: ``()``."""
        _checked_key(key)
        return ()

    def apply(self, params, x, *, key=None, train=False):
        """Elementwise (relu, sigmoid) or per row over the last axis (softmax): ``x`` of
        any float shape, e.g. ``(N, features)``, to the same shape and dtype. The same in
        training and inference: ``train`` changes nothing and ``key`` is accepted (and
        checked) but unused; ``params`` is ``()``."""
        del params, train  # unused: no parameters, same in training and inference
        _checked_key(key)
        return type(self)._op(x)


@pytrees.dataclass
class Relu(_Activation):
    """``max(0, x)``; build it with ``relu()``."""

    _op = staticmethod(ops.relu)


@pytrees.dataclass
class Sigmoid(_Activation):
    """``1 / (1 + exp(-x))``; build it with ``sigmoid()``."""

    _op = staticmethod(ops.sigmoid)


@pytrees.dataclass
class Softmax(_Activation):
    """Softmax over the last axis; build it with ``softmax()``."""

    _op = staticmethod(ops.softmax)


def _identity(x):
    return x


@pytrees.dataclass
class Linear(_Activation):
    """The identity, the book's linear output activation; build it with ``linear()``."""

    _op = staticmethod(_identity)


def relu() -> Relu:
    """ReLU, ``max(0, x)``; no parameters (params ``()``), any input shape."""
    return Relu()


def sigmoid() -> Sigmoid:
    """Sigmoid, ``1 / (1 + exp(-x))``; no parameters (params ``()``), any input shape."""
    return Sigmoid()


def softmax() -> Softmax:
    """Softmax over the last axis: ``(N, C)`` logits to ``(N, C)`` probabilities."""
    return Softmax()


def linear() -> Linear:
    """The linear activation ``y = x`` (the book's ``Activation_Linear``), the output of a
    regression model: ``(N, J)`` in, the same out, gradient passed through unchanged; no
    parameters (params ``()``)."""
    return Linear()


@pytrees.dataclass
class Dropout(Layer):
    """Inverted dropout of a fraction ``rate``; build it with ``dropout(rate)``."""

    pure_init = True

    rate: Any

    def init(self, key):
        """No parameters: ``()``."""
        _checked_key(key)
        return ()

    def apply(self, params, x, *, key=None, train=False):
        """``train=True``: keep each unit with probability ``1 - rate`` and scale it by
        ``1 / (1 - rate)`` (needs ``key``; same key, same mask). ``train=False``: ``x``
        unchanged. Any shape in, the same shape out."""
        del params  # unused
        key = _checked_key(key)
        if not train:
            return x
        if key is None:
            raise ValueError("dropout needs a key when train=True: "
                             "apply(params, x, key=k, train=True)")
        return ops.dropout(x, key, self.rate)


def dropout(rate: float) -> Dropout:
    """Dropout of a fraction ``rate`` of the units in training; identity in inference.

    ``apply(params, x, key=k, train=True)`` keeps each unit with probability ``1 - rate``
    and scales it by ``1 / (1 - rate)``; with ``train=False`` it returns ``x`` unchanged.

    Args:
      rate: the fraction of units **dropped**, in ``[0, 1)``: a number or a scalar array
        (a pytree leaf: rates can be swept under ``jit``/``vmap``).
    """
    return Dropout(check_fraction("rate", rate))


# --- composition and custom layers ----------------------------------------------------


@jit_program(static_argnums=1)
def _split_keys(key, n: int) -> tuple:
    """``tuple(jax.random.split(key, n))`` in one program (eagerly: one compile)."""
    return tuple(jax.random.split(key, n))


@pytrees.dataclass
class Serial(Layer):
    """Layers applied one after another; build it with ``serial(*layers)``."""

    layers: tuple[Layer, ...]

    def _split(self, key):
        if key is None:
            return (None,) * len(self.layers)
        return _split_keys(check_key("key", key), len(self.layers))

    def _check_params(self, params):
        if not isinstance(params, (tuple, list)) or len(params) != len(self.layers):
            got = (f"{len(params)} entries" if isinstance(params, (tuple, list))
                   else type(params).__name__)
            raise TypeError(f"serial: params must be a tuple with one entry per layer "
                            f"({len(self.layers)}), as init returns; got {got}")

    def init(self, key):
        """A tuple with each layer's params; layer ``i`` gets ``split(key, n)[i]``.

        One compiled program per model structure (the layers' kinds and sizes, which
        strengths exist; not their values). A model holding a ``custom`` layer splits the
        key in a program of its own and calls each layer's ``init`` in turn: yours as it
        is (it may have Python side effects), purenn's each as its own program."""
        if key is None:
            raise TypeError("serial.init needs a key, e.g. model.init(jax.random.key(0))")
        key = check_key("key", key)
        if self.pure_init:
            return self._compiled_params(key)
        return self._params(key)

    def _params(self, key):
        return tuple(layer.init(k) for layer, k in zip(self.layers, self._split(key)))

    _compiled_params = compiled_method(_params)

    @property
    def pure_init(self) -> bool:
        """Whether every layer's ``init`` is pure: then this one is one program."""
        return all(layer.pure_init for layer in self.layers)

    def apply(self, params, x, *, key=None, train=False):
        """Each layer in turn: ``(N, features_in) -> (N, features_out)``. Layer ``i``
        gets ``split(key, n)[i]`` when ``key`` is given (None otherwise) and the same
        ``train``; ``params`` is the tuple ``init`` returns, one entry per layer."""
        self._check_params(params)
        for layer, layer_params, layer_key in zip(self.layers, params, self._split(key)):
            x = layer.apply(layer_params, x, key=layer_key, train=train)
        return x

    def penalty(self, params):
        """The sum of the layers' penalties."""
        self._check_params(params)
        total = _zero()
        for layer, layer_params in zip(self.layers, params):
            total = total + layer.penalty(layer_params)
        return total


def serial(*layers: Layer) -> Serial:
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
    return Serial(tuple(layers))


@pytrees.dataclass
class Custom(Layer):
    """A layer made of your own pure functions (stax style); build it with ``custom``.

    The functions are static: two ``Custom`` layers are equal when they hold the same
    function objects.
    """

    init_fn: Callable[[jax.Array], Any] = pytrees.static()
    apply_fn: Callable[..., jax.Array] = pytrees.static()
    penalty_fn: Callable[[Any], jax.Array] | None = pytrees.static(default=None)

    def init(self, key):
        """``init_fn(key)``: your layer's parameters, called as it is (not compiled by
        purenn: it may have Python side effects or return NumPy arrays)."""
        return self.init_fn(key)

    def apply(self, params, x, *, key=None, train=False):
        """``apply_fn(params, x, key=key, train=train)``: shapes, and what ``key`` and
        ``train`` do, are your function's. Inside ``serial`` it gets its own split of the
        model's key (None in inference) and the model's ``train``."""
        return self.apply_fn(params, x, key=key, train=train)

    def penalty(self, params):
        """``penalty_fn(params)``, or 0 when none was given."""
        return _zero() if self.penalty_fn is None else self.penalty_fn(params)


def custom(init: Callable[[jax.Array], Any], apply: Callable[..., jax.Array],
           penalty: Callable[[Any], jax.Array] | None = None) -> Custom:
    """A layer from your own functions: ``init(key) -> params``, ``apply(params, x, *,
    key=None, train=False) -> y`` and optionally ``penalty(params) -> scalar``.

    ``init`` is called as it is, eagerly (purenn's own layers each compile theirs into one
    program): jit it yourself if you want it compiled. ``apply`` and ``penalty`` run
    inside ``fit``'s compiled programs, so they must be traceable."""
    for name, fn in (("init", init), ("apply", apply)):
        if not callable(fn):
            raise TypeError(f"custom: {name} must be a function; got {type(fn).__name__}")
    if penalty is not None and not callable(penalty):
        raise TypeError(f"custom: penalty must be a function or None; got "
                        f"{type(penalty).__name__}")
    return Custom(init, apply, penalty)
