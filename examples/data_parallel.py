"""Data-parallel training: the chapter-15 model with its batch split over every device.

    python examples/data_parallel.py                      # all local devices
    XLA_FLAGS=--xla_force_host_platform_device_count=8 \\
        python examples/data_parallel.py                  # 8 virtual CPU devices

On several hosts, start the same script on each one with the coordinator's address
(see docs/data-parallel.md): ``jax.distributed.initialize`` makes ``jax.devices()`` span them all.
"""

import argparse
import os

import jax

import purenn as pn


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1001)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--multi-host", action="store_true",
                        help="call jax.distributed.initialize() first (set the "
                             "JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID "
                             "environment variables on every host)")
    args = parser.parse_args()
    if args.multi_host:
        jax.distributed.initialize(
            coordinator_address=os.environ["JAX_COORDINATOR_ADDRESS"],
            num_processes=int(os.environ["JAX_NUM_PROCESSES"]),
            process_id=int(os.environ["JAX_PROCESS_ID"]))

    n = jax.device_count()
    mesh = jax.make_mesh((n,), ("data",))
    print(f"training on {n} device(s): {mesh}")

    k_data, k_val, k_init, k_fit = jax.random.split(jax.random.key(args.seed), 4)
    samples = 1000 - 1000 % n  # per class; 3 * samples must divide over the devices
    X, y = pn.data.spiral(k_data, samples, 3)
    X_val, y_val = pn.data.spiral(k_val, 100, 3)
    model = pn.serial(
        pn.dense(2, 64, weight_l2=5e-4, bias_l2=5e-4),
        pn.relu(),
        pn.dropout(0.1),
        pn.dense(64, 3),
    )
    optimizer = pn.optimizers.adam(learning_rate=0.05, decay=5e-5)
    params, _, _ = pn.fit(model, pn.losses.softmax_categorical_crossentropy, optimizer,
                          model.init(k_init), X, y, key=k_fit, epochs=args.epochs,
                          validation_data=(X_val, y_val), mesh=mesh)
    print("params live on", len(params[0]["weights"].sharding.device_set), "device(s)")


if __name__ == "__main__":
    main()
