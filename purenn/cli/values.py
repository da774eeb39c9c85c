"""The option types of the ``purenn`` commands: each turns one argument's text into its value,
or refuses it with a one-line ``argparse.ArgumentTypeError`` that says what it expected.
``listed`` and ``single`` wrap a type for ``purenn sweep``: a comma list of values, or
exactly one value."""

from __future__ import annotations

import argparse
import math

import numpy as np

from purenn import sweep
from purenn._checks import default_float_dtype
from purenn.configs import DATA, REGRESSION_DATA, is_data_file

__all__ = [
    "MAX_EPOCHS",
    "class_count",
    "data_source",
    "epochs_int",
    "experiment_name",
    "fraction",
    "listed",
    "nonnegative_float",
    "nonnegative_int",
    "open_fraction",
    "positive_float",
    "positive_int",
    "seed_int",
    "single",
]

MAX_EPOCHS = 2**31 - 1  # pn.fit counts epochs in int32


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


def class_count(text):
    """``--classes``: a classifier separates 2 classes at least."""
    value = _number(int, text)
    if value < 2:
        raise argparse.ArgumentTypeError(
            f"must be an integer >= 2 (a classifier needs two classes at least), got {value}")
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



def _finite(text):
    value = _number(float, text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    dtype = default_float_dtype()
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
    dtype = default_float_dtype()
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
    dtype = default_float_dtype()
    if dtype.type(value) >= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1); {text} is 1 in {dtype}")
    return value


def open_fraction(text):
    """``--validation-split``: a fraction strictly between 0 and 1."""
    value = _finite(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {value:g}")
    return value


def data_source(text):
    """``--data``: a built-in data set's name, or a ``.csv`` or ``.npz`` file's path."""
    if text in DATA + REGRESSION_DATA or is_data_file(text):
        return text
    raise argparse.ArgumentTypeError(
        f"invalid choice: {text!r} (choose from {', '.join(DATA + REGRESSION_DATA)}, or "
        f"give a .csv or .npz file)")


def seed_int(text):
    value = _number(int, text)
    if not 0 <= value < 2**31:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**31), got {value}")
    return value


def experiment_name(text):
    return text.strip().lower().replace("_", "-")


# --- purenn sweep: lists of values -------------------------------------------------------


def listed(kind):
    """An option type: a comma list of values, each checked by ``kind``; returns a tuple."""

    def parse(text):
        items = [item.strip() for item in text.split(",")]
        if len(items) > 1 and not all(items):
            raise argparse.ArgumentTypeError(
                f"an empty item in {text!r}; separate the values with single commas, "
                f"e.g. 0,5e-4,1e-3")
        values = tuple(kind(item) for item in items)
        repeated = sorted({sweep.format_value(v) for v in values if values.count(v) > 1})
        if repeated:
            raise argparse.ArgumentTypeError(f"{', '.join(repeated)} given twice in {text!r}")
        return values

    parse.__name__ = getattr(kind, "__name__", "value")  # argparse names the type by it
    return parse


def single(kind, reason: str):
    """An option type: one value (checked by ``kind``, or kept as text for None); a comma
    list is an error giving ``reason``."""

    def parse(text):
        if "," in text:
            raise argparse.ArgumentTypeError(f"one value only, got {text!r}: {reason}")
        return text if kind is None else kind(text)

    parse.__name__ = getattr(kind, "__name__", "value")
    return parse
