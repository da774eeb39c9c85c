"""A sweep's ``runs.csv``: one row per finished run, read back line by line.

The columns are the swept options' names, then ``TAIL``: the seed, the metrics and the
``purenn train`` command that reproduces the run. ``read_rows`` parses each line on its
own, so that a broken line (a metric that is not a number, a broken quote, a wrong number
of fields, a last line without its end) spoils no other; such rows are reported
(``report_unparsed``), moved to ``UNPARSED`` beside runs.csv, and their runs trained
again. A file whose first line is not the sweep's columns is refused and left as it is.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from purenn import files
from purenn.cli.options import RUNS
from purenn.sweep import METRICS, Result

__all__ = [
    "TAIL",
    "UNPARSED",
    "Row",
    "RunsFile",
    "csv_bytes",
    "read_rows",
    "report_unparsed",
    "row_key",
    "value_text",
]


def value_text(value) -> str:
    """A value as a command line or a CSV cell holds it: ints as ints, floats as their
    shortest exact form (``float(value_text(x)) == x``)."""
    if isinstance(value, float):
        return "0" if value == 0 else repr(value)
    return str(value)


def row_key(names: Sequence[str], values: Mapping[str, Any], seed) -> tuple:
    """A run's key, ``((value of each of names, as floats), seed)``, from a result's
    values or a row's columns (text)."""
    return tuple(float(values[name]) for name in names), int(seed)


TAIL = ["seed", *METRICS, "command"]  # the last columns of every sweep's runs.csv
UNPARSED = "runs-unparsed.txt"  # where the rows of runs.csv that do not parse are moved


class Row(NamedTuple):
    """One line of an existing runs.csv after its header."""

    number: int  # its line number (the header is line 1)
    text: str  # the line as written, with its end
    fields: dict[str, str] | None  # column -> text; None when the line does not parse
    problem: str  # why it does not parse; "" when it does
    cell: str  # its values and seed where they parse ("dropout 0.1, seed 1"), else ""


def _lines(text: str) -> list[str]:
    """``text``'s lines, each with its line end; a last one without one is kept as it is."""
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    return lines if lines[-1] else lines[:-1]


def _parse_line(line: str) -> list[str]:
    """The fields of one CSV line (``csv.Error`` on broken quoting)."""
    return next(csv.reader([line.rstrip("\r\n")], strict=True), [])


def _parse_row(number: int, line: str, header: list[str], names: list[str]) -> Row:
    try:
        row = _parse_line(line)
    except csv.Error:
        row = None
    named = dict(zip(header, row or []))
    if not line.endswith("\n"):
        problem = "no line end (written by a process that was stopped)"
    elif row is None:
        problem = "broken quoting"
    elif len(row) != len(header):
        problem = f"{len(row)} fields, not {len(header)}"
    else:
        problem = next((f"{name} {named[name]!r} is not a number" for name in header[:-1]
                        if not _is_number(named[name], integer=name == "seed")), "")
    return Row(number, line, None if problem else named, problem, _cell(named, names))


def _is_number(text: str, integer: bool) -> bool:
    try:
        int(text) if integer else float(text)
    except ValueError:
        return False
    return True


def _cell(named: dict[str, str], names: list[str]) -> str:
    """A row's values and seed, ``"dropout 0.1, seed 1"``, or "" where they do not parse."""
    try:
        row_key(names, named, named["seed"])
    except (KeyError, ValueError):
        return ""
    return ", ".join([*(f"{name} {named[name]}" for name in names), f"seed {named['seed']}"])


def read_rows(parser, path, header, names) -> list[Row]:
    """The rows of an existing runs.csv, each line parsed on its own (a broken line spoils
    no other). A file whose first line is not ``header`` is ``parser.error``: another
    sweep's, or not a sweep's at all, and left as it is."""
    try:
        with open(path, newline="", encoding="utf-8") as file:
            lines = _lines(file.read())
    except OSError as err:
        parser.error(f"cannot read {path!r}: {err.strerror or err}")
    except UnicodeDecodeError as err:
        parser.error(f"{path!r} is not a sweep's {RUNS}: {err}; purenn sweep leaves it "
                     f"alone: move it away or give another --out")
    try:
        columns = _parse_line(lines[0]) if lines and lines[0].endswith("\n") else None
    except csv.Error:
        columns = None
    if columns != header and columns is not None and columns[-len(TAIL):] == TAIL:
        parser.error(f"{path!r} has the columns {','.join(columns)}, this sweep writes "
                     f"{','.join(header)}: it holds another sweep; give another --out")
    if columns != header:
        parser.error(f"{path!r} is not a sweep's {RUNS} (its first line is not a sweep's "
                     f"columns); purenn sweep leaves it alone: move it away or give "
                     f"another --out")
    return [_parse_row(number, line, header, names)
            for number, line in enumerate(lines[1:], start=2) if line.strip()]


def report_unparsed(path, unparsed: list[Row], warn) -> None:
    """One line naming the rows of ``path`` that do not parse, and what becomes of them."""
    shown = [f"line {row.number}{f' ({row.cell})' if row.cell else ''}: {row.problem}"
             for row in unparsed[:5]]
    more = f"; and {len(unparsed) - 5} more" if len(unparsed) > 5 else ""
    side = os.path.join(os.path.dirname(path), UNPARSED)
    warn(f"{len(unparsed)} row(s) of {path} do not parse ({'; '.join(shown)}{more}): "
         f"their runs count as not finished and are trained again, the rows are left out "
         f"of the summary and moved to {side}")


def csv_bytes(rows) -> bytes:
    """``rows`` as the bytes of a CSV file, as ``csv.writer`` writes one (UTF-8)."""
    text = io.StringIO(newline="")
    csv.writer(text).writerows(rows)
    return text.getvalue().encode("utf-8")


class RunsFile:
    """``runs.csv`` while the sweep trains: on entering, the rows that do not parse are
    appended to ``UNPARSED`` and runs.csv is rewritten (atomically) with the rows kept
    from before; then one row appended, and flushed, as each run ends."""

    def __init__(self, path: str, header: list[str], previous: list[Row], names: list[str],
                 commands: Mapping[tuple, str], note: Callable[[str], None]):
        self.path, self.header, self.previous = path, header, previous
        self.names, self.commands, self.note = names, commands, note
        self.finished = 0  # rows appended

    def __enter__(self):
        unparsed = [row.text for row in self.previous if row.fields is None]
        if unparsed:
            side = os.path.join(os.path.dirname(self.path), UNPARSED)
            with open(side, "a", newline="", encoding="utf-8") as file:
                file.writelines(t if t.endswith("\n") else t + "\n" for t in unparsed)
                file.flush()
                os.fsync(file.fileno())
        kept = [row.fields for row in self.previous if row.fields is not None]
        rows = [self.header, *([row[name] for name in self.header] for row in kept)]
        files.atomic_write(self.path, [csv_bytes(rows)], what="purenn sweep")
        self._file = open(self.path, "a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        return self

    def __exit__(self, *exc_info):
        self._file.close()

    def write(self, result: Result):
        names = self.names
        command = self.commands[row_key(names, result.values, result.seed)]
        self._writer.writerow([*(value_text(result.values[name]) for name in names),
                               result.seed, *(value_text(result.metrics[m]) for m in METRICS),
                               command])
        self._file.flush()
        self.finished += 1
        if result.diverged_at is not None:
            self.note(f"diverged at epoch {result.diverged_at} (NaN in {RUNS}): {command}")
