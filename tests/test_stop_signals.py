"""Every stop signal saves: SIGTERM and SIGHUP are handled as Ctrl-C is, by
``purenn.signals.stop_signals``, by ``pn.fit(checkpoint_path=...)`` and by ``python -m
purenn train``, whose printed "continue with" command then finishes the run bit-identical
to an uninterrupted one. Real signals to real processes, in float32 (the CLI's mode; the
library's resume in float64 is tested in ``tests/test_float32_faults.py``).

The model, data and options have the shapes of ``tests/test_float32_faults.py`` and
``tests/test_run_settings.py``, so the files share compiled programs; the subprocesses
load them from the session's compilation cache (``tests/conftest.py``)."""

import fcntl
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import jax
import numpy as np
import pytest

import purenn as pn
from purenn import cli
from purenn.cli import common
from purenn.signals import StopSignal, exit_code, stop_signals

ROOT = Path(__file__).resolve().parents[1]
CCE = pn.losses.softmax_categorical_crossentropy
TIMEOUT = 300


# --- purenn.signals ---------------------------------------------------------------------


@pytest.fixture
def default_handlers():
    """SIGTERM and SIGHUP with their default handlers, as in a fresh process (a test run
    under nohup ignores SIGHUP, and so would its subprocesses)."""
    previous = {signum: signal.signal(signum, signal.SIG_DFL)
                for signum in (signal.SIGTERM, signal.SIGHUP)}
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_stop_signal_raises_a_keyboard_interrupt_that_names_it(signum, default_handlers):
    with pytest.raises(StopSignal) as info, stop_signals() as handled:
        assert handled == {signal.SIGTERM, signal.SIGHUP}
        signal.raise_signal(signum)
    assert isinstance(info.value, KeyboardInterrupt)
    assert (info.value.signum, info.value.name) == (signum, signal.Signals(signum).name)
    assert exit_code(info.value) == 128 + signum
    assert exit_code(KeyboardInterrupt()) == 130
    assert signal.getsignal(signum) == signal.SIG_DFL  # put back


def test_stop_signals_leaves_ignored_signals_other_handlers_and_threads_alone():
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    ignored = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stop_signals() as handled:
            assert handled == frozenset()
            signal.raise_signal(signal.SIGHUP)  # ignored, as nohup wants
            signal.raise_signal(signal.SIGTERM)  # the program's own handler
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGHUP, ignored)
    outside = []

    def in_a_thread():
        with stop_signals() as handled:
            outside.append(handled)

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()
    assert outside == [frozenset()]


# --- pn.fit ------------------------------------------------------------------------------


def setup():
    X, y = pn.data.spiral(jax.random.key(1), 20, 3)
    model = pn.serial(pn.dense(2, 8, weight_l2=5e-4), pn.relu(), pn.dropout(0.1),
                      pn.dense(8, 3))
    return model, model.init(jax.random.key(2)), X, y


def fit(path, *, log_fn=None, epochs=80):
    model, params, X, y = setup()
    return pn.fit(model, CCE, pn.optimizers.adam(0.05), params, X, y, key=jax.random.key(3),
                  epochs=epochs, batch_size=16, log_every=10, log_fn=log_fn,
                  checkpoint_path=path)


def stop_at_epoch_30(signum, handlers):
    def log_fn(line):
        handlers.append(signal.getsignal(signal.SIGTERM))
        if line.startswith("epoch: 30,"):
            signal.raise_signal(signum)
    return log_fn


FIT_CHILD = textwrap.dedent("""
    import signal, sys
    from tests import test_stop_signals as t

    t.fit(sys.argv[1], log_fn=t.stop_at_epoch_30(signal.SIGTERM, []))
    print("fit returned")
""")


def test_fit_saves_on_sigterm_says_so_and_ends_the_process_as_sigterm_does(
        tmp_path, default_handlers):
    path = tmp_path / "run.safetensors"
    done = subprocess.run([sys.executable, "-c", FIT_CHILD, str(path)], capture_output=True,
                          text=True, cwd=ROOT, timeout=TIMEOUT)
    assert done.returncode == -signal.SIGTERM, done.stderr[-3000:]
    assert done.stdout == ""
    assert done.stderr.splitlines() == [f"purenn.fit: stopped by SIGTERM at epoch 31; saved "
                                        f"the run to {path}"]
    assert pn.train.read_run(path).epoch == 31
    whole = fit(None)
    resumed = fit(path)
    for a, b in zip(jax.tree.leaves(whole[:2]), jax.tree.leaves(resumed[:2]), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(whole[2]["loss"], resumed[2]["loss"])


def test_inside_your_own_stop_signals_fit_saves_and_lets_the_stop_signal_go_on(
        tmp_path, default_handlers):
    path = tmp_path / "run.safetensors"
    handlers = []
    with pytest.raises(StopSignal) as info, stop_signals():
        fit(path, log_fn=stop_at_epoch_30(signal.SIGHUP, handlers))
    assert info.value.signum == signal.SIGHUP
    assert pn.train.read_run(path).epoch == 31
    # fit alone: its own handler while it runs, the default one again after
    fit(path, log_fn=lambda line: handlers.append(signal.getsignal(signal.SIGTERM)))
    assert callable(handlers[-1]) and handlers[-1] != signal.SIG_DFL
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


# --- python -m purenn train -----------------------------------------------------------

OPTIONS = ["train", "--hidden", "16", "--samples", "50", "--validation-samples", "20",
           "--epochs", "401", "--log-every", "1", "--checkpoint-every", "0"]
STOPPED = re.compile(r"^purenn train: (interrupted|stopped by SIG[A-Z]+) "
                     r"(at epoch (\d+); saved to (.+)|before the first checkpoint; nothing "
                     r"saved to (.+)); continue with: purenn (.+)$")


def start(argv):
    """``python -m purenn *argv``, whose stdout is a pipe of one page: the run stops at a
    write a few dozen log lines on, until this test reads them, so it cannot end before
    the signal it is sent."""
    read, write = os.pipe()
    fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, 4096)
    process = subprocess.Popen([sys.executable, "-m", "purenn", *argv], stdout=write,
                               stderr=subprocess.PIPE, text=True, cwd=ROOT)
    os.close(write)
    watchdog = threading.Timer(TIMEOUT, process.kill)
    watchdog.start()
    return process, os.fdopen(read), watchdog


def stop(process, out, watchdog, signum, *, after):
    """Send ``signum`` once ``after(process, out)`` returns; the exit status, stdout and
    stderr lines."""
    try:
        after(process, out)
        process.send_signal(signum)
        printed = out.read()
        err = process.stderr.read()
        process.wait()
    finally:
        watchdog.cancel()
        process.kill()
        out.close()
        process.stderr.close()
    return process.returncode, printed.splitlines(), err.splitlines()


def at_the_start_note(process, out):
    """Once the run says it starts: before its first epoch."""
    for line in process.stderr:
        if line.endswith("does not exist yet; starting the run\n"):
            return
    pytest.fail("the run ended before its start note")


def after_log_lines(count):
    """Once the run prints ``count`` log lines: mid-run (a few dozen lines on, it waits at
    a write for this test to read)."""
    def after(process, out):
        for _ in range(count):
            assert out.readline().startswith("epoch: ")
    return after


def test_every_stop_signal_keeps_the_run_and_the_printed_command_finishes_it(
        tmp_path, capsys, default_handlers):
    """The issue's scenario, as a scheduler and a user meet it: the run is started with
    --resume (requeue-safe: no file yet), stopped before its first epoch by SIGTERM, then
    at later moments by Ctrl-C and SIGHUP, each time continued by the command it prints;
    it ends with the uninterrupted run's lines and file, bit for bit."""
    whole, path = tmp_path / "whole.safetensors", tmp_path / "run.safetensors"
    assert cli.main([*OPTIONS, "--save", str(whole)]) == 0
    whole_lines = capsys.readouterr().out.splitlines()

    command = [*OPTIONS, "--save", str(path), "--resume"]
    epochs = [0]
    for signum, after in [(signal.SIGTERM, at_the_start_note),
                          (signal.SIGINT, after_log_lines(1)),
                          (signal.SIGHUP, after_log_lines(60))]:
        code, _, err = stop(*start(command), signum, after=after)
        assert code == 128 + signum, err
        assert "Traceback" not in "\n".join(err)
        match = STOPPED.match(err[-1])
        assert match, err
        how = "interrupted" if signum == signal.SIGINT else f"stopped by {signum.name}"
        assert match[1] == how
        assert match[4] in (None, str(path)) and match[5] in (None, str(path))
        if match[3] is not None:  # saved: the file holds the epoch it names
            epochs.append(int(match[3]))
            assert epochs[-1] == pn.train.read_run(path).epoch
        else:  # stopped before anything was saved: only before the first epoch
            assert signum == signal.SIGTERM and not path.exists()
        assert shlex.split(match[6]) == command
    assert epochs == sorted(epochs) and epochs[-1] < 401
    assert epochs[-1] >= epochs[-2] + 60  # SIGHUP came after 60 epochs of its own

    assert cli.main(command) == 0
    lines = capsys.readouterr().out.splitlines()
    assert int(re.match(r"epoch: (\d+),", lines[0])[1]) == epochs[-1]
    assert lines[-2:] == whole_lines[-2:]
    assert path.read_bytes() == whole.read_bytes()


def test_purenn_book_saves_on_sighup_and_resume_finishes_it(tmp_path, capsys, monkeypatch,
                                                            default_handlers):
    path, whole = tmp_path / "run.safetensors", tmp_path / "whole.safetensors"
    argv = ["book", "regularization", "--epochs", "25", "--log-every", "10"]
    printed = common.print_line

    def print_line(line):  # SIGHUP as the line of epoch 10 is printed
        printed(line)
        if line.startswith("epoch: 10,"):
            signal.raise_signal(signal.SIGHUP)

    monkeypatch.setattr(common, "print_line", print_line)
    command = [*argv, "--save", str(path)]
    assert cli.main(command) == 128 + signal.SIGHUP
    assert capsys.readouterr().err == (
        f"purenn book: stopped by SIGHUP at epoch 11; saved to {path}; continue with: "
        f"purenn {shlex.join([*command, '--resume'])}\n")
    monkeypatch.undo()
    assert cli.main([*command, "--resume"]) == 0
    assert cli.main([*argv, "--save", str(whole)]) == 0
    assert path.read_bytes() == whole.read_bytes()
