"""Tests run in float64 (``jax_enable_x64``) so purenn can be compared with the NumPy
reference to 1e-10; float32 behaviour is tested with explicit float32 inputs or inside
``jax.enable_x64(False)``."""

import jax
import pytest

jax.config.update("jax_enable_x64", True)


@pytest.fixture(autouse=True, scope="session")
def no_compilation_cache_in_home(tmp_path_factory):
    """The purenn command keeps compiled programs in $XDG_CACHE_HOME/purenn: tests never
    write into the user's cache, and in-process runs of the command leave jax.config's
    cache settings alone (tests/test_cli_cache.py turns the cache on in subprocesses)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        patch.setenv("PURENN_NO_CACHE", "1")
        yield


@pytest.fixture
def key():
    return jax.random.key(0)
