"""What the ``purenn`` commands share: one-line errors, the compilation cache (from
``purenn.cli.cache``), the checks of an output path, and the ``±`` of their summaries."""

from __future__ import annotations

import argparse
import os
import sys

from purenn import files
from purenn.cli.cache import (
    NO_CACHE_ENV,
    cache_disabled,
    cache_folder,
    enable_compilation_cache,
    use_compilation_cache,
)

__all__ = [
    "NO_CACHE_ENV",
    "Parser",
    "cache_disabled",
    "cache_folder",
    "check_output",
    "enable_compilation_cache",
    "notes",
    "plus_minus",
    "print_error",
    "print_line",
    "use_compilation_cache",
]


class Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage block): ``prog: error: message``."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def print_error(prog: str, message: str) -> int:
    """A failure found while running (not a bad option): ``prog: error: message`` on
    stderr; returns the exit status, 1."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    return 1


def print_line(line: str) -> None:
    """A log line on stdout, flushed: log lines reach a pipe (``| tee``) as they come."""
    print(line, flush=True)


def notes(prefix: str, quiet: bool):
    """The function that prints a note (a file written, runs kept) to stderr as
    ``prefix: message``; with ``quiet``, one that prints nothing."""
    if quiet:
        return lambda message: None
    return lambda message: print(f"{prefix}: {message}", file=sys.stderr)


def plus_minus() -> str:
    """``±`` where stdout's encoding has it, else ``+/-``."""
    try:
        "±".encode(sys.stdout.encoding or "ascii")
        return "±"
    except (UnicodeEncodeError, LookupError):
        return "+/-"


# --- output paths -----------------------------------------------------------------------


def check_output(parser, option: str, path: str | None, suffix: str | None = None, *,
                 checkpoint: bool = False) -> str | None:
    """Refuse (``parser.error``) an output path that cannot be written, before any
    training; returns ``path``. ``checkpoint``: also create (and remove) a temporary file
    in its folder, as ``checkpoint.save`` does."""
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
    length, limit = len(os.fsencode(os.path.basename(path))), files.name_max(folder)
    if length > limit:
        parser.error(f"{shown}: the file name is too long: {length} bytes, where at most "
                     f"{limit} fit")
    if checkpoint:  # checkpoint.save writes a temporary file in the folder first
        try:
            files.probe_writable(folder)
        except OSError as err:
            parser.error(f"{shown}: cannot write in the folder {folder!r}: "
                         f"{err.strerror or err}")
    if not os.access(folder, os.W_OK | os.X_OK):
        parser.error(f"{shown}: the folder {folder!r} is not writable")
    return path
