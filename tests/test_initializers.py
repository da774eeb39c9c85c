"""Initializers: ``pn.dense(weight_init=..., bias_init=...)`` takes any of
``jax.nn.initializers``; the default stays the book's ``0.01 * normal`` bit for bit; an
initializer is static structure, and equal initializers share one compiled ``init``;
``--init he`` and a deep net that learns where the book's init does not."""

import re
import runpy
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purenn as pn
from purenn import cli
from purenn.cli import options
from tests.counting import init_programs


def bits(a):
    return np.asarray(a).view(np.uint8)


def test_the_default_and_book_0_01_are_one_structure_bit_for_bit(key):
    default = pn.dense(3, 4)
    assert default == pn.dense(3, 4, weight_init=pn.initializers.book(0.01),
                               bias_init=pn.initializers.zeros())
    params = default.init(key)
    np.testing.assert_array_equal(bits(params["weights"]),
                                  bits(0.01 * jax.random.normal(key, (3, 4))))
    assert np.array_equal(params["biases"], jnp.zeros((1, 4)))


def test_book_scale_0_1_is_chapter_17s_weights(key):
    params = pn.dense(3, 4, weight_init=pn.initializers.book(0.1)).init(key)
    np.testing.assert_array_equal(bits(params["weights"]),
                                  bits(0.1 * jax.random.normal(key, (3, 4))))


def test_jax_initializers_draw_weights_from_the_key_and_biases_from_a_fold_in(key):
    he, normal = jax.nn.initializers.he_normal(), jax.nn.initializers.normal(1.0)
    params = pn.dense(3, 4, weight_init=he, bias_init=normal).init(key)
    np.testing.assert_allclose(params["weights"], he(key, (3, 4), jnp.float32), rtol=1e-6)
    np.testing.assert_allclose(params["biases"],
                               normal(jax.random.fold_in(key, 1), (1, 4), jnp.float32),
                               rtol=1e-6)


def test_equal_initializers_are_one_structure_and_one_init_program(key):
    def model(init):  # sizes no other test uses: a structure of its own
        return pn.serial(pn.dense(3, 19, weight_init=init), pn.relu(),
                         pn.dense(19, 2, weight_init=init))

    he = model(jax.nn.initializers.he_normal())
    again = model(jax.nn.initializers.he_normal())  # a new closure, the same initializer
    assert he == again and hash(he) == hash(again)
    assert he != model(jax.nn.initializers.he_uniform()) != model(None)
    assert model(jax.nn.initializers.normal(0.1)) != model(jax.nn.initializers.normal(0.2))
    before = init_programs()
    first = he.init(key)
    assert init_programs() == before + 1
    second = again.init(key)
    assert init_programs() == before + 1  # equal initializers: the same program
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(first),
                                                      jax.tree.leaves(second)))
    model(jax.nn.initializers.glorot_uniform()).init(key)  # another initializer
    assert init_programs() == before + 2


def test_an_initializer_holding_an_array_is_equal_only_to_itself():
    table = jnp.ones((2, 2))

    def from_table(key, shape, dtype):
        return table.astype(dtype)

    wrapped = pn.initializers.Initializer(from_table)
    assert wrapped == wrapped and hash(wrapped) == hash(wrapped)
    assert pn.dense(2, 2, weight_init=from_table) == pn.dense(2, 2, weight_init=from_table)
    other = jnp.ones((2, 2))
    assert wrapped != pn.initializers.Initializer(lambda k, s, d: other.astype(d))


def test_initializers_read_as_what_they_are():
    assert repr(pn.dense(2, 3).weight_init) == "book(scale=0.01)"
    assert repr(pn.initializers.by_name("he")) == "jax.nn.initializers.he_normal()"
    assert repr(pn.initializers.Initializer(jax.nn.initializers.normal(0.5))) == (
        "jax.nn.initializers.normal(stddev=0.5)")
    assert pn.initializers.by_name("glorot") == pn.initializers.Initializer(
        jax.nn.initializers.glorot_uniform())


def test_bad_initializers_are_refused_naming_the_argument(key):
    with pytest.raises(TypeError, match=r"weight_init must be an initializer \(key, shape, "
                                        r"dtype\) -> array.*got float"):
        pn.dense(2, 3, weight_init=0.1)
    with pytest.raises(ValueError, match=r"scale must be a finite number > 0.*got -1"):
        pn.initializers.book(-1)
    with pytest.raises(ValueError, match=r"dense\(2, 3\): bias_init returned biases of "
                                         r"shape \(3,\) and dtype float32; it must return "
                                         r"the shape \(1, 3\)"):
        pn.dense(2, 3, bias_init=lambda k, shape, dtype: jnp.zeros(shape[1:], dtype)).init(key)
    with pytest.raises(ValueError, match="init must be one of book, he, glorot; got 'lecun'"):
        pn.initializers.by_name("lecun")


def deep_model(init=None):
    """Five hidden layers of 64 units."""
    layers, width = [], 2
    for _ in range(5):
        layers += [pn.dense(width, 64, weight_init=init), pn.relu()]
        width = 64
    return pn.serial(*layers, pn.dense(64, 3, weight_init=init))


def test_a_deep_net_learns_from_he_normal_where_the_books_init_stays_at_chance():
    X, y = pn.data.spiral(jax.random.key(1), 30, 3)
    model, loss = deep_model(), pn.losses.softmax_categorical_crossentropy
    step = pn.train_step(model, loss, pn.optimizers.adam(learning_rate=0.01))
    final = {}
    for name in ("book", "he"):
        # Only the initial params differ: one training program for both.
        params = deep_model(pn.initializers.by_name(name)).init(jax.random.key(2))
        opt_state = pn.optimizers.adam(learning_rate=0.01).init(params)
        for epoch in range(50):
            params, opt_state, metrics = step(params, opt_state, X, y, jax.random.key(epoch))
        final[name] = float(metrics["accuracy"])
    assert final["book"] < 0.4  # 0.01 * normal through five layers: the signal vanishes
    assert final["he"] > 0.8


def test_train_init_option_builds_the_named_initializer(capsys):
    parser = cli.build_parser()
    config = options.config_from_args(parser.parse_args(["train", "--init", "he"]), parser)
    assert config.init == "he"
    assert config.model().layers[0].weight_init == pn.initializers.by_name("he")
    default = options.config_from_args(parser.parse_args(["train"]), parser)
    assert default.model() == experiments_default_model()
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--init", "lecun"])
    assert "invalid choice: 'lecun' (choose from" in capsys.readouterr().err


def experiments_default_model():
    """``purenn train``'s default model as it was built before ``--init``."""
    return pn.serial(pn.dense(2, 64), pn.relu(), pn.dense(64, 3))


def test_the_deep_init_example_runs_both_initializers(monkeypatch, capsys):
    script = Path(__file__).resolve().parents[1] / "examples" / "deep_init.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--epochs", "101"])
    runpy.run_path(str(script), run_name="__main__")
    lines = capsys.readouterr().out.splitlines()
    pattern = (r"trained 101 epochs, training acc (\d\.\d{3}), validation acc \d\.\d{3} "
               r"\(best epoch \d+\)")
    assert [line.split(":")[0] for line in lines] == ["book", "he_normal"]
    book, he = (float(re.search(pattern, line)[1]) for line in lines)
    assert he > book
