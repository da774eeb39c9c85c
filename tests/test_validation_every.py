"""Validation on its own clock: ``fit(..., validation_every=K)`` whatever ``log_every``,
and ``patience`` counted in those evaluations."""

import jax
import numpy as np
import pytest

import purenn as pn

CCE = pn.losses.softmax_categorical_crossentropy


@pytest.fixture(scope="module")
def problem():
    X, y = pn.data.spiral(jax.random.key(1), 30, 3)
    model = pn.serial(pn.dense(2, 8), pn.relu(), pn.dense(8, 3))
    return model, model.init(jax.random.key(0)), X, y


def _fit(problem, validation, **options):
    model, params, X, y = problem
    return pn.fit(model, CCE, pn.optimizers.adam(0.02), params, X, y, key=jax.random.key(3),
                  validation_data=validation, log_fn=None, **options)


@pytest.mark.parametrize("log_every", [100, 7, None])
def test_validation_every_is_independent_of_logging(problem, log_every):
    _, _, X, y = problem
    validation = pn.data.spiral(jax.random.key(2), 30, 3)
    plain = _fit(problem, validation, epochs=101)
    params, _, history = _fit(problem, validation, epochs=101, log_every=log_every,
                              validation_every=25)
    np.testing.assert_array_equal(history["val_epoch"], [0, 25, 50, 75, 100])
    # the training itself is the same run, bit for bit, whatever the chunks
    np.testing.assert_array_equal(history["loss"], plain[2]["loss"])
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(plain[0])):
        np.testing.assert_array_equal(a, b)


def test_the_default_is_log_every_or_100(problem):
    validation = pn.data.spiral(jax.random.key(2), 30, 3)
    assert list(_fit(problem, validation, epochs=61, log_every=20)[2]["val_epoch"]) == [
        0, 20, 40, 60]
    assert list(_fit(problem, validation, epochs=201, log_every=None)[2]["val_epoch"]) == [
        0, 100, 200]


def test_patience_counts_evaluations_every_validation_every_epochs(problem):
    # Validation labels the training moves away from: the best is epoch 0, and two
    # evaluations without a lower loss, 10 epochs apart, stop the run after epoch 20.
    _, _, X, y = problem
    params, _, history = _fit(problem, (X, (y + 1) % 3), epochs=1000, log_every=100,
                              validation_every=10, patience=2)
    assert history["best_epoch"] == 0
    np.testing.assert_array_equal(history["val_epoch"], [0, 10, 20])
    assert len(history["loss"]) == 21


@pytest.mark.parametrize("value, message", [
    (0, "validation_every must be a positive integer"),
    (2.5, "validation_every must be a positive integer"),
    (True, "validation_every must be a positive integer"),
])
def test_bad_validation_every_is_refused(problem, value, message):
    validation = pn.data.spiral(jax.random.key(2), 30, 3)
    with pytest.raises(ValueError, match=message):
        _fit(problem, validation, epochs=11, validation_every=value)


def test_validation_every_needs_validation_data(problem):
    with pytest.raises(ValueError, match="validation_every needs validation_data"):
        _fit(problem, None, epochs=11, validation_every=5)
