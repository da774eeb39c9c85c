"""Property-based: whatever shapes, dtypes and values are thrown at the public API, each
call either works or raises ValueError/TypeError; finite input never gives NaN output."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import purenn as pn

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
DTYPES = st.sampled_from([np.float64, np.float32, np.float16, np.int32, np.bool_])
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)
FINITE = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=16)


def arrays(dtype=DTYPES, shape=SHAPES, elements=None):
    return dtype.flatmap(lambda d: hnp.arrays(d, shape, elements=elements if np.issubdtype(
        d, np.floating) else None))


def assert_clean(call):
    """Run ``call``: a clear error is fine, any other exception is a bug; a result must
    hold no NaN."""
    try:
        out = call()
    except (ValueError, TypeError) as err:
        assert str(err), "errors must say what is wrong"
        return None
    for leaf in jax.tree.leaves(out):
        leaf = np.asarray(leaf)
        if np.issubdtype(leaf.dtype, np.inexact):
            assert not np.any(np.isnan(leaf)), out
    return out


@SETTINGS
@given(x=arrays(elements=FINITE), width=st.integers(1, 4), train=st.booleans(),
       rate=st.sampled_from([0.0, 0.5]))
def test_apply_works_or_raises_a_clear_error(x, width, train, rate):
    model = pn.serial(pn.dense(width, 3, weight_l1=1e-3), pn.relu(), pn.dropout(rate),
                      pn.dense(3, 2), pn.softmax())
    params = model.init(jax.random.key(0))
    out = assert_clean(lambda: model.apply(params, x, key=jax.random.key(1), train=train))
    if out is not None:
        assert out.shape == (x.shape[0], 2)
        assert out.dtype == params[0]["weights"].dtype


LOSSES = [pn.losses.categorical_crossentropy, pn.losses.softmax_categorical_crossentropy,
          pn.losses.binary_crossentropy]


@SETTINGS
@given(loss=st.sampled_from(LOSSES), y_pred=arrays(elements=FINITE),
       y_true=arrays(dtype=st.sampled_from([np.int32, np.int64, np.float64, np.bool_]),
                     elements=st.floats(0, 1)))
def test_losses_work_or_raise_a_clear_error(loss, y_pred, y_true):
    if loss is not pn.losses.softmax_categorical_crossentropy:
        y_pred = np.clip(y_pred, 0, 1) if np.issubdtype(y_pred.dtype, np.floating) else y_pred

    def value_and_grad():
        return jax.value_and_grad(loss)(jnp.asarray(y_pred), y_true)

    assert_clean(value_and_grad)


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(0, 6), features=st.integers(1, 3),
       labels=st.lists(st.integers(-1, 3), min_size=0, max_size=7),
       poison=st.sampled_from([None, np.nan, np.inf]),
       epochs=st.integers(-1, 2), batch_size=st.sampled_from([None, 0, 2, 10]))
def test_fit_works_or_raises_a_clear_error(n, features, labels, poison, epochs, batch_size):
    X = np.linspace(-1, 1, n * features).reshape(n, features)
    if poison is not None and X.size:
        X[0, 0] = poison
    y = np.asarray(labels, dtype=np.int32)
    model = pn.serial(pn.dense(2, 4), pn.relu(), pn.dense(4, 3))
    result = assert_clean(lambda: pn.fit(
        model, pn.losses.softmax_categorical_crossentropy, pn.optimizers.adam(),
        model.init(jax.random.key(0)), X, y, key=jax.random.key(1), epochs=epochs,
        batch_size=batch_size, log_fn=None))
    if result is not None:
        assert features == 2 and poison is None and epochs >= 1 and len(labels) == n > 0
        assert len(result[2]["loss"]) == epochs


@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_softmax_crossentropy_gradient_is_finite_for_large_logits(scale):
    logits = jnp.asarray(np.random.default_rng(0).standard_normal((16, 5)) * scale)
    grad = jax.grad(pn.losses.softmax_categorical_crossentropy)(logits, jnp.arange(16) % 5)
    assert np.all(np.isfinite(np.asarray(grad)))
