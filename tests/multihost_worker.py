"""The processes of the multi-device tests, each one ``python -m tests.multihost_worker
PROCESS_ID PORT`` that prints one JSON line:

- PROCESS_ID 0 and 1: two processes joined by ``jax.distributed`` (a 127.0.0.1
  coordinator at PORT), 2 CPU devices each (tests/test_multihost.py);
- PROCESS_ID -1: one process with 4 devices, which makes the same run for comparison and
  also the data-parallel checks of tests/test_data_parallel.py (``"data_parallel"``). The
  tests share it: ``single_process()`` starts it once per test session.

The device count of a process is fixed when JAX starts: each test's devices need a process
of their own."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

import jax
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEVICES = 4
# the data-parallel run: the book's model, 5 epochs in minibatches of 64 (64 and 44 rows)
EPOCHS, BATCH_SIZE = 5, 64


def launch(process_id: int, port: str, devices: int) -> subprocess.Popen:
    """Start one worker with ``devices`` CPU devices."""
    # imported here, in the tests' process: a worker imports purenn (which these helpers
    # import) only after jax.distributed.initialize
    from tests.compiling import with_devices
    from tests.fresh_process import without_compilation_cache

    # no persistent cache: processes joined by jax.distributed compile side by side
    env = dict(without_compilation_cache(), JAX_PLATFORMS="cpu", PURENN_NO_CACHE="1",
               XLA_FLAGS=with_devices(devices))
    env.pop("JAX_ENABLE_X64", None)
    return subprocess.Popen([sys.executable, "-m", "tests.multihost_worker", str(process_id),
                             port], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def result_of(process: subprocess.Popen) -> dict:
    """The JSON line a worker printed, once it has ended well."""
    out, err = process.communicate(timeout=240)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


@functools.cache
def single_process() -> dict:
    """The result of the one process with 4 devices (PROCESS_ID -1)."""
    return result_of(launch(-1, "0", DEVICES))


def multihost_run() -> dict:
    """20 sharded SGD steps of a small model, then a 21-epoch fit that logs every 10: the
    run the two joined processes and the single one make alike."""
    import purenn as pn  # after jax.distributed.initialize

    X, y = pn.data.spiral(jax.random.key(1), 100, 3)  # 300 samples: 75 per device
    model = pn.serial(pn.dense(2, 16), pn.relu(), pn.dense(16, 3))
    loss = pn.losses.softmax_categorical_crossentropy
    opt = pn.optimizers.sgd(learning_rate=0.5, momentum=0.9)
    mesh = jax.make_mesh((jax.device_count(),), ("data",))
    step = pn.train_step(model, loss, opt, mesh=mesh)
    params = model.init(jax.random.key(2))
    state = opt.init(params)
    losses = []
    for i in range(20):
        params, state, metrics = step(params, state, X, y,
                                      jax.random.fold_in(jax.random.key(3), i))
        losses.append(float(metrics["loss"]))
    lines = []
    pn.fit(model, loss, opt, model.init(jax.random.key(2)), X, y, key=jax.random.key(4),
           epochs=21, log_every=10, log_fn=lines.append, mesh=mesh)
    weights = np.asarray(params[0]["weights"].addressable_data(0))
    return {"devices": jax.device_count(), "processes": jax.process_count(),
            "losses": losses, "weights": weights.tolist(), "lines": lines}


def data_parallel_run() -> dict:
    """The book's model fitted on a mesh over every device, and a one-layer model's
    sharded step (quick to compile): does its program sum the gradients over the devices,
    and is a batch that does not divide over them refused?"""
    import purenn as pn
    from tests.fresh_process import book_data, book_model

    X, y, _ = book_data()
    model, loss = book_model(), pn.losses.softmax_categorical_crossentropy
    opt = pn.optimizers.adam(learning_rate=0.05, decay=5e-5)
    mesh = jax.make_mesh((jax.device_count(),), ("data",))
    fitted, _, history = pn.fit(model, loss, opt, model.init(jax.random.key(2)), X, y,
                                key=jax.random.key(3), epochs=EPOCHS, batch_size=BATCH_SIZE,
                                log_fn=None, mesh=mesh)
    result = {"loss": history["loss"].tolist(),
              "params": [np.asarray(leaf).tolist() for leaf in jax.tree.leaves(fitted)],
              "param_devices": [len(leaf.sharding.device_set)
                                for leaf in jax.tree.leaves(fitted)]}
    tiny, sgd = pn.serial(pn.dense(2, 3)), pn.optimizers.sgd()
    tiny_params = tiny.init(jax.random.key(0))
    sharded = pn.train_step(tiny, loss, sgd, mesh=mesh)
    hlo = sharded.lower(tiny_params, sgd.init(tiny_params), X, y,
                        jax.random.key(0)).compile().as_text()
    result["all_reduce"] = "all-reduce" in hlo
    try:
        sharded(tiny_params, sgd.init(tiny_params), X[:-1], y[:-1], jax.random.key(0))
        result["uneven"] = "no error"
    except ValueError as err:
        result["uneven"] = str(err)
    return result


def main(process_id: int, port: str) -> None:
    if process_id >= 0:  # before anything else of JAX runs
        jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}",
                                   num_processes=2, process_id=process_id)
    result = multihost_run()
    if process_id < 0:
        result["data_parallel"] = data_parallel_run()
    print(json.dumps(result))


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
