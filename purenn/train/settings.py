"""A run's settings in words: what a ``fit`` checkpoint keeps, so that a resume can tell
whether it continues the same run, and name what differs.

The settings are a flat dict, name -> text, in the order the components are walked:
the model, the loss, the optimizer and the accuracy, each described by ``describe``
(its ``purenn.partition`` split in words: the static part, the types and structure fields
of its layers or rules, and the numeric leaves, the hyperparameter values), then the batch
size and the data's shapes, then whatever the caller adds (the command line adds its
options, ``--learning-rate`` ...)::

    {"model": "Serial", "model.layers[0]": "Dense", "model.layers[0].n_neurons": "64",
     "model.layers[0].weight_l2": "0.0005", ..., "optimizer": "Adam",
     "optimizer.learning_rate": "0.02", ..., "batch_size": "None",
     "X": "shape (300, 2)", "y": "shape (300,)"}

``differences`` compares two such dicts and ``format_differences`` says what differs, in
one line: ``optimizer.learning_rate: 0.02 in the checkpoint, 0.5 now``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
import sys
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from purenn.partition import is_data

__all__ = ["describe", "differences", "format_differences", "run_settings", "text"]

_LONGEST = 120  # characters of a value's text; a longer one is shortened and hashed
_LISTED = 10  # differences named in a message
_CLOSURE_DEPTH = 2  # how deep a function's closed-over values are described


def _shortened(value: str) -> str:
    """``value``, or for a long one its start and a hash of the whole, so that two long
    values still compare as their full texts do."""
    if len(value) <= _LONGEST:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:16]
    return f"{value[:_LONGEST - 30]}... (sha256 {digest})"


def _without_addresses(value: str) -> str:
    """A repr without its memory addresses (``<object at 0x7f...>``): the same in every
    process."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", value)


def _function_text(fn, depth: int) -> str:
    """A function as ``module.qualname``, with the values it closes over (a schedule's
    rate, an optax rule's betas): ``...inverse_time_decay.<locals>.schedule(decay=0.01,
    learning_rate=0.1)``."""
    if isinstance(fn, functools.partial):
        arguments = [text(a, depth + 1) for a in fn.args]
        arguments += [f"{k}={text(v, depth + 1)}" for k, v in sorted(fn.keywords.items())]
        return f"partial({_function_text(fn.func, depth)}, {', '.join(arguments)})"
    name = getattr(fn, "__qualname__", None)
    if not isinstance(name, str):
        return _without_addresses(repr(fn))
    module = getattr(fn, "__module__", None)
    out = f"{module}.{name}" if isinstance(module, str) else name
    closure = getattr(fn, "__closure__", None)
    code = getattr(fn, "__code__", None)
    if closure and code is not None and depth < _CLOSURE_DEPTH:
        parts = []
        for variable, cell in sorted(zip(code.co_freevars, closure)):
            try:
                parts.append(f"{variable}={text(cell.cell_contents, depth + 1)}")
            except ValueError:  # an empty cell: a variable not yet bound
                parts.append(f"{variable}=<unbound>")
        out += f"({', '.join(parts)})"
    return out


def text(value, depth: int = 0) -> str:
    """One setting's value as text, the same in every process for equal values: numbers
    as Python or NumPy print them (``0.02``, ``64``), arrays with every value, functions
    by name (``purenn.losses.softmax_categorical_crossentropy``), anything else by its
    repr."""
    if value is None or isinstance(value, (bool, str)):
        return str(value)
    if isinstance(value, (int, float, complex)):
        return repr(value)
    if isinstance(value, jax.Array) and jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
        value = jax.random.key_data(value)
    if is_data(value):
        array = np.asarray(value)
        if array.ndim == 0:
            return str(array[()])  # the shortest text that reads back as this dtype's value
        if array.size > _LONGEST:  # too many values to print: its shape and their hash
            digest = hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]
            return f"{array.dtype} array of shape {array.shape} (sha256 {digest})"
        return _shortened(np.array2string(array, separator=", ", threshold=sys.maxsize,
                                          floatmode="unique"))
    if callable(value):
        return _shortened(_function_text(value, depth))
    return _shortened(_without_addresses(repr(value)))


def _walk(node, path: str, out: dict[str, str]) -> None:
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        out[path] = type(node).__name__
        for field in dataclasses.fields(node):
            _walk(getattr(node, field.name), f"{path}.{field.name}", out)
    elif isinstance(node, tuple) and hasattr(node, "_fields"):  # a NamedTuple
        out[path] = type(node).__name__
        for field in node._fields:
            _walk(getattr(node, field), f"{path}.{field}", out)
    elif isinstance(node, (tuple, list)):
        if not node:
            out[path] = repr(node)
        for i, child in enumerate(node):
            _walk(child, f"{path}[{i}]", out)
    elif isinstance(node, dict):
        if not node:
            out[path] = "{}"
        for name, child in node.items():
            _walk(child, f"{path}[{name!r}]", out)
    else:
        leaves, treedef = jax.tree_util.tree_flatten_with_path(node)
        if treedef.num_nodes <= 1 or len(leaves) == 1 and leaves[0][1] is node:
            out[path] = text(node)
            return
        # a pytree of a kind walked here by JAX's own paths; its static part in the treedef
        out[path] = _shortened(f"{type(node).__name__} {_without_addresses(str(treedef))}")
        for key_path, leaf in leaves:
            out[path + jax.tree_util.keystr(key_path)] = text(leaf)


def describe(tree, name: str) -> dict[str, str]:
    """The settings of ``tree`` (a model, a loss, an optimizer), named by the path that
    reaches each from ``name``: the type of each layer or rule (``model.layers[0]:
    Dense``), its structure fields (``model.layers[0].n_neurons: 64``) and its numeric
    hyperparameters (``model.layers[0].weight_l2: 0.0005``), in the order of its fields."""
    out: dict[str, str] = {}
    _walk(tree, name, out)
    return out


def run_settings(components, batch_size, X, y,
                 more: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings of a ``fit`` run: ``describe`` of its model, loss, optimizer and
    accuracy (``purenn.train.step.Components``), its batch size, the shapes of ``X`` and
    ``y``, then ``more`` (the caller's own, e.g. the command line's options)."""
    out: dict[str, str] = {}
    for name in ("model", "loss", "optimizer", "accuracy"):
        out.update(describe(getattr(components, name), name))
    out["batch_size"] = text(batch_size)
    out["X"], out["y"] = f"shape {tuple(X.shape)}", f"shape {tuple(y.shape)}"
    out.update(more or {})
    return out


def differences(saved: Mapping[str, str], now: Mapping[str, str]
                ) -> dict[str, tuple[str | None, str | None]]:
    """``{name: (in saved, now)}`` for each setting that differs (None where one side has
    none), in ``now``'s order then ``saved``'s. A setting inside one that differs (the
    fields of a layer whose type changed, of a layer one side lacks) is left out: the
    outer difference says it."""
    out: dict[str, tuple[str | None, str | None]] = {}
    for name in [*now, *(name for name in saved if name not in now)]:
        old, new = saved.get(name), now.get(name)
        if old == new or any(name.startswith(outer) and name[len(outer)] in ".["
                             for outer in out if len(name) > len(outer)):
            continue
        out[name] = (old, new)
    return out


def format_differences(found: Mapping[str, tuple[str | None, str | None]]) -> str:
    """``differences`` in one line: ``optimizer.learning_rate: 0.02 in the checkpoint,
    0.5 now; batch_size: None in the checkpoint, 64 now`` (at most ten, then how many
    more)."""
    def words(value):
        return "absent" if value is None else value

    parts = [f"{name}: {words(old)} in the checkpoint, {words(new)} now"
             for name, (old, new) in found.items()]
    if len(parts) > _LISTED:
        parts = [*parts[:_LISTED], f"and {len(parts) - _LISTED} more"]
    return "; ".join(parts)
