"""``fit``'s arguments: their checks, and the ``FitSetup`` they make, which the stages of
``purenn.train.loop.fit`` share."""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax

from purenn._checks import check_key
from purenn._validate import check_batch_size, check_dataset, check_epochs
from purenn.train.evaluation import Evaluator
from purenn.train.history import METRICS
from purenn.train.settings import run_settings
from purenn.train.sharding import Placement, placement
from purenn.train.step import Components, check_components, first_learning_rate

__all__ = ["FitSetup", "MAX_EPOCH", "setup_fit"]

MAX_EPOCH = 2**31 - 1  # epochs are int32 inside the programs


def _check_every(name, value):
    if value is None or (not isinstance(value, bool) and isinstance(value, numbers.Integral)
                         and value == 0):
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a positive integer (or 0/None to turn it off); "
                         f"got {value!r}")
    return int(value)


def _check_initial_epoch(initial_epoch, epochs) -> int:
    if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, numbers.Integral):
        raise TypeError(f"initial_epoch must be an integer >= 0; got {initial_epoch!r}")
    if initial_epoch < 0:
        raise ValueError(f"initial_epoch must be >= 0; got {initial_epoch}")
    if int(initial_epoch) + epochs > MAX_EPOCH:
        raise ValueError(f"initial_epoch + epochs must be at most {MAX_EPOCH} (epochs are "
                         f"int32); got {int(initial_epoch)} + {epochs}")
    return int(initial_epoch)


def _check_patience(patience, validation_data):
    if patience is None:
        return None
    if isinstance(patience, bool) or not isinstance(patience, numbers.Integral) or patience < 1:
        raise ValueError(f"patience must be a positive integer (validation evaluations "
                         f"without a lower validation loss) or None; got {patience!r}")
    if validation_data is None:
        raise ValueError("patience needs validation_data=(X_val, y_val): early stopping "
                         "watches the validation loss")
    return int(patience)


def _check_checkpoint_path(checkpoint_path, checkpoint_every):
    if checkpoint_every and checkpoint_path is None:
        raise ValueError("checkpoint_every needs checkpoint_path: where to save")
    if checkpoint_path is None:
        return None
    path = os.fspath(checkpoint_path)
    folder = os.path.dirname(os.path.abspath(path)) if path else ""
    if not path or os.path.isdir(path):
        raise ValueError(f"checkpoint_path {path!r} must name a file, e.g. 'run.safetensors'")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"checkpoint_path {path!r}: the folder {folder!r} does not "
                                f"exist; create it first")
    return path


def _check_settings(settings, checkpoint_path):
    if settings is None:
        return {}
    if checkpoint_path is None:
        raise ValueError("settings needs checkpoint_path: they are kept in the checkpoint")
    if not isinstance(settings, Mapping) or not all(
            isinstance(name, str) and isinstance(value, str)
            for name, value in settings.items()):
        raise TypeError(f"settings must map names to texts, e.g. {{'--hidden': '64'}}; got "
                        f"{settings!r}")
    return dict(settings)


def _check_resume(resume, resume_with_changes):
    if resume_with_changes and not resume:
        raise ValueError("resume_with_changes=True continues a checkpoint: it needs "
                         "resume=True")


def _check_validation_every(validation_every, validation_data, default: int):
    """The validation interval: ``validation_every``, else ``default`` (the log interval);
    None without validation data."""
    if validation_every is None:
        return None if validation_data is None else default
    if (isinstance(validation_every, bool) or not isinstance(validation_every, numbers.Integral)
            or validation_every < 1):
        raise ValueError(f"validation_every must be a positive integer (epochs between "
                         f"validations); got {validation_every!r}")
    if validation_data is None:
        raise ValueError("validation_every needs validation_data: what to validate on")
    return int(validation_every)


def _check_validation_data(model, loss, params, validation_data):
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
        raise TypeError("validation_data must be a pair (X_val, y_val)")
    return check_dataset(model, loss, params, *validation_data, names=("X_val", "y_val"))


class FitSetup(NamedTuple):
    """A ``fit`` run, its arguments checked: what every stage of the run reads."""

    components: Components
    key: jax.Array
    first: int  # the run's first epoch
    end: int  # one past its last epoch
    X: jax.Array
    y: jax.Array
    batch_size: int | None
    log_every: int | None
    every: int  # log interval: log_every, or CHUNK when not logging
    validation_every: int | None  # epochs between validations; None without validation
    checkpoint_every: int | None
    checkpoint_path: str | None
    patience: int | None
    validation_data: tuple | None  # (X_val, y_val), checked
    evaluator: Evaluator | None  # None without validation data
    names: list  # the metrics of the history, in METRICS order
    placement: Placement | None
    settings: dict[str, str]  # the run's settings, kept in its checkpoint (purenn.train.settings)


def setup_fit(model, loss, optimizer, params, X, y, opt_state, *, key, epochs, batch_size,
              validation_data, validation_every, patience, initial_epoch, log_every,
              accuracy, checkpoint_path, checkpoint_every, resume, resume_with_changes, settings,
              mesh, data_axis, chunk: int) -> tuple[FitSetup, Any, Any]:
    """Check ``fit``'s arguments, in the order its errors name them, and return the
    setup with ``(params, opt_state)``: the initial state (``optimizer.init(params)``
    when ``opt_state`` is None), placed on the mesh when there is one. ``chunk`` is the
    log interval when not logging. With a checkpoint, the setup's ``settings`` are the
    run's (``purenn.train.settings.run_settings``, with ``settings`` added).

    Raises:
      TypeError, ValueError, FileNotFoundError: naming the argument and the fix.
    """
    accuracy = check_components(model, loss, optimizer, accuracy)
    key = check_key("key", key)
    epochs = check_epochs(epochs)
    first = _check_initial_epoch(initial_epoch, epochs)
    X, y = check_dataset(model, loss, params, X, y)
    batch_size = check_batch_size(batch_size, X.shape[0])
    log_every = _check_every("log_every", log_every)
    checkpoint_every = _check_every("checkpoint_every", checkpoint_every)
    checkpoint_path = _check_checkpoint_path(checkpoint_path, checkpoint_every)
    _check_resume(resume, resume_with_changes)
    settings = _check_settings(settings, checkpoint_path)
    patience = _check_patience(patience, validation_data)
    validation_every = _check_validation_every(validation_every, validation_data,
                                               log_every or chunk)
    if validation_data is not None:
        validation_data = _check_validation_data(model, loss, params, validation_data)
    placed = placement(mesh, data_axis)
    if opt_state is None:
        opt_state = optimizer.init(params)
    if placed is not None:
        X, y, params, opt_state = placed.place(X, y, params, opt_state)
    names = [name for name in METRICS if name != "accuracy" or accuracy is not None]
    if first_learning_rate(opt_state) is None:
        names.remove("learning_rate")
    evaluator = Evaluator(model, loss, accuracy) if validation_data is not None else None
    components = Components(model, loss, optimizer, accuracy, placed)
    if checkpoint_path is not None:
        settings = run_settings(components, batch_size, X, y, settings)
    setup = FitSetup(components, key, first, first + epochs, X, y, batch_size, log_every,
                     log_every or chunk, validation_every, checkpoint_every, checkpoint_path,
                     patience, validation_data, evaluator, names, placed, settings)
    return setup, params, opt_state
