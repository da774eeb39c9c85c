"""A run's history (its per-epoch metrics and validation points) and the book's printed
lines. ``purenn.train.resume`` saves it in the run's checkpoint."""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np

__all__ = [
    "METRICS",
    "VALIDATION",
    "History",
    "format_log_line",
    "format_validation_line",
]

METRICS = ("loss", "data_loss", "reg_loss", "accuracy", "learning_rate")
VALIDATION = ("val_loss", "val_accuracy")


def format_log_line(epoch: int, metrics: dict) -> str:
    """The book's log line: ``epoch: 100, acc: 0.703, loss: 0.714 (data_loss: 0.672,
    reg_loss: 0.042), lr: 0.019999010049002574``."""
    accuracy = f"acc: {metrics['accuracy']:.3f}, " if "accuracy" in metrics else ""
    rate = f", lr: {metrics['learning_rate']!s}" if "learning_rate" in metrics else ""
    return (f"epoch: {epoch}, {accuracy}loss: {metrics['loss']:.3f} "
            f"(data_loss: {metrics['data_loss']:.3f}, reg_loss: {metrics['reg_loss']:.3f})"
            f"{rate}")


def format_validation_line(metrics: dict) -> str:
    """The book's validation line: ``validation, acc: 0.830, loss: 0.435``."""
    accuracy = f"acc: {metrics['accuracy']:.3f}, " if "accuracy" in metrics else ""
    return f"validation, {accuracy}loss: {metrics['loss']:.3f}"


class History:
    """Per-epoch metrics (``names``, from epoch ``first_epoch`` on) and validation points
    of a run, gathered chunk by chunk, as NumPy arrays."""

    def __init__(self, names, first_epoch: int):
        self.first_epoch = first_epoch
        self.parts = {name: [] for name in names}
        self.validation = {name: [] for name in ("val_epoch", *VALIDATION)}

    def extend(self, chunk: dict, length: int):
        """Append the first ``length`` epochs of ``chunk`` (metric -> array)."""
        for name, values in chunk.items():
            self.parts[name].append(values[:length])

    def add_validation(self, epoch: int, metrics: dict):
        """Record ``evaluate``'s ``metrics`` as the validation point after ``epoch``."""
        self.validation["val_epoch"].append(epoch)
        for name in VALIDATION:
            if name[4:] in metrics:
                self.validation[name].append(metrics[name[4:]])

    def keep_validation(self, keep: Callable[[int], bool]):
        """Keep the validation points whose epoch passes ``keep``."""
        rows = [i for i, epoch in enumerate(self.validation["val_epoch"]) if keep(int(epoch))]
        self.validation = {name: [values[i] for i in rows] if values else values
                           for name, values in self.validation.items()}

    def truncate(self, length: int):
        """Keep the first ``length`` epochs."""
        self.parts = {name: [np.concatenate(parts)[:length]] if parts else parts
                      for name, parts in self.parts.items()}

    def epochs_done(self) -> int:
        return sum(len(part) for part in self.parts["loss"])

    def arrays(self, *, with_validation: bool) -> dict:
        """``epoch`` and each metric as one array per name, as ``fit`` returns them; with
        ``with_validation``, ``val_epoch`` and the validation metrics too."""
        # Values in the dtype the run computes in, float32 unless jax_enable_x64, even
        # where there are none yet: a checkpoint must load in the mode that saved it.
        real = jax.dtypes.canonicalize_dtype(np.float64)
        done = self.epochs_done()
        out = {"epoch": np.arange(self.first_epoch, self.first_epoch + done, dtype=np.int64)}
        for name, parts in self.parts.items():
            out[name] = np.concatenate(parts) if parts else np.zeros(0, real)
        if with_validation:
            out["val_epoch"] = np.asarray(self.validation["val_epoch"], np.int64)
            for name in VALIDATION:
                if self.validation[name]:
                    out[name] = np.asarray(self.validation[name], real)
                elif name == "val_loss" or "accuracy" in self.parts:
                    out[name] = np.zeros(0, real)
        return out
