"""Tests run in float64 (``jax_enable_x64``) so purenn can be compared with the NumPy
reference to 1e-10; float32 behaviour is tested with explicit float32 inputs or inside
``jax.enable_x64(False)``."""

import jax
import pytest

jax.config.update("jax_enable_x64", True)


@pytest.fixture
def key():
    return jax.random.key(0)
