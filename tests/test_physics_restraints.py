"""jax-md restraints: gradients, invariances, edge cases, batching."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jxas.io.structures import read_structure
from jxas.physics import detect_topology, make_restraints
from jxas.structure import Structure
from tests.conftest import SHARED

FECP2 = SHARED / "structures" / "tm_complexes" / "Buhl2006" / "FeCp2.xyz"


@pytest.fixture(scope="module")
def fecp2():
    if not FECP2.exists():
        pytest.skip("shared data not available")
    return read_structure(FECP2)


def test_topology_of_ferrocene(fecp2):
    """10 C-C, 10 C-H and 10 Fe-C bonds; Fe-C bonds carry no spring by default."""
    t = detect_topology(fecp2)
    z = np.asarray(fecp2.numbers)
    kinds = sorted(tuple(sorted((int(z[i]), int(z[j])))) for i, j in t.bonds)
    assert kinds.count((6, 6)) == 10 and kinds.count((1, 6)) == 10 and kinds.count((6, 26)) == 10
    assert t.spring.sum() == 20
    assert len(t.absorber_bonds(int(fecp2.absorber))) == 10


def test_zero_at_start_positive_elsewhere(fecp2, rng):
    f = make_restraints(fecp2)
    f = jax.jit(f)
    assert float(f(fecp2.positions)) == 0.0
    p = fecp2.positions + 0.05 * rng.standard_normal(fecp2.positions.shape)
    assert float(f(p)) > 0.0


def test_gradient_finite_differences(fecp2, rng, tol):
    f = make_restraints(fecp2)
    # compressed enough that the Fe-C walls (soft spheres) are active too
    p = fecp2.positions * 0.75 + 0.03 * rng.standard_normal(fecp2.positions.shape)
    assert float(f.terms(p)["repulsion"]) > 0
    check_grads(f, (p,), order=1, modes=["rev"], rtol=tol["grad_rtol"], atol=tol["grad_atol"])


def test_invariance(fecp2, tol):
    f = make_restraints(fecp2)
    p = fecp2.positions * 1.03
    q, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((3, 3)))
    e0 = float(f(p))
    np.testing.assert_allclose(float(f(p @ q.T + jnp.array([1.0, -2.0, 0.5]))), e0, rtol=tol["invariance_rtol"])


def test_coincident_atoms_finite_gradient():
    """Two atoms on top of each other (and padding at the origin): gradient finite, energy finite."""
    s = Structure.from_arrays(
        np.array([[0, 0, 0], [0, 0, 1.1], [0, 1.0, 1.5], [0, 0, 0.0]]),
        np.array([26, 6, 8, 0]),
        mask=[True, True, True, False],
    )
    f = make_restraints(s, absorber_bonds=True)
    p = s.positions.at[2].set(s.positions[1])
    g = jax.jit(jax.grad(f))(p)
    assert np.all(np.isfinite(np.asarray(g))) and np.isfinite(float(jax.jit(f)(p)))
    assert np.all(np.asarray(g)[3] == 0)


def test_vmap_equals_loop(fecp2, rng, tol):
    f = make_restraints(fecp2)
    batch = fecp2.positions[None] + 0.05 * rng.standard_normal((4,) + fecp2.positions.shape)
    np.testing.assert_allclose(
        np.asarray(jax.jit(jax.vmap(f))(batch)), [float(f(b)) for b in batch], rtol=tol["batch_rtol"]
    )


def test_hand_evaluated_bond_energy():
    """One C-O bond stretched by 0.1 Å: k/2 dr^2 = 10 * 0.01 = 0.1 eV (jax-md simple_spring_bond)."""
    s = Structure.from_arrays(np.array([[0, 0, 0], [0, 0, 1.13]]), np.array([6, 8]), absorber=0)
    f = make_restraints(s, k_bond=20.0, absorber_bonds=True)
    np.testing.assert_allclose(float(f(jnp.array([[0, 0, 0], [0, 0, 1.23]]))), 0.1, rtol=1e-10)
