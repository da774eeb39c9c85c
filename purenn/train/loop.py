"""``fit``: a run, chunk by chunk of compiled epochs (``purenn.train.epochs``).

``fit`` runs in stages: its arguments are checked into a ``FitSetup``
(``purenn.train.arguments``); a checkpoint is resumed; chunks of epochs run, each one
call of the lean compiled loop (replayed by the checked loop when it finds a fault, which
raises ``DivergenceError``), between which lines are printed, validation runs, early
stopping watches and checkpoints are saved (``purenn.train.resume``); and the run
finishes with the early-stopping result, the final validation and its lines. With a
checkpoint, SIGTERM and SIGHUP save it as Ctrl-C does (``purenn.signals``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import numpy as np
from jax.sharding import Mesh

from purenn.layers import Layer
from purenn.progress import progress_bar
from purenn.signals import StopSignal, stop_signals
from purenn.train.arguments import FitSetup, setup_fit
from purenn.train.epochs import CHUNK, RunState, checked_chunk_program, chunk_program
from purenn.train.history import History, format_log_line, format_validation_line
from purenn.train.resume import RunCheckpoint, read_run, resume_run

__all__ = ["DivergenceError", "fit"]


class DivergenceError(FloatingPointError):
    """The loss, the parameters or the optimizer state became NaN or inf. Nothing is
    lost: the exception carries the last state whose loss was finite.

    Attributes:
      epoch: the first epoch that failed: its loss, or the state its update made, was not
        finite.
      state_epoch: the epoch that ``params`` and ``opt_state`` enter: ``epoch`` itself
        when only its update failed, ``epoch - 1`` when its loss was already not finite
        (the run's first epoch if there is none before it). The training loss at
        ``state_epoch`` was finite, unless ``state_epoch`` is the run's first epoch and
        ``epoch == state_epoch``.
      params, opt_state: that state, all finite, to inspect or to resume from with a
        smaller learning rate (``fit(..., opt_state=e.opt_state, initial_epoch=
        e.state_epoch)``).
      history: the per-epoch metrics of the epochs before ``state_epoch``.
    """

    def __init__(self, message, *, epoch, state_epoch, params, opt_state, history):
        super().__init__(message)
        self.epoch, self.state_epoch, self.history = epoch, state_epoch, history
        self.params, self.opt_state = params, opt_state


def fit(model: Layer, loss: Callable, optimizer, params, X, y, *, key: jax.Array,
        epochs: int, batch_size: int | None = None, opt_state=None,
        validation_data: tuple | None = None, validation_every: int | None = None,
        patience: int | None = None, initial_epoch: int = 0, log_every: int | None = 100,
        log_fn: Callable[[str], Any] | None = print, progress: bool | None = None,
        accuracy: Callable | None = None, checkpoint_path: str | os.PathLike | None = None,
        checkpoint_every: int | None = None, resume: bool = True,
        resume_with_changes: bool = False, settings: Mapping[str, str] | None = None,
        mesh: Mesh | None = None, data_axis: str = "data"):
    """Train ``params`` for ``epochs`` epochs inside one compiled loop.

    Args:
      model, loss, optimizer, accuracy, mesh, data_axis: as for ``train_step``.
      params: the initial parameters, e.g. ``model.init(key)``.
      X: inputs ``(N, features)``; y: labels ``(N,)``/one-hot ``(N, C)`` or binary targets
        ``(N, J)``. Validated once, here: finite inputs, matching sample counts, labels in
        range.
      key: the run's key; epoch ``e`` draws from ``epoch_keys(key, e)``.
      epochs: how many epochs this call runs, >= 1: epochs ``initial_epoch`` to
        ``initial_epoch + epochs - 1``.
      batch_size: ``None`` for full batch (the book's experiments); otherwise shuffled
        minibatches from the epoch's key, every sample once per epoch.
      opt_state: the optimizer state to continue from; ``optimizer.init(params)`` if None.
      validation_data: ``(X_val, y_val)``, evaluated in inference mode every
        ``validation_every`` epochs (epoch 0 included) and after the last one;
        ``history`` gets ``val_epoch``, ``val_loss``, ``val_accuracy`` and ``validation``
        (the final evaluation, printed as the book's validation line).
      validation_every: epochs between validations, on their own clock: logging more
        or less often changes nothing here. None (default): ``log_every``, or 100 when
        not logging.
      patience: early stopping: stop after this many validation evaluations (one every
        ``validation_every`` epochs) without a lower validation loss, and return the
        params and optimizer state of the best one (``history["best_epoch"]``: the epoch
        after which they were taken). Needs
        ``validation_data``; None (default) trains every epoch, as the book does. A run
        resumed from its checkpoint counts afresh from the resume (the best params
        before it are not in the checkpoint).
      initial_epoch: the first epoch's number: continue a run's key schedule, e.g. 40
        epochs, then ``epochs=60, initial_epoch=40, opt_state=<the returned state>``
        ends bit-identical to 100 epochs in one call.
      log_every: print the book's log line every this many epochs (0 or None: never).
      log_fn: where log lines go (``print`` by default; None to silence). With several
        processes (``jax.distributed``) only process 0 logs. With ``validation_data`` the
        run ends with the last epoch's line (unless it was just printed), a line saying
        where early stopping stopped (if it did), then the book's validation line.
      progress: show a tqdm progress bar; by default on for runs of >= 1000 epochs when
        stderr is a terminal.
      checkpoint_path, checkpoint_every: save ``params``, ``opt_state``, the next epoch,
        the key, the history and the run's settings (``purenn.train.settings``: the
        model's, loss's and optimizer's structure and hyperparameters, the batch size, the
        data's shapes) to this safetensors file every ``checkpoint_every`` epochs, at the
        end and when interrupted: on Ctrl-C (``KeyboardInterrupt``) the last finished
        chunk is saved, then the exception goes on; SIGTERM and SIGHUP, while ``fit``
        runs in the main thread with their default handlers, save it too, print one line
        to stderr and then end the process as the signal does (``purenn.signals``; inside
        your own ``stop_signals()`` block a ``StopSignal`` goes on instead).
      resume: with an existing checkpoint file, continue the run from it (it ends
        bit-identical to an uninterrupted run), after checking that it is this run's:
        same key and first epoch, same settings, else a ValueError names each setting
        that differs (``optimizer.learning_rate: 0.02 in the checkpoint, 0.5 now``).
        Without a file the run starts, so the same call can be repeated until the run
        is done. False: start over and overwrite the file.
      resume_with_changes: resume even where the settings differ (or were not kept, in
        a checkpoint of an older purenn); the checkpoint records the epoch and each
        setting before and after (``purenn.train.read_run(path).changes``), and a later
        resume compares with the new settings.
      settings: more settings of the run, name -> text, for the checkpoint to keep and
        a resume to compare with the others (the command line passes its options,
        ``{"--hidden": "64", ...}``).

    Returns:
      ``(params, opt_state, history)``; ``history`` maps ``epoch`` and each metric
      (``loss, data_loss, reg_loss, accuracy, learning_rate``) to a NumPy array with one
      entry per epoch, plus the validation entries above when ``validation_data`` is given.

    Raises:
      DivergenceError: when the loss, the parameters or the optimizer state become NaN or
        inf; the exception holds the last state whose loss was finite. ``fit`` never
        returns a non-finite state.
      ValueError: bad arguments, e.g. a last layer that does not fit the loss.
    """
    setup, params, opt_state = setup_fit(
        model, loss, optimizer, params, X, y, opt_state, key=key, epochs=epochs,
        batch_size=batch_size, validation_data=validation_data,
        validation_every=validation_every, patience=patience,
        initial_epoch=initial_epoch, log_every=log_every, accuracy=accuracy,
        checkpoint_path=checkpoint_path, checkpoint_every=checkpoint_every, resume=resume,
        resume_with_changes=resume_with_changes, settings=settings, mesh=mesh,
        data_axis=data_axis, chunk=CHUNK)
    if jax.process_index() != 0:
        log_fn = None
    run = _Run(setup, log_fn, progress, bool(resume), bool(resume_with_changes))
    if setup.checkpoint_path is None:
        return _fit(run, params, opt_state)
    with stop_signals() as handled:
        return _fit(run._replace(handled=handled), params, opt_state)


class _Run(NamedTuple):
    """A ``fit`` call: its setup and the arguments its stages read."""

    setup: FitSetup
    log_fn: Callable[[str], Any] | None
    progress: bool | None
    resume: bool
    with_changes: bool
    handled: frozenset = frozenset()  # the stop signals fit's own handlers turn into StopSignal


def _fit(run: _Run, params, opt_state):
    """The stages of ``fit`` after its arguments are checked. A stop signal in each one
    is ``_stopped``: before training nothing is saved, in training the last finished
    chunk (``_train_chunks``), after it the run was saved already."""
    history = History(run.setup.names, run.setup.first)
    try:
        params, opt_state, start, record = _resume(run, params, opt_state, history)
    except StopSignal as stop:
        _stopped(stop, run, "before training; nothing saved")
        raise
    outcome = _train_chunks(run, _Entry(start, params, opt_state), history, record)
    try:
        return _finish(run.setup, outcome, history, run.log_fn)
    except StopSignal as stop:
        if record is not None:
            _stopped(stop, run, f"after training; the run is saved in {record.path}")
        raise


def _stopped(stop: StopSignal, run: _Run, what: str) -> None:
    """After a stop signal that fit's own handler turned into ``stop``: one line on
    stderr saying ``what`` became of the run, then the process ends as the signal ends
    it. A signal that another handler turned into ``stop`` goes on to that handler's
    owner."""
    if stop.signum in run.handled:
        print(f"purenn.fit: stopped by {stop.name} {what}", file=sys.stderr)
        stop.resend()


def _resume(run: _Run, params, opt_state, history: History):
    """``(params, opt_state, first epoch to train, checkpoint record or None)``: the run's
    checkpoint's when it resumes one (``history`` then holds the saved history), else the
    initial ones."""
    setup = run.setup
    path = setup.checkpoint_path
    if path is None:
        return params, opt_state, setup.first, None
    record = RunCheckpoint(path, setup.key, setup.settings)
    if not run.resume or not os.path.exists(path):
        return params, opt_state, setup.first, record
    saved = read_run(path)
    params, opt_state, changes = resume_run(saved, params, opt_state, setup.key, history,
                                            setup.settings, with_changes=run.with_changes)
    record = record._replace(changes=changes)
    start = saved.epoch
    if setup.placement is not None:
        params, opt_state = jax.device_put((params, opt_state), setup.placement.replicated)
    else:  # uncommitted, as the caller's arrays are: the same compiled program serves
        params, opt_state = jax.device_put(jax.tree.map(np.asarray, (params, opt_state)))
    # A shorter earlier run validated after its last epoch too; this one does not.
    if setup.validation_every is not None:
        history.keep_validation(lambda epoch: epoch % setup.validation_every == 0)
    if start > setup.end:
        raise ValueError(f"the checkpoint {path!r} is at epoch {start}, past the run's "
                         f"last epoch {setup.end - 1}; raise epochs or pass resume=False")
    return params, opt_state, start, record


class _Entry(NamedTuple):
    """The state entering an epoch."""

    epoch: int
    params: Any
    opt_state: Any


class _Outcome(NamedTuple):
    """Where the chunk loop ended."""

    entry: _Entry  # the state entering the epoch after the last one trained
    run_start: int  # the first epoch this call trained (after a resume)
    best: tuple | None  # (val_loss, epoch, params, opt_state) of the best validation point
    stopped: bool  # early stopping ended the run


def _next_stop(start: int, end: int, every: int, validation_every: int | None,
               checkpoint_every: int | None) -> int:
    """The last epoch of the chunk that begins at ``start``: the next multiple of
    ``every`` (where the log line goes; epoch 0 included, so its line comes at once) or
    of ``validation_every``, the epoch before the next multiple of ``checkpoint_every``,
    ``CHUNK`` epochs on, or the run's last epoch ``end - 1``."""
    stop = min(end - 1, start + CHUNK - 1, -(-start // every) * every)
    if validation_every:
        stop = min(stop, -(-start // validation_every) * validation_every)
    if checkpoint_every:
        stop = min(stop, -(-(start + 1) // checkpoint_every) * checkpoint_every - 1)
    return max(stop, start)


def _run_chunk(setup: FitSetup, program, entry: _Entry, before: _Entry | None, count: int,
               run_start: int, history: History):
    """``(params, opt_state, metrics)`` after the ``count`` epochs from ``entry``, by the
    lean loop; ``metrics`` maps each metric to a NumPy array of ``count`` values. When the
    lean loop finds a non-finite loss or a non-finite final state, the chunk is replayed
    by the checked loop, which raises the ``DivergenceError`` at the exact epoch.
    ``before``, the entry of the chunk before (None for the run's first), gives the state
    entering the epoch before ``entry``'s."""
    s = setup
    start = np.int32(entry.epoch)
    result = program(entry.params, entry.opt_state, s.X, s.y, s.key, start, np.int32(count))
    if int(result.done) == count and bool(result.finite):
        metrics = {name: np.asarray(values)[:count] for name, values in result.metrics.items()}
        return result.params, result.opt_state, metrics
    previous = entry
    if before is not None:  # the state entering epoch entry.epoch - 1, by the same program
        previous = program(before.params, before.opt_state, s.X, s.y, s.key,
                           np.int32(before.epoch), np.int32(entry.epoch - 1 - before.epoch))
    state = RunState(entry.params, entry.opt_state, previous.params, previous.opt_state)
    checked = checked_chunk_program(s.components, s.batch_size)
    result = checked(state, s.X, s.y, s.key, start, np.int32(count))
    metrics = {name: np.asarray(values) for name, values in result.metrics.items()}
    done = int(result.done)
    if done < count:
        raise _divergence(result, metrics, done, entry.epoch, run_start, history)
    # The checked loop ran the chunk through: its run is as sound as the lean one's.
    return result.state.params, result.state.opt_state, {
        name: values[:count] for name, values in metrics.items()}


def _train_chunks(run: _Run, entry: _Entry, history: History,
                  record: RunCheckpoint | None) -> _Outcome:
    """Run epochs ``entry.epoch`` to ``setup.end - 1`` chunk by chunk: after each, print
    its log lines, validate, watch for early stopping, save the checkpoint (``record``)
    and move the progress bar. An interrupt saves the last finished chunk, then goes
    on."""
    s, log_fn = run.setup, run.log_fn
    run_start = entry.epoch
    # ``entry`` is replaced in one assignment, so an interrupt always sees a state and
    # the epoch it enters together.
    before, best, waited, stopped, bar = None, None, 0, False, None
    try:
        program = chunk_program(s.components, s.batch_size)
        bar = progress_bar(run.progress, s.end - s.first, initial=run_start - s.first)
        write = (bar.write if bar is not None else log_fn) if log_fn is not None else None
        while entry.epoch < s.end:
            start = entry.epoch
            stop = _next_stop(start, s.end, s.every, s.validation_every, s.checkpoint_every)
            params, opt_state, chunk = _run_chunk(s, program, entry, before, stop - start + 1,
                                                  run_start, history)
            history.extend(chunk, stop - start + 1)
            validated = s.evaluator is not None and (stop % s.validation_every == 0
                                                     or stop + 1 == s.end)
            if validated:  # before the state is taken, so an interrupt keeps them together
                metrics = s.evaluator(params, *s.validation_data)
                history.add_validation(stop, metrics)
            before, entry = entry, _Entry(stop + 1, params, opt_state)
            _write_log_lines(write, s.log_every, chunk, stop)
            if validated:
                if best is None or metrics["loss"] < best[0]:
                    best, waited = (metrics["loss"], stop, params, opt_state), 0
                else:
                    waited += 1
            if record is not None and (entry.epoch == s.end or (
                    s.checkpoint_every and entry.epoch % s.checkpoint_every == 0)):
                record.save(params, opt_state, entry.epoch, history)
            if bar is not None:
                bar.update(entry.epoch - s.first - bar.n)
            if s.patience is not None and waited >= s.patience and entry.epoch < s.end:
                stopped = True
                break
    except KeyboardInterrupt as interrupt:  # Ctrl-C, or a StopSignal (purenn.signals)
        if record is not None:
            history.truncate(entry.epoch - s.first)
            history.keep_validation(lambda epoch: epoch < entry.epoch)
            record.save(entry.params, entry.opt_state, entry.epoch, history)
            if isinstance(interrupt, StopSignal):
                _stopped(interrupt, run, f"at epoch {entry.epoch}; saved the run to "
                                         f"{record.path}")
        raise
    finally:
        if bar is not None:
            bar.close()
    return _Outcome(entry, run_start, best, stopped)


def _write_log_lines(write, log_every, chunk: dict, stop: int) -> None:
    """The book's line of every epoch of the chunk ending at ``stop`` that is a multiple
    of ``log_every``."""
    done = len(chunk["loss"])
    for offset in range(done):
        epoch = stop + 1 - done + offset
        if write is not None and log_every and epoch % log_every == 0:
            write(format_log_line(epoch, {name: values[offset]
                                          for name, values in chunk.items()}))


def _finish(setup: FitSetup, outcome: _Outcome, history: History, log_fn):
    """``fit``'s result: the last state (or early stopping's best), the history, the
    final validation and, with validation data, the run's closing lines."""
    params, opt_state = outcome.entry.params, outcome.entry.opt_state
    out = history.arrays(with_validation=setup.evaluator is not None)
    last = outcome.entry.epoch - 1
    if setup.patience is not None:
        if outcome.best is None:  # nothing left to train: a finished run's checkpoint
            out["best_epoch"] = last
        else:
            _, out["best_epoch"], params, opt_state = outcome.best
    if setup.evaluator is not None:
        out["validation"] = setup.evaluator(params, *setup.validation_data)
        if log_fn is not None:
            # The validation line follows the line of the last epoch trained.
            log_every = setup.log_every
            if outcome.entry.epoch > outcome.run_start and not (
                    log_every and last % log_every == 0):
                log_fn(format_log_line(last, {name: out[name][-1] for name in setup.names}))
            if outcome.stopped:
                log_fn(f"early stopping after epoch {last}: no lower validation loss in "
                       f"{setup.patience} evaluations; returning the params of epoch "
                       f"{out['best_epoch']} (validation loss {outcome.best[0]:.3f})")
            log_fn(format_validation_line(out["validation"]))
    return params, opt_state, out


def _divergence(result, chunk, done, start, run_start, history):
    """The error for a chunk whose epoch ``start + done`` failed, carrying the last state
    whose loss was finite. Only runs when training has diverged."""
    bad = start + done
    loss = chunk["loss"][done]
    failed = result.state
    history.extend(chunk, done)
    if np.isfinite(loss):
        what = f"the parameters or the optimizer state became non-finite at epoch {bad}"
        params, opt_state, state_epoch = failed.params, failed.opt_state, bad
    elif bad > run_start:
        what = f"the loss became {loss} at epoch {bad}"
        params, opt_state = failed.previous_params, failed.previous_opt_state
        state_epoch = bad - 1
        history.truncate(history.epochs_done() - 1)
    else:
        what = f"the loss became {loss} at epoch {bad}, the run's first"
        params, opt_state, state_epoch = failed.params, failed.opt_state, bad
    return DivergenceError(
        f"{what}: training diverged. The exception keeps the last state with a finite loss, "
        f"entering epoch {state_epoch} (.params, .opt_state, .state_epoch, .history); lower "
        f"the learning rate or clip the gradients: "
        f"pn.optimizers.chain(pn.optimizers.clip_by_global_norm(1.0), ...)",
        epoch=bad, state_epoch=state_epoch, params=params, opt_state=opt_state,
        history=history.arrays(with_validation=False))
