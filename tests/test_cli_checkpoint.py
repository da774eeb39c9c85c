"""``--save`` keeps a run as ``pn.fit``'s checkpoint: Ctrl-C exits with 130 and says how
to continue, ``--resume`` continues and ends bit-identical to an uninterrupted run. In
float32 (what users run); real signals to ``python -m purenn`` are sent in
``tests/test_stop_signals.py``, other options on resume in ``tests/test_run_settings.py``."""

import dataclasses
import re
import shlex

import jax
import pytest
import safetensors.numpy

import purenn as pn
import purenn.checkpoint
from purenn import cli, experiments
from tests.cli_calls import run

INTERRUPTED = re.compile(r"^purenn (book|train): interrupted at epoch (\d+); saved to (.+); "
                         r"continue with: purenn (.+)$")


@pytest.fixture(autouse=True)
def float32(tmp_path, monkeypatch):
    monkeypatch.setenv("PURENN_NO_CACHE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with jax.enable_x64(False):
        yield


def tensors(path):
    """Every tensor of a checkpoint as NumPy, whatever jax_enable_x64 says."""
    return safetensors.numpy.load_file(str(path))


def assert_same_bits(a, b):
    left, right = tensors(a), tensors(b)
    assert sorted(left) == sorted(right)
    for name in left:
        assert left[name].dtype == right[name].dtype, name
        assert left[name].tobytes() == right[name].tobytes(), name


@pytest.mark.parametrize("command", [["book", "regularization"],
                                     ["train", "--hidden", "16", "--dropout", "0.1",
                                      "--batch-size", "100"]], ids=["book", "train"])
def test_resume_continues_a_saved_run_bit_identically(command, capsys, tmp_path):
    command = [*command, "--log-every", 10]
    whole, part = tmp_path / "whole.safetensors", tmp_path / "part.safetensors"
    code, whole_lines, _ = run(capsys, *command, "--epochs", 25, "--save", whole)
    assert code == 0
    assert run(capsys, *command, "--epochs", 12, "--save", part)[0] == 0
    assert int(tensors(part)["epoch"]) == 12
    code, lines, err = run(capsys, *command, "--epochs", 25, "--save", part, "--resume")
    assert code == 0, err
    # it prints from where it continues, and ends with the uninterrupted run's lines
    assert [line.split(",")[0] for line in lines] == ["epoch: 20", "epoch: 24",
                                                      "validation"]
    assert lines[-2:] == whole_lines[-2:]
    assert_same_bits(part, whole)


def test_checkpoint_every(capsys, tmp_path, monkeypatch):
    """The checkpoint is written at each log line by default, every --checkpoint-every
    epochs when given, and always at the end."""
    saved = []
    real = pn.checkpoint.save

    def record(path, tree, **options):
        saved.append(int(tree["epoch"]))
        return real(path, tree, **options)

    monkeypatch.setattr(pn.checkpoint, "save", record)
    path = tmp_path / "run.safetensors"
    for options, expected in (([], [50, 100, 120]),
                              (["--checkpoint-every", 40], [40, 80, 120]),
                              (["--checkpoint-every", 0], [120]),
                              (["--quiet"], [50, 100, 120])):
        saved.clear()
        code, _, _ = run(capsys, "train", "--epochs", 120, "--log-every", 50, "--save", path,
                         *options)
        assert code == 0
        assert saved == expected, options


def test_interrupt_names_the_epoch_and_the_command_that_continues(capsys, tmp_path,
                                                                  monkeypatch):
    path = tmp_path / "run.safetensors"
    real = experiments.run

    def interrupted(config, seed, **kwargs):  # a run stopped by Ctrl-C after 200 epochs
        real(dataclasses.replace(config, epochs=200), seed, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(experiments, "run", interrupted)
    argv = ["train", "--epochs", "500", "--hidden", "8", "--save", str(path), "--quiet"]
    code, _, err = run(capsys, *argv)
    assert code == 130
    assert err.splitlines() == [f"purenn train: interrupted at epoch 200; saved to {path}; "
                                f"continue with: purenn {shlex.join(argv + ['--resume'])}"]

    # interrupted again while resuming: the same command continues
    code, _, err = run(capsys, *argv, "--resume")
    assert code == 130
    assert INTERRUPTED.match(err.strip())[4] == shlex.join(argv + ["--resume"])


def test_interrupt_before_the_first_checkpoint_says_nothing_was_saved(capsys, tmp_path,
                                                                      monkeypatch):
    path = tmp_path / "run.safetensors"
    path.write_bytes(b"an older file, left as it is")

    def interrupted(config, seed, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(experiments, "run", interrupted)
    code, _, err = run(capsys, "train", "--epochs", "50", "--save", path)
    assert code == 130
    assert err.splitlines() == [f"purenn train: interrupted before the first checkpoint; "
                                f"nothing saved to {path}"]
    # without --save there is nothing to continue
    code, _, err = run(capsys, "train", "--epochs", "50")
    assert (code, err) == (130, "purenn train: interrupted\n")


@pytest.mark.parametrize("case, message", [
    ("seeds-file", r"--resume: '.*' is not the checkpoint of a single run"),
    ("other-seed", r"--resume: '.*' was written by a run with another seed; give the --seed"),
    ("past-epochs", r"--resume: '.*' is at epoch 30, past --epochs 20; give --epochs 30"),
    ("other-model", r"--resume: '.*' is of a run with other options: --hidden: 8 in the "
                    r"checkpoint, 9 now; give the options it was started with, add "
                    r"--resume-with-changes to continue it with these, or leave out "
                    r"--resume to start over"),
    ("not-safetensors", r"--resume: cannot read '.*'"),
])
def test_resume_refuses_a_file_it_cannot_continue(case, message, capsys, tmp_path):
    path = tmp_path / "run.safetensors"
    train = ["train", "--hidden", "8", "--quiet", "--save", path]
    if case == "seeds-file":
        assert run(capsys, *train, "--epochs", 5, "--seeds", 2)[0] == 0
    elif case == "not-safetensors":
        path.write_text("not a checkpoint\n")
    else:
        assert run(capsys, *train, "--epochs", 30)[0] == 0
    resume = {"other-seed": [*train, "--epochs", 40, "--seed", 1],
              "past-epochs": [*train, "--epochs", 20],
              "other-model": ["train", "--hidden", "9", "--save", path, "--epochs", 40]}
    with pytest.raises(SystemExit) as exit_info:
        cli.main([str(a) for a in resume.get(case, [*train, "--epochs", 40])] + ["--resume"])
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1, err
    assert re.match(r"purenn train: error: " + message, err), err


@pytest.mark.parametrize("quiet", [[], ["--quiet"]], ids=["logging", "quiet"])
def test_validation_every_keeps_its_own_clock(capsys, tmp_path, quiet):
    path = tmp_path / "run.safetensors"
    code, lines, err = run(capsys, "train", "--hidden", "16", "--epochs", 41, "--log-every",
                           0, "--validation-every", 20, "--save", path, *quiet)
    assert code == 0, err
    assert len(lines) == 2  # the last epoch's line and the validation line, as ever
    assert tensors(path)["history/val_epoch"].tolist() == [0, 20, 40]
