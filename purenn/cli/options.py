"""The options of every ``purenn`` command, as one table, and the parsers built from it.

Each ``Option`` says its flags, value type, default, help and help section, and which
commands take it (``book``, ``train``, ``sweep``). ``add_options(parser, command)`` adds a
command's options to its parser, section by section in the table's order. For ``purenn
sweep`` the options it shares with ``purenn train`` are wrapped as they are added: a
``sweepable`` one takes a comma list of values (each checked by the option's own type),
any other that takes a value refuses a comma list.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from purenn import experiments, initializers
from purenn.cli import values
from purenn.cli.common import NO_CACHE_ENV
from purenn.cli.values import MAX_EPOCHS
from purenn.configs import TASKS, is_data_file
from purenn.experiments import DATA, OPTIMIZERS, REGRESSION_DATA, Config
from purenn.grids import MAX_CELLS

__all__ = [
    "DEFAULT_EPOCHS",
    "GROUPS",
    "OPTIONS",
    "PICTURE",
    "RUNS",
    "SUMMARY",
    "Option",
    "add_options",
    "config_from_args",
    "options_of",
]

DEFAULT_EPOCHS = 10001
RUNS, SUMMARY, PICTURE = "runs.csv", "summary.csv", "sweep.png"  # purenn sweep's files

_RUN = ("book", "train")  # the commands that make one run (of one or more seeds)
_TRAIN_AND_SWEEP = ("train", "sweep")
_ALL = ("book", "train", "sweep")

# The help sections, in order, and their descriptions.
GROUPS = {
    "sweep": None,
    "data": None,
    "model": None,
    "optimizer": "Options left out take the book's defaults of the chosen optimizer (sgd lr "
                 "1.0; adagrad lr 1.0; rmsprop lr 0.001, rho 0.9; adam lr 0.001, beta_1 "
                 "0.9, beta_2 0.999; epsilon 1e-7; decay 0). Values must be finite in "
                 "float32, the precision the run computes in.",
    "running": None,
    "output": None,
}
_ONE_VALUE = "only numeric options of one value each take a comma list"


@dataclasses.dataclass(frozen=True)
class Option:
    """One option (or positional argument) of the ``purenn`` commands."""

    flags: tuple[str, ...]  # ("--quiet", "-q"); ("experiment",) for a positional argument
    commands: tuple[str, ...]  # the commands that take it
    group: str | None  # its section of the help (a key of GROUPS); None: the parser's own
    help: str | None
    type: Callable[[str], Any] | None = None
    default: Any = None
    metavar: str | None = None
    choices: Sequence | None = None
    nargs: str | None = None
    switch: bool = False  # takes no value: True when given
    required: bool = False
    sweepable: bool = False  # purenn sweep takes a comma list of values (sweep.SWEEPABLE)
    sweep_help: str | None = None  # the help of purenn sweep, where it differs
    one_value: str = _ONE_VALUE  # purenn sweep: why a comma list is refused

    @property
    def dest(self) -> str:
        """The attribute of the parsed arguments that holds its value."""
        return self.flags[0].lstrip("-").replace("-", "_")

    @property
    def name(self) -> str:
        """The longest flag, as a command line spells the option."""
        return max(self.flags, key=len)

    def arguments(self, command: str) -> dict:
        """The keyword arguments of ``add_argument`` for ``command``. In ``sweep`` an
        option of ``train`` takes a comma list (``sweepable``) or refuses one."""
        help_ = (self.sweep_help if command == "sweep" else None) or self.help
        if self.switch:
            return dict(action="store_true", help=help_)
        kind, metavar = self.type, self.metavar
        if command == "sweep" and "train" in self.commands and self.sweepable:
            kind = values.listed(self.type)
            metavar = f"{self.metavar or self.dest.upper()}[,...]"
            help_ = (help_ + "; " if help_ else "") + "a comma list sweeps it"
        elif command == "sweep" and "train" in self.commands:
            kind = values.single(self.type, self.one_value)
        arguments = dict(type=kind, default=self.default, metavar=metavar,
                         choices=self.choices, nargs=self.nargs, help=help_)
        if self.required:  # argparse refuses the keyword for positional arguments
            arguments["required"] = True
        return {name: value for name, value in arguments.items() if value is not None}


def _penalty(name: str) -> Option:
    what, kind = name.split("-")
    return Option((f"--{name}",), _TRAIN_AND_SWEEP, "model",
                  f"{kind.upper()} penalty on the hidden layers' "
                  f"{'weights' if what == 'weight' else 'biases'} (default 0)",
                  type=values.nonnegative_float, default=0.0, metavar="LAMBDA",
                  sweepable=True)


def _optimizer_argument(flag, kind, metavar, help_=None) -> Option:
    return Option((flag,), _TRAIN_AND_SWEEP, "optimizer", help_, type=kind, metavar=metavar,
                  sweepable=True)


OPTIONS: tuple[Option, ...] = (
    # purenn book's own
    Option(("experiment",), ("book",), None, "one of: " + ", ".join(experiments.BOOK),
           type=values.experiment_name, nargs="?"),
    Option(("--list",), ("book",), None, "name the experiments and exit", switch=True),
    # purenn sweep's own
    Option(("--out",), ("sweep",), "sweep",
           f"the folder for {RUNS}, {SUMMARY} and {PICTURE} (created if missing)",
           metavar="DIR", required=True),
    Option(("--seeds",), ("sweep",), "sweep",
           "train each combination with N seeds: --seed S, S+1, ... (default 1)",
           type=values.positive_int, default=1, metavar="N"),
    Option(("--resume",), ("sweep",), "sweep",
           f"keep the runs already in DIR/{RUNS} (same values, seed and options) and train "
           f"only the missing ones; if another sweep is writing to DIR, wait for it to end "
           f"first", switch=True),
    Option(("--max-cells",), ("sweep",), "sweep",
           f"train a grid of up to N combinations (default {MAX_CELLS}: a larger grid is "
           f"refused)", type=values.positive_int, default=MAX_CELLS, metavar="N"),
    # what a run trains: data, model, optimizer (purenn book takes the book's)
    Option(("--data",), _TRAIN_AND_SWEEP, "data",
           f"the data: {', '.join(DATA)}, {', '.join(REGRESSION_DATA)} (regression), or "
           f"your own .csv file (a header row, one sample per row, the label in the last "
           f"column or --target) or .npz file (X, y, optionally X_val, y_val) (default "
           f"spiral)", type=values.data_source, default="spiral", metavar="NAME|FILE"),
    Option(("--target",), _TRAIN_AND_SWEEP, "data",
           "with a .csv file: the label column (default: the last column)", metavar="NAME"),
    Option(("--task",), _TRAIN_AND_SWEEP, "data",
           "with a data file: classification (the labels are classes: names or integers "
           "0..K-1; the default) or regression (the labels are real targets: a linear "
           "output and mean squared error)", choices=TASKS),
    Option(("--validation-data",), _TRAIN_AND_SWEEP, "data",
           "with a data file: a file of validation samples, with the same columns",
           metavar="FILE"),
    Option(("--validation-split",), _TRAIN_AND_SWEEP, "data",
           "with a data file: hold out this fraction of its samples for validation, drawn "
           "from the run's seed (same seed, same split)", type=values.open_fraction,
           metavar="F"),
    Option(("--standardize",), _TRAIN_AND_SWEEP, "data",
           "scale each input feature by the training samples' mean and standard deviation "
           "(the validation samples by the same)", switch=True),
    Option(("--samples",), _TRAIN_AND_SWEEP, "data",
           "training samples per class of the built-in data (default 100; sine: in all)",
           type=values.positive_int, default=100, metavar="N", sweepable=True),
    Option(("--classes",), _TRAIN_AND_SWEEP, "data",
           "number of classes of the built-in data (default 3; 2 with --binary)",
           type=values.class_count, metavar="C", sweepable=True),
    Option(("--validation-samples",), _TRAIN_AND_SWEEP, "data",
           "validation samples per class of the built-in data, drawn with another key "
           "(default 100; 0: no validation)", type=values.nonnegative_int, default=100,
           metavar="N", sweepable=True),
    Option(("--hidden",), _TRAIN_AND_SWEEP, "model",
           "hidden layer sizes, one dense -> ReLU block each (default 64)",
           type=values.positive_int, nargs="+", default=[64], metavar="H"),
    *(_penalty(name) for name in ("weight-l1", "weight-l2", "bias-l1", "bias-l2")),
    Option(("--dropout",), _TRAIN_AND_SWEEP, "model",
           "dropout after each hidden ReLU; RATE is the fraction dropped, in [0, 1) "
           "(default 0: none)", type=values.fraction, default=0.0, metavar="RATE",
           sweepable=True),
    Option(("--binary",), _TRAIN_AND_SWEEP, "model",
           "one sigmoid output with binary cross-entropy (2 classes)", switch=True),
    Option(("--init",), _TRAIN_AND_SWEEP, "model",
           "the dense layers' initial weights: book (0.01 * normal, the default), he "
           "(jax.nn.initializers.he_normal) or glorot (glorot_uniform); biases start at 0",
           choices=initializers.NAMES, default="book"),
    Option(("--optimizer",), _TRAIN_AND_SWEEP, "optimizer", "default adam",
           choices=list(OPTIMIZERS), default="adam"),
    _optimizer_argument("--learning-rate", values.positive_float, "LR"),
    _optimizer_argument("--decay", values.nonnegative_float, "D",
                        "inverse-time decay: lr / (1 + D * step)"),
    _optimizer_argument("--momentum", values.nonnegative_float, "M", "sgd only"),
    _optimizer_argument("--epsilon", values.positive_float, "EPS", "adagrad, rmsprop, adam"),
    _optimizer_argument("--rho", values.fraction, "RHO", "rmsprop only"),
    _optimizer_argument("--beta-1", values.fraction, "B1", "adam only"),
    _optimizer_argument("--beta-2", values.fraction, "B2", "adam only"),
    Option(("--batch-size",), _TRAIN_AND_SWEEP, "optimizer",
           "shuffled minibatches of B samples (default: full batch)",
           type=values.positive_int, metavar="B", sweepable=True),
    # how it runs
    Option(("--epochs",), _ALL, "running",
           f"epochs to train, at most {MAX_EPOCHS} (default {DEFAULT_EPOCHS}: the book "
           f"prints epochs 0 to 10000)", type=values.epochs_int, metavar="N", sweepable=True),
    Option(("--seed",), _ALL, "running",
           "the run's seed: data, initial weights and dropout masks come from "
           "jax.random.key(S) (default 0)", type=values.seed_int, default=0, metavar="S",
           sweep_help="the first seed (default 0): run i of a combination uses seed S + i, "
                      "its data, initial weights and dropout masks, as 'purenn train --seed "
                      "S+i'",
           one_value="--seed is the first seed; --seeds N trains N seeds (S, S+1, ...)"),
    Option(("--seeds",), _RUN, "running",
           "train N seeds (S, S+1, ...); print each seed's final lines, then the mean and "
           "standard deviation (ddof=1) over seeds of the training and validation accuracy "
           "and loss. No periodic log lines", type=values.positive_int, default=1,
           metavar="N"),
    Option(("--no-cache",), _ALL, "running",
           "do not keep compiled programs in the persistent compilation cache "
           "($XDG_CACHE_HOME/purenn, by default ~/.cache/purenn, which lets a second run "
           "skip compiling); also "
           f"{NO_CACHE_ENV}=1", switch=True),
    # what it writes
    Option(("--log-every",), _RUN, "output",
           "print the book's log line every K epochs (default 100; 0: only the last "
           "epoch's). The last epoch's line and the validation line are always printed",
           type=values.nonnegative_int, default=100, metavar="K"),
    Option(("--validation-every",), _RUN, "output",
           "evaluate the validation set every K epochs, on its own clock (default: "
           "--log-every's K, 100 when it is 0); --quiet changes nothing here",
           type=values.positive_int, default=None, metavar="K"),
    Option(("--quiet", "-q"), _ALL, "output",
           "no progress bar, no periodic log lines and no notes: only the final results "
           "(the last epoch's line, the validation line, or the summary over seeds). The "
           "progress bar is also off when stderr is not a terminal or the run is under "
           "1000 epochs", switch=True,
           sweep_help="no progress bar and no notes: only the summary table (the bar is "
                      "also off when stderr is not a terminal)"),
    Option(("--plot",), _RUN, "output",
           "write a PNG: the decision regions of the trained model over the training "
           "points, beside the loss and accuracy curves (needs matplotlib: pip install "
           "'purenn[plot]')", metavar="FILE.png"),
    Option(("--save",), _RUN, "output",
           "keep the run in FILE with purenn.checkpoint.save: pn.fit's checkpoint "
           "{'params', 'opt_state', 'epoch', 'key', 'history', ...} with the run's options, "
           "written every --checkpoint-every epochs, at the end and on Ctrl-C, SIGTERM or "
           "SIGHUP (exit 130, 143, 129), so that --resume can continue it. With --seeds: "
           "{'params', 'opt_state'} at the end, every leaf with a leading axis, one entry "
           "per seed", metavar="FILE.safetensors"),
    Option(("--checkpoint-every",), _RUN, "output",
           "with --save, write the checkpoint every N epochs (default: at each log line, "
           "every --log-every epochs; 0: only at the end and on Ctrl-C)",
           type=values.nonnegative_int, metavar="N"),
    Option(("--resume",), _RUN, "output",
           "continue the run kept in --save FILE (stopped with Ctrl-C, or shorter) up to "
           "--epochs; give the options it was started with (other ones are refused, each "
           "named). It ends bit-identical to an uninterrupted run. Without FILE yet, start "
           "the run, so that a scheduler can repeat the same command until it is done",
           switch=True),
    Option(("--resume-with-changes",), _RUN, "output",
           "--resume, and continue even where these options differ from the ones the run "
           "was saved with: FILE records the epoch and each change, and a later --resume "
           "compares with the new options", switch=True),
)


def options_of(command: str) -> list[Option]:
    """The options ``command`` takes, in the table's order."""
    return [option for option in OPTIONS if command in option.commands]


def add_options(parser, command: str) -> None:
    """Add ``command``'s options to ``parser``, each section (``GROUPS``) where its first
    option comes."""
    sections = {}
    for option in options_of(command):
        target = parser
        if option.group is not None:
            if option.group not in sections:
                sections[option.group] = parser.add_argument_group(option.group,
                                                                   GROUPS[option.group])
            target = sections[option.group]
        target.add_argument(*option.flags, **option.arguments(command))


def config_from_args(args, parser) -> Config:
    """The ``Config`` that ``purenn train``'s options in ``args`` describe; a bad
    combination is ``parser.error``."""
    given = [(name, getattr(args, name)) for name in
             ("learning_rate", "decay", "momentum", "epsilon", "rho", "beta_1", "beta_2")
             if getattr(args, name) is not None]
    for name, _ in given:
        if name not in OPTIMIZERS[args.optimizer]:
            users = [o for o, names in OPTIMIZERS.items() if name in names]
            parser.error(f"--{name.replace('_', '-')} does not apply to --optimizer "
                         f"{args.optimizer} (it is an option of {', '.join(users)})")
    if is_data_file(args.data):
        _check_file_options(args, parser)
        classes = None
    else:
        classes = _built_in_classes(args, parser)
    try:
        config = Config(
            data=args.data, samples=args.samples, **({} if classes is None else
                                                      {"classes": classes}),
            validation_samples=args.validation_samples, hidden=tuple(args.hidden),
            weight_l1=args.weight_l1, weight_l2=args.weight_l2, bias_l1=args.bias_l1,
            bias_l2=args.bias_l2, dropout=args.dropout, binary=args.binary,
            optimizer=args.optimizer, optimizer_args=tuple(given),
            epochs=args.epochs or DEFAULT_EPOCHS, init=args.init, target=args.target,
            validation_data=args.validation_data,
            validation_split=args.validation_split or 0.0, standardize=args.standardize,
            task=args.task)
    except (ValueError, OSError) as err:  # OSError: the data file
        parser.error(str(err))
    if args.batch_size is not None and args.batch_size > config.n_samples:
        count = ("" if config.is_file or config.regression
                 else f" ({args.samples} x {classes})")
        parser.error(f"--batch-size {args.batch_size} is more than the {config.n_samples} "
                     f"training samples{count}; leave it out for full batch")
    return dataclasses.replace(config, batch_size=args.batch_size)


def _built_in_classes(args, parser) -> int:
    """The classes of a built-in data set (1 for regression data); a data file's options
    are ``parser.error``."""
    given = [flag for flag, value in (("--target", args.target),
                                      ("--validation-data", args.validation_data),
                                      ("--validation-split", args.validation_split))
             if value is not None]
    if given:
        parser.error(f"{', '.join(given)}: for a data file only (--data FILE.csv or "
                     f"FILE.npz); {args.data} is built in (its validation set: "
                     f"--validation-samples)")
    if args.data in REGRESSION_DATA:
        if args.classes is not None or args.binary:
            parser.error(f"{args.data} is regression data, one real target per sample: "
                         f"leave out --classes and --binary")
        return 1
    classes = args.classes if args.classes is not None else (2 if args.binary else 3)
    if args.binary and classes != 2:
        parser.error(f"--binary separates 2 classes; got --classes {classes}")
    return classes


def _check_file_options(args, parser) -> None:
    """A data file gives the samples and classes: the built-in data's options are
    ``parser.error``; so is more than one source of validation samples."""
    defaults = {option.dest: option.default for option in OPTIONS}
    given = [f"--{name.replace('_', '-')}" for name in
             ("samples", "classes", "validation_samples")
             if getattr(args, name) != defaults[name]]
    if given:
        parser.error(f"{', '.join(given)}: for the built-in data only; {args.data} gives "
                     f"its own samples and classes (--validation-data or --validation-split for a "
                     f"validation set)")
    if args.validation_data is not None and args.validation_split is not None:
        parser.error("give --validation-data or --validation-split, not both")
