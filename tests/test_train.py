"""train_step and fit against the book's training loop (in float64: marked ``x64``), and
fit's own guarantees (in float32; divergence in both modes).

The float32 tests share one model structure (``chapter_15``), one optimizer structure
(Adam) and one data shape, so that they share compiled programs."""

import re
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purenn as pn
from tests.reference import book
from tests.reference.loop import book_train

CCE = pn.losses.softmax_categorical_crossentropy


def chapter_14(hidden=64, dropout=None):
    layers = [pn.dense(2, hidden, weight_l2=5e-4, bias_l2=5e-4), pn.relu()]
    if dropout:
        layers.append(pn.dropout(dropout))
    return pn.serial(*layers, pn.dense(hidden, 3))


def chapter_15(rate=0.1):
    return chapter_14(dropout=rate)


@pytest.fixture
def spiral():
    return pn.data.spiral(jax.random.key(1), 100, 3)  # in the test's mode


def run_steps(step, params, opt_state, X, y, key, epochs):
    history = {name: [] for name in pn.train.METRICS}
    for epoch in range(epochs):
        _, dropout_key = pn.train.epoch_keys(key, epoch)
        params, opt_state, metrics = step(params, opt_state, X, y,
                                          jax.random.fold_in(dropout_key, 0))
        for name in history:
            history[name].append(float(metrics[name]))
    return params, opt_state, {name: np.asarray(v) for name, v in history.items()}


@pytest.mark.parametrize("optimizer,reference", [
    (pn.optimizers.adam(learning_rate=0.02, decay=1e-3), book.Optimizer_Adam(0.02, 1e-3)),
    (pn.optimizers.sgd(learning_rate=1.0, decay=1e-3, momentum=0.9),
     book.Optimizer_SGD(1.0, 1e-3, 0.9)),
])
@pytest.mark.x64
def test_train_step_metrics_equal_the_books_printed_values(spiral, optimizer, reference):
    X, y = spiral
    model = chapter_14()
    params = model.init(jax.random.key(2))
    step = pn.train_step(model, CCE, optimizer)
    trained, _, history = run_steps(step, params, optimizer.init(params), X, y,
                                    jax.random.key(3), 60)
    expected, expected_params = book_train(X, y, params, reference, 60)
    for name in pn.train.METRICS:
        np.testing.assert_allclose(history[name], expected[name], rtol=1e-8, err_msg=name)
    np.testing.assert_allclose(trained[0]["weights"], expected_params[0]["weights"], rtol=1e-8)


@pytest.mark.x64
def test_dropout_model_follows_the_book_with_the_same_masks(spiral):
    X, y = spiral
    model, key = chapter_14(dropout=0.1), jax.random.key(4)
    params = model.init(jax.random.key(2))
    opt = pn.optimizers.adam(learning_rate=0.05, decay=5e-5)
    _, _, history = pn.fit(model, CCE, opt, params, X, y, key=key, epochs=40, log_fn=None)

    def mask(epoch):
        step_key = jax.random.fold_in(pn.train.epoch_keys(key, epoch)[1], 0)
        return jax.random.bernoulli(jax.random.split(step_key, 4)[2], 0.9, (300, 64))

    expected, _ = book_train(X, y, params, book.Optimizer_Adam(0.05, 5e-5), 40,
                             dropout_rate=0.1, dropout_masks=mask)
    np.testing.assert_allclose(history["loss"], expected["loss"], rtol=1e-8)
    np.testing.assert_allclose(history["accuracy"], expected["accuracy"], rtol=1e-12)


@pytest.mark.x64
def test_binary_model_follows_the_book():
    X, y = pn.data.spiral(jax.random.key(1), 100, 2)
    y = y.reshape(-1, 1)
    model = pn.serial(pn.dense(2, 64, weight_l2=5e-4, bias_l2=5e-4), pn.relu(),
                      pn.dense(64, 1), pn.sigmoid())
    params = model.init(jax.random.key(2))
    _, _, history = pn.fit(model, pn.losses.binary_crossentropy,
                           pn.optimizers.adam(decay=5e-7), params, X, y,
                           key=jax.random.key(0), epochs=60, log_fn=None)
    expected, _ = book_train(X, y, params, book.Optimizer_Adam(decay=5e-7), 60,
                             kind="binary")
    for name in pn.train.METRICS:
        np.testing.assert_allclose(history[name], expected[name], rtol=1e-8, err_msg=name)


def assert_trees_close(actual, expected, rtol):
    """Leaf by leaf, within ``rtol`` of each leaf's largest element (float32 sums may
    differ in their last bits wherever two programs order them differently)."""
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected)):
        e = np.asarray(e)
        assert np.asarray(a).dtype == e.dtype
        np.testing.assert_allclose(a, e, rtol=rtol, atol=rtol * float(np.max(np.abs(e))))


def test_fit_equals_a_loop_of_train_step(spiral):
    X, y = spiral
    model, key = chapter_15(), jax.random.key(5)
    params = model.init(jax.random.key(2))
    opt = pn.optimizers.adam(learning_rate=0.05, decay=5e-5)
    fitted, fitted_state, history = pn.fit(model, CCE, opt, params, X, y, key=key,
                                           epochs=25, log_every=10, log_fn=None)
    looped, looped_state, expected = run_steps(pn.train_step(model, CCE, opt), params,
                                               opt.init(params), X, y, key, 25)
    for name in pn.train.METRICS:
        np.testing.assert_allclose(history[name], expected[name], rtol=1e-5, err_msg=name)
    assert_trees_close((fitted, fitted_state), (looped, looped_state), rtol=1e-5)
    np.testing.assert_array_equal(history["epoch"], np.arange(25))


def test_train_step_jit_equals_eager(spiral):
    X, y = spiral
    model = chapter_15(0.2)
    params = model.init(jax.random.key(2))
    opt = pn.optimizers.adam(learning_rate=0.01)
    state, key = opt.init(params), jax.random.key(6)
    jitted = pn.train_step(model, CCE, opt)(params, state, X, y, key)
    with jax.disable_jit():
        eager = pn.train_step(model, CCE, opt)(params, state, X, y, key)
    assert_trees_close(jitted, eager, rtol=1e-5)


def test_same_key_gives_bit_identical_params(spiral):
    X, y = spiral
    model = chapter_15()
    params = model.init(jax.random.key(2))
    opt = pn.optimizers.adam(learning_rate=0.05)
    runs = [pn.fit(model, CCE, opt, params, X, y, key=jax.random.key(k), epochs=30,
                   batch_size=64, log_fn=None)[0] for k in (7, 7, 8)]
    for a, b in zip(jax.tree.leaves(runs[0]), jax.tree.leaves(runs[1])):
        assert np.array_equal(a, b)
    assert not np.array_equal(runs[0][0]["weights"], runs[2][0]["weights"])


def test_minibatch_epochs_visit_every_sample_once(spiral):
    X, y = spiral
    model, key, batch_size = chapter_15(), jax.random.key(9), 64
    params = model.init(jax.random.key(2))
    opt = pn.optimizers.adam(learning_rate=0.05, decay=5e-5)
    fitted, _, history = pn.fit(model, CCE, opt, params, X, y, key=key, epochs=3,
                                batch_size=batch_size, log_fn=None)

    step = pn.train_step(model, CCE, opt)
    looped, state = params, opt.init(params)
    for epoch in range(3):
        shuffle_key, dropout_key = pn.train.epoch_keys(key, epoch)
        order = np.asarray(jax.random.permutation(shuffle_key, 300))
        batches = [order[i:i + batch_size] for i in range(0, 300, batch_size)]
        assert [len(b) for b in batches] == [64, 64, 64, 64, 44]
        np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(300))
        losses = []
        for b, indices in enumerate(batches):
            looped, state, metrics = step(looped, state, X[indices], y[indices],
                                          jax.random.fold_in(dropout_key, b))
            losses.append(float(metrics["data_loss"]) * len(indices) / 300)
        np.testing.assert_allclose(history["data_loss"][epoch], sum(losses), rtol=1e-5)
    assert_trees_close(fitted, looped, rtol=1e-5)
    assert int(state.count) == 15


def test_fit_prints_the_books_log_lines(spiral):
    X, y = spiral
    lines = []
    model = chapter_15()
    pn.fit(model, CCE, pn.optimizers.adam(learning_rate=0.02, decay=5e-7),
           model.init(jax.random.key(2)), X, y, key=jax.random.key(0), epochs=201,
           validation_data=(X, y), log_fn=lines.append)
    pattern = (r"epoch: (\d+), acc: \d\.\d{3}, loss: \d\.\d{3} \(data_loss: \d\.\d{3}, "
               r"reg_loss: \d\.\d{3}\), lr: 0\.0\d+")
    assert [int(re.fullmatch(pattern, line).group(1)) for line in lines[:-1]] == [0, 100, 200]
    assert lines[0].endswith("lr: 0.02")
    assert re.fullmatch(r"validation, acc: \d\.\d{3}, loss: \d\.\d{3}", lines[-1])


def test_evaluate_is_inference_mode(spiral):
    X, y = spiral
    model = chapter_15(0.5)
    params = model.init(jax.random.key(2))
    metrics = pn.evaluate(model, CCE, params, X, y)
    logits = model.apply(params, X)
    assert metrics["loss"] == pytest.approx(float(CCE(logits, y)), rel=1e-6)
    assert metrics["accuracy"] == pytest.approx(
        float(pn.losses.categorical_accuracy(logits, y)), rel=1e-6)


# Learning rates that make the first update throw the weights to ~lr: the next forward
# pass overflows (float32's largest number is ~3e38, float64's ~1.8e308).
HUGE_RATE = {False: 1e30, True: 1e200}


def test_divergence_stops_with_the_last_finite_state(spiral, x64):
    X, y = spiral
    model = chapter_15()
    params = model.init(jax.random.key(2))
    opt = pn.optimizers.adam(learning_rate=HUGE_RATE[x64])
    message = r"the loss became (nan|inf) at epoch (\d+)"
    with pytest.raises(pn.DivergenceError, match=message) as info:
        pn.fit(model, CCE, opt, params, X, y, key=jax.random.key(0), epochs=50, log_every=10,
               log_fn=None)
    error = info.value
    assert error.epoch >= 1
    assert error.state_epoch <= error.epoch
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(error.params))
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(error.opt_state))
    assert error.params[0]["weights"].dtype == params[0]["weights"].dtype
    assert len(error.history["loss"]) == error.state_epoch
    assert np.all(np.isfinite(error.history["loss"]))


FIT_ERRORS = [
    (dict(epochs=0), ValueError, r"epochs must be >= 1; got 0"),
    (dict(epochs=2.5), TypeError, r"epochs must be an integer >= 1; got 2.5"),
    (dict(batch_size=0), ValueError, r"batch_size must be between 1 and the number of "
                                     r"samples \(300\); got 0"),
    (dict(key=123), TypeError, r"key must be a jax.random key"),
    (dict(X=np.ones((300, 3))), ValueError, r"dense\(2, 64\): x must have shape \(N, 2\)"),
    (dict(X=np.ones(300)), ValueError, r"X must be 2-D of shape \(samples, features\)"),
    (dict(X=np.ones((0, 2))), ValueError, r"X is empty \(0 samples\)"),
    (dict(X=np.full((300, 2), np.nan)), ValueError, r"X holds NaN or inf values \(first at "
                                                    r"row 0, column 0\)"),
    (dict(y=np.zeros(299, np.int32)), ValueError, r"X and y must have the same number of "
                                                  r"samples; X has 300, y has 299"),
    (dict(y=np.full(300, 3)), ValueError, r"y labels must lie in \[0, 3\) for a model with 3 "
                                          r"outputs; got values from 3 to 3"),
    (dict(y=np.zeros(300)), TypeError, r"y must hold integer class indices.*astype"),
    (dict(y=np.zeros((300, 3))), ValueError, r"must be one-hot rows"),
    (dict(validation_data=(np.ones((5, 2)), np.zeros(4, np.int32))), ValueError,
     r"X_val and y_val must have the same number of samples"),
    (dict(loss="cce"), TypeError, r"loss must be a function"),
    (dict(optimizer=pn.optimizers.adam), TypeError, r"optimizer must have init and update "
                                                    r"methods.*adam instead of adam\(\)"),
]


@pytest.mark.parametrize("override,error,message", FIT_ERRORS)
def test_fit_rejects_bad_input_with_a_clear_message(spiral, override, error, message):
    X, y = spiral
    model = chapter_15()
    args = dict(model=model, loss=CCE, optimizer=pn.optimizers.adam(),
                params=model.init(jax.random.key(2)), X=X, y=y, key=jax.random.key(0),
                epochs=1, log_fn=None)
    args.update(override)
    with pytest.raises(error, match=message):
        pn.fit(**args)


def test_binary_targets_are_checked():
    X, y = pn.data.spiral(jax.random.key(1), 10, 2)
    model = pn.serial(pn.dense(2, 4), pn.relu(), pn.dense(4, 1), pn.sigmoid())
    params = model.init(jax.random.key(0))
    common = dict(key=jax.random.key(0), epochs=1, log_fn=None)
    with pytest.raises(ValueError, match=r"y must have the model output's shape \(20, 1\).*"
                                         r"reshape\(-1, 1\)"):
        pn.fit(model, pn.losses.binary_crossentropy, pn.optimizers.adam(), params, X, y,
               **common)
    with pytest.raises(ValueError, match=r"0/1 targets.*0.5"):
        pn.fit(model, pn.losses.binary_crossentropy, pn.optimizers.adam(), params, X,
               jnp.full((20, 1), 0.5), **common)


# Input scales at which epoch 0's loss is finite but its update overflows the optimizer
# state: the squared gradients in Adam's cache become inf.
HUGE_INPUT = {False: 1e25, True: 1e160}


def test_an_update_that_overflows_on_the_last_epoch_never_returns_a_non_finite_state(
        spiral, x64):
    X, y = spiral
    model = chapter_15()
    params = model.init(jax.random.key(2))
    opt = pn.optimizers.adam(learning_rate=0.05, decay=5e-5)
    with pytest.raises(pn.DivergenceError, match="the parameters or the optimizer state "
                                                 "became non-finite at epoch 0: training "
                                                 "diverged") as info:
        pn.fit(model, CCE, opt, params, HUGE_INPUT[x64] * X, y, key=jax.random.key(0),
               epochs=1, log_fn=None)
    assert info.value.epoch == 0 and info.value.state_epoch == 0
    assert np.array_equal(info.value.params[0]["weights"], params[0]["weights"])
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(info.value.params))
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(info.value.opt_state))
    assert len(info.value.history["loss"]) == info.value.state_epoch


def test_a_learning_rate_of_its_own_dtype_keeps_it(spiral):
    """The lean loop keeps the metrics in one (CHUNK, metrics) buffer of the metrics'
    dtype and a learning rate of another dtype apart, in its own: the history and the
    log line show it as the optimizer holds it."""
    X, y = spiral

    class RateState(NamedTuple):
        learning_rate: jax.Array

    def init(params):
        del params  # unused
        return RateState(jnp.asarray(0.1, jnp.float16))

    def update(grads, state, params=None):
        del params  # unused
        rate = state.learning_rate.astype(jnp.float32)
        return jax.tree.map(lambda g: -rate * g, grads), RateState(state.learning_rate * 0.5)

    model = chapter_15()
    lines = []
    _, _, history = pn.fit(model, CCE, pn.optimizers.GradientTransformation(init, update),
                           model.init(jax.random.key(2)), X, y, key=jax.random.key(0),
                           epochs=3, log_every=1, log_fn=lines.append)
    assert history["learning_rate"].dtype == np.float16
    assert history["loss"].dtype == np.float32
    np.testing.assert_array_equal(history["learning_rate"],
                                  np.float16(0.1) * np.float16([1, 0.5, 0.25]))
    assert [line.split("lr: ")[1] for line in lines] == ["0.1", "0.05", "0.025"]
