"""Runs that stop and resume from their checkpoint, and runs in separate processes, give
the same bits as one uninterrupted run, in float32 and in float64 (the ``x64`` fixture;
minibatches, whose shuffling does not depend on the dtype, in float32).

The model, optimizer and data have the shapes of ``tests/test_train.py``'s float32 tests,
so the two files share compiled programs."""

import jax
import numpy as np
import pytest

import purenn as pn
from tests import fresh_process

CCE = pn.losses.softmax_categorical_crossentropy


def setup():
    X, y = pn.data.spiral(jax.random.key(1), 100, 3)
    model = pn.serial(pn.dense(2, 64, weight_l2=5e-4, bias_l2=5e-4), pn.relu(),
                      pn.dropout(0.1), pn.dense(64, 3))
    return model, model.init(jax.random.key(2)), X, y


def assert_trees_identical(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for left, right in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert np.asarray(left).dtype == np.asarray(right).dtype
        assert np.array_equal(np.asarray(left), np.asarray(right))


@pytest.mark.parametrize("x64, batch_size", [(False, None), (False, 64), (True, None)],
                         ids=["float32-full-batch", "float32-minibatch", "x64-full-batch"])
def test_a_stopped_and_resumed_run_is_bit_identical(tmp_path, batch_size, x64):
    model, params, X, y = setup()
    assert params[0]["weights"].dtype == (np.float64 if x64 else np.float32)
    opt = pn.optimizers.adam(learning_rate=0.05, decay=5e-5)
    common = dict(key=jax.random.key(3), batch_size=batch_size, log_every=10, log_fn=None)
    whole = pn.fit(model, CCE, opt, params, X, y, epochs=60, **common)

    path = tmp_path / "run.safetensors"
    first = pn.fit(model, CCE, opt, params, X, y, epochs=30, checkpoint_path=path,
                   checkpoint_every=10, **common)
    assert len(first[2]["loss"]) == 30
    # A fresh process would start from freshly initialised params: same shapes, new values.
    resumed = pn.fit(model, CCE, opt, model.init(jax.random.key(99)), X, y, epochs=60,
                     checkpoint_path=path, checkpoint_every=10, **common)
    assert_trees_identical(resumed[0], whole[0])
    assert_trees_identical(resumed[1], whole[1])
    for name in pn.train.METRICS + ("epoch",):
        assert np.array_equal(resumed[2][name], whole[2][name]), name


def test_resuming_with_another_key_is_refused(tmp_path, x64):
    model, params, X, y = setup()
    path = tmp_path / "run.safetensors"
    opt = pn.optimizers.adam()
    pn.fit(model, CCE, opt, params, X, y, key=jax.random.key(3), epochs=5, log_fn=None,
           checkpoint_path=path)
    with pytest.raises(ValueError, match="written by a run with another key"):
        pn.fit(model, CCE, opt, params, X, y, key=jax.random.key(4), epochs=10, log_fn=None,
               checkpoint_path=path)
    # resume=False starts over and overwrites it
    pn.fit(model, CCE, opt, params, X, y, key=jax.random.key(4), epochs=3, log_fn=None,
           checkpoint_path=path, resume=False)
    assert int(pn.checkpoint.load(path)["epoch"]) == 3


def test_resuming_a_checkpoint_of_another_model_names_the_difference(tmp_path, x64):
    model, params, X, y = setup()
    path = tmp_path / "run.safetensors"
    pn.fit(model, CCE, pn.optimizers.adam(), params, X, y, key=jax.random.key(3), epochs=2,
           log_fn=None, checkpoint_path=path)
    wider = pn.serial(pn.dense(2, 128), pn.relu(), pn.dropout(0.1), pn.dense(128, 3))
    with pytest.raises(ValueError, match=r"of a run with other settings: "
                                         r"model.layers\[0\].n_neurons: 64 in the checkpoint, "
                                         r"128 now; model.layers\[0\].weight_l2: 0.0005 in "
                                         r"the checkpoint, None now") as info:
        pn.fit(wider, CCE, pn.optimizers.adam(), wider.init(jax.random.key(0)), X, y,
               key=jax.random.key(3), epochs=4, log_fn=None, checkpoint_path=path)
    assert "like" not in str(info.value)


def test_another_process_with_the_same_key_produces_identical_bytes():
    """The fresh process of ``tests/fresh_process.py`` trains the book's model with keys 5
    and 6 (in float32: what differs between processes, such as hash seeds and thread
    timing, does not depend on the dtype); this one repeats the run of key 5."""
    digests = fresh_process.child()["digests"]
    params, _, _ = fresh_process.book_fit(5)
    assert params[0]["weights"].dtype == np.float32
    assert fresh_process.digest(params) == digests["5"]
    assert digests["6"] != digests["5"]
