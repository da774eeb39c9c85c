"""Whole models: jax.grad through purenn's VJPs equals the book's full backward pass, in
float64 (marked ``x64``). The gradients are jitted: one program per model rather than one
per operation (``tests/test_ops.py`` runs each VJP eagerly)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purenn as pn
from tests.reference import book

RTOL = 1e-10


def spiral(classes=3):
    return pn.data.spiral(jax.random.key(1), 100, classes)


def book_layers(params, l2):
    params = [p for p in params if p != ()]
    dense1 = book.Layer_Dense(*params[0]["weights"].shape, weight_regularizer_l2=l2,
                              bias_regularizer_l2=l2, weights=params[0]["weights"],
                              biases=params[0]["biases"])
    dense2 = book.Layer_Dense(*params[-1]["weights"].shape, weights=params[-1]["weights"],
                              biases=params[-1]["biases"])
    return dense1, dense2


def assert_grads_equal(grads, dense1, dense2, last=2):
    np.testing.assert_allclose(grads[0]["weights"], dense1.dweights, rtol=RTOL)
    np.testing.assert_allclose(grads[0]["biases"], dense1.dbiases, rtol=RTOL)
    np.testing.assert_allclose(grads[last]["weights"], dense2.dweights, rtol=RTOL)
    np.testing.assert_allclose(grads[last]["biases"], dense2.dbiases, rtol=RTOL)


@pytest.mark.x64
@pytest.mark.parametrize("seed", [2, 3])
def test_chapter_14_model_gradient_equals_the_books_backward(seed):
    X, y = spiral()
    model = pn.serial(pn.dense(2, 64, weight_l2=5e-4, bias_l2=5e-4), pn.relu(),
                      pn.dense(64, 3))
    params = model.init(jax.random.key(seed))
    # non-zero biases, so bias gradients and penalties are exercised
    params = (dict(params[0], biases=0.1 * jax.random.normal(jax.random.key(9), (1, 64))),
              (), params[2])

    def loss(p):
        return pn.losses.softmax_categorical_crossentropy(model.apply(p, X), y) + model.penalty(p)

    value, grads = jax.jit(jax.value_and_grad(loss))(params)

    X_, y_ = np.asarray(X), np.asarray(y)
    dense1, dense2 = book_layers(params, 5e-4)
    relu = book.Activation_ReLU()
    loss_activation = book.Activation_Softmax_Loss_CategoricalCrossentropy()
    dense1.forward(X_)
    relu.forward(dense1.output)
    dense2.forward(relu.output)
    data_loss = loss_activation.forward(dense2.output, y_)
    reg_loss = loss_activation.loss.regularization_loss(dense1) + \
        loss_activation.loss.regularization_loss(dense2)
    loss_activation.backward(loss_activation.output, y_)
    dense2.backward(loss_activation.dinputs)
    relu.backward(dense2.dinputs)
    dense1.backward(relu.dinputs)

    np.testing.assert_allclose(value, data_loss + reg_loss, rtol=1e-12)
    assert_grads_equal(grads, dense1, dense2)


@pytest.mark.x64
def test_chapter_15_dropout_model_gradient_with_the_same_mask():
    X, y = spiral()
    model = pn.serial(pn.dense(2, 64, weight_l2=5e-4, bias_l2=5e-4), pn.relu(),
                      pn.dropout(0.1), pn.dense(64, 3))
    params = model.init(jax.random.key(2))
    key = jax.random.key(7)

    def loss(p):
        logits = model.apply(p, X, key=key, train=True)
        return pn.losses.softmax_categorical_crossentropy(logits, y) + model.penalty(p)

    grads = jax.jit(jax.grad(loss))(params)

    mask_key = jax.random.split(key, 4)[2]  # serial hands layer 2 the third split
    mask = np.asarray(jax.random.bernoulli(mask_key, 0.9, (300, 64)), dtype=np.float64)
    X_, y_ = np.asarray(X), np.asarray(y)
    dense1, dense2 = book_layers(params, 5e-4)
    relu, drop = book.Activation_ReLU(), book.Layer_Dropout(0.1)
    loss_activation = book.Activation_Softmax_Loss_CategoricalCrossentropy()
    dense1.forward(X_)
    relu.forward(dense1.output)
    drop.forward(relu.output, mask=mask)
    dense2.forward(drop.output)
    loss_activation.forward(dense2.output, y_)
    loss_activation.backward(loss_activation.output, y_)
    dense2.backward(loss_activation.dinputs)
    drop.backward(dense2.dinputs)
    relu.backward(drop.dinputs)
    dense1.backward(relu.dinputs)
    assert_grads_equal(grads, dense1, dense2, last=3)


@pytest.mark.x64
def test_binary_model_gradient_equals_the_books_backward():
    X, y = spiral(classes=2)
    y = y.reshape(-1, 1)
    model = pn.serial(pn.dense(2, 64, weight_l2=5e-4, bias_l2=5e-4), pn.relu(),
                      pn.dense(64, 1), pn.sigmoid())
    params = model.init(jax.random.key(2))

    def loss(p):
        return pn.losses.binary_crossentropy(model.apply(p, X), y) + model.penalty(p)

    value, grads = jax.jit(jax.value_and_grad(loss))(params)

    X_, y_ = np.asarray(X), np.asarray(y, dtype=np.float64)
    dense1, dense2 = book_layers(params, 5e-4)
    relu, sigmoid, bce = book.Activation_ReLU(), book.Activation_Sigmoid(), \
        book.Loss_BinaryCrossentropy()
    dense1.forward(X_)
    relu.forward(dense1.output)
    dense2.forward(relu.output)
    sigmoid.forward(dense2.output)
    data_loss = bce.calculate(sigmoid.output, y_)
    reg_loss = bce.regularization_loss(dense1)
    bce.backward(sigmoid.output, y_)
    sigmoid.backward(bce.dinputs)
    dense2.backward(sigmoid.dinputs)
    relu.backward(dense2.dinputs)
    dense1.backward(relu.dinputs)
    np.testing.assert_allclose(value, data_loss + reg_loss, rtol=1e-12)
    assert_grads_equal(grads, dense1, dense2, last=2)


def test_accuracies_equal_the_books():
    p = jnp.asarray([[0.7, 0.2, 0.1], [0.1, 0.5, 0.4], [0.02, 0.9, 0.08]])
    y = np.array([0, 2, 1])
    assert float(pn.losses.categorical_accuracy(p, y)) == pytest.approx(2 / 3)
    assert float(pn.losses.categorical_accuracy(p, np.eye(3)[y])) == pytest.approx(2 / 3)
    q = jnp.asarray([[0.2], [0.6], [0.5]])
    assert float(pn.losses.binary_accuracy(q, np.array([[0], [1], [1]]))) == pytest.approx(2 / 3)
