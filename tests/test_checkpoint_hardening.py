"""purenn.checkpoint at the edges of the file system: what load refuses to open or read
(FIFOs, devices, folders, truncated files), file names up to NAME_MAX, byte-reproducible
files, clean-up after killed saves, symbolic links and permission bits, and the paths save
refuses before doing any work. Each test runs in float32 (JAX's default) or, with the
``x64`` fixture, in both modes."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purenn import checkpoint

needs_symlinks = pytest.mark.skipif(not hasattr(os, "symlink") or sys.platform == "win32",
                                    reason="needs symbolic links")
needs_fifos = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")


def small_tree():
    """A checkpoint's kinds of leaves, in the current mode's default float dtype."""
    return {"params": ({"weights": jnp.arange(6.0).reshape(2, 3), "biases": jnp.zeros((1, 3))},
                       ()),
            "count": jnp.asarray(3, jnp.int32), "learning_rate": jnp.asarray(0.05),
            "key": jax.random.key(1)}


def fingerprint(x):
    if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        return str(x.dtype), np.asarray(jax.random.key_data(x)).tobytes()
    return str(x.dtype), getattr(x, "weak_type", False), x.shape, np.asarray(x).tobytes()


def assert_identical(restored, original):
    assert jax.tree.structure(restored) == jax.tree.structure(original)
    assert jax.tree.leaves(jax.tree.map(fingerprint, restored)) == \
        jax.tree.leaves(jax.tree.map(fingerprint, original))


def temp_files(folder: Path) -> set[str]:
    return {name for name in os.listdir(folder) if name.endswith(".tmp")}


def shown(path) -> str:
    """``path`` as the messages show it, escaped for a regex."""
    return re.escape(repr(str(path)))


# --- what load refuses to open ---------------------------------------------------------


@needs_fifos
def test_load_refuses_a_fifo_without_blocking(tmp_path):
    fifo = tmp_path / "run.safetensors"
    os.mkfifo(fifo)
    outcome = []

    def load():
        try:
            checkpoint.load(fifo)
        except Exception as err:  # noqa: BLE001 - handed to the test thread
            outcome.append(err)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(timeout=10)
    if thread.is_alive():  # blocked in open: a writer that closes at once unblocks it
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(timeout=10)
        pytest.fail("load blocked on a FIFO")
    assert len(outcome) == 1 and isinstance(outcome[0], ValueError), outcome
    assert re.search(f"checkpoint {shown(fifo)} is a FIFO, not a regular file",
                     str(outcome[0]))


@needs_symlinks
@pytest.mark.parametrize("device", ["/dev/null", "/dev/zero"])
def test_load_refuses_a_link_to_a_device(tmp_path, device):
    """/dev/zero never ends: reading it would grow without bound."""
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    link = tmp_path / "run.safetensors"
    link.symlink_to(device)
    with pytest.raises(ValueError, match=f"checkpoint {shown(link)} \\(a link to "
                                         f"{shown(device)}\\) is a character device, not "
                                         f"a regular file"):
        checkpoint.load(link)


def test_load_of_a_folder_names_the_fix(tmp_path):
    checkpoint.save(tmp_path / "run.safetensors", {"a": jnp.ones(2)})
    with pytest.raises(IsADirectoryError, match=f"checkpoint {shown(tmp_path)} is a folder; "
                                                f"pass the .safetensors file"):
        checkpoint.load(tmp_path)


def test_load_of_an_empty_path_is_refused():
    with pytest.raises(ValueError, match="checkpoint.load: the path is empty"):
        checkpoint.load("")


# --- what load refuses to read ---------------------------------------------------------


def saved_bytes(tmp_path: Path, tree) -> bytes:
    checkpoint.save(tmp_path / "good.safetensors", tree)
    return (tmp_path / "good.safetensors").read_bytes()


CUTS = {  # where to cut a checkpoint, and what load must then say
    "0 bytes": (lambda n, size: 0, r"is empty \(0 bytes\), not a safetensors file"),
    "4 bytes": (lambda n, size: 4,
                r"has 4 bytes, fewer than the 8 of its header length; it is truncated"),
    "8 bytes": (lambda n, size: 8,
                r"header length says \d+ bytes, but 0 follow; it is truncated"),
    "half the header": (lambda n, size: 8 + n // 2,
                        r"header length says \d+ bytes, but \d+ follow; it starts like "
                        r"one, so it is truncated"),
    "half the data": (lambda n, size: (8 + n + size) // 2,
                      r"it is truncated \(its header declares \d+ bytes, the file has \d+\)"),
    "all but a byte": (lambda n, size: size - 1,
                       r"it is truncated \(its header declares (\d+) bytes, the file has "),
}


@pytest.mark.parametrize("cut", CUTS)
def test_a_truncated_checkpoint_is_reported_as_truncated(tmp_path, cut):
    data = saved_bytes(tmp_path, small_tree())
    keep, message = CUTS[cut]
    path = tmp_path / "cut.safetensors"
    path.write_bytes(data[:keep(int.from_bytes(data[:8], "little"), len(data))])
    with pytest.raises(ValueError, match=f"checkpoint {shown(path)} .*{message}") as info:
        checkpoint.load(path)
    assert "pickle" not in str(info.value)


def test_a_header_length_that_starts_like_a_pickle_is_still_truncated(tmp_path):
    """A header of 0x380 bytes starts the file with b"\\x80\\x03", as a protocol 3 pickle."""
    shortest = int.from_bytes(saved_bytes(tmp_path, {"w": jnp.ones(2)})[:8], "little")
    for width in range(0x380 - shortest - 8, 0x380 - shortest + 16):  # one name byte more,
        data = saved_bytes(tmp_path, {"w" * width: jnp.ones(2)})  # one header byte more
        if data[:2] == b"\x80\x03":
            break
    else:
        pytest.fail("no name length gives a header of 0x380 bytes")
    path = tmp_path / "cut.safetensors"
    for keep in [4, 8, 100]:
        path.write_bytes(data[:keep])
        with pytest.raises(ValueError, match="truncated") as info:
            checkpoint.load(path)
        assert "pickle" not in str(info.value)


def test_a_header_length_beyond_the_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.safetensors"
    path.write_bytes((2**40).to_bytes(8, "little") + b'{"a":')
    with pytest.raises(ValueError, match=f"checkpoint {shown(path)} is not a valid "
                                         f"safetensors file: its header length says "
                                         f"{2**40} bytes, but 5 follow; it starts like one, "
                                         f"so it is truncated or corrupted"):
        checkpoint.load(path)


# --- names up to NAME_MAX --------------------------------------------------------------


def name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):
        return 255


@pytest.mark.parametrize("name", ["a" * 239 + ".safetensors",  # 251 bytes
                                  "é" * 121 + ".safetensors"],  # 254 bytes, 2 per é
                         ids=["ascii", "utf-8"])
def test_names_up_to_name_max_can_be_saved(tmp_path, name):
    name = name[:-len(".safetensors")] + "x" * (255 - len(os.fsencode(name))) + ".safetensors"
    if name_max(tmp_path) < 255:
        pytest.skip("the file system's names are shorter than 255 bytes")
    assert len(os.fsencode(name)) == 255
    tree = small_tree()
    checkpoint.save(tmp_path / name, tree)
    checkpoint.save(tmp_path / name, tree)  # over an existing file, too
    assert_identical(checkpoint.load(tmp_path / name, like=tree), tree)
    assert os.listdir(tmp_path) == [name]


# --- reproducible bytes ----------------------------------------------------------------


def reproducible_tree():
    """A tree built the same way in any process: every kind of leaf and of metadata."""
    return {"params": [{"weights": jnp.arange(12.0).reshape(3, 4), "biases": jnp.ones((1, 4))}],
            "step": jnp.asarray(7, jnp.int32), "learning_rate": jnp.asarray(0.5),
            "mask": np.array([True, False]), "half": jnp.ones(3, jnp.bfloat16),
            "key": jax.random.key(2), "other_key": jax.random.key(3, impl="rbg"),
            "weak_too": jnp.asarray(2)}


def test_the_same_tree_gives_the_same_bytes(tmp_path, x64):
    tree = reproducible_tree()
    files = []
    for i in range(6):
        checkpoint.save(tmp_path / f"{i}.safetensors", tree)
        files.append((tmp_path / f"{i}.safetensors").read_bytes())
    # Built in another order: the same tree to JAX (dict keys are sorted), the same bytes.
    checkpoint.save(tmp_path / "reordered.safetensors", dict(reversed(tree.items())))
    files.append((tmp_path / "reordered.safetensors").read_bytes())
    assert all(data == files[0] for data in files)
    assert_identical(checkpoint.load(tmp_path / "0.safetensors", like=tree), tree)


REPRODUCE = textwrap.dedent("""
    import sys
    import jax
    import jax.numpy as jnp
    import numpy as np
    from purenn import checkpoint
""") + textwrap.dedent(inspect.getsource(reproducible_tree)) + textwrap.dedent("""
    checkpoint.save(sys.argv[1], reproducible_tree())
""")


def test_the_same_tree_gives_the_same_bytes_in_other_processes(tmp_path):
    """Other hash seeds (Python's, and the per-process ones of safetensors' hash maps)."""
    children = [subprocess.Popen([sys.executable, "-c", REPRODUCE,
                                  str(tmp_path / f"seed{seed}.safetensors")],
                                 env={**os.environ, "PYTHONHASHSEED": str(seed),
                                      "JAX_PLATFORMS": "cpu", "JAX_ENABLE_X64": "0"},
                                 stderr=subprocess.PIPE, text=True)
                for seed in (0, 1)]
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
    checkpoint.save(tmp_path / "here.safetensors", reproducible_tree())
    here = (tmp_path / "here.safetensors").read_bytes()
    assert (tmp_path / "seed0.safetensors").read_bytes() == here
    assert (tmp_path / "seed1.safetensors").read_bytes() == here


# --- temporary files of killed saves ---------------------------------------------------


# Saves whose os.replace does nothing, so each leaves its temporary file, as a kill would;
# with "wait", the process then stays alive until its stdin closes.
LEAVE_TEMPS = textwrap.dedent("""
    import os
    import sys
    import numpy as np
    from purenn import checkpoint

    os.replace = lambda source, destination: None
    for path in sys.argv[2:]:
        checkpoint.save(path, {"v": np.zeros(3)})
    if sys.argv[1] == "wait":
        print("saved", flush=True)
        sys.stdin.read()
""")

LONG = "n" * 250  # names of 251 bytes: their temporary names are shortened


def writer(mode: str, *targets: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", LEAVE_TEMPS, mode, *map(str, targets)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "JAX_PLATFORMS": "cpu"})


@pytest.mark.skipif(sys.platform == "win32", reason="temporary files are kept on Windows")
def test_a_save_deletes_the_temporary_files_that_killed_saves_left(tmp_path):
    run, other = tmp_path / "run.safetensors", tmp_path / "run.safetensors.1"
    long_run, long_other = tmp_path / (LONG + "a"), tmp_path / (LONG + "b")
    # The live writer saves first: a save made after the dead writer exited would rightly
    # delete the dead writer's temporary files before this test looks at them.
    live = writer("wait", run, long_run)
    dead = None
    try:
        assert live.stdout.readline() == "saved\n", live.stderr.read()
        dead = writer("exit", run, run, other, long_run, long_other)
        _, err = dead.communicate(timeout=120)
        assert dead.returncode == 0, err

        def of(pid: int) -> set[str]:  # .<name>.<pid>.<host>.<random>.tmp
            return {name for name in temp_files(tmp_path) if name.split(".")[-4] == str(pid)}

        dead_temps, live_temps = of(dead.pid), of(live.pid)
        assert len(dead_temps) == 5 and len(live_temps) == 2
        dead_run = {name for name in dead_temps
                    if name.startswith(f".run.safetensors.{dead.pid}.")}
        dead_long = {name for name in dead_temps if name.startswith("." + LONG[:200])}
        assert len(dead_run) == 2 and len(dead_long) == 2
        # The same, from another machine (another host field): not judged by our pids.
        parts = sorted(dead_run)[0].split(".")
        parts[-3] = "0" * 8 if parts[-3] != "0" * 8 else "1" * 8
        foreign = ".".join(parts)
        (tmp_path / foreign).write_bytes(b"")
        others = {".run.safetensors.notes.tmp", "run.safetensors.bak"}
        for name in others:
            (tmp_path / name).write_bytes(b"not a temporary file of a save")

        def deleted_by_save(target: Path) -> set[str]:
            before = set(os.listdir(tmp_path))
            checkpoint.save(target, {"v": jnp.ones(2)})
            assert set(os.listdir(tmp_path)) - before <= {target.name}
            return before - set(os.listdir(tmp_path))

        assert deleted_by_save(run) == dead_run
        gone = deleted_by_save(long_run)
        assert len(gone) == 1 and gone < dead_long
        assert deleted_by_save(other) == dead_temps - dead_run - dead_long
        assert deleted_by_save(long_other) == dead_long - gone
        assert temp_files(tmp_path) == live_temps | {foreign, ".run.safetensors.notes.tmp"}
        assert set(os.listdir(tmp_path)) >= others
    finally:
        live.communicate(timeout=60)  # closes its stdin: it exits
        if dead is not None:
            dead.kill()
            dead.communicate()


# --- symbolic links and permission bits ------------------------------------------------


@needs_symlinks
@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
def test_saving_through_a_link_keeps_the_link_and_the_mode(tmp_path, x64, relative):
    folder = tmp_path / "real"
    folder.mkdir()
    target = folder / "run.safetensors"
    checkpoint.save(target, {"v": jnp.zeros(2)})
    os.chmod(target, 0o600)
    link = tmp_path / "latest.safetensors"
    link.symlink_to(os.path.join("real", "run.safetensors") if relative else target)

    tree = small_tree()
    checkpoint.save(link, tree)
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert target.stat().st_mode & 0o777 == 0o600
    assert_identical(checkpoint.load(target, like=tree), tree)
    assert_identical(checkpoint.load(link, like=tree), tree)
    assert sorted(os.listdir(tmp_path)) == ["latest.safetensors", "real"]
    assert os.listdir(folder) == ["run.safetensors"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_replacing_a_file_keeps_its_mode_and_a_new_file_gets_the_umask(tmp_path):
    old_umask = os.umask(0o022)
    try:
        checkpoint.save(tmp_path / "new.safetensors", small_tree())
        assert (tmp_path / "new.safetensors").stat().st_mode & 0o777 == 0o644
        for mode in [0o600, 0o664, 0o444]:  # 0o664: more than the umask lets through
            os.chmod(tmp_path / "new.safetensors", mode)
            checkpoint.save(tmp_path / "new.safetensors", small_tree())
            assert (tmp_path / "new.safetensors").stat().st_mode & 0o777 == mode
    finally:
        os.umask(old_umask)


# --- paths that save refuses up front --------------------------------------------------


BAD_TREE = {"a": jnp.ones(2), "note": "not an array"}  # refused too, but only after the path


def test_save_refuses_a_missing_folder_first(tmp_path):
    folder = tmp_path / "no" / "such"
    with pytest.raises(FileNotFoundError, match=f"cannot write "
                                                f"{shown(folder / 'run.safetensors')}: the "
                                                f"folder {shown(folder)} does not exist"):
        checkpoint.save(folder / "run.safetensors", BAD_TREE)


def test_save_refuses_an_empty_path_first():
    with pytest.raises(ValueError, match="checkpoint.save: the path is empty; give a file "
                                         "name"):
        checkpoint.save("", BAD_TREE)


def test_save_refuses_a_folder_first(tmp_path):
    with pytest.raises(IsADirectoryError, match=f"checkpoint.save: {shown(tmp_path)} is a "
                                                f"folder; give a file name"):
        checkpoint.save(tmp_path, BAD_TREE)
    new = str(tmp_path / "new") + os.sep
    with pytest.raises(ValueError, match=f"{shown(new)} ends with a path separator"):
        checkpoint.save(new, {"a": jnp.ones(2)})
    assert os.listdir(tmp_path) == []


@needs_fifos
def test_save_refuses_to_replace_a_fifo(tmp_path):
    fifo = tmp_path / "run.safetensors"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=f"checkpoint.save: {shown(fifo)} is a FIFO, not a "
                                         f"regular file"):
        checkpoint.save(fifo, {"a": jnp.ones(2)})
    assert os.listdir(tmp_path) == ["run.safetensors"]
    assert not fifo.is_file()
