"""What a practitioner reaches for after the book: validation curves, early stopping,
continuing a run, predict, output-layer guards, optax interoperability, and what autodiff
does and does not pass through the hand-written VJPs.

Every case builds its arrays inside ``jax.enable_x64(False)`` (float32, the mode users run)
or ``jax.enable_x64(True)`` (float64, where bit-exactness against a formula is asked), so
the tests mean the same whatever the session's default.
"""

import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purenn as pn

CCE = pn.losses.softmax_categorical_crossentropy
PROBS = pn.losses.categorical_crossentropy
BCE = pn.losses.binary_crossentropy


def x64():
    return jax.enable_x64(True)


def f32():
    return jax.enable_x64(False)


def tiny(dropout=0.1):
    """The one model structure most tests share, so they share compiled programs."""
    return pn.serial(pn.dense(2, 8), pn.relu(), pn.dropout(dropout), pn.dense(8, 3))


def spirals():
    X, y = pn.data.spiral(jax.random.key(1), 20, 3)  # 60 samples: overfits within epochs
    X_val, y_val = pn.data.spiral(jax.random.key(5), 20, 3)
    return X, y, X_val, y_val


def assert_identical(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for left, right in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        left, right = np.asarray(left), np.asarray(right)
        assert left.dtype == right.dtype
        assert np.array_equal(left, right)


# --- 1. validation during training -----------------------------------------------------


@pytest.fixture(scope="module")
def validated_run():
    """25 epochs, a log line every 10, validation data: float32."""
    with f32():
        X, y, X_val, y_val = spirals()
        model = tiny()
        params = model.init(jax.random.key(2))
        opt = pn.optimizers.adam(learning_rate=0.05)
        lines = []
        out = pn.fit(model, CCE, opt, params, X, y, key=jax.random.key(3), epochs=25,
                     log_every=10, validation_data=(X_val, y_val), log_fn=lines.append)
        eleven = pn.fit(model, CCE, opt, params, X, y, key=jax.random.key(3), epochs=11,
                        log_fn=None)
        return dict(model=model, params=params, data=(X, y, X_val, y_val), out=out,
                    lines=lines, eleven=eleven)


def test_validation_is_evaluated_at_each_log_line_and_at_the_end(validated_run):
    model, (_, _, X_val, y_val) = validated_run["model"], validated_run["data"]
    trained, _, history = validated_run["out"]
    with f32():
        assert history["val_epoch"].tolist() == [0, 10, 20, 24]
        assert len(history["val_loss"]) == len(history["val_accuracy"]) == 4
        final = pn.evaluate(model, CCE, trained, X_val, y_val)
        assert history["validation"] == final  # the same program as evaluate: same bits
        assert history["val_loss"][-1] == final["loss"]
        assert history["val_accuracy"][-1] == final["accuracy"]
        # The point at epoch 10 is the model after epochs 0..10, in inference mode.
        at_10 = pn.evaluate(model, CCE, validated_run["eleven"][0], X_val, y_val)
        assert history["val_loss"][1] == at_10["loss"]
        assert history["val_accuracy"][1] == at_10["accuracy"]
        logits = model.apply(trained, X_val)  # train=False: dropout off
        assert final["loss"] == pytest.approx(float(CCE(logits, y_val)), rel=1e-6)


def test_the_run_ends_with_the_last_epoch_line_then_the_books_validation_line(validated_run):
    lines = validated_run["lines"]
    _, _, history = validated_run["out"]
    epochs = [int(re.match(r"epoch: (\d+), acc: ", line)[1]) for line in lines[:-1]]
    assert epochs == [0, 10, 20, 24]
    assert lines[-1] == pn.train.format_validation_line(history["validation"])
    assert re.fullmatch(r"validation, acc: \d\.\d{3}, loss: \d\.\d{3}", lines[-1])


def test_validation_is_one_compiled_program_whatever_the_epochs():
    traces = []

    def counting_loss(y_pred, y_true):
        traces.append(1)  # once per trace: the training program, the evaluation program
        return CCE(y_pred, y_true)

    with f32():
        X, y, X_val, y_val = spirals()
        model = tiny()
        params = model.init(jax.random.key(2))
        for epochs, log_every in ((21, 5), (33, 7)):
            _, _, history = pn.fit(model, counting_loss, pn.optimizers.adam(), params, X, y,
                                   key=jax.random.key(0), epochs=epochs, log_every=log_every,
                                   validation_data=(X_val, y_val), log_fn=None)
            expected = sorted(set(range(0, epochs, log_every)) | {epochs - 1})
            assert history["val_epoch"].tolist() == expected
    assert len(traces) == 2


def test_without_validation_data_history_has_no_validation_entries(validated_run):
    _, _, history = validated_run["eleven"]
    assert not {"val_epoch", "val_loss", "val_accuracy", "validation", "best_epoch"} & set(
        history)


# --- 2. early stopping -------------------------------------------------------------------


@pytest.fixture(scope="module")
def early_stopped():
    with f32():
        X, y, X_val, y_val = spirals()
        model = tiny()
        params = model.init(jax.random.key(2))
        opt = pn.optimizers.adam(learning_rate=0.05)
        lines = []
        out = pn.fit(model, CCE, opt, params, X, y, key=jax.random.key(3), epochs=400,
                     log_every=10, validation_data=(X_val, y_val), patience=3,
                     log_fn=lines.append)
        best = out[2]["best_epoch"]
        exact = pn.fit(model, CCE, opt, params, X, y, key=jax.random.key(3), epochs=best + 1,
                       log_fn=None)
        return dict(model=model, data=(X_val, y_val), out=out, exact=exact, lines=lines)


def test_early_stopping_stops_after_patience_evaluations_without_improvement(early_stopped):
    _, _, history = early_stopped["out"]
    losses, epochs = history["val_loss"], history["val_epoch"]
    best = int(np.argmin(losses))  # the first of equal minima: only a lower loss counts
    assert history["best_epoch"] == epochs[best]
    assert 0 < history["best_epoch"]
    # Stopped at the 3rd evaluation after the best, none of them lower ...
    assert len(losses) == best + 3 + 1
    assert np.all(losses[best + 1:] >= losses[best])
    # ... and not before: every earlier stretch had a new best within 3 evaluations.
    record = np.minimum.accumulate(losses)
    improved = np.flatnonzero(np.r_[True, record[1:] < record[:-1]])
    assert np.all(np.diff(improved) <= 3)
    # Training stopped there: the history ends at the last evaluation, far before 400.
    assert history["epoch"][-1] == epochs[-1] < 399
    assert len(history["loss"]) == epochs[-1] + 1


def test_early_stopping_returns_the_best_params_bit_identical(early_stopped):
    params, opt_state, history = early_stopped["out"]
    exact_params, exact_state, _ = early_stopped["exact"]
    assert_identical(params, exact_params)
    assert_identical(opt_state, exact_state)
    with f32():
        assert history["validation"] == pn.evaluate(early_stopped["model"], CCE, params,
                                                    *early_stopped["data"])
    lines = early_stopped["lines"]
    assert re.fullmatch(rf"early stopping after epoch {history['epoch'][-1]}: no lower "
                        rf"validation loss in 3 evaluations; returning the params of epoch "
                        rf"{history['best_epoch']} \(validation loss \d\.\d{{3}}\)", lines[-2])
    assert lines[-1].startswith("validation, acc: ")


@pytest.mark.parametrize("patience,validation,error,message", [
    (3, False, ValueError, r"patience needs validation_data=\(X_val, y_val\)"),
    (0, True, ValueError, r"patience must be a positive integer .* got 0"),
    (True, True, ValueError, r"patience must be a positive integer .* got True"),
])
def test_patience_arguments_are_checked(patience, validation, error, message):
    with f32():
        X, y, X_val, y_val = spirals()
        model = tiny()
        with pytest.raises(error, match=message):
            pn.fit(model, CCE, pn.optimizers.adam(), model.init(jax.random.key(2)), X, y,
                   key=jax.random.key(0), epochs=5, patience=patience, log_fn=None,
                   validation_data=(X_val, y_val) if validation else None)


# --- 3. continuing a run ------------------------------------------------------------------


@pytest.mark.parametrize("enable_x64", [False, True], ids=["float32", "float64"])
def test_40_then_60_epochs_with_initial_epoch_equal_100_in_one_call(enable_x64):
    with jax.enable_x64(enable_x64):
        X, y, X_val, y_val = spirals()
        model = tiny()
        params = model.init(jax.random.key(2))
        opt = pn.optimizers.adam(learning_rate=0.05, decay=5e-3)
        common = dict(key=jax.random.key(3), batch_size=16, log_every=10, log_fn=None,
                      validation_data=(X_val, y_val))  # 60 samples: 3 batches of 16 + 12
        whole_params, whole_state, whole = pn.fit(model, CCE, opt, params, X, y, epochs=100,
                                                  **common)
        params_40, state_40, first = pn.fit(model, CCE, opt, params, X, y, epochs=40,
                                            **common)
        params_100, state_100, rest = pn.fit(model, CCE, opt, params_40, X, y, epochs=60,
                                             initial_epoch=40, opt_state=state_40, **common)
    assert params_100[0]["weights"].dtype == (jnp.float64 if enable_x64 else jnp.float32)
    assert_identical(params_100, whole_params)
    assert_identical(state_100, whole_state)
    assert rest["epoch"].tolist() == list(range(40, 100))
    for name in pn.train.METRICS + ("epoch",):
        assert np.array_equal(np.concatenate([first[name], rest[name]]), whole[name]), name
    assert rest["val_epoch"].tolist() == [40, 50, 60, 70, 80, 90, 99]
    at = {int(e): i for i, e in enumerate(whole["val_epoch"])}
    for i, epoch in enumerate(rest["val_epoch"][1:], start=1):
        assert rest["val_loss"][i] == whole["val_loss"][at[int(epoch)]]


# --- 4. predict --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained64():
    with x64():
        X, y, _, _ = spirals()
        model = tiny(dropout=0.5)
        params, _, _ = pn.fit(model, CCE, pn.optimizers.adam(learning_rate=0.05),
                              model.init(jax.random.key(2)), X, y, key=jax.random.key(3),
                              epochs=30, log_fn=None)
        return model, params, X


def test_predict_is_the_softmax_of_the_logits_in_inference_mode(trained64):
    model, params, X = trained64
    with x64():
        probs = pn.predict(model, CCE, params, X)
        expected = pn.ops.softmax(model.apply(params, X))  # train=False: dropout off
        assert probs.shape == (60, 3) and probs.dtype == jnp.float64
        np.testing.assert_allclose(probs, expected, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(probs, jax.nn.softmax(model.apply(params, X)), rtol=1e-12)
        np.testing.assert_allclose(np.sum(probs, axis=1), 1, rtol=1e-12)
        assert np.array_equal(probs, pn.predict(model, CCE, params, X))  # no dropout draws


@pytest.mark.parametrize("batch_size", [7, 60, 1000])
def test_predict_in_batches_equals_predict_at_once(trained64, batch_size):
    model, params, X = trained64
    with x64():
        whole = pn.predict(model, CCE, params, X)
        batched = pn.predict(model, CCE, params, X, batch_size=batch_size)
        assert batched.shape == whole.shape
        np.testing.assert_allclose(batched, whole, rtol=1e-12, atol=1e-15)


def test_predict_in_batches_is_one_program_the_last_batch_padded():
    traces = []

    def apply(params, x, *, key=None, train=False):
        traces.append(x.shape)  # once per trace
        return pn.ops.dense(x, params["weights"], params["biases"])

    layer = pn.layers.custom(lambda key: pn.dense(2, 3).init(key), apply)
    with f32():
        model = pn.serial(layer)
        params = model.init(jax.random.key(0))
        X, _, _, _ = spirals()
        for n in (60, 31, 7):  # X of fewer rows than a batch: test_predict_sizes.py
            probs = pn.predict(model, CCE, params, X[:n], batch_size=7)
            assert probs.shape == (n, 3)
            logits = X[:n] @ params[0]["weights"] + params[0]["biases"]
            np.testing.assert_allclose(probs, jax.nn.softmax(logits), rtol=1e-6)
    assert traces == [(7, 2)]


def test_predict_of_probability_losses_is_the_models_output():
    with f32():
        X, y = pn.data.spiral(jax.random.key(1), 10, 2)
        binary = pn.serial(pn.dense(2, 4), pn.relu(), pn.dense(4, 1), pn.sigmoid())
        params = binary.init(jax.random.key(0))
        probs = pn.predict(binary, BCE, params, X, batch_size=8)
        assert probs.shape == (20, 1)
        np.testing.assert_allclose(probs, binary.apply(params, X), rtol=1e-6)
        softmax_last = pn.serial(pn.dense(2, 3), pn.softmax())
        params = softmax_last.init(jax.random.key(0))
        np.testing.assert_allclose(pn.predict(softmax_last, PROBS, params, X),
                                   softmax_last.apply(params, X), rtol=1e-6)


LAYER_CLASSES = [pn.layers.Layer, pn.layers.Dense, pn.layers.Relu, pn.layers.Sigmoid,
                 pn.layers.Softmax, pn.layers.Dropout, pn.layers.Serial, pn.layers.Custom]


@pytest.mark.parametrize("cls", LAYER_CLASSES, ids=lambda c: c.__name__)
def test_every_layers_apply_documents_shapes_train_and_key(cls):
    doc = cls.apply.__doc__ or ""
    assert "train" in doc and "key" in doc, doc
    assert "shape" in doc or "(N, " in doc, doc


# --- 5. output-layer guards -----------------------------------------------------------------

GUARDS = [
    (lambda: pn.serial(pn.dense(2, 4), pn.relu(), pn.dense(4, 3), pn.softmax()), CCE,
     r"the model's last layer, model.layers\[3\], is a softmax layer, but "
     r"softmax_categorical_crossentropy expects logits and applies the softmax itself: "
     r"remove the softmax layer"),
    (lambda: pn.serial(pn.dense(2, 3), pn.softmax(), pn.dropout(0.1)), CCE,
     r"model.layers\[1\], is a softmax layer.*expects logits.*remove the softmax layer"),
    (lambda: pn.serial(pn.dense(2, 4), pn.relu(), pn.dense(4, 3)), PROBS,
     r"the model's last layer, model.layers\[2\], is a dense layer, which does not output "
     r"probabilities, but categorical_crossentropy expects probabilities: add pn.softmax\(\) "
     r"as the last layer, or use softmax_categorical_crossentropy on the logits"),
    (lambda: pn.serial(pn.dense(2, 4), pn.relu(), pn.dense(4, 1), pn.relu()), BCE,
     r"model.layers\[3\], is a relu layer, which does not output probabilities, but "
     r"binary_crossentropy expects probabilities: add pn.sigmoid\(\) as the last layer"),
    (lambda: pn.dense(2, 1), BCE, r"the model is a dense layer, which does not output "
                                  r"probabilities.*add pn.sigmoid\(\)"),
]
ENTRY_POINTS = {
    "train_step": lambda m, loss, p, X, y: pn.train_step(m, loss, pn.optimizers.adam()),
    "fit": lambda m, loss, p, X, y: pn.fit(m, loss, pn.optimizers.adam(), p, X, y,
                                           key=jax.random.key(0), epochs=1, log_fn=None),
    "evaluate": lambda m, loss, p, X, y: pn.evaluate(m, loss, p, X, y),
    "predict": lambda m, loss, p, X, y: pn.predict(m, loss, p, X),
}


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("make,loss,message", GUARDS)
def test_a_last_layer_that_does_not_fit_the_loss_is_refused(make, loss, message, entry):
    with f32():
        model = make()
        params = model.init(jax.random.key(0))
        X = jnp.zeros((4, 2))
        binary = pn.losses.properties(loss).targets == "binary"
        y = jnp.zeros((4, 1)) if binary else jnp.zeros(4, jnp.int32)
        with pytest.raises(ValueError, match=message):
            ENTRY_POINTS[entry](model, loss, params, X, y)


@pytest.mark.parametrize("loss", [CCE, PROBS, BCE], ids=lambda f: f.__name__)
def test_a_custom_last_layer_passes_the_guards(loss):
    squash = pn.layers.custom(lambda key: (), lambda p, x, *, key=None, train=False:
                              jax.nn.sigmoid(x))
    with f32():
        model = pn.serial(pn.dense(2, 1), squash)
        params = model.init(jax.random.key(0))
        pn.train_step(model, loss, pn.optimizers.adam())  # built: no error
        pn.train.check_output_layer(model, loss)
        assert pn.predict(model, loss, params, jnp.zeros((3, 2))).shape == (3, 1)


# --- 6. optimizers by duck typing; optax ---------------------------------------------------


class PlainSgd:
    """A hand-made transformation: a plain class with init and update, nothing else."""

    def __init__(self, learning_rate):
        self.learning_rate = learning_rate

    def init(self, params):
        del params  # unused
        return ()

    def update(self, grads, state, params=None):
        del params  # unused
        return jax.tree.map(lambda g: -self.learning_rate * g, grads), state


@dataclasses.dataclass
class DataclassSgd:
    """A mutable dataclass: equal by value but unhashable (``__hash__`` is None)."""

    learning_rate: float

    def init(self, params):
        return ()

    def update(self, grads, state, params=None, **extra_args):
        return jax.tree.map(lambda g: -self.learning_rate * g, grads), state


def closure_sgd(learning_rate):
    return pn.optimizers.GradientTransformation(
        lambda params: (),
        lambda grads, state, params=None: (
            jax.tree.map(lambda g: -learning_rate * g, grads), state))


HAND_MADE = {"plain class": PlainSgd, "dataclass": DataclassSgd, "closures": closure_sgd}


@pytest.fixture(scope="module")
def sgd_reference():
    with x64():
        X, y, _, _ = spirals()
        model = tiny(dropout=0.0)
        params = model.init(jax.random.key(2))
        out = pn.fit(model, CCE, pn.optimizers.sgd(learning_rate=0.5), params, X, y,
                     key=jax.random.key(3), epochs=8, log_fn=None)
        return model, params, (X, y), out


@pytest.mark.parametrize("make", HAND_MADE.values(), ids=HAND_MADE)
def test_a_hand_made_transformation_works_in_train_step_fit_and_chain(make, sgd_reference):
    model, params, (X, y), (expected, _, expected_history) = sgd_reference
    with x64():
        opt = make(0.5)
        step = pn.train_step(model, CCE, opt)
        stepped, state, metrics = step(params, opt.init(params), X, y, jax.random.key(0))
        assert state == () and "learning_rate" not in metrics
        grads = jax.grad(lambda p: CCE(model.apply(p, X), y) + model.penalty(p))(params)
        np.testing.assert_allclose(stepped[0]["weights"],
                                   params[0]["weights"] - 0.5 * grads[0]["weights"],
                                   rtol=1e-12)
        # In a chain, in fit: g, then -0.5 g, as purenn's sgd(0.5): the same bits.
        chained = pn.optimizers.chain(make(-1.0), make(0.5))
        trained, _, history = pn.fit(model, CCE, chained, params, X, y,
                                     key=jax.random.key(3), epochs=8, log_fn=None)
    assert "learning_rate" not in history
    assert_identical(trained, expected)
    assert np.array_equal(history["loss"], expected_history["loss"])
    assert history["loss"][-1] < history["loss"][0]


def test_an_unhashable_transformation_never_reuses_a_program_built_for_old_values():
    with f32():
        X, y, _, _ = spirals()
        model = tiny(dropout=0.0)
        params = model.init(jax.random.key(2))
        opt = DataclassSgd(0.5)
        first = pn.fit(model, CCE, opt, params, X, y, key=jax.random.key(3), epochs=3,
                       log_fn=None)[0]
        opt.learning_rate = 0.0  # mutated in place: the next fit must see it
        second = pn.fit(model, CCE, opt, params, X, y, key=jax.random.key(3), epochs=3,
                        log_fn=None)[0]
    assert not np.array_equal(first[0]["weights"], params[0]["weights"])
    assert_identical(second, params)


def test_objects_without_init_and_update_are_refused():
    with pytest.raises(TypeError, match=r"optimizer must have init and update methods"):
        pn.train_step(tiny(), CCE, object())
    with pytest.raises(TypeError, match=r"chain: argument 1 must be an optimizer"):
        pn.optimizers.chain(PlainSgd(0.1), "adam")


@pytest.fixture(scope="module")
def optax():
    return pytest.importorskip("optax")


def test_fit_with_optax_adam_trains(optax):
    with f32():
        X, y, _, _ = spirals()
        model = tiny()
        lines = []
        _, state, history = pn.fit(model, CCE, optax.adam(1e-3), model.init(jax.random.key(2)),
                                   X, y, key=jax.random.key(3), epochs=200, log_every=100,
                                   log_fn=lines.append)
        assert "learning_rate" not in history  # optax.adam's state holds no rate
        assert history["loss"][-1] < history["loss"][0] - 0.01
        assert np.all(np.diff(history["loss"][::20]) < 0)  # falls steadily, dropout or not
        assert int(state[0].count) == 200
        assert all(", lr: " not in line for line in lines)


def test_inject_hyperparams_of_purenn_adam_equals_purenn_adam_bit_for_bit(optax):
    with f32():
        X, y, _, _ = spirals()
        model = tiny()
        params = model.init(jax.random.key(2))
        common = dict(key=jax.random.key(3), epochs=30, batch_size=16, log_fn=None)
        injected = optax.inject_hyperparams(pn.optimizers.adam)(learning_rate=0.02,
                                                                 decay=1e-2)
        p1, s1, h1 = pn.fit(model, CCE, injected, params, X, y, **common)
        p2, s2, h2 = pn.fit(model, CCE, pn.optimizers.adam(0.02, decay=1e-2), params, X, y,
                            **common)
    assert_identical(p1, p2)
    assert_identical(s1.inner_state, s2)
    for name in pn.train.METRICS:  # learning_rate: the decayed rate, as purenn's adam logs
        assert np.array_equal(h1[name], h2[name]), name
    assert h1["learning_rate"][-1] < 0.02


def test_the_log_line_lr_of_an_injected_optax_rate_comes_from_the_hyperparams(optax):
    with f32():
        X, y, _, _ = spirals()
        model = tiny()
        params = model.init(jax.random.key(2))
        opt = optax.inject_hyperparams(optax.sgd)(learning_rate=0.05)
        state = opt.init(params)
        state.hyperparams["learning_rate"] = jnp.asarray(0.125)  # lowered by the user
        lines = []
        _, state, history = pn.fit(model, CCE, opt, params, X, y, key=jax.random.key(3),
                                   epochs=11, log_every=10, opt_state=state,
                                   log_fn=lines.append)
    assert np.all(history["learning_rate"] == np.float32(0.125))
    assert [line.rsplit(", ", 1)[1] for line in lines] == ["lr: 0.125"] * 2


def test_optax_transformations_in_purenn_chain_and_purenn_optimizers_in_optax_chain(optax):
    with f32():
        X, y, _, _ = spirals()
        model = tiny()
        params = model.init(jax.random.key(2))
        extra_args = optax.with_extra_args_support(optax.sgd(0.1))
        assert isinstance(extra_args, optax.GradientTransformationExtraArgs)
        step = pn.train_step(model, CCE, extra_args)
        _, _, metrics = step(params, extra_args.init(params), X, y, jax.random.key(0))
        assert np.isfinite(float(metrics["loss"]))
        for opt in (pn.optimizers.chain(optax.clip_by_global_norm(1.0),
                                        pn.optimizers.adam(0.02)),
                    optax.chain(optax.clip_by_global_norm(1.0), pn.optimizers.adam(0.02))):
            _, _, history = pn.fit(model, CCE, opt, params, X, y, key=jax.random.key(3),
                                   epochs=20, log_fn=None)
            assert history["loss"][-1] < history["loss"][0]
            assert np.all(history["learning_rate"] == np.float32(0.02))


# --- 7. autodiff through the hand-written VJPs ------------------------------------------------


def two_layer_loss(ops):
    """The book's model and loss as a function of the first weights, written with purenn's
    ops or (``ops=None``) with plain jax.numpy."""
    X, y = pn.data.spiral(jax.random.key(1), 4, 3)
    k1, k2 = jax.random.split(jax.random.key(7))
    w2 = jax.random.normal(k1, (5, 3), X.dtype)
    b1 = 0.1 * jax.random.normal(k2, (1, 5), X.dtype)
    b2 = jnp.zeros((1, 3), X.dtype)

    def loss(w1):
        if ops:
            hidden = pn.ops.relu(pn.ops.dense(X, w1, b1))
            data = pn.ops.softmax_categorical_crossentropy(pn.ops.dense(hidden, w2, b2), y)
            return data + pn.ops.l2_penalty(w1, 5e-4)
        hidden = jnp.maximum(X @ w1 + b1, 0)
        logits = hidden @ w2 + b2
        data = -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(len(y)), y])
        return data + 5e-4 * jnp.sum(w1 * w1)

    return loss


def test_jax_hessian_works_forward_over_the_hand_written_backward():
    with x64():
        w1 = jax.random.normal(jax.random.key(8), (2, 5))
        hessian = jax.jit(jax.hessian(two_layer_loss(ops=True)))(w1)
        expected = jax.jit(jax.hessian(two_layer_loss(ops=False)))(w1)
        assert hessian.shape == (2, 5, 2, 5)
        np.testing.assert_allclose(hessian, expected, rtol=1e-9, atol=1e-12)
        assert np.max(np.abs(expected)) > 1e-3  # not trivially zero
        # reverse over reverse too
        reverse_twice = jax.jit(jax.jacrev(jax.jacrev(two_layer_loss(ops=True))))(w1)
        np.testing.assert_allclose(reverse_twice, expected, rtol=1e-9, atol=1e-12)
        # Hessian-vector products, forward over reverse: jvp of grad.
        grad = jax.grad(two_layer_loss(ops=True))
        _, hvp = jax.jit(lambda w, v: jax.jvp(grad, (w,), (v,)))(w1, jnp.ones_like(w1))
        np.testing.assert_allclose(hvp, jnp.einsum("ijkl,kl->ij", expected, jnp.ones_like(w1)),
                                   rtol=1e-9, atol=1e-12)


def test_jax_hessian_of_sigmoid_and_binary_crossentropy():
    with x64():
        x = jax.random.normal(jax.random.key(0), (4, 3))
        targets = jnp.asarray(np.arange(12).reshape(4, 3) % 2, jnp.float64)

        def ours(x):
            return pn.ops.binary_crossentropy(pn.ops.sigmoid(x), targets)

        def plain(x):
            p = jax.nn.sigmoid(x)
            return jnp.mean(-(targets * jnp.log(p) + (1 - targets) * jnp.log(1 - p)))

        np.testing.assert_allclose(jax.jit(jax.hessian(ours))(x),
                                   jax.jit(jax.hessian(plain))(x), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("transform", ["jvp", "jacfwd", "linearize"])
def test_forward_mode_autodiff_is_refused_by_the_hand_written_vjps(transform):
    with x64():
        w1 = jax.random.normal(jax.random.key(8), (2, 5))
        loss = two_layer_loss(ops=True)
        call = {"jvp": lambda: jax.jvp(loss, (w1,), (w1,)),
                "jacfwd": lambda: jax.jacfwd(loss)(w1),
                "linearize": lambda: jax.linearize(loss, w1)[1](w1)}[transform]
        with pytest.raises(TypeError, match=r"can't apply forward-mode autodiff \(jvp\) to a "
                                            r"custom_vjp function"):
            call()


# --- plotting: validation curves and a loss scale that spikes do not flatten -----------------


def test_plot_draws_the_validation_curves_and_cuts_off_loss_spikes(validated_run, tmp_path):
    pytest.importorskip("matplotlib")
    from purenn import experiments, plotting

    model, (X, y, _, _) = validated_run["model"], validated_run["data"]
    params, opt_state, _ = validated_run["out"]
    epochs = np.arange(1000)
    loss = 0.2 + 0.9 * np.exp(-epochs / 100)
    loss[[300, 301, 700]] = [5.0, 2.0, 8.0]  # Adam's loss spikes, a few epochs long
    history = {"epoch": epochs, "loss": loss, "data_loss": loss - 0.05,
               "reg_loss": np.full(1000, 0.05), "accuracy": 1 - loss / 2,
               "val_epoch": np.r_[0:1000:100, 999], "val_loss": np.linspace(1.1, 0.4, 11),
               "val_accuracy": np.linspace(0.3, 0.8, 11)}
    validation = {"loss": 0.4, "accuracy": 0.8}
    run = experiments.Run(0, model, params, opt_state, X, y, history, validation)
    with f32():
        fig = plotting.figure_run(run, binary=False, title="t")
    _, losses, accuracies = fig.axes
    lines = {line.get_label(): line for line in losses.get_lines()}
    assert np.array_equal(lines["validation loss"].get_xdata(), history["val_epoch"])
    assert np.array_equal(lines["validation loss"].get_ydata(), history["val_loss"])
    assert np.array_equal(lines["loss"].get_ydata(), loss)
    acc = {line.get_label(): line for line in accuracies.get_lines()}
    assert np.array_equal(acc["validation acc"].get_ydata(), history["val_accuracy"])
    assert "final validation acc: 0.800" in acc
    bottom, top = losses.get_ylim()
    assert bottom == 0 and 1.1 < top < 2.0  # the curve fills the panel; spikes run off it
    assert losses.get_title() == f"loss (spikes above {top:.2g} cut off)"

    path = tmp_path / "run.png"
    with f32():
        plotting.plot_run(path, run, binary=False)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
