"""Spectrum metrics against hand evaluations: MSE, eta, Pearson, edge onset, peak errors, window."""

from __future__ import annotations

import numpy as np
import pytest

from jxas.train.metrics import edge_onset, mse, peak_errors, peak_position, pearson, spectrum_metrics, window_mask

E = 8979.0 + np.arange(-20, 80.001, 0.25)


def _spectrum(e0, peak_e, peak_h, width=3.0):
    """Arctan edge at e0 (half-width 1 eV) plus a Gaussian white line: a FEFF-like K-edge shape."""
    return 0.5 + np.arctan((E - e0) / 1.0) / np.pi + peak_h * np.exp(-0.5 * ((E - peak_e) / width) ** 2)


def test_peak_position_subgrid():
    # Gaussian peak 0.1 eV off the grid; the parabola vertex through 3 points of spacing 0.25 eV on a
    # sigma = 3 eV Gaussian is exact to ~1e-3 eV
    mu = np.exp(-0.5 * ((E - 9000.1) / 3.0) ** 2) * 2.0
    e, h = peak_position(E, mu)
    assert abs(e[0] - 9000.1) < 5e-3 and abs(h[0] - 2.0) < 1e-3


def test_edge_onset_and_window():
    mu = np.stack([_spectrum(8981.3, 8995, 0.6), _spectrum(8990.0, 9004, 0.6)])
    on = edge_onset(E, mu)
    np.testing.assert_allclose(on, [8981.25, 8990.0], atol=0.25)
    m = window_mask(E, on, 35.0)
    assert m.shape == mu.shape
    assert E[m[0]].min() >= on[0] and E[m[0]].max() <= on[0] + 35.0
    assert m[0].sum() == 141  # 35 eV / 0.25 eV + 1


def test_mse_pearson_eta_by_hand(rng):
    ref = np.stack([_spectrum(8981 + d, 8995 + d, 0.5 + 0.1 * d) for d in range(7)])
    noise = rng.normal(scale=0.01, size=ref.shape)
    pred = ref + noise
    np.testing.assert_allclose(mse(pred, ref), np.mean(noise**2, axis=1))
    r_np = [np.corrcoef(p, r)[0, 1] for p, r in zip(pred, ref, strict=True)]
    np.testing.assert_allclose(pearson(pred, ref), r_np, rtol=1e-12)
    train_mean = ref.mean(0) + 0.02
    m = spectrum_metrics(E, pred, ref, train_mean)
    base = np.median(np.mean((train_mean - ref) ** 2, axis=1))
    model = np.median(np.mean(noise**2, axis=1))
    assert m["eta"] == pytest.approx(base / model)
    assert m["median_mse"] == pytest.approx(model)
    # near-edge window by hand for the baseline
    on = edge_onset(E, ref)
    w = (E[None] >= on[:, None]) & (E[None] <= on[:, None] + 35)
    base_w = np.median([np.mean(((train_mean - r) ** 2)[k]) for r, k in zip(ref, w, strict=True)])
    assert m["baseline_median_mse_edge"] == pytest.approx(base_w)
    assert m["n"] == 7 and 0.99 < m["median_pearson"] <= 1.0


def test_peak_errors_known_shift():
    ref = np.stack([_spectrum(8981, 8995, 0.8), _spectrum(8981, 8997, 0.8)])
    pred = np.stack([_spectrum(8981, 8995.6, 0.8), _spectrum(8981, 8996.5, 0.9)])
    de, dmu = peak_errors(E, pred, ref)
    np.testing.assert_allclose(de, [0.6, 0.5], atol=0.03)
    assert dmu[0] < 0.01 and abs(dmu[1] - 0.1) < 0.02


def test_bad_input_raises():
    ref = np.stack([_spectrum(8981, 8995, 0.8)])
    with pytest.raises(ValueError, match="NaN"):
        spectrum_metrics(E, ref * np.nan, ref, ref[0])
    with pytest.raises(ValueError, match="shape"):
        spectrum_metrics(E, ref[:, :-1], ref, ref[0])
    with pytest.raises(ValueError, match="energy grid"):
        spectrum_metrics(E[:-1], ref, ref, ref[0])
