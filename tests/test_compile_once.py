"""The compile contract: one compiled program per model structure.

Layers and optimizers are pytrees whose numeric hyperparameters are leaves, so models and
optimizers that differ only in values compare unequal but share a structure; ``fit``,
``train_step``, ``evaluate`` and ``predict`` take them as arguments of their programs, so
new values, seeds, epoch counts or logging intervals compile nothing; ``jax.vmap`` runs
over a stack of them. Compiles are counted with ``jax.monitoring``'s backend-compile event
(counts, never times).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purenn as pn
from purenn import experiments
from purenn.partition import combine, partition
from tests import fresh_process
from tests.counting import compiles, is_eager_op
from tests.fresh_process import book_model

CCE = pn.losses.softmax_categorical_crossentropy


def test_the_compile_counter_counts():
    x = jnp.ones(7)
    with compiles() as seen:
        jax.jit(lambda v: v * 3 + 1)(x)  # a new function: compiled here
    assert [name for name, _ in seen] == ["jit(<lambda>)"], seen


def stack(trees):
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


# --- equality, hashing and structure ----------------------------------------------------


def components(l2=5e-4, rate=0.1, lr=0.05, momentum=0.9, max_norm=1.0):
    """Layers and optimizers of each kind, built from these values."""
    return {
        "dense": pn.dense(2, 64, weight_l1=l2 / 2, weight_l2=l2, bias_l1=l2 / 4, bias_l2=l2),
        "dropout": pn.dropout(rate),
        "serial": book_model(weight_l2=l2, bias_l2=l2, rate=rate),
        "sgd": pn.optimizers.sgd(learning_rate=lr, decay=1e-3, momentum=momentum),
        "adam": pn.optimizers.adam(learning_rate=lr, decay=5e-5),
        "chain": pn.optimizers.chain(pn.optimizers.clip_by_global_norm(max_norm),
                                     pn.optimizers.adam(learning_rate=lr)),
    }


@pytest.mark.parametrize("kind", list(components()))
def test_equal_arguments_give_equal_components_that_hash_equal(kind):
    first, again = components()[kind], components()[kind]
    assert first is not again
    assert first == again and hash(first) == hash(again)
    assert len({first, again}) == 1


@pytest.mark.parametrize("kind", list(components()))
def test_other_values_are_unequal_with_the_same_structure(kind):
    first = components()[kind]
    others = [components(l2=1e-3, rate=0.2)[kind], components(lr=0.01, momentum=0.5,
                                                              max_norm=2.0)[kind]]
    other = next(o for o in others if o != first)  # each kind has values in one of them
    assert other != first
    assert jax.tree.structure(other) == jax.tree.structure(first)
    assert jax.tree.leaves(other) != jax.tree.leaves(first)


def test_a_strength_of_zero_is_a_leaf_and_none_is_absent():
    none, zero, some = pn.dense(2, 3), pn.dense(2, 3, weight_l2=0.0), pn.dense(2, 3,
                                                                              weight_l2=0.1)
    assert jax.tree.leaves(none) == [] and jax.tree.leaves(zero) == [0.0]
    assert jax.tree.structure(zero) == jax.tree.structure(some)
    assert jax.tree.structure(none) != jax.tree.structure(zero)
    without, with_zero = pn.optimizers.sgd(0.1), pn.optimizers.sgd(0.1, momentum=0.0)
    assert jax.tree.structure(without) != jax.tree.structure(with_zero)


def test_partition_keys_programs_on_structure_and_combine_rebuilds_the_tree():
    model, other = book_model(), book_model(weight_l2=1e-3, rate=0.3)
    optimizer = pn.optimizers.adam(learning_rate=0.05)
    (dynamic, static), (other_dynamic, other_static) = (
        partition((m, CCE, optimizer)) for m in (model, other))
    assert static == other_static and hash(static) == hash(other_static)
    assert dynamic != other_dynamic
    leaves = jax.tree.leaves((model, CCE, optimizer))
    assert [s if d is None else d for d, s in zip(dynamic, static.leaves)] == leaves
    assert CCE in static.leaves and 0.05 in dynamic  # the loss is static, rates are data
    assert combine(dynamic, static) == (model, CCE, optimizer)
    assert combine(other_dynamic, static) == (other, CCE, optimizer)
    assert partition(book_model(weight_l2=None))[1] != static  # another structure


# --- fit --------------------------------------------------------------------------------

# (learning rate, decay, weight_l2, bias_l2, dropout rate, epochs, log_every)
VARIANTS = [
    (0.05, 5e-5, 5e-4, 5e-4, 0.1, 7, 100),
    (0.02, 5e-5, 5e-4, 5e-4, 0.1, 7, 100),
    (0.05, 1e-3, 5e-4, 5e-4, 0.1, 7, 100),
    (0.05, 0.0, 5e-4, 5e-4, 0.1, 7, 100),
    (0.05, 5e-5, 1e-3, 5e-4, 0.1, 7, 100),
    (0.05, 5e-5, 5e-4, 0.0, 0.1, 7, 100),
    (0.05, 5e-5, 0.0, 0.0, 0.1, 7, 100),
    (0.05, 5e-5, 5e-4, 5e-4, 0.3, 7, 100),
    (0.05, 5e-5, 5e-4, 5e-4, 0.0, 7, 100),
    (0.05, 5e-5, 5e-4, 5e-4, 0.1, 1, 100),
    (0.05, 5e-5, 5e-4, 5e-4, 0.1, 12, 5),
    (0.05, 5e-5, 5e-4, 5e-4, 0.1, 13, 1),
    (0.05, 5e-5, 5e-4, 5e-4, 0.1, 250, 0),
    (0.05, 5e-5, 5e-4, 5e-4, 0.1, 101, 10),
    (0.01, 1e-4, 2e-4, 1e-4, 0.5, 3, 2),
]


def test_fits_that_differ_in_hyperparameter_values_compile_nothing():
    """After one fit of the book's model with validation data, fits of freshly built
    models and optimizers with other values, epochs and log intervals compile nothing."""
    X, y, validation = fresh_process.book_data()
    lines = []
    pn.fit(book_model(), CCE, pn.optimizers.adam(learning_rate=0.05, decay=5e-5),
           book_model().init(jax.random.key(2)), X, y, key=jax.random.key(5), epochs=21,
           log_every=10, validation_data=validation, log_fn=lines.append)
    assert len(lines) == 4  # epochs 0, 10, 20 and the validation line
    runs = []
    with compiles() as seen:
        for lr, decay, weight_l2, bias_l2, rate, epochs, log_every in VARIANTS:
            model = book_model(weight_l2=weight_l2, bias_l2=bias_l2, rate=rate)
            optimizer = pn.optimizers.adam(learning_rate=lr, decay=decay)
            params = model.init(jax.random.key(2))
            _, _, history = pn.fit(model, CCE, optimizer, params, X, y,
                                   key=jax.random.key(5), epochs=epochs, log_every=log_every,
                                   validation_data=validation, log_fn=lines.append)
            runs.append((model, params, history))
    assert seen == []
    # The values were used: each run's first epoch shows its learning rate and penalty,
    # and its data loss (same params, same key) differs exactly where the dropout rate does.
    data_loss = {}
    for (lr, _, _, _, rate, epochs, _), (model, params, history) in zip(VARIANTS, runs):
        assert len(history["loss"]) == epochs
        assert history["learning_rate"][0] == np.float32(lr)
        np.testing.assert_allclose(history["reg_loss"][0], model.penalty(params), rtol=1e-6)
        data_loss.setdefault(rate, set()).add(float(history["data_loss"][0]))
    assert all(len(losses) == 1 for losses in data_loss.values()), data_loss
    assert len(set.union(*data_loss.values())) == len(data_loss) == 4


def test_a_first_fit_in_a_fresh_process_compiles_one_training_program():
    """A fresh process's first fit (201 epochs, log_every=100, validation data) compiles
    the training program and the evaluation program once; its second fit, with another
    key, compiles nothing. The optimizer's state is one more program (``opt.init``, one
    compiled program per structure, as ``model.init`` is before the fit); anything else
    is a small eager operation, which takes from ~10 ms on a quiet machine to ~100 ms on a
    busy one."""
    compiled = fresh_process.child()["compiles"]
    fit = [(name, seconds) for phase, name, seconds in compiled if phase == "fit 5"]
    names = [name for name, _ in fit]
    assert names.count("jit(_run_program)") == 1, fit
    assert names.count("jit(_evaluate_program)") == 1, fit
    assert not {"jit(_step_program)", "jit(_runs_program)", "jit(_predict_program)"} & set(
        names), fit
    large = [(name, seconds) for name, seconds in fit if seconds >= 0.05
             and not is_eager_op(name)]
    assert names.count("jit(_method_program)") <= 1, fit  # opt.init, one program
    assert len(large) <= 3, fit
    assert [c for c in compiled if c[0] == "fit 6"] == []


def test_resuming_a_run_in_the_same_process_compiles_nothing(tmp_path):
    X, y, _ = fresh_process.book_data()
    model, optimizer = book_model(), pn.optimizers.adam(learning_rate=0.05, decay=5e-5)
    params = model.init(jax.random.key(2))
    path = tmp_path / "run.safetensors"
    common = dict(key=jax.random.key(3), log_every=10, log_fn=None, checkpoint_path=path)
    pn.fit(model, CCE, optimizer, params, X, y, epochs=20, **common)
    with compiles() as seen:
        pn.fit(model, CCE, optimizer, params, X, y, epochs=40, **common)
    assert [name for name, _ in seen if not is_eager_op(name)] == []


# --- train_step, evaluate, predict --------------------------------------------------------


def test_equal_structures_share_train_step_evaluate_and_predict_programs():
    X, y, _ = fresh_process.book_data()

    def use(model, optimizer):
        params = model.init(jax.random.key(2))
        step = pn.train_step(model, CCE, optimizer)
        params, state, metrics = step(params, optimizer.init(params), X, y, jax.random.key(0))
        return (metrics, pn.evaluate(model, CCE, params, X, y),
                pn.predict(model, CCE, params, X))

    first = use(book_model(), pn.optimizers.adam(learning_rate=0.05, decay=5e-5))
    with compiles() as seen:
        second = use(book_model(weight_l2=1e-3, bias_l2=0.0, rate=0.3),
                     pn.optimizers.adam(learning_rate=0.01, decay=1e-3))
    assert seen == []
    assert second[0]["learning_rate"] == np.float32(0.01)
    assert first[0]["loss"] != second[0]["loss"]


# --- vmap over hyperparameters --------------------------------------------------------------


@pytest.mark.x64
def test_vmap_over_rates_strengths_and_learning_rates_equals_separate_runs():
    """``experiments.fit_seeds(..., stacked=True)``, one vmapped program over 3 models
    (weight_l2 and dropout rate) and 3 Adam learning rates, gives each ``pn.fit`` run."""
    X, y, _ = fresh_process.book_data()
    models = [book_model(weight_l2=l2, rate=rate)
              for l2, rate in ((1e-4, 0.0), (5e-4, 0.1), (2e-3, 0.3))]
    optimizers = [pn.optimizers.adam(learning_rate=lr, decay=5e-5) for lr in (0.01, 0.05, 0.1)]
    params = [model.init(jax.random.key(2)) for model in models]
    keys = [jax.random.key(k) for k in (3, 3, 4)]
    epochs = 6
    stacked = experiments.fit_seeds(stack(models), CCE, stack(optimizers), stack(params),
                                    stack([X] * 3), stack([y] * 3), keys=stack(keys),
                                    epochs=epochs, stacked=True)
    for i, (model, optimizer, p, key) in enumerate(zip(models, optimizers, params, keys)):
        alone = pn.fit(model, CCE, optimizer, p, X, y, key=key, epochs=epochs, log_fn=None)
        for a, b in zip(jax.tree.leaves(alone[:2]),
                        jax.tree.leaves(jax.tree.map(lambda leaf, i=i: leaf[i], stacked[:2]))):
            assert np.asarray(b).dtype == np.asarray(a).dtype
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12 * np.max(np.abs(a)))
        for name in pn.train.METRICS:
            np.testing.assert_allclose(stacked[2][name][i], alone[2][name], rtol=1e-12,
                                       err_msg=name)
    assert params[0][0]["weights"].dtype == np.float64
    # the runs differ: the values reached the program
    losses = stacked[2]["loss"][:, -1]
    assert len(set(losses.tolist())) == 3


# --- programs that compile with purenn's CPU options ------------------------------------


@pytest.mark.users_codegen
def test_init_and_data_give_the_same_bits_alone_and_inside_a_users_jit():
    """``model.init`` and the data sets compile on their own with
    ``partition.CPU_COMPILER_OPTIONS``; JAX takes no compiler options inside another
    program, so there they are traced inline: with the key closed over (concrete
    arguments inside a trace), the same bits as alone."""
    from purenn.partition import CPU_COMPILER_OPTIONS, Program, jit_program

    assert CPU_COMPILER_OPTIONS == {"xla_cpu_use_fusion_emitters": False}
    assert isinstance(jit_program(lambda x: x), Program)
    model = pn.serial(pn.dense(2, 5, weight_l2=1e-3), pn.relu(), pn.dense(5, 3))
    key = jax.random.key(4)

    def draw():
        return model.init(key), pn.data.spiral(key, 7, 3)

    for a, b in zip(jax.tree.leaves(draw()), jax.tree.leaves(jax.jit(draw)())):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
