"""Metrics (MSE, Pearson, Spearman, peak errors) and E0 alignment."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import DATA
from jax.test_util import check_grads

from jxas.io.spectra import read_spectrum
from jxas.spectrum import align, find_peaks, metrics, mse, peak_errors, pearson, shift, spearman

E = 8979.0 + np.arange(-20.0, 80.0 + 0.125, 0.25)


def _spec(e, centres, heights, width=2.0):
    x = e - 8979.0
    out = 0.5 * (1 + np.tanh(x / 2.0))
    for c, h in zip(centres, heights, strict=True):
        out = out + h * np.exp(-0.5 * ((x - c) / width) ** 2)
    return out


def test_mse_pearson_spearman_against_numpy_and_scipy(rng, tol):
    from scipy.stats import spearmanr

    a = rng.normal(size=(5, 50))
    b = a + 0.5 * rng.normal(size=(5, 50))
    b[0, :10] = b[0, 10]  # ties
    np.testing.assert_allclose(mse(a, b), np.mean((a - b) ** 2, axis=-1), rtol=1e-12)
    for i in range(5):
        assert float(pearson(a, b)[i]) == pytest.approx(np.corrcoef(a[i], b[i])[0, 1], rel=1e-10)
        assert float(spearman(a, b)[i]) == pytest.approx(spearmanr(a[i], b[i]).statistic, rel=1e-10)
    assert float(pearson(a[0], np.ones(50))) == 0.0  # constant input: defined, not NaN
    assert metrics.mse is mse


def test_pearson_and_mse_gradients(rng, tol):
    a, b = jnp.asarray(rng.normal(size=30)), jnp.asarray(rng.normal(size=30))
    check_grads(lambda x: pearson(x, b), (a,), order=1, modes=["rev"], atol=tol["grad_atol"], rtol=tol["grad_rtol"])
    check_grads(lambda x: mse(x, b), (a,), order=1, modes=["rev"], atol=tol["grad_atol"], rtol=tol["grad_rtol"])


def test_find_peaks_and_peak_errors_recover_known_offsets():
    ref = _spec(E, [5.0, 20.0, 45.0], [1.0, 0.5, 0.3])
    pred = _spec(E, [6.0, 19.0, 45.5], [0.9, 0.55, 0.3])
    idx, valid = find_peaks(E, ref, n_peaks=3)
    assert bool(valid.all())
    np.testing.assert_allclose(E[np.asarray(idx)] - 8979.0, [5.0, 20.0, 45.0], atol=0.5)
    de, dmu = peak_errors(E, pred, ref, n_peaks=3)
    np.testing.assert_allclose(de, [1.0, -1.0, 0.5], atol=0.3)
    # intensity errors: highest prediction value within 5 eV of each reference peak minus the reference peak
    expected = [pred[np.abs(E - 8979.0 - c) <= 5.0].max() - ref[np.argmin(np.abs(E - 8979.0 - c))]
                for c in (5.0, 20.0, 45.0)]
    np.testing.assert_allclose(dmu, expected, atol=1e-12)
    assert float(dmu[0]) < 0 and float(dmu[1]) > 0
    # identical spectra: no error
    de0, dmu0 = peak_errors(E, ref, ref)
    assert np.all(np.asarray(de0) == 0) and np.all(np.asarray(dmu0) == 0)


def test_peak_errors_vectorise_over_batches_and_mask_missing_peaks():
    refs = np.stack([_spec(E, [5.0, 20.0, 45.0], [1.0, 0.5, 0.3]), _spec(E, [10.0, 30.0, 50.0], [0.8, 0.4, 0.2])])
    preds = np.stack([shift(E, refs[0], 1.0), shift(E, refs[1], -0.5)])
    de, dmu = peak_errors(E, preds, refs)
    for i in range(2):
        d1, m1 = peak_errors(E, preds[i], refs[i])
        np.testing.assert_array_equal(de[i], d1)
        np.testing.assert_array_equal(dmu[i], m1)
    np.testing.assert_allclose(de[0], 1.0, atol=0.26)
    np.testing.assert_allclose(de[1], -0.5, atol=0.26)
    one_peak = np.exp(-0.5 * ((E - 9000.0) / 2.0) ** 2)
    idx, valid = find_peaks(E, one_peak, n_peaks=3)
    assert valid.tolist() == [True, False, False]
    de, dmu = peak_errors(E, one_peak, one_peak, n_peaks=3)
    assert np.asarray(de).tolist() == [0.0, 0.0, 0.0]
    jitted = jax.jit(lambda e, p, r: peak_errors(e, p, r))(E, preds, refs)  # traced energy works too
    np.testing.assert_array_equal(jitted[0], peak_errors(E, preds, refs)[0])


@pytest.mark.parametrize("de", [-3.0, 1.7])
def test_align_recovers_a_known_shift_on_a_measured_spectrum(de):
    s = read_spectrum(DATA / "spectra" / "larch_cu_metal_rt.txt")
    e = np.asarray(s.energy)
    # the same measurement, energy scale offset by de: aligning it back must give -de
    found = align(e + de, s.mu, e, s.mu)
    assert found == pytest.approx(-de, abs=0.1)
