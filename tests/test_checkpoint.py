"""purenn.checkpoint: bit-exact round trips, key-path names, checks against ``like``,
refusal of anything that is not a purenn safetensors checkpoint (pickles never run), and
atomic writes that survive a SIGKILL mid-write.

Tests run in float32; those whose trees hold the mode's default dtypes (round trips, weak
types, dtype checks) run in float64 too (the ``x64`` fixture)."""

from __future__ import annotations

import os
import pickle
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import safetensors.numpy
from safetensors import safe_open

from purenn import checkpoint


class OptState(NamedTuple):
    """An optimizer state as the optimizers make them."""

    count: jax.Array  # int32, ()
    learning_rate: jax.Array  # the default float dtype (float32, float64 with x64), ()
    momentum: Any  # a tree like params
    cache: Any  # None: this optimizer keeps no cache


def default_float():
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def make_params(hidden: int = 64, dtype=None):
    """The params of ``serial(dense(2, hidden), relu(), dense(hidden, 3))`` in ``dtype`` (the
    mode's default float by default), from NumPy: no program to compile (``device_put``,
    unlike ``jnp.asarray``, compiles nothing)."""
    dtype = np.dtype(dtype or default_float())
    rng = np.random.default_rng(0)

    def dense(n_in, n_out):
        return {"weights": jax.device_put((0.01 * rng.standard_normal((n_in, n_out))
                                           ).astype(dtype)),
                "biases": jax.device_put(np.zeros((1, n_out), dtype))}

    return (dense(2, hidden), (), dense(hidden, 3))


def make_tree(hidden: int = 64, dtype=None):
    """What a training run checkpoints; a new dict each call, sharing the (immutable) arrays."""
    params = make_params(hidden, dtype)
    rng = np.random.default_rng(hidden)
    momentum = jax.tree.map(
        lambda p: jax.device_put(rng.standard_normal(p.shape).astype(p.dtype)), params)
    state = OptState(count=jnp.asarray(12, jnp.int32),
                     learning_rate=jnp.asarray(0.05, default_float()),
                     momentum=momentum, cache=None)
    return {"params": params, "opt_state": state, "step": jnp.int32(7),
            "key": jax.random.key(3)}


NAMES = {"params/0/weights", "params/0/biases", "params/2/weights", "params/2/biases",
         "opt_state/count", "opt_state/learning_rate",
         "opt_state/momentum/0/weights", "opt_state/momentum/0/biases",
         "opt_state/momentum/2/weights", "opt_state/momentum/2/biases", "step", "key"}


def fingerprint(x):
    """Everything that must survive a round trip: type, dtype, weak type and raw bytes."""
    assert isinstance(x, jax.Array), type(x)
    if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        return (str(x.dtype), jax.random.key_impl(x), x.shape,
                np.asarray(jax.random.key_data(x)).tobytes())
    return str(x.dtype), x.weak_type, x.shape, np.asarray(x).tobytes()


def assert_identical(restored, original):
    assert jax.tree.structure(restored) == jax.tree.structure(original)
    assert jax.tree.leaves(jax.tree.map(fingerprint, restored)) == \
        jax.tree.leaves(jax.tree.map(fingerprint, original))


def files_in(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


# --- round trips -----------------------------------------------------------------------


def test_round_trip_of_params_and_optimizer_state_is_bit_exact(tmp_path, x64):
    tree = make_tree()
    assert tree["params"][0]["weights"].dtype == (jnp.float64 if x64 else jnp.float32)
    path = tmp_path / "run.safetensors"
    checkpoint.save(path, tree)
    restored = checkpoint.load(path, like=make_tree())  # fresh values, same structure

    assert_identical(restored, tree)
    assert type(restored["params"]) is tuple and restored["params"][1] == ()
    assert type(restored["opt_state"]) is OptState and restored["opt_state"].cache is None
    assert restored["opt_state"].momentum[1] == ()
    assert restored["opt_state"].count.dtype == jnp.int32
    assert restored["key"].dtype == jax.random.key(0).dtype
    # The restored key draws the same numbers as the saved one.
    assert jnp.array_equal(jax.random.normal(restored["key"], (4,)),
                           jax.random.normal(tree["key"], (4,)))


def test_like_may_be_shape_dtype_structs(tmp_path, x64):
    tree = make_tree()
    checkpoint.save(tmp_path / "run.safetensors", tree)
    like = jax.eval_shape(make_tree)
    assert isinstance(like["params"][0]["weights"], jax.ShapeDtypeStruct)
    assert_identical(checkpoint.load(tmp_path / "run.safetensors", like=like), tree)


def random_array(dtype, shape, rng):
    """Values with arbitrary bit patterns: NaN payloads, infinities, -0.0, subnormals."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(np.bool_)
    raw = rng.integers(0, 256, (*shape, dtype.itemsize), dtype=np.uint8)
    return raw.view(dtype).reshape(shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, jnp.bfloat16, np.float16,
                                   np.int32, np.uint32, np.int64, np.uint64, np.int8,
                                   np.uint8, np.int16, np.uint16, np.bool_],
                         ids=lambda d: np.dtype(d).name)
def test_every_dtype_round_trips_bit_exactly(tmp_path, dtype, x64):
    rng = np.random.default_rng(0)
    tree = {"scalar": random_array(dtype, (), rng), "empty": random_array(dtype, (0, 3), rng),
            "matrix": random_array(dtype, (5, 7), rng)}
    if np.dtype(dtype).kind == "f":
        tree["special"] = np.array([np.nan, -np.nan, np.inf, -np.inf, -0.0, 0.0], dtype)
    path = tmp_path / "dtypes.safetensors"
    if np.dtype(dtype).itemsize == 8 and not x64:
        # JAX holds no 64-bit arrays without x64: save NumPy's; load refuses to truncate.
        checkpoint.save(path, tree)
        for like in (None, tree):
            with pytest.raises(ValueError, match=rf"is {np.dtype(dtype).name}, which JAX "
                                                 rf"would truncate to .*jax_enable_x64"):
                checkpoint.load(path, like=like)
        return
    checkpoint.save(path, {k: jax.device_put(v) for k, v in tree.items()})

    for restored in (checkpoint.load(path), checkpoint.load(path, like=tree)):
        assert set(restored) == set(tree)
        for name, original in tree.items():
            assert isinstance(restored[name], jax.Array)
            assert restored[name].dtype == original.dtype
            assert restored[name].shape == original.shape
            assert np.asarray(restored[name]).tobytes() == original.tobytes(), name


def test_numpy_leaves_and_scalars_are_accepted(tmp_path):
    tree = {"n": np.float32(1.5),
            "a": np.arange(6.0, dtype=np.float32).reshape(2, 3).T,  # not C-contiguous
            "big_endian": np.arange(3, dtype=">i4")}
    checkpoint.save(tmp_path / "np.safetensors", tree)
    restored = checkpoint.load(tmp_path / "np.safetensors")
    assert restored["n"].shape == () and restored["n"].dtype == jnp.float32
    assert np.array_equal(restored["a"], tree["a"])
    assert restored["big_endian"].dtype == jnp.int32
    assert np.array_equal(restored["big_endian"], [0, 1, 2])


def test_weak_types_are_kept(tmp_path, x64):
    """A weakly typed learning rate must not start promoting narrower grads (float32 with
    x64, bfloat16 without) to its own dtype."""
    wide, narrow = (jnp.float64, jnp.float32) if x64 else (jnp.float32, jnp.bfloat16)
    tree = {"lr": jnp.asarray(0.05), "strong": jnp.asarray(0.05, wide),
            "grads": jnp.ones(3, narrow)}
    assert tree["lr"].weak_type and not tree["strong"].weak_type
    assert tree["lr"].dtype == wide
    checkpoint.save(tmp_path / "w.safetensors", tree)
    for restored in (checkpoint.load(tmp_path / "w.safetensors"),
                     checkpoint.load(tmp_path / "w.safetensors", like=tree)):
        assert restored["lr"].weak_type and not restored["strong"].weak_type
        assert (restored["lr"] * restored["grads"]).dtype == narrow
        assert (restored["strong"] * restored["grads"]).dtype == wide


def test_a_single_array_is_a_tree(tmp_path):
    x = jnp.arange(5.0)
    checkpoint.save(str(tmp_path / "x.safetensors"), x)
    assert_identical(checkpoint.load(str(tmp_path / "x.safetensors")), x)
    assert_identical(checkpoint.load(tmp_path / "x.safetensors", like=x), x)


def test_save_replaces_an_existing_checkpoint(tmp_path):
    path = tmp_path / "run.safetensors"
    checkpoint.save(path, {"v": jnp.asarray(1)})
    checkpoint.save(str(path), {"v": jnp.asarray(2), "w": jnp.zeros(2)})
    assert int(checkpoint.load(path)["v"]) == 2
    assert files_in(tmp_path) == ["run.safetensors"]


def test_file_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        checkpoint.save(tmp_path / "run.safetensors", {"v": jnp.zeros(2)})
    finally:
        os.umask(old)
    assert (tmp_path / "run.safetensors").stat().st_mode & 0o777 == 0o640


# --- names -----------------------------------------------------------------------------


def test_file_is_plain_safetensors_named_by_key_paths(tmp_path):
    tree = make_tree()
    checkpoint.save(tmp_path / "run.safetensors", tree)
    with safe_open(tmp_path / "run.safetensors", framework="np") as file:
        assert set(file.keys()) == NAMES
        metadata = file.metadata()
        weights = file.get_tensor("opt_state/momentum/2/weights")
        key_data = file.get_tensor("key")
    assert metadata["format"] == "purenn.checkpoint" and metadata["version"] == "1"
    assert metadata["prng_keys"] == '{"key": "threefry2x32"}'
    assert np.array_equal(weights, tree["opt_state"].momentum[2]["weights"])
    assert np.array_equal(key_data, jax.random.key_data(tree["key"]))


def test_metadata_is_kept_and_read_gives_numpy_arrays_in_any_mode(tmp_path):
    path = tmp_path / "run.safetensors"
    with jax.enable_x64(True):
        wide = jnp.arange(3, dtype=jnp.float64)
        checkpoint.save(path, {"x": wide, "key": jax.random.key(0)},
                        metadata={"note": "a run", "settings": '{"a": "1"}'})
    contents = checkpoint.read(path)  # float64, with jax_enable_x64 off: read as it is
    assert contents.metadata == {"note": "a run", "settings": '{"a": "1"}'}
    assert contents.arrays["x"].dtype == np.float64
    np.testing.assert_array_equal(contents.arrays["x"], [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(contents.arrays["key"], jax.random.key_data(jax.random.key(0)))
    with pytest.raises(ValueError, match=r"the metadata name 'format' is the format's own"):
        checkpoint.save(path, {"x": wide}, metadata={"format": "mine"})
    with pytest.raises(TypeError, match=r"metadata must map strings to strings; got 'n': int"):
        checkpoint.save(path, {"x": wide}, metadata={"n": 1})


def test_load_without_like_gives_nested_dicts(tmp_path, x64):
    tree = make_tree()
    checkpoint.save(tmp_path / "run.safetensors", tree)
    loaded = checkpoint.load(tmp_path / "run.safetensors")

    layer = {"weights": None, "biases": None}
    expected = {"params": {"0": layer, "2": layer},
                "opt_state": {"count": None, "learning_rate": None,
                              "momentum": {"0": layer, "2": layer}},
                "step": None, "key": None}
    assert jax.tree.structure(loaded) == jax.tree.structure(
        expected, is_leaf=lambda x: x is None)
    assert all(type(node) is dict for node in (loaded, loaded["params"], loaded["opt_state"]))
    assert np.array_equal(loaded["params"]["2"]["weights"], tree["params"][2]["weights"])
    assert np.array_equal(loaded["opt_state"]["momentum"]["0"]["biases"],
                          tree["opt_state"].momentum[0]["biases"])
    assert loaded["opt_state"]["count"].dtype == jnp.int32
    assert loaded["opt_state"]["learning_rate"].dtype == (jnp.float64 if x64 else jnp.float32)
    assert_identical(loaded["key"], tree["key"])


def test_names_are_one_to_one_even_with_slashes_in_keys(tmp_path):
    tree = {"a/b": jnp.asarray(1), "a": {"b": jnp.asarray(2)}, "~": jnp.asarray(3),
            "c~1d": jnp.asarray(4), "": {"": jnp.asarray(5)}}
    checkpoint.save(tmp_path / "n.safetensors", tree)
    with safe_open(tmp_path / "n.safetensors", framework="np") as file:
        assert set(file.keys()) == {"a~1b", "a/b", "~0", "c~01d", "/"}
    assert_identical(checkpoint.load(tmp_path / "n.safetensors"), tree)
    assert_identical(checkpoint.load(tmp_path / "n.safetensors", like=tree), tree)


def test_leaves_with_the_same_name_are_refused(tmp_path):
    class Key:
        """A dict key that sorts like its value but prints the same for every value."""

        def __init__(self, value):
            self.value = value

        def __lt__(self, other):
            return self.value < other.value

        def __eq__(self, other):
            return isinstance(other, Key) and self.value == other.value

        def __hash__(self):
            return hash(self.value)

        def __str__(self):
            return "k"

    with pytest.raises(ValueError, match="two leaves have the name 'k'"):
        checkpoint.save(tmp_path / "c.safetensors", {Key(1): jnp.ones(1), Key(2): jnp.ones(1)})
    with pytest.raises(ValueError, match="'__metadata__' is reserved"):
        checkpoint.save(tmp_path / "c.safetensors", {"__metadata__": jnp.ones(1)})
    assert files_in(tmp_path) == []


# --- like ------------------------------------------------------------------------------


def test_a_model_of_another_width_is_refused_naming_tensors_and_shapes(tmp_path):
    path = tmp_path / "run.safetensors"
    checkpoint.save(path, make_tree(hidden=32))
    with pytest.raises(ValueError) as info:
        checkpoint.load(path, like=make_tree(hidden=64))
    message = str(info.value)
    assert message.startswith(f"checkpoint {str(path)!r} does not match like: ")
    for expected in ["params/0/weights has shape (2, 32) in the file, (2, 64) in like",
                     "params/0/biases has shape (1, 32) in the file, (1, 64) in like",
                     "params/2/weights has shape (32, 3) in the file, (64, 3) in like",
                     "opt_state/momentum/0/weights has shape (2, 32) in the file, (2, 64)"]:
        assert expected in message
    assert "params/2/biases" not in message  # (1, 3) in both
    assert "missing" not in message and "unexpected" not in message


def test_missing_and_unexpected_names_are_listed(tmp_path):
    tree = make_tree()
    checkpoint.save(tmp_path / "run.safetensors", tree)
    like = {**tree, "ema": tree["params"]}
    del like["step"]
    with pytest.raises(ValueError, match=re.escape(
            "does not match like: missing in file: ema/0/biases, ema/0/weights, "
            "ema/2/biases, ema/2/weights; unexpected in file: step")):
        checkpoint.load(tmp_path / "run.safetensors", like=like)


def test_dtype_differences_are_named(tmp_path, x64):
    checkpoint.save(tmp_path / "run.safetensors", make_tree())  # the mode's float params
    wide, narrow = ("float64", "float32") if x64 else ("float32", "float16")
    like = make_tree(dtype=jnp.dtype(narrow))
    like["step"] = jnp.int64(7) if x64 else jnp.int16(7)
    like["key"] = jax.random.key(0, impl="rbg")
    with pytest.raises(ValueError) as info:
        checkpoint.load(tmp_path / "run.safetensors", like=like)
    message = str(info.value)
    assert f"params/0/weights has dtype {wide} in the file, {narrow} in like" in message
    assert f"step has dtype int32 in the file, {like['step'].dtype} in like" in message
    assert "key has dtype key<fry> in the file, key<rbg> in like" in message


def test_legacy_uint32_key_is_not_a_typed_key(tmp_path):
    checkpoint.save(tmp_path / "k.safetensors", {"key": jax.random.PRNGKey(0)})
    with pytest.raises(ValueError, match=re.escape(
            "key has shape (2,) and dtype uint32 in the file, shape () and dtype key<fry> "
            "in like")):
        checkpoint.load(tmp_path / "k.safetensors", like={"key": jax.random.key(0)})


def test_a_like_with_another_top_level_gets_a_hint(tmp_path):
    tree = make_tree()
    checkpoint.save(tmp_path / "run.safetensors", tree["params"])
    with pytest.raises(ValueError, match=r"no name in common.*save\(path, params\)") as info:
        checkpoint.load(tmp_path / "run.safetensors", like=tree)
    assert "... and 2 more" in str(info.value)  # 12 missing names, the first 10 listed


def test_like_must_hold_arrays(tmp_path):
    checkpoint.save(tmp_path / "run.safetensors", {"a": jnp.zeros(2)})
    with pytest.raises(TypeError, match="the leaf of like at a is a str"):
        checkpoint.load(tmp_path / "run.safetensors", like={"a": "zeros(2)"})


def test_float64_without_x64_is_refused_not_truncated(tmp_path):
    with jax.enable_x64(True):  # as a float64 run saves it
        checkpoint.save(tmp_path / "f64.safetensors", {"w": jnp.full(3, 0.1, jnp.float64),
                                                       "n": jnp.int32(1)})
    assert not jax.config.jax_enable_x64
    with pytest.raises(ValueError, match=r"w is float64.*jax_enable_x64"):
        checkpoint.load(tmp_path / "f64.safetensors")
    with pytest.raises(ValueError, match="w has dtype float64 in the file, float32"):
        checkpoint.load(tmp_path / "f64.safetensors",
                        like={"w": jnp.zeros(3), "n": jnp.int32(0)})


# --- what save refuses -----------------------------------------------------------------


@pytest.mark.parametrize("leaf, message", [
    ("hello", "the leaf at opt_state/note is a str, not an array"),
    (object(), "the leaf at opt_state/note is a object, not an array"),
    (0.05, r"is a float, not an array.*jnp.asarray\(0.05\)"),
    (jnp.ones(2, jnp.complex64), "opt_state/note has dtype complex64, which a checkpoint"),
])
def test_non_array_leaves_are_refused_with_their_key_path(tmp_path, leaf, message):
    with pytest.raises(TypeError, match=message):
        checkpoint.save(tmp_path / "bad.safetensors",
                        {"params": make_params(), "opt_state": {"note": leaf}})
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("tree", [{}, (), None, {"a": None, "b": ((), [])}])
def test_a_tree_without_arrays_is_refused(tmp_path, tree):
    with pytest.raises(ValueError, match="nothing to save: the tree has no arrays"):
        checkpoint.save(tmp_path / "empty.safetensors", tree)


def test_bad_paths_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"the folder .* does not exist.*os.makedirs"):
        checkpoint.save(tmp_path / "no" / "such" / "run.safetensors", {"a": jnp.ones(1)})
    with pytest.raises(IsADirectoryError, match="is a folder"):
        checkpoint.save(tmp_path, {"a": jnp.ones(1)})
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        checkpoint.save(3, {"a": jnp.ones(1)})
    with pytest.raises(FileNotFoundError, match=re.escape(
            f"checkpoint {str(tmp_path / 'absent.safetensors')!r} does not exist")):
        checkpoint.load(tmp_path / "absent.safetensors")


def test_saving_inside_jit_is_refused(tmp_path):
    def step(x):
        checkpoint.save(tmp_path / "jit.safetensors", {"x": x})
        return x

    with pytest.raises(TypeError, match="the leaf at x is a traced value; save outside"):
        jax.jit(step)(jnp.ones(2))


# --- what load refuses -----------------------------------------------------------------


@pytest.fixture
def saved(tmp_path) -> bytes:
    checkpoint.save(tmp_path / "good.safetensors", make_tree())
    return (tmp_path / "good.safetensors").read_bytes()


@pytest.mark.parametrize("cut", ["half", "ten bytes", "all but one byte"])
def test_truncated_files_are_refused(tmp_path, saved, cut):
    keep = {"half": len(saved) // 2, "ten bytes": 10, "all but one byte": len(saved) - 1}[cut]
    path = tmp_path / "cut.safetensors"
    path.write_bytes(saved[:keep])
    with pytest.raises(ValueError, match=re.escape(f"checkpoint {str(path)!r} is not a valid "
                                                   "safetensors file")) as info:
        checkpoint.load(path, like=make_tree())
    assert "truncated" in str(info.value) and "pickle" not in str(info.value)


def test_random_bytes_and_empty_files_are_refused(tmp_path):
    path = tmp_path / "junk.safetensors"
    path.write_bytes(random.Random(0).randbytes(4096))
    with pytest.raises(ValueError, match="is not a valid safetensors file"):
        checkpoint.load(path)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"is empty \(0 bytes\), not a safetensors file"):
        checkpoint.load(path)


@pytest.mark.parametrize("metadata", [None, {"format": "pt"}, {"version": "1"}])
def test_foreign_safetensors_files_are_refused(tmp_path, metadata):
    path = tmp_path / "foreign.safetensors"
    safetensors.numpy.save_file({"params/0/weights": np.zeros((2, 64))}, path,
                                metadata=metadata)
    with pytest.raises(ValueError, match=r"is a safetensors file but not a purenn checkpoint"
                                         r".*safetensors.numpy.load_file"):
        checkpoint.load(path)


def test_other_versions_are_refused(tmp_path):
    path = tmp_path / "v2.safetensors"
    safetensors.numpy.save_file({"w": np.zeros(2)}, path,
                                metadata={"format": "purenn.checkpoint", "version": "2"})
    with pytest.raises(ValueError, match=r"format version '2', which this purenn cannot "
                                         r"read: it reads version '1'"):
        checkpoint.load(path)


def test_corrupted_purenn_metadata_is_refused(tmp_path):
    path = tmp_path / "meta.safetensors"
    base = {"format": "purenn.checkpoint", "version": "1"}
    for metadata, message in [({"prng_keys": '{"key": "threefry2x32"}'}, "names a tensor key"),
                              ({"prng_keys": '{"w": "threefry2x32"}'}, "cannot be one"),
                              ({"prng_keys": '{"w": "no-such-prng"}'}, "cannot be one"),
                              ({"weak_type": "[1, 2"}, "corrupted purenn metadata")]:
        safetensors.numpy.save_file({"w": np.zeros(3, np.uint32)}, path,
                                    metadata={**base, **metadata})
        with pytest.raises(ValueError, match=message):
            checkpoint.load(path)


class Payload:
    """Unpickling this creates ``marker``: proof that a loader ran pickled code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_pickles_are_refused_and_never_run(tmp_path, protocol):
    control = tmp_path / "control"
    pickle.loads(pickle.dumps({"w": Payload(control)}, protocol=protocol)).get("w").close()
    assert control.exists()  # the payload is live: unpickling it does run code

    marker = tmp_path / "marker"
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps({"w": Payload(marker)}, protocol=protocol))
    with pytest.raises(ValueError, match="is not a valid safetensors file") as info:
        checkpoint.load(path, like={"w": jnp.zeros(2)})
    if protocol >= 2:
        assert "looks like a pickle, and purenn never unpickles" in str(info.value)
    assert not marker.exists()


def test_torch_style_zip_archives_are_refused_and_never_run(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.safetensors"
    with zipfile.ZipFile(path, "w") as archive:  # the layout torch.save writes
        archive.writestr("archive/data.pkl", pickle.dumps({"w": Payload(marker)}))
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/version", "3\n")
    with pytest.raises(ValueError, match="it is a zip archive, such as a torch.save file"):
        checkpoint.load(path)
    assert not marker.exists()


def test_mutated_files_load_or_raise_value_error(tmp_path, saved):
    """Whatever bytes a damaged file holds, load returns or raises ValueError, nothing else."""
    rng = random.Random(0)
    path = tmp_path / "mutant.safetensors"
    outcomes = {"loaded": 0, "refused": 0}
    header_end = 8 + int.from_bytes(saved[:8], "little")
    like = make_tree()
    for trial in range(300):
        data = bytearray(saved)
        for _ in range(rng.randint(1, 3)):
            where = rng.randrange(header_end if rng.random() < 0.8 else len(data))
            data[where] = rng.randrange(256) if trial % 2 else ord(rng.choice('{}[]":,0~/'))
        path.write_bytes(bytes(data))
        try:
            checkpoint.load(path, like=like if trial % 3 else None)
            outcomes["loaded"] += 1
        except ValueError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 100 and outcomes["loaded"] > 0, outcomes


# --- atomic writes ---------------------------------------------------------------------


def test_a_failed_save_leaves_the_previous_checkpoint(tmp_path):
    path = tmp_path / "run.safetensors"
    checkpoint.save(path, make_tree())
    before = path.read_bytes()
    bad = make_tree()
    bad["opt_state"] = bad["opt_state"]._replace(cache=("fine", jnp.ones(2)))
    with pytest.raises(TypeError, match="the leaf at opt_state/cache/0 is a str"):
        checkpoint.save(path, bad)
    assert path.read_bytes() == before
    assert files_in(tmp_path) == ["run.safetensors"]


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt])
@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_an_interrupted_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch, error,
                                                             failing):
    path = tmp_path / "run.safetensors"
    checkpoint.save(path, make_tree())
    before = path.read_bytes()
    seen = []

    def fail(*args):
        seen.append([name for name in files_in(tmp_path) if name.endswith(".tmp")])
        raise error

    monkeypatch.setattr(os, failing, fail)
    with pytest.raises(type(error) if isinstance(error, OSError) else error):
        checkpoint.save(path, make_tree(hidden=32))
    monkeypatch.undo()
    assert seen and len(seen[0]) == 1  # the new version was in a temporary file...
    assert path.read_bytes() == before  # ...which never replaced the checkpoint
    assert files_in(tmp_path) == ["run.safetensors"]  # and is gone
    assert_identical(checkpoint.load(path, like=make_tree()), make_tree())


CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from purenn import checkpoint

    path, version, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print("ready", flush=True)
    sys.stdin.readline()  # wait for "go": the import is done while earlier rounds run
    leaves = [np.empty(size, np.float32) for _ in range(4)]
    while True:
        for j, leaf in enumerate(leaves):
            leaf.fill(10 * version + j)
        print("saving", version, flush=True)
        checkpoint.save(path, {"version": np.asarray(version, np.int32), "leaves": leaves})
        print("saved", version, flush=True)
        version += 1
""")

SIZE = 4_000_000  # float32s per leaf: 4 leaves, 64 MB per checkpoint


def make_version(version: int) -> dict:
    return {"version": np.asarray(version, np.int32),
            "leaves": [np.full(SIZE, 10.0 * version + j, np.float32) for j in range(4)]}


def check_complete(path) -> int:
    """The version the checkpoint at ``path`` holds; fails unless every value belongs to it."""
    loaded = checkpoint.load(path)
    version = int(loaded["version"])
    assert sorted(loaded["leaves"]) == ["0", "1", "2", "3"]
    for j, leaf in loaded["leaves"].items():
        assert leaf.shape == (SIZE,)
        assert (np.asarray(leaf) == 10 * version + int(j)).all(), f"{j} is not all {version}"
    return version


def temp_files(folder: Path) -> set[str]:
    return {name for name in os.listdir(folder) if name.endswith(".tmp")}


def temp_sizes(folder: Path, names) -> list[int]:
    sizes = []
    for name in names:
        try:
            sizes.append((folder / name).stat().st_size)
        except FileNotFoundError:  # renamed into place meanwhile
            pass
    return sizes


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_a_save_killed_at_any_moment_leaves_a_complete_checkpoint(tmp_path):
    path = tmp_path / "run.safetensors"
    checkpoint.save(path, make_version(0))
    data_bytes = 4 * 4 * SIZE
    # Kill processes that save 64 MB to `path` in a loop: 0.15 s after one starts saving,
    # when a temporary file holds 30% or 90% of the data, and just after a temporary file
    # is renamed. (A writer without temporary files fails here too: by a torn file, or by
    # the time-out.) The children start at once, so that their imports overlap.
    moments = [("seconds", 0.15), ("written", 0.3), ("written", 0.9), ("renamed", None)]
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(1000 * i),
                                  str(SIZE)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True,
                                 env={**os.environ, "JAX_PLATFORMS": "cpu"})
                for i in range(1, len(moments) + 1)]
    previous, partial_writes, stale = 0, 0, set()
    try:
        for child, (how, amount) in zip(children, moments):
            assert child.stdout.readline() == "ready\n", child.stderr.read()
            known = temp_files(tmp_path)  # left by earlier rounds
            stale |= known
            child.stdin.write("go\n")
            child.stdin.flush()
            first = child.stdout.readline()
            assert first.startswith("saving"), child.stderr.read()
            if how == "seconds":
                time.sleep(amount)
            deadline = time.monotonic() + 15
            while how == "written" and not any(
                    size >= amount * data_bytes
                    for size in temp_sizes(tmp_path, temp_files(tmp_path) - known)):
                assert time.monotonic() < deadline, "no temporary file was being written"
                time.sleep(0.001)
            while how == "renamed" and not temp_files(tmp_path) - known:
                assert time.monotonic() < deadline, "no temporary file appeared"
                time.sleep(0.001)
            while how == "renamed" and temp_files(tmp_path) - known:
                assert time.monotonic() < deadline, "the temporary file stayed"
                time.sleep(0.001)
            sizes = temp_sizes(tmp_path, temp_files(tmp_path) - known)
            child.send_signal(signal.SIGKILL)
            out, _ = child.communicate()
            assert child.returncode == -signal.SIGKILL
            log = [first, *out.splitlines()]
            started = [int(line.split()[1]) for line in log if line.startswith("saving")]
            finished = [int(line.split()[1]) for line in log if line.startswith("saved")]
            partial_writes += any(size < data_bytes for size in sizes)

            version = check_complete(path)
            assert version == previous or version in started
            assert max(finished, default=previous) <= version <= max(started)
            previous = version
    finally:
        for child in children:
            child.kill()
            child.communicate()

    assert partial_writes >= 1  # a kill did land mid-write (in practice, two or three)
    assert stale  # a killed save leaves its temporary file; the next save deletes it:
    checkpoint.save(path, make_version(7))
    assert check_complete(path) == 7
    assert temp_files(tmp_path) == set()
