"""``purenn sweep``: a grid of ``purenn train`` runs, given as comma lists of its options.

The comma lists become a grid (``purenn.sweep``), every combination trained once per
seed. Each finished run is appended to ``DIR/runs.csv`` with the ``purenn train`` command
that reproduces it, so that an interrupted sweep continues with ``--resume``; at the end
the summary over seeds is printed and written to ``DIR/summary.csv``, and drawn in
``DIR/sweep.png``.
"""

from __future__ import annotations

import copy
import csv
import io
import math
import os
import shlex
import sys
from typing import NamedTuple

from purenn import experiments, files, sweep
from purenn.cli import common
from purenn.cli.options import (
    PICTURE,
    RUNS,
    SUMMARY,
    add_options,
    config_from_args,
    options_of,
)
from purenn.experiments import Config
from purenn.sweep import METRICS, Result, format_value

__all__ = ["add_parser", "sweep_main"]


def add_parser(commands) -> None:
    """Add ``purenn sweep`` to ``commands`` (``purenn``'s subparsers): the options of
    ``purenn train`` (each numeric one takes a comma list) but those that write one run's
    files, and its own (``--out``, ``--seeds``, ``--resume``)."""
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
    commands: dict[tuple, str]  # _row_key -> the run's purenn train command, grid order


def _text(value) -> str:
    """A value as a command line or a CSV cell holds it: ints as ints, floats as their
    shortest exact form (``float(_text(x)) == x``)."""
    if isinstance(value, float):
        return "0" if value == 0 else repr(value)
    return str(value)


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
            tokens += [option.name, *map(_text, value)]
        else:
            tokens += [option.name, _text(value)]
    return shlex.join([*tokens, "--seed", str(seed)])


def _row_key(names, values, seed):
    return tuple(float(values[name]) for name in names), int(seed)


def _plan(args, parser) -> _Plan:
    """The grid of the comma lists in ``args``; every cell's options checked as ``purenn
    train`` checks them (``parser.error``), before anything is written."""
    options = _train_options()
    names = [o.dest for o in options if o.sweepable
             and isinstance(getattr(args, o.dest), tuple) and len(getattr(args, o.dest)) > 1]
    grid = {name: list(getattr(args, name)) for name in names}
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
    commands = {}
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
            commands[_row_key(names, values, seed)] = _train_command(cell_args, seed)
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


def _read_runs(parser, path, header):
    """The complete rows of an existing runs.csv, checked against ``header`` (a last row
    without its line end, from a process killed while writing it, is left out)."""
    try:
        with open(path, newline="", encoding="utf-8") as file:
            text = file.read()
    except OSError as err:
        parser.error(f"cannot read {path!r}: {err.strerror or err}")
    except UnicodeDecodeError as err:
        parser.error(f"{path!r} is not a sweep's {RUNS}: {err}")
    if not text.endswith("\n"):
        text = text[:text.rfind("\n") + 1]
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as err:
        parser.error(f"{path!r} is not a sweep's {RUNS}: {err}")
    if not rows:
        return []
    if rows[0] != header:
        parser.error(f"{path!r} has the columns {','.join(rows[0])}, this sweep writes "
                     f"{','.join(header)}: it holds another sweep; give another --out")
    return [dict(zip(header, row)) for row in rows[1:] if len(row) == len(header)]


def _float(text):
    try:
        return float(text)
    except ValueError:
        return math.nan


def _kept_runs(parser, path, previous, plan: _Plan) -> dict[tuple, Result]:
    """The runs of ``previous`` (rows of ``path``) that this sweep would train, by
    ``_row_key``; a row trained by another command is ``parser.error``."""
    kept = {}
    for number, row in enumerate(previous, start=2):
        try:
            key = _row_key(plan.names, row, row["seed"])
        except ValueError:
            parser.error(f"{path!r} line {number} is not a run: {row}")
        if key in plan.commands and row["command"] != plan.commands[key]:
            parser.error(f"{path!r} line {number} was trained by '{row['command']}', but "
                         f"this sweep would train '{plan.commands[key]}': the other options "
                         f"differ; give another --out")
        kept.setdefault(key, Result(
            dict(zip(plan.names, (float(row[name]) for name in plan.names))), key[1], None,
            {m: _float(row[m]) for m in METRICS}, {}, None, None))
    return kept


def _csv_bytes(rows) -> bytes:
    """``rows`` as the bytes of a CSV file, as ``csv.writer`` writes one (UTF-8)."""
    text = io.StringIO(newline="")
    csv.writer(text).writerows(rows)
    return text.getvalue().encode("utf-8")


class _RunsFile:
    """``runs.csv`` while the sweep trains: on entering, rewritten (atomically) with the
    rows kept from before; then one row appended, and flushed, as each run ends."""

    def __init__(self, path, header, previous, plan: _Plan, note):
        self.path, self.header, self.previous = path, header, previous
        self.plan, self.note = plan, note
        self.finished = 0  # rows appended

    def __enter__(self):
        rows = [self.header, *([row[name] for name in self.header] for row in self.previous)]
        files.atomic_write(self.path, [_csv_bytes(rows)], what="purenn sweep")
        self._file = open(self.path, "a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        return self

    def __exit__(self, *exc_info):
        self._file.close()

    def write(self, result: Result):
        names = self.plan.names
        command = self.plan.commands[_row_key(names, result.values, result.seed)]
        self._writer.writerow([*(_text(result.values[name]) for name in names), result.seed,
                               *(_text(result.metrics[m]) for m in METRICS), command])
        self._file.flush()
        self.finished += 1
        if result.diverged_at is not None:
            self.note(f"diverged at epoch {result.diverged_at} (NaN in {RUNS}): {command}")


# --- the command ---------------------------------------------------------------------------


def sweep_main(args, parser, command=None) -> int:
    """``purenn sweep``, from the parsed ``args``; returns the exit status."""
    del command  # a sweep is continued with --resume, not from a command it prints
    plan = _plan(args, parser)
    out = _prepare_out(parser, args.out)
    runs_path = os.path.join(out, RUNS)
    header = [*plan.names, "seed", *METRICS, "command"]
    previous = _read_runs(parser, runs_path, header) if os.path.exists(runs_path) else []
    if previous and not args.resume:
        parser.error(f"{runs_path!r} already holds {len(previous)} run(s); pass --resume "
                     f"to keep them and train the missing ones, or give another --out")
    kept = _kept_runs(parser, runs_path, previous, plan)

    note = common.notes("purenn", args.quiet)
    common.use_compilation_cache(args, parser.prog)  # as purenn train does
    todo = len(plan.commands) - len(kept.keys() & plan.commands.keys())
    if kept:
        note(f"{len(plan.commands) - todo} of {len(plan.commands)} runs already in "
             f"{runs_path}; training the other {todo}")
    runs = _RunsFile(runs_path, header, previous, plan, note)
    try:
        with runs:
            results = sweep.run_grid(
                plan.base, plan.grid, plan.seeds, on_result=runs.write,
                skip=lambda values, seed: _row_key(plan.names, values, seed) in kept,
                progress=False if args.quiet else None)
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted after {runs.finished} of {todo} runs; "
              f"{runs_path} keeps them: run the same command with --resume to train the "
              f"rest", file=sys.stderr)
        return 130
    except OSError as err:
        return common.print_error(parser.prog,
                                  f"cannot write {runs_path!r}: {err.strerror or err}")
    try:
        return _finish(out, runs_path, plan, results, kept, note)
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted; {runs_path} holds every run", file=sys.stderr)
        return 130


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
        rows.append([*(_text(cell.values[name]) for name in names), len(cell.seeds),
                     *(_text(float(getattr(cell, s)[m])) for m in metrics
                       for s in ("mean", "std"))])
    files.atomic_write(path, [_csv_bytes(rows)], what="purenn sweep")


def _finish(out, runs_path, plan: _Plan, results, kept, note) -> int:
    """The summary (printed and written) and the picture of a finished sweep."""
    by_key = {_row_key(plan.names, r.values, r.seed): r for r in results}
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
