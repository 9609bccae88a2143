"""Interpolation, shift, broadening and Fourier features: formulas, area, identity limit, gradients, vmap."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jxas.spectrum import (
    arctan_width,
    broaden,
    derivative,
    fourier_features,
    interp,
    scale,
    seah_dench_width,
    shift,
)

E0 = 7112.0
GRID = E0 + np.arange(-20.0, 80.0 + 0.125, 0.25)  # the standard 401-point grid
SMALL = E0 + np.arange(-10.0, 50.0 + 0.25, 0.5)  # 121 points: gradient checks stay fast


def _peaks(e):
    """A smooth XANES-like test spectrum: edge step plus three Lorentzian-ish peaks."""
    x = e - E0
    return (
        0.5 * (1 + np.tanh(x / 2.0))
        + 0.8 * np.exp(-0.5 * ((x - 8.0) / 2.0) ** 2)
        + 0.3 * np.exp(-0.5 * ((x - 30.0) / 4.0) ** 2)
        + 0.1 * np.exp(-0.5 * ((x + 5.0) / 1.0) ** 2)
    )


# ------------------------------------------------------------------------------------------ interpolation
def test_interp_matches_numpy_and_extrapolates_constant(rng):
    x = np.sort(rng.uniform(0, 10, 30))
    y = rng.normal(size=30)
    xn = np.linspace(-2, 12, 101)
    np.testing.assert_allclose(interp(xn, x, y), np.interp(xn, x, y), rtol=1e-12, atol=1e-12)


def test_interp_batched_equals_loop(rng, tol):
    x = np.linspace(0, 1, 20)
    y = rng.normal(size=(4, 20))
    xn = rng.uniform(0, 1, 7)
    out = interp(xn, x, y)
    for i in range(4):
        np.testing.assert_allclose(out[i], np.interp(xn, x, y[i]), rtol=tol["batch_rtol"])


def test_shift_moves_a_feature_and_grad_matches_fd(tol):
    mu = _peaks(GRID)
    moved = shift(GRID, mu, 2.0)
    # the white-line maximum moves by +2 eV
    assert GRID[np.argmax(moved)] - GRID[np.argmax(mu)] == pytest.approx(2.0, abs=0.26)
    # shift by a whole number of grid steps is exact
    np.testing.assert_allclose(shift(GRID, mu, 0.5)[2:], mu[:-2], rtol=1e-12)
    f = jax.jit(lambda de, y: jnp.sum(shift(SMALL, y, de) ** 2 * jnp.linspace(0, 1, SMALL.size)))
    check_grads(f, (0.37, jnp.asarray(_peaks(SMALL))), order=1, modes=["rev"],
                atol=tol["grad_atol"], rtol=tol["grad_rtol"])


def test_scale_and_derivative():
    mu = _peaks(GRID)
    np.testing.assert_allclose(scale(mu, 1.7), 1.7 * mu)
    np.testing.assert_allclose(derivative(GRID, mu), np.gradient(mu, GRID), rtol=1e-12)


# --------------------------------------------------------------------------------------------- broadening
def test_arctan_width_formula_at_hand_picked_energies():
    # Gamma(E) = Gi + Gf (1/2 + 1/pi atan(pi Gf/(3 Ew) ((E-Ef)/Ec - Ec^2/(E-Ef)^2))), defaults 1.25/15/30/30/-5
    gi, gf, ec, ew, ef = 1.25, 15.0, 30.0, 30.0, -5.0
    for e in (-4.0, 0.0, 10.0, 25.0, 60.0, 200.0):
        d = e - ef
        ref = gi + gf * (0.5 + np.arctan(np.pi * gf / (3 * ew) * (d / ec - ec**2 / d**2)) / np.pi)
        assert float(arctan_width(e)) == pytest.approx(ref, rel=1e-12)
    # at E - E_f = E_c the argument vanishes: Gamma = Gi + Gf/2 exactly
    assert float(arctan_width(ec + ef)) == pytest.approx(gi + gf / 2, rel=1e-12)
    # at and below the Fermi level: the core-hole width only, finite gradient
    assert float(arctan_width(ef)) == gi and float(arctan_width(ef - 3.0)) == gi
    assert np.isfinite(jax.grad(lambda e: arctan_width(e))(ef))
    # far above: saturates at Gi + Gf
    assert float(arctan_width(1e5)) == pytest.approx(gi + gf, rel=1e-3)


def test_seah_dench_width_physical_values():
    # hbar v / lambda at 50 eV above E_f: lambda = 0.25 (538/50^2 + 0.41 sqrt(0.25*50)) nm
    lam = 0.25 * (538 / 2500 + 0.41 * np.sqrt(12.5))
    hv = 197.3269804 * np.sqrt(2 * 50 / 510998.95)
    assert float(seah_dench_width(45.0, gamma_i=1.0, e_f=-5.0)) == pytest.approx(1.0 + hv / lam, rel=1e-10)
    assert float(seah_dench_width(-6.0, gamma_i=1.0)) == 1.0


@pytest.mark.parametrize("model", ["gaussian", "lorentzian"])
def test_constant_width_preserves_area_of_a_central_peak(model):
    e = E0 + np.arange(-60.0, 60.0 + 0.125, 0.25)
    mu = np.exp(-0.5 * ((e - E0) / 0.8) ** 2)
    out = broaden(e, mu, model=model, fwhm=3.0)
    area_in, area_out = np.trapezoid(mu, e), np.trapezoid(out, e)
    # Gaussian: exact up to round-off; Lorentzian: its tails beyond +-60 eV (~ fwhm/(pi*60) ~ 1.6 %) leave
    rtol = 1e-9 if model == "gaussian" else 0.02
    assert area_out == pytest.approx(area_in, rel=rtol)
    assert out.max() < mu.max()  # it did broaden


@pytest.mark.parametrize("model", ["arctan", "seah_dench", "lorentzian", "gaussian"])
def test_constant_stays_constant_and_ends_are_not_distorted(model):
    mu = np.full(GRID.shape, 2.5)
    kw = {"fwhm": 4.0} if model in ("lorentzian", "gaussian") else {"e_edge": E0, "e_f": -100.0}
    np.testing.assert_allclose(broaden(GRID, mu, model=model, **kw), mu, rtol=1e-12)


@pytest.mark.parametrize("model", ["lorentzian", "gaussian"])
def test_vanishing_width_is_identity(model):
    mu = _peaks(GRID)
    # the Lorentzian converges linearly in the width (its tails), the Gaussian exponentially
    atol = 1e-6 if model == "lorentzian" else 1e-12
    np.testing.assert_allclose(broaden(GRID, mu, model=model, fwhm=1e-4), mu, rtol=1e-7, atol=atol)


def test_arctan_vanishing_width_is_identity_above_ef_and_zero_below():
    mu = _peaks(GRID)
    out = broaden(GRID, mu, e_edge=E0, gamma_i=1e-4, gamma_f=0.0)
    above = GRID - E0 >= -5.0
    np.testing.assert_allclose(out[above], mu[above], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(out[~above], 0.0, atol=1e-6)


def test_arctan_broadening_widens_high_energy_features_more():
    e = E0 + np.arange(-20.0, 120.0, 0.25)
    x = e - E0
    mu = np.exp(-0.5 * ((x - 2.0) / 0.3) ** 2) + np.exp(-0.5 * ((x - 90.0) / 0.3) ** 2)
    out = np.asarray(broaden(e, mu, e_edge=E0))
    low, high = out[(x > -3) & (x < 7)].max(), out[(x > 80) & (x < 100)].max()
    assert high < 0.5 * low  # the 90 eV peak (Gamma ~ 16 eV) is flattened far more than the 2 eV one


def test_broaden_gradients_wrt_widths_shift_scale_by_finite_differences(tol):
    mu = jnp.asarray(_peaks(SMALL))
    w = jnp.linspace(0.2, 1.0, SMALL.size)

    @jax.jit
    def loss(gi, gf, ec, ew, de, a):
        y = scale(broaden(SMALL, shift(SMALL, mu, de), e_edge=E0, gamma_i=gi, gamma_f=gf, e_c=ec, e_w=ew), a)
        return jnp.sum(w * y**2) / SMALL.size

    check_grads(loss, (1.25, 15.0, 30.0, 30.0, 0.3, 1.1), order=1, modes=["rev"],
                atol=tol["grad_atol"], rtol=tol["grad_rtol"])
    for model in ("lorentzian", "gaussian"):
        g = jax.jit(lambda f, y, m=model: jnp.sum(w * broaden(SMALL, y, model=m, fwhm=f) ** 2))
        check_grads(g, (2.0, mu), order=1, modes=["rev"], atol=tol["grad_atol"], rtol=tol["grad_rtol"])


def test_broaden_vmap_over_widths_equals_loop_and_jits(tol):
    mu = jnp.asarray(_peaks(GRID))
    gis = jnp.array([0.5, 1.25, 2.0])
    f = jax.jit(lambda gi, y: broaden(GRID, y, e_edge=E0, gamma_i=gi))
    batched = jax.vmap(f, in_axes=(0, None))(gis, mu)
    for i, gi in enumerate(gis):
        np.testing.assert_allclose(batched[i], f(gi, mu), rtol=tol["batch_rtol"])
    # a [b, e] batch on a shared grid is the same as one at a time
    stack = jnp.stack([mu, 2 * mu, mu**2])
    out = broaden(GRID, stack, e_edge=E0)
    for i in range(3):
        np.testing.assert_allclose(out[i], broaden(GRID, stack[i], e_edge=E0), rtol=tol["batch_rtol"])


def test_broaden_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown broadening model"):
        broaden(GRID, _peaks(GRID), model="voigt", fwhm=1.0)
    with pytest.raises(ValueError, match="fwhm"):
        broaden(GRID, _peaks(GRID), model="gaussian")
    with pytest.raises(ValueError, match="e_edge"):
        broaden(GRID, _peaks(GRID))


# ------------------------------------------------------------------------------------------------ Fourier
def test_fourier_features_find_the_oscillation_frequency(tol):
    e = E0 + np.arange(-20.0, 120.0, 0.25)
    period = 20.0  # eV
    mu = 1.0 + 0.1 * np.sin(2 * np.pi * (e - E0) / period)
    mag, phase = fourier_features(e, mu, e0=E0, e_lo=10.0, e_hi=90.0, n=256, n_fft=1024, n_out=64)
    de = 80.0 / 255
    k_peak = int(np.argmax(mag))
    assert k_peak / (1024 * de) == pytest.approx(1 / period, abs=1 / (1024 * de))
    assert mag.shape == phase.shape == (64,)
    f = jax.jit(lambda y, e0: jnp.sum(fourier_features(e, y, e0=e0, n=64, n_fft=128, n_out=16)[0] ** 2))
    check_grads(f, (jnp.asarray(mu), E0 + 0.1), order=1, modes=["rev"], atol=tol["grad_atol"], rtol=1e-4)


def test_fourier_features_vmap_equals_loop(tol):
    e = E0 + np.arange(-20.0, 120.0, 0.25)
    batch = np.stack([_peaks(e), _peaks(e) ** 2, np.sin(e / 7.0)])
    mag, phase = fourier_features(e, batch, e0=E0)
    for i in range(3):
        m1, p1 = fourier_features(e, batch[i], e0=E0)
        np.testing.assert_allclose(mag[i], m1, rtol=tol["batch_rtol"], atol=1e-12)
        np.testing.assert_allclose(phase[i], p1, rtol=tol["batch_rtol"], atol=1e-12)
