"""Paired, interleaved timing, and a record of what XLA compiles.

Every repetition runs each contender once, in an order that rotates from one repetition
to the next, so that a burst of load from elsewhere hits all contenders alike. A figure
is the median over repetitions; a ratio is the median of the ratios *paired within a
repetition*, which cancels most of a shared machine's noise. Nothing here imports purenn.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


def interleave(contenders: dict[str, Callable[[], dict[str, float]]], reps: int,
               log: Callable[[str], object] | None = None) -> dict[str, dict[str, list]]:
    """Call every contender ``reps`` times, interleaved. A contender returns its figures
    of one call, e.g. ``{"wall": 2.1, "cpu": 1.9}``; the result maps each contender to
    each figure's list of ``reps`` values, in repetition order."""
    names = list(contenders)
    samples: dict[str, dict[str, list]] = {name: {} for name in names}
    for rep in range(reps):
        shift = rep % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            for figure, value in contenders[name]().items():
                samples[name].setdefault(figure, []).append(value)
        if log is not None:
            log(f"    rep {rep + 1}/{reps} done")
    return samples


def median(values) -> float:
    return statistics.median(values)


def paired_ratio(values: list, baseline: list) -> float:
    """Median over repetitions of ``values[i] / baseline[i]`` (same repetition ``i``)."""
    return statistics.median(a / b for a, b in zip(values, baseline, strict=True))


def seconds_per_epoch(run: Callable[[], object], epochs: int) -> dict[str, float]:
    """``{"per_epoch": s}`` of one call of ``run`` (which trains ``epochs`` epochs and
    returns once the result is ready)."""
    start = time.perf_counter()
    run()
    return {"per_epoch": (time.perf_counter() - start) / epochs}


@contextlib.contextmanager
def compile_log():
    """``with compile_log() as programs:`` collects ``(name, seconds)`` of every program XLA
    compiles inside (JAX's ``backend_compile_duration`` event; a hit of the persistent
    compilation cache is not a compile)."""
    from jax import monitoring

    programs: list[tuple[str, float]] = []

    def listener(event, seconds, *, fun_name=None, **_):
        if event == COMPILE_EVENT:
            programs.append((fun_name or "?", seconds))

    monitoring.register_event_duration_secs_listener(listener)
    try:
        yield programs
    finally:
        monitoring.unregister_event_duration_listener(listener)
