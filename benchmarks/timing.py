"""Interleaved timing: every repetition times each contender once, in a rotating order, so
that a burst of load from elsewhere hits all contenders alike; results are medians, and
ratios are medians of the ratios paired within a repetition."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field


@dataclass
class Result:
    name: str
    epochs: int = 0  # epochs per timed run
    seconds_per_epoch: list[float] = field(default_factory=list)
    setup_seconds: float | None = None  # compile time (JAX) where the contender compiles
    compiled: bool = False
    skipped: str | None = None  # why it was not measured
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds_per_epoch)

    @property
    def spread(self) -> tuple[float, float]:
        return min(self.seconds_per_epoch), max(self.seconds_per_epoch)


def paired_ratio(result: Result, baseline: Result) -> float:
    """Median over repetitions of ``result / baseline`` timed in the same repetition."""
    return statistics.median(a / b for a, b in zip(result.seconds_per_epoch,
                                                   baseline.seconds_per_epoch))


def measure(contenders, *, reps: int, target_seconds: float, max_epochs: int | None = None,
            log=None) -> list[Result]:
    """Set up every contender, calibrate its epoch count so one timed run takes about
    ``target_seconds``, then time ``reps`` interleaved rounds."""
    results = []
    live = []
    for contender in contenders:
        result = Result(contender.name, compiled=contender.compiled)
        results.append(result)
        try:
            result.setup_seconds = contender.setup()
            # Warm-up at the smallest size (also checks that it runs), then calibrate.
            epochs = contender.epochs_for(1)
            contender.run(epochs)
            start = time.perf_counter()
            contender.run(epochs)
            elapsed = time.perf_counter() - start
            while elapsed < target_seconds / 8 and (max_epochs is None or epochs < max_epochs):
                epochs = contender.epochs_for(epochs * 4)
                start = time.perf_counter()
                contender.run(epochs)
                elapsed = time.perf_counter() - start
            per_epoch = elapsed / epochs
            wanted = max(1, round(target_seconds / per_epoch))
            if max_epochs is not None:
                wanted = min(wanted, max_epochs)
            result.epochs = contender.epochs_for(wanted)
        except ImportError as err:
            result.skipped = f"not installed ({err.name or err})"
            continue
        result.note = contender.note
        live.append((contender, result))
    wins = {}
    for rep in range(reps):
        order = live[rep % len(live):] + live[:rep % len(live)] if live else []
        for contender, result in order:
            variants = getattr(contender, "variants", None) or {None: None}
            best = None
            for label, variant in variants.items():
                if label is not None:
                    contender.select(variant)
                start = time.perf_counter()
                contender.run(result.epochs)
                elapsed = (time.perf_counter() - start) / result.epochs
                if best is None or elapsed < best[0]:
                    best = (elapsed, label)
            result.seconds_per_epoch.append(best[0])
            if best[1] is not None:
                wins.setdefault(result.name, {}).setdefault(best[1], 0)
                wins[result.name][best[1]] += 1
        if log is not None:
            log(f"    rep {rep + 1}/{reps} done")
    for contender, result in live:
        if result.name in wins:
            counts = ", ".join(f"{label} in {n}" for label, n in sorted(
                wins[result.name].items(), key=lambda item: -item[1]))
            result.note = f"faster of {' / '.join(contender.variants)} each rep: {counts}"
    return results
