"""The ``purenn`` command run in this process (``call``; ``run`` where a test reads the
output through pytest's ``capsys``), and what its usage errors look like (the sweep tests
share them)."""

from __future__ import annotations

import contextlib
import csv
import io
import re

import jax

from purenn import cli

ERROR = re.compile(r"^purenn( sweep)?: error: .+ \(see .purenn( sweep)? --help.\)$")


def call(argv):
    """``purenn <argv>`` in this process, in float32 as users run it: (code, out, err)."""
    out, err = io.StringIO(), io.StringIO()
    with jax.enable_x64(False), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        try:
            code = cli.main([str(a) for a in argv])
        except SystemExit as exit_info:
            code = exit_info.code
    return code, out.getvalue(), err.getvalue()


def run(capsys, *args):
    """``purenn <args>`` in this process, its output read through ``capsys``:
    ``(code, stdout lines, stderr)``."""
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def read_csv(path):
    """``(header, rows)`` of a CSV file, each row a dict by the header's names."""
    with open(path, newline="") as file:
        rows = list(csv.reader(file))
    return rows[0], [dict(zip(rows[0], row)) for row in rows[1:]]
