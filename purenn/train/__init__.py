"""Training: a jitted train step, whole runs compiled once, evaluation and prediction.

``train_step`` builds one pure, jitted step. ``fit`` runs whole epochs inside one compiled
loop whose epoch count is traced, so a run compiles **one** training program whatever its
``epochs``, ``log_every``, ``checkpoint_every`` or ``initial_epoch`` (plus one program for
evaluation when there is validation data). The run leaves the compiled loop at log lines,
validation points, checkpoints and at least every ``CHUNK`` epochs, to print the book's
log line, move a progress bar and check for divergence.

**One compile per structure.** The model and the optimizer are pytrees whose numeric
hyperparameters are leaves; every jitted program here takes them as *arguments* (their
non-numeric parts, such as the loss function or a schedule, are static; see
``purenn.partition``). Models and optimizers that differ only in hyperparameter values,
seeds, epoch counts or logging intervals reuse the same compiled programs.

Keys: epoch ``e`` uses ``shuffle_key, dropout_key = epoch_keys(key, e)``; batch ``b`` of
that epoch (``b = 0`` for full batch) gets ``jax.random.fold_in(dropout_key, b)`` as its
step key, and minibatches are taken in the order ``jax.random.permutation(shuffle_key,
N)``. The schedule depends only on ``key`` and the epoch, so chunking, logging, resuming
from a checkpoint and continuing with ``initial_epoch`` never change a run's bits.

The modules: ``step`` (the components, their checks, ``train_step``), ``epochs`` (the
compiled epochs loops, lean and checked, and the vmapped loop of many runs), ``loop``
(``fit``), ``arguments`` (``fit``'s argument checks), ``history`` (the history and the
printed lines), ``resume`` (the run's checkpoint: ``read_run``, the checks of a resume),
``settings`` (a run's settings in words, kept in its checkpoint), ``evaluation``
(``evaluate``, ``predict``) and ``sharding`` (the placement on a mesh).
"""

from purenn.train.arguments import MAX_EPOCH
from purenn.train.epochs import (
    CHUNK,
    ChunkResult,
    LeanResult,
    RunState,
    checked_chunk_program,
    chunk_program,
    epoch_keys,
    epochs_function,
    lean_epochs_function,
    runs_program,
)
from purenn.train.evaluation import Evaluator, evaluate, evaluation_function, predict
from purenn.train.history import (
    METRICS,
    VALIDATION,
    format_log_line,
    format_validation_line,
)
from purenn.train.loop import DivergenceError, fit
from purenn.train.resume import SavedRun, read_run
from purenn.train.step import Components, check_output_layer, default_accuracy, train_step

__all__ = [
    "CHUNK",
    "ChunkResult",
    "Components",
    "DivergenceError",
    "Evaluator",
    "LeanResult",
    "MAX_EPOCH",
    "METRICS",
    "RunState",
    "SavedRun",
    "VALIDATION",
    "check_output_layer",
    "checked_chunk_program",
    "chunk_program",
    "default_accuracy",
    "epoch_keys",
    "epochs_function",
    "evaluate",
    "evaluation_function",
    "fit",
    "format_log_line",
    "format_validation_line",
    "lean_epochs_function",
    "predict",
    "read_run",
    "runs_program",
    "train_step",
]
