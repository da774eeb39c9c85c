"""Regression, the book's chapter 17: the linear output, mean squared and mean absolute
error against the book's NumPy classes (in float64: marked ``x64``), their Loss objects
and the regression accuracy, and ``purenn book regression``."""

import dataclasses
import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import purenn as pn
from purenn import cli, experiments
from tests.reference import book

RTOL_FORWARD = 1e-12
RTOL_GRAD = 1e-10

OPS = {"mse": (pn.ops.mean_squared_error, book.Loss_MeanSquaredError),
       "mae": (pn.ops.mean_absolute_error, book.Loss_MeanAbsoluteError)}


def rng(seed=0):
    return np.random.default_rng(seed)


def regression_case(outputs=3, seed=0):
    """Predictions and targets ``(8, outputs)``; row 0 predicts its targets exactly (the
    absolute error's kink: the book's sign gives 0 there)."""
    y_pred = rng(seed).standard_normal((8, outputs))
    y_true = rng(seed + 1).standard_normal((8, outputs))
    y_true[0] = y_pred[0]
    return y_pred, y_true


# --- the ops against the book ---------------------------------------------------------


@pytest.mark.x64
@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("outputs", [1, 3])
def test_regression_losses_equal_the_book(name, outputs):
    op, reference = OPS[name]
    y_pred, y_true = regression_case(outputs)
    loss, grad = jax.value_and_grad(op)(jnp.asarray(y_pred), y_true)
    ref = reference()
    ref.backward(y_pred, y_true)
    np.testing.assert_allclose(loss, ref.calculate(y_pred, y_true), rtol=RTOL_FORWARD)
    np.testing.assert_allclose(grad, ref.dinputs, rtol=RTOL_GRAD)
    assert np.all(np.asarray(grad)[0] == 0)  # a prediction equal to its target


@pytest.mark.x64
def test_mean_absolute_error_descends_unlike_the_books_printed_sign():
    # The book prints sign(y_true - y_pred) / J / N: a step along minus that gradient
    # would raise the loss. purenn's gradient lowers it.
    y_pred, y_true = regression_case()
    grad = jax.grad(pn.ops.mean_absolute_error)(jnp.asarray(y_pred), y_true)
    printed = np.sign(y_true - y_pred) / 3 / 8
    np.testing.assert_allclose(grad, -printed, rtol=RTOL_GRAD)
    step = 1e-3
    assert (pn.ops.mean_absolute_error(y_pred - step * grad, y_true)
            < pn.ops.mean_absolute_error(y_pred, y_true)
            < pn.ops.mean_absolute_error(y_pred - step * printed, y_true))


@pytest.mark.x64
@pytest.mark.parametrize("name", OPS)
def test_regression_losses_check_grads_in_predictions_and_targets(name):
    op, _ = OPS[name]
    y_pred, y_true = regression_case(seed=3)
    y_true[0] += 0.5  # away from the absolute error's kink
    check_grads(op, [jnp.asarray(y_pred), jnp.asarray(y_true)], order=1, modes=["rev"])


@pytest.mark.parametrize("name", OPS)
def test_regression_losses_preserve_float32(name):
    op, _ = OPS[name]
    y_pred, y_true = (jnp.asarray(a, jnp.float32) for a in regression_case())
    loss, (d_pred, d_true) = jax.value_and_grad(op, argnums=(0, 1))(y_pred, y_true)
    assert loss.dtype == d_pred.dtype == d_true.dtype == jnp.float32
    ref = OPS[name][1]()
    ref.backward(np.asarray(y_pred, np.float64), np.asarray(y_true, np.float64))
    np.testing.assert_allclose(d_pred, ref.dinputs, rtol=1e-5, atol=1e-7)


def test_regression_losses_refuse_targets_of_another_shape():
    y_pred = jnp.zeros((4, 1))
    with pytest.raises(ValueError, match=r"mean_squared_error: y_true must have y_pred's "
                                         r"shape \(4, 1\).*got \(4,\).*reshape\(-1, 1\)"):
        pn.losses.mean_squared_error(y_pred, jnp.zeros(4))
    with pytest.raises(ValueError, match=r"mean_absolute_error: y_true must have y_pred's "
                                         r"shape \(4, 1\), one target per output; got \(4, 2\)$"):
        pn.ops.mean_absolute_error(y_pred, jnp.zeros((4, 2)))


# --- accuracy, the Loss objects, the linear layer --------------------------------------


@pytest.mark.x64
def test_regression_accuracy_is_the_books():
    y = np.sin(2 * np.pi * np.arange(200) / 200)[:, None]
    y_pred = y + rng().standard_normal(y.shape) * np.std(y) / 250
    expected = book.regression_accuracy(y_pred, y)
    assert 0.5 < expected < 0.9  # some in, some out
    assert float(pn.losses.regression_accuracy(jnp.asarray(y_pred), y)) == expected


def test_regression_losses_say_what_they_are():
    for loss, op in ((pn.losses.mean_squared_error, pn.ops.mean_squared_error),
                     (pn.losses.mean_absolute_error, pn.ops.mean_absolute_error)):
        said = pn.losses.properties(loss)
        assert (said.name, said.accuracy, said.from_logits, said.targets) == (
            op.__name__, pn.losses.regression_accuracy, None, None)
        assert loss.__doc__ == op.__doc__


def test_linear_layer_is_the_identity_both_ways(key):
    layer = pn.linear()
    x = jax.random.normal(key, (5, 2))
    assert layer.init(key) == () and layer == pn.linear()
    assert np.array_equal(layer.apply((), x), x)
    dvalues = jax.random.normal(jax.random.key(1), (5, 2))
    ref = book.Activation_Linear()
    ref.forward(np.asarray(x))
    ref.backward(np.asarray(dvalues))
    _, pullback = jax.vjp(lambda v: layer.apply((), v), x)
    assert np.array_equal(pullback(dvalues)[0], ref.dinputs)


# --- purenn book regression -------------------------------------------------------------


def test_book_regression_is_the_books_model_prints_the_books_lines_and_plots(capsys,
                                                                            tmp_path):
    config = experiments.BOOK["regression"].config
    model, loss, optimizer = experiments.components(config)
    init = pn.initializers.book(0.1)
    assert model == pn.serial(pn.dense(1, 64, weight_init=init), pn.relu(),
                              pn.dense(64, 64, weight_init=init), pn.relu(),
                              pn.dense(64, 1, weight_init=init), pn.linear())
    assert loss is pn.losses.mean_squared_error
    assert optimizer == pn.optimizers.adam(learning_rate=0.005, decay=1e-3)
    assert config.epochs == 10001
    path = tmp_path / "regression.png"
    plot = ["--plot", str(path)] if importlib.util.find_spec("matplotlib") else []
    assert cli.main(["book", "regression", "--epochs", "201", "--quiet", *plot]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("epoch: 200, acc: ")
    printed = float(line.rsplit("lr: ", 1)[1])  # the book's: the rate of the step before
    assert printed == pytest.approx(0.005 / (1 + 1e-3 * 199), rel=1e-6)
    assert not plot or path.read_bytes().startswith(b"\x89PNG")


@pytest.fixture(scope="module")
def short_run():
    """The book's regression, 201 epochs: the command's programs, compiled once."""
    with jax.enable_x64(False):
        config = dataclasses.replace(experiments.BOOK["regression"].config, epochs=201)
        return experiments.run(config, 0, log_fn=None, progress=False)


def test_evaluate_and_predict_a_regression(short_run):
    run = short_run
    assert run.history["loss"][-1] < 0.1 * run.history["loss"][0]
    loss = pn.losses.mean_squared_error
    outputs = pn.predict(run.model, loss, run.params, run.X)  # the outputs themselves
    np.testing.assert_allclose(outputs, run.model.apply(run.params, run.X), rtol=1e-5,
                               atol=1e-6)
    metrics = pn.evaluate(run.model, loss, run.params, run.X, run.y)
    assert metrics["loss"] == pytest.approx(float(jnp.mean((outputs - run.y) ** 2)),
                                            rel=1e-4)
    assert metrics["accuracy"] == pytest.approx(
        book.regression_accuracy(np.asarray(outputs), np.asarray(run.y)), abs=0.002)


def test_the_plot_draws_the_fitted_curve_over_the_data(short_run):
    pytest.importorskip("matplotlib")
    from purenn import plotting

    run = short_run
    fit_panel = plotting.figure_run(run, regression=True).axes[0]
    (curve,) = fit_panel.get_lines()
    x, outputs = curve.get_data()
    assert x.min() < 0 and x.max() > 1  # the data's range, [0, 1), and a margin
    np.testing.assert_allclose(outputs, np.asarray(run.model.apply(
        run.params, jnp.asarray(x[:, None], jnp.float32)))[:, 0], rtol=1e-5, atol=1e-6)
    (points,) = fit_panel.collections
    np.testing.assert_array_equal(points.get_offsets(), np.hstack([run.X, run.y]))


@pytest.mark.slow
@pytest.mark.optimized  # 10001 epochs
def test_book_regression_lands_near_the_books_result():
    result = experiments.run(experiments.BOOK["regression"].config, 0, log_fn=None,
                             progress=False)
    assert result.history["accuracy"][-1] > 0.8  # the book's chapter 17 ends near 0.9
    assert result.history["loss"][-1] < 1e-4
