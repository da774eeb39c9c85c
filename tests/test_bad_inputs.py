"""One table of bad inputs across every public boundary, each with its message matched.

Each row: what a user might do wrong, the error type, and a regex the message must match
(it names the argument, what was expected and what was given).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purenn as pn

CCE = pn.losses.softmax_categorical_crossentropy
KEY = jax.random.key(0)
MODEL = pn.serial(pn.dense(2, 8, weight_l2=5e-4), pn.relu(), pn.dense(8, 3))
PARAMS = MODEL.init(KEY)
X = np.asarray(pn.data.spiral(jax.random.key(1), 10, 3)[0])
Y = np.repeat(np.arange(3, dtype=np.int32), 10)
BINARY = pn.serial(pn.dense(2, 4), pn.relu(), pn.dense(4, 1), pn.sigmoid())


def fit(**override):
    args = dict(model=MODEL, loss=CCE, optimizer=pn.optimizers.adam(), params=PARAMS, X=X,
                y=Y, key=KEY, epochs=1, log_fn=None)
    args.update(override)
    return pn.fit(**args)


def adam_update(grads):
    opt = pn.optimizers.adam()
    return opt.update(grads, opt.init(PARAMS), PARAMS)


ROWS = {
    # shapes and ranks, at trace time (apply) and where data enters (fit, evaluate)
    "wrong feature width": (lambda: MODEL.apply(PARAMS, jnp.ones((4, 3))), ValueError,
                            r"dense\(2, 8\): x must have shape \(N, 2\); got shape \(4, 3\)"),
    "wrong feature width under jit": (
        lambda: jax.jit(MODEL.apply)(PARAMS, jnp.ones((4, 3))), ValueError,
        r"x must have shape \(N, 2\); got shape \(4, 3\)"),
    "wrong rank": (lambda: MODEL.apply(PARAMS, jnp.ones(2)), ValueError,
                   r"x must be 2-D of shape \(N, 2\); got shape \(2,\)"),
    "wrong rank in fit": (lambda: fit(X=X[None]), ValueError,
                          r"X must be 2-D of shape \(samples, features\); got shape"),
    "integer inputs": (lambda: fit(X=np.ones((30, 2), np.int32)), TypeError,
                       r"X must have a floating dtype; got int32"),
    "sample-count mismatch": (lambda: fit(y=Y[:-1]), ValueError,
                              r"X and y must have the same number of samples; X has 30, y "
                              r"has 29"),
    "sample-count mismatch in evaluate": (
        lambda: pn.evaluate(MODEL, CCE, PARAMS, X, Y[:5]), ValueError,
        r"X and y must have the same number of samples"),
    # labels and targets
    "labels out of range": (lambda: fit(y=Y + 1), ValueError,
                            r"y labels must lie in \[0, 3\) for a model with 3 outputs; got "
                            r"values from 1 to 3"),
    "negative labels": (lambda: pn.evaluate(MODEL, CCE, PARAMS, X, Y - 1), ValueError,
                        r"got values from -1 to 1"),
    "float labels": (lambda: fit(y=Y.astype(np.float32)), TypeError,
                     r"y must hold integer class indices for a categorical loss; got dtype "
                     r"float32"),
    "float labels in a loss": (lambda: CCE(jnp.ones((3, 3)), jnp.array([0.0, 1.0, 2.0])),
                               TypeError, r"sparse labels y_true must be integers"),
    "labels as a column": (lambda: CCE(jnp.ones((3, 3)), jnp.zeros((3, 1), jnp.int32)),
                           ValueError, r"pass y_true.ravel\(\)"),
    "binary targets of the wrong shape": (
        lambda: fit(model=BINARY, loss=pn.losses.binary_crossentropy,
                    params=BINARY.init(KEY), y=Y % 2), ValueError,
        r"y must have the model output's shape \(30, 1\).*reshape\(-1, 1\)"),
    "binary targets not 0/1": (
        lambda: fit(model=BINARY, loss=pn.losses.binary_crossentropy,
                    params=BINARY.init(KEY), y=np.full((30, 1), 2.0)), ValueError,
        r"y must hold 0/1 targets"),
    # values
    "NaN inputs": (lambda: fit(X=np.where(np.arange(30)[:, None] == 4, np.nan, X)),
                   ValueError, r"X holds NaN or inf values \(first at row 4, column 0\)"),
    "inf inputs": (lambda: pn.evaluate(MODEL, CCE, PARAMS, np.full((30, 2), np.inf), Y),
                   ValueError, r"X holds NaN or inf values"),
    "empty data": (lambda: fit(X=X[:0], y=Y[:0]), ValueError, r"X is empty \(0 samples\)"),
    "empty batch in a loss": (lambda: CCE(jnp.zeros((0, 3)), jnp.zeros(0, jnp.int32)),
                              ValueError, r"y_pred of shape \(0, 3\) is empty; it needs at "
                                          r"least one sample"),
    "epochs < 1": (lambda: fit(epochs=0), ValueError, r"epochs must be >= 1; got 0"),
    "batch size too large": (lambda: fit(batch_size=31), ValueError,
                             r"batch_size must be between 1 and the number of samples \(30\)"),
    # keys
    "non-key key to fit": (lambda: fit(key=0), TypeError,
                           r"key must be a jax.random key, e.g. jax.random.key\(0\); got int"),
    "non-key key to init": (lambda: MODEL.init(np.zeros(3)), TypeError,
                            r"key must be a jax.random key.*shape \(3,\)"),
    "dropout without a key": (
        lambda: pn.dropout(0.5).apply((), jnp.ones((2, 2)), train=True), ValueError,
        r"dropout needs a key when train=True: apply\(params, x, key=k, train=True\)"),
    # layer hyperparameters
    "dropout rate 1": (lambda: pn.dropout(1.0), ValueError, r"rate must be in \[0, 1\)"),
    "dropout rate negative": (lambda: pn.dropout(-0.2), ValueError, r"rate must be in \[0, 1\)"),
    "negative strength": (lambda: pn.dense(2, 3, bias_l2=-1.0), ValueError,
                          r"bias_l2 must be a finite number >= 0; got -1.0"),
    "non-positive layer size": (lambda: pn.dense(2, 0), ValueError,
                                r"n_neurons must be a positive integer \(>= 1\); got 0"),
    # optimizers
    "zero learning rate": (lambda: pn.optimizers.adam(learning_rate=0.0), ValueError,
                           r"learning_rate must be a finite number > 0; got 0.0"),
    "negative decay": (lambda: pn.optimizers.sgd(decay=-1e-3), ValueError,
                       r"decay must be a finite number >= 0; got -0.001"),
    "negative momentum": (lambda: pn.optimizers.sgd(momentum=-0.5), ValueError,
                          r"momentum must be a finite number >= 0; got -0.5"),
    "beta_1 of 1": (lambda: pn.optimizers.adam(beta_1=1.0), ValueError,
                    r"beta_1 must be in \[0, 1\); got 1.0"),
    "rho above 1": (lambda: pn.optimizers.rmsprop(rho=1.5), ValueError,
                    r"rho must be in \[0, 1\); got 1.5"),
    "epsilon zero": (lambda: pn.optimizers.adagrad(epsilon=0.0), ValueError,
                     r"epsilon must be a finite number > 0; got 0.0"),
    "gradient tree of another structure": (lambda: adam_update(PARAMS[:1]), ValueError,
                                           r"expected structure"),
    "gradient of another shape": (
        lambda: adam_update((dict(PARAMS[0], weights=jnp.ones((2, 4))),) + PARAMS[1:]),
        ValueError, r"at \[0\]\['weights'\] expected shape \(2, 8\), got \(2, 4\)"),
    # components
    "optimizer factory instead of optimizer": (
        lambda: pn.train_step(MODEL, CCE, pn.optimizers.adam), TypeError,
        r"optimizer must have init and update methods, e.g. pn.optimizers.adam\(\).*"
        r"Did you pass adam instead of adam\(\)\?"),
    "layer factory instead of layer": (lambda: pn.serial(pn.dense(2, 3), pn.relu), TypeError,
                                       r"argument 1 must be a Layer"),
    "params of another model": (
        lambda: fit(params=pn.serial(pn.dense(2, 4), pn.relu(), pn.dense(4, 3)).init(KEY)),
        ValueError, r"params\['weights'\] must have shape \(2, 8\); got \(2, 4\)"),
}


@pytest.mark.parametrize("case", list(ROWS))
def test_bad_input_gets_a_clear_error(case):
    call, error, message = ROWS[case]
    with pytest.raises(error, match=message):
        call()


def test_checkpoint_of_another_model_says_what_differs(tmp_path):
    path = tmp_path / "params.safetensors"
    pn.checkpoint.save(path, PARAMS)
    other = pn.serial(pn.dense(2, 16), pn.relu(), pn.dense(16, 3)).init(KEY)
    with pytest.raises(ValueError, match=r"0/weights has shape \(2, 8\) in the file, "
                                         r"\(2, 16\) in like"):
        pn.checkpoint.load(path, like=other)


def test_a_corrupted_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "params.safetensors"
    pn.checkpoint.save(path, PARAMS)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match="params.safetensors"):
        pn.checkpoint.load(path, like=PARAMS)
