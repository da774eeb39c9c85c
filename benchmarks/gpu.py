"""``--device gpu``: a large MLP's train step, achieved TFLOP/s against a matmul peak
measured in the same run, in float32 and bfloat16.

The model is ``serial(dense(W, W), relu, dense(W, W), relu, dense(W, W), relu,
dense(W, 16))`` trained with ``pn.train_step`` (softmax + CCE, Adam) on a batch of B random
inputs. FLOPs of one step: ``2·B·in·out`` per dense layer forward, as much again for
``dweights`` and for ``dinputs`` (except the first layer's, which XLA drops); elementwise
work and the optimizer are not counted, so the figure is a lower bound.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

import purenn as pn

DESCRIPTION = ("`pn.train_step` of a {width}-wide MLP (3 hidden layers, 16 classes, Adam), "
               "batch {batch}. Achieved TFLOP/s counts the matmuls only; the peak is the "
               "best (batch, W) @ (W, W) matmul in the same run and dtype.")
HEADER = ("dtype", "step, ms (median)", "achieved TFLOP/s", "matmul peak TFLOP/s",
          "fraction of peak", "first call, s")


def has_gpu() -> bool:
    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:
        return False


def _times(fn, *args, reps):
    """Seconds of ``reps`` calls of ``fn(*args)``, after one warm-up call."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return times


def matmul_peak(batch, width, dtype, reps):
    k1, k2 = jax.random.split(jax.random.key(0))
    a, b = (jax.random.normal(k1, (batch, width), dtype),
            jax.random.normal(k2, (width, width), dtype))
    return 2 * batch * width * width / min(_times(jax.jit(jnp.matmul), a, b, reps=reps)) / 1e12


def mlp_step(batch, width, dtype, reps, depth=3, classes=16):
    """``(median step seconds, TFLOP/s, first call seconds)``."""
    shapes = [(width, width)] * depth + [(width, classes)]
    layers = [layer for n_in, n_out in shapes
              for layer in (pn.dense(n_in, n_out, dtype=dtype), pn.relu())]
    model = pn.serial(*layers[:-1])
    k_init, k_x, k_y = jax.random.split(jax.random.key(0), 3)
    params = model.init(k_init)
    X = jax.random.normal(k_x, (batch, width), dtype)
    y = jax.random.randint(k_y, (batch,), 0, classes)
    opt = pn.optimizers.adam(learning_rate=1e-3)
    step = pn.train_step(model, pn.losses.softmax_categorical_crossentropy, opt)
    state, key = opt.init(params), jax.random.key(1)
    start = time.perf_counter()
    jax.block_until_ready(step(params, state, X, y, key))
    first = time.perf_counter() - start
    median = float(np.median(_times(step, params, state, X, y, key, reps=reps)))
    flops = sum(2 * batch * n_in * n_out * (2 if i == 0 else 3)
                for i, (n_in, n_out) in enumerate(shapes))
    return median, flops / median / 1e12, first


def run(batch=8192, width=4096, reps=10, log=print) -> list[tuple]:
    """One row per dtype (float32, bfloat16), columns as ``HEADER``."""
    rows = []
    for dtype in (jnp.float32, jnp.bfloat16):
        peak = matmul_peak(batch, width, dtype, reps)
        median, tflops, first = mlp_step(batch, width, dtype, reps)
        rows.append((jnp.dtype(dtype).name, f"{median * 1e3:.2f}", f"{tflops:.1f}",
                     f"{peak:.1f}", f"{tflops / peak:.0%}", f"{first:.1f}"))
        log("  " + ", ".join(f"{h}: {v}" for h, v in zip(HEADER, rows[-1])))
    return rows
