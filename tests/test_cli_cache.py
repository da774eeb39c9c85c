"""The ``purenn`` command's persistent compilation cache: on by default in
``$XDG_CACHE_HOME/purenn``, off with ``--no-cache`` or ``PURENN_NO_CACHE=1``, a warning (not
an error) when the folder cannot be written, and nothing written by ``import purenn``.
Across processes the test counts JAX's compile events, never wall-clock time."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from purenn import cli

ROOT = Path(__file__).resolve().parents[1]

# Runs the command and reports JAX's compilation events as one JSON line on stderr.
COUNTING = """
import collections, json, sys
import jax

events = collections.Counter()
jax.monitoring.register_event_listener(lambda event, **_: events.update([event]))
jax.monitoring.register_event_duration_secs_listener(
    lambda event, duration, **_: events.update([event]))
from purenn import cli

code = cli.main(sys.argv[1:])
print(json.dumps({name.rsplit("/", 1)[1]: count for name, count in events.items()}),
      file=sys.stderr)
sys.exit(code)
"""
RUN = ["book", "regularization", "--epochs", "2", "--quiet"]


def environment(cache_home, **extra):
    """The test's environment for a subprocess: float32 (no JAX_* variables), the cache in
    ``cache_home``, PURENN_NO_CACHE unset unless given."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("JAX_") and k != cli.NO_CACHE_ENV}
    env["XDG_CACHE_HOME"] = str(cache_home)
    env.update(extra)
    return env


def counted_run(env, *args):
    result = subprocess.run([sys.executable, "-c", COUNTING, *args], capture_output=True,
                            text=True, timeout=300, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    *notes, counts = result.stderr.splitlines()
    return result.stdout, notes, json.loads(counts)


def files_under(folder):
    return sorted(p for p in Path(folder).rglob("*") if p.is_file())


def test_a_second_process_loads_every_program_from_the_cache(tmp_path):
    env = environment(tmp_path / "xdg")
    first_out, notes, first = counted_run(env, *RUN)
    assert notes == []
    cached = files_under(tmp_path / "xdg" / "purenn")
    assert len(cached) >= first["cache_misses"] > 0  # one file per program written

    second_out, _, second = counted_run(env, *RUN)
    assert second_out == first_out
    assert second.get("cache_misses", 0) == 0  # nothing compiled, nothing written
    # every program came from the cache: none compiled before the command turned it on
    assert second["cache_hits"] == second["backend_compile_duration"] == first["cache_misses"]
    assert files_under(tmp_path / "xdg" / "purenn") == cached


@pytest.fixture
def restore_cache_config(no_session_cache):
    """JAX's own cache settings (not the test session's cache, see conftest.py) for the
    test; put back should a failing test turn the cache on."""
    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
             "jax_persistent_cache_min_entry_size_bytes")
    saved = {name: getattr(jax.config, name) for name in names}
    yield
    changed = {name for name in names if getattr(jax.config, name) != saved[name]}
    for name in changed:
        jax.config.update(name, saved[name])
    if changed:
        from jax.experimental.compilation_cache import compilation_cache

        compilation_cache.reset_cache()


@pytest.mark.parametrize("how", ["--no-cache", "PURENN_NO_CACHE=1"])
def test_no_cache_leaves_jax_config_alone_and_writes_nothing(
        how, tmp_path, monkeypatch, capsys, restore_cache_config):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    option = [how] if how.startswith("--") else []
    if option:
        monkeypatch.delenv(cli.NO_CACHE_ENV, raising=False)
    else:
        monkeypatch.setenv(cli.NO_CACHE_ENV, "1")
    with jax.enable_x64(False):
        assert cli.main([*RUN, *option]) == 0
    assert capsys.readouterr().err == ""
    assert not (tmp_path / "xdg").exists()
    assert jax.config.jax_compilation_cache_dir is None


def test_an_unusable_cache_folder_is_one_warning_and_the_run_goes_on(
        tmp_path, monkeypatch, capsys, restore_cache_config):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache's parent folder would be\n")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    monkeypatch.delenv(cli.NO_CACHE_ENV, raising=False)
    with jax.enable_x64(False):
        code = cli.main(["book", "regularization", "--epochs", "3", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0
    assert len(out.splitlines()) == 2  # the last epoch's line and the validation line
    assert err.splitlines() == [
        f"purenn book: warning: cannot use the compilation cache folder "
        f"{str(blocker / 'purenn')!r} (Not a directory); running without it"]
    assert jax.config.jax_compilation_cache_dir is None


def test_the_cache_folder_follows_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cli.cache_folder() == str(tmp_path / "xdg" / "purenn")
    for unset in ("", "relative/path"):  # the XDG specification: ignore relative paths
        monkeypatch.setenv("XDG_CACHE_HOME", unset)
        assert cli.cache_folder() == str(tmp_path / "home" / ".cache" / "purenn")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cli.cache_folder() == str(tmp_path / "home" / ".cache" / "purenn")


def test_a_folder_chosen_with_jax_compilation_cache_dir_wins(tmp_path, monkeypatch,
                                                            restore_cache_config):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    jax.config.update("jax_compilation_cache_dir", str(tmp_path / "chosen"))
    minimum = jax.config.jax_persistent_cache_min_compile_time_secs
    assert cli.enable_compilation_cache(warn=pytest.fail) == str(tmp_path / "chosen")
    assert jax.config.jax_persistent_cache_min_compile_time_secs == minimum
    assert not (tmp_path / "xdg").exists()


def test_importing_and_training_with_the_library_writes_nothing(tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("JAX_") and k not in (cli.NO_CACHE_ENV, "XDG_CACHE_HOME")}
    env.update(HOME=str(home), PYTHONPATH=str(ROOT))
    script = """
import jax, purenn as pn
X, y = pn.data.spiral(jax.random.key(0), 20, 3)
model = pn.serial(pn.dense(2, 8), pn.relu(), pn.dense(8, 3))
loss = pn.losses.softmax_categorical_crossentropy
params, _, _ = pn.fit(model, loss, pn.optimizers.adam(), model.init(jax.random.key(1)),
                      X, y, key=jax.random.key(2), epochs=5, log_fn=None)
print(pn.evaluate(model, loss, params, X, y)["loss"])
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300, cwd=work, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert files_under(home) == [] and files_under(work) == []


# Compiles five small programs with the command's cache, damages their entries in four ways,
# and compiles them again twice (JAX's in-memory caches cleared, so each time the programs
# are looked up in the folder); then once more with --quiet after one more damage. Prints
# the results and JAX's cache events of each pass as one JSON line.
REPAIRING = """
import argparse, collections, json, sys
from pathlib import Path
import jax, jax.numpy as jnp, numpy as np
from jax.experimental.compilation_cache import compilation_cache
from purenn.cli import cache

events = collections.Counter()
jax.monitoring.register_event_listener(
    lambda event, **_: events.update([event.rsplit("/", 1)[1]]))

def use_cache(quiet):
    jax.config.update("jax_compilation_cache_dir", None)
    compilation_cache.reset_cache()
    cache.use_compilation_cache(argparse.Namespace(no_cache=False, quiet=quiet), "purenn test")

def truncated(x): return x + 1
def zeroed(x, y): return x * y
def swapped_a(x): return x.sum(), x.mean()
def swapped_b(x): return jnp.sin(x)
def unloadable(x): return x @ x.T
programs = [truncated, zeroed, swapped_a, swapped_b, unloadable]

def run_all():
    jax.clear_caches()
    events.clear()
    x = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    results = [jax.jit(f)(*([x] * f.__code__.co_argcount)) for f in programs]
    return {"results": jax.tree.map(lambda a: a.tolist(), results),
            "hits": events["cache_hits"], "misses": events["cache_misses"]}

def entry(name):
    [path] = Path(cache.cache_folder()).glob(f"jit_{name}-*")
    return path

use_cache(quiet=False)
passes = [run_all()]
entry("truncated").write_bytes(entry("truncated").read_bytes()[:100])
entry("zeroed").write_bytes(bytes(len(entry("zeroed").read_bytes())))
a, b = entry("swapped_a"), entry("swapped_b")
a_bytes = a.read_bytes()
a.write_bytes(b.read_bytes())
b.write_bytes(a_bytes)
key = entry("unloadable").name.removesuffix(cache.ENTRY_SUFFIX)  # intact, but not a program
cache.CheckedCache(cache.cache_folder(), warn=print).put(key, b"not a compiled program")
passes += [run_all(), run_all()]
print("--- quiet", file=sys.stderr)
use_cache(quiet=True)
entry("truncated").write_bytes(b"")
passes.append(run_all())
print(json.dumps(passes))
"""


def test_a_damaged_or_swapped_cache_entry_is_removed_and_compiled_again(tmp_path):
    result = subprocess.run([sys.executable, "-c", REPAIRING], capture_output=True,
                            text=True, timeout=300, cwd=ROOT,
                            env=environment(tmp_path / "xdg"))
    assert result.returncode == 0, result.stderr[-3000:]
    first, repaired, again, quiet = json.loads(result.stdout)
    assert (first["hits"], first["misses"]) == (0, 5)
    assert repaired["results"] == first["results"]
    assert (repaired["hits"], repaired["misses"]) == (0, 5)  # all five rewritten
    assert (again["hits"], again["misses"]) == (5, 0)  # and loaded the next time
    assert (quiet["hits"], quiet["misses"]) == (4, 1)
    assert quiet["results"] == first["results"]
    folder = str(tmp_path / "xdg" / "purenn")
    # one line for all the repairs of a process, none with --quiet, no JAX warning
    assert result.stderr.splitlines() == [
        f"purenn test: warning: the compilation cache in {folder!r} held a damaged entry "
        f"(jit_truncated); it is compiled again and rewritten",
        "--- quiet"]
