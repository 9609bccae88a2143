"""Calibration of ensemble uncertainties: coverage, sigma-error correlation, scale recalibration.

An ensemble predicts a mean m and a spread sigma per output. The spread "means what it says" when the
reference y falls inside m +- 2 sigma about 95% of the time (for Gaussian errors, 95.45%) and when a
larger sigma goes with a larger error. David et al., Digital Discovery 2, 1461 (2023) report, per
spectrum over its 50 G2 outputs, the fraction inside +-2 sigma (median over spectra) and the Pearson
correlation between the spectrum's mean sigma and its mean squared error; the same definitions are
used here. Bootstrap ensembles are usually over-confident; the simplest fix (Kuleshov et al., ICML 2018;
Levi et al., Sensors 22, 5540 (2022)) is one scale factor per output, fitted on validation data, that
multiplies sigma. Two fits are offered: "nll", the closed-form Gaussian maximum likelihood
s^2 = mean(((y - m) / sigma)^2), and "coverage", the quantile of |y - m| / sigma at the nominal
coverage divided by k, so that exactly that fraction of validation points falls inside +-k s sigma.
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

__all__ = ["coverage", "sigma_error_correlation", "fit_scale", "calibration_report", "gaussian_correlation_ceiling",
           "error_correlation", "NOMINAL_2SIGMA"]

NOMINAL_2SIGMA = float(special.erf(2.0 / np.sqrt(2.0)))  # 0.9545: Gaussian mass within +-2 sigma


def _check(y, mean, sigma):
    y, mean, sigma = (np.asarray(a, float) for a in (y, mean, sigma))
    if not (y.shape == mean.shape == sigma.shape):
        raise ValueError(f"y, mean and sigma must have the same shape, got {y.shape}, {mean.shape}, {sigma.shape}")
    for name, a in (("y", y), ("mean", mean), ("sigma", sigma)):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} has NaN or infinite values")
    if np.any(sigma < 0):
        raise ValueError("sigma must be non-negative")
    return y, mean, sigma


def coverage(y, mean, sigma, *, k: float = 2.0, axis: int | None = -1) -> np.ndarray:
    """Fraction of references inside ``mean +- k sigma``.

    Args:
        y, mean, sigma: arrays of equal shape, e.g. ``[N, D]`` (samples x outputs).
        k: half-width of the interval in units of sigma.
        axis: axis over which to average (default the last: one coverage per sample); None: all.
    """
    y, mean, sigma = _check(y, mean, sigma)
    inside = np.abs(y - mean) <= k * sigma
    return inside.mean(axis=axis)


def sigma_error_correlation(y, mean, sigma, *, axis: int = -1, method: str = "pearson",
                            summary: str = "mean") -> float:
    """Correlation between each sample's predicted sigma and its mean squared error.

    ``method`` "pearson" (as David et al. 2023) or "spearman". ``summary`` says how a sample's sigma
    over its outputs becomes one number: "mean" (the arithmetic mean, David et al. 2023) or "rms"
    (``sqrt(mean(sigma^2))``, the square root of the mean squared error the sigmas predict). Needs at
    least 3 samples.
    """
    y, mean, sigma = _check(y, mean, sigma)
    if summary not in ("mean", "rms"):
        raise ValueError(f"unknown summary {summary!r}; use 'mean' or 'rms'")
    if y.ndim == 1:
        s, mse = sigma, (y - mean) ** 2
    else:
        s = sigma.mean(axis=axis) if summary == "mean" else np.sqrt((sigma**2).mean(axis=axis))
        mse = ((y - mean) ** 2).mean(axis=axis)
    if s.size < 3:
        raise ValueError(f"need at least 3 samples for a correlation, got {s.size}")
    if np.ptp(s) == 0 or np.ptp(mse) == 0:
        raise ValueError("sigma or error is constant over the samples: correlation undefined")
    if method == "pearson":
        return float(stats.pearsonr(s, mse)[0])
    if method == "spearman":
        return float(stats.spearmanr(s, mse)[0])
    raise ValueError(f"unknown method {method!r}; use 'pearson' or 'spearman'")


def fit_scale(y, mean, sigma, *, method: str = "coverage", k: float = 2.0, nominal: float | None = None,
              axis: int | None = 0, floor: float = 1e-12) -> np.ndarray:
    """Scale factor(s) s for sigma fitted on validation data (one per output with the default ``axis=0``).

    Args:
        y, mean, sigma: validation references, ensemble means and spreads, e.g. ``[N, D]``.
        method: "coverage" (exact nominal coverage at +-k s sigma) or "nll" (Gaussian max. likelihood).
        k: interval half-width for "coverage".
        nominal: target coverage for "coverage" (default: Gaussian mass within +-k sigma).
        axis: sample axis (None: one scale for everything).
        floor: sigma below this is treated as this (a member-identical output would divide by 0).

    Returns:
        The scale(s), shape of ``y`` without ``axis``.
    """
    y, mean, sigma = _check(y, mean, sigma)
    z = np.abs(y - mean) / np.maximum(sigma, floor)
    if method == "nll":
        return np.sqrt(np.mean(z**2, axis=axis))
    if method == "coverage":
        q = float(special.erf(k / np.sqrt(2.0))) if nominal is None else float(nominal)
        if not 0 < q < 1:
            raise ValueError(f"nominal coverage must lie in (0, 1), got {q}")
        return np.quantile(z, q, axis=axis) / k
    raise ValueError(f"unknown method {method!r}; use 'coverage' or 'nll'")


def error_correlation(y, mean, sigma, *, floor: float = 1e-12) -> tuple[np.ndarray, float]:
    """Correlation between outputs of the standardised errors ``(y - mean) / sigma``, and its participation ratio.

    The G2 terms of one spectrum are not independent: a wrong first-shell distance moves every term near
    it. The participation ratio ``(sum lambda)^2 / sum lambda^2`` of the eigenvalues of this correlation
    matrix is the effective number of independent error components (D for independent outputs, 1 for
    fully correlated ones). Outputs whose standardised error does not vary get an independent unit row.

    Args:
        y, mean, sigma: ``[N, D]`` references, means, sigmas (N >= 3).

    Returns:
        ``(corr [D, D], participation_ratio)``.
    """
    y, mean, sigma = _check(y, mean, sigma)
    if y.ndim != 2 or len(y) < 3:
        raise ValueError(f"need [N, D] arrays with N >= 3, got {y.shape}")
    z = (y - mean) / np.maximum(sigma, floor)
    ok = z.std(0) > 0
    corr = np.eye(y.shape[1])
    if ok.sum() > 1:
        corr[np.ix_(ok, ok)] = np.corrcoef(z[:, ok].T)
    ev = np.clip(np.linalg.eigvalsh(corr), 0.0, None)
    return corr, float(ev.sum() ** 2 / np.sum(ev**2))


def gaussian_correlation_ceiling(sigma, *, corr=None, n_draws: int = 50, seed: int = 0) -> float:
    """Pearson(mean sigma, MSE) expected if every error were drawn from its predicted Gaussian.

    Even a perfectly calibrated sigma does not correlate perfectly with one sample's MSE: the squared
    errors of its outputs scatter around sigma^2. This is the mean correlation over ``n_draws``
    simulated error sets ``e ~ N(0, diag(sigma) corr diag(sigma))``: outputs independent by default, or
    correlated with ``corr`` ``[D, D]`` (e.g. from :func:`error_correlation`), which lowers it (fewer
    independent errors per sample, a noisier MSE). A reference for what a given spread of sigma between
    samples can reach.
    """
    sigma = np.asarray(sigma, float)
    if sigma.ndim != 2:
        raise ValueError(f"sigma must be [N, D], got shape {sigma.shape}")
    chol = None
    if corr is not None:
        corr = np.asarray(corr, float)
        d = sigma.shape[1]
        if corr.shape != (d, d) or not np.allclose(corr, corr.T) or not np.allclose(np.diag(corr), 1.0):
            raise ValueError(f"corr must be a symmetric [{d}, {d}] correlation matrix with unit diagonal")
        w, v = np.linalg.eigh(corr)
        if w.min() < -1e-8:
            raise ValueError("corr is not positive semi-definite")
        chol = v * np.sqrt(np.clip(w, 0.0, None))  # any square root works: e = z @ chol.T has covariance corr
    rng = np.random.default_rng(seed)
    s = sigma.mean(-1)
    r = []
    for _ in range(n_draws):
        z = rng.normal(size=sigma.shape)
        if chol is not None:
            z = z @ chol.T
        r.append(stats.pearsonr(s, ((z * sigma) ** 2).mean(-1))[0])
    return float(np.mean(r))


def calibration_report(y, mean, sigma, *, k: float = 2.0) -> dict[str, float]:
    """Median per-sample coverage at +-k sigma, overall coverage, Pearson/Spearman sigma-MSE correlations.

    ``pearson_sigma_mse`` is David et al.'s definition (mean sigma per sample); ``pearson_rms_sigma_mse``
    summarises a sample's sigmas by their root mean square instead; ``pearson_gaussian_ceiling`` is
    :func:`gaussian_correlation_ceiling` with independent outputs, ``pearson_gaussian_ceiling_correlated``
    the same with the outputs' error correlation observed in these data, whose participation ratio is
    ``error_participation_ratio`` (:func:`error_correlation`; diagnostics of what the spread of sigma can
    reach, they do not enter sigma).
    """
    cov = coverage(y, mean, sigma, k=k)
    out = {"median_coverage": float(np.median(cov)), "coverage": float(coverage(y, mean, sigma, k=k, axis=None))}
    try:
        out["pearson_sigma_mse"] = sigma_error_correlation(y, mean, sigma)
        out["pearson_rms_sigma_mse"] = sigma_error_correlation(y, mean, sigma, summary="rms")
        out["spearman_sigma_mse"] = sigma_error_correlation(y, mean, sigma, method="spearman")
        out["pearson_gaussian_ceiling"] = gaussian_correlation_ceiling(sigma)
        corr, pr = error_correlation(y, mean, sigma)
        out["pearson_gaussian_ceiling_correlated"] = gaussian_correlation_ceiling(sigma, corr=corr)
        out["error_participation_ratio"] = pr
    except ValueError:
        for key in ("pearson_sigma_mse", "pearson_rms_sigma_mse", "spearman_sigma_mse", "pearson_gaussian_ceiling",
                    "pearson_gaussian_ceiling_correlated", "error_participation_ratio"):
            out[key] = float("nan")
    return out
