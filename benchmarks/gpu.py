"""``--device gpu``: a large MLP's train step, achieved TFLOP/s against a matmul peak
measured in the same run, in float32 and bfloat16.

The model is ``serial(dense(W, W), relu, dense(W, W), relu, dense(W, W), relu,
dense(W, 16))`` (W = 4096 by default) trained with ``pn.train_step`` (softmax + CCE, Adam)
on a batch of B = 8192 random inputs. FLOPs of one step: forward ``2·B·in·out`` per dense
layer, backward ``2·B·in·out`` for ``dweights`` plus ``2·B·in·out`` for ``dinputs``
(except the first layer, whose ``dinputs`` XLA drops as unused); elementwise work and the
optimizer are not counted, so the figure is a lower bound of what the chip does.
The peak is the best of a few ``(B, W) @ (W, W)`` matmuls in the same dtype.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

import purenn as pn


def _median_time(fn, *args, reps=10):
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return float(np.median(times)), float(np.min(times))


def matmul_peak(batch, width, dtype, reps=10):
    k1, k2 = jax.random.split(jax.random.key(0))
    a = jax.random.normal(k1, (batch, width), dtype)
    b = jax.random.normal(k2, (width, width), dtype)
    matmul = jax.jit(lambda a, b: a @ b)
    _, best = _median_time(matmul, a, b, reps=reps)
    return 2 * batch * width * width / best / 1e12


def train_step_flops(batch, layer_shapes):
    total = 0
    for i, (n_in, n_out) in enumerate(layer_shapes):
        total += 2 * batch * n_in * n_out * (2 if i == 0 else 3)
    return total


def mlp_step(batch, width, dtype, depth=3, classes=16, reps=10):
    shapes = [(width, width)] * depth + [(width, classes)]
    layers = []
    for n_in, n_out in shapes:
        layers += [pn.dense(n_in, n_out, dtype=dtype), pn.relu()]
    model = pn.serial(*layers[:-1])
    k_init, k_x, k_y = jax.random.split(jax.random.key(0), 3)
    params = model.init(k_init)
    X = jax.random.normal(k_x, (batch, width), dtype)
    y = jax.random.randint(k_y, (batch,), 0, classes)
    opt = pn.optimizers.adam(learning_rate=1e-3)
    step = pn.train_step(model, pn.losses.softmax_categorical_crossentropy, opt)
    state = opt.init(params)
    start = time.perf_counter()
    jax.block_until_ready(step(params, state, X, y, jax.random.key(1)))
    first = time.perf_counter() - start

    def one(params, state):
        return step(params, state, X, y, jax.random.key(1))

    median, best = _median_time(one, params, state, reps=reps)
    flops = train_step_flops(batch, shapes)
    return {"median_s": median, "best_s": best, "first_call_s": first,
            "tflops": flops / median / 1e12, "flops": flops}


def has_gpu() -> bool:
    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:
        return False


def run_gpu(batch=8192, width=4096, reps=10, log=print):
    """Rows ``(dtype, step ms, achieved TFLOP/s, matmul peak TFLOP/s, fraction)``."""
    rows = []
    for dtype in (jnp.float32, jnp.bfloat16):
        name = jnp.dtype(dtype).name
        peak = matmul_peak(batch, width, dtype, reps=reps)
        step = mlp_step(batch, width, dtype, reps=reps)
        rows.append((name, step["median_s"] * 1e3, step["tflops"], peak, step["tflops"] / peak,
                     step["first_call_s"]))
        log(f"  {name}: step {step['median_s'] * 1e3:.2f} ms, {step['tflops']:.1f} TFLOP/s "
            f"of a {peak:.1f} TFLOP/s matmul peak ({step['tflops'] / peak:.0%})")
    return rows
