"""Losses carry what they are: the accuracy that fits them, whether they take logits
(the output-layer guard), how ``predict`` makes probabilities, and which targets ``fit``
checks. A ``functools.partial`` of a purenn loss and a user's own loss that declares these
get the same treatment as the purenn loss; a loss that declares nothing gets no accuracy,
no guard, and ``predict`` returns the model's outputs. All in float32, the mode users run.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purenn as pn

CCE = pn.losses.softmax_categorical_crossentropy
BCE = pn.losses.binary_crossentropy
SOFTMAX_GUARD = ("the model's last layer, model.layers[3], is a softmax layer, but {name} "
                 "expects logits and applies the softmax itself: remove the softmax layer "
                 "(or use categorical_crossentropy on probabilities)")
SIGMOID_GUARD = ("the model's last layer, model.layers[2], is a dense layer, which does not "
                 "output probabilities, but {name} expects probabilities: add pn.sigmoid() "
                 "as the last layer")


def f32():
    return jax.enable_x64(False)


class LogitsLoss:
    """A user's own loss, written in plain jnp, that says it takes logits and which
    accuracy fits it."""

    from_logits = True
    accuracy = staticmethod(pn.losses.categorical_accuracy)

    def __call__(self, y_pred, y_true):
        picked = jnp.take_along_axis(jax.nn.log_softmax(y_pred), y_true[:, None], axis=1)
        return -jnp.mean(picked)


def plain_loss(y_pred, y_true):
    """A user's plain function that declares nothing: a squared error on one-hot rows."""
    return jnp.mean((y_pred - jax.nn.one_hot(y_true, y_pred.shape[1])) ** 2)


def logits_model():
    return pn.serial(pn.dense(2, 8), pn.relu(), pn.dropout(0.1), pn.dense(8, 3))


def softmax_model():
    return pn.serial(pn.dense(2, 8), pn.relu(), pn.dense(8, 3), pn.softmax())


def data():
    X, y = pn.data.spiral(jax.random.key(1), 20, 3)
    X_val, y_val = pn.data.spiral(jax.random.key(5), 20, 3)
    return X, y, X_val, y_val


def fit(loss, model, epochs=3):
    X, y, X_val, y_val = data()
    params = model.init(jax.random.key(2))
    return pn.fit(model, loss, pn.optimizers.adam(learning_rate=0.05), params, X, y,
                  key=jax.random.key(3), epochs=epochs, validation_data=(X_val, y_val),
                  log_fn=None)


@pytest.fixture(scope="module")
def book_run():
    """The run with the purenn loss itself, which the others are measured against."""
    with f32():
        return fit(CCE, logits_model())


# --- the Loss objects ---------------------------------------------------------------------


def test_purenn_losses_say_what_they_are():
    said = {name: pn.losses.properties(getattr(pn.losses, name)) for name in
            ("softmax_categorical_crossentropy", "categorical_crossentropy",
             "binary_crossentropy")}
    assert {name: (p.name, p.accuracy, p.from_logits, p.targets)
            for name, p in said.items()} == {
        "softmax_categorical_crossentropy": ("softmax_categorical_crossentropy",
                                             pn.losses.categorical_accuracy, True,
                                             "categorical"),
        "categorical_crossentropy": ("categorical_crossentropy",
                                     pn.losses.categorical_accuracy, False, "categorical"),
        "binary_crossentropy": ("binary_crossentropy", pn.losses.binary_accuracy, False,
                                "binary"),
    }
    assert CCE.__name__ == "softmax_categorical_crossentropy"
    assert CCE.__doc__ == pn.ops.softmax_categorical_crossentropy.__doc__


def test_a_loss_is_the_op_bit_for_bit_gradient_included():
    with f32():
        logits = jax.random.normal(jax.random.key(0), (6, 3))
        labels = jnp.array([0, 1, 2, 2, 1, 0])
        op = pn.ops.softmax_categorical_crossentropy
        value, grad = jax.value_and_grad(CCE)(logits, labels)
        op_value, op_grad = jax.value_and_grad(op)(logits, labels)
        assert np.array_equal(value, op_value) and np.array_equal(grad, op_grad)
        # the book's formula, (softmax - onehot) / N, is what the hand-written VJP gives
        expected = (jax.nn.softmax(logits) - jax.nn.one_hot(labels, 3)) / 6
        np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7)


def test_losses_are_immutable_and_equal_by_what_they_are():
    again = pn.losses.Loss(pn.ops.softmax_categorical_crossentropy,
                           accuracy=pn.losses.categorical_accuracy, from_logits=True,
                           targets="categorical")
    assert again == CCE and hash(again) == hash(CCE)
    assert pn.losses.Loss(pn.ops.softmax_categorical_crossentropy) != CCE
    with pytest.raises(AttributeError, match="a Loss is immutable"):
        CCE.from_logits = False


def test_declared_properties_of_the_wrong_kind_are_refused():
    def loss(y_pred, y_true):
        return jnp.mean(y_pred)

    loss.from_logits = "yes"
    with pytest.raises(TypeError, match=r"loss.from_logits must be True \(the loss takes "
                                        r"logits\), False \(probabilities\) or None"):
        pn.losses.properties(loss)
    with pytest.raises(ValueError, match=r"plain_loss.targets must be one of 'categorical', "
                                         r"'binary' or None .*; got 'sparse'"):
        pn.losses.Loss(plain_loss, targets="sparse")
    with pytest.raises(TypeError, match=r"plain_loss.accuracy must be a function"):
        pn.losses.Loss(plain_loss, accuracy=0.5)


# --- a partial of a purenn loss -------------------------------------------------------------


def test_a_partial_of_a_purenn_loss_keeps_its_accuracy(book_run):
    with f32():
        params, _, history = fit(functools.partial(CCE), logits_model())
    _, _, book = book_run
    assert "accuracy" in history and "val_accuracy" in history
    for name in ("accuracy", "loss", "val_accuracy", "val_loss"):
        assert np.array_equal(history[name], book[name]), name
    assert history["validation"] == book["validation"]
    assert set(history["validation"]) == {"loss", "accuracy"}


def test_a_partial_of_a_purenn_loss_keeps_its_guard():
    with f32():
        model = softmax_model()
        params = model.init(jax.random.key(0))
        X, y, _, _ = data()
        with pytest.raises(ValueError) as caught:
            pn.evaluate(model, functools.partial(CCE), params, X, y)
    assert str(caught.value) == SOFTMAX_GUARD.format(name="softmax_categorical_crossentropy")
    with f32():
        model = pn.serial(pn.dense(2, 4), pn.relu(), pn.dense(4, 1))
        params = model.init(jax.random.key(0))
        with pytest.raises(ValueError) as caught:
            pn.fit(model, functools.partial(BCE), pn.optimizers.adam(), params, X,
                   jnp.zeros((60, 1)), key=jax.random.key(0), epochs=1, log_fn=None)
    assert str(caught.value) == SIGMOID_GUARD.format(name="binary_crossentropy")


def test_a_partial_of_a_purenn_loss_keeps_predicts_softmax_and_its_label_checks(book_run):
    params, _, _ = book_run
    with f32():
        model = logits_model()
        X, y, _, _ = data()
        probs = pn.predict(model, functools.partial(CCE), params, X)
        assert np.array_equal(probs, pn.predict(model, CCE, params, X))
        np.testing.assert_allclose(probs, jax.nn.softmax(model.apply(params, X)), rtol=1e-6)
        np.testing.assert_allclose(np.sum(probs, axis=1), 1, rtol=1e-6)
        with pytest.raises(ValueError, match=r"^y labels must lie in \[0, 3\) for a model "
                                             r"with 3 outputs; got values from 0 to 5$"):
            pn.evaluate(model, functools.partial(CCE), params, X, y.at[0].set(5))


# --- a user's own loss that declares it takes logits ------------------------------------------


def test_a_users_logits_loss_gets_its_accuracy(book_run):
    with f32():
        params, _, history = fit(LogitsLoss(), logits_model())
        _, _, book = book_run
        # epoch 0: the same params and key, so the same forward pass and accuracy
        assert history["accuracy"][0] == book["accuracy"][0]
        assert len(history["accuracy"]) == 3 and len(history["val_accuracy"]) == 2
        X_val, y_val = data()[2:]
        expected = pn.losses.categorical_accuracy(logits_model().apply(params, X_val), y_val)
        metrics = pn.evaluate(logits_model(), LogitsLoss(), params, X_val, y_val)
        assert metrics["accuracy"] == float(expected) == history["validation"]["accuracy"]
        np.testing.assert_allclose(metrics["loss"], CCE(logits_model().apply(params, X_val),
                                                        y_val), rtol=1e-5)


def test_a_users_logits_loss_gets_the_guard_and_predicts_softmax():
    with f32():
        model = softmax_model()
        params = model.init(jax.random.key(0))
        with pytest.raises(ValueError) as caught:
            pn.train_step(model, LogitsLoss(), pn.optimizers.adam())
        assert str(caught.value) == SOFTMAX_GUARD.format(name="LogitsLoss")
        model = logits_model()
        params = model.init(jax.random.key(0))
        X = data()[0]
        probs = pn.predict(model, LogitsLoss(), params, X)
        np.testing.assert_allclose(probs, jax.nn.softmax(model.apply(params, X)), rtol=1e-6)
        np.testing.assert_allclose(np.sum(probs, axis=1), 1, rtol=1e-6)


def test_a_loss_built_with_loss_declares_binary_targets():
    def squared(y_pred, y_true):
        return jnp.mean((y_pred - y_true) ** 2)

    loss = pn.losses.Loss(squared, accuracy=pn.losses.binary_accuracy, from_logits=False,
                          targets="binary")
    with f32():
        model = pn.serial(pn.dense(2, 4), pn.relu(), pn.dense(4, 1), pn.sigmoid())
        params = model.init(jax.random.key(0))
        X = data()[0]
        with pytest.raises(ValueError, match=r"^y must hold 0/1 targets for binary cross-"
                                             r"entropy; got values such as np.float32\(2.0\)$"):
            pn.evaluate(model, loss, params, X, jnp.full((60, 1), 2.0))
        metrics = pn.evaluate(model, loss, params, X, jnp.ones((60, 1)))
        probs = model.apply(params, X)
        assert metrics["accuracy"] == float(jnp.mean(probs > 0.5))
        assert np.array_equal(pn.predict(model, loss, params, X), probs)


# --- a plain function that declares nothing ----------------------------------------------------


def test_a_plain_loss_function_keeps_todays_behaviour():
    with f32():
        model = softmax_model()  # no guard: a softmax before a loss that says nothing
        params, _, history = fit(plain_loss, model)
        assert "accuracy" not in history and "val_accuracy" not in history
        assert set(history["validation"]) == {"loss"}
        X, y, X_val, y_val = data()
        assert set(pn.evaluate(model, plain_loss, params, X_val, y_val)) == {"loss"}
        accuracy = pn.evaluate(model, plain_loss, params, X_val, y_val,
                               accuracy=pn.losses.categorical_accuracy)["accuracy"]
        assert accuracy == float(pn.losses.categorical_accuracy(model.apply(params, X_val),
                                                                y_val))
        np.testing.assert_allclose(pn.predict(model, plain_loss, params, X),
                                   model.apply(params, X), rtol=1e-6)
        logits = logits_model()
        params = logits.init(jax.random.key(2))
        probs = pn.predict(logits, plain_loss, params, X)  # the outputs, no softmax
        np.testing.assert_allclose(probs, logits.apply(params, X), rtol=1e-6)
        assert not np.allclose(np.sum(probs, axis=1), 1)
