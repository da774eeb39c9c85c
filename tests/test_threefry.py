"""``purenn.threefry``: JAX's Threefry-2x32 in NumPy, bit for bit ``jax.random``'s, so that
keys and the data sets' random bits are drawn without compiling a program."""

import jax
import numpy as np
import pytest

import purenn as pn
from purenn import experiments, threefry
from tests.counting import compiles


def _data(key):
    return np.asarray(jax.random.key_data(key))


def test_jax_uses_the_default_keys_this_module_computes():
    assert threefry.available()


@pytest.mark.parametrize("seed", [0, 1, 42, 2**31 - 1])
def test_seed_and_split_are_jax_randoms(x64, seed):
    key = jax.random.key(seed)
    np.testing.assert_array_equal(threefry.seed(seed), _data(key))
    for num in (1, 2, 4, 7):
        np.testing.assert_array_equal(threefry.split(threefry.seed(seed), num),
                                      _data(jax.random.split(key, num)))
    with pytest.raises(ValueError, match=r"seed must be in \[0, 2\*\*31\)"):
        threefry.seed(-1)


@pytest.mark.parametrize("shape", [(1,), (5,), (4, 3), (2, 3, 5)])
def test_random_bits_are_jax_randoms(shape):
    key = jax.random.key(3)
    for width, dtype in ((32, np.uint32), (64, np.uint64)):
        with jax.enable_x64(width == 64):
            expected = np.asarray(jax.random.bits(key, shape, dtype))
        got = threefry.random_bits(_data(key), shape, width)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError, match="width must be 32 or 64; got 16"):
        threefry.random_bits(_data(key), shape, 16)


@pytest.mark.users_codegen
def test_seed_keys_and_data_compile_no_random_draw(x64, monkeypatch):
    """The keys of a seed compile nothing, a data set no program that draws (only the
    small ones that shape the bits), and both are what ``jax.random`` draws: the same
    keys, and the same data as where the draw is compiled (JAX's other key kinds)."""
    with compiles() as seen:
        keys = experiments.seed_keys(11)
        spiral = pn.data.spiral(keys[0], 13, 3)
        vertical = pn.data.vertical(keys[1], 9, 2)
    names = [name for name, _ in seen]
    assert "jit(_seed_keys)" not in names and "jit(_drawn_noise)" not in names, names
    expected = jax.random.split(jax.random.key(11), 4)
    for key, other in zip(keys, expected):
        np.testing.assert_array_equal(_data(key), _data(other))
    monkeypatch.setattr(threefry, "available", lambda: False)
    with compiles() as seen:
        assert experiments.seed_keys(11)[0] == keys[0]
        drawn = pn.data.spiral(keys[0], 13, 3), pn.data.vertical(keys[1], 9, 2)
    assert "jit(_drawn_noise)" in [name for name, _ in seen]
    for a, b in zip(jax.tree.leaves((spiral, vertical)), jax.tree.leaves(drawn)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
