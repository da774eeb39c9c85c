"""Sweeps never clobber: one sweep at a time per folder, a runs.csv that is not a sweep's
left alone, rows that do not parse reported and trained again, duplicate cells and
oversized grids refused before anything trains.

The sizes are test_sweep.py's (dropout 0 and 0.1, 11 epochs, 20 validation samples), so
the programs are those it compiles; one real second process holds the lock.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from purenn import grids, sweep
from purenn.cli.lock import LOCK, FolderLock, Holder, LockHeld
from purenn.cli.runs_csv import UNPARSED
from purenn.experiments import Config
from tests.cli_calls import ERROR, call, read_csv

ROOT = Path(__file__).resolve().parents[1]
BASE = Config(validation_samples=20, optimizer_args=(("learning_rate", 0.02),), epochs=11)
SMALL = ["sweep", "--dropout", "0,0.1", "--epochs", "11", "--validation-samples", "20"]
# No comma list: seeds only, one structure, and no picture to draw.
SEEDS = ["sweep", "--epochs", "11", "--validation-samples", "20", "--seeds"]


# --- grids refused before anything trains --------------------------------------------------


def test_values_equal_in_the_compute_precision_are_refused(x64):
    grid = {"learning_rate": [0.1, 0.100000001, 0.2]}
    if x64:  # two float64 numbers: two cells
        assert grids.check_grid(BASE, grid) == grid
    else:
        with pytest.raises(ValueError, match=r"grid\['learning_rate'\]: 0.1 and 0.100000001 "
                                             r"are the same value in float32"):
            sweep.run_grid(BASE, grid, [0], progress=False)
    assert grids.same_values("epochs", [16777216, 16777217]) == ([], "integers")


def test_the_command_refuses_values_equal_in_float32(tmp_path):
    code, stdout, err = call([*SMALL, "--learning-rate", "0.1,0.100000001",
                              "--out", tmp_path / "out"])
    assert code == 2 and stdout == "" and ERROR.match(err.strip()), err
    assert "--learning-rate: 0.1 and 0.100000001 are the same value in float32" in err
    assert not (tmp_path / "out").exists()


def test_a_grid_over_max_cells_needs_max_cells(tmp_path):
    grid = {"learning_rate": [0.01 + i * 1e-4 for i in range(400)],
            "dropout": [i / 1000 for i in range(300)]}
    with pytest.raises(ValueError, match=r"grid has 120000 cells \(400 learning_rate x 300 "
                                         r"dropout\), more than max_cells=100000; pass "
                                         r"max_cells=120000"):
        sweep.run_grid(BASE, grid, [0], progress=False)
    assert grids.check_grid(BASE, grid, max_cells=120_000) == grid
    rates, drops = (",".join(map(str, values)) for values in grid.values())
    code, _, err = call(["sweep", "--learning-rate", rates, "--dropout", drops,
                         "--out", tmp_path / "out"])
    assert code == 2 and ERROR.match(err.strip()), err
    assert ("the grid has 120000 combinations (300 --dropout x 400 --learning-rate), more "
            "than --max-cells 100000: pass --max-cells 120000") in err
    assert not (tmp_path / "out").exists()


def test_a_large_grid_says_so_before_checking_it(tmp_path):
    # 2000 combinations whose second is wrong: the note comes first, then the error
    rates = ",".join(str(0.01 + i * 1e-4) for i in range(1000))
    code, _, err = call(["sweep", "--learning-rate", rates, "--batch-size", "100,400",
                         "--out", tmp_path / "out"])
    note, error = err.splitlines()
    assert code == 2 and ERROR.match(error), err
    assert note == "purenn: checking the options of 2000 combinations before training them"


# --- runs.csv -------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"my own notes", b"a,b\n1,2\n",
                                     b"dropout,seed,note\n"],
                         ids=["empty", "one line", "other columns", "no metrics"])
@pytest.mark.parametrize("resume", [False, True])
def test_a_runs_csv_that_is_not_a_sweeps_is_left_alone(tmp_path, content, resume):
    (tmp_path / "runs.csv").write_bytes(content)
    code, _, err = call([*SMALL, "--out", tmp_path, *(["--resume"] if resume else [])])
    assert code == 2 and ERROR.match(err.strip()), err
    assert f"'{tmp_path / 'runs.csv'}' is not a sweep's runs.csv" in err
    assert "leaves it alone" in err
    assert (tmp_path / "runs.csv").read_bytes() == content
    assert sorted(os.listdir(tmp_path)) == ["runs.csv"]  # no lock left behind


def test_rows_that_do_not_parse_are_reported_and_trained_again(tmp_path):
    code, summary, err = call([*SEEDS, "4", "--out", tmp_path])
    assert code == 0, err
    assert re.search(r"^purenn: training 4 runs \(1 combination x 4 seeds\) into .*runs\.csv; "
                     r"the first: purenn train --validation-samples 20 --epochs 11 --seed 0$",
                     err, re.MULTILINE), err  # at once, before anything compiles
    _, rows = read_csv(tmp_path / "runs.csv")
    with open(tmp_path / "runs.csv", newline="") as file:
        lines = file.read().splitlines(keepends=True)
    bad = [lines[1].replace(",purenn", ",1,purenn"),  # a field too many
           lines[2].replace(",purenn", ',"purenn'),  # a quote never closed
           lines[4].replace(f",{rows[3]['val_loss']},", ",abc,")]  # not a number
    # the old reader lost every row after an open quote: here line 4 is kept
    (tmp_path / "runs.csv").write_text("".join([lines[0], *bad[:2], lines[3], bad[2]]),
                                       newline="")
    code, resumed, err = call([*SEEDS, "4", "--out", tmp_path, "--resume", "--quiet"])
    assert code == 0, err
    assert err.splitlines() == [
        f"purenn: 3 row(s) of {tmp_path / 'runs.csv'} do not parse (line 2 (seed 0): 7 "
        f"fields, not 6; line 3: broken quoting; line 5 (seed 3): val_loss 'abc' is not a "
        f"number): their runs count as not finished and are trained again, the rows are "
        f"left out of the summary and moved to {tmp_path / UNPARSED}"]
    assert resumed == summary  # the same runs, trained again: the same summary
    _, again = read_csv(tmp_path / "runs.csv")
    assert again[0] == rows[2] and sorted(again, key=str) == sorted(rows, key=str)
    assert (tmp_path / UNPARSED).read_bytes().decode() == "".join(bad)


# --- one sweep at a time ----------------------------------------------------------------


def test_a_folder_lock_is_held_once_and_names_its_holder(tmp_path):
    first, second = FolderLock(tmp_path, "purenn sweep a"), FolderLock(tmp_path, "b")
    assert first.acquire() is None
    with pytest.raises(LockHeld) as held:
        second.acquire()
    holder = held.value.holder
    assert (holder.pid, holder.host, holder.command) == (os.getpid(), socket.gethostname(),
                                                         "purenn sweep a")
    second.release()  # not its lock: left alone
    assert (tmp_path / LOCK).exists()
    first.release()
    assert not (tmp_path / LOCK).exists()
    assert second.acquire() is None
    second.release()


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", ""])
    process.wait()
    return process.pid


def test_a_second_sweep_on_the_folder_is_refused_or_waits(tmp_path):
    # A real sweep in another process; stopped (SIGSTOP) once it holds the lock, so that
    # it holds it for as long as this test needs.
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), PURENN_NO_CACHE="1")
    first = subprocess.Popen([sys.executable, "-m", "purenn", *SEEDS, "2", "--out", str(out),
                              "--quiet"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while Holder.parse(_text(out / LOCK)) is None:
            if first.poll() is not None:
                pytest.fail(f"the first sweep ended: {first.communicate()}")
            assert time.monotonic() < deadline, "the first sweep never took the lock"
            time.sleep(0.05)
        first.send_signal(signal.SIGSTOP)
        holder = Holder.parse(_text(out / LOCK))
        assert (holder.pid, holder.host) == (first.pid, socket.gethostname())
        assert holder.command.startswith("purenn sweep --epochs 11")
        # another grid on the same folder: refused, naming the holder and what to do
        code, _, err = call(["sweep", "--dropout", "0,0.2", "--epochs", "11", "--out", out])
        assert code == 2 and ERROR.match(err.strip()), err
        assert f"another sweep is writing to '{out}': {out / LOCK} is held by process " \
               f"{first.pid} on {socket.gethostname()}" in err
        assert "pass --resume to wait for it and then train what it left" in err
        # --resume waits for it to end, then trains what it left: nothing
        threading.Timer(1.0, first.send_signal, [signal.SIGCONT]).start()
        code, stdout, err = call([*SEEDS, "2", "--out", out, "--resume"])
        first_out, first_err = first.communicate(timeout=120)
    finally:
        first.kill()
        first.wait()
    assert first.returncode == 0, first_err
    assert code == 0, err
    assert f"purenn: another sweep is writing to {out}: {out / LOCK} is held by process " \
           f"{first.pid}" in err and "waiting for it to end" in err
    assert "2 of 2 runs already in" in err and "training the other 0" in err
    assert _words(stdout) == _words(first_out)  # its summary (± here, +/- there)
    assert not (out / LOCK).exists()
    # a lock whose process is gone is taken over, with one line
    stale = Holder(_dead_pid(), socket.gethostname(), "2026-01-01 00:00:00 +0000",
                   "purenn sweep")
    (out / LOCK).write_text(stale.text())
    code, _, err = call([*SEEDS, "2", "--out", out, "--resume", "--quiet"])
    assert code == 0, err
    assert err == f"purenn: took over {out / LOCK} from {stale}, which is no longer running\n"
    assert not (out / LOCK).exists()


@pytest.mark.parametrize("text, named", [
    (Holder(1, "another-machine", "2026-01-01 00:00:00 +0000", "purenn sweep").text(),
     "process 1 on another-machine"),
    ("garbage\n", "a process it does not name"),
], ids=["another machine", "no holder"])
def test_a_lock_that_may_be_live_is_never_taken_over(tmp_path, text, named):
    (tmp_path / LOCK).write_text(text)
    code, _, err = call([*SMALL, "--out", tmp_path])
    assert code == 2 and ERROR.match(err.strip()), err
    assert f"is held by {named}" in err and f"delete '{tmp_path / LOCK}'" in err
    assert (tmp_path / LOCK).read_text() == text


def _words(table: str) -> list[str]:
    return table.replace("+/-", "±").split()


def _text(path):
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)],
                         ids=["SIGTERM", "SIGHUP"])
def test_a_stop_signal_ends_the_sweep_as_ctrl_c_does(tmp_path, monkeypatch, signum, code):
    # The signal arrives while the runs train (here: as the first one starts): the sweep
    # says so in one line, gives the signal's exit status and leaves no lock behind.
    def stopped_grid(*args, **kwargs):
        signal.raise_signal(signum)
        raise AssertionError("the signal did not stop the sweep")

    monkeypatch.setattr(sweep, "run_grid", stopped_grid)
    previous = signal.getsignal(signum)
    out = tmp_path / "out"
    code_, _, err = call([*SEEDS, "2", "--out", out, "--quiet"])
    assert code_ == code, err
    name = signal.Signals(signum).name
    assert err == (f"purenn sweep: stopped by {name} after 0 of 2 runs; {out / 'runs.csv'} keeps "
                   f"them: run the same command with --resume to train the rest\n")
    assert not (out / LOCK).exists()
    assert signal.getsignal(signum) == previous  # the sweep's handlers are gone
