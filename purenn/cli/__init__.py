"""The ``purenn`` command: the book's experiments, one command each.

    purenn book --list
    purenn book regularization
    purenn book wider --seeds 5 --plot wider.png
    purenn train --hidden 128 --dropout 0.1 --optimizer sgd --momentum 0.9 --save run.safetensors

Also ``python -m purenn``. Output on stdout is the book's log lines; notes (files written)
go to stderr. A bad option prints one line ``purenn ...: error: ...`` and exits with 2; a
run that diverges or runs out of memory exits with 1; Ctrl-C exits with 130, SIGTERM with
143 and SIGHUP with 129 (a run with ``--save`` is kept, and ``--resume`` continues it).

Compiled programs are kept in JAX's persistent compilation cache, in
``$XDG_CACHE_HOME/purenn`` (``~/.cache/purenn`` by default), so a second run compiles
nothing; ``--no-cache`` or ``PURENN_NO_CACHE=1`` turn it off. Only the command does this:
``import purenn`` writes nothing to disk.

One module per command (``train``: ``purenn book`` and ``purenn train``; ``sweep``), over
one table of options (``options``) from which every command's parser is built; what the
commands share is in ``common``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import purenn as pn
from purenn.cli import sweep, train
from purenn.cli.common import (
    NO_CACHE_ENV,
    Parser,
    cache_disabled,
    cache_folder,
    enable_compilation_cache,
)
from purenn.cli.options import config_from_args

__all__ = [
    "NO_CACHE_ENV",
    "build_parser",
    "cache_disabled",
    "cache_folder",
    "config_from_args",
    "enable_compilation_cache",
    "main",
]


def build_parser() -> argparse.ArgumentParser:
    """The ``purenn`` parser, with ``book``, ``train`` and ``sweep``. Each command's
    parsed arguments hold its parser (``parser``) and its function (``handler``)."""
    parser = Parser(
        prog="purenn",
        description="Neural Networks from Scratch, as pure JAX functions: run the book's "
                    "experiments, or train your own network on the book's toy data.",
        epilog="Run 'purenn book --help' or 'purenn train --help' for the options.")
    parser.add_argument("--version", action="version", version=f"purenn {pn.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="{book,train,sweep}",
                                     parser_class=Parser)
    train.add_parsers(commands)
    sweep.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``purenn`` command; returns the exit status (errors exit with 2 directly)."""
    command = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(command)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return args.handler(args, args.parser, command)
