"""A run's history (its per-epoch metrics and validation points), the book's printed
lines, and the run's checkpoint: what ``fit`` saves as it goes and resumes from."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from purenn import checkpoint

__all__ = [
    "METRICS",
    "VALIDATION",
    "History",
    "format_log_line",
    "format_validation_line",
    "resume_run",
    "save_run",
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
        done = self.epochs_done()
        out = {"epoch": np.arange(self.first_epoch, self.first_epoch + done, dtype=np.int64)}
        for name, parts in self.parts.items():
            out[name] = np.concatenate(parts) if parts else np.zeros(0)
        if with_validation:
            out["val_epoch"] = np.asarray(self.validation["val_epoch"], np.int64)
            for name in VALIDATION:
                if self.validation[name]:
                    # float32 unless jax_enable_x64: a checkpoint must load in this mode
                    out[name] = np.asarray(self.validation[name],
                                           jax.dtypes.canonicalize_dtype(np.float64))
                elif name == "val_loss" or "accuracy" in self.parts:
                    out[name] = np.zeros(0)
        return out


# --- checkpoints of a run -------------------------------------------------------------


def _key_data(key) -> np.ndarray:
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.asarray(key)


def save_run(path, params, opt_state, next_epoch: int, key, history: History) -> None:
    """Save a run to ``path`` (safetensors): the state entering ``next_epoch``, the key,
    the first epoch and the history, as ``resume_run`` reads them back."""
    arrays = history.arrays(with_validation=bool(history.validation["val_epoch"]))
    del arrays["epoch"]  # rebuilt from the first epoch and the length
    arrays = {name: (values.astype(np.int32) if name == "val_epoch" else values)
              for name, values in arrays.items()}
    checkpoint.save(path, {
        "params": params,
        "opt_state": opt_state,
        "epoch": np.asarray(next_epoch, np.int32),  # int32: loads with jax_enable_x64 off
        "initial_epoch": np.asarray(history.first_epoch, np.int32),
        "key": _key_data(key),
        "history": arrays,
    })


def resume_run(path, params, opt_state, key, history: History):
    """``(params, opt_state, next_epoch, history)`` saved in a fit checkpoint, checked
    against this run: same key, same first epoch, same structure (``params`` and
    ``opt_state`` give it). ``history`` is filled with the saved one.

    Raises:
      ValueError: the file is not a fit checkpoint, or is of another run.
    """
    raw = checkpoint.load(path)
    if not {"params", "opt_state", "epoch", "key", "history"} <= set(raw):
        raise ValueError(f"{path!r} is not a fit checkpoint (it holds "
                         f"{', '.join(sorted(raw)) or 'nothing'}; a fit checkpoint also has "
                         f"epoch, key and history): pass another checkpoint_path, or "
                         f"resume=False to overwrite it")
    saved_key, key_data = np.asarray(raw["key"]), _key_data(key)
    if saved_key.shape != key_data.shape or not np.array_equal(saved_key, key_data):
        raise ValueError(f"the checkpoint {path!r} was written by a run with another key; "
                         f"pass the same key to resume it, resume=False to start over, or "
                         f"another checkpoint_path")
    saved_first = int(raw.get("initial_epoch", 0))
    if saved_first != history.first_epoch:
        raise ValueError(f"the checkpoint {path!r} is of a run that began at epoch "
                         f"{saved_first}; pass initial_epoch={saved_first} to resume it")
    like = {"params": params, "opt_state": opt_state,
            "epoch": jax.ShapeDtypeStruct((), np.int32),
            "initial_epoch": jax.ShapeDtypeStruct((), np.int32),
            "key": jax.ShapeDtypeStruct(key_data.shape, key_data.dtype),
            "history": {name: jax.ShapeDtypeStruct(np.shape(v), np.asarray(v).dtype)
                        for name, v in raw["history"].items()}}
    state = checkpoint.load(path, like=like)
    saved = {name: np.asarray(values) for name, values in state["history"].items()}
    for name in history.parts:
        if name in saved:
            history.parts[name] = [saved[name]]
    if "val_epoch" in saved:
        history.validation = {name: list(saved.get(name, [])) for name in history.validation}
    return state["params"], state["opt_state"], int(state["epoch"]), history
