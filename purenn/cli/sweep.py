"""``purenn sweep``: a grid of ``purenn train`` runs, given as comma lists of its options.

The comma lists become a grid (``purenn.sweep``), every combination trained once per
seed. Each finished run is appended to ``DIR/runs.csv`` with the ``purenn train`` command
that reproduces it, so that an interrupted sweep continues with ``--resume``; at the end
the summary over seeds is printed and written to ``DIR/summary.csv``, and drawn in
``DIR/sweep.png``.

One sweep at a time writes to a folder: it holds ``DIR/sweep.lock`` (``cli.lock``) while it
reads and writes there. A second one is refused, or with ``--resume`` waits for the first
to end and then trains what it left; a lock whose process is gone is taken over. Rows of
runs.csv that do not parse are reported, moved aside and trained again (``runs_csv``).
"""

from __future__ import annotations

import copy
import os
import shlex
import sys
import time
from typing import NamedTuple

from purenn import experiments, files, grids, signals, sweep
from purenn.cli import common
from purenn.cli.lock import LOCK, FolderLock, LockHeld
from purenn.cli.options import (
    PICTURE,
    RUNS,
    SUMMARY,
    add_options,
    config_from_args,
    options_of,
)
from purenn.cli.runs_csv import (
    TAIL,
    Row,
    RunsFile,
    csv_bytes,
    read_rows,
    report_unparsed,
    row_key,
    value_text,
)
from purenn.experiments import Config
from purenn.progress import progress_bar
from purenn.sweep import METRICS, Result, format_value

__all__ = ["add_parser", "sweep_main"]


def add_parser(commands) -> None:
    """Add ``purenn sweep`` to ``commands`` (``purenn``'s subparsers): the options of
    ``purenn train`` (each numeric one takes a comma list) but those that write one run's
    files, and its own (``--out``, ``--seeds``, ``--resume``, ``--max-cells``)."""
    parser = commands.add_parser(
        "sweep", help="train a grid of hyperparameter values, times seeds",
        description="Train every combination of the values given as comma lists to the "
                    "numeric options of 'purenn train' (e.g. --weight-l2 0,5e-4 --dropout "
                    "0,0.1: 4 runs per seed), each exactly as 'purenn train' would. "
                    f"Writes DIR/{RUNS} (one row per run, with the 'purenn train' command "
                    f"that reproduces it), DIR/{SUMMARY} (each combination's mean and "
                    f"standard deviation over the seeds, also printed) and DIR/{PICTURE}.",
        epilog="Example: purenn sweep --weight-l2 0,1e-4,5e-4,1e-3 --bias-l2 5e-4 "
               "--learning-rate 0.02 --decay 5e-7 --seeds 3 --out sweep-l2")
    parser.set_defaults(parser=parser, handler=sweep_main)
    add_options(parser, "sweep")


def _train_options():
    """The options ``purenn sweep`` shares with ``purenn train``, in the table's order."""
    return [option for option in options_of("sweep") if "train" in option.commands]


# --- from options to a grid ---------------------------------------------------------------


class _Plan(NamedTuple):
    """What a sweep trains: the grid over ``base``, the seeds, and each run's command."""

    names: list[str]  # the swept options' names, e.g. ["weight_l2", "dropout"]
    grid: dict[str, list]
    base: Config
    seeds: list[int]
    commands: dict[tuple, str]  # runs_csv.row_key -> the run's purenn train command, grid order


def _train_command(args, seed: int) -> str:
    """The ``purenn train`` command of one run: the options that differ from their
    defaults, then ``--seed``."""
    tokens = ["purenn", "train"]
    for option in _train_options():
        if option.dest in ("seed", "quiet"):
            continue
        value = getattr(args, option.dest)
        if option.switch:
            tokens += [option.name] if value else []
        elif value is None or value == option.default:
            continue
        elif isinstance(value, (list, tuple)):
            tokens += [option.name, *map(value_text, value)]
        else:
            tokens += [option.name, value_text(value)]
    return shlex.join([*tokens, "--seed", str(seed)])


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _check_size(parser, args, names, grid) -> int:
    """The number of combinations of ``grid``, refused over ``--max-cells``; values that
    are one number where the runs compute with them (two equal cells) are refused too."""
    count = grids.count_cells(grid)
    if count > args.max_cells:
        sizes = " x ".join(f"{len(grid[name])} {_flag(name)}" for name in names)
        parser.error(f"the grid has {count} combinations ({sizes}), more than --max-cells "
                     f"{args.max_cells}: pass --max-cells {count} to train them all, or "
                     f"give fewer values")
    for name in names:
        same, precision = grids.same_values(name, grid[name])
        if same:
            parser.error(f"{_flag(name)}: {' and '.join(map(value_text, same[0]))} are the same "
                         f"value in {precision}, the precision the runs compute in; give "
                         f"one of them")
    return count


# Past this many combinations their checks take a while (about 0.2 ms each): say so first.
_MANY = 1000


def _plan(args, parser, note) -> _Plan:
    """The grid of the comma lists in ``args``; every cell's options checked as ``purenn
    train`` checks them (``parser.error``), before anything is written."""
    options = _train_options()
    names = [o.dest for o in options if o.sweepable
             and isinstance(getattr(args, o.dest), tuple) and len(getattr(args, o.dest)) > 1]
    grid = {name: list(getattr(args, name)) for name in names}
    count = _check_size(parser, args, names, grid)
    base_args = copy.copy(args)
    for option in options:
        value = getattr(args, option.dest)
        if isinstance(value, tuple):
            setattr(base_args, option.dest, value[0])
    seeds = list(range(args.seed, args.seed + args.seeds))
    if seeds[-1] >= 2**31:
        parser.error(f"--seed {args.seed} --seeds {args.seeds} goes past the last seed, "
                     f"2**31 - 1")
    base = config_from_args(base_args, parser)
    if count >= _MANY:
        note(f"checking the options of {count} combinations before training them")
    bar = progress_bar(False if args.quiet else None, count, unit="combination",
                       minimum=_MANY)
    commands = {}
    try:
        for values in sweep.cells(grid):
            cell_args = copy.copy(base_args)
            for name, value in values.items():
                setattr(cell_args, name, value)
            config = config_from_args(cell_args, parser)  # train's checks, cell by cell
            try:
                experiments.components(config)  # the layers and the optimizer check values
            except (ValueError, TypeError) as err:
                parser.error(str(err))
            assert config == sweep.apply_values(base, values), (config, values)
            for seed in seeds:
                commands[row_key(names, values, seed)] = _train_command(cell_args, seed)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return _Plan(names, grid, base, seeds, commands)


# --- the folder and its runs.csv ----------------------------------------------------------


def _prepare_out(parser, out: str) -> str:
    if os.path.exists(out) and not os.path.isdir(out):
        parser.error(f"--out {out!r} is a file; give a folder (created if missing)")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as err:
        parser.error(f"--out {out!r}: cannot create the folder: {err.strerror or err}")
    if not os.access(out, os.W_OK | os.X_OK):
        parser.error(f"--out {out!r}: the folder is not writable")
    return out


def _kept_runs(parser, path, previous: list[Row], plan: _Plan) -> dict[tuple, Result]:
    """The runs of ``previous`` (the rows of ``path`` that parse) that this sweep would
    train, by ``runs_csv.row_key``; a row trained by another command is ``parser.error``."""
    kept = {}
    for number, row in ((r.number, r.fields) for r in previous):  # rows that parse
        key = row_key(plan.names, row, row["seed"])
        if key in plan.commands and row["command"] != plan.commands[key]:
            parser.error(f"{path!r} line {number} was trained by '{row['command']}', but "
                         f"this sweep would train '{plan.commands[key]}': the other options "
                         f"differ; give another --out")
        kept.setdefault(key, Result(
            dict(zip(plan.names, (float(row[name]) for name in plan.names))), key[1], None,
            {m: float(row[m]) for m in METRICS}, {}, None, None))
    return kept


# --- the command ---------------------------------------------------------------------------


def sweep_main(args, parser, command=None) -> int:
    """``purenn sweep``, from the parsed ``args`` (``command``: its arguments, as the
    lock file names its holder); returns the exit status."""
    note = common.notes("purenn", args.quiet)
    plan = _plan(args, parser, note)
    out = _prepare_out(parser, args.out)
    lock_path = os.path.join(out, LOCK)
    with signals.stop_signals():  # SIGTERM and SIGHUP stop the sweep as Ctrl-C does
        try:
            lock = _take_lock(parser, out, args, ["sweep"] if command is None else command)
        except KeyboardInterrupt as interrupt:
            return _report_stop(parser, interrupt,
                                f" while waiting for {lock_path}; nothing trained")
        except OSError as err:
            return common.print_error(parser.prog,
                                      f"cannot create {lock_path!r}: {err.strerror or err}")
        try:
            return _sweep(args, parser, plan, out, note)
        finally:
            lock.release()


def _report_stop(parser, interrupt: KeyboardInterrupt, what: str) -> int:
    """Say on stderr that the sweep was ``interrupted`` (or ``stopped by SIGTERM``, for a
    stop signal) and ``what`` became of it; returns the exit code the stop asks for."""
    print(f"{parser.prog}: {signals.what_stopped(interrupt)}{what}", file=sys.stderr)
    return signals.exit_code(interrupt)


_WAIT_SECONDS = 0.5  # how often a --resume waiting for another sweep looks again


def _warn(message: str) -> None:
    """A line about the folder's state, printed even with --quiet."""
    print(f"purenn: {message}", file=sys.stderr)


def _take_lock(parser, out, args, command) -> FolderLock:
    """The lock of ``out``. Another sweep holding it is ``parser.error``, or with
    --resume waited for (one line says so); a stale one is taken over (one line)."""
    lock = FolderLock(out, shlex.join(["purenn", *command]))
    waiting = False
    while True:
        try:
            taken_over = lock.acquire()
        except LockHeld as held:
            if not args.resume:
                parser.error(f"another sweep is writing to {out!r}: {held}. Wait for it to "
                             f"end, pass --resume to wait for it and then train what it "
                             f"left, or give another --out; if no sweep is running there, "
                             f"delete {held.path!r}")
            if not waiting:
                _warn(f"another sweep is writing to {out}: {held}; waiting for it to end "
                      f"(Ctrl-C to stop), then training what it left")
                waiting = True
            time.sleep(_WAIT_SECONDS)
            continue
        if taken_over is not None:
            _warn(f"took over {lock.path} from {taken_over}, which is no longer running")
        return lock


def _count(number: int, what: str) -> str:
    return f"{number} {what}{'' if number == 1 else 's'}"


def _announce(note, runs_path, plan: _Plan, kept, todo: int) -> None:
    """The first line of a sweep, before anything compiles: how many runs, the first."""
    first = next((command for key, command in plan.commands.items() if key not in kept),
                 None)
    then = f"; the first: {first}" if first else ""
    total = len(plan.commands)
    if kept:
        note(f"{total - todo} of {total} runs already in {runs_path}; training the other "
             f"{todo}{then}")
    else:
        note(f"training {_count(total, 'run')} ({_count(total // len(plan.seeds), 'combination')}"
             f" x {_count(len(plan.seeds), 'seed')}) into {runs_path}{then}")


def _sweep(args, parser, plan: _Plan, out, note) -> int:
    """The sweep, once it holds the lock of ``out``."""
    runs_path = os.path.join(out, RUNS)
    header = [*plan.names, *TAIL]
    previous = (read_rows(parser, runs_path, header, plan.names)
                if os.path.exists(runs_path) else [])
    if previous and not args.resume:
        parser.error(f"{runs_path!r} already holds {len(previous)} run(s); pass --resume "
                     f"to keep them and train the missing ones, or give another --out")
    unparsed = [row for row in previous if row.fields is None]
    if unparsed:
        report_unparsed(runs_path, unparsed, _warn)
    kept = _kept_runs(parser, runs_path, [r for r in previous if r.fields is not None], plan)
    common.use_compilation_cache(args, parser.prog)  # as purenn train does
    todo = len(plan.commands) - len(kept.keys() & plan.commands.keys())
    _announce(note, runs_path, plan, kept, todo)
    runs = RunsFile(runs_path, header, previous, plan.names, plan.commands, note)
    try:
        with runs:
            results = sweep.run_grid(
                plan.base, plan.grid, plan.seeds, on_result=runs.write,
                skip=lambda values, seed: row_key(plan.names, values, seed) in kept,
                progress=False if args.quiet else None, max_cells=args.max_cells)
    except KeyboardInterrupt as interrupt:
        return _report_stop(parser, interrupt,
                            f" after {runs.finished} of {todo} runs; {runs_path} keeps them: "
                            f"run the same command with --resume to train the rest")
    except OSError as err:
        return common.print_error(parser.prog,
                                  f"cannot write {runs_path!r}: {err.strerror or err}")
    try:
        return _finish(out, runs_path, plan, results, kept, note)
    except KeyboardInterrupt as interrupt:
        return _report_stop(parser, interrupt, f"; {runs_path} holds every run")


# --- the summary ---------------------------------------------------------------------------


def _print_table(summary, names, pm):
    columns = [*names, "seeds", "train acc", "val acc", "gap", "train loss", "val loss"]
    metrics = ("train_accuracy", "val_accuracy", "gap", "train_loss", "val_loss")
    rows = []
    for cell in summary:
        rows.append([*(format_value(cell.values[name]) for name in names),
                     str(len(cell.seeds)),
                     *(f"{cell.mean[m]:.3f} {pm} {cell.std[m]:.3f}" for m in metrics)])
    widths = [max(len(row[i]) for row in [columns, *rows]) for i in range(len(columns))]
    for row in [columns, *rows]:
        print("  ".join(text.ljust(width) for text, width in zip(row, widths)).rstrip())


def _write_summary(path, summary, names):
    metrics = (*METRICS, "gap")
    rows = [[*names, "seeds", *(f"{m}_{s}" for m in metrics for s in ("mean", "std"))]]
    for cell in summary:
        rows.append([*(value_text(cell.values[name]) for name in names), len(cell.seeds),
                     *(value_text(float(getattr(cell, s)[m])) for m in metrics
                       for s in ("mean", "std"))])
    files.atomic_write(path, [csv_bytes(rows)], what="purenn sweep")


def _finish(out, runs_path, plan: _Plan, results, kept, note) -> int:
    """The summary (printed and written) and the picture of a finished sweep."""
    by_key = {row_key(plan.names, r.values, r.seed): r for r in results}
    by_key.update({key: r for key, r in kept.items() if key in plan.commands})
    summary = sweep.summarize([by_key[key] for key in plan.commands])
    _print_table(summary, plan.names, common.plus_minus())
    _write_summary(os.path.join(out, SUMMARY), summary, plan.names)
    wrote = [runs_path, os.path.join(out, SUMMARY)]
    picture = os.path.join(out, PICTURE)
    if not plan.names:
        note(f"no option was given a comma list: nothing to plot, no {PICTURE}")
    else:
        from purenn import plotting

        try:
            plotting.require_matplotlib()
        except ImportError:
            print(f"purenn: no {PICTURE}: drawing it needs matplotlib: pip install "
                  f"'purenn[plot]' (or pip install matplotlib)", file=sys.stderr)
        else:
            plotting.plot_sweep(picture, summary, plan.grid)
            wrote.append(picture)
    note(f"wrote {', '.join(wrote)}")
    return 0
