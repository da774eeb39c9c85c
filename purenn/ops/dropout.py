"""Inverted dropout: zero a random fraction ``rate`` of the units, rescale the rest.

Autodiff: reverse mode only (``jax.grad``, ``jax.vjp``, ``jax.jacrev``); ``jax.jvp`` and
``jax.jacfwd`` raise ``TypeError``. Second derivatives (``jax.hessian``) work: see
``purenn.ops``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from purenn._checks import check_float_array, check_fraction, check_key


@jax.custom_vjp
def _apply_mask(x, scaled_mask):
    return x * scaled_mask


def _apply_mask_fwd(x, scaled_mask):
    return x * scaled_mask, scaled_mask


def _apply_mask_bwd(scaled_mask, dvalues):
    # The mask is drawn from a key, not learned: it gets no gradient.
    return dvalues * scaled_mask, None


_apply_mask.defvjp(_apply_mask_fwd, _apply_mask_bwd)


def dropout_mask(key: jax.Array, rate: float, shape, dtype) -> jax.Array:
    """The book's scaled mask: Bernoulli(keep = 1 - rate) values divided by ``1 - rate``.

    The bits depend only on ``key`` and ``shape``, never on how the array is sharded.
    """
    keep = jax.random.bernoulli(key, 1.0 - rate, shape)
    return keep.astype(dtype) / jnp.asarray(1.0 - rate, dtype)


def dropout(x: jax.Array, key: jax.Array, rate: float) -> jax.Array:
    """Training-time dropout of ``x`` (any shape); ``rate`` is the fraction **dropped**.

    Each unit is kept with probability ``1 - rate`` and scaled by ``1 / (1 - rate)``, so
    at prediction time dropout is the identity. Backward: ``dvalues * scaled_mask`` with
    the same mask. Same key, same mask.

    Args:
      x: activations, any shape, floating dtype (kept).
      key: a ``jax.random`` key.
      rate: the fraction dropped, in ``[0, 1)``: a number, or a scalar array (a traced
        rate, e.g. swept under ``vmap``, is used unchecked).
    """
    x = check_float_array("x", x)
    key = check_key("key", key)
    rate = check_fraction("rate", rate)
    if isinstance(rate, float):
        return x if rate == 0.0 else _apply_mask(x, dropout_mask(key, rate, x.shape, x.dtype))
    # An array rate (traced, e.g. a model passed to jit): a rate of 0 keeps every unit, so
    # skip drawing the mask. Under vmap both branches run, and agree (the mask is all ones).
    return lax.cond(rate == 0, lambda x: x,
                    lambda x: _apply_mask(x, dropout_mask(key, rate, x.shape, x.dtype)), x)
