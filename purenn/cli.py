"""The ``purenn`` command: the book's experiments, one command each.

    purenn book --list
    purenn book regularization
    purenn book wider --seeds 5 --plot wider.png
    purenn train --hidden 128 --dropout 0.1 --optimizer sgd --momentum 0.9 --save run.safetensors

Also ``python -m purenn``. Output on stdout is the book's log lines; notes (files written)
go to stderr. A bad option prints one line ``purenn ...: error: ...`` and exits with 2; a
run that diverges or runs out of memory exits with 1; Ctrl-C exits with 130 (a run with
``--save`` is kept, and ``--resume`` continues it).

Compiled programs are kept in JAX's persistent compilation cache, in
``$XDG_CACHE_HOME/purenn`` (``~/.cache/purenn`` by default), so a second run compiles
nothing; ``--no-cache`` or ``PURENN_NO_CACHE=1`` turn it off. Only the command does this:
``import purenn`` writes nothing to disk.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import secrets
import shlex
import sys
from collections.abc import Sequence

import jax
import numpy as np

import purenn as pn
from purenn import experiments, sweep
from purenn.experiments import BOOK, OPTIMIZERS, Config

DEFAULT_EPOCHS = 10001
MAX_EPOCHS = 2**31 - 1  # pn.fit counts epochs in int32
NO_CACHE_ENV = "PURENN_NO_CACHE"


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage block): ``prog: error: message``."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# --- option types: each rejects a bad value with a one-line message -------------------


def _number(kind, text):
    try:
        return kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


def positive_int(text):
    value = _number(int, text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def epochs_int(text):
    value = positive_int(text)
    if value > MAX_EPOCHS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_EPOCHS}, got {value}")
    return value


def nonnegative_int(text):
    value = _number(int, text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {value}")
    return value


def _float_dtype() -> np.dtype:
    """The dtype a float option is computed in: float32, unless jax_enable_x64 is on."""
    return np.dtype(jax.dtypes.canonicalize_dtype(np.float64))


def _finite(text):
    value = _number(float, text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    dtype = _float_dtype()
    with np.errstate(over="ignore"):
        if not np.isfinite(dtype.type(value)):
            raise argparse.ArgumentTypeError(
                f"{text} is not finite in {dtype} (the largest {dtype} is "
                f"{float(np.finfo(dtype).max):.4g})")
    return value


def positive_float(text):
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {value:g}")
    dtype = _float_dtype()
    if dtype.type(value) == 0:
        raise argparse.ArgumentTypeError(
            f"{text} is 0 in {dtype}; must be a number > 0 (the smallest positive {dtype} "
            f"is {float(np.finfo(dtype).smallest_subnormal):.4g})")
    return value


def nonnegative_float(text):
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {value:g}")
    return value


def fraction(text):
    value = _finite(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value:g}")
    dtype = _float_dtype()
    if dtype.type(value) >= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1); {text} is 1 in {dtype}")
    return value


def seed_int(text):
    value = _number(int, text)
    if not 0 <= value < 2**31:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**31), got {value}")
    return value


def experiment_name(text):
    return text.strip().lower().replace("_", "-")


# --- the parser ------------------------------------------------------------------------


def add_run_options(parser):
    """The options of a run whatever its configuration: epochs, seeds, output, checkpoints
    and the compilation cache (``purenn book`` and ``purenn train``)."""
    runs = parser.add_argument_group("running")
    runs.add_argument("--epochs", type=epochs_int, default=None, metavar="N",
                      help=f"epochs to train, at most {MAX_EPOCHS} (default "
                           f"{DEFAULT_EPOCHS}: the book prints epochs 0 to 10000)")
    runs.add_argument("--seed", type=seed_int, default=0, metavar="S",
                      help="the run's seed: data, initial weights and dropout masks come "
                           "from jax.random.key(S) (default 0)")
    runs.add_argument("--seeds", type=positive_int, default=1, metavar="N",
                      help="train N seeds (S, S+1, ...); print each seed's final lines, "
                           "then the mean and standard deviation (ddof=1) over seeds of "
                           "the training "
                           "and validation accuracy and loss. No periodic log lines")
    runs.add_argument("--no-cache", action="store_true",
                      help="do not keep compiled programs in the persistent compilation "
                           "cache ($XDG_CACHE_HOME/purenn, by default ~/.cache/purenn, "
                           "which lets a second run skip compiling); also "
                           f"{NO_CACHE_ENV}=1")
    out = parser.add_argument_group("output")
    out.add_argument("--log-every", type=nonnegative_int, default=100, metavar="K",
                     help="print the book's log line every K epochs (default 100; 0: only "
                          "the last epoch's). The last epoch's line and the validation "
                          "line are always printed")
    out.add_argument("--quiet", "-q", action="store_true",
                     help="no progress bar, no periodic log lines and no notes: only the "
                          "final results (the last epoch's line, the validation line, or "
                          "the summary over seeds). The progress bar is also off when "
                          "stderr is not a terminal or the run is under 1000 epochs")
    out.add_argument("--plot", metavar="FILE.png",
                     help="write a PNG: the decision regions of the trained model over "
                          "the training points, beside the loss and accuracy curves "
                          "(needs matplotlib: pip install 'purenn[plot]')")
    out.add_argument("--save", metavar="FILE.safetensors",
                     help="keep the run in FILE with purenn.checkpoint.save: pn.fit's "
                          "checkpoint {'params', 'opt_state', 'epoch', 'key', 'history', ...}, "
                          "written every --checkpoint-every epochs, at the end and on "
                          "Ctrl-C (exit 130), so that --resume can continue it. With "
                          "--seeds: {'params', 'opt_state'} at the end, every leaf with a "
                          "leading axis, one entry per seed")
    out.add_argument("--checkpoint-every", type=nonnegative_int, default=None, metavar="N",
                     help="with --save, write the checkpoint every N epochs (default: at "
                          "each log line, every --log-every epochs; 0: only at the end "
                          "and on Ctrl-C)")
    out.add_argument("--resume", action="store_true",
                     help="continue the run kept in --save FILE (stopped with Ctrl-C, or "
                          "shorter) up to --epochs; give the options it was started with. "
                          "It ends bit-identical to an uninterrupted run")


def add_train_options(parser):
    """The options that describe a run's configuration (``config_from_args`` reads them):
    data, model and optimizer."""
    data = parser.add_argument_group("data")
    data.add_argument("--data", choices=experiments.DATA, default="spiral",
                      help="the data set (default spiral)")
    data.add_argument("--samples", type=positive_int, default=100, metavar="N",
                      help="training samples per class (default 100)")
    data.add_argument("--classes", type=positive_int, default=None, metavar="C",
                      help="number of classes (default 3; 2 with --binary)")
    data.add_argument("--validation-samples", type=nonnegative_int, default=100, metavar="N",
                      help="validation samples per class, drawn with another key "
                           "(default 100; 0: no validation)")
    model = parser.add_argument_group("model")
    model.add_argument("--hidden", type=positive_int, nargs="+", default=[64], metavar="H",
                       help="hidden layer sizes, one dense -> ReLU block each (default 64)")
    for name in ("weight-l1", "weight-l2", "bias-l1", "bias-l2"):
        what, kind = name.split("-")
        model.add_argument(f"--{name}", type=nonnegative_float, default=0.0,
                           metavar="LAMBDA",
                           help=f"{kind.upper()} penalty on the hidden layers' "
                                f"{'weights' if what == 'weight' else 'biases'} (default 0)")
    model.add_argument("--dropout", type=fraction, default=0.0, metavar="RATE",
                       help="dropout after each hidden ReLU; RATE is the fraction dropped, "
                            "in [0, 1) (default 0: none)")
    model.add_argument("--binary", action="store_true",
                       help="one sigmoid output with binary cross-entropy (2 classes)")
    opt = parser.add_argument_group(
        "optimizer", "Options left out take the book's defaults of the chosen optimizer "
                     "(sgd lr 1.0; adagrad lr 1.0; rmsprop lr 0.001, rho 0.9; adam lr "
                     "0.001, beta_1 0.9, beta_2 0.999; epsilon 1e-7; decay 0). Values "
                     "must be finite in float32, the precision the run computes in.")
    opt.add_argument("--optimizer", choices=list(OPTIMIZERS), default="adam",
                     help="default adam")
    opt.add_argument("--learning-rate", type=positive_float, metavar="LR")
    opt.add_argument("--decay", type=nonnegative_float, metavar="D",
                     help="inverse-time decay: lr / (1 + D * step)")
    opt.add_argument("--momentum", type=nonnegative_float, metavar="M", help="sgd only")
    opt.add_argument("--epsilon", type=positive_float, metavar="EPS",
                     help="adagrad, rmsprop, adam")
    opt.add_argument("--rho", type=fraction, metavar="RHO", help="rmsprop only")
    opt.add_argument("--beta-1", type=fraction, metavar="B1", help="adam only")
    opt.add_argument("--beta-2", type=fraction, metavar="B2", help="adam only")
    opt.add_argument("--batch-size", type=positive_int, default=None, metavar="B",
                     help="shuffled minibatches of B samples (default: full batch)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="purenn",
        description="Neural Networks from Scratch, as pure JAX functions: run the book's "
                    "experiments, or train your own network on the book's toy data.",
        epilog="Run 'purenn book --help' or 'purenn train --help' for the options.")
    parser.add_argument("--version", action="version", version=f"purenn {pn.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="{book,train,sweep}",
                                     parser_class=_Parser)

    book = commands.add_parser(
        "book", help="run one of the book's experiments with the book's settings",
        description="Run one of the book's experiments (BOOK.md) with the book's data, "
                    "model, optimizer and 10001 epochs, printing the book's log line "
                    "every 100 epochs and the validation line at the end.",
        epilog="Experiments: " + ", ".join(BOOK) + ". Example: purenn book wider --seeds 5")
    book.set_defaults(parser=book)
    book.add_argument("experiment", nargs="?", type=experiment_name,
                      help="one of: " + ", ".join(BOOK))
    book.add_argument("--list", action="store_true", help="name the experiments and exit")
    add_run_options(book)

    train = commands.add_parser(
        "train", help="train a network of your choice on spiral or vertical data",
        description="Train dense -> ReLU [-> dropout] blocks and a softmax (or, with "
                    "--binary, sigmoid) output on the book's toy data, full batch by "
                    "default. Without options: spiral 100x3, 64 hidden units, Adam with "
                    "the book's defaults, 10001 epochs.")
    train.set_defaults(parser=train)
    add_train_options(train)
    add_run_options(train)
    sweep.add_parser(commands, train)  # purenn sweep: train's options, numeric ones as lists
    return parser


# --- from options to a run ---------------------------------------------------------------


def config_from_args(args, parser) -> Config:
    """The ``Config`` that ``add_train_options``' options describe; a bad combination is
    ``parser.error``."""
    given = [(name, getattr(args, name)) for name in
             ("learning_rate", "decay", "momentum", "epsilon", "rho", "beta_1", "beta_2")
             if getattr(args, name) is not None]
    for name, _ in given:
        if name not in OPTIMIZERS[args.optimizer]:
            users = [o for o, names in OPTIMIZERS.items() if name in names]
            parser.error(f"--{name.replace('_', '-')} does not apply to --optimizer "
                         f"{args.optimizer} (it is an option of {', '.join(users)})")
    classes = args.classes if args.classes is not None else (2 if args.binary else 3)
    if args.binary and classes != 2:
        parser.error(f"--binary separates 2 classes; got --classes {classes}")
    if args.batch_size is not None and args.batch_size > args.samples * classes:
        parser.error(f"--batch-size {args.batch_size} is more than the "
                     f"{args.samples * classes} training samples ({args.samples} x "
                     f"{classes}); leave it out for full batch")
    return Config(data=args.data, samples=args.samples, classes=classes,
                  validation_samples=args.validation_samples, hidden=tuple(args.hidden),
                  weight_l1=args.weight_l1, weight_l2=args.weight_l2,
                  bias_l1=args.bias_l1, bias_l2=args.bias_l2, dropout=args.dropout,
                  binary=args.binary, optimizer=args.optimizer,
                  optimizer_args=tuple(given), epochs=args.epochs or DEFAULT_EPOCHS,
                  batch_size=args.batch_size)


# --- the compilation cache ---------------------------------------------------------------


def cache_folder() -> str:
    """Where the command keeps compiled programs: ``$XDG_CACHE_HOME/purenn``, or
    ``~/.cache/purenn`` when XDG_CACHE_HOME is unset or not an absolute path (as the XDG
    base directory specification asks)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "purenn")


def cache_disabled(args) -> bool:
    """``--no-cache``, or PURENN_NO_CACHE set to anything but "" or "0"."""
    return args.no_cache or os.environ.get(NO_CACHE_ENV, "") not in ("", "0")


def enable_compilation_cache(warn) -> str | None:
    """Turn on JAX's persistent compilation cache in ``cache_folder()`` for every program,
    however quickly it compiled, so that a later run loads instead of compiling. Returns
    the folder, or None after one ``warn(message)`` when the folder cannot be created or
    written. A folder chosen with JAX_COMPILATION_CACHE_DIR wins, with JAX's settings as
    they are. Changes this process's ``jax.config``: call it before anything compiles."""
    chosen = jax.config.jax_compilation_cache_dir
    if chosen:
        return chosen
    folder = cache_folder()
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)  # the cache holds code JAX will run
        probe = os.path.join(folder, f".probe.{secrets.token_hex(6)}.tmp")
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(probe)
    except OSError as err:
        warn(f"cannot use the compilation cache folder {folder!r} "
             f"({err.strerror or err}); running without it")
        return None
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # no size limit
    return folder


# --- checks before a run ---------------------------------------------------------------


def _name_max(folder) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (AttributeError, ValueError, OSError):
        return 255


def _check_output(parser, option, path, suffix=None, *, checkpoint=False):
    """Refuse an output path that cannot be written, before any training. ``checkpoint``:
    also create (and remove) a temporary file in its folder, as ``checkpoint.save`` does."""
    if path is None:
        return None
    shown = f"{option} {path!r}"
    if not path:
        parser.error(f"{option} '': give a file name")
    if os.path.isdir(path):
        parser.error(f"{shown} is a folder; give a file name")
    if path.endswith(tuple(sep for sep in (os.sep, os.altsep) if sep)):
        parser.error(f"{shown} ends in a path separator, so it names a folder; give a "
                     f"file name")
    if suffix and not path.lower().endswith(suffix):
        parser.error(f"{shown}: the file name must end in {suffix}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        parser.error(f"{shown}: the folder {folder!r} does not exist")
    name = os.path.basename(path)
    length, limit = len(os.fsencode(name)), _name_max(folder)
    if length > limit:
        parser.error(f"{shown}: the file name is too long: {length} bytes, where at most "
                     f"{limit} fit")
    if checkpoint:  # checkpoint.save writes a temporary file in the folder first
        probe = os.path.join(folder, f".purenn-probe.{secrets.token_hex(6)}.tmp")
        try:
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            os.unlink(probe)
        except OSError as err:
            parser.error(f"{shown}: cannot write in the folder {folder!r}: "
                         f"{err.strerror or err}")
    if not os.access(folder, os.W_OK | os.X_OK):
        parser.error(f"{shown}: the folder {folder!r} is not writable")
    return path


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


def _memory_limit() -> tuple[int, str] | None:
    """The memory a run can use and whose it is: the accelerator's, or this machine's."""
    device = jax.devices()[0]
    try:
        stats = device.memory_stats()
    except (RuntimeError, NotImplementedError, AttributeError):
        stats = None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"]), f"the {device.platform.upper()}'s memory"
    if device.platform == "cpu":
        try:
            return (os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
                    "this machine's memory")
        except (AttributeError, ValueError, OSError):
            return None
    return None


def _check_memory(parser, config: Config, args, hint: str):
    """Refuse a run whose parameters, optimizer state, data and activations cannot fit,
    before any of them is allocated."""
    limit = _memory_limit()
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


def _out_of_memory(err: BaseException) -> bool:
    return isinstance(err, MemoryError) or (
        isinstance(err, RuntimeError) and "RESOURCE_EXHAUSTED" in str(err))


def _print_line(line: str):
    print(line, flush=True)  # log lines reach a pipe (| tee) as they come


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


def _plus_minus() -> str:
    try:
        "±".encode(sys.stdout.encoding or "ascii")
        return "±"
    except (UnicodeEncodeError, LookupError):
        return "+/-"


def _summary(result: experiments.Seeds) -> str:
    pm = _plus_minus()

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


def _run(config: Config, args, parser, *, title: str, command: Sequence[str],
         hint: str) -> int:
    plot = _check_output(parser, "--plot", args.plot, ".png")
    save = _check_output(parser, "--save", args.save, checkpoint=True)
    _check_checkpoint_options(parser, args, save)
    if args.seed + args.seeds > 2**31:
        parser.error(f"--seed {args.seed} --seeds {args.seeds}: the last seed, "
                     f"{args.seed + args.seeds - 1}, must be below 2**31")
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
    _check_memory(parser, config, args, hint)  # from shapes: compiles nothing
    if not cache_disabled(args):  # before anything compiles
        enable_compilation_cache(
            lambda message: print(f"{parser.prog}: warning: {message}", file=sys.stderr))
    if args.resume:
        _check_resumable(parser, save, config, args.seed)
    progress = False if args.quiet else None
    note = (lambda message: None) if args.quiet else (
        lambda message: print(f"{parser.prog}: {message}", file=sys.stderr))

    seeds = list(range(args.seed, args.seed + args.seeds))
    checkpoint = save if len(seeds) == 1 else None
    try:
        if len(seeds) == 1:
            every = args.log_every if args.checkpoint_every is None else args.checkpoint_every
            before = _file_identity(checkpoint)
            try:
                result = experiments.run(
                    config, seeds[0], log_every=None if args.quiet else (args.log_every or None),
                    log_fn=_print_line, progress=progress, checkpoint_path=checkpoint,
                    checkpoint_every=(every or None) if checkpoint else None,
                    resume=args.resume)
            except KeyboardInterrupt:
                if checkpoint is None:
                    raise
                return _interrupted(parser, checkpoint, before, args, command)
            except ValueError as err:  # pn.fit refusing the checkpoint it resumes from
                if not args.resume:
                    raise
                parser.error(f"--resume: {str(err).splitlines()[0]}")
            stacked = None
        else:
            stacked = experiments.run_seeds(config, seeds, progress=progress,
                                            mode=experiments.default_mode())
            last = config.epochs - 1
            for i, seed in enumerate(seeds):
                single = stacked.unstack(i)
                print(f"seed {seed}: " + pn.train.format_log_line(
                    last, experiments.final_metrics(single.history)))
                if single.validation is not None:
                    print(f"seed {seed}: "
                          + pn.train.format_validation_line(single.validation))
            print(_summary(stacked))
            result = stacked.unstack(0)
    except (pn.DivergenceError, experiments.SeedsDivergedError) as err:
        print(f"{parser.prog}: error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 1
    except (MemoryError, RuntimeError) as err:  # RuntimeError: XLA's RESOURCE_EXHAUSTED
        if not _out_of_memory(err):
            raise
        message = str(err).splitlines()[0] if str(err) else "MemoryError"
        print(f"{parser.prog}: error: out of memory ({message}); {hint}", file=sys.stderr)
        return 1

    if checkpoint is not None:
        note(f"saved the run (params, opt_state, epoch, key, history) to {checkpoint}")
    elif save is not None:
        from purenn import checkpoint as checkpoints

        try:
            checkpoints.save(save, {"params": stacked.params, "opt_state": stacked.opt_state})
        except OSError as err:
            print(f"{parser.prog}: error: cannot save {save!r}: {err.strerror or err}",
                  file=sys.stderr)
            return 1
        note(f"saved params and opt_state of {len(seeds)} seeds to {save}")
    if plot is not None:
        from purenn import plotting

        plotting.plot_run(plot, result, binary=config.binary, title=title,
                          seeds=stacked)
        note(f"wrote {plot}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The ``purenn`` command; returns the exit status (errors exit with 2 directly)."""
    command = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(command)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    sub = args.parser
    if args.command == "sweep":
        return sweep.main(args, sub)
    if args.command == "book":
        if args.list:
            width = max(map(len, BOOK))
            for name, experiment in BOOK.items():
                published = (f" Book: training acc {experiment.book[0]:.3f}, validation "
                             f"acc {experiment.book[1]:.3f}." if experiment.book else "")
                print(f"{name:<{width}}  {experiment.summary}: "
                      f"{experiment.config.describe()}.{published}")
            return 0
        if args.experiment is None:
            sub.error("name an experiment (one of: " + ", ".join(BOOK) + ") or pass --list")
        if args.experiment not in BOOK:
            sub.error(f"unknown experiment {args.experiment!r}; choose one of: "
                      + ", ".join(BOOK))
        config = BOOK[args.experiment].config
        if args.epochs is not None:
            config = dataclasses.replace(config, epochs=args.epochs)
        title = f"purenn book {args.experiment}"
        hint = "use fewer --seeds"
    else:
        try:
            config = config_from_args(args, sub)
        except (ValueError, TypeError) as err:
            sub.error(str(err))
        title = "purenn train"
        hint = ("use a smaller --hidden, --samples, --validation-samples or --batch-size"
                + (", or fewer --seeds" if args.seeds > 1 else ""))
    try:
        return _run(config, args, sub, title=title, command=command, hint=hint)
    except KeyboardInterrupt:
        print(f"{sub.prog}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
