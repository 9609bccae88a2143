"""The Structure pytree: construction, padding, stacking, conversions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jxas.structure import Structure, n_atoms, neighbour_mask, pad, safe_norm, stack, trim, unstack


def _s(n, absorber=0, seed=0):
    rng = np.random.default_rng(seed)
    return Structure.from_arrays(rng.normal(size=(n, 3)) * 2, rng.integers(1, 30, n), absorber=absorber)


def test_pad_stack_unstack_round_trip():
    a, b = _s(3, absorber=1), _s(5, seed=1)
    batch = stack([a, b])
    assert batch.positions.shape == (2, 5, 3) and batch.is_batch
    np.testing.assert_array_equal(np.asarray(n_atoms(batch)), [3, 5])
    back = unstack(batch)
    pa, na, ia = back[0].real()
    np.testing.assert_allclose(pa, np.asarray(a.positions))
    np.testing.assert_array_equal(na, np.asarray(a.numbers))
    assert ia == 1
    assert int(back[0].numbers[4]) == 0 and not bool(back[0].mask[4])


def test_stack_to_fixed_size_and_errors():
    a = _s(4)
    assert stack([a], n=10).n_max == 10
    with pytest.raises(ValueError, match="cannot pad"):
        pad(a, 2)
    with pytest.raises(ValueError, match="at least one"):
        stack([])
    with pytest.raises(ValueError, match="shape"):
        Structure.from_arrays(np.zeros((3, 2)), [1, 2, 3])
    with pytest.raises(ValueError, match="out of range"):
        Structure.from_arrays(np.zeros((3, 3)), [1, 2, 3], absorber=3)


def test_structure_is_a_pytree_under_jit_and_vmap():
    batch = stack([_s(4), _s(6, seed=2)])
    f = jax.jit(jax.vmap(lambda s: jnp.sum(neighbour_mask(s, 3.0))))
    out = f(batch)
    assert out.shape == (2,)


def test_safe_norm_gradient_at_zero():
    g = jax.grad(lambda x: safe_norm(x))(jnp.zeros(3))
    assert np.all(np.isfinite(np.asarray(g)))


def test_to_ase_keeps_absorber_charge_spin():
    s = _s(4, absorber=2).replace(charge=jnp.int32(-1), spin=jnp.int32(3))
    atoms = pad(s, 7).to_ase()
    assert len(atoms) == 4
    assert atoms.info["absorber"] == 2 and atoms.info["charge"] == -1 and atoms.info["spin"] == 3


def test_trim_drops_trailing_padding_only():
    s = Structure.from_arrays(np.arange(12.0).reshape(4, 3), [26, 8, 8, 1], absorber=1, charge=2, spin=4)
    padded = pad(s, 9)
    t = trim(padded)
    assert t.n_max == 4 and int(t.absorber) == 1 and int(t.charge) == 2 and int(t.spin) == 4
    np.testing.assert_array_equal(np.asarray(t.positions), np.asarray(s.positions))
    assert trim(s) is s  # nothing to drop
    inner = padded.replace(mask=padded.mask.at[2].set(False))  # interior padding keeps its slot
    assert trim(inner).n_max == 4
    with pytest.raises(ValueError, match="single structure"):
        trim(stack([s, s]))
