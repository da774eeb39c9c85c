"""The suite's precision modes (tests/conftest.py): float32 by default, float64 where a
test is marked ``x64``, both where it takes the ``x64`` fixture, fixtures included."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest


@pytest.fixture
def default_float():
    return jnp.zeros(1).dtype  # built in the test's mode


def test_tests_run_in_float32_by_default(default_float):
    assert not jax.config.jax_enable_x64
    assert default_float == jnp.float32
    assert jnp.asarray(np.ones(2)).dtype == jnp.float32


@pytest.mark.x64
def test_x64_marked_tests_run_in_float64(default_float):
    assert jax.config.jax_enable_x64
    assert default_float == jnp.float64


def test_the_x64_fixture_runs_both_modes(x64, default_float):
    assert jax.config.jax_enable_x64 == x64
    assert default_float == (jnp.float64 if x64 else jnp.float32)
