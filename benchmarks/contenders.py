"""The contenders: one training run of the book's chapter-14 model (``benchmarks.plain_jax``
describes it), written several ways, each from the same initial weights and data, in
float32, full batch, computing every epoch what the book prints:

- **purenn fit**: ``pn.fit(..., log_every=100)`` as a user calls it (the log lines go to
  a function that drops them);
- **plain JAX**: ``benchmarks.plain_jax``, one ``lax.scan`` over the epochs;
- **Flax + Optax**: ``flax.linen.Dense`` layers, ``optax.adam`` with the book's decay as a
  schedule, one ``lax.scan``;
- **NumPy book code**: ``tests/reference/book.py``'s classes in the book's loop, float32;
- **PyTorch eager**: ``nn.Sequential``, ``torch.optim.Adam`` with the book's decay.

``setup()`` builds (and compiles) a contender, returning the seconds compiling took;
``run()`` trains ``epochs`` epochs from the initial weights and returns when done.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import purenn as pn
from benchmarks import numpy_job, plain_jax, timing
from benchmarks.plain_jax import BETA_1, BETA_2, CLIP, DECAY, EPSILON, L2, LEARNING_RATE


@dataclass
class Problem:
    """The data ``X (N, 2)``, ``y (N,)`` and the initial params every contender starts from."""

    samples: int  # N, a multiple of 3
    hidden: int  # H
    X: jax.Array
    y: jax.Array
    params: tuple  # purenn's: ({"weights", "biases"}, (), {"weights", "biases"})

    @property
    def arrays(self) -> tuple:
        """``(W1, b1, W2, b2)``: fresh, writable NumPy float32 copies."""
        first, _, second = self.params
        return tuple(np.array(a, np.float32) for a in (
            first["weights"], first["biases"], second["weights"], second["biases"]))

    @property
    def size(self) -> str:
        return f"{self.samples}×{self.hidden}"


def book_model(hidden: int) -> pn.Layer:
    return pn.serial(pn.dense(2, hidden, weight_l2=L2, bias_l2=L2), pn.relu(),
                     pn.dense(hidden, 3))


def book_optimizer():
    return pn.optimizers.adam(learning_rate=LEARNING_RATE, decay=DECAY)


def make_problem(samples: int, hidden: int, seed: int = 0) -> Problem:
    if samples % 3:
        raise ValueError(f"samples must be a multiple of 3 (3 spiral classes); got {samples}")
    k_data, k_init = jax.random.split(jax.random.key(seed))
    X, y = pn.data.spiral(k_data, samples // 3, 3)
    return Problem(samples, hidden, X, y, book_model(hidden).init(k_init))


class Contender:
    name, note = "?", ""
    compiled = False  # whether setup() compiles (then epochs is fixed, not calibrated)

    def __init__(self, problem: Problem, epochs: int):
        self.problem, self.epochs = problem, epochs


def _discard(line: str) -> None:
    del line  # fit formats its log lines as for a user; they go nowhere


class PurennFit(Contender):
    name = "purenn fit"
    compiled = True

    def run(self, epochs=None):
        p = self.problem
        params, opt_state, _ = pn.fit(
            book_model(p.hidden), pn.losses.softmax_categorical_crossentropy,
            book_optimizer(), p.params, p.X, p.y, key=jax.random.key(1),
            epochs=epochs or self.epochs, log_every=100, log_fn=_discard, progress=False)
        jax.block_until_ready((params, opt_state))

    def setup(self):
        start = time.perf_counter()
        self.run(epochs=1)  # compiles fit's program, the same for any epoch count
        return time.perf_counter() - start


class _Scan(Contender):
    """A jitted ``train(params, X, y)``, its metrics brought to the host."""

    compiled = True

    def _compile(self, train, params):
        start = time.perf_counter()
        self.train = jax.jit(train).lower(params, self.problem.X, self.problem.y).compile()
        self.params = params
        return time.perf_counter() - start

    def run(self):
        params, metrics = self.train(self.params, self.problem.X, self.problem.y)
        jax.block_until_ready(params)
        if not np.isfinite(np.asarray(metrics["loss"])).all():
            raise FloatingPointError(f"{self.name}: the loss became non-finite")


class PlainJax(_Scan):
    name = "plain JAX (jax.grad, lax.scan)"

    def setup(self):
        params = tuple(jnp.asarray(a) for a in self.problem.arrays)
        return self._compile(lambda p, X, y: plain_jax.train(p, X, y, epochs=self.epochs),
                             params)


class FlaxOptax(_Scan):
    name = "Flax + Optax"

    def setup(self):
        import flax.linen as nn
        import optax

        hidden = self.problem.hidden
        model = nn.Sequential([nn.Dense(hidden), nn.relu, nn.Dense(3)])
        w1, b1, w2, b2 = (jnp.asarray(a) for a in self.problem.arrays)
        params = {"params": {"layers_0": {"kernel": w1, "bias": b1[0]},
                             "layers_2": {"kernel": w2, "bias": b2[0]}}}
        schedule = lambda count: LEARNING_RATE / (1.0 + DECAY * count)  # noqa: E731
        optimizer = optax.adam(schedule, b1=BETA_1, b2=BETA_2, eps=EPSILON)

        def loss_fn(params, X, y):
            logits = model.apply(params, X)
            probs = jnp.clip(jax.nn.softmax(logits), CLIP, 1 - CLIP)
            data_loss = jnp.mean(-jnp.log(jnp.take_along_axis(probs, y[:, None], 1)[:, 0]))
            first = params["params"]["layers_0"]
            reg_loss = L2 * jnp.sum(first["kernel"] ** 2) + L2 * jnp.sum(first["bias"] ** 2)
            return data_loss + reg_loss, (data_loss, reg_loss, logits)

        def epoch(carry, X, y):
            params, opt_state = carry
            (loss, (data_loss, reg_loss, logits)), grads = jax.value_and_grad(
                loss_fn, has_aux=True)(params, X, y)
            rate = schedule(opt_state[0].count)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            accuracy = jnp.mean(jnp.argmax(logits, axis=1) == y)
            return (optax.apply_updates(params, updates), opt_state), {
                "loss": loss, "data_loss": data_loss, "reg_loss": reg_loss,
                "accuracy": accuracy, "learning_rate": rate}

        def train(params, X, y):
            (params, _), metrics = lax.scan(lambda c, _: epoch(c, X, y),
                                            (params, optimizer.init(params)), None,
                                            length=self.epochs)
            return params, metrics

        return self._compile(train, params)


class BookNumpy(Contender):
    name = "NumPy book code (float32)"
    note = "the library's default BLAS threads"

    def setup(self):
        self.book = numpy_job.book_classes()
        self.X, self.y = np.asarray(self.problem.X, np.float32), np.asarray(self.problem.y)
        return None

    def run(self):
        dense1 = self.book.Layer_Dense(2, self.problem.hidden, weight_regularizer_l2=L2,
                                       bias_regularizer_l2=L2)
        dense2 = self.book.Layer_Dense(self.problem.hidden, 3)
        dense1.weights, dense1.biases, dense2.weights, dense2.biases = self.problem.arrays
        optimizer = self.book.Optimizer_Adam(learning_rate=LEARNING_RATE, decay=DECAY)
        numpy_job.book_epochs(self.book, self.X, self.y, dense1, dense2, optimizer,
                              self.epochs)


class TorchEager(Contender):
    name = "PyTorch eager"
    note = "the library's default threads"

    def setup(self):
        import torch

        self.torch = torch
        self.X = torch.from_numpy(np.array(self.problem.X, np.float32))
        self.y = torch.from_numpy(np.array(self.problem.y, np.int64))
        w1, b1, w2, b2 = self.problem.arrays
        self.initial = [torch.from_numpy(np.array(a)) for a in (w1.T, b1[0], w2.T, b2[0])]
        self.model = torch.nn.Sequential(torch.nn.Linear(2, self.problem.hidden),
                                         torch.nn.ReLU(), torch.nn.Linear(self.problem.hidden, 3))
        return None

    def run(self):
        torch, model, X, y = self.torch, self.model, self.X, self.y
        with torch.no_grad():
            for param, value in zip(model.parameters(), self.initial):
                param.copy_(value)
        optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE,
                                     betas=(BETA_1, BETA_2), eps=EPSILON)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer,
                                                     lambda count: 1 / (1 + DECAY * count))
        for epoch in range(self.epochs):
            logits = model(X)
            probs = torch.clamp(torch.softmax(logits, dim=1), CLIP, 1 - CLIP)
            data_loss = torch.mean(-torch.log(probs.gather(1, y[:, None])[:, 0]))
            reg_loss = L2 * torch.sum(model[0].weight ** 2) + L2 * torch.sum(model[0].bias ** 2)
            loss = data_loss + reg_loss
            accuracy = (torch.argmax(logits, dim=1) == y).float().mean()
            if not epoch % 100:  # the log line's figures, on the host
                self.last = (loss.item(), accuracy.item(), schedule.get_last_lr()[0])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()


CONTENDERS = (PurennFit, PlainJax, FlaxOptax, BookNumpy, TorchEager)


@dataclass
class Row:
    """One contender's measurement at one size."""

    name: str
    epochs: int = 0  # per timed run
    per_epoch: list = field(default_factory=list)  # seconds, one per repetition
    setup_seconds: float | None = None  # compile (a first call), where the contender compiles
    skipped: str | None = None
    note: str = ""


def _calibrate(contender: Contender, seconds: float) -> None:
    """An eager contender's epochs: about ``seconds`` of work, at most its given count."""
    wanted, contender.epochs = contender.epochs, min(11, contender.epochs)
    per_epoch = timing.seconds_per_epoch(contender.run, contender.epochs)["per_epoch"]
    contender.epochs = max(1, min(wanted, round(seconds / per_epoch)))


def measure(problem: Problem, *, epochs: int, eager_seconds: float, reps: int,
            log=print) -> list[Row]:
    """Every contender's seconds per epoch at ``problem``'s size, ``reps`` interleaved
    repetitions; compiled contenders train ``epochs`` epochs per run, eager ones as many
    as take about ``eager_seconds`` (at most ``epochs``). The first row is purenn fit."""
    rows, live = [], {}
    for kind in CONTENDERS:
        contender = kind(problem, epochs)
        row = Row(contender.name, note=contender.note)
        rows.append(row)
        try:
            row.setup_seconds = contender.setup()
        except ImportError as err:
            row.skipped = f"not installed ({err.name or err})"
            log(f"  {problem.size}  {row.name}: skipped, {row.skipped}")
            continue
        if not contender.compiled:
            _calibrate(contender, eager_seconds)
        row.epochs = contender.epochs
        live[row.name] = (lambda c=contender: timing.seconds_per_epoch(c.run, c.epochs))
    samples = timing.interleave(live, reps, log=log)
    for row in rows:
        if row.name in samples:
            row.per_epoch = samples[row.name]["per_epoch"]
            log(f"  {problem.size}  {row.name}: {timing.median(row.per_epoch) * 1e3:.4f} "
                f"ms/epoch ({row.epochs} epochs/run)")
    return rows
