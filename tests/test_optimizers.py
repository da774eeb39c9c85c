"""Optimizers against the book: whole training runs against the NumPy reference loop,
single updates against the formulas, schedules, composition, jit/vmap, dtypes, errors.

Comparisons with the book's classes and with the formulas run in float64 (marked ``x64``);
jit, vmap, dtypes and errors in float32 (the dtype tests in both modes).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purenn as pn
from purenn import optimizers as optim
from tests.counting import init_programs
from tests.reference import book
from tests.reference.loop import book_train

EPOCHS = 60


# --- helpers -------------------------------------------------------------------------


def forward_backward(model, loss_fn, accuracy_fn, X, y):
    """A jitted ``(params, key, epoch) -> (metrics, grads)``: the forward pass (in training
    mode with ``fold_in(key, epoch)`` when a key is given) and its gradient. Built once per
    model and shared by the runs, so only each optimizer's small update compiles anew."""

    def objective(p, k):
        out = model.apply(p, X, key=k, train=k is not None)
        data_loss = loss_fn(out, y)
        reg_loss = model.penalty(p)
        return data_loss + reg_loss, {"data_loss": data_loss, "reg_loss": reg_loss,
                                      "accuracy": accuracy_fn(out, y)}

    @jax.jit
    def run(p, key, epoch):
        k = None if key is None else jax.random.fold_in(key, epoch)
        (loss, metrics), grads = jax.value_and_grad(objective, has_aux=True)(p, k)
        return {"loss": loss, **metrics}, grads

    return run


def purenn_train(forward, params, opts, epochs, *, key=None):
    """purenn's version of the book's loop, for each optimizer of the dict ``opts`` (run
    side by side so that one compiled step serves them all): per epoch the metrics of the
    forward pass, and the learning rate read from the state, before the update, as the
    book prints them. Returns ``{name: (params, state, history)}``."""

    @jax.jit
    def step(all_params, states, all_grads):
        out = {}
        for name, opt in opts.items():
            p, state, grads = all_params[name], states[name], all_grads[name]
            learning_rate = optim.current_learning_rate(state)
            updates, state = opt.update(grads, state, p)
            out[name] = (optim.apply_updates(p, updates), state, learning_rate)
        return out

    all_params = dict.fromkeys(opts, params)
    states = {name: opt.init(params) for name, opt in opts.items()}
    histories = {name: [] for name in opts}
    for epoch in range(epochs):
        all_grads = {}
        for name in opts:
            metrics, all_grads[name] = forward(all_params[name], key, epoch)
            histories[name].append(metrics)
        for name, (p, state, learning_rate) in step(all_params, states, all_grads).items():
            all_params[name], states[name] = p, state
            histories[name][-1]["learning_rate"] = learning_rate
    return {name: (all_params[name], states[name],
                   {metric: np.array([m[metric] for m in history]) for metric in history[0]})
            for name, history in histories.items()}


def assert_trees_close(actual, expected, rtol):
    """Leaf by leaf to ``rtol``, relative to each element or, for elements near zero
    (where cancellation leaves only absolute accuracy), to the leaf's largest one."""
    actual_leaves, actual_def = jax.tree_util.tree_flatten(actual)
    expected_leaves, expected_def = jax.tree_util.tree_flatten(expected)
    assert actual_def == expected_def
    for a, e in zip(actual_leaves, expected_leaves):
        e = np.asarray(e)
        scale = float(np.max(np.abs(e))) if e.size else 0.0
        np.testing.assert_allclose(np.asarray(a), e, rtol=rtol, atol=rtol * scale)


def assert_same_accuracy(actual, expected, samples):
    # The same hits each epoch; the means may differ in the last bit (summation order).
    np.testing.assert_array_equal(np.rint(actual * samples), np.rint(expected * samples))


@pytest.fixture(scope="module")
def chapter14():
    model = pn.serial(pn.dense(2, 64, weight_l2=5e-4, bias_l2=5e-4), pn.relu(),
                      pn.dense(64, 3))
    X, y = pn.data.spiral(jax.random.key(1), 100, 3)  # eager: as other tests make it
    params = model.init(jax.random.key(2))
    forward = forward_backward(model, pn.losses.softmax_categorical_crossentropy,
                               pn.losses.categorical_accuracy, X, y)
    return forward, X, y, params


# --- whole runs against the book's loop ------------------------------------------------

RUNS = {
    "sgd": (optim.sgd, book.Optimizer_SGD, {"learning_rate": 1.0, "decay": 1e-3}),
    "sgd-momentum": (optim.sgd, book.Optimizer_SGD,
                     {"learning_rate": 1.0, "decay": 1e-3, "momentum": 0.9}),
    "adagrad": (optim.adagrad, book.Optimizer_Adagrad, {"learning_rate": 1.0, "decay": 1e-4}),
    "rmsprop": (optim.rmsprop, book.Optimizer_RMSprop,
                {"learning_rate": 0.02, "decay": 1e-5, "rho": 0.999}),
    "adam-book": (optim.adam, book.Optimizer_Adam, {"learning_rate": 0.02, "decay": 5e-7}),
    "adam-decay": (optim.adam, book.Optimizer_Adam, {"learning_rate": 0.05, "decay": 1e-3}),
}


@pytest.fixture(scope="module")
def chapter14_runs(chapter14):
    forward, _, _, params = chapter14
    opts = {name: make(**kwargs) for name, (make, _, kwargs) in RUNS.items()}
    return purenn_train(forward, params, opts, EPOCHS)


@pytest.mark.x64
@pytest.mark.parametrize("name", list(RUNS))
def test_training_run_matches_book(chapter14, chapter14_runs, name):
    _, make_book, kwargs = RUNS[name]
    _, X, y, params = chapter14
    expected, expected_params = book_train(X, y, params, make_book(**kwargs), EPOCHS)
    final, _, history = chapter14_runs[name]

    for metric in ("loss", "data_loss", "reg_loss"):
        np.testing.assert_allclose(history[metric], expected[metric], rtol=1e-8,
                                   err_msg=metric)
    assert_same_accuracy(history["accuracy"], expected["accuracy"], len(y))
    np.testing.assert_allclose(history["learning_rate"], expected["learning_rate"],
                               rtol=1e-14)
    assert_trees_close(final, expected_params, rtol=1e-8)
    # decay matters in these runs: the rate read before the last update has moved.
    assert history["learning_rate"][-1] < kwargs["learning_rate"]


@pytest.mark.x64
def test_learning_rate_at_epoch_10000_is_the_books():
    # The book prints lr: 0.019900507413187767 at epoch 10000 of Adam(0.02, decay=5e-7):
    # the rate of update 9999, read before update 10000.
    opt = optim.adam(learning_rate=0.02, decay=5e-7)
    params = {"w": jnp.ones(3)}
    state = opt.init(params)._replace(count=jnp.asarray(9999, jnp.int32))
    _, state = opt.update({"w": jnp.ones(3)}, state)
    assert int(state.count) == 10000
    assert float(optim.current_learning_rate(state)) == 0.019900507413187767

    reference = book.Optimizer_Adam(learning_rate=0.02, decay=5e-7)
    reference.iterations = 9999
    reference.pre_update_params()
    assert float(state.learning_rate) == reference.current_learning_rate


# --- single updates against the formulas ----------------------------------------------

# NumPy float64: each test's mode makes them float64 (x64) or float32 arrays.
PARAMS = {"a": np.array([0.5, -1.0, 2.0]), "b": (np.array([[0.1, -0.2], [0.3, 0.0]]),)}
GRADS_1 = {"a": np.array([0.3, -0.7, 1.1]), "b": (np.array([[-0.05, 0.2], [0.9, -1.3]]),)}
GRADS_2 = {"a": np.array([-0.4, 0.25, 0.6]), "b": (np.array([[0.15, 0.0], [-0.8, 2.0]]),)}


def run_updates(opt, grads_list, params=PARAMS):
    state = opt.init(params)
    updates_list = []
    for grads in grads_list:
        updates, state = opt.update(grads, state, params)
        updates_list.append(updates)
    return updates_list, state


def numpy_leaves(tree):
    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(tree)]


def check_leaves(tree, expected_leaves):
    leaves = numpy_leaves(tree)
    assert len(leaves) == len(expected_leaves)
    for leaf, expected in zip(leaves, expected_leaves):
        np.testing.assert_allclose(leaf, expected, rtol=1e-12, atol=0)


G1, G2 = numpy_leaves(GRADS_1), numpy_leaves(GRADS_2)


@pytest.mark.x64
def test_sgd_update_is_minus_rate_times_gradient():
    lr, decay = 0.3, 0.25
    (u1, u2), state = run_updates(optim.sgd(lr, decay=decay), [GRADS_1, GRADS_2])
    lr2 = lr * (1.0 / (1.0 + decay * 1))
    check_leaves(u1, [-lr * g for g in G1])
    check_leaves(u2, [-lr2 * g for g in G2])
    assert state.momentum is None
    assert float(state.learning_rate) == lr2


@pytest.mark.x64
def test_sgd_momentum_buffer_holds_the_rate_scaled_step():
    lr, momentum = 0.3, 0.9
    (u1, u2), state = run_updates(optim.sgd(lr, momentum=momentum), [GRADS_1, GRADS_2])
    m1 = [-lr * g for g in G1]
    m2 = [momentum * m - lr * g for m, g in zip(m1, G2)]
    check_leaves(u1, m1)
    check_leaves(u2, m2)
    check_leaves(state.momentum, m2)  # the buffer is the update itself, rate inside


@pytest.mark.x64
@pytest.mark.parametrize("rule", ["adagrad", "rmsprop"])
def test_adaptive_rules_put_epsilon_outside_the_root(rule):
    lr, eps, rho = 0.1, 0.5, 0.8  # a large epsilon: outside vs inside differs clearly
    if rule == "adagrad":
        opt = optim.adagrad(lr, epsilon=eps)
        c1 = [g**2 for g in G1]
        c2 = [c + g**2 for c, g in zip(c1, G2)]
    else:
        opt = optim.rmsprop(lr, epsilon=eps, rho=rho)
        c1 = [(1 - rho) * g**2 for g in G1]
        c2 = [rho * c + (1 - rho) * g**2 for c, g in zip(c1, G2)]
    (u1, u2), state = run_updates(opt, [GRADS_1, GRADS_2])
    check_leaves(u1, [-lr * g / (np.sqrt(c) + eps) for g, c in zip(G1, c1)])
    check_leaves(u2, [-lr * g / (np.sqrt(c) + eps) for g, c in zip(G2, c2)])
    check_leaves(state.cache, c2)
    inside = [-lr * g / np.sqrt(c + eps) for g, c in zip(G1, c1)]
    assert not np.allclose(numpy_leaves(u1)[0], inside[0])


@pytest.mark.x64
def test_adam_matches_the_formula_with_bias_correction():
    lr, eps, b1, b2, decay = 0.02, 0.3, 0.8, 0.95, 0.5
    (u1, u2), state = run_updates(
        optim.adam(lr, decay=decay, epsilon=eps, beta_1=b1, beta_2=b2), [GRADS_1, GRADS_2])
    m = [np.zeros_like(g) for g in G1]
    c = [np.zeros_like(g) for g in G1]
    for t, (grads, updates) in enumerate([(G1, u1), (G2, u2)], start=1):
        rate = lr * (1.0 / (1.0 + decay * (t - 1)))
        m = [b1 * mi + (1 - b1) * g for mi, g in zip(m, grads)]
        c = [b2 * ci + (1 - b2) * g**2 for ci, g in zip(c, grads)]
        m_hat = [mi / (1 - b1**t) for mi in m]
        c_hat = [ci / (1 - b2**t) for ci in c]
        check_leaves(updates, [-rate * mh / (np.sqrt(ch) + eps)
                               for mh, ch in zip(m_hat, c_hat)])
    check_leaves(state.momentum, m)
    check_leaves(state.cache, c)
    assert int(state.count) == 2
    assert float(state.learning_rate) == lr * (1.0 / (1.0 + decay))


# --- schedules and composition --------------------------------------------------------


@pytest.mark.x64
def test_schedule_is_called_with_the_count_and_decay_applies_on_top():
    def schedule(count):
        return 0.1 * 0.5**count

    for decay in (0.0, 0.5):
        opt = optim.sgd(schedule, decay=decay)
        state = opt.init(PARAMS)
        assert float(state.learning_rate) == 0.1
        update = jax.jit(opt.update)
        for k, grads in enumerate([GRADS_1, GRADS_2, GRADS_1]):
            updates, state = update(grads, state)
            rate = 0.1 * 0.5**k * (1.0 / (1.0 + decay * k))
            check_leaves(updates, [-rate * g for g in numpy_leaves(grads)])
            np.testing.assert_allclose(float(state.learning_rate), rate, rtol=1e-15)


@pytest.mark.x64
def test_schedule_helpers():
    inverse = optim.inverse_time_decay(0.3, 0.25)
    (a1, a2), _ = run_updates(optim.sgd(inverse), [GRADS_1, GRADS_2])
    (b1, b2), _ = run_updates(optim.sgd(0.3, decay=0.25), [GRADS_1, GRADS_2])
    assert_trees_close(a2, b2, rtol=0)
    exponential = optim.exponential_decay(0.1, 0.5, 10)
    np.testing.assert_allclose(float(exponential(jnp.int32(20))), 0.025, rtol=1e-15)
    np.testing.assert_allclose(float(exponential(jnp.int32(5))), 0.1 * 0.5**0.5, rtol=1e-15)


@pytest.mark.x64
def test_learning_rates_swept_with_vmap():
    rates = jnp.array([0.1, 0.2, 0.4])

    def first_update(rate):
        opt = optim.sgd(rate, momentum=0.5)
        return opt.update(GRADS_1, opt.init(PARAMS))

    updates, state = jax.jit(jax.vmap(first_update))(rates)
    np.testing.assert_array_equal(np.asarray(state.learning_rate), np.asarray(rates))
    for i, rate in enumerate([0.1, 0.2, 0.4]):
        check_leaves(jax.tree_util.tree_map(lambda u, i=i: u[i], updates),
                     [-rate * g for g in G1])


@pytest.mark.x64
def test_current_learning_rate_of_plain_and_chained_states():
    opt = optim.adam(0.05, decay=0.1)
    state = opt.init(PARAMS)
    assert float(optim.current_learning_rate(state)) == 0.05
    chained = optim.chain(optim.clip_by_global_norm(1.0), optim.adam(0.05, decay=0.1))
    chain_state = chained.init(PARAMS)
    for _ in range(2):
        _, chain_state = chained.update(GRADS_1, chain_state, PARAMS)
    assert isinstance(chain_state, tuple) and len(chain_state) == 2
    assert isinstance(chain_state[0], optim.EmptyState)
    assert float(optim.current_learning_rate(chain_state)) == 0.05 * (1.0 / (1.0 + 0.1))


@pytest.mark.x64
def test_clip_by_global_norm_scales_a_large_gradient_to_the_max_norm():
    params = {"a": jnp.zeros(2), "b": jnp.zeros((1, 1))}
    grads = {"a": jnp.array([6.0, 0.0]), "b": jnp.array([[8.0]])}  # global norm 10
    opt = optim.chain(optim.clip_by_global_norm(1.0), optim.sgd(1.0))
    updates, _ = opt.update(grads, opt.init(params), params)
    check_leaves(updates, [np.array([-0.6, 0.0]), np.array([[-0.8]])])
    norm = math.sqrt(sum(float(jnp.sum(u**2)) for u in jax.tree_util.tree_leaves(updates)))
    assert norm == pytest.approx(1.0, rel=1e-15)


@pytest.mark.x64
def test_clip_by_global_norm_leaves_a_small_gradient_unchanged():
    grads = {"a": jnp.array([0.3, 0.0]), "b": jnp.array([[0.4]])}  # global norm 0.5
    clip = optim.clip_by_global_norm(1.0)
    clipped, state = jax.jit(clip.update)(grads, clip.init(grads))
    assert state == optim.EmptyState()
    assert_trees_close(clipped, grads, rtol=0)
    zeros, _ = clip.update({"a": jnp.zeros(2)}, clip.init(None))  # norm 0: no NaN
    np.testing.assert_array_equal(np.asarray(zeros["a"]), np.zeros(2))


# --- state: NamedTuples, jit, vmap, dtypes ---------------------------------------------

STATES = {
    "sgd": (lambda: optim.sgd(0.1), optim.SgdState, ("count", "learning_rate", "momentum")),
    "sgd-momentum": (lambda: optim.sgd(0.1, momentum=0.5), optim.SgdState,
                     ("count", "learning_rate", "momentum")),
    "adagrad": (lambda: optim.adagrad(0.1), optim.AdagradState,
                ("count", "learning_rate", "cache")),
    "rmsprop": (lambda: optim.rmsprop(0.1), optim.RmspropState,
                ("count", "learning_rate", "cache")),
    "adam": (lambda: optim.adam(0.1, decay=0.1), optim.AdamState,
             ("count", "learning_rate", "momentum", "cache")),
}


@pytest.mark.parametrize("name", list(STATES))
def test_state_is_the_documented_named_tuple(name, x64):
    make, cls, fields = STATES[name]
    state = make().init(PARAMS)
    assert type(state) is cls and cls._fields == fields
    assert state.count.shape == () and state.count.dtype == jnp.int32 and int(state.count) == 0
    assert state.learning_rate.shape == ()
    assert state.learning_rate.dtype == (jnp.float64 if x64 else jnp.float32)
    params_def = jax.tree_util.tree_structure(PARAMS)
    for field in fields[2:]:
        tree = getattr(state, field)
        if name == "sgd":
            assert tree is None  # no momentum, no buffer
        else:
            assert jax.tree_util.tree_structure(tree) == params_def
            assert all(float(jnp.abs(leaf).max()) == 0 for leaf in jax.tree_util.tree_leaves(tree))


# --- init: one compiled program per structure -------------------------------------------


def test_optimizers_of_one_structure_share_one_init_program():
    params = {"w": jnp.ones((3, 11)), "b": jnp.zeros((1, 11))}  # shapes of their own
    before = init_programs()
    for lr, decay in ((0.02, 5e-7), (0.05, 5e-5), (1.0, 0.0)):
        state = optim.adam(lr, decay=decay).init(params)
        assert init_programs() == before + 1  # other values: the same program
        assert float(state.learning_rate) == np.float32(lr)
    for max_norm, lr in ((1.0, 0.1), (5.0, 0.3)):
        optim.chain(optim.clip_by_global_norm(max_norm), optim.sgd(lr, momentum=0.9)).init(
            params)
        assert init_programs() == before + 2  # one chain structure, one program
    optim.adam(0.02).init({"w": jnp.ones((3, 12))})  # params of another shape
    assert init_programs() == before + 3


def eager_state(rule, params):
    """A rule's initial state as the previous eager code made it, one operation at a
    time: count 0, ``learning_rate_at(count 0)``, zero moment trees."""
    count = jnp.zeros((), jnp.int32)
    rate = optim.base.learning_rate_at(rule.learning_rate, rule.decay, count,
                                       optim.base.float_dtype(params))
    zeros = jax.tree.map(jnp.zeros_like, params)
    return {"sgd": lambda: optim.SgdState(count, rate, None),
            "adam": lambda: optim.AdamState(count, rate, zeros, zeros),
            "rmsprop": lambda: optim.RmspropState(count, rate, zeros)}[type(rule).__name__
                                                                     .lower()]()


@pytest.mark.parametrize("rule", [
    optim.adam(0.02, decay=5e-7), optim.adam(0.05, decay=5e-5), optim.sgd(1.0, decay=1e-3),
    optim.rmsprop(optim.exponential_decay(0.01, 0.5, 100), decay=1e-4)],
    ids=["adam-book", "adam-fast", "sgd-decay", "rmsprop-schedule"])
@pytest.mark.users_codegen
def test_init_state_is_bit_for_bit_the_eager_state(rule, x64):
    params = pn.serial(pn.dense(2, 64), pn.relu(), pn.dense(64, 3)).init(jax.random.key(0))
    got, want = rule.init(params), eager_state(rule, params)
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def test_a_chain_calls_a_foreign_transformations_init_as_it_is():
    calls = []

    def init(params):
        calls.append(params)  # a Python side effect: runs on every init, eagerly
        return ()

    foreign = optim.GradientTransformation(init, lambda g, s, p=None: (g, s))
    params = {"w": jnp.ones((2, 3))}
    state = optim.chain(foreign, optim.adam(0.1)).init(params)
    assert len(calls) == 1 and not isinstance(calls[0]["w"], jax.core.Tracer)
    assert state[0] == () and int(state[1].count) == 0


@pytest.fixture(scope="module")
def jitted_runs():
    """Two updates of each optimizer of ``STATES``, all in one compiled function."""
    opts = {name: make() for name, (make, _, _) in STATES.items()}

    @jax.jit
    def run(params):
        out = {}
        for name, opt in opts.items():
            state, updates_list = opt.init(params), []
            for grads in (GRADS_1, GRADS_2):
                updates, state = opt.update(grads, state, params)
                updates_list.append(updates)
            out[name] = (updates_list, state)
        return out

    return opts, run(PARAMS)


@pytest.mark.parametrize("name", list(STATES))
def test_jit_gives_the_eager_result(jitted_runs, name):
    opts, results = jitted_runs
    eager_updates, eager_state = run_updates(opts[name], [GRADS_1, GRADS_2])
    jit_updates, jit_state = results[name]
    assert_trees_close(jit_updates, eager_updates, rtol=1e-6)
    assert type(jit_state) is type(eager_state)
    assert_trees_close(jit_state, eager_state, rtol=1e-6)


def test_vmap_over_stacked_params_equals_separate_runs():
    opt = optim.chain(optim.clip_by_global_norm(2.0), optim.adam(0.1, decay=0.1))
    copies = [jax.tree_util.tree_map(lambda x, s=s: x * s, PARAMS) for s in (1.0, -2.0, 0.5)]
    grads = [jax.tree_util.tree_map(lambda g, s=s: g * s, GRADS_1) for s in (1.0, 3.0, -0.2)]

    def two_steps(params, g):
        state = opt.init(params)
        u1, state = opt.update(g, state, params)
        params = optim.apply_updates(params, u1)
        u2, state = opt.update(g, state, params)
        return optim.apply_updates(params, u2), state

    stack = lambda trees: jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)  # noqa: E731

    @jax.jit
    def batched_and_one_by_one(params, g):
        return jax.vmap(two_steps)(params, g), jax.lax.map(lambda pg: two_steps(*pg), (params, g))

    batched, one_by_one = batched_and_one_by_one(stack(copies), stack(grads))
    assert_trees_close(batched, one_by_one, rtol=1e-6)
    first_params, first_state = two_steps(copies[0], grads[0])  # eager, unbatched
    take_first = lambda tree: jax.tree_util.tree_map(lambda x: x[0], tree)  # noqa: E731
    assert_trees_close(take_first(batched), (first_params, first_state), rtol=1e-6)
    assert type(batched[1][1]) is optim.AdamState and batched[1][1].count.shape == (3,)


def test_float32_params_give_float32_updates_and_state():
    params, grads = (jax.tree_util.tree_map(lambda x: jnp.asarray(np.float32(x)), tree)
                     for tree in (PARAMS, GRADS_1))
    opts = {name: make() for name, (make, _, _) in STATES.items()}
    states = {name: opt.init(params) for name, opt in opts.items()}

    @jax.jit
    def step(params, states, grads):
        out = {}
        for name, opt in opts.items():
            updates, state = opt.update(grads, states[name], params)
            out[name] = (updates, state, optim.apply_updates(params, updates))
        return out

    for name, (updates, state, new_params) in step(params, states, grads).items():
        assert states[name].learning_rate.dtype == jnp.float32, name
        for tree in (updates, state[2:], new_params):
            for leaf in jax.tree_util.tree_leaves(tree):
                assert leaf.dtype == jnp.float32, name
        assert state.learning_rate.dtype == jnp.float32, name
        assert state.count.dtype == jnp.int32, name


def test_apply_updates_keeps_each_params_dtype(x64):
    narrow, wide = (jnp.float32, jnp.float64) if x64 else (jnp.bfloat16, jnp.float32)
    params = {"a": jnp.ones(2, narrow), "b": jnp.ones(2, wide)}
    updates = {"a": jnp.full(2, 0.5, wide), "b": jnp.full(2, 0.5, narrow)}
    new = optim.apply_updates(params, updates)
    assert new["a"].dtype == narrow and new["b"].dtype == wide
    np.testing.assert_array_equal(np.asarray(new["a"]), [1.5, 1.5])


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize("build, error, message", [
    (lambda: optim.sgd(-0.1), ValueError, r"learning_rate must be a finite number > 0; got -0\.1"),
    (lambda: optim.adam(0.0), ValueError, r"learning_rate must be a finite number > 0; got 0\.0"),
    (lambda: optim.rmsprop(float("nan")), ValueError,
     r"learning_rate must be a finite number > 0; got nan"),
    (lambda: optim.sgd("0.1"), TypeError,
     r"learning_rate must be a finite number > 0 or a schedule count -> rate; got '0\.1' "
     r"\(str\)"),
    (lambda: optim.adagrad(True), TypeError, r"learning_rate must be .*; got True \(bool\)"),
    (lambda: optim.sgd(jnp.ones(2)), ValueError, r"learning_rate must be a scalar"),
    (lambda: optim.adam(decay=-1e-3), ValueError,
     r"decay must be a finite number >= 0; got -0\.001"),
    (lambda: optim.adam(decay=True), TypeError, r"decay must be .*; got True \(bool\)"),
    (lambda: optim.sgd(momentum=-0.5), ValueError,
     r"momentum must be a finite number >= 0; got -0\.5"),
    (lambda: optim.adagrad(epsilon=0.0), ValueError,
     r"epsilon must be a finite number > 0; got 0\.0"),
    (lambda: optim.adam(epsilon=-1e-7), ValueError, r"epsilon must be a finite number > 0"),
    (lambda: optim.adam(beta_1=1.0), ValueError, r"beta_1 must be in \[0, 1\); got 1\.0"),
    (lambda: optim.adam(beta_2=-0.1), ValueError, r"beta_2 must be in \[0, 1\); got -0\.1"),
    (lambda: optim.rmsprop(rho=1.5), ValueError, r"rho must be in \[0, 1\); got 1\.5"),
    (lambda: optim.clip_by_global_norm(0), ValueError,
     r"max_norm must be a finite number > 0; got 0\.0"),
    (lambda: optim.chain(optim.sgd(), optim.adam), TypeError,
     r"chain: argument 1 .*Did you pass adam instead of adam\(\)"),
    (lambda: optim.adam(beta_1=0.5j), TypeError,
     r"beta_1 must be a number in \[0, 1\); got 0\.5j \(complex\)"),
    (lambda: optim.rmsprop(rho="0.9"), TypeError, r"rho must be a number in \[0, 1\); got str"),
    (lambda: optim.sgd(jnp.asarray(True)), TypeError,
     r"learning_rate must be a finite number > 0; got an array of dtype bool"),
    (lambda: optim.exponential_decay(0.1, 0.5, 0), ValueError,
     r"decay_steps must be a positive integer \(>= 1\); got 0"),
])
def test_bad_hyperparameters_are_rejected_when_built(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_numpy_scalar_hyperparameters_become_floats_as_python_numbers_do():
    built = optim.adam(np.float32(0.25), decay=np.float64(5e-7), beta_1=np.float32(0.5))
    assert built == optim.adam(0.25, decay=5e-7, beta_1=0.5)
    assert all(type(leaf) is float for leaf in jax.tree.leaves(built))


MODEL_PARAMS = ({"weights": jnp.zeros((2, 64)), "biases": jnp.zeros((1, 64))}, ())


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("make, against", [
    (lambda: optim.adam(), "the optimizer state"),
    (lambda: optim.sgd(momentum=0.9), "the optimizer state"),
    (lambda: optim.adagrad(), "the optimizer state"),
    (lambda: optim.rmsprop(), "the optimizer state"),
    (lambda: optim.sgd(), "params"),
    (lambda: optim.chain(optim.clip_by_global_norm(1.0), optim.adam()), "params"),
])
def test_grads_that_do_not_match_are_rejected(make, against, jit):
    opt = make()
    state = opt.init(MODEL_PARAMS)
    update = jax.jit(opt.update) if jit else opt.update
    narrow = ({"weights": jnp.zeros((2, 32)), "biases": jnp.zeros((1, 64))}, ())
    with pytest.raises(ValueError, match=rf"grads does not match {against}: at "
                                         r"\[0\]\['weights'\] expected shape \(2, 64\), "
                                         r"got \(2, 32\)"):
        update(narrow, state, MODEL_PARAMS)
    misspelt = ({"weights": jnp.zeros((2, 64)), "bias": jnp.zeros((1, 64))}, ())
    with pytest.raises(ValueError, match=rf"grads does not match {against}: expected "
                                         r"structure .*; missing \[0\]\['biases'\]; "
                                         r"unexpected \[0\]\['bias'\]"):
        update(misspelt, state, MODEL_PARAMS)


def test_update_rejects_a_state_from_another_optimizer():
    with pytest.raises(TypeError, match=r"adam.update: state must be the AdamState .*"
                                        r"got SgdState"):
        optim.adam().update(GRADS_1, optim.sgd().init(PARAMS))
    with pytest.raises(ValueError, match=r"made by an sgd without momentum"):
        optim.sgd(momentum=0.9).update(GRADS_1, optim.sgd().init(PARAMS))
    with pytest.raises(TypeError, match=r"chain.update: state must be the tuple of 2 states"):
        optim.chain(optim.sgd(), optim.sgd()).update(GRADS_1, optim.sgd().init(PARAMS))


def test_apply_updates_rejects_mismatched_trees():
    with pytest.raises(ValueError, match=r"apply_updates: updates does not match params: "
                                         r"expected structure .*missing \['b'\]"):
        optim.apply_updates(PARAMS, {"a": GRADS_1["a"]})
    with pytest.raises(ValueError, match=r"apply_updates: updates does not match params: at "
                                         r"\['a'\] expected shape \(3,\), got \(2,\)"):
        optim.apply_updates(PARAMS, {"a": jnp.zeros(2), "b": GRADS_1["b"]})


def test_current_learning_rate_needs_exactly_one_rate():
    with pytest.raises(ValueError, match=r"this state has no learning rate"):
        optim.current_learning_rate(optim.chain(optim.clip_by_global_norm(1.0)).init(PARAMS))
    with pytest.raises(ValueError, match=r"holds 2 learning rates"):
        optim.current_learning_rate(optim.chain(optim.sgd(), optim.adam()).init(PARAMS))


def test_schedule_must_return_a_scalar():
    opt = optim.sgd(lambda count: jnp.ones(2))
    with pytest.raises(ValueError, match=r"schedule must return a scalar; got shape \(2,\)"):
        opt.init(PARAMS)


# --- the reference loop itself, in its other modes ---------------------------------------


def book_layout_params(seed, hidden, outputs, layout):
    """Params in purenn's layout without compiling an init: ``layout`` is a string with
    ``d`` for a dense layer and ``-`` for a parameterless one."""
    rng = np.random.default_rng(seed)
    sizes = iter([(2, hidden), (hidden, outputs)])
    params = []
    for kind in layout:
        if kind == "-":
            params.append(())
            continue
        n_in, n_out = next(sizes)
        params.append({"weights": jnp.asarray(0.1 * rng.standard_normal((n_in, n_out))),
                       "biases": jnp.asarray(0.01 * rng.standard_normal((1, n_out)))})
    return tuple(params)


@pytest.mark.x64
def test_reference_loop_binary_matches_purenn(chapter14):
    _, X, labels, _ = chapter14
    y = (labels == 0).astype(jnp.int32).reshape(-1, 1)  # class 0 or not: one binary output
    model = pn.serial(pn.dense(2, 64, weight_l2=5e-4, bias_l2=5e-4), pn.relu(),
                      pn.dense(64, 1), pn.sigmoid())
    params = book_layout_params(4, 64, 1, "d-d-")
    expected, expected_params = book_train(X, y, params, book.Optimizer_Adam(decay=5e-7), 5,
                                           kind="binary")
    forward = forward_backward(model, pn.losses.binary_crossentropy,
                               pn.losses.binary_accuracy, X, y)
    final, _, history = purenn_train(forward, params, {"adam": optim.adam(decay=5e-7)}, 5)["adam"]
    for metric in ("loss", "data_loss", "reg_loss", "learning_rate"):
        np.testing.assert_allclose(history[metric], expected[metric], rtol=1e-10)
    assert_same_accuracy(history["accuracy"], expected["accuracy"], len(y))
    assert len(expected_params) == 4 and expected_params[1] == expected_params[3] == ()
    assert_trees_close(final, expected_params, rtol=1e-10)


@pytest.mark.x64
def test_reference_loop_dropout_matches_purenn_with_its_masks(chapter14):
    _, X, y, _ = chapter14
    rate, n, hidden = 0.1, X.shape[0], 64
    model = pn.serial(pn.dense(2, hidden, weight_l2=5e-4, bias_l2=5e-4), pn.relu(),
                      pn.dropout(rate), pn.dense(hidden, 3))
    params = book_layout_params(6, hidden, 3, "d--d")
    key = jax.random.key(7)

    @jax.jit
    def draw_mask(epoch):  # the mask purenn's dropout layer (layer 2 of 4) draws that epoch
        layer_key = jax.random.split(jax.random.fold_in(key, epoch), 4)[2]
        return pn.ops.dropout(jnp.ones((n, hidden)), layer_key, rate) != 0

    def masks(epoch):
        return np.asarray(draw_mask(epoch))

    assert 0 < masks(0).mean() < 1
    expected, expected_params = book_train(X, y, params, book.Optimizer_Adam(0.05, 5e-5), 5,
                                           dropout_rate=rate, dropout_masks=masks)
    forward = forward_backward(model, pn.losses.softmax_categorical_crossentropy,
                               pn.losses.categorical_accuracy, X, y)
    final, _, history = purenn_train(forward, params, {"adam": optim.adam(0.05, 5e-5)}, 5,
                                     key=key)["adam"]
    for metric in ("loss", "data_loss", "reg_loss", "learning_rate"):
        np.testing.assert_allclose(history[metric], expected[metric], rtol=1e-10)
    assert_same_accuracy(history["accuracy"], expected["accuracy"], len(y))
    assert_trees_close(final, expected_params, rtol=1e-10)
