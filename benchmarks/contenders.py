"""The contenders: one training run of the book's chapter-14 model, written five ways.

Every contender trains the same model from the same initial weights on the same data, in
float32, full batch:

    Dense(2, H, weight_l2=5e-4, bias_l2=5e-4) -> ReLU -> Dense(H, 3) -> softmax + CCE
    Adam(learning_rate=0.02, decay=5e-7)

and computes, every epoch, what the book prints: loss, data loss, regularization loss,
accuracy and the current learning rate. The JAX contenders bring the metrics to the host
every ``chunk`` epochs (what ``pn.fit`` does to print the book's log line every 100
epochs): ``pn.fit`` as a user calls it, the others in a jitted ``lax.scan`` of ``chunk``
epochs; the eager ones (NumPy, PyTorch) run a Python loop and keep every 100th epoch's
metrics.

A contender is built by ``setup()`` (which compiles, where there is something to compile,
and returns the seconds that took) and timed by ``run(epochs)``, which blocks until the
result is ready. ``quantum`` is the epoch granularity ``run`` accepts.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import purenn as pn
from benchmarks import numpy_job

L2 = 5e-4
LEARNING_RATE = 0.02
DECAY = 5e-7
BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7
CLIP = 1e-7

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass
class Problem:
    """The data and the initial weights every contender starts from (float32)."""

    samples: int  # N, a multiple of 3
    hidden: int  # H
    X: jax.Array
    y: jax.Array
    params: tuple  # purenn's params: ({"weights", "biases"}, (), {"weights", "biases"})

    @property
    def arrays(self):
        """``(W1, b1, W2, b2)`` as NumPy float32 arrays."""
        first, _, second = self.params
        return tuple(np.asarray(a, np.float32) for a in (
            first["weights"], first["biases"], second["weights"], second["biases"]))


def book_model(hidden: int) -> pn.Layer:
    return pn.serial(pn.dense(2, hidden, weight_l2=L2, bias_l2=L2), pn.relu(),
                     pn.dense(hidden, 3))


def make_problem(samples: int, hidden: int, seed: int = 0) -> Problem:
    if samples % 3:
        raise ValueError(f"samples must be a multiple of 3 (3 spiral classes); got {samples}")
    k_data, k_init = jax.random.split(jax.random.key(seed))
    with jax.enable_x64(False):
        X, y = pn.data.spiral(k_data, samples // 3, 3)
        params = book_model(hidden).init(k_init)
    return Problem(samples, hidden, X, y, params)


class Contender:
    name = "?"
    quantum = 1  # run(epochs) takes multiples of this (plus `offset`)
    offset = 0
    compiled = False  # whether setup() compiles (its time is a compile time)
    note = ""  # shown next to the contender's times

    def setup(self) -> float | None:
        return None

    def run(self, epochs: int) -> None:
        raise NotImplementedError

    def epochs_for(self, wanted: int) -> int:
        """The nearest epoch count >= 1 quantum that ``run`` accepts."""
        k = max(1, round((wanted - self.offset) / self.quantum))
        return k * self.quantum + self.offset


# --- purenn ---------------------------------------------------------------------------


class PurennFit(Contender):
    """``pn.fit`` as a user calls it, logging every ``chunk`` epochs (to nowhere)."""

    compiled = True

    def __init__(self, problem: Problem, chunk: int, *, context=None, name="purenn fit"):
        self.problem, self.chunk, self.name = problem, chunk, name
        self.context = context or contextlib.nullcontext
        self.model = book_model(problem.hidden)
        self.optimizer = pn.optimizers.adam(learning_rate=LEARNING_RATE, decay=DECAY)
        self.loss = pn.losses.softmax_categorical_crossentropy
        # fit compiles one program whatever the epochs; runs of k * chunk + 1 epochs are
        # chunks of 1 (epoch 0, logged at once) and `chunk` epochs, as the book's 10001.
        self.quantum, self.offset = chunk, 1

    def _fit(self, epochs):
        with self.context():
            params, opt_state, history = pn.fit(
                self.model, self.loss, self.optimizer, self.problem.params, self.problem.X,
                self.problem.y, key=jax.random.key(1), epochs=epochs, log_every=self.chunk,
                log_fn=None, progress=False)
        jax.block_until_ready((params, opt_state))
        return history

    def setup(self):
        start = time.perf_counter()
        self._fit(self.chunk + 1)
        return time.perf_counter() - start

    def run(self, epochs):
        self._fit(epochs)


# --- plain JAX ------------------------------------------------------------------------


def book_loss(params, X, y):
    """The book's model and loss in plain ``jnp`` ops, for ``jax.grad`` to differentiate:
    softmax, clip to [1e-7, 1 - 1e-7], mean of -log(correct confidence), plus the L2
    penalties of the first layer's weights and biases."""
    w1, b1, w2, b2 = params
    hidden = jnp.maximum(X @ w1 + b1, 0)
    logits = hidden @ w2 + b2
    exps = jnp.exp(logits - jnp.max(logits, axis=1, keepdims=True))
    probs = jnp.clip(exps / jnp.sum(exps, axis=1, keepdims=True), CLIP, 1 - CLIP)
    data_loss = jnp.mean(-jnp.log(jnp.take_along_axis(probs, y[:, None], axis=1)[:, 0]))
    reg_loss = L2 * jnp.sum(w1 * w1) + L2 * jnp.sum(b1 * b1)
    return data_loss + reg_loss, (data_loss, reg_loss, logits)


def book_adam(params, state, grads):
    """The book's Adam with inverse-time decay, written inline (``state = (count, m, c)``)."""
    count, momentum, cache = state
    lr = LEARNING_RATE * (1.0 / (1.0 + DECAY * count.astype(jnp.float32)))
    t = (count + 1).astype(jnp.float32)
    correction_1, correction_2 = 1 - BETA_1 ** t, 1 - BETA_2 ** t
    momentum = tuple(BETA_1 * m + (1 - BETA_1) * g for m, g in zip(momentum, grads))
    cache = tuple(BETA_2 * c + (1 - BETA_2) * g ** 2 for c, g in zip(cache, grads))
    params = tuple(p - lr * (m / correction_1) / (jnp.sqrt(c / correction_2) + EPSILON)
                   for p, m, c in zip(params, momentum, cache))
    return params, (count + 1, momentum, cache), lr


class _ScanContender(Contender):
    """Chunks of ``chunk`` epochs in one jitted ``lax.scan``; metrics to the host after
    each chunk, checked for NaN as ``fit`` does."""

    compiled = True

    def __init__(self, problem: Problem, chunk: int):
        self.problem, self.chunk, self.quantum = problem, chunk, chunk

    def _compile(self, epoch, carry):
        def run(carry, X, y):
            return lax.scan(lambda c, _: epoch(c, X, y), carry, None, length=self.chunk)

        start = time.perf_counter()
        self._run = jax.jit(run).lower(carry, self.problem.X, self.problem.y).compile()
        self._carry0 = carry
        return time.perf_counter() - start

    def run(self, epochs):
        carry = self._carry0
        for _ in range(epochs // self.chunk):
            carry, metrics = self._run(carry, self.problem.X, self.problem.y)
            metrics = {name: np.asarray(values) for name, values in metrics.items()}
            if not np.all(np.isfinite(metrics["loss"])):
                raise FloatingPointError(f"{self.name}: the loss became non-finite")
        jax.block_until_ready(carry)


class PlainJax(_ScanContender):
    """``jax.value_and_grad`` of the plain forward (autodiff, no custom VJPs), the same
    Adam inline, epochs in ``lax.scan``."""

    name = "plain JAX (jax.grad)"

    def setup(self):
        params = tuple(jnp.asarray(a) for a in self.problem.arrays)
        state = (jnp.zeros((), jnp.int32), tuple(map(jnp.zeros_like, params)),
                 tuple(map(jnp.zeros_like, params)))

        def epoch(carry, X, y):
            params, state = carry
            (loss, (data_loss, reg_loss, logits)), grads = jax.value_and_grad(
                book_loss, has_aux=True)(params, X, y)
            params, state, lr = book_adam(params, state, grads)
            accuracy = jnp.mean((jnp.argmax(logits, axis=1) == y).astype(jnp.float32))
            return (params, state), {"loss": loss, "data_loss": data_loss,
                                     "reg_loss": reg_loss, "accuracy": accuracy,
                                     "learning_rate": lr}

        return self._compile(epoch, (params, state))


class FlaxOptax(_ScanContender):
    """A ``flax.linen`` model, ``optax.adam`` (epsilon outside the root, as the book) with
    the book's inverse-time decay as a schedule, the same loss; epochs in ``lax.scan``."""

    name = "Flax + Optax"

    def setup(self):
        import flax.linen as nn
        import optax

        hidden = self.problem.hidden

        class Mlp(nn.Module):
            @nn.compact
            def __call__(self, x):
                x = nn.relu(nn.Dense(hidden, name="dense1")(x))
                return nn.Dense(3, name="dense2")(x)

        model = Mlp()
        w1, b1, w2, b2 = (jnp.asarray(a) for a in self.problem.arrays)
        params = {"params": {"dense1": {"kernel": w1, "bias": b1[0]},
                             "dense2": {"kernel": w2, "bias": b2[0]}}}
        schedule = lambda count: LEARNING_RATE * (1.0 / (1.0 + DECAY * count))  # noqa: E731
        optimizer = optax.adam(schedule, b1=BETA_1, b2=BETA_2, eps=EPSILON)

        def loss_fn(params, X, y):
            logits = model.apply(params, X)
            probs = jnp.clip(jax.nn.softmax(logits), CLIP, 1 - CLIP)
            data_loss = jnp.mean(-jnp.log(jnp.take_along_axis(probs, y[:, None], 1)[:, 0]))
            first = params["params"]["dense1"]
            reg_loss = (L2 * jnp.sum(first["kernel"] ** 2) + L2 * jnp.sum(first["bias"] ** 2))
            return data_loss + reg_loss, (data_loss, reg_loss, logits)

        def epoch(carry, X, y):
            params, opt_state = carry
            (loss, (data_loss, reg_loss, logits)), grads = jax.value_and_grad(
                loss_fn, has_aux=True)(params, X, y)
            lr = schedule(opt_state[0].count)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            accuracy = jnp.mean((jnp.argmax(logits, axis=1) == y).astype(jnp.float32))
            return (params, opt_state), {"loss": loss, "data_loss": data_loss,
                                         "reg_loss": reg_loss, "accuracy": accuracy,
                                         "learning_rate": lr}

        return self._compile(epoch, (params, optimizer.init(params)))


# --- eager ------------------------------------------------------------------------------


class _ThreadChoice(Contender):
    """Eager libraries are timed with 1 thread *and* with their default (one per core) in
    every repetition, and the faster of the two counts: on a small machine shared with
    other work, a library's second thread often waits for a core and a run with it can be
    many times slower (measured here: OpenBLAS and PyTorch 3-70x on 2 busy cores), or
    faster when the machine is quiet. So the NumPy and PyTorch rows are their best
    showing, never a strawman. ``timing.measure`` does the choosing (``variants``)."""

    threads = None  # None: the library's default

    def _default_threads(self) -> int:
        return os.cpu_count() or 1

    @property
    def variants(self):
        default = self._default_threads()
        return {f"{default} threads": None, "1 thread": 1} if default > 1 else {}

    def select(self, variant):
        self.threads = variant


class BookNumpy(_ThreadChoice):
    """The book's classes (``tests/reference/book.py``) in the book's training loop.

    ``dtype=float32`` sets the layers' arrays to float32 after construction (the reference
    classes store float64, as ``np.random.randn`` gives): every op then stays float32, the
    same arithmetic as the JAX contenders. ``float64`` is the classes as they are.
    """

    def __init__(self, problem: Problem, dtype=np.float32):
        self.problem, self.dtype = problem, np.dtype(dtype)
        self.name = f"NumPy book code ({self.dtype.name})"

    def setup(self):
        self.book = numpy_job.book_classes()
        self.X = np.asarray(self.problem.X, self.dtype)
        self.y = np.asarray(self.problem.y)
        self.threads = None
        try:
            import threadpoolctl  # noqa: F401
        except ImportError:
            self.has_threadpoolctl = False
            self.note = "default BLAS threads (install threadpoolctl to also try 1)"
        else:
            self.has_threadpoolctl = True
        return None

    @property
    def variants(self):
        return super().variants if self.has_threadpoolctl else {}

    def _limit(self, threads):
        if threads is None:
            return contextlib.nullcontext()
        import threadpoolctl

        return threadpoolctl.threadpool_limits(limits=threads, user_api="blas")

    def _layers(self):
        book = self.book
        w1, b1, w2, b2 = (a.astype(self.dtype) for a in self.problem.arrays)
        dense1 = book.Layer_Dense(2, self.problem.hidden, weight_regularizer_l2=L2,
                                  bias_regularizer_l2=L2)
        dense2 = book.Layer_Dense(self.problem.hidden, 3)
        dense1.weights, dense1.biases, dense2.weights, dense2.biases = w1, b1, w2, b2
        return dense1, dense2

    def run(self, epochs):
        with self._limit(self.threads):
            self._run(epochs)

    def _run(self, epochs):
        book = self.book
        dense1, dense2 = self._layers()
        optimizer = book.Optimizer_Adam(learning_rate=LEARNING_RATE, decay=DECAY)

        def keep(epoch, accuracy, loss, data_loss, reg_loss, rate):
            self.last = (epoch, float(accuracy), float(loss), rate)

        numpy_job.book_epochs(book, self.X, self.y, dense1, dense2, optimizer, epochs,
                              on_epoch=keep)
        if dense1.weights.dtype != self.dtype:
            raise TypeError(f"{self.name}: the weights became {self.dtype}")


class TorchEager(_ThreadChoice):
    """PyTorch eager on CPU: ``nn.Sequential``, the same loss, ``torch.optim.Adam``
    (epsilon outside the root, as the book) with the book's decay via ``LambdaLR``."""

    name = "PyTorch eager"

    def __init__(self, problem: Problem):
        self.problem = problem

    def setup(self):
        import torch

        self.torch = torch
        self.X = torch.from_numpy(np.array(self.problem.X, np.float32))
        self.y = torch.from_numpy(np.array(self.problem.y, np.int64))
        hidden = self.problem.hidden
        self.model = torch.nn.Sequential(torch.nn.Linear(2, hidden), torch.nn.ReLU(),
                                         torch.nn.Linear(hidden, 3))
        w1, b1, w2, b2 = self.problem.arrays
        self.initial = [torch.from_numpy(np.array(a)) for a in (w1.T, b1[0], w2.T, b2[0])]
        self.default_threads = torch.get_num_threads()
        return None

    def _default_threads(self):
        return self.default_threads

    def run(self, epochs):
        torch = self.torch
        torch.set_num_threads(self.threads or self.default_threads)
        try:
            self._run(epochs)
        finally:
            torch.set_num_threads(self.default_threads)

    def _run(self, epochs):
        torch, model = self.torch, self.model
        with torch.no_grad():  # back to the initial weights, as every contender starts
            for param, value in zip(model.parameters(), self.initial):
                param.copy_(value)
        optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE,
                                     betas=(BETA_1, BETA_2), eps=EPSILON)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda count: 1.0 / (1.0 + DECAY * count))
        X, y = self.X, self.y
        first = model[0]
        for epoch in range(epochs):
            logits = model(X)
            probs = torch.clamp(torch.softmax(logits, dim=1), CLIP, 1 - CLIP)
            data_loss = torch.mean(-torch.log(probs.gather(1, y[:, None])[:, 0]))
            reg_loss = L2 * torch.sum(first.weight ** 2) + L2 * torch.sum(first.bias ** 2)
            loss = data_loss + reg_loss
            accuracy = (torch.argmax(logits, dim=1) == y).float().mean()
            if not epoch % 100:
                self.last = (epoch, accuracy.item(), loss.item(), scheduler.get_last_lr()[0])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()


def optional_available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None
