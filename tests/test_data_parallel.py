"""Data parallelism over 4 virtual CPU devices reproduces the single-device run: ``fit`` on
a mesh, in a subprocess, against the same ``fit`` on this process's one device, in float32.

The device count of a process is fixed when JAX starts, so the mesh runs in a subprocess
with ``XLA_FLAGS=--xla_force_host_platform_device_count=4``: the one-process run of
tests/multihost_worker.py, which the multi-host test compares with. The run is the book's
model on 300 samples in minibatches of 64: batches of 64 and 44 rows, each split over the
devices; on this side it is the program that ``tests/test_train.py`` and
``tests/test_resume.py`` compile too.
"""

import jax
import numpy as np
import pytest

import purenn as pn
from tests.fresh_process import book_data, book_model
from tests.multihost_worker import BATCH_SIZE, DEVICES, EPOCHS, single_process


@pytest.fixture(scope="module")
def result():
    return single_process()["data_parallel"]


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
