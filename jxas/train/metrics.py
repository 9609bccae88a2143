"""Accuracy metrics of predicted spectra against reference spectra on a shared grid.

- median MSE over spectra (per-spectrum mean squared error, then the median over the set);
- **eta** (OmniXAS figure of merit; Kharatyan et al., "OmniXAS", arXiv:2409.19552, 2024): the median
  MSE of a baseline that always predicts the *training-set mean spectrum*, divided by the model's
  median MSE on the same test spectra (eta = 1: no better than the mean; larger is better);
- Pearson correlation per spectrum;
- peak-position error dE (eV) and peak-intensity error dmu of the most intense peak (Rankine, Madkhali
  & Penfold, J. Phys. Chem. A 124, 4263 (2020), section 3), with the peak located to sub-grid
  precision by the vertex of the parabola through the maximum and its two neighbours.

Every metric is reported over the full grid and over the ``window`` eV (default 35) just above the
edge onset of each *reference* spectrum, taken as the energy of the maximum of dmu/dE (the E0 of
xraylarch's ``pre_edge``). Host-side NumPy: metrics are evaluated after prediction, not traced.
Full-grid MSE and Pearson are those of :mod:`jxas.spectrum.metrics`; the masked (window) versions and
the single-main-peak errors with sub-grid refinement are here.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "mse",
    "pearson",
    "edge_onset",
    "peak_position",
    "peak_errors",
    "window_mask",
    "spectrum_metrics",
    "NEAR_EDGE_WINDOW",
]

NEAR_EDGE_WINDOW = 35.0  # eV above the edge onset (issue 5)


def _check(energy, pred, ref):
    energy = np.asarray(energy, float)
    pred = np.atleast_2d(np.asarray(pred, float))
    ref = np.atleast_2d(np.asarray(ref, float))
    if pred.shape != ref.shape:
        raise ValueError(f"predicted spectra {pred.shape} and references {ref.shape} differ in shape")
    if energy.ndim != 1 or energy.shape[0] != ref.shape[-1]:
        raise ValueError(f"energy grid has shape {energy.shape}, spectra have {ref.shape[-1]} points")
    if not (np.all(np.isfinite(pred)) and np.all(np.isfinite(ref))):
        raise ValueError("spectra contain NaN or infinite values")
    return energy, pred, ref


def mse(pred, ref, mask=None) -> np.ndarray:
    """Per-spectrum mean squared error ``[B]`` (over the points where ``mask`` [B, E] is True)."""
    pred, ref = np.atleast_2d(pred), np.atleast_2d(ref)
    if mask is None:
        from jxas.spectrum import metrics as spectral

        return np.asarray(spectral.mse(pred, ref))
    sq = (pred - ref) ** 2
    return (sq * mask).sum(-1) / np.maximum(mask.sum(-1), 1)


def pearson(pred, ref, mask=None) -> np.ndarray:
    """Per-spectrum Pearson correlation ``[B]`` (over ``mask`` points); 0 for a constant spectrum."""
    pred, ref = np.atleast_2d(pred), np.atleast_2d(ref)
    if mask is None:
        from jxas.spectrum import metrics as spectral

        return np.asarray(spectral.pearson(pred, ref))
    m = mask
    n = np.maximum(m.sum(-1, keepdims=True), 1)
    pc = pred - (pred * m).sum(-1, keepdims=True) / n
    rc = ref - (ref * m).sum(-1, keepdims=True) / n
    num = (pc * rc * m).sum(-1)
    den = np.sqrt((pc**2 * m).sum(-1) * (rc**2 * m).sum(-1))
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def edge_onset(energy, mu) -> np.ndarray:
    """Edge onset (eV) per spectrum: the energy of the maximum of dmu/dE (``[B]``)."""
    energy = np.asarray(energy, float)
    mu = np.atleast_2d(mu)
    d = np.gradient(mu, energy, axis=-1)
    return energy[np.argmax(d, axis=-1)]


def window_mask(energy, onset, width: float = NEAR_EDGE_WINDOW) -> np.ndarray:
    """``[B, E]`` mask of the points with ``onset <= E <= onset + width``."""
    e = np.asarray(energy, float)[None, :]
    o = np.asarray(onset, float)[:, None]
    return (e >= o) & (e <= o + width)


def peak_position(energy, mu, mask=None) -> tuple[np.ndarray, np.ndarray]:
    """Position (eV) and height of the highest point of each spectrum (within ``mask``).

    The maximum is refined to sub-grid precision by the vertex of the parabola through the grid
    maximum and its two neighbours (the grid maximum itself at the ends of the range).
    """
    energy = np.asarray(energy, float)
    mu = np.atleast_2d(np.asarray(mu, float))
    m = np.ones_like(mu, bool) if mask is None else mask
    x = np.where(m, mu, -np.inf)
    i = np.argmax(x, axis=-1)
    rows = np.arange(mu.shape[0])
    e_pk, y_pk = energy[i].copy(), mu[rows, i].copy()
    inner = (i > 0) & (i < mu.shape[-1] - 1)
    inner &= m[rows, np.clip(i - 1, 0, None)] & m[rows, np.clip(i + 1, None, mu.shape[-1] - 1)]
    for r in np.flatnonzero(inner):
        k = i[r]
        xs, ys = energy[k - 1 : k + 2], mu[r, k - 1 : k + 2]
        a, b, c = np.polyfit(xs - xs[1], ys, 2)
        if a < 0:
            xv = -b / (2 * a)
            if abs(xv) <= max(xs[2] - xs[1], xs[1] - xs[0]):
                e_pk[r], y_pk[r] = xs[1] + xv, c - b * b / (4 * a)
    return e_pk, y_pk


def peak_errors(energy, pred, ref, mask=None) -> tuple[np.ndarray, np.ndarray]:
    """Absolute peak-position error dE (eV) and peak-intensity error dmu per spectrum (``[B]`` each)."""
    ep, yp = peak_position(energy, pred, mask)
    er, yr = peak_position(energy, ref, mask)
    return np.abs(ep - er), np.abs(yp - yr)


def spectrum_metrics(energy, pred, ref, train_mean, *, window: float = NEAR_EDGE_WINDOW) -> dict[str, float]:
    """All accuracy figures of a set of predictions, over the full grid and the near-edge window.

    Args:
        energy: ``[E]`` grid (eV).
        pred, ref: ``[B, E]`` predicted and reference spectra.
        train_mean: ``[E]`` mean spectrum of the training set (the eta baseline).
        window: width (eV) of the near-edge window above each reference's onset.

    Returns:
        ``{"n", "median_mse", "mean_mse", "eta", "median_pearson", "median_peak_de", "median_peak_dmu",
        "mean_peak_de", ...}`` and the same keys with the suffix ``_edge`` for the window.
    """
    energy, pred, ref = _check(energy, pred, ref)
    base = np.broadcast_to(np.asarray(train_mean, float), ref.shape)
    out: dict[str, float] = {"n": int(ref.shape[0])}
    masks = {"": None, "_edge": window_mask(energy, edge_onset(energy, ref), window)}
    for suffix, m in masks.items():
        e_model = mse(pred, ref, m)
        e_base = mse(base, ref, m)
        med = float(np.median(e_model))
        de, dmu = peak_errors(energy, pred, ref, m)
        out.update({
            f"median_mse{suffix}": med,
            f"mean_mse{suffix}": float(np.mean(e_model)),
            f"baseline_median_mse{suffix}": float(np.median(e_base)),
            f"eta{suffix}": float(np.median(e_base) / med) if med > 0 else float("inf"),
            f"median_pearson{suffix}": float(np.median(pearson(pred, ref, m))),
            f"median_peak_de{suffix}": float(np.median(de)),
            f"mean_peak_de{suffix}": float(np.mean(de)),
            f"median_peak_dmu{suffix}": float(np.median(dmu)),
        })
    return out
