"""Several hosts: two processes joined by ``jax.distributed`` (a 127.0.0.1 coordinator,
2 CPU devices each) train exactly as one process with 4 devices, and only process 0
prints the log."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.compiling import with_devices
from tests.fresh_process import without_compilation_cache

WORKER = Path(__file__).with_name("multihost_worker.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(devices: int) -> dict:
    # no persistent cache: processes joined by jax.distributed compile side by side
    env = dict(without_compilation_cache(), JAX_PLATFORMS="cpu", PURENN_NO_CACHE="1",
               XLA_FLAGS=with_devices(devices))
    env.pop("JAX_ENABLE_X64", None)
    return env


def _result(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=240)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
def test_two_processes_train_as_one_process_with_four_devices():
    port = str(_free_port())
    workers = [subprocess.Popen([sys.executable, str(WORKER), str(i), port], env=_env(2),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for i in (0, 1)]
    single = subprocess.Popen([sys.executable, str(WORKER), "-1", port], env=_env(4),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first, second = (_result(w) for w in workers)
    alone = _result(single)
    assert first["devices"] == second["devices"] == alone["devices"] == 4
    assert first["processes"] == second["processes"] == 2 and alone["processes"] == 1
    for run in (first, second):
        np.testing.assert_allclose(run["losses"], alone["losses"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(run["weights"], alone["weights"], rtol=1e-5, atol=1e-6)
    assert [line.split(",")[0] for line in first["lines"]] == ["epoch: 0", "epoch: 10",
                                                              "epoch: 20"]
    assert second["lines"] == []  # only process 0 logs
    assert first["lines"] == alone["lines"]
