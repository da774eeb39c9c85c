"""The ``purenn`` command: the book's experiments, one command each.

    purenn book --list
    purenn book regularization
    purenn book wider --seeds 5 --plot wider.png
    purenn train --hidden 128 --dropout 0.1 --optimizer sgd --momentum 0.9 --save run.safetensors

Also ``python -m purenn``. Output on stdout is the book's log lines; notes (files written)
go to stderr. A bad option prints one line ``purenn ...: error: ...`` and exits with 2; a
run that diverges exits with 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence

import purenn as pn
from purenn import experiments, sweep
from purenn.experiments import BOOK, OPTIMIZERS, Config

DEFAULT_EPOCHS = 10001


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


def nonnegative_int(text):
    value = _number(int, text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {value}")
    return value


def _finite(text):
    value = _number(float, text)
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_float(text):
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {value:g}")
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
    return value


def seed_int(text):
    value = _number(int, text)
    if not 0 <= value < 2**31:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**31), got {value}")
    return value


def experiment_name(text):
    return text.strip().lower().replace("_", "-")


# --- the parser ------------------------------------------------------------------------


def _shared_options(parser):
    runs = parser.add_argument_group("running")
    runs.add_argument("--epochs", type=positive_int, default=None, metavar="N",
                      help=f"epochs to train (default {DEFAULT_EPOCHS}: the book prints "
                           f"epochs 0 to 10000)")
    runs.add_argument("--seed", type=seed_int, default=0, metavar="S",
                      help="the run's seed: data, initial weights and dropout masks come "
                           "from jax.random.key(S) (default 0)")
    runs.add_argument("--seeds", type=positive_int, default=1, metavar="N",
                      help="train N seeds (S, S+1, ...); print each seed's final lines, "
                           "then the mean and standard deviation (ddof=1) over seeds of "
                           "the training "
                           "and validation accuracy and loss. No periodic log lines")
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
                     help="save {'params', 'opt_state'} with purenn.checkpoint.save; with "
                          "--seeds every leaf gets a leading axis, one entry per seed")


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
    _shared_options(book)

    train = commands.add_parser(
        "train", help="train a network of your choice on spiral or vertical data",
        description="Train dense -> ReLU [-> dropout] blocks and a softmax (or, with "
                    "--binary, sigmoid) output on the book's toy data, full batch by "
                    "default. Without options: spiral 100x3, 64 hidden units, Adam with "
                    "the book's defaults, 10001 epochs.")
    train.set_defaults(parser=train)
    data = train.add_argument_group("data")
    data.add_argument("--data", choices=experiments.DATA, default="spiral",
                      help="the data set (default spiral)")
    data.add_argument("--samples", type=positive_int, default=100, metavar="N",
                      help="training samples per class (default 100)")
    data.add_argument("--classes", type=positive_int, default=None, metavar="C",
                      help="number of classes (default 3; 2 with --binary)")
    data.add_argument("--validation-samples", type=nonnegative_int, default=100, metavar="N",
                      help="validation samples per class, drawn with another key "
                           "(default 100; 0: no validation)")
    model = train.add_argument_group("model")
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
    opt = train.add_argument_group(
        "optimizer", "Options left out take the book's defaults of the chosen optimizer "
                     "(sgd lr 1.0; adagrad lr 1.0; rmsprop lr 0.001, rho 0.9; adam lr "
                     "0.001, beta_1 0.9, beta_2 0.999; epsilon 1e-7; decay 0).")
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
    _shared_options(train)
    sweep.add_parser(commands, train)  # purenn sweep: train's options, numeric ones as lists
    return parser


# --- from options to a run ---------------------------------------------------------------


def _train_config(args, parser) -> Config:
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


def _check_output(parser, option, path, suffix=None):
    if path is None:
        return None
    if suffix and not path.lower().endswith(suffix):
        parser.error(f"{option} {path!r}: the file name must end in {suffix}")
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        parser.error(f"{option} {path!r} is a folder; give a file name")
    if not os.path.isdir(folder):
        parser.error(f"{option} {path!r}: the folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        parser.error(f"{option} {path!r}: the folder {folder!r} is not writable")
    return path


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


def _run(config: Config, args, parser, *, title: str) -> int:
    plot = _check_output(parser, "--plot", args.plot, ".png")
    save = _check_output(parser, "--save", args.save)
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
    progress = False if args.quiet else None
    note = (lambda message: None) if args.quiet else (
        lambda message: print(f"purenn: {message}", file=sys.stderr))

    seeds = list(range(args.seed, args.seed + args.seeds))
    try:
        if len(seeds) == 1:
            result = experiments.run(config, seeds[0], log_every=None if args.quiet
                                     else (args.log_every or None), progress=progress)
            stacked = None
        else:
            stacked = experiments.run_seeds(config, seeds, progress=progress,
                                            mode=experiments.default_seeds_mode())
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

    if save is not None:
        from purenn import checkpoint

        source = stacked if stacked is not None else result
        try:
            checkpoint.save(save, {"params": source.params, "opt_state": source.opt_state})
        except OSError as err:
            print(f"{parser.prog}: error: cannot save {save!r}: {err.strerror or err}",
                  file=sys.stderr)
            return 1
        note(f"saved params and opt_state to {save}")
    if plot is not None:
        from purenn import plotting

        plotting.plot_run(plot, result, binary=config.binary, title=title,
                          seeds=stacked)
        note(f"wrote {plot}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The ``purenn`` command; returns the exit status (errors exit with 2 directly)."""
    parser = build_parser()
    args = parser.parse_args(argv)
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
    else:
        try:
            config = _train_config(args, sub)
        except (ValueError, TypeError) as err:
            sub.error(str(err))
        title = "purenn train"
    try:
        return _run(config, args, sub, title=title)
    except KeyboardInterrupt:
        print(f"{sub.prog}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
