"""One process of the multi-host test (tests/test_multihost.py), or the single-process
run it is compared with: ``python multihost_worker.py PROCESS_ID PORT`` (PROCESS_ID -1:
one process, no ``jax.distributed``). Prints one JSON line."""

import json
import sys

import jax

process_id, port = int(sys.argv[1]), sys.argv[2]
if process_id >= 0:
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                               process_id=process_id)

import numpy as np  # noqa: E402

import purenn as pn  # noqa: E402

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
    params, state, metrics = step(params, state, X, y, jax.random.fold_in(jax.random.key(3), i))
    losses.append(float(metrics["loss"]))
lines = []
pn.fit(model, loss, opt, model.init(jax.random.key(2)), X, y, key=jax.random.key(4),
       epochs=21, log_every=10, log_fn=lines.append, mesh=mesh)
weights = np.asarray(params[0]["weights"].addressable_data(0))
print(json.dumps({"devices": jax.device_count(), "processes": jax.process_count(),
                  "losses": losses, "weights": weights.tolist(), "lines": lines}))
