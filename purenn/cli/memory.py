"""The memory a ``purenn train`` run holds at its peak, by XLA's analysis of its training
program: the check that refuses a run too large for the machine before it starts."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from purenn import experiments, train
from purenn.experiments import Config

__all__ = ["measure_memory"]


def _size(tree) -> int:
    """The bytes of a tree's arrays, or of the arrays its shapes describe."""
    return sum(math.prod(leaf.shape) * np.dtype(leaf.dtype).itemsize
               for leaf in jax.tree.leaves(tree))


def _run_inputs(config: Config, model):
    """The shapes of what ``experiments.run`` trains on for a seed: ``(X, y, validation,
    params, k_fit)``; nothing is drawn or allocated."""
    _, _, k_init, k_fit = experiments.seed_keys(0)
    params = jax.eval_shape(model.init, k_init)
    return (*config.data_shapes(), params, jax.eval_shape(lambda: k_fit))


def measure_memory(config: Config, seeds: int = 1, *, vmap: bool = False) -> int:
    """The bytes training ``config`` for ``seeds`` seeds holds at its peak, by XLA's
    analysis of the program ``pn.fit`` trains with (``pn.train.chunk_program``: its
    arguments, outputs and temporaries, less what they share), plus the state ``fit``
    keeps from the chunk before.

    The program is compiled here for the run's shapes (``jax.eval_shape``: nothing is
    allocated), and ``pn.fit`` then finds it compiled: measuring adds no compile to the
    run. Seeds trained in turn keep the earlier seeds' state and data; with ``vmap=True``
    all seeds train at once, ``seeds`` times one seed's program.
    """
    model, loss, optimizer = experiments.components(config)
    program = train.chunk_program(train.Components(
        model, loss, optimizer, train.default_accuracy(loss), None), config.batch_size)
    X, y, validation, params, key = _run_inputs(config, model)
    state = (params, jax.eval_shape(optimizer.init, params))
    count = jax.ShapeDtypeStruct((), jnp.int32)  # the chunk's first epoch and length
    stats = program.lower(*state, X, y, key, count, count).compile().memory_analysis()
    one = (stats.argument_size_in_bytes + stats.output_size_in_bytes
           + stats.temp_size_in_bytes - stats.alias_size_in_bytes + _size(state))
    return seeds * one if vmap else one + (seeds - 1) * _size((state, X, y, validation))
