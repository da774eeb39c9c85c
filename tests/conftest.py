"""Precision of the tests.

Tests run in JAX's default float32, the mode users run, with ``jax_enable_x64`` off even
where the environment turns it on. Two ways out:

- ``@pytest.mark.x64`` (or a module's ``pytestmark = pytest.mark.x64``): the test runs
  with ``jax_enable_x64`` on, for comparisons with the NumPy reference (``tests/reference``)
  at float64 tolerances.
- the ``x64`` fixture: the test runs twice, in float32 and in float64; the fixture's
  value says which.

The mode is set around each test's setup, call and teardown, so fixtures are built in the
test's mode, module-scoped ones in the mode of the first test that uses them: keep
module-scoped arrays to modules of one mode. Arrays made at import time are made in
float32 (NumPy arrays are safe: they take the mode of the program that uses them).
"""

import jax
import pytest

jax.config.update("jax_enable_x64", False)  # whatever the environment says


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "x64: run with jax_enable_x64 on (comparisons with the float64 NumPy "
                   "reference)")


@pytest.fixture(params=[False, True], ids=["float32", "x64"])
def x64(request):
    """Run the test in float32 and in float64; True in float64."""
    return request.param


def _x64_of(item) -> bool:
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "x64" in params:
        return bool(params["x64"])
    return item.get_closest_marker("x64") is not None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    with jax.enable_x64(_x64_of(item)):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    with jax.enable_x64(_x64_of(item)):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    with jax.enable_x64(_x64_of(item)):
        return (yield)


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
