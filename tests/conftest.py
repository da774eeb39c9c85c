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

import os
import signal

import jax
import pytest

from tests import compiling

jax.config.update("jax_enable_x64", False)  # whatever the environment says

# How the session compiles and runs (XLA flags, one core), and the tests that run in a
# subprocess compiling otherwise: tests/compiling.py.
os.environ["XLA_FLAGS"] = compiling.xla_flags(os.environ.get("XLA_FLAGS", ""))
compiling.one_core()  # before JAX makes its thread pool

# A shell starts a background job with SIGINT ignored, and the tests' subprocesses would
# inherit that: the tests of Ctrl-C need it to work as in a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_configure(config):
    compiling.register(config)
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


# The session's compilation cache: the jax.config settings in this process and the
# environment variables that give them to its subprocesses.
CACHE_SETTINGS = {"jax_compilation_cache_dir": None,  # the session's folder
                  "jax_persistent_cache_min_compile_time_secs": 0.05,
                  "jax_persistent_cache_min_entry_size_bytes": -1}


def set_cache_config(settings: dict) -> None:
    """Put ``settings`` (name -> value) into jax.config and let JAX open the cache anew."""
    from jax.experimental.compilation_cache import compilation_cache

    for name, value in settings.items():
        jax.config.update(name, value)
    compilation_cache.reset_cache()


@pytest.fixture(autouse=True, scope="session")
def session_compilation_cache(tmp_path_factory):
    """One persistent compilation cache for the whole session, in a session temp folder:
    this process and its subprocesses (through JAX_COMPILATION_CACHE_DIR and JAX's two
    thresholds) compile each program of 50 ms or more once and load it after (the
    hundreds of small eager operations are not worth a write each). JAX records the
    backend-compile event for a program loaded from the cache as for one compiled, so
    compile counts stay what they are without it; the tests that count or time compiles
    in a fresh process, or test the purenn command's own cache, run without this one.

    The purenn command keeps compiled programs in $XDG_CACHE_HOME/purenn: tests never
    write into the user's cache, and in-process runs of the command leave jax.config's
    cache settings alone (tests/test_cli_cache.py turns the command's cache on in
    subprocesses)."""
    folder = str(tmp_path_factory.mktemp("jax-cache"))
    settings = dict(CACHE_SETTINGS, jax_compilation_cache_dir=folder)
    saved = {name: getattr(jax.config, name) for name in settings}
    set_cache_config(settings)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        patch.setenv("PURENN_NO_CACHE", "1")
        for name, value in settings.items():
            patch.setenv(name.upper(), str(value))
        yield folder
    set_cache_config(saved)


@pytest.fixture
def no_session_cache():
    """The test runs with JAX's own cache settings (no persistent cache), as a process
    that never set them; the session's come back after it."""
    session = {name: getattr(jax.config, name) for name in CACHE_SETTINGS}
    set_cache_config({"jax_compilation_cache_dir": None,
                      "jax_persistent_cache_min_compile_time_secs": 1.0,
                      "jax_persistent_cache_min_entry_size_bytes": 0})
    yield
    set_cache_config(session)


@pytest.fixture
def key():
    return jax.random.key(0)
