"""Layers: what init promises is what apply returns; dropout's randomness; errors. In
float32 (the dtype tests in float64 too)."""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purenn as pn
from purenn import pytrees
from tests.counting import compiles, init_programs


# Sizes of the book's models (and data), which other tests compile too.
@pytest.mark.parametrize("n_in,n_out,n", [(1, 1, 1), (2, 64, 300), (64, 3, 300), (2, 512, 300)])
def test_dense_params_and_output_shapes(key, n_in, n_out, n):
    layer = pn.dense(n_in, n_out)
    params = layer.init(key)
    assert set(params) == {"weights", "biases"}
    assert params["weights"].shape == (n_in, n_out)
    assert params["biases"].shape == (1, n_out)
    assert np.all(np.asarray(params["biases"]) == 0)
    out = layer.apply(params, jnp.ones((n, n_in)))
    assert out.shape == (n, n_out)


@pytest.mark.users_codegen
def test_dense_init_is_the_books_scaled_normal(key):
    weights = np.asarray(pn.dense(100, 100).init(key)["weights"])
    assert weights.dtype == np.float32
    expected = 0.01 * np.asarray(jax.random.normal(key, (100, 100), jnp.float32))
    np.testing.assert_array_equal(weights, expected)
    assert abs(weights.std() - 0.01) < 0.0005


def test_parameterless_layers_have_empty_params(key):
    for layer in (pn.relu(), pn.sigmoid(), pn.softmax(), pn.dropout(0.5)):
        params = layer.init(key)
        assert params == ()
        assert layer.apply(params, jnp.ones((3, 4))).shape == (3, 4)
        assert float(layer.penalty(params)) == 0.0


def test_default_dtype_is_float32_without_x64_and_float64_with_it(key, x64):
    default = jnp.float64 if x64 else jnp.float32
    model = pn.serial(pn.dense(2, 64, weight_l2=1e-3), pn.relu(), pn.dense(64, 3))
    params = model.init(key)
    assert params[0]["weights"].dtype == default
    out = model.apply(params, jnp.ones((300, 2), default))
    assert out.dtype == default
    assert model.penalty(params).dtype == default


def test_dtypes_are_preserved(key, x64):
    model = pn.serial(pn.dense(2, 64, weight_l1=1e-3, dtype=jnp.float32), pn.sigmoid(),
                      pn.dropout(0.2), pn.dense(64, 3, dtype=jnp.float32), pn.softmax())
    params = model.init(key)
    assert params[0]["weights"].dtype == jnp.float32
    out = model.apply(params, jnp.ones((300, 2), jnp.float32), key=key, train=True)
    assert out.dtype == jnp.float32
    assert model.penalty(params).dtype == jnp.float32


def test_serial_params_are_a_tuple_one_entry_per_layer(key):
    model = pn.serial(pn.dense(2, 64, weight_l2=5e-4, bias_l2=5e-4), pn.relu(),
                      pn.dropout(0.1), pn.dense(64, 3))
    params = model.init(key)
    assert isinstance(params, tuple) and len(params) == 4
    assert params[0]["weights"].shape == (2, 64)
    assert params[1] == () and params[2] == ()
    assert params[3]["biases"].shape == (1, 3)


def test_serial_splits_the_key_once_per_layer(key):
    model = pn.serial(pn.dense(2, 64), pn.dropout(0.5), pn.dense(64, 3))
    params = model.init(key)
    keys = jax.random.split(key, 3)
    assert np.array_equal(params[0]["weights"], pn.dense(2, 64).init(keys[0])["weights"])
    assert np.array_equal(params[2]["weights"], pn.dense(64, 3).init(keys[2])["weights"])
    x = jnp.ones((300, 2))
    hidden = pn.dense(2, 64).apply(params[0], x)
    dropped = pn.ops.dropout(hidden, keys[1], 0.5)
    expected = pn.dense(64, 3).apply(params[2], dropped)
    np.testing.assert_array_equal(model.apply(params, x, key=key, train=True), expected)


def test_penalty_sums_the_regularized_layers(key):
    model = pn.serial(pn.dense(2, 64, weight_l1=0.1, weight_l2=0.2, bias_l1=0.3, bias_l2=0.4),
                      pn.relu(), pn.dense(64, 3))
    params = model.init(key)
    params = (dict(params[0], biases=jnp.full((1, 64), -0.5)),) + params[1:]
    w, b = np.asarray(params[0]["weights"]), np.asarray(params[0]["biases"])
    expected = (0.1 * np.abs(w).sum() + 0.2 * (w * w).sum() + 0.3 * np.abs(b).sum()
                + 0.4 * (b * b).sum())
    np.testing.assert_allclose(model.penalty(params), expected, rtol=1e-6)


# --- dropout --------------------------------------------------------------------------


def test_dropout_is_the_identity_when_not_training(key):
    x = np.random.default_rng(0).standard_normal((20, 30)).astype(np.float32)
    layer = pn.dropout(0.5)
    assert np.array_equal(layer.apply((), x), x)
    assert np.array_equal(layer.apply((), x, key=key, train=False), x)


def test_dropout_same_key_same_mask_different_keys_different_masks(key):
    layer, x = pn.dropout(0.3), jnp.ones((50, 40))
    first = layer.apply((), x, key=key, train=True)
    again = layer.apply((), x, key=key, train=True)
    other = layer.apply((), x, key=jax.random.key(1), train=True)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_dropout_drops_the_fraction_rate_and_rescales(key, rate):
    n = 100_000
    out = np.asarray(pn.dropout(rate).apply((), jnp.ones((1, n)), key=key, train=True))
    dropped = np.mean(out == 0)
    sigma = np.sqrt(rate * (1 - rate) / n)
    assert abs(dropped - rate) < 4 * sigma
    np.testing.assert_allclose(out[out != 0], 1 / (1 - rate), rtol=1e-7)


def test_serial_under_jit_equals_eager(key):
    model = pn.serial(pn.dense(2, 64, weight_l2=1e-3), pn.relu(), pn.dropout(0.2),
                      pn.dense(64, 3), pn.softmax())
    params = model.init(key)
    x = np.random.default_rng(5).standard_normal((300, 2)).astype(np.float32)
    eager = model.apply(params, x, key=key, train=True)
    jitted = jax.jit(lambda p, v, k: model.apply(p, v, key=k, train=True))(params, x, key)
    np.testing.assert_allclose(jitted, eager, rtol=1e-6)
    np.testing.assert_allclose(jax.jit(model.penalty)(params), model.penalty(params),
                               rtol=1e-6)


# --- init: one compiled program per structure ------------------------------------------


def test_models_of_one_structure_share_one_init_program(key):
    def model(l2, rate):  # sizes no other test uses: a structure of its own
        return pn.serial(pn.dense(3, 17, weight_l2=l2, bias_l2=l2), pn.relu(),
                         pn.dropout(rate), pn.dense(17, 5))

    before = init_programs()
    first = model(5e-4, 0.1).init(key)
    assert init_programs() == before + 1
    for l2, rate in ((1e-3, 0.2), (0.0, 0.5), (2e-2, 0.0)):
        params = model(l2, rate).init(key)
        assert init_programs() == before + 1  # other values: the same program
        assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(params),
                                                          jax.tree.leaves(first)))
    model(5e-4, 0.1).init(jax.random.key(7))  # another key: the same program
    assert init_programs() == before + 1
    pn.serial(pn.dense(3, 18), pn.relu(), pn.dense(18, 5)).init(key)  # another size
    assert init_programs() == before + 2


def eager_init(model, key):
    """The book's initialisation, one operation at a time (not compiled together): the
    key split once per layer, ``0.01 * normal`` weights, zero biases."""
    if isinstance(model, pn.layers.Serial):
        keys = jax.random.split(key, len(model.layers))
        return tuple(eager_init(layer, k) for layer, k in zip(model.layers, keys))
    if isinstance(model, pn.layers.Dense):
        dtype = model.dtype or jax.dtypes.canonicalize_dtype(jnp.float64)
        normal = jax.random.normal(key, (model.n_inputs, model.n_neurons), dtype)
        return {"weights": 0.01 * normal,
                "biases": jnp.zeros((1, model.n_neurons), dtype)}
    return ()


@pytest.mark.users_codegen
@pytest.mark.parametrize("hidden,outputs", [(64, 3), (512, 1)])  # the book's sizes
def test_init_is_bit_for_bit_the_eager_operations(hidden, outputs, x64):
    model = pn.serial(pn.dense(2, hidden, weight_l2=5e-4, bias_l2=5e-4), pn.relu(),
                      pn.dropout(0.1), pn.dense(hidden, outputs))
    for seed in range(3):
        k_init = jax.random.split(jax.random.key(seed), 4)[2]  # the CLI's init key
        got, want = model.init(k_init), eager_init(model, k_init)
        assert jax.tree.structure(got) == jax.tree.structure(want)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(np.asarray(a).view(np.uint8),
                                          np.asarray(b).view(np.uint8))


def test_a_custom_layers_init_is_called_as_it_is(key):
    calls = []

    def init(k):
        calls.append(k)  # a Python side effect: runs on every init, eagerly
        return {"scale": np.ones((1, 4), np.float32)}

    layer = pn.layers.custom(init, lambda p, x, key=None, train=False: x * p["scale"])
    model = pn.serial(pn.dense(2, 4), layer, pn.dense(4, 3))
    for _ in range(2):
        params = model.init(key)
    assert len(calls) == 2 and not isinstance(calls[0], jax.core.Tracer)
    assert isinstance(params[1]["scale"], np.ndarray)  # what init returned, untouched
    keys = jax.random.split(key, 3)
    np.testing.assert_array_equal(jax.random.key_data(calls[0]), jax.random.key_data(keys[1]))
    np.testing.assert_array_equal(params[2]["weights"], pn.dense(4, 3).init(keys[2])["weights"])
    np.testing.assert_array_equal(params[0]["weights"], eager_init(model, key)[0]["weights"])


def test_legacy_uint32_keys_are_accepted():
    legacy = jax.random.PRNGKey(0)
    params = pn.dense(2, 3).init(legacy)
    assert params["weights"].shape == (2, 3)
    out = pn.dropout(0.5).apply((), jnp.ones((4, 4)), key=legacy, train=True)
    assert out.shape == (4, 4)


# --- errors ---------------------------------------------------------------------------

ERRORS = [
    (lambda: pn.dense(2, 3).apply(pn.dense(2, 3).init(jax.random.key(0)), jnp.ones((5, 4))),
     ValueError, r"dense\(2, 3\): x must have shape \(N, 2\); got shape \(5, 4\)"),
    (lambda: pn.dense(2, 3).apply(pn.dense(2, 3).init(jax.random.key(0)), jnp.ones(2)),
     ValueError, r"x must be 2-D of shape \(N, 2\); got shape \(2,\).*x\[None, :\]"),
    (lambda: pn.dropout(1.0), ValueError, r"rate must be in \[0, 1\).*got 1.0"),
    (lambda: pn.dropout(-0.1), ValueError, r"rate must be in \[0, 1\).*got -0.1"),
    (lambda: pn.dropout("0.5"), TypeError, r"rate must be a number in \[0, 1\); got str"),
    (lambda: pn.dropout(0.5).apply((), jnp.ones((2, 2)), train=True), ValueError,
     r"dropout needs a key when train=True: apply\(params, x, key=k, train=True\)"),
    (lambda: pn.dropout(0.5).apply((), jnp.ones((2, 2)), key=42, train=True), TypeError,
     r"key must be a jax.random key, e.g. jax.random.key\(0\); got int"),
    (lambda: pn.dense(2, 3).init(jnp.ones(2)), TypeError,
     r"key must be a jax.random key.*dtype float32 and shape \(2,\)"),
    (lambda: pn.dense(2, 3).init(jax.random.split(jax.random.key(0), 2)), TypeError,
     r"a single jax.random key; got a batch of keys of shape \(2,\)"),
    (lambda: pn.dense(2, 3, weight_l2=-5e-4), ValueError,
     r"weight_l2 must be a finite number >= 0; got -0.0005"),
    (lambda: pn.dense(2, 3, bias_l1=float("nan")), ValueError, r"bias_l1 must be a finite"),
    (lambda: pn.dense(0, 3), ValueError, r"n_inputs must be a positive integer \(>= 1\); got 0"),
    (lambda: pn.dense(2, -1), ValueError, r"n_neurons must be a positive integer \(>= 1\); got -1"),
    (lambda: pn.dense(2.5, 3), TypeError, r"n_inputs must be a positive integer; got 2.5"),
    (lambda: pn.serial(pn.dense(2, 3), pn.relu), TypeError,
     r"argument 1 must be a Layer.*pn.relu\(\)"),
    (lambda: pn.serial(pn.dense(2, 3)).apply(({},), jnp.ones((1, 2))), TypeError,
     r"params must be a dict with keys 'weights' and 'biases'"),
    (lambda: pn.serial(pn.dense(2, 3), pn.relu()).apply((), jnp.ones((1, 2))), TypeError,
     r"params must be a tuple with one entry per layer \(2\), as init returns; got 0 entries"),
]


@pytest.mark.parametrize("call,error,message", ERRORS)
def test_bad_input_raises_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_shape_errors_are_raised_at_trace_time_under_jit(key):
    model = pn.serial(pn.dense(2, 64), pn.relu(), pn.dense(64, 3))
    params = model.init(key)
    apply = jax.jit(model.apply)
    with pytest.raises(ValueError, match=r"dense\(2, 64\): x must have shape \(N, 2\)"):
        apply(params, jnp.ones((5, 3)))
    with pytest.raises(ValueError, match=r"x must be 2-D"):
        apply(params, jnp.ones(2))
    wrong = params[:2] + ({"weights": np.zeros((64, 5)), "biases": np.zeros((1, 5))},)
    with pytest.raises(ValueError, match=r"params\['weights'\] must have shape \(64, 3\); "
                                         r"got \(64, 5\)"):
        apply(wrong, jnp.ones((5, 2)))


# --- layers as pytrees ----------------------------------------------------------------


@pytrees.dataclass
class Scaled:
    """A toy pytree dataclass: one static field between two leaves."""

    gain: Any
    width: int = pytrees.static(default=4)
    bias: Any = 0.0


def test_pytrees_dataclass_fields_are_leaves_in_order_and_static_fields_structure():
    one, wide = Scaled(2.0, bias=0.5), Scaled(2.0, width=8, bias=0.5)
    assert jax.tree.leaves(one) == [2.0, 0.5]
    assert jax.tree.structure(Scaled(3.0, bias=1.0)) == jax.tree.structure(one)
    assert jax.tree.structure(wide) != jax.tree.structure(one)
    assert Scaled(2.0, bias=0.5) == one and hash(Scaled(2.0, bias=0.5)) == hash(one)
    doubled = jax.tree.map(lambda leaf: 2 * leaf, one)
    assert doubled == Scaled(4.0, bias=1.0) and doubled.width == 4
    assert dataclasses.replace(one, width=8) == wide
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.gain = 3.0
    assert dataclasses.fields(Scaled)[1].metadata["static"] is True


def test_stack_and_unstack_are_one_program_each_and_keep_dtypes():
    trees = [(Scaled(float(s), bias=s), jnp.full((2, 3), s, jnp.float32),
              jax.random.key(s)) for s in range(3)]
    with compiles() as seen:
        stacked = pytrees.stack(trees)
        entries = [pytrees.unstack(stacked, i) for i in (0, 1, 2, -1)]
    assert [name for name, _ in seen] == ["jit(_stacked)", "jit(_entry)"]
    for leaf, *leaves in zip(jax.tree.leaves(stacked), *map(jax.tree.leaves, trees)):
        eager = jnp.stack(leaves)
        assert (leaf.shape, leaf.dtype) == (eager.shape, eager.dtype)
        assert getattr(leaf, "weak_type", None) == getattr(eager, "weak_type", None)
    for entry, tree in zip(entries, [*trees, trees[-1]]):
        assert jax.tree.structure(entry) == jax.tree.structure(tree)
        for a, b in zip(jax.tree.leaves(entry), jax.tree.leaves(tree)):
            if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
                a, b = jax.random.key_data(a), jax.random.key_data(b)
            np.testing.assert_array_equal(a, b)
    with pytest.raises(IndexError, match="unstack: entry 3 of a stack of 3"):
        pytrees.unstack(stacked, 3)
    assert pytrees.unstack((), 0) == ()  # a stateless optimizer's (empty) state


def test_a_models_leaves_are_its_hyperparameters_in_layer_and_field_order():
    model = pn.serial(pn.dense(2, 8, weight_l2=5e-4, bias_l1=1e-4, dtype=jnp.float32),
                      pn.relu(), pn.dropout(0.1), pn.dense(8, 3, weight_l1=2e-4))
    assert jax.tree.leaves(model) == [5e-4, 1e-4, 0.1, 2e-4]
    rebuilt = jax.tree.unflatten(jax.tree.structure(model), jax.tree.leaves(model))
    assert rebuilt == model and hash(rebuilt) == hash(model)
    assert dataclasses.replace(model.layers[0], n_neurons=4).n_neurons == 4
    custom = pn.layers.custom(lambda key: (), lambda params, x, **kwargs: x)
    assert jax.tree.leaves(custom) == []  # functions are static: part of the structure
