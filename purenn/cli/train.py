"""``purenn book`` and ``purenn train``: one run of one configuration, for one or more seeds.

The run is checked before anything trains (output paths, checkpoint options, the
layers' and optimizer's arguments, memory), then trained with ``experiments.run`` (one
seed, printing the book's log lines) or ``experiments.run_seeds``; ``--save`` keeps it,
``--plot`` draws it. Ctrl-C, SIGTERM or SIGHUP during a run with ``--save`` leaves a
checkpoint and says how to continue it; ``--resume`` continues it after checking that the
options are the ones it was saved with (``--resume-with-changes`` continues it anyway, and
the checkpoint records the change), and starts the run where there is no file yet.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import sys
from collections.abc import Sequence

import numpy as np

import purenn as pn
from purenn import experiments, files, signals, threefry
from purenn.cli import common, memory
from purenn.cli.options import add_options, config_from_args, options_of
from purenn.experiments import BOOK, Config
from purenn.train.settings import differences, format_differences

__all__ = ["add_parsers", "book_main", "train_main"]


def add_parsers(commands) -> None:
    """Add ``purenn book`` and ``purenn train`` to ``commands`` (``purenn``'s
    subparsers)."""
    book = commands.add_parser(
        "book", help="run one of the book's experiments with the book's settings",
        description="Run one of the book's experiments (docs/book.md) with the book's data, "
                    "model, optimizer and 10001 epochs, printing the book's log line "
                    "every 100 epochs and the validation line at the end.",
        epilog="Experiments: " + ", ".join(BOOK) + ". Example: purenn book wider --seeds 5")
    book.set_defaults(parser=book, handler=book_main)
    add_options(book, "book")
    train = commands.add_parser(
        "train", help="train a network of your choice on the book's data or your own file",
        description="Train dense -> ReLU [-> dropout] blocks and a softmax (or, with "
                    "--binary, sigmoid; for regression, linear) output on the book's toy "
                    "data or on your own .csv or .npz file (--data FILE), full batch by "
                    "default. Without options: spiral 100x3, 64 hidden units, Adam with "
                    "the book's defaults, 10001 epochs.")
    train.set_defaults(parser=train, handler=train_main)
    add_options(train, "train")


def book_main(args, parser, command: Sequence[str]) -> int:
    """``purenn book``, from the parsed ``args``; returns the exit status."""
    if args.list:
        width = max(map(len, BOOK))
        for name, experiment in BOOK.items():
            published = (f" Book: training acc {experiment.book[0]:.3f}, validation "
                         f"acc {experiment.book[1]:.3f}." if experiment.book else "")
            print(f"{name:<{width}}  {experiment.summary}: "
                  f"{experiment.config.describe()}.{published}")
        return 0
    if args.experiment is None:
        parser.error("name an experiment (one of: " + ", ".join(BOOK) + ") or pass --list")
    if args.experiment not in BOOK:
        parser.error(f"unknown experiment {args.experiment!r}; choose one of: "
                     + ", ".join(BOOK))
    config = BOOK[args.experiment].config
    if args.epochs is not None:
        config = dataclasses.replace(config, epochs=args.epochs)
    return _interruptible(config, args, parser, title=f"purenn book {args.experiment}",
                          command=command, hint="use fewer --seeds")


def train_main(args, parser, command: Sequence[str]) -> int:
    """``purenn train``, from the parsed ``args``; returns the exit status."""
    try:
        config = config_from_args(args, parser)
    except (ValueError, TypeError) as err:
        parser.error(str(err))
    hint = ("use a smaller --hidden, --samples, --validation-samples or --batch-size"
            + (", or fewer --seeds" if args.seeds > 1 else ""))
    return _interruptible(config, args, parser, title="purenn train", command=command,
                          hint=hint)


def _interruptible(config, args, parser, **run) -> int:
    """Run, with SIGTERM and SIGHUP handled as Ctrl-C (``purenn.signals``): the exit
    status is 128 + the signal's number."""
    with signals.stop_signals():
        try:
            return _run(config, args, parser, **run)
        except KeyboardInterrupt as interrupt:
            print(f"{parser.prog}: {signals.what_stopped(interrupt)}", file=sys.stderr)
            return signals.exit_code(interrupt)


# --- the run's options, kept in its checkpoint -----------------------------------------

# purenn train's options that say how long a run trains, which seed (the checkpoint's key
# says it), and what is printed and written: the others are the run's settings.
_NOT_SETTINGS = frozenset({"--epochs", "--seed", "--seeds", "--no-cache", "--log-every",
                           "--quiet", "--plot", "--save", "--checkpoint-every", "--resume",
                           "--resume-with-changes"})


def _option_text(option, value) -> str:
    """An option's value as a command line gives it: ``0.02``, ``64 32``, ``given``."""
    if option.switch:
        return "given" if value else "not given"
    if value is None:
        return "not given"
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value))
    return str(value)


def _run_options(args) -> dict[str, str]:
    """The settings of the run that ``args`` describe, in the command line's words, as
    ``pn.fit`` keeps them in the checkpoint: ``{"command": "train", "--hidden": "64",
    "--learning-rate": "not given", ...}``; for ``purenn book``, the experiment."""
    if args.command == "book":
        return {"command": f"book {args.experiment}"}
    return {"command": "train", **{
        option.name: _option_text(option, getattr(args, option.dest))
        for option in options_of("train") if option.name not in _NOT_SETTINGS}}


# --- checks before a run ---------------------------------------------------------------


def _check_checkpoint_options(parser, args, save):
    if args.resume:
        flag = "--resume-with-changes" if args.resume_with_changes else "--resume"
        if save is None:
            parser.error(f"{flag} needs --save FILE: the run to continue")
        if args.seeds > 1:
            parser.error(f"{flag} continues a single run; it does not apply with "
                         f"--seeds {args.seeds}")
    if args.checkpoint_every is not None:
        if save is None:
            parser.error("--checkpoint-every needs --save FILE: where to write")
        if args.seeds > 1:
            parser.error(f"--checkpoint-every applies to a single run; with --seeds "
                         f"{args.seeds} the runs are saved at the end")


def _check_resumable(parser, args, path, config: Config) -> str:
    """The file is a run's checkpoint (``pn.fit``'s: with its epoch and key), of this seed,
    not past ``config.epochs``, with these options unless ``--resume-with-changes``.
    Returns what the run does: a note for the user."""
    try:
        names = {name.split("/")[0] for name in pn.checkpoint.read(path).arrays}
    except (OSError, ValueError) as err:
        parser.error(f"--resume: cannot read {path!r}: {str(err).splitlines()[0]}")
    if not {"epoch", "key"} <= names:
        parser.error(f"--resume: {path!r} is not the checkpoint of a single run (it has no "
                     f"epoch and key; a file saved with --seeds cannot be resumed)")
    try:
        saved = pn.train.read_run(path)
    except (OSError, ValueError) as err:
        parser.error(f"--resume: {str(err).splitlines()[0]}")
    k_fit = experiments.seed_keys(args.seed)[3]
    if not np.array_equal(saved.key, threefry.key_data(k_fit)):
        parser.error(f"--resume: {path!r} was written by a run with another seed; give "
                     f"the --seed it was started with")
    if saved.epoch > config.epochs:
        parser.error(f"--resume: {path!r} is at epoch {saved.epoch}, past --epochs "
                     f"{config.epochs}; give --epochs {saved.epoch} or more")
    if saved.settings is None:
        if not args.resume_with_changes:
            parser.error(f"--resume: {path!r} keeps no options (an older purenn wrote it), "
                         f"so --resume cannot check that these are the ones it was started "
                         f"with; add --resume-with-changes to continue it with these, or "
                         f"leave out --resume to start over")
        return f"continuing {path} at epoch {saved.epoch} with these options"
    kept = {name: value for name, value in saved.settings.items()
            if name == "command" or name.startswith("--")}
    found = differences(kept, _run_options(args))
    if found and not args.resume_with_changes:
        parser.error(f"--resume: {path!r} is of a run with other options: "
                     f"{format_differences(found)}; give the options it was started with, "
                     f"add --resume-with-changes to continue it with these, or leave out "
                     f"--resume to start over")
    if found:
        return (f"continuing {path} at epoch {saved.epoch} with other options: "
                f"{format_differences(found)}")
    return ""


def _format_bytes(count: float) -> str:
    units = ["bytes", "kB", "MB", "GB", "TB", "PB"]
    while count >= 1000 and len(units) > 1:
        count, units = count / 1000, units[1:]
    return f"{count:.0f} bytes" if units[0] == "bytes" else f"{count:.1f} {units[0]}"


# XLA's analysis of a training program has found up to 2.2 times the shapes' estimate
# (3000 x 3000 hidden units: 375 MB against 173 MB); a run whose estimate is this many
# times below the limit fits, and skips the analysis (which traces and lowers the program
# once more than the run does: 0.3 s of the book's 2 s run with a warm cache).
MEMORY_SCREEN = 8


def _check_memory(parser, config: Config, args, hint: str):
    """Refuse a run that cannot fit in memory, before anything is allocated: first from
    shapes alone (a lower bound, nothing compiled), then, unless that is far below the
    limit (``MEMORY_SCREEN``), by XLA's analysis of the compiled training program, which
    the run then reuses (no compile added)."""
    limit = experiments.memory_limit()
    if limit is None:
        return
    vmap = args.seeds > 1 and experiments.default_mode() == "vmap"
    need = experiments.estimate_memory(config, args.seeds, vmap=vmap)
    if need.total > limit[0]:
        parser.error(
            f"this run needs at least {_format_bytes(need.total)} of memory, more than "
            f"{limit[1]} ({_format_bytes(limit[0])}): {need.parameters} {need.dtype} "
            f"parameters ({_format_bytes(need.state)} with their gradients and the "
            f"{config.optimizer} state), {_format_bytes(need.data)} of data, "
            f"{_format_bytes(need.activations)} of activations; {hint}")
    if need.total * MEMORY_SCREEN <= limit[0]:
        return
    measured = memory.measure_memory(config, args.seeds, vmap=vmap)
    if measured > limit[0]:
        parser.error(
            f"this run needs {_format_bytes(measured)} of memory by XLA's analysis of its "
            f"training program, more than {limit[1]} ({_format_bytes(limit[0])}); {hint}")


def _check_run(config: Config, args, parser, hint: str):
    """Every check that can refuse the run (``parser.error``), before it compiles or
    allocates anything; then the compilation cache. Returns the ``--plot`` and ``--save``
    paths, and a note on what ``--resume`` does (or "")."""
    args.resume = args.resume or args.resume_with_changes
    plot = common.check_output(parser, "--plot", args.plot, ".png")
    save = common.check_output(parser, "--save", args.save, checkpoint=True)
    _check_checkpoint_options(parser, args, save)
    if args.seed + args.seeds > 2**31:
        parser.error(f"--seed {args.seed} --seeds {args.seeds}: the last seed, "
                     f"{args.seed + args.seeds - 1}, must be below 2**31")
    if plot is not None and config.n_features != (1 if config.regression else 2):
        drawn = ("the curve of a model of one input" if config.regression
                 else "the decision regions of a model of two inputs")
        parser.error(f"--plot draws {drawn}; {config.data} has {config.n_features} "
                     f"features")
    if plot is not None:
        from purenn import plotting

        try:
            plotting.require_matplotlib()
        except ImportError as err:
            parser.exit(2, f"{parser.prog}: error: {err}\n")
    try:
        experiments.components(config)  # the layers and the optimizer check their arguments
    except (ValueError, TypeError) as err:
        parser.error(str(err))
    common.use_compilation_cache(args, parser.prog)  # before anything compiles
    resuming = ""
    if args.resume and not os.path.exists(save):
        resuming = f"--resume: {save} does not exist yet; starting the run"
    elif args.resume:
        resuming = _check_resumable(parser, args, save, config)
    _check_memory(parser, config, args, hint)  # may compile the training program (reused)
    return plot, save, resuming


# --- the run ---------------------------------------------------------------------------


def _out_of_memory(err: BaseException) -> bool:
    return isinstance(err, MemoryError) or (
        isinstance(err, RuntimeError) and "RESOURCE_EXHAUSTED" in str(err))


def _interrupted(parser, path, before, args, command, interrupt) -> int:
    """After Ctrl-C (or SIGTERM, SIGHUP) in a run saved to ``path``: one line saying where
    it stopped and how to continue it; returns the exit status."""
    after = files.file_version(path)
    again = "purenn " + shlex.join(list(command) + ([] if args.resume else ["--resume"]))
    how = signals.what_stopped(interrupt)
    if after is None:  # --resume starts the run where there is no file
        print(f"{parser.prog}: {how} before the first checkpoint; nothing saved to {path}; "
              f"continue with: {again}", file=sys.stderr)
    elif after == before and not args.resume:  # the file is another run's: left alone
        print(f"{parser.prog}: {how} before the first checkpoint; nothing saved to {path}",
              file=sys.stderr)
    else:
        epoch = pn.train.read_run(path).epoch
        print(f"{parser.prog}: {how} at epoch {epoch}; saved to {path}; continue with: "
              f"{again}", file=sys.stderr)
    return signals.exit_code(interrupt)


def _summary(result: experiments.Seeds) -> str:
    pm = common.plus_minus()

    def stat(values):
        mean, std = experiments.mean_std(values)
        return f"{mean:.3f} {pm} {std:.3f}"

    line = f"{len(result.seeds)} seeds, mean {pm} std: training"
    if "accuracy" in result.history:
        line += f" acc: {stat(result.history['accuracy'][:, -1])},"
    line += f" loss: {stat(result.history['loss'][:, -1])}"
    if result.validation is not None:
        line += "; validation"
        if "accuracy" in result.validation:
            line += f" acc: {stat(result.validation['accuracy'])},"
        line += f" loss: {stat(result.validation['loss'])}"
    return line


def _train_one_seed(config: Config, args, parser, checkpoint) -> experiments.Run:
    """One seed, printing the book's log lines; kept in ``checkpoint`` as it goes, with
    the run's options."""
    every = args.log_every if args.checkpoint_every is None else args.checkpoint_every
    kept = {} if checkpoint is None else dict(
        checkpoint_path=checkpoint, checkpoint_every=every or None, resume=args.resume,
        resume_with_changes=args.resume_with_changes, settings=_run_options(args))
    try:
        return experiments.run(
            config, args.seed, log_every=None if args.quiet else (args.log_every or None),
            validation_every=args.validation_every or args.log_every or None,
            log_fn=common.print_line, progress=False if args.quiet else None, **kept)
    except ValueError as err:  # pn.fit refusing the checkpoint it resumes from
        if not args.resume:
            raise
        parser.error(f"--resume: {str(err).splitlines()[0]}")


def _train_seeds(config: Config, args, seeds) -> experiments.Seeds:
    """Several seeds: each seed's final lines, then the summary over seeds."""
    stacked = experiments.run_seeds(config, seeds, progress=False if args.quiet else None,
                                    mode=experiments.default_mode())
    last = config.epochs - 1
    for i, seed in enumerate(seeds):
        single = stacked.unstack(i)
        print(f"seed {seed}: " + pn.train.format_log_line(
            last, experiments.final_metrics(single.history)))
        if single.validation is not None:
            print(f"seed {seed}: " + pn.train.format_validation_line(single.validation))
    print(_summary(stacked))
    return stacked


def _write_outputs(config: Config, args, parser, result, stacked, *, plot, save, title):
    """``--save`` (several seeds: params and optimizer states, at the end) and ``--plot``
    of a finished run; returns the exit status."""
    note = common.notes(parser.prog, args.quiet)
    if save is not None and stacked is None:  # pn.fit kept the run as it went
        note(f"saved the run (params, opt_state, epoch, key, history) to {save}")
    elif save is not None:
        from purenn import checkpoint as checkpoints

        try:
            checkpoints.save(save, {"params": stacked.params, "opt_state": stacked.opt_state})
        except OSError as err:
            return common.print_error(parser.prog, f"cannot save {save!r}: "
                                                   f"{err.strerror or err}")
        note(f"saved params and opt_state of {len(stacked.seeds)} seeds to {save}")
    if plot is not None:
        from purenn import plotting

        plotting.plot_run(plot, result, binary=config.binary, regression=config.regression,
                          title=title, seeds=stacked)
        note(f"wrote {plot}")
    return 0


def _run(config: Config, args, parser, *, title: str, command: Sequence[str],
         hint: str) -> int:
    plot, save, resuming = _check_run(config, args, parser, hint)
    seeds = list(range(args.seed, args.seed + args.seeds))
    try:
        if len(seeds) == 1:
            before = files.file_version(save)
            try:
                if resuming:  # here, so that an interrupt after it says how to continue
                    common.notes(parser.prog, args.quiet)(resuming)
                result, stacked = _train_one_seed(config, args, parser, save), None
            except KeyboardInterrupt as interrupt:
                if save is None:
                    raise
                return _interrupted(parser, save, before, args, command, interrupt)
        else:
            stacked = _train_seeds(config, args, seeds)
            result = stacked.unstack(0)
    except (pn.DivergenceError, experiments.SeedsDivergedError) as err:
        return common.print_error(parser.prog, str(err).splitlines()[0])
    except (MemoryError, RuntimeError) as err:  # RuntimeError: XLA's RESOURCE_EXHAUSTED
        if not _out_of_memory(err):
            raise
        message = str(err).splitlines()[0] if str(err) else "MemoryError"
        return common.print_error(parser.prog, f"out of memory ({message}); {hint}")
    return _write_outputs(config, args, parser, result, stacked, plot=plot, save=save,
                          title=title)
