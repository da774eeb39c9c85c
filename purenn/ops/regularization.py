"""L1 and L2 penalties: the regularization loss the book adds to the data loss.

Autodiff: reverse mode only (``jax.grad``, ``jax.vjp``, ``jax.jacrev``); ``jax.jvp`` and
``jax.jacfwd`` raise ``TypeError``. Second derivatives (``jax.hessian``) work: see
``purenn.ops``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from purenn._checks import check_float_array, check_nonnegative


def _l1_sign(w):
    # The book's sign: +1 where w >= 0 (so +1 at exactly zero), -1 where w < 0.
    return jnp.where(w >= 0, jnp.ones_like(w), -jnp.ones_like(w))


@jax.custom_vjp
def _l1_penalty(w, strength):
    return strength * jnp.sum(jnp.abs(w))


def _l1_penalty_fwd(w, strength):
    total = jnp.sum(jnp.abs(w))
    return strength * total, (w, strength, total)


def _l1_penalty_bwd(residuals, g):
    w, strength, total = residuals
    return g * strength * _l1_sign(w), g * total


_l1_penalty.defvjp(_l1_penalty_fwd, _l1_penalty_bwd)


@jax.custom_vjp
def _l2_penalty(w, strength):
    return strength * jnp.sum(w * w)


def _l2_penalty_fwd(w, strength):
    total = jnp.sum(w * w)
    return strength * total, (w, strength, total)


def _l2_penalty_bwd(residuals, g):
    w, strength, total = residuals
    return g * 2 * strength * w, g * total


_l2_penalty.defvjp(_l2_penalty_fwd, _l2_penalty_bwd)


def _strength(strength, dtype) -> jax.Array:
    """The checked strength (a number or a scalar array >= 0) as a scalar of ``dtype``."""
    return jnp.asarray(check_nonnegative("strength", strength), dtype=dtype)


def l1_penalty(w: jax.Array, strength) -> jax.Array:
    """``strength * sum(|w|)``, a scalar of ``w``'s dtype.

    Gradient: ``strength * s`` with ``s = +1`` where ``w >= 0`` (including exactly 0, as
    the book has it) and ``-1`` where ``w < 0``.

    Args:
      w: weights or biases, any shape, floating dtype.
      strength: a number >= 0 (or a scalar array, e.g. swept under jit).
    """
    w = check_float_array("w", w)
    return _l1_penalty(w, _strength(strength, w.dtype))


def l2_penalty(w: jax.Array, strength) -> jax.Array:
    """``strength * sum(w * w)``, a scalar of ``w``'s dtype. Gradient: ``2 * strength * w``.

    Args:
      w: weights or biases, any shape, floating dtype.
      strength: a number >= 0 (or a scalar array, e.g. swept under jit).
    """
    w = check_float_array("w", w)
    return _l2_penalty(w, _strength(strength, w.dtype))
