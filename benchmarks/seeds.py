"""Many seeds at once: S independent runs of the book model, several ways.

- ``S × pn.fit``: what a user writes first, one run after another.
- ``S × training program``: fit's compiled loop (``train._run_program``), called directly
  once per ``CHUNK`` epochs of each seed: no host work between chunks beyond the call.
- ``vmap``: the same loop vmapped over seeds (``train._runs_program``, what
  ``fit_seeds`` runs): one XLA program whose matmuls are batched over seeds.
- ``block-stacked``: the S models laid side by side in one model: one (2, S·H) first layer
  (purenn's dense op and ReLU, with their hand-written VJPs), a batched second layer
  ``einsum('nsh,shc->snc')``, the book's loss per seed (``vmap`` of purenn's loss op),
  summed, and purenn's Adam over the stacked params. Adam is elementwise and each seed's
  loss depends only on its own block, so this is the same S runs, value for value up to
  summation order.
- ``seed-major``: the same stack with the seed axis first, (S, N, H): the first layer as
  broadcast products (K = 2), the second a grouped dense op (a ``custom_vjp`` whose
  ``dweights`` is a row-major batched GEMM, the layout purenn's dense op uses on CPU, and
  whose ``dinputs``, K = 3, is a sum of broadcast products), so that no batched dot
  contracts the batch axis.
- ``fit_seeds``: ``purenn.experiments.fit_seeds`` (the CLI's ``--seeds``), where present.

Every method runs purenn as shipped: the ones built from purenn's ops (all but
``seed-major``'s own second layer) use its dense op, row-major ``dweights`` included, once.

All start each seed from ``model.init(key_s)`` and end with per-seed metrics. Runs of
1000 epochs drift apart through ReLU units that flip on rounding noise (see BOOK.md), so
the methods are compared on the loss of epoch 10.
"""

from __future__ import annotations

import contextlib
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import purenn as pn
from benchmarks.contenders import DECAY, L2, LEARNING_RATE, book_model
from purenn import train


def _setup(samples, hidden, seeds):
    k_data, k_init = jax.random.split(jax.random.key(0))
    X, y = pn.data.spiral(k_data, samples // 3, 3)
    model = book_model(hidden)
    keys = jax.random.split(k_init, seeds)
    params = [model.init(k) for k in keys]
    return model, X, y, params


@jax.custom_vjp
def grouped_dense(h, w, b):
    """S dense layers at once: ``h (S, N, H) @ w (S, H, C) + b (S, 1, C)``."""
    return h @ w + b


def _grouped_dense_fwd(h, w, b):
    return h @ w + b, (h, w)


def _grouped_dense_bwd(residuals, dvalues):
    h, w = residuals
    # dinputs = dvalues @ w^T, contraction over C (3 classes): broadcast products.
    dh = dvalues[:, :, 0:1] * w[:, None, :, 0]
    for c in range(1, w.shape[2]):
        dh = dh + dvalues[:, :, c:c + 1] * w[:, None, :, c]
    # dweights = h^T @ dvalues per seed, as a row-major batched GEMM (as purenn's dense).
    dw_t = lax.optimization_barrier(jnp.swapaxes(dvalues, 1, 2)) @ h  # (S, C, H)
    dw = jnp.swapaxes(lax.optimization_barrier(dw_t), 1, 2)
    return dh, dw, jnp.sum(dvalues, axis=1, keepdims=True)


grouped_dense.defvjp(_grouped_dense_fwd, _grouped_dense_bwd)

COMPARE_EPOCH = 10


def _stack(trees):
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


class Methods:
    """Each method: ``prepare()`` compiles, ``go()`` runs all seeds and returns the
    per-seed loss of the last epoch (a NumPy array of S values)."""

    def __init__(self, samples, hidden, seeds, epochs, context):
        self.samples, self.hidden, self.seeds, self.epochs = samples, hidden, seeds, epochs
        self.context = context
        self.model, self.X, self.y, self.params = _setup(samples, hidden, seeds)
        self.loss = pn.losses.softmax_categorical_crossentropy
        self.opt = pn.optimizers.adam(learning_rate=LEARNING_RATE, decay=DECAY)
        self.accuracy = train.default_accuracy(self.loss)
        self.key = jax.random.key(1)
        self._compare = min(COMPARE_EPOCH, epochs - 1)

    # -- S × pn.fit
    def fit_prepare(self):
        with self.context():
            self.fit_go()

    def fit_go(self):
        losses = []
        with self.context():
            for params in self.params:
                _, _, history = pn.fit(self.model, self.loss, self.opt, params, self.X, self.y,
                                       key=self.key, epochs=self.epochs, log_every=100,
                                       log_fn=None, progress=False)
                losses.append(history["loss"][min(COMPARE_EPOCH, self.epochs - 1)])
        return np.asarray(losses)

    # -- S × training program and vmap
    def _chunks(self):
        return [(start, min(train.CHUNK, self.epochs - start))
                for start in range(0, self.epochs, train.CHUNK)]

    def scan_prepare(self):
        with self.context():
            components = train._Components(self.model, self.loss, self.opt, self.accuracy,
                                           None)
            self.dynamic, static = train._partition(components)
            self.states = []
            for params in self.params:
                opt_state = self.opt.init(params)
                self.states.append(train.RunState(params, opt_state, params, opt_state))
            start = time.perf_counter()
            self.scan_compiled = train._run_program.lower(
                static, None, self.dynamic, self.states[0], self.X, self.y, self.key,
                np.int32(0), np.int32(train.CHUNK)).compile()
            self.runs_compiled = None
            return time.perf_counter() - start

    def scan_go(self):
        losses = []
        for state in self.states:
            for first, length in self._chunks():
                result = self.scan_compiled(self.dynamic, state, self.X, self.y, self.key,
                                            np.int32(first), np.int32(length))
                state = result.state
                if first == 0:
                    losses.append(np.asarray(result.metrics["loss"][self._compare]))
            jax.block_until_ready(state)
        return np.asarray(losses)

    def vmap_prepare(self):
        with self.context():
            components = train._Components(self.model, self.loss, self.opt, self.accuracy,
                                           None)
            self.dynamic, static = train._partition(components)
            params = _stack(self.params)
            opt_state = jax.vmap(self.opt.init)(params)
            S = self.seeds
            self.stacked = (train.RunState(params, opt_state, params, opt_state),
                            jnp.stack([self.X] * S), jnp.stack([self.y] * S),
                            jnp.stack([self.key] * S))
            start = time.perf_counter()
            self.vmap_compiled = train._runs_program.lower(
                static, None, False, self.dynamic, *self.stacked, np.int32(0),
                np.int32(train.CHUNK)).compile()
            return time.perf_counter() - start

    def vmap_go(self):
        state, X, y, keys = self.stacked
        for first, length in self._chunks():
            result = self.vmap_compiled(self.dynamic, state, X, y, keys, np.int32(first),
                                        np.int32(length))
            state = result.state
            if first == 0:
                losses = np.asarray(result.metrics["loss"][:, self._compare])
        jax.block_until_ready(state)
        return losses

    # -- block-stacked
    def block_prepare(self):
        S, H = self.seeds, self.hidden
        first = [p[0] for p in self.params]
        second = [p[2] for p in self.params]
        params = {
            "w1": jnp.concatenate([f["weights"] for f in first], axis=1),  # (2, S*H)
            "b1": jnp.concatenate([f["biases"] for f in first], axis=1),  # (1, S*H)
            "w2": jnp.stack([s["weights"] for s in second]),  # (S, H, 3)
            "b2": jnp.stack([s["biases"] for s in second]),  # (S, 1, 3)
        }
        opt, epochs = self.opt, self.epochs
        per_seed_loss = jax.vmap(pn.losses.softmax_categorical_crossentropy, in_axes=(0, None))
        per_seed_accuracy = jax.vmap(pn.losses.categorical_accuracy, in_axes=(0, None))

        def objective(p, X, y):
            hidden = pn.ops.relu(pn.ops.dense(X, p["w1"], p["b1"]))  # (N, S*H)
            hidden = hidden.reshape(X.shape[0], S, H)
            logits = jnp.einsum("nsh,shc->snc", hidden, p["w2"]) + p["b2"]  # (S, N, 3)
            data_loss = per_seed_loss(logits, y)  # (S,)
            reg_loss = pn.ops.l2_penalty(p["w1"], L2) + pn.ops.l2_penalty(p["b1"], L2)
            return jnp.sum(data_loss) + reg_loss, (data_loss, logits)

        def run(params, opt_state, X, y):
            def epoch(carry, _):
                params, opt_state = carry
                (_, (data_loss, logits)), grads = jax.value_and_grad(
                    objective, has_aux=True)(params, X, y)
                w1 = params["w1"].reshape(2, S, H)
                b1 = params["b1"].reshape(1, S, H)
                reg_loss = L2 * (jnp.sum(w1 * w1, axis=(0, 2)) + jnp.sum(b1 * b1, axis=(0, 2)))
                metrics = {"loss": data_loss + reg_loss, "data_loss": data_loss,
                           "reg_loss": reg_loss, "accuracy": per_seed_accuracy(logits, y),
                           "learning_rate": pn.optimizers.current_learning_rate(opt_state)}
                updates, opt_state = opt.update(grads, opt_state, params)
                return (pn.optimizers.apply_updates(params, updates), opt_state), metrics

            (params, opt_state), metrics = lax.scan(epoch, (params, opt_state), None,
                                                    length=epochs)
            return params, opt_state, metrics

        with self.context():
            self.block_args = (params, opt.init(params))
            start = time.perf_counter()
            self.block_compiled = jax.jit(run).lower(*self.block_args, self.X,
                                                     self.y).compile()
            return time.perf_counter() - start

    def block_go(self):
        _, _, metrics = self.block_compiled(*self.block_args, self.X, self.y)
        return np.asarray(metrics["loss"][self._compare])


class SeedMajor:
    """The seed-major stack (see the module docstring), compiled as one whole-run scan."""

    def __init__(self, methods: Methods):
        self.m = methods

    def prepare(self):
        m = self.m
        params = {
            "w1": jnp.stack([p[0]["weights"] for p in m.params]),  # (S, 2, H)
            "b1": jnp.stack([p[0]["biases"] for p in m.params]),  # (S, 1, H)
            "w2": jnp.stack([p[2]["weights"] for p in m.params]),  # (S, H, 3)
            "b2": jnp.stack([p[2]["biases"] for p in m.params]),  # (S, 1, 3)
        }
        opt, epochs = m.opt, m.epochs
        per_seed_loss = jax.vmap(pn.losses.softmax_categorical_crossentropy, in_axes=(0, None))
        per_seed_accuracy = jax.vmap(pn.losses.categorical_accuracy, in_axes=(0, None))

        def objective(p, X, y):
            pre = (X[None, :, 0:1] * p["w1"][:, 0:1, :] + X[None, :, 1:2] * p["w1"][:, 1:2, :]
                   + p["b1"])  # (S, N, H)
            logits = grouped_dense(pn.ops.relu(pre), p["w2"], p["b2"])  # (S, N, 3)
            data_loss = per_seed_loss(logits, y)
            reg_loss = pn.ops.l2_penalty(p["w1"], L2) + pn.ops.l2_penalty(p["b1"], L2)
            return jnp.sum(data_loss) + reg_loss, (data_loss, logits)

        def run(params, opt_state, X, y):
            def epoch(carry, _):
                params, opt_state = carry
                (_, (data_loss, logits)), grads = jax.value_and_grad(
                    objective, has_aux=True)(params, X, y)
                reg_loss = L2 * (jnp.sum(params["w1"] ** 2, axis=(1, 2))
                                 + jnp.sum(params["b1"] ** 2, axis=(1, 2)))
                metrics = {"loss": data_loss + reg_loss, "data_loss": data_loss,
                           "reg_loss": reg_loss, "accuracy": per_seed_accuracy(logits, y),
                           "learning_rate": pn.optimizers.current_learning_rate(opt_state)}
                updates, opt_state = opt.update(grads, opt_state, params)
                return (pn.optimizers.apply_updates(params, updates), opt_state), metrics

            (params, opt_state), metrics = lax.scan(epoch, (params, opt_state), None,
                                                    length=epochs)
            return params, opt_state, metrics

        with m.context():
            self.args = (params, opt.init(params))
            start = time.perf_counter()
            self.compiled = jax.jit(run).lower(*self.args, m.X, m.y).compile()
            return time.perf_counter() - start

    def go(self):
        _, _, metrics = self.compiled(*self.args, self.m.X, self.m.y)
        return np.asarray(metrics["loss"][self.m._compare])


class FitSeeds:
    """``purenn.experiments.fit_seeds`` (the CLI's ``--seeds``, vmap over runs with
    per-run data), where this version of purenn has it; fed the same data for every run."""

    def __init__(self, methods: Methods):
        self.m = methods
        try:
            from purenn import experiments
        except ImportError:
            experiments = None
        self.fit_seeds = getattr(experiments, "fit_seeds", None)
        self.available = self.fit_seeds is not None

    def prepare(self):
        m = self.m
        S = m.seeds
        self.args = (_stack(m.params), jnp.stack([m.X] * S), jnp.stack([m.y] * S))
        self.keys = jnp.stack([m.key] * S)
        start = time.perf_counter()
        with m.context():
            self.go()
        return time.perf_counter() - start  # compile + one run

    def go(self):
        m = self.m
        with m.context():
            _, _, history = self.fit_seeds(m.model, m.loss, m.opt, *self.args, keys=self.keys,
                                           epochs=m.epochs, progress=False)
        return np.asarray(history["loss"][:, m._compare])


def measure_seeds(*, samples, hidden, seeds, epochs, reps, context=contextlib.nullcontext,
                  log=None):
    """Time each method ``reps`` times, interleaved. Returns rows of
    ``(method, median seconds, compile seconds or None, max relative difference of the
    per-seed losses of epoch 10 from the sequential runs', all times)``."""
    m = Methods(samples, hidden, seeds, epochs, context)
    methods = [
        (f"{seeds} × pn.fit (sequential)", m.fit_prepare, m.fit_go),
        (f"{seeds} × fit's training program (sequential)", m.scan_prepare, m.scan_go),
        ("vmap over seeds of fit's training program", m.vmap_prepare, m.vmap_go),
        ("block-stacked: one (2, S·H) layer + batched second layer", m.block_prepare,
         m.block_go),
    ]
    seed_major = SeedMajor(m)
    methods.append(("seed-major (S, N, H) stack + grouped dense op", seed_major.prepare,
                    seed_major.go))
    fit_seeds = FitSeeds(m)
    if fit_seeds.available:
        methods.append(("purenn.experiments.fit_seeds (vmap; the CLI's --seeds)",
                        fit_seeds.prepare, fit_seeds.go))
    compile_s, finals, times = {}, {}, {name: [] for name, _, _ in methods}
    for name, prepare, go in methods:
        compile_s[name] = prepare()
        finals[name] = go()  # warm-up, and the values to compare
    reference = finals[methods[1][0]]
    for rep in range(reps):
        order = methods[rep % len(methods):] + methods[:rep % len(methods)]
        for name, _, go in order:
            start = time.perf_counter()
            go()
            times[name].append(time.perf_counter() - start)
        if log is not None:
            log(f"    seeds rep {rep + 1}/{reps} done")
    rows = []
    for name, _, _ in methods:
        diff = float(np.max(np.abs(finals[name] - reference) / np.abs(reference)))
        rows.append((name, float(np.median(times[name])), compile_s[name], diff,
                     times[name]))
    return rows
