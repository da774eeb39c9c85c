"""Every op's value and gradient against the book's NumPy classes (in float64: marked
``x64``); dtypes and errors in float32."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import purenn as pn
from tests.reference import book

RTOL_FORWARD = 1e-12
RTOL_GRAD = 1e-10


def rng(seed=0):
    return np.random.default_rng(seed)


def vjp(f, *args):
    """Value of f and its pullback of a random cotangent, for every argument."""
    out, pullback = jax.vjp(f, *args)
    cotangent = rng(99).standard_normal(np.shape(out))
    return out, cotangent, pullback(jnp.asarray(cotangent, out.dtype))


def assert_close(actual, expected, rtol, atol=0.0):
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=rtol, atol=atol)


# --- dense ----------------------------------------------------------------------------


@pytest.mark.x64
def test_dense_forward_and_backward_equal_the_book():
    x, w = rng().standard_normal((7, 4)), rng(1).standard_normal((4, 5))
    b = rng(2).standard_normal((1, 5))
    out, dvalues, (dx, dw, db) = vjp(pn.ops.dense, jnp.asarray(x), jnp.asarray(w), jnp.asarray(b))
    layer = book.Layer_Dense(4, 5, weights=w, biases=b)
    layer.forward(x)
    layer.backward(dvalues)
    assert_close(out, layer.output, RTOL_FORWARD)
    assert_close(dx, layer.dinputs, RTOL_GRAD)
    assert_close(dw, layer.dweights, RTOL_GRAD)
    assert_close(db, layer.dbiases, RTOL_GRAD)


@pytest.mark.x64
def test_dense_check_grads():
    args = [jnp.asarray(rng(s).standard_normal(shape)) for s, shape in
            enumerate([(6, 3), (3, 2), (1, 2)])]
    check_grads(pn.ops.dense, args, order=1, modes=["rev"])


# --- activations ----------------------------------------------------------------------


@pytest.mark.x64
def test_relu_forward_and_backward_including_exact_zero():
    x = rng().standard_normal((5, 6))
    x[0, :3] = 0.0  # the book zeroes the gradient at exactly 0
    out, dvalues, (dx,) = vjp(pn.ops.relu, jnp.asarray(x))
    ref = book.Activation_ReLU()
    ref.forward(x)
    ref.backward(dvalues)
    assert_close(out, ref.output, RTOL_FORWARD)
    assert_close(dx, ref.dinputs, RTOL_GRAD)
    assert np.all(np.asarray(dx)[0, :3] == 0)


@pytest.mark.x64
def test_relu_check_grads_away_from_the_kink():
    x = rng().standard_normal((4, 5))
    x = np.where(np.abs(x) < 0.1, 0.5, x)
    check_grads(pn.ops.relu, [jnp.asarray(x)], order=1, modes=["rev"])


@pytest.mark.x64
@pytest.mark.parametrize("scale", [1.0, 80.0])
def test_sigmoid_forward_and_backward(scale):
    x = rng().standard_normal((5, 3)) * scale
    x[0, 0], x[0, 1] = 80.0, -80.0
    out, dvalues, (dx,) = vjp(pn.ops.sigmoid, jnp.asarray(x))
    ref = book.Activation_Sigmoid()
    ref.forward(x)
    ref.backward(dvalues)
    assert_close(out, ref.output, RTOL_FORWARD)
    assert_close(dx, ref.dinputs, RTOL_GRAD, atol=1e-300)
    assert np.all(np.isfinite(np.asarray(dx)))


@pytest.mark.x64
def test_sigmoid_check_grads():
    check_grads(pn.ops.sigmoid, [jnp.asarray(rng().standard_normal((4, 3)))], order=1,
                modes=["rev"])


@pytest.mark.x64
@pytest.mark.parametrize("scale", [1.0, 80.0])
def test_softmax_forward_and_jacobian_backward(scale):
    x = rng().standard_normal((6, 4)) * scale
    x[0] = [80.0, -80.0, 0.0, 80.0]
    out, dvalues, (dx,) = vjp(pn.ops.softmax, jnp.asarray(x))
    ref = book.Activation_Softmax()
    ref.forward(x)
    ref.backward(dvalues)
    assert_close(out, ref.output, RTOL_FORWARD)
    # The Jacobian product is a difference of products: compare relative to its scale.
    assert_close(dx, ref.dinputs, RTOL_GRAD, atol=1e-14 * np.abs(dvalues).max())
    assert np.all(np.isfinite(np.asarray(dx)))


@pytest.mark.x64
def test_softmax_check_grads():
    check_grads(pn.ops.softmax, [jnp.asarray(rng().standard_normal((4, 3)))], order=1,
                modes=["rev"])


# --- dropout --------------------------------------------------------------------------


@pytest.mark.x64
@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_dropout_equals_the_book_with_the_same_mask(key, rate):
    x = rng().standard_normal((50, 8))
    out, dvalues, (dx,) = vjp(lambda v: pn.ops.dropout(v, key, rate), jnp.asarray(x))
    mask = np.asarray(jax.random.bernoulli(key, 1 - rate, x.shape), dtype=np.float64)
    ref = book.Layer_Dropout(rate)
    ref.forward(x, mask=mask)
    ref.backward(dvalues)
    assert_close(out, ref.output, RTOL_FORWARD)
    assert_close(dx, ref.dinputs, RTOL_GRAD)


def test_dropout_rate_zero_is_the_identity(key):
    x = jnp.asarray(rng().standard_normal((3, 4)))
    assert np.array_equal(pn.ops.dropout(x, key, 0.0), x)


@pytest.mark.users_codegen
def test_dropout_with_a_traced_rate_is_the_same_op(key):
    # A rate passed into jit (a model's leaf) takes another branch for 0 (no mask drawn)
    # and the masked one otherwise; under vmap both run. Same values and gradients.
    x = jnp.asarray(rng().standard_normal((6, 5)))
    dvalues = jnp.asarray(rng().standard_normal((6, 5)))

    def forward_and_grad(rate):
        out, pullback = jax.vjp(lambda v: pn.ops.dropout(v, key, rate), x)
        return out, pullback(dvalues)[0]

    for rate in (0.0, 0.5):
        out, dx = jax.jit(forward_and_grad)(jnp.asarray(rate))
        expected_out, expected_dx = forward_and_grad(rate)
        assert np.array_equal(out, expected_out) and np.array_equal(dx, expected_dx)
    outs, dxs = jax.vmap(forward_and_grad)(jnp.asarray([0.0, 0.5]))
    assert np.array_equal(outs[0], x) and np.array_equal(dxs[0], dvalues)
    assert np.array_equal(outs[1], forward_and_grad(0.5)[0])
    # the branch: a sweep's cells with rate 0 draw no mask
    assert "cond[" in str(jax.make_jaxpr(lambda r: pn.ops.dropout(x, key, r))(0.0))


# --- regularization -------------------------------------------------------------------


def regularized_layer(w, **strengths):
    layer = book.Layer_Dense(*w.shape, weights=w, biases=np.zeros((1, w.shape[1])),
                             **strengths)
    layer.forward(np.zeros((1, w.shape[0])))
    layer.backward(np.zeros((1, w.shape[1])))  # only the regularization term remains
    return layer


@pytest.mark.x64
def test_l1_penalty_value_and_gradient_plus_one_at_exactly_zero():
    w = rng().standard_normal((4, 3))
    w[0, :] = 0.0
    value, grad = jax.value_and_grad(pn.ops.l1_penalty)(jnp.asarray(w), 0.3)
    ref = regularized_layer(w, weight_regularizer_l1=0.3)
    assert_close(value, book.Loss().regularization_loss(ref), RTOL_FORWARD)
    assert_close(grad, ref.dweights, RTOL_GRAD)
    assert np.all(np.asarray(grad)[0] == 0.3)


@pytest.mark.x64
def test_l2_penalty_value_and_gradient():
    w = rng().standard_normal((4, 3))
    value, grad = jax.value_and_grad(pn.ops.l2_penalty)(jnp.asarray(w), 5e-4)
    ref = regularized_layer(w, weight_regularizer_l2=5e-4)
    assert_close(value, book.Loss().regularization_loss(ref), RTOL_FORWARD)
    assert_close(grad, ref.dweights, RTOL_GRAD)


@pytest.mark.x64
def test_penalties_check_grads_in_weights_and_strength():
    w = rng().standard_normal((4, 3))
    w = np.where(np.abs(w) < 0.1, 0.5, w)
    for penalty in (pn.ops.l1_penalty, pn.ops.l2_penalty):
        check_grads(penalty, [jnp.asarray(w), jnp.asarray(0.7)], order=1, modes=["rev"])


# --- losses ---------------------------------------------------------------------------


def probabilities(n=8, c=3, seed=0):
    logits = rng(seed).standard_normal((n, c))
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


LABELS = np.array([0, 2, 1, 1, 0, 2, 2, 1])


@pytest.mark.x64
@pytest.mark.parametrize("one_hot", [False, True])
def test_categorical_crossentropy_equals_the_book(one_hot):
    p = probabilities()
    y = np.eye(3)[LABELS] if one_hot else LABELS
    loss, grad = jax.value_and_grad(pn.ops.categorical_crossentropy)(jnp.asarray(p), y)
    ref = book.Loss_CategoricalCrossentropy()
    ref.backward(p, y)
    assert_close(loss, ref.calculate(p, y), RTOL_FORWARD)
    assert_close(grad, ref.dinputs, RTOL_GRAD)


@pytest.mark.x64
def test_categorical_crossentropy_at_probabilities_zero_and_one():
    p = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.5, 0.0]])
    y = np.array([0, 0, 2, 1])  # row 1: the true class has probability exactly 0
    loss, grad = jax.value_and_grad(pn.ops.categorical_crossentropy)(jnp.asarray(p), y)
    ref = book.Loss_CategoricalCrossentropy()
    ref.backward(p, y)
    assert_close(loss, ref.calculate(p, y), RTOL_FORWARD)
    grad = np.asarray(grad)
    assert np.all(np.isfinite(grad))
    finite = np.isfinite(ref.dinputs)  # the book divides 0 by 0 off the target class
    assert_close(grad[finite], ref.dinputs[finite], RTOL_GRAD)
    assert np.all(grad[~finite & (np.eye(3)[y] == 0)] == 0)
    assert grad[1, 0] == pytest.approx(-1 / 1e-7 / 4)  # target at 0: the clip bound


@pytest.mark.x64
def test_categorical_crossentropy_check_grads():
    check_grads(lambda p: pn.ops.categorical_crossentropy(p, LABELS),
                [jnp.asarray(probabilities())], order=1, modes=["rev"])


@pytest.mark.x64
@pytest.mark.parametrize("one_hot", [False, True])
@pytest.mark.parametrize("scale", [1.0, 80.0])
def test_softmax_categorical_crossentropy_equals_the_book(one_hot, scale):
    logits = rng().standard_normal((8, 3)) * scale
    logits[0] = [80.0, -80.0, 0.0]
    y = np.eye(3)[LABELS] if one_hot else LABELS
    loss, grad = jax.value_and_grad(pn.ops.softmax_categorical_crossentropy)(
        jnp.asarray(logits), y)
    ref = book.Activation_Softmax_Loss_CategoricalCrossentropy()
    expected = ref.forward(logits, y)
    ref.backward(ref.output, y)
    assert_close(loss, expected, RTOL_FORWARD)
    assert_close(grad, ref.dinputs, RTOL_GRAD, atol=1e-300)
    assert np.all(np.isfinite(np.asarray(grad)))


@pytest.mark.x64
def test_softmax_categorical_crossentropy_check_grads():
    check_grads(lambda z: pn.ops.softmax_categorical_crossentropy(z, LABELS),
                [jnp.asarray(rng().standard_normal((8, 3)))], order=1, modes=["rev"])


def binary_case(seed=0):
    p = 1 / (1 + np.exp(-rng(seed).standard_normal((6, 2))))
    y = (rng(seed + 1).random((6, 2)) > 0.5).astype(np.float64)
    return p, y


@pytest.mark.x64
def test_binary_crossentropy_equals_the_book():
    p, y = binary_case()
    loss, grad = jax.value_and_grad(pn.ops.binary_crossentropy)(jnp.asarray(p), y)
    ref = book.Loss_BinaryCrossentropy()
    ref.backward(p, y)
    assert_close(loss, ref.calculate(p, y), RTOL_FORWARD)
    assert_close(grad, ref.dinputs, RTOL_GRAD)


@pytest.mark.x64
def test_binary_crossentropy_at_probabilities_zero_and_one():
    p = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 0.3]])
    y = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
    loss, grad = jax.value_and_grad(pn.ops.binary_crossentropy)(jnp.asarray(p), y)
    ref = book.Loss_BinaryCrossentropy()
    ref.backward(p, y)
    assert_close(loss, ref.calculate(p, y), RTOL_FORWARD)
    assert_close(grad, ref.dinputs, RTOL_GRAD)
    assert np.all(np.isfinite(np.asarray(grad)))


@pytest.mark.x64
def test_binary_crossentropy_check_grads():
    p, y = binary_case()
    check_grads(pn.ops.binary_crossentropy, [jnp.asarray(p), jnp.asarray(y)], order=1,
                modes=["rev"])


# --- dtype ----------------------------------------------------------------------------


def float32_cases(key):
    x = jnp.asarray(rng().standard_normal((4, 3)), jnp.float32)
    w = jnp.asarray(rng(1).standard_normal((3, 3)), jnp.float32)
    b = jnp.zeros((1, 3), jnp.float32)
    p = jax.nn.softmax(x)
    labels = jnp.array([0, 1, 2, 0])
    return {
        "dense": (lambda v: pn.ops.dense(v, w, b), x),
        "relu": (pn.ops.relu, x),
        "sigmoid": (pn.ops.sigmoid, x),
        "softmax": (pn.ops.softmax, x),
        "dropout": (lambda v: pn.ops.dropout(v, key, 0.3), x),
        "l1": (lambda v: pn.ops.l1_penalty(v, 0.1), w),
        "l2": (lambda v: pn.ops.l2_penalty(v, 0.1), w),
        "cce": (lambda v: pn.ops.categorical_crossentropy(v, labels), p),
        "softmax_cce": (lambda v: pn.ops.softmax_categorical_crossentropy(v, labels), x),
        "bce": (lambda v: pn.ops.binary_crossentropy(v, jnp.ones_like(v)), p),
    }


@pytest.mark.parametrize("name", ["dense", "relu", "sigmoid", "softmax", "dropout", "l1",
                                  "l2", "cce", "softmax_cce", "bce"])
def test_ops_preserve_float32(key, name):
    f, x = float32_cases(key)[name]
    out, pullback = jax.vjp(f, x)
    (grad,) = pullback(jnp.ones_like(out))
    assert out.dtype == jnp.float32
    assert grad.dtype == jnp.float32


# --- errors ---------------------------------------------------------------------------


def test_dense_op_rejects_mismatched_shapes_and_dtypes():
    w, b = jnp.ones((3, 2)), jnp.zeros((1, 2))
    with pytest.raises(ValueError, match=r"x must have shape \(N, 3\); got shape \(4, 5\)"):
        pn.ops.dense(jnp.ones((4, 5)), w, b)
    with pytest.raises(ValueError, match=r"biases must have shape \(1, 2\)"):
        pn.ops.dense(jnp.ones((4, 3)), w, jnp.zeros((2,)))
    with pytest.raises(TypeError, match=r"share one dtype.*x.astype\(weights.dtype\)"):
        pn.ops.dense(jnp.ones((4, 3), jnp.float16), w, b)
    with pytest.raises(TypeError, match="floating dtype"):
        pn.ops.relu(jnp.arange(3))


def test_loss_ops_reject_bad_labels():
    p = jnp.asarray(probabilities())
    with pytest.raises(ValueError, match=r"labels y_true must lie in \[0, 3\).*from 0 to 3"):
        pn.ops.categorical_crossentropy(p, np.array([0, 1, 2, 3, 0, 0, 0, 0]))
    with pytest.raises(TypeError, match="sparse labels y_true must be integers"):
        pn.ops.softmax_categorical_crossentropy(p, LABELS.astype(np.float64))
    with pytest.raises(ValueError, match="7 labels for 8 samples"):
        pn.ops.categorical_crossentropy(p, LABELS[:7])
    with pytest.raises(ValueError, match=r"reshape\(-1, 1\)"):
        pn.ops.binary_crossentropy(p[:, :1], np.ones(8))
    with pytest.raises(ValueError, match=r"strength must be a finite number >= 0; got -1"):
        pn.ops.l2_penalty(p, -1.0)


def test_dropout_op_rejects_bad_key_and_rate():
    x = jnp.ones((2, 2))
    with pytest.raises(TypeError, match=r"key must be a jax.random key, e.g. jax.random.key\(0\)"):
        pn.ops.dropout(x, 0, 0.5)
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\).*got 1.0"):
        pn.ops.dropout(x, jax.random.key(0), 1.0)
