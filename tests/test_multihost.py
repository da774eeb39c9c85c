"""Several hosts: two processes joined by ``jax.distributed`` (a 127.0.0.1 coordinator,
2 CPU devices each) train exactly as one process with 4 devices, and only process 0
prints the log (the processes: tests/multihost_worker.py)."""

import socket

import numpy as np
import pytest

from tests.multihost_worker import launch, result_of, single_process


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_train_as_one_process_with_four_devices():
    port = str(_free_port())
    workers = [launch(i, port, 2) for i in (0, 1)]
    alone = single_process()  # shared with tests/test_data_parallel.py
    first, second = (result_of(w) for w in workers)
    assert first["devices"] == second["devices"] == alone["devices"] == 4
    assert first["processes"] == second["processes"] == 2 and alone["processes"] == 1
    for run in (first, second):
        np.testing.assert_allclose(run["losses"], alone["losses"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(run["weights"], alone["weights"], rtol=1e-5, atol=1e-6)
    assert [line.split(",")[0] for line in first["lines"]] == ["epoch: 0", "epoch: 10",
                                                              "epoch: 20"]
    assert second["lines"] == []  # only process 0 logs
    assert first["lines"] == alone["lines"]
