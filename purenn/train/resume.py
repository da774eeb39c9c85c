"""A run's checkpoint: what ``fit`` saves as it goes, and how a resume reads, checks and
continues it.

A fit checkpoint is a ``purenn.checkpoint`` file holding ``params``, ``opt_state``,
``epoch`` (the next epoch to train), ``initial_epoch`` (the run's first), ``key`` (the
run key's data) and ``history`` (each metric, one entry per epoch trained, in the dtype
the run computes in, and the validation points); its metadata holds the run's settings
(``run_settings``: JSON, name -> text, see ``purenn.train.settings``) and the changes made
on resume (``run_changes``: a JSON list of ``{"epoch": e, "settings": {name: [before,
after]}}``, null for a setting one side lacks).

``read_run`` reads and checks the record; ``resume_run`` checks it against the run that
resumes it (key, first epoch, settings, the state's shapes and dtypes) and loads its
state; ``RunCheckpoint.save`` writes it.
"""

from __future__ import annotations

import json
import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from purenn import checkpoint, threefry
from purenn.checkpoint.layout import named_leaves
from purenn.train.history import History
from purenn.train.settings import differences, format_differences

__all__ = ["CHANGES", "SETTINGS", "RunCheckpoint", "SavedRun", "read_run",
           "resume_run"]

SETTINGS, CHANGES = "run_settings", "run_changes"  # the checkpoint's metadata entries
_REQUIRED = ("params", "opt_state", "epoch", "key", "history")


class SavedRun(NamedTuple):
    """A fit checkpoint's record of its run, as ``read_run`` checked it."""

    path: str
    epoch: int  # the next epoch to train
    initial_epoch: int  # the run's first epoch
    key: np.ndarray  # the run key's data
    settings: dict[str, str] | None  # the run's latest settings; None: an older purenn's file
    changes: tuple  # ({"epoch": e, "settings": {name: [before, after]}}, ...), oldest first
    arrays: dict[str, np.ndarray]  # every tensor of the file, by name


def _damaged(where: str, what: str) -> ValueError:
    return ValueError(f"{where} is damaged: {what}; it cannot be resumed: start the run over")


def _number(arrays: dict, name: str, where: str) -> int:
    value = arrays[name]
    if value.shape != () or value.dtype != np.int32:
        raise _damaged(where, f"its {name} has shape {value.shape} and dtype {value.dtype}, "
                              f"where a fit checkpoint holds one int32 number")
    return int(value)


def _recorded(metadata: dict, where: str) -> tuple[dict | None, tuple]:
    """The settings and changes of the metadata, checked; ``(None, ())`` for a checkpoint
    written before purenn kept them."""
    if SETTINGS not in metadata:
        return None, ()
    try:
        settings = json.loads(metadata[SETTINGS])
        changes = json.loads(metadata.get(CHANGES, "[]"))
        good = (isinstance(settings, dict) and isinstance(changes, list)
                and all(isinstance(v, str) for v in settings.values())
                and all(isinstance(c, dict) and isinstance(c.get("epoch"), int)
                        and isinstance(c.get("settings"), dict) for c in changes))
    except ValueError:
        good = False
    if not good:
        raise _damaged(where, f"its {SETTINGS} or {CHANGES} metadata is not what fit writes")
    return settings, tuple(changes)


def read_run(path: str | os.PathLike) -> SavedRun:
    """Read the record of the run a fit checkpoint holds, checked: a fit checkpoint, with
    one integer ``epoch`` and ``initial_epoch``, ``0 <= initial_epoch <= epoch``, a history
    of ``epoch - initial_epoch`` epochs, readable settings.

    Raises:
      ValueError: naming the file and what is wrong with it.
      FileNotFoundError: there is no file at ``path``.
    """
    path = os.fspath(path)
    contents = checkpoint.read(path)
    arrays, where = contents.arrays, f"the checkpoint {path!r}"
    held = sorted({name.split("/")[0] for name in arrays})
    if not set(_REQUIRED) <= set(held):
        raise ValueError(f"{path!r} is not a fit checkpoint (it holds "
                         f"{', '.join(held) or 'nothing'}; a fit checkpoint also has "
                         f"epoch, key and history): pass another checkpoint_path, or "
                         f"resume=False to overwrite it")
    unknown = sorted(set(held) - {*_REQUIRED, "initial_epoch"})
    if unknown:
        raise _damaged(where, f"it also holds {', '.join(unknown)}, which fit never saves")
    epoch = _number(arrays, "epoch", where)
    first = _number(arrays, "initial_epoch", where) if "initial_epoch" in arrays else 0
    if first < 0:
        raise _damaged(where, f"its initial_epoch is {first}, below 0")
    if epoch < first:
        raise _damaged(where, f"its epoch is {epoch}, before its initial_epoch {first}")
    losses = arrays.get("history/loss")
    if losses is not None and losses.shape != (epoch - first,):
        raise _damaged(where, f"its history/loss has shape {losses.shape}, where epochs "
                              f"{first} to {epoch - 1} make ({epoch - first},)")
    settings, changes = _recorded(contents.metadata, where)
    return SavedRun(path, epoch, first, arrays["key"], settings, changes, arrays)


class RunCheckpoint(NamedTuple):
    """Where and what ``fit`` saves: the file, the run's key, its settings and the
    changes recorded before."""

    path: str
    key: Any
    settings: dict[str, str]
    changes: tuple = ()

    def save(self, params, opt_state, next_epoch: int, history: History) -> None:
        """Save the state entering ``next_epoch`` with the history, the key and the
        record, as ``read_run`` and ``resume_run`` read them back."""
        arrays = history.arrays(with_validation=bool(history.validation["val_epoch"]))
        del arrays["epoch"]  # rebuilt from the first epoch and the length
        arrays = {name: (values.astype(np.int32) if name == "val_epoch" else values)
                  for name, values in arrays.items()}
        checkpoint.save(self.path, {
            "params": params,
            "opt_state": opt_state,
            "epoch": np.asarray(next_epoch, np.int32),  # int32: loads with jax_enable_x64 off
            "initial_epoch": np.asarray(history.first_epoch, np.int32),
            "key": threefry.key_data(self.key),
            "history": arrays,
        }, metadata={SETTINGS: json.dumps(self.settings),
                     CHANGES: json.dumps(list(self.changes))})


def _check_settings(saved: SavedRun, settings: dict, with_changes: bool) -> tuple:
    """The record's changes, with this resume's appended when the settings differ and
    ``with_changes`` allows it; ValueError naming each difference otherwise."""
    where = f"the checkpoint {saved.path!r}"
    if saved.settings is None:
        if not with_changes:
            raise ValueError(f"{where} keeps no run settings (an older purenn wrote it), so "
                             f"a resume cannot check that this run has the same ones; pass "
                             f"resume_with_changes=True to continue it with this run's, "
                             f"resume=False to start over, or another checkpoint_path")
        found = {name: (None, value) for name, value in settings.items()}
    else:
        found = differences(saved.settings, settings)
        if found and not with_changes:
            raise ValueError(f"{where} is of a run with other settings: "
                             f"{format_differences(found)}. Pass the same settings to resume it, "
                             f"resume_with_changes=True to continue it with these, "
                             f"resume=False to start over, or another checkpoint_path")
    if not found:
        return saved.changes
    return (*saved.changes, {"epoch": saved.epoch,
                             "settings": {name: list(pair) for name, pair in found.items()}})


def _check_state(saved: SavedRun, params, opt_state) -> None:
    """Refuse a saved state whose names, shapes or dtypes differ from this run's, in the
    words of the checkpoint's tensor names."""
    now = dict([*named_leaves({"params": params}, "fit"),
                *named_leaves({"opt_state": opt_state}, "fit")])
    kept = {name: array for name, array in saved.arrays.items()
            if name.split("/")[0] in ("params", "opt_state")}
    found, wider = [], set()

    def spec(leaf):
        return None if leaf is None else f"{jnp.dtype(leaf.dtype)} of shape {tuple(leaf.shape)}"

    for name in [*now, *(name for name in kept if name not in now)]:
        old, new = spec(kept.get(name)), spec(now.get(name))
        if old != new:
            found.append(f"{name}: {old or 'absent'} in the checkpoint, {new or 'absent'} now")
            if name in kept and name in now:
                wider |= {str(jnp.dtype(kept[name].dtype)), str(jnp.dtype(now[name].dtype))}
    if not found:
        return
    hint = ""
    if {"float32", "float64"} <= wider:
        hint = (" (float64 is a run with jax_enable_x64 on, float32 one with it off: resume "
                "in the mode the run was saved in)")
    listed = found[:10] + ([f"and {len(found) - 10} more"] if len(found) > 10 else [])
    raise ValueError(f"the checkpoint {saved.path!r} holds another state than this run's: "
                     f"{'; '.join(listed)}{hint}")


def resume_run(saved: SavedRun, params, opt_state, key, history: History,
               settings: dict[str, str], *, with_changes: bool = False):
    """``(params, opt_state, changes)`` of the checked record ``saved`` (``read_run``),
    checked against this run: same key, same first epoch, same settings (unless
    ``with_changes``: the record's changes then gain this resume's), same state
    structure (``params`` and ``opt_state`` give it). ``history`` is filled with the
    saved one.

    Raises:
      ValueError: the checkpoint is of another run; the message names what differs.
    """
    where = f"the checkpoint {saved.path!r}"
    now_key = threefry.key_data(key)
    if saved.key.shape != now_key.shape or not np.array_equal(saved.key, now_key):
        raise ValueError(f"{where} was written by a run with another key; pass the same key "
                         f"to resume it, resume=False to start over, or another "
                         f"checkpoint_path")
    if saved.initial_epoch != history.first_epoch:
        raise ValueError(f"{where} is of a run that began at epoch {saved.initial_epoch}; "
                         f"pass initial_epoch={saved.initial_epoch} to resume it")
    changes = _check_settings(saved, settings, with_changes)
    _check_state(saved, params, opt_state)
    arrays = saved.arrays
    numbers = {name: jax.ShapeDtypeStruct((), np.int32) for name in ("epoch", "initial_epoch")
               if name in arrays}
    like = {"params": params, "opt_state": opt_state, **numbers,
            "key": jax.ShapeDtypeStruct(arrays["key"].shape, arrays["key"].dtype),
            "history": {name.split("/", 1)[1]: jax.ShapeDtypeStruct(a.shape, a.dtype)
                        for name, a in arrays.items() if name.startswith("history/")}}
    state = checkpoint.load(saved.path, like=like)
    kept = {name: np.asarray(values) for name, values in state["history"].items()}
    for name in history.parts:
        if name in kept:
            history.parts[name] = [kept[name]]
    if "val_epoch" in kept:
        history.validation = {name: list(kept.get(name, [])) for name in history.validation}
    return state["params"], state["opt_state"], changes
