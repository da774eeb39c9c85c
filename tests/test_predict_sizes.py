"""``predict`` and ``evaluate`` at the edges of X's size: a batch larger than X, and an X
with no rows."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purenn as pn

CCE = pn.losses.softmax_categorical_crossentropy


@pytest.fixture(scope="module")
def model_and_data():
    model = pn.serial(pn.dense(2, 4), pn.relu(), pn.dense(4, 3))
    params = model.init(jax.random.key(0))
    X = jax.random.normal(jax.random.key(1), (5, 2))
    return model, params, X


def test_a_batch_larger_than_x_is_one_batch_of_x(model_and_data):
    model, params, X = model_and_data
    whole = pn.predict(model, CCE, params, X)
    huge = pn.predict(model, CCE, params, X, batch_size=10**12)  # not padded to 8 TB
    assert np.array_equal(huge, whole)
    assert np.array_equal(pn.predict(model, CCE, params, X, batch_size=7), whole)


@pytest.mark.parametrize("batch_size", [None, 3])
def test_predict_of_no_rows_is_an_empty_result(model_and_data, batch_size):
    model, params, X = model_and_data
    probs = pn.predict(model, CCE, params, X[:0], batch_size=batch_size)
    assert probs.shape == (0, 3) and probs.dtype == X.dtype


def test_evaluate_of_no_rows_says_there_is_nothing_to_evaluate(model_and_data):
    model, params, X = model_and_data
    with pytest.raises(ValueError, match=r"^X is empty \(0 samples\): there is nothing to "
                                         r"evaluate; give at least one sample$"):
        pn.evaluate(model, CCE, params, X[:0], jnp.zeros((0,), jnp.int32))
