"""RDC and wACSF: formula parity, gradients, invariances, edge cases, padding and batching."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import DATA, TOL
from jax.test_util import check_grads

from jxas.descriptors import make_wacsf, rdc, rdc_grid, wacsf, wacsf_size
from jxas.descriptors.reference import rdc_numpy, wacsf_numpy
from jxas.io.structures import read_structure
from jxas.structure import Structure, pad, stack

FE_FILES = ["fe_co5.xyz", "ferrocene.xyz", "fe_co2_no2.xyz"]
WACSF_SETTINGS = [
    {},  # the defaults (XANESNET)
    dict(r_min=0.0, r_max=6.0, n_g2=50, n_g4=0),  # the inverse models' G2 target
    dict(n_g2=8, n_g4=12, l=(1.0, -1.0), z=(1.0, 2.0, 4.0), g2_parameterisation="centred",
         g4_parameterisation="shifted"),
    dict(r_max=4.0, n_g2=4, n_g4=4, z=(0.5,), l=(1.0, -1.0)),  # non-integer zeta
]


def _random(n, seed=0, spread=2.5):
    rng = np.random.default_rng(seed)
    pos = rng.normal(size=(n, 3)) * spread
    pos[0] = 0.0
    return Structure.from_arrays(pos, rng.integers(1, 30, n), absorber=0)


def _real(s):
    return s.real()


def _rotation(seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


@pytest.mark.parametrize("fname", FE_FILES)
@pytest.mark.parametrize("kw", WACSF_SETTINGS)
def test_wacsf_equals_formula_on_fe_complexes(fname, kw):
    s = read_structure(DATA / "structures" / fname)
    got = np.asarray(wacsf(s, **kw))
    want = wacsf_numpy(*_real(s), **kw)
    assert got.shape == (wacsf_size(kw.get("n_g2", 16), kw.get("n_g4", 32)),)
    np.testing.assert_allclose(got, want, rtol=TOL["formula_rtol"], atol=TOL["formula_atol"])


@pytest.mark.parametrize("fname", FE_FILES)
@pytest.mark.parametrize("pairs", ["absorber", "all"])
def test_rdc_equals_formula(fname, pairs):
    s = read_structure(DATA / "structures" / fname)
    kw = dict(r_min=0.5, r_max=6.0, dr=0.05, alpha=8.0, pairs=pairs)
    got = np.asarray(rdc(s, **kw))
    np.testing.assert_allclose(got, rdc_numpy(*_real(s), **kw), rtol=TOL["formula_rtol"], atol=1e-9)


def test_rdc_grid_default_length_and_values():
    assert rdc_grid().shape == (801,)
    s = Structure.from_arrays([[0, 0, 0], [2.0, 0, 0]], [26, 8])
    out = np.asarray(rdc(s))
    grid = rdc_grid()
    np.testing.assert_allclose(out, 26 * 8 * np.exp(-10.0 * (2.0 - grid) ** 2), rtol=1e-12)


def test_wacsf_hand_computed_two_neighbours():
    # absorber at origin, neighbours O at (2,0,0) and N at (0,2,0): evaluate G1, one G2 and one G4 by hand
    s = Structure.from_arrays([[0, 0, 0], [2.0, 0, 0], [0, 2.0, 0]], [26, 8, 7])
    out = np.asarray(wacsf(s, r_min=1.0, r_max=6.0, n_g2=2, n_g4=2, l=(1.0, -1.0), z=(1.0,)))
    fc2 = 0.5 * (np.cos(np.pi * 2 / 6) + 1)
    rjk = 2 * np.sqrt(2)
    fcjk = 0.5 * (np.cos(np.pi * rjk / 6) + 1)
    assert out[0] == pytest.approx(2 * fc2)
    # shifted grid with n=2: mu = (1.5, 5.5), d = 4, eta = 1/32
    g2_0 = (0.8 + 0.7) * np.exp(-(2 - 1.5) ** 2 / 32) * fc2
    assert out[1] == pytest.approx(g2_0)
    # centred g4 grid with n=2: s = (2, 5.5); keep 1 entry: eta = 1/8, mu = 0; cos(theta) = 0
    radial = np.exp(-(4 + 4 + rjk**2) / 8) * fc2 * fc2 * fcjk
    assert out[3] == pytest.approx(0.8 * 0.7 * radial)  # lambda = +1
    assert out[4] == pytest.approx(0.8 * 0.7 * radial)  # lambda = -1, cos = 0


def test_g4_divisibility_error_and_bad_grid():
    s = _random(5)
    with pytest.raises(ValueError, match="divisible"):
        wacsf(s, n_g4=5)
    with pytest.raises(ValueError, match="parameterisation"):
        wacsf(s, g2_parameterisation="wide")
    with pytest.raises(ValueError, match="n >= 2"):
        wacsf(s, n_g2=1)


@pytest.mark.parametrize("fn", ["wacsf", "rdc"])
def test_gradients_match_finite_differences(fn):
    s = _random(7, seed=3, spread=1.8)
    f = {"wacsf": lambda p: wacsf(s.replace(positions=p), n_g2=6, n_g4=8),
         "rdc": lambda p: rdc(s.replace(positions=p), r_max=6.0, dr=0.1)}[fn]
    check_grads(f, (s.positions,), order=1, modes=("rev",), atol=TOL["grad_atol"], rtol=TOL["grad_rtol"])


def test_rdc_gradient_wrt_alpha():
    s = _random(6, seed=4)
    check_grads(lambda a: rdc(s, alpha=a, dr=0.1), (jnp.asarray(5.0),), order=1, modes=("rev",))


@pytest.mark.parametrize("kw", WACSF_SETTINGS[:2])
def test_invariance_rotation_translation_permutation(kw):
    s = read_structure(DATA / "structures" / "ferrocene.xyz")
    base = np.asarray(wacsf(s, **kw))
    R = _rotation(0)
    pos = np.asarray(s.positions) @ R.T + np.array([3.0, -1.0, 7.0])
    np.testing.assert_allclose(np.asarray(wacsf(s.replace(positions=jnp.asarray(pos)), **kw)), base,
                               rtol=TOL["invariance_rtol"], atol=1e-10)
    perm = np.concatenate([[0], 1 + np.random.default_rng(1).permutation(s.n_max - 1)])
    sp = s.replace(positions=s.positions[perm], numbers=s.numbers[perm])
    np.testing.assert_allclose(np.asarray(wacsf(sp, **kw)), base, rtol=TOL["invariance_rtol"], atol=1e-10)
    np.testing.assert_allclose(np.asarray(rdc(sp)), np.asarray(rdc(s)), rtol=1e-9, atol=1e-9)


def test_absorber_not_first_atom():
    s = _random(6, seed=5)
    perm = np.array([3, 1, 2, 0, 4, 5])
    moved = Structure.from_arrays(np.asarray(s.positions)[perm], np.asarray(s.numbers)[perm], absorber=3)
    np.testing.assert_allclose(np.asarray(wacsf(moved)), np.asarray(wacsf(s)), rtol=1e-10, atol=1e-12)


def test_edge_cases_coincident_atoms_and_cutoff():
    # two ligands on top of each other, one ligand on the absorber, one exactly at r_max
    pos = jnp.array([[0.0, 0, 0], [1.9, 0, 0], [1.9, 0, 0], [0.0, 0, 0], [6.0, 0, 0], [0, 2.0, 0]])
    s = Structure.from_arrays(pos, [26, 8, 8, 8, 7, 6])
    for f in (lambda p: wacsf(s.replace(positions=p)), lambda p: rdc(s.replace(positions=p), r_max=6.0)):
        val = f(s.positions)
        jac = jax.jacrev(f)(s.positions)
        assert np.all(np.isfinite(np.asarray(val))) and np.all(np.isfinite(np.asarray(jac)))
    # the atom at r_max and the one on the absorber contribute nothing (0 < r < r_max)
    want = wacsf_numpy(np.asarray(pos), [26, 8, 8, 8, 7, 6])
    np.testing.assert_allclose(np.asarray(wacsf(s)), want, rtol=1e-9, atol=1e-12)
    without = Structure.from_arrays(pos[jnp.array([0, 1, 2, 5])], [26, 8, 8, 6])
    np.testing.assert_allclose(np.asarray(wacsf(s)), np.asarray(wacsf(without)), rtol=1e-12, atol=1e-12)
    # continuity at the cutoff: moving the atom from just inside to r_max changes nothing to first order
    inside = s.replace(positions=s.positions.at[4, 0].set(6.0 - 1e-6))
    np.testing.assert_allclose(np.asarray(wacsf(inside)), np.asarray(wacsf(s)), atol=1e-9)


def test_padding_contributes_nothing_and_gets_zero_gradient():
    s = _random(6, seed=6)
    p = pad(s, 11)
    p = p.replace(positions=p.positions.at[8].set(jnp.array([0.5, 0.1, 0.0])))  # junk in a padding slot
    np.testing.assert_allclose(np.asarray(wacsf(p)), np.asarray(wacsf(s)), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(rdc(p)), np.asarray(rdc(s)), rtol=1e-12, atol=1e-12)
    g = jax.grad(lambda x: jnp.sum(wacsf(p.replace(positions=x))))(p.positions)
    assert np.all(np.asarray(g)[6:] == 0.0)


def test_batched_equals_looped_and_jit():
    structs = [_random(n, seed=n) for n in (4, 7, 9, 5)]
    batch = stack(structs)
    fw = make_wacsf()
    got = jax.jit(jax.vmap(fw))(batch)
    want = np.stack([np.asarray(wacsf(s)) for s in structs])
    np.testing.assert_allclose(np.asarray(got), want, rtol=TOL["batch_rtol"], atol=1e-12)
    got_r = jax.vmap(lambda s: rdc(s, dr=0.05))(batch)
    want_r = np.stack([np.asarray(rdc(s, dr=0.05)) for s in structs])
    np.testing.assert_allclose(np.asarray(got_r), want_r, rtol=TOL["batch_rtol"], atol=1e-12)
