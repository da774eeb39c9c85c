"""A checkpoint knows its run: ``pn.fit`` keeps the run's settings in it, a resume with
other settings is refused with one message naming each (in the library's words, or in the
command line's), ``resume_with_changes`` / ``--resume-with-changes`` continues on purpose
and the checkpoint records it; a checkpoint saved at any moment loads in the mode that
saved it, and a damaged one is named. In float32, and float64 where the dtype matters.

The model and data have the shapes of ``tests/test_float32_faults.py``, so the two files
share compiled programs."""

import io
import re
import signal
import sys

import jax
import numpy as np
import pytest

import purenn as pn
from purenn import cli

CCE = pn.losses.softmax_categorical_crossentropy
KEY = jax.random.key(3)


def model_of(*, hidden=8, weight_l2=5e-4):
    return pn.serial(pn.dense(2, hidden, weight_l2=weight_l2), pn.relu(), pn.dropout(0.1),
                     pn.dense(hidden, 3))


def data():
    return pn.data.spiral(jax.random.key(1), 20, 3)


def fit(path, *, epochs, model=None, optimizer=None, loss=CCE, **options):
    model = model_of() if model is None else model
    X, y = data()
    optimizer = pn.optimizers.adam(0.02) if optimizer is None else optimizer
    return pn.fit(model, loss, optimizer, model.init(jax.random.key(2)), X, y, key=KEY,
                  epochs=epochs, log_fn=None, checkpoint_path=path, **options)


def same_bits(a, b):
    for x, z in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert np.asarray(x).dtype == np.asarray(z).dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(z))


def without_settings(path):
    """Rewrite ``path`` as a purenn before run settings wrote it: the same tensors, no
    settings in the metadata."""
    pn.checkpoint.save(path, pn.checkpoint.load(path))


# --- the library ------------------------------------------------------------------------


def test_settings_name_functions_with_the_values_they_close_over():
    from purenn.train.settings import describe, differences, format_differences

    def adam_with(decay):
        return pn.optimizers.adam(pn.optimizers.inverse_time_decay(0.1, decay))

    kept, now = describe(adam_with(0.01), "optimizer"), describe(adam_with(0.02), "optimizer")
    assert kept["optimizer.learning_rate"] == (
        "purenn.optimizers.schedules.inverse_time_decay.<locals>.schedule(decay=0.01, "
        "learning_rate=0.1)")
    assert format_differences(differences(kept, now)) == (
        f"optimizer.learning_rate: {kept['optimizer.learning_rate']} in the checkpoint, "
        f"{now['optimizer.learning_rate']} now")
    assert differences(kept, describe(adam_with(0.01), "optimizer")) == {}


def test_a_resume_with_other_settings_names_each_one(tmp_path):
    path = tmp_path / "run.safetensors"
    fit(path, epochs=5)
    where = re.escape(f"the checkpoint {str(path)!r} is of a run with other settings: ")
    fix = (r"\. Pass the same settings to resume it, resume_with_changes=True to continue "
           r"it with these, resume=False to start over, or another checkpoint_path$")
    for options, named in [
        (dict(optimizer=pn.optimizers.adam(0.5)),
         r"optimizer.learning_rate: 0.02 in the checkpoint, 0.5 now"),
        (dict(model=model_of(weight_l2=1e-3), batch_size=16),
         r"model.layers\[0\].weight_l2: 0.0005 in the checkpoint, 0.001 now; "
         r"batch_size: None in the checkpoint, 16 now"),
        (dict(optimizer=pn.optimizers.sgd(0.02)), r"optimizer: Adam in the checkpoint, Sgd now"),
        (dict(model=model_of(hidden=16)),
         r"model.layers\[0\].n_neurons: 8 in the checkpoint, 16 now; "
         r"model.layers\[3\].n_inputs: 8 in the checkpoint, 16 now"),
    ]:
        with pytest.raises(ValueError, match=where + named + fix) as info:
            fit(path, epochs=10, **options)
        assert "like" not in str(info.value)
    assert pn.train.read_run(path).epoch == 5  # left as it was


def test_resume_with_changes_continues_and_the_checkpoint_records_it(tmp_path):
    path = tmp_path / "run.safetensors"
    params, opt_state, _ = fit(path, epochs=5)
    X, y = data()
    # what continuing with another learning rate means: the state of epoch 5, adam(0.5)
    expected = pn.fit(model_of(), CCE, pn.optimizers.adam(0.5), params, X, y, key=KEY,
                      epochs=5, initial_epoch=5, opt_state=opt_state, log_fn=None)
    changed = fit(path, epochs=10, optimizer=pn.optimizers.adam(0.5), resume_with_changes=True)
    same_bits(changed[:2], expected[:2])
    saved = pn.train.read_run(path)
    assert saved.changes == ({"epoch": 5, "settings": {
        "optimizer.learning_rate": ["0.02", "0.5"]}},)
    assert saved.settings["optimizer.learning_rate"] == "0.5"
    # a later resume compares with the newest settings
    fit(path, epochs=12, optimizer=pn.optimizers.adam(0.5))
    with pytest.raises(ValueError, match=r"optimizer.learning_rate: 0.5 in the checkpoint, "
                                         r"0.02 now"):
        fit(path, epochs=14)
    assert pn.train.read_run(path).changes == saved.changes
    with pytest.raises(ValueError, match=r"resume_with_changes=True continues a checkpoint: "
                                         r"it needs resume=True"):
        fit(path, epochs=14, resume=False, resume_with_changes=True)


def test_a_checkpoint_without_settings_resumes_only_on_purpose(tmp_path):
    path = tmp_path / "run.safetensors"
    fit(path, epochs=5)
    without_settings(path)
    with pytest.raises(ValueError, match=r"keeps no run settings \(an older purenn wrote "
                                         r"it\), so a resume cannot check that this run has "
                                         r"the same ones; pass resume_with_changes=True"):
        fit(path, epochs=8)
    fit(path, epochs=8, resume_with_changes=True)
    saved = pn.train.read_run(path)
    [change] = saved.changes
    assert change["epoch"] == 5
    assert change["settings"]["optimizer.learning_rate"] == [None, "0.02"]
    assert saved.epoch == 8 and saved.settings["optimizer.learning_rate"] == "0.02"


class _CtrlCAtFirstWrite(io.StringIO):
    """A stderr whose first write sends SIGINT: the progress bar draws itself on stderr
    when the run begins, before its first epoch, so that is where Ctrl-C comes."""

    def write(self, text):
        if not self.getvalue():
            super().write(text)
            signal.raise_signal(signal.SIGINT)
        return super().write(text)


def test_an_interrupt_before_the_first_epoch_saves_a_checkpoint_of_its_mode(
        tmp_path, x64, monkeypatch):
    path = tmp_path / "run.safetensors"
    monkeypatch.setattr(sys, "stderr", _CtrlCAtFirstWrite())
    with pytest.raises(KeyboardInterrupt):
        fit(path, epochs=20, batch_size=16, progress=True)
    monkeypatch.undo()
    real = np.float64 if x64 else np.float32
    assert pn.train.read_run(path).epoch == 0
    loaded = pn.checkpoint.load(path)  # in this mode: nothing in it is float64 in float32
    assert loaded["history"]["loss"].shape == (0,)
    assert loaded["history"]["loss"].dtype == real
    resumed = fit(path, epochs=20, batch_size=16)
    whole = fit(None, epochs=20, batch_size=16)
    same_bits(resumed[:2], whole[:2])
    np.testing.assert_array_equal(resumed[2]["loss"], whole[2]["loss"])


def test_a_checkpoint_of_the_other_precision_is_named_with_the_mode_to_resume_in(tmp_path):
    path = tmp_path / "run.safetensors"
    fit(path, epochs=5)
    with jax.enable_x64(True), pytest.raises(ValueError, match=(
            r"holds another state than this run's: params/0/biases: float32 of shape "
            r"\(1, 8\) in the checkpoint, float64 of shape \(1, 8\) now; .*and \d+ more "
            r"\(float64 is a run with "
            r"jax_enable_x64 on, float32 one with it off: resume in the mode the run was "
            r"saved in\)$")) as info:
        fit(path, epochs=10)
    assert "like" not in str(info.value)


def test_fit_without_the_checkpoint_file_starts_the_run(tmp_path):
    path = tmp_path / "run.safetensors"
    started = fit(path, epochs=5)
    same_bits(started[:2], fit(None, epochs=5)[:2])
    assert pn.train.read_run(path).epoch == 5


# --- a damaged checkpoint ---------------------------------------------------------------


@pytest.mark.parametrize("epoch, wrong", [
    (np.asarray([3, 4], np.int32), r"its epoch has shape \(2,\) and dtype int32, where a "
                                   r"fit checkpoint holds one int32 number"),
    (np.asarray(-5, np.int32), r"its epoch is -5, before its initial_epoch 0"),
    (np.asarray(7, np.int32), r"its history/loss has shape \(5,\), where epochs 0 to 6 "
                              r"make \(7,\)"),
], ids=["shape", "negative", "history"])
def test_a_damaged_epoch_is_named_by_the_library_and_the_command(epoch, wrong, tmp_path,
                                                                 capsys):
    path = tmp_path / "run.safetensors"
    argv = ["train", "--hidden", "16", "--samples", "50", "--validation-samples", "20",
            "--quiet", "--save", str(path)]
    assert cli.main([*argv, "--epochs", "5"]) == 0
    contents = pn.checkpoint.read(path)
    tree = pn.checkpoint.load(path)
    tree["epoch"] = epoch
    pn.checkpoint.save(path, tree, metadata=contents.metadata)
    message = (re.escape(f"the checkpoint {str(path)!r} is damaged: ") + wrong
               + r"; it cannot be resumed: start the run over")
    with pytest.raises(ValueError, match="^" + message + "$"):
        fit(path, epochs=10)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*argv, "--epochs", "10", "--resume"])
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert re.match(r"purenn train: error: --resume: " + message, err), err


# --- the command line -------------------------------------------------------------------


def test_resume_names_each_other_option_and_resume_with_changes_continues(tmp_path, capsys):
    path, plain = tmp_path / "run.safetensors", tmp_path / "plain.safetensors"
    train = ["train", "--hidden", "16", "--samples", "50", "--validation-samples", "20",
             "--log-every", "0"]

    def run(*argv):
        code = cli.main([*train, *map(str, argv)])
        out, err = capsys.readouterr()
        return code, err.splitlines()

    # --resume without the file starts the run, as the same command without --resume does
    code, err = run("--learning-rate", 0.02, "--epochs", 21, "--save", path, "--resume")
    assert code == 0
    assert err[0] == f"purenn train: --resume: {path} does not exist yet; starting the run"
    assert run("--learning-rate", 0.02, "--epochs", 21, "--save", plain)[0] == 0
    assert path.read_bytes() == plain.read_bytes()

    fix = ("; give the options it was started with, add --resume-with-changes to continue it "
           "with these, or leave out --resume to start over (see 'purenn train --help')")
    for argv, named in [
        (["--learning-rate", 0.5], "--learning-rate: 0.02 in the checkpoint, 0.5 now"),
        (["--hidden", 32, "--optimizer", "sgd", "--batch-size", 50],
         "--hidden: 16 in the checkpoint, 32 now; --optimizer: adam in the checkpoint, sgd "
         "now; --learning-rate: 0.02 in the checkpoint, not given now; --batch-size: not "
         "given in the checkpoint, 50 now"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            run(*argv, "--epochs", 41, "--save", path, "--resume")
        assert exit_info.value.code == 2
        assert capsys.readouterr().err == (
            f"purenn train: error: --resume: {str(path)!r} is of a run with other options: "
            f"{named}{fix}\n")

    code, err = run("--learning-rate", 0.5, "--epochs", 41, "--save", path,
                    "--resume-with-changes")
    assert code == 0
    assert err[0] == (f"purenn train: continuing {path} at epoch 21 with other options: "
                      f"--learning-rate: 0.02 in the checkpoint, 0.5 now")
    assert pn.train.read_run(path).changes == ({"epoch": 21, "settings": {
        "optimizer.learning_rate": ["0.02", "0.5"], "--learning-rate": ["0.02", "0.5"]}},)
    assert run("--learning-rate", 0.5, "--epochs", 51, "--save", path, "--resume")[0] == 0
    with pytest.raises(SystemExit):
        run("--learning-rate", 0.02, "--epochs", 61, "--save", path, "--resume")
    assert "--learning-rate: 0.5 in the checkpoint, 0.02 now" in capsys.readouterr().err

    # a checkpoint of a purenn that kept no settings: only on purpose
    without_settings(path)
    with pytest.raises(SystemExit):
        run("--learning-rate", 0.5, "--epochs", 61, "--save", path, "--resume")
    assert re.search(r"--resume: '.*' keeps no options \(an older purenn wrote it\), so "
                     r"--resume cannot check that these are the ones it was started with; "
                     r"add --resume-with-changes", capsys.readouterr().err)
    code, err = run("--learning-rate", 0.5, "--epochs", 61, "--save", path,
                    "--resume-with-changes")
    assert code == 0 and err[0] == f"purenn train: continuing {path} at epoch 51 with these options"
    assert pn.train.read_run(path).changes[0]["settings"]["--hidden"] == [None, "16"]
