"""The data sets and a seed's keys: bit for bit the operations run one at a time, in
float32 and float64, from few compiled programs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purenn as pn
from purenn import experiments


def same_bits(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def eager_spiral(key, samples, classes):
    """The book's spiral, one jax.numpy operation at a time (nothing fused)."""
    dtype = jax.dtypes.canonicalize_dtype(jnp.float64)
    noise = 0.2 * jax.random.normal(key, (samples * classes,), dtype)
    radius = jnp.tile(jnp.linspace(0.0, 1.0, samples, dtype=dtype), classes)
    starts = jnp.linspace(0.0, 4.0, samples, dtype=dtype)
    angle = (4.0 * jnp.arange(classes, dtype=dtype)[:, None] + starts[None, :]).reshape(-1)
    angle = angle + noise
    X = jnp.stack([radius * jnp.sin(2.5 * angle), radius * jnp.cos(2.5 * angle)], axis=1)
    return X, jnp.repeat(jnp.arange(classes, dtype=jnp.int32), samples)


def eager_vertical(key, samples, classes):
    dtype = jax.dtypes.canonicalize_dtype(jnp.float64)
    noise = 0.1 * jax.random.normal(key, (samples * classes, 2), dtype)
    thirds = jnp.arange(classes, dtype=dtype) * (1 / jnp.asarray(3, dtype))
    centres = jnp.stack([jnp.repeat(thirds, samples),
                         jnp.full((samples * classes,), 0.5, dtype)], axis=1)
    return noise + centres, jnp.repeat(jnp.arange(classes, dtype=jnp.int32), samples)


@pytest.mark.users_codegen
@pytest.mark.parametrize("samples,classes", [(100, 3), (1000, 2)])
def test_data_sets_are_bit_for_bit_the_operations_run_one_by_one(samples, classes, x64):
    for seed in range(3):
        key = experiments.seed_keys(seed)[0]  # the CLI's training-data key
        for made, eager in ((pn.data.spiral, eager_spiral),
                            (pn.data.vertical, eager_vertical)):
            X, y = made(key, samples, classes)
            X_eager, y_eager = eager(key, samples, classes)
            assert same_bits(X, X_eager), (made.__name__, seed)
            assert same_bits(y, y_eager)


@pytest.mark.parametrize("seed", [0, 1, 7, 2**31 - 1])
def test_a_seeds_keys_are_the_split_the_examples_use(seed):
    keys = experiments.seed_keys(seed)
    eager = jax.random.split(jax.random.key(seed), 4)
    assert len(keys) == 4
    for made, expected in zip(keys, eager):
        assert same_bits(jax.random.key_data(made), jax.random.key_data(expected))
