"""Data parallelism over 4 virtual CPU devices reproduces the single-device run: ``fit`` on
a mesh, in a subprocess, against the same ``fit`` on this process's one device, in float32.

The device count of a process is fixed when JAX starts, so the mesh runs in a subprocess
with ``XLA_FLAGS=--xla_force_host_platform_device_count=4``. The run is the book's model on
300 samples in minibatches of 64: batches of 64 and 44 rows, each split over the devices;
on this side it is the program that ``tests/test_train.py`` and ``tests/test_resume.py``
compile too.
"""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import purenn as pn
from tests.compiling import with_devices
from tests.fresh_process import book_data, book_model

DEVICES, EPOCHS, BATCH_SIZE = 4, 5, 64

SCRIPT = textwrap.dedent("""
    import json, sys
    import jax, numpy as np
    import purenn as pn
    from tests.fresh_process import book_data, book_model

    devices, epochs, batch_size = map(int, sys.argv[1:])
    assert jax.device_count() == devices, jax.devices()
    X, y, _ = book_data()
    model, loss = book_model(), pn.losses.softmax_categorical_crossentropy
    opt = pn.optimizers.adam(learning_rate=0.05, decay=5e-5)
    params = model.init(jax.random.key(2))
    mesh = jax.make_mesh((devices,), ("data",))
    result = {"axis_types": str(mesh.axis_types)}

    fitted, _, history = pn.fit(model, loss, opt, params, X, y, key=jax.random.key(3),
                                epochs=epochs, batch_size=batch_size, log_fn=None, mesh=mesh)
    result["loss"] = history["loss"].tolist()
    result["params"] = [np.asarray(leaf).tolist() for leaf in jax.tree.leaves(fitted)]
    result["param_devices"] = [len(leaf.sharding.device_set)
                               for leaf in jax.tree.leaves(fitted)]

    # A one-layer model's sharded step (quick to compile): its program sums the gradients
    # over the devices; a batch that does not divide over them is refused.
    tiny, sgd = pn.serial(pn.dense(2, 3)), pn.optimizers.sgd()
    tiny_params = tiny.init(jax.random.key(0))
    sharded = pn.train_step(tiny, loss, sgd, mesh=mesh)
    hlo = sharded.lower(tiny_params, sgd.init(tiny_params), X, y,
                        jax.random.key(0)).compile().as_text()
    result["all_reduce"] = "all-reduce" in hlo
    try:
        sharded(tiny_params, sgd.init(tiny_params), X[:-1], y[:-1], jax.random.key(0))
        result["uneven"] = "no error"
    except ValueError as err:
        result["uneven"] = str(err)
    print(json.dumps(result))
""")


@pytest.fixture(scope="module")
def result():
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=with_devices(DEVICES))
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(DEVICES), str(EPOCHS),
                           str(BATCH_SIZE)], capture_output=True, text=True, env=env,
                          timeout=600, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_mesh_gives_the_single_device_losses_and_params(result):
    """In float32: the devices sum each gradient in another order than one device does,
    and Adam, which divides each update by its own gradient's scale, carries those last
    bits into the params (by ~1e-5 of their largest value after 25 steps, on CPU)."""
    X, y, _ = book_data()
    model = book_model()
    params, _, history = pn.fit(model, pn.losses.softmax_categorical_crossentropy,
                                pn.optimizers.adam(learning_rate=0.05, decay=5e-5),
                                model.init(jax.random.key(2)), X, y, key=jax.random.key(3),
                                epochs=EPOCHS, batch_size=BATCH_SIZE, log_fn=None)
    assert len(result["loss"]) == EPOCHS
    np.testing.assert_allclose(result["loss"], history["loss"], rtol=1e-5)
    leaves = jax.tree.leaves(params)
    assert len(result["params"]) == len(leaves)
    for mesh_leaf, leaf in zip(result["params"], leaves):
        np.testing.assert_allclose(mesh_leaf, leaf, rtol=0,
                                   atol=1e-4 * float(np.max(np.abs(leaf))))


def test_params_are_replicated_on_all_devices(result):
    assert result["param_devices"] == [DEVICES] * 4


def test_gradients_are_reduced_across_devices(result):
    assert result["all_reduce"]


def test_an_uneven_batch_is_a_clear_error(result):
    assert result["uneven"].startswith(
        f"x: a batch of 299 samples does not divide evenly over the {DEVICES} devices of "
        f"mesh axis 'data'; use a batch size (or sample count) that is a multiple of "
        f"{DEVICES}")
