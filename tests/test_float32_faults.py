"""Faults in the mode users run: float32 (``jax_enable_x64`` off), and float64 alike.

Resume from a checkpoint, the state a ``DivergenceError`` carries, a non-finite optimizer
state, Ctrl-C during ``fit``: each in both modes, built inside the mode it runs in.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purenn as pn
from tests.counting import compiles

CCE = pn.losses.softmax_categorical_crossentropy
MODES = [pytest.param(False, id="float32"), pytest.param(True, id="float64")]


def _setup(hidden=8):
    X, y = pn.data.spiral(jax.random.key(1), 20, 3)
    model = pn.serial(pn.dense(2, hidden, weight_l2=5e-4), pn.relu(), pn.dropout(0.1),
                      pn.dense(hidden, 3))
    return model, model.init(jax.random.key(2)), X, y


def _same_bits(a, b):
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(leaves_a) == len(leaves_b)
    for x, z in zip(leaves_a, leaves_b):
        assert np.asarray(x).dtype == np.asarray(z).dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(z))


@pytest.mark.parametrize("x64", MODES)
def test_resume_is_bit_identical(tmp_path, x64):
    with jax.enable_x64(x64):
        model, params, X, y = _setup()
        opt = pn.optimizers.adam(0.05, decay=1e-3)
        common = dict(key=jax.random.key(3), log_fn=None, batch_size=16)
        full = pn.fit(model, CCE, opt, params, X, y, epochs=60, **common)
        path = tmp_path / "run.safetensors"
        pn.fit(model, CCE, opt, params, X, y, epochs=30, checkpoint_path=path,
               checkpoint_every=10, **common)
        assert int(pn.checkpoint.load(path)["epoch"]) == 30
        resumed = pn.fit(model, CCE, opt, params, X, y, epochs=60, checkpoint_path=path,
                         checkpoint_every=10, **common)
        _same_bits(full[:2], resumed[:2])
        for name in ("loss", "accuracy", "learning_rate"):
            np.testing.assert_array_equal(full[2][name], resumed[2][name])
        assert resumed[2]["learning_rate"].dtype == (np.float64 if x64 else np.float32)


@pytest.mark.parametrize("x64", MODES)
def test_a_plain_checkpoint_is_not_taken_for_a_fit_checkpoint(tmp_path, x64):
    with jax.enable_x64(x64):
        model, params, X, y = _setup()
        opt = pn.optimizers.adam()
        path = tmp_path / "plain.safetensors"
        pn.checkpoint.save(path, {"params": params, "opt_state": opt.init(params)})
        with pytest.raises(ValueError, match=r"is not a fit checkpoint \(it holds opt_state, "
                                             r"params; a fit checkpoint also has epoch"):
            pn.fit(model, CCE, opt, params, X, y, key=jax.random.key(0), epochs=2,
                   log_fn=None, checkpoint_path=path)


def test_a_missing_checkpoint_folder_is_found_before_training(tmp_path):
    model, params, X, y = _setup()
    with pytest.raises(FileNotFoundError, match=r"checkpoint_path .*missing.*does not exist"):
        pn.fit(model, CCE, pn.optimizers.adam(), params, X, y, key=jax.random.key(0),
               epochs=2, log_fn=None, checkpoint_path=tmp_path / "missing" / "run.st")


@pytest.mark.parametrize("x64", MODES)
def test_divergence_keeps_a_state_whose_loss_is_finite(x64):
    with jax.enable_x64(x64):
        X, y = pn.data.spiral(jax.random.key(1), 20, 3)
        model = pn.serial(pn.dense(2, 16), pn.relu(), pn.dense(16, 16), pn.relu(),
                          pn.dense(16, 3))
        params = model.init(jax.random.key(2))
        with pytest.raises(pn.DivergenceError, match="training diverged") as info:
            rate = 1e200 if x64 else 1e20
            pn.fit(model, CCE, pn.optimizers.sgd(learning_rate=rate), params, X, y,
                   key=jax.random.key(0), epochs=50, log_fn=None)
        error = info.value
        assert error.state_epoch in (error.epoch, error.epoch - 1)
        for tree in (error.params, error.opt_state):
            assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(tree))
        assert np.isfinite(pn.evaluate(model, CCE, error.params, X, y)["loss"])
        assert len(error.history["loss"]) == error.state_epoch
        assert np.all(np.isfinite(error.history["loss"]))
        # Resuming from it with a sane rate works and continues the key schedule.
        params, _, history = pn.fit(model, CCE, pn.optimizers.sgd(learning_rate=0.1),
                                    error.params, X, y, key=jax.random.key(0), epochs=5,
                                    initial_epoch=error.state_epoch, log_fn=None)
        assert history["epoch"][0] == error.state_epoch
        assert np.all(np.isfinite(history["loss"]))


@pytest.mark.parametrize("x64", MODES)
def test_a_non_finite_optimizer_state_is_divergence(x64):
    with jax.enable_x64(x64):
        model, params, X, y = _setup()
        huge = X * (1e30 if not x64 else 1e300)
        with pytest.raises(pn.DivergenceError, match="training diverged") as info:
            pn.fit(model, CCE, pn.optimizers.adam(), params, huge, y,
                   key=jax.random.key(0), epochs=20, log_fn=None)
        for tree in (info.value.params, info.value.opt_state):
            assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(tree))


@pytest.mark.parametrize("x64", MODES)
def test_ctrl_c_saves_the_run_and_resume_is_bit_identical(tmp_path, x64):
    with jax.enable_x64(x64):
        model, params, X, y = _setup()
        opt = pn.optimizers.adam(0.05)
        common = dict(key=jax.random.key(3), log_every=10, batch_size=16)
        full = pn.fit(model, CCE, opt, params, X, y, epochs=80, log_fn=None, **common)
        path = tmp_path / "run.safetensors"

        def interrupt_after_epoch_30(line):
            if line.startswith("epoch: 30,"):
                # What Python's SIGINT handler raises, here; real signals sent to a real
                # process are tests/test_stop_signals.py's.
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            pn.fit(model, CCE, opt, params, X, y, epochs=80, checkpoint_path=path,
                   log_fn=interrupt_after_epoch_30, **common)
        saved = int(pn.checkpoint.load(path)["epoch"])
        assert 31 <= saved < 80
        resumed = pn.fit(model, CCE, opt, params, X, y, epochs=80, checkpoint_path=path,
                         log_fn=None, **common)
        _same_bits(full[:2], resumed[:2])
        np.testing.assert_array_equal(full[2]["loss"], resumed[2]["loss"])


def test_epochs_past_int32_are_refused_at_once():
    model, params, X, y = _setup()
    with pytest.raises(ValueError, match=r"initial_epoch \+ epochs must be at most "
                                         r"2147483647"):
        pn.fit(model, CCE, pn.optimizers.adam(), params, X, y, key=jax.random.key(0),
               epochs=10**20, log_fn=None)


def test_logging_intervals_take_numpy_integers():
    model, params, X, y = _setup()
    lines = []
    pn.fit(model, CCE, pn.optimizers.adam(), params, X, y, key=jax.random.key(0),
           epochs=np.int64(21), log_every=np.int64(10), log_fn=lines.append)
    assert [line.split(",")[0] for line in lines] == ["epoch: 0", "epoch: 10", "epoch: 20"]


# --- faults the lean loop finds, replayed by the checked loop -----------------------------


@pn.pytrees.dataclass
class FaultySGD(pn.optimizers.Optimizer):
    """Plain SGD whose update number ``state_at`` or ``huge_at`` goes wrong (-1: never).
    At ``state_at`` its state becomes inf while the params stay finite, so every loss
    stays finite and only the lean loop's final check sees it. At ``huge_at`` the params
    are thrown to ``huge``, a finite value whose next forward pass overflows: the next loss
    is not finite. The epochs are leaves: the faults of both tests are one structure, and
    one compiled program serves them."""

    rate: float
    state_at: int = -1
    huge_at: int = -1

    def init(self, params):
        del params  # unused
        return jnp.zeros((), jnp.int32), jnp.zeros(())

    def update(self, grads, state, params=None):
        del params  # unused
        count, tally = state
        huge = 1e200 if jax.config.jax_enable_x64 else 1e30
        updates = jax.tree.map(lambda g: jnp.where(count == self.huge_at, huge, -self.rate * g),
                               grads)
        return updates, (count + 1, jnp.where(count == self.state_at, jnp.inf, tally))


def _same_history(error_history, history):
    assert set(error_history) == set(history)
    for name, values in history.items():
        assert error_history[name].dtype == values.dtype, name
        np.testing.assert_array_equal(error_history[name], values)


@pytest.mark.users_codegen
@pytest.mark.parametrize("x64", MODES)
def test_a_fault_only_the_final_check_sees_is_found_at_its_epoch(x64):
    """Every loss stays finite; the optimizer state becomes inf at epoch 37, inside the
    chunk of epochs 1 to 50. The lean loop runs the chunk through, its final check
    fails, and the checked loop's replay raises the error a fully checked run raises."""
    with jax.enable_x64(x64):
        model, params, X, y = _setup()
        opt = FaultySGD(0.1, state_at=37)
        common = dict(key=jax.random.key(3), log_every=50, log_fn=None)
        with compiles() as seen:
            expected = pn.fit(model, CCE, opt, params, X, y, epochs=37, **common)
            sound = [name for name, _ in seen]  # a sound run compiles no checked loop
            with pytest.raises(pn.DivergenceError) as info:
                pn.fit(model, CCE, opt, params, X, y, epochs=60, **common)
        names = [name for name, _ in seen]
        assert "jit(_run_program)" in sound and "jit(_checked_program)" not in sound
        assert names.count("jit(_checked_program)") == 1, names
        error = info.value
        assert str(error).startswith("the parameters or the optimizer state became "
                                     "non-finite at epoch 37: training diverged. The "
                                     "exception keeps the last state with a finite loss, "
                                     "entering epoch 37 (")
        assert (error.epoch, error.state_epoch) == (37, 37)
        _same_bits((error.params, error.opt_state), expected[:2])
        _same_history(error.history, expected[2])
        # The checked loop run by hand on that chunk stops at the same place.
        p1, o1, _ = pn.fit(model, CCE, opt, params, X, y, epochs=1, **common)
        checked = pn.train.checked_chunk_program(
            pn.train.Components(model, CCE, opt, pn.losses.categorical_accuracy), None)
        result = checked(pn.train.RunState(p1, o1, p1, o1), X, y, common["key"],
                         np.int32(1), np.int32(50))
        assert int(result.done) == 36
        _same_bits((error.params, error.opt_state), result.state[:2])


@pytest.mark.users_codegen
@pytest.mark.parametrize("x64", MODES)
def test_a_loss_that_fails_first_in_a_chunk_goes_back_to_the_chunk_before(x64):
    """Epoch 10's update makes huge, finite params: the chunk of epochs 1 to 10 is sound,
    and the loss of epoch 11, the first of the next chunk, is not finite. The last state
    with a finite loss enters epoch 10, in the chunk before."""
    with jax.enable_x64(x64):
        model, params, X, y = _setup()
        opt = FaultySGD(0.1, huge_at=10)
        common = dict(key=jax.random.key(3), log_every=10, log_fn=None)
        expected = pn.fit(model, CCE, opt, params, X, y, epochs=10, **common)
        with pytest.raises(pn.DivergenceError, match=r"the loss became (nan|inf) at epoch "
                                                     r"11: training diverged\. The exception "
                                                     r"keeps the last state with a finite "
                                                     r"loss, entering epoch 10 ") as info:
            pn.fit(model, CCE, opt, params, X, y, epochs=30, **common)
        error = info.value
        assert (error.epoch, error.state_epoch) == (11, 10)
        _same_bits((error.params, error.opt_state), expected[:2])
        _same_history(error.history, expected[2])
