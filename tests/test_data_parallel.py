"""Data parallelism over 8 virtual CPU devices reproduces the single-device run.

The device count of a process is fixed when JAX starts, so the comparison runs in a
subprocess with ``XLA_FLAGS=--xla_force_host_platform_device_count=8``.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import json
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    import purenn as pn

    assert jax.device_count() == 8, jax.devices()
    X, y = pn.data.spiral(jax.random.key(1), 800, 3)          # 2400 samples, 300 per device
    model = pn.serial(pn.dense(2, 64, weight_l2=5e-4, bias_l2=5e-4), pn.relu(),
                      pn.dropout(0.1), pn.dense(64, 3))       # the chapter-15 model
    loss = pn.losses.softmax_categorical_crossentropy
    opt = pn.optimizers.sgd(learning_rate=1.0, momentum=0.9)
    params = model.init(jax.random.key(2))
    mesh = jax.make_mesh((8,), ("data",))
    result = {"axis_types": str(mesh.axis_types)}

    single = pn.train_step(model, loss, opt)
    sharded = pn.train_step(model, loss, opt, mesh=mesh)
    p1, s1, p8, s8 = params, opt.init(params), params, opt.init(params)
    result["loss_1"], result["loss_8"] = [], []
    for i in range(20):
        key = jax.random.fold_in(jax.random.key(3), i)
        p1, s1, m1 = single(p1, s1, X, y, key)
        p8, s8, m8 = sharded(p8, s8, X, y, key)
        result["loss_1"].append(float(m1["loss"]))
        result["loss_8"].append(float(m8["loss"]))
    result["params_diff"] = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                                for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p8)))
    result["param_devices"] = min(len(leaf.sharding.device_set) for leaf in jax.tree.leaves(p8))
    hlo = sharded.lower(params, opt.init(params), X, y, jax.random.key(0)).compile().as_text()
    result["all_reduce"] = "all-reduce" in hlo

    _, _, h1 = pn.fit(model, loss, opt, params, X, y, key=jax.random.key(4), epochs=20,
                      batch_size=800, log_fn=None)
    fitted, _, h8 = pn.fit(model, loss, opt, params, X, y, key=jax.random.key(4), epochs=20,
                           batch_size=800, log_fn=None, mesh=mesh)
    result["fit_loss_diff"] = float(np.max(np.abs(h1["loss"] - h8["loss"])))
    result["fit_devices"] = len(fitted[0]["weights"].sharding.device_set)

    try:
        sharded(params, opt.init(params), X[:2399], y[:2399], jax.random.key(0))
        result["uneven"] = "no error"
    except ValueError as err:
        result["uneven"] = str(err)
    print(json.dumps(result))
""")


@pytest.fixture(scope="module")
def result():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
               JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, timeout=600, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_eight_devices_give_the_single_device_losses_and_params(result):
    for one, eight in zip(result["loss_1"], result["loss_8"]):
        assert abs(one - eight) <= 1e-5 * abs(one)
    assert result["params_diff"] < 1e-5


def test_params_are_replicated_on_all_eight_devices(result):
    assert result["param_devices"] == 8
    assert result["fit_devices"] == 8


def test_gradients_are_reduced_across_devices(result):
    assert result["all_reduce"]


def test_fit_on_a_mesh_equals_fit_on_one_device(result):
    assert result["fit_loss_diff"] < 1e-8


def test_an_uneven_batch_is_a_clear_error(result):
    assert result["uneven"].startswith(
        "x: a batch of 2399 samples does not divide evenly over the 8 devices of mesh axis "
        "'data'; use a batch size (or sample count) that is a multiple of 8")
