"""``purenn book`` and ``purenn train``: one run of one configuration, for one or more seeds.

The run is checked before anything trains (output paths, checkpoint options, the
layers' and optimizer's arguments, memory), then trained with ``experiments.run`` (one
seed, printing the book's log lines) or ``experiments.run_seeds``; ``--save`` keeps it,
``--plot`` draws it. Ctrl-C during a run with ``--save`` leaves a checkpoint and says how
to continue it.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import sys
from collections.abc import Sequence

import jax
import numpy as np

import purenn as pn
from purenn import experiments
from purenn.cli import common, memory
from purenn.cli.options import add_options, config_from_args
from purenn.experiments import BOOK, Config

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
    try:
        return _run(config, args, parser, **run)
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130


# --- checks before a run ---------------------------------------------------------------


def _check_checkpoint_options(parser, args, save):
    if args.resume:
        if save is None:
            parser.error("--resume needs --save FILE: the run to continue")
        if args.seeds > 1:
            parser.error(f"--resume continues a single run; it does not apply with "
                         f"--seeds {args.seeds}")
        if not os.path.isfile(save):
            parser.error(f"--resume: {save!r} does not exist; leave out --resume to start "
                         f"a new run")
    if args.checkpoint_every is not None:
        if save is None:
            parser.error("--checkpoint-every needs --save FILE: where to write")
        if args.seeds > 1:
            parser.error(f"--checkpoint-every applies to a single run; with --seeds "
                         f"{args.seeds} the runs are saved at the end")


def _check_resumable(parser, path, config: Config, seed: int):
    """The file is a run's checkpoint (``pn.fit``'s: with its epoch and key), of this seed,
    not past ``config.epochs``."""
    import safetensors

    try:
        with safetensors.safe_open(path, framework="numpy") as file:
            names, metadata = set(file.keys()), file.metadata() or {}
            epoch = int(file.get_tensor("epoch")) if "epoch" in names else None
            key = file.get_tensor("key") if "key" in names else None
    except (OSError, ValueError, safetensors.SafetensorError) as err:
        parser.error(f"--resume: cannot read {path!r}: {str(err).splitlines()[0]}")
    if metadata.get("format") != "purenn.checkpoint" or epoch is None or key is None:
        parser.error(f"--resume: {path!r} is not the checkpoint of a single run (it has no "
                     f"epoch and key; a file saved with --seeds cannot be resumed)")
    k_fit = experiments.seed_keys(seed)[3]
    if not np.array_equal(key, np.asarray(jax.random.key_data(k_fit))):
        parser.error(f"--resume: {path!r} was written by a run with another seed; give "
                     f"the --seed it was started with")
    if epoch > config.epochs:
        parser.error(f"--resume: {path!r} is at epoch {epoch}, past --epochs "
                     f"{config.epochs}; give --epochs {epoch} or more")


def _format_bytes(count: float) -> str:
    units = ["bytes", "kB", "MB", "GB", "TB", "PB"]
    while count >= 1000 and len(units) > 1:
        count, units = count / 1000, units[1:]
    return f"{count:.0f} bytes" if units[0] == "bytes" else f"{count:.1f} {units[0]}"


def _check_memory(parser, config: Config, args, hint: str):
    """Refuse a run that cannot fit in memory, before anything is allocated: first from
    shapes alone (a lower bound, nothing compiled), then by XLA's analysis of the
    compiled training program, which the run then reuses (no compile added)."""
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
    measured = memory.measure_memory(config, args.seeds, vmap=vmap)
    if measured > limit[0]:
        parser.error(
            f"this run needs {_format_bytes(measured)} of memory by XLA's analysis of its "
            f"training program, more than {limit[1]} ({_format_bytes(limit[0])}); {hint}")


def _check_run(config: Config, args, parser, hint: str):
    """Every check that can refuse the run (``parser.error``), before it compiles or
    allocates anything; then the compilation cache. Returns the ``--plot`` and ``--save``
    paths."""
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
    _check_memory(parser, config, args, hint)  # compiles the run's training program
    if args.resume:
        _check_resumable(parser, save, config, args.seed)
    return plot, save


# --- the run ---------------------------------------------------------------------------


def _out_of_memory(err: BaseException) -> bool:
    return isinstance(err, MemoryError) or (
        isinstance(err, RuntimeError) and "RESOURCE_EXHAUSTED" in str(err))


def _file_identity(path):
    if path is None:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def _interrupted(parser, path, before, args, command) -> int:
    """After Ctrl-C in a run saved to ``path``: one line saying where it stopped and how to
    continue it."""
    after = _file_identity(path)
    if after is None or (after == before and not args.resume):
        print(f"{parser.prog}: interrupted before the first checkpoint; nothing saved to "
              f"{path}", file=sys.stderr)
        return 130
    import safetensors

    with safetensors.safe_open(path, framework="numpy") as file:
        epoch = int(file.get_tensor("epoch"))
    again = list(command) + ([] if args.resume else ["--resume"])
    print(f"{parser.prog}: interrupted at epoch {epoch}; saved to {path}; continue with: "
          f"purenn {shlex.join(again)}", file=sys.stderr)
    return 130


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
    """One seed, printing the book's log lines; kept in ``checkpoint`` as it goes."""
    every = args.log_every if args.checkpoint_every is None else args.checkpoint_every
    try:
        return experiments.run(
            config, args.seed, log_every=None if args.quiet else (args.log_every or None),
            log_fn=common.print_line, progress=False if args.quiet else None,
            checkpoint_path=checkpoint,
            checkpoint_every=(every or None) if checkpoint else None, resume=args.resume)
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
    plot, save = _check_run(config, args, parser, hint)
    seeds = list(range(args.seed, args.seed + args.seeds))
    try:
        if len(seeds) == 1:
            before = _file_identity(save)
            try:
                result, stacked = _train_one_seed(config, args, parser, save), None
            except KeyboardInterrupt:
                if save is None:
                    raise
                return _interrupted(parser, save, before, args, command)
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
