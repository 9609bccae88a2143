"""pre_edge / normalise / find_e0: parity with committed xraylarch reference values, gradients, vmap, jit."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import DATA, SHARED
from jax.test_util import check_grads

from jxas.io.spectra import read_spectrum
from jxas.spectrum import find_e0, normalise, pre_edge

REFERENCE = json.loads((DATA / "larch_reference.json").read_text())
GRID_REL = np.asarray(REFERENCE["grid_rel"])
COPIED = ["araucaria_Fe_Foil", "larch_cu_metal_rt", "ixas_Mn_Mn3O4_rt_01", "xdi_zn_znse_rt", "xasref_Fe_foil_Fe_K"]
E0_TOL, FLAT_TOL = 0.5, 0.02  # the acceptance bar


def _check_against_larch(energy, mu, ref):
    out = pre_edge(energy, mu)
    flat = np.interp(ref["e0"] + GRID_REL, energy, np.asarray(out.flat))
    de0 = abs(float(out.e0) - ref["e0"])
    dflat = float(np.max(np.abs(flat - np.asarray(ref["flat"]))))
    return out, de0, dflat


@pytest.mark.parametrize("sid", COPIED)
def test_pre_edge_matches_larch_on_copied_spectra(sid):
    s = read_spectrum(DATA / "spectra" / f"{sid}.txt")
    ref = REFERENCE["spectra"][sid]
    out, de0, dflat = _check_against_larch(s.energy, s.mu, ref)
    assert de0 <= E0_TOL and dflat <= FLAT_TOL
    # the automatic ranges are larch's
    assert (out.pre1, out.pre2, out.norm1, out.norm2, out.nnorm) == pytest.approx(
        (ref["pre1"], ref["pre2"], ref["norm1"], ref["norm2"], ref["nnorm"])
    )
    assert float(out.edge_step) == pytest.approx(ref["edge_step"], rel=1e-6)
    # the normalised spectrum is 0 before the edge and ~1 after it
    assert abs(np.median(np.asarray(out.norm)[s.energy <= out.e0 + out.pre2])) < 0.05
    assert float(out.flat[np.searchsorted(s.energy, out.e0 + 60)]) == pytest.approx(1.0, abs=0.3)


@pytest.mark.skipif(not (SHARED / "experimental" / "manifest.csv").exists(), reason="shared data not present")
def test_pre_edge_matches_larch_on_all_shared_k_edge_spectra():
    results = {}
    for sid, ref in REFERENCE["spectra"].items():
        data = np.loadtxt(SHARED / "experimental" / "spectra" / f"{sid}.txt", comments="#")
        _, de0, dflat = _check_against_larch(data[:, 0], data[:, 1], ref)
        results[sid] = de0 <= E0_TOL and dflat <= FLAT_TOL
    rate = np.mean(list(results.values()))
    assert len(results) == 194
    assert rate >= 0.95, [k for k, ok in results.items() if not ok]


def test_find_e0_is_at_the_edge_of_a_synthetic_step():
    e = np.arange(7000.0, 7300.0, 0.5)
    mu = 0.2 + 1e-4 * (e - 7000) + 1.0 / (1 + np.exp(-(e - 7123.3) / 1.5))
    assert find_e0(e, mu) == pytest.approx(7123.3, abs=0.5)


def test_explicit_arguments_are_respected_and_e0_outside_range_is_found():
    s = read_spectrum(DATA / "spectra" / "larch_cu_metal_rt.txt")
    out = pre_edge(s.energy, s.mu, e0=8980.0, pre1=-150.0, pre2=-50.0, norm1=50.0, norm2=400.0, nnorm=2)
    assert (float(out.e0), out.pre1, out.pre2, out.norm1, out.norm2, out.nnorm) == (
        8980.0, -150.0, -50.0, 50.0, 400.0, 2
    )
    auto = pre_edge(s.energy, s.mu, e0=1.0)  # outside the data: replaced as larch does
    assert float(auto.e0) == pytest.approx(REFERENCE["spectra"]["larch_cu_metal_rt"]["e0"], abs=1e-9)


def test_pre_edge_of_an_exact_model_recovers_it():
    # mu = pre-line + step * (1 + quadratic) above e0: norm is exactly the step function shape
    e = np.linspace(8800.0, 9400.0, 601)
    e0 = 8980.0
    pre = 0.3 - 2e-4 * (e - e0)
    post_shape = 1.0 + 1e-3 * (e - e0) - 1e-6 * (e - e0) ** 2
    mu = pre + 1.7 * np.where(e >= e0, post_shape, 0.0)
    out = pre_edge(e, mu, e0=e0, pre1=-150, pre2=-30, norm1=30, norm2=400, nnorm=2)
    assert float(out.edge_step) == pytest.approx(1.7, rel=1e-9)
    np.testing.assert_allclose(out.pre_edge, pre, atol=1e-9)
    np.testing.assert_allclose(np.asarray(out.flat)[e >= e0], 1.0, atol=1e-8)


def test_normalise_is_differentiable_and_jits(tol):
    s = read_spectrum(DATA / "spectra" / "ixas_Mn_Mn3O4_rt_01.txt")
    auto = pre_edge(s.energy, s.mu)
    ranges = dict(pre1=auto.pre1, pre2=auto.pre2, norm1=auto.norm1, norm2=auto.norm2, nnorm=auto.nnorm)
    e = jnp.asarray(s.energy)
    w = jnp.linspace(0.0, 1.0, e.size)

    @jax.jit
    def loss(mu, e0):
        out = normalise(e, mu, e0=e0, **ranges)
        return jnp.sum(w * out.flat**2) / e.size + out.edge_step

    jitted = normalise(e, jnp.asarray(s.mu), e0=auto.e0, **ranges)
    np.testing.assert_allclose(jitted.flat, auto.flat, rtol=1e-12)
    check_grads(loss, (jnp.asarray(s.mu), auto.e0), order=1, modes=["rev"],
                atol=tol["grad_atol"], rtol=tol["grad_rtol"])


def test_normalise_vmap_equals_loop(tol):
    s = read_spectrum(DATA / "spectra" / "xdi_zn_znse_rt.txt")
    auto = pre_edge(s.energy, s.mu)
    ranges = dict(pre1=auto.pre1, pre2=auto.pre2, norm1=auto.norm1, norm2=auto.norm2, nnorm=auto.nnorm)
    batch = jnp.stack([s.mu, 2.0 * s.mu + 0.1, s.mu + 1e-3 * (s.energy - s.energy[0])])
    f = jax.jit(lambda m: normalise(s.energy, m, e0=auto.e0, **ranges).flat)
    out = jax.vmap(f)(batch)
    for i in range(3):
        np.testing.assert_allclose(out[i], f(batch[i]), rtol=tol["batch_rtol"], atol=1e-12)
    # scaling and offsetting mu leaves norm unchanged (edge-step normalisation)
    np.testing.assert_allclose(out[1], out[0], atol=1e-9)


def test_pre_edge_rejects_bad_input():
    e = np.linspace(0, 1, 20)
    with pytest.raises(ValueError, match="NaN"):
        pre_edge(e, np.where(e > 0.5, np.nan, e))
    with pytest.raises(ValueError, match="at least 10"):
        pre_edge(e[:5], e[:5])
