"""Fast paths of the descriptors: the blocked Gaussian sum of the RDC, neighbour compaction of the
wACSF pair sum, and the bucketed batch driver ``featurise``: all must equal the plain definitions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TOL
from jax.test_util import check_grads

from jxas.descriptors import featurise, make_rdc, make_wacsf, neighbour_counts, rdc, rdc_grid, wacsf
from jxas.descriptors.radial import make_gaussian_smear
from jxas.descriptors.reference import rdc_numpy, wacsf_numpy
from jxas.structure import Structure, stack


def _cluster(n, seed, radius=7.0):
    """Absorber at the origin, n-1 atoms in a ball of ``radius`` Å (some beyond a 6 Å cutoff)."""
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, 3))
    pos = v / np.linalg.norm(v, axis=1, keepdims=True) * (radius * rng.random((n, 1)) ** (1 / 3) + 0.9)
    pos[0] = 0.0
    numbers = rng.choice([1, 6, 7, 8, 17, 26], size=n)
    numbers[0] = 26
    return Structure.from_arrays(pos, numbers, absorber=0)


@pytest.mark.parametrize("alpha,dr,r_min", [(10.0, 0.01, 0.0), (3.0, 0.05, 0.5), (20.0, 0.02, 1.0), (10.0, 0.013, 0.0)])
def test_blocked_gaussian_sum_equals_direct_sum(alpha, dr, r_min):
    grid = rdc_grid(r_min, 8.0, dr)
    smear = make_gaussian_smear(grid, alpha, r_hi=8.0)
    assert smear is not None
    rng = np.random.default_rng(0)
    r, w = rng.uniform(0.0, 8.0, 40), rng.uniform(0.0, 50.0, 40)
    want = np.sum(w[:, None] * np.exp(-alpha * (r[:, None] - grid) ** 2), axis=0)
    np.testing.assert_allclose(np.asarray(smear(jnp.asarray(r), jnp.asarray(w))), want, rtol=1e-10,
                               atol=1e-12 * want.max())


def test_blocked_gaussian_sum_declines_what_it_cannot_do_safely():
    assert make_gaussian_smear(rdc_grid(0.0, 8.0, 0.01), 1e5, r_hi=8.0) is None  # needle-sharp: direct sum
    assert make_gaussian_smear(np.linspace(0, 1, 8), 10.0, r_hi=8.0) is None  # too short to gain
    assert make_gaussian_smear(np.array([0.0, 0.1, 0.3] * 10), 10.0, r_hi=8.0) is None  # not uniform


@pytest.mark.parametrize("pairs", ["absorber", "all"])
def test_rdc_fast_path_equals_traced_alpha_path_and_reference(pairs):
    s = _cluster(30, seed=1)
    fn = make_rdc(0.0, 8.0, 0.01, pairs)
    fast, direct = np.asarray(fn(s, 10.0)), np.asarray(fn(s, jnp.asarray(10.0)))
    np.testing.assert_allclose(fast, direct, rtol=1e-10, atol=1e-12 * direct.max())
    pos, num, a = s.real()
    np.testing.assert_allclose(fast, rdc_numpy(pos, num, a, pairs=pairs), rtol=TOL["formula_rtol"], atol=1e-9)


def test_rdc_fast_path_gradient_and_padding():
    s = _cluster(8, seed=2, radius=4.0)
    check_grads(lambda p: rdc(s.replace(positions=p), r_max=6.0, dr=0.05), (s.positions,), order=1,
                modes=("rev",), atol=1e-5, rtol=1e-5)
    padded = stack([s], n=20)
    far = padded.replace(positions=padded.positions.at[0, 8:].set(1e3))  # padding far away: still ignored
    np.testing.assert_allclose(np.asarray(rdc(jax.tree.map(lambda x: x[0], far))), np.asarray(rdc(s)),
                               rtol=1e-12, atol=1e-12)


def test_wacsf_compaction_is_exact_and_flags_overflow():
    s = _cluster(40, seed=3)
    full = np.asarray(make_wacsf()(s))
    count = int(neighbour_counts(stack([s]), 6.0)[0])
    assert 2 < count < 39
    np.testing.assert_allclose(np.asarray(make_wacsf(max_neighbours=count)(s)), full, rtol=1e-12, atol=1e-14)
    with jax.debug_nans(False):  # the NaN is the designed overflow signal
        over = np.asarray(make_wacsf(max_neighbours=count - 1)(s))
    assert np.all(np.isnan(over[17:])) and np.allclose(over[:17], full[:17])  # G1, G2 unaffected
    g = jax.grad(lambda p: jnp.sum(make_wacsf(max_neighbours=count)(s.replace(positions=p))))(s.positions)
    g_full = jax.grad(lambda p: jnp.sum(make_wacsf()(s.replace(positions=p))))(s.positions)
    np.testing.assert_allclose(np.asarray(g), np.asarray(g_full), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="max_neighbours"):
        make_wacsf(max_neighbours=1)


@pytest.mark.parametrize("kind,kw", [
    ("wacsf", {}), ("wacsf", dict(n_g4=8, g4_parameterisation="shifted", z=(1.0, 4.0))),
    ("rdc", dict(dr=0.05)), ("rdc", dict(pairs="all", dr=0.1)),
])
def test_featurise_equals_per_structure_in_input_order(kind, kw):
    # sizes and spreads chosen so entries fall in different neighbour-count buckets and chunks
    structs = [_cluster(n, seed=n, radius=rad) for n, rad in
               [(12, 3.0), (40, 9.0), (25, 5.0), (40, 4.0), (6, 8.0), (33, 6.0), (19, 12.0)]]
    got = featurise(structs, kind, chunk=3, **kw)
    one = wacsf if kind == "wacsf" else rdc
    want = np.stack([np.asarray(one(s, **kw)) for s in structs])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12 * np.abs(want).max())
    if kind == "wacsf":
        pos, num, a = structs[1].real()
        np.testing.assert_allclose(got[1], wacsf_numpy(pos, num, a, **kw), rtol=TOL["formula_rtol"], atol=1e-12)


def test_featurise_bad_input():
    s = _cluster(5, seed=0)
    with pytest.raises(ValueError, match="unknown descriptor"):
        featurise([s], "soap")
    with pytest.raises(TypeError, match="no parameter"):
        featurise([s], "wacsf", r_cut=5.0)
    with pytest.raises(ValueError, match="batch"):
        featurise(s, "wacsf")
    with pytest.raises(ValueError, match="chunk"):
        featurise([s], "rdc", chunk=0)
    with jax.debug_nans(False):  # the NaN is the bad input under test
        nan = s.replace(positions=s.positions.at[2, 0].set(jnp.nan))
        with pytest.raises(ValueError, match="NaN/inf coordinates in 1 entries .first: entry 1"):
            featurise([s, nan], "wacsf")


def test_featurise_recovers_from_an_overflowing_bucket(monkeypatch):
    import jxas.descriptors.batch as batch_mod

    structs = [_cluster(40, seed=s) for s in range(4)]
    want = np.stack([np.asarray(wacsf(s)) for s in structs])
    real = batch_mod.neighbour_counts
    monkeypatch.setattr(batch_mod, "neighbour_counts", lambda b, r: real(b, r) - 12)  # undercount on purpose
    with jax.debug_nans(False):
        got = featurise(structs, "wacsf", chunk=2)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
