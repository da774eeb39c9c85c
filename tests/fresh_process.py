"""One fresh Python process that trains the book's model, for the tests that need a
process other than pytest's, or one in which nothing is compiled yet (and no compiled
program is loaded from a cache).

The child counts the programs its first ``pn.fit`` compiles (``tests/test_compile_once.py``)
and hashes the trained params, which this process must reproduce bit for bit
(``tests/test_resume.py``), in float32. Then it says what importing the library pulls in:
not the command (``tests/test_sweep.py``), not scikit-learn, and what ``purenn.sklearn``
says without it (``tests/test_sklearn.py``). It runs once per test session.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np

import purenn as pn
from tests.counting import COMPILE_EVENT

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPOCHS, LOG_EVERY = 201, 100  # chunks of 100, 100 and 1 epochs: one program
KEYS = (5, 6)  # the fit keys of the child's runs


def book_model(*, weight_l2=5e-4, bias_l2=5e-4, rate=0.1):
    """The book's chapter-15 model (``DESIGN.md``'s example)."""
    return pn.serial(pn.dense(2, 64, weight_l2=weight_l2, bias_l2=bias_l2), pn.relu(),
                     pn.dropout(rate), pn.dense(64, 3))


def book_data():
    """``(X, y, (X_val, y_val))``: 300 spiral samples each, in the current mode."""
    X, y = pn.data.spiral(jax.random.key(1), 100, 3)
    return X, y, pn.data.spiral(jax.random.key(4), 100, 3)


def book_fit(key: int, *, model=None, optimizer=None, data=None):
    """The run both processes make: ``(params, opt_state, history)``."""
    model = book_model() if model is None else model
    optimizer = pn.optimizers.adam(learning_rate=0.05, decay=5e-5) if optimizer is None \
        else optimizer
    X, y, validation = book_data() if data is None else data
    return pn.fit(model, pn.losses.softmax_categorical_crossentropy, optimizer,
                  model.init(jax.random.key(2)), X, y, key=jax.random.key(key),
                  epochs=EPOCHS, log_every=LOG_EVERY, validation_data=validation,
                  log_fn=None)


def digest(tree) -> str:
    """SHA-256 of the leaves' bytes, in order."""
    hashed = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        leaf = np.asarray(leaf)
        hashed.update(f"{leaf.dtype}{leaf.shape}".encode())
        hashed.update(leaf.tobytes())
    return hashed.hexdigest()


CHILD = textwrap.dedent("""
    import json
    import jax

    compiles = []  # [phase, name, seconds] of every program XLA compiles in this process
    phase = "import"

    def listener(event, seconds, **kwargs):
        if event == COMPILE_EVENT:
            compiles.append([phase, kwargs.get("fun_name", "?"), seconds])

    jax.monitoring.register_event_duration_secs_listener(listener)
    from tests import fresh_process as fp  # imports purenn: counted from here on

    digests = {}
    with jax.enable_x64(False):
        phase = "data and init"
        data = fp.book_data()
        jax.block_until_ready(fp.book_model().init(jax.random.key(2)))
        for key in fp.KEYS:
            phase = f"fit {key}"
            params, _, _ = fp.book_fit(key, data=data)
            digests[str(key)] = fp.digest(params)

    import sys
    import purenn.experiments
    import purenn.plotting
    import purenn.sweep
    imports = {"cli": sorted(n for n in sys.modules if n.startswith("purenn.cli")),
               "sklearn": sorted(n for n in ("sklearn", "purenn.sklearn") if n in sys.modules)}
    sys.modules["sklearn"] = None  # as if scikit-learn were not installed
    try:
        import purenn.sklearn
        imports["without_sklearn"] = "imported"
    except ImportError as err:
        imports["without_sklearn"] = str(err)
    print(json.dumps({"compiles": compiles, "digests": digests, "imports": imports}))
""").replace("COMPILE_EVENT", repr(COMPILE_EVENT))


# What turns JAX's persistent compilation cache on in a subprocess (tests/conftest.py sets
# them for the session's cache).
CACHE_VARIABLES = ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
                   "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES")


def without_compilation_cache() -> dict:
    """This process's environment without a persistent compilation cache: a child that
    compiles every program it runs, and times each compile as a first run does."""
    return {k: v for k, v in os.environ.items() if k not in CACHE_VARIABLES}


@functools.cache
def child() -> dict:
    """``{"compiles": [[phase, function name, seconds], ...], "digests": {"<key>": sha256
    of the params}, "imports": {...}}`` of the child, which runs in float32: phase
    ``import``, ``data and init`` (the data and one ``init``), then ``fit <key>`` for each
    of ``KEYS``. ``imports``: the ``purenn.cli`` modules and the scikit-learn modules
    loaded once ``purenn``, ``purenn.experiments``, ``purenn.plotting`` and
    ``purenn.sweep`` are, and the error ``import purenn.sklearn`` raises without
    scikit-learn (``"imported"`` if none)."""
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          cwd=ROOT, timeout=600, env=without_compilation_cache())
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
