"""Inputs of the inverse models: normalised spectra on the model grid, frequency-domain features, augmentation.

An inverse model reads a normalised XANES spectrum (edge step 1, pre-edge 0; the ``flat`` spectrum of
xraylarch's ``pre_edge``) sampled on its own absolute energy grid (``config["energy"]``), optionally
with frequency-domain features of the post-edge oscillation (Fourier magnitudes in photoelectron
wavenumber k, in the spirit of the spectral transforms of SPT, Zhong et al.). Training spectra are
augmented the way measured spectra differ from FEFF: an energy shift (calibration), extra Gaussian
broadening (instrument resolution) and noise, as studied by David et al., Digital Discovery 2, 1461
(2023), Figs. 5-6.

Everything that runs per example here is pure JAX (jit/vmap-able); host-side helpers say so.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

__all__ = [
    "AugmentConfig",
    "KE",
    "interp",
    "gaussian_broaden",
    "shift",
    "augment",
    "edge_position",
    "fourier_features",
    "normalise_measured",
    "check_spectrum",
]

# hbar^2 / (2 m_e) in eV Å^2: k (1/Å) = sqrt((E - E0) / KE)
KE = 3.80998212


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the training augmentation (each example draws uniformly within them).

    Attributes:
        max_shift: energy shift range +-max_shift (eV).
        max_fwhm: extra Gaussian broadening FWHM drawn in [0, max_fwhm] (eV).
        max_noise: Gaussian noise standard deviation drawn in [0, max_noise] (edge-step units).
        p_clean: probability that an example is left unaugmented.
    """

    max_shift: float = 2.5
    max_fwhm: float = 3.0
    max_noise: float = 0.01
    p_clean: float = 0.2


def interp(x_new: Float[Array, " n"], x: Float[Array, " m"], y: Float[Array, " m"]) -> Float[Array, " n"]:
    """Linear interpolation with constant extrapolation beyond the ends (``jnp.interp``)."""
    return jnp.interp(x_new, x, y)


def gaussian_broaden(
    energy: Float[Array, " e"], mu: Float[Array, " e"], fwhm: Float[Array, ""]
) -> Float[Array, " e"]:
    """Convolve ``mu`` with a unit-area Gaussian of full width ``fwhm`` (eV) on any sorted grid.

    The kernel rows are renormalised over the grid, so the ends are not pulled towards zero; a
    ``fwhm`` of 0 returns ``mu`` (the width is floored at 1e-3 eV, far below any grid step).
    """
    sigma = jnp.maximum(fwhm, 1e-3) / (2.0 * jnp.sqrt(2.0 * jnp.log(2.0)))
    d = (energy[:, None] - energy[None, :]) / sigma
    k = jnp.exp(-0.5 * d**2)
    # trapezoid weights make the kernel area-correct on non-uniform grids
    w = jnp.gradient(energy)
    k = k * w[None, :]
    return (k @ mu) / jnp.sum(k, axis=1)


def shift(energy: Float[Array, " e"], mu: Float[Array, " e"], de: Float[Array, ""]) -> Float[Array, " e"]:
    """The spectrum moved by ``de`` eV (positive: to higher energy), on the same grid."""
    return interp(energy - de, energy, mu)


def augment(
    energy: Float[Array, " s"],
    mu: Float[Array, " s"],
    grid: Float[Array, " e"],
    cfg: AugmentConfig,
    *,
    key: Array,
) -> Float[Array, " e"]:
    """One randomly shifted, broadened and noisy copy of ``mu`` (on ``energy``), sampled on ``grid``."""
    k_clean, k_shift, k_fwhm, k_noise, k_sig = jax.random.split(key, 5)
    clean = jax.random.uniform(k_clean) < cfg.p_clean
    de = jnp.where(clean, 0.0, jax.random.uniform(k_shift, minval=-cfg.max_shift, maxval=cfg.max_shift))
    fwhm = jnp.where(clean, 0.0, jax.random.uniform(k_fwhm, maxval=cfg.max_fwhm))
    sig = jnp.where(clean, 0.0, jax.random.uniform(k_sig, maxval=cfg.max_noise))
    y = gaussian_broaden(energy, mu, fwhm)
    y = interp(grid - de, energy, y)
    return y + sig * jax.random.normal(k_noise, grid.shape, y.dtype)


def edge_position(energy: Float[Array, " e"], mu: Float[Array, " e"], smooth: float = 1.0) -> Float[Array, ""]:
    """Energy (eV) of the maximum of d mu / dE after a ``smooth`` eV Gaussian smoothing (noise-robust E0)."""
    y = gaussian_broaden(energy, mu, jnp.asarray(smooth))
    dy = jnp.gradient(y, energy)
    return energy[jnp.argmax(dy)]


def fourier_features(
    energy: Float[Array, " e"],
    mu: Float[Array, " e"],
    *,
    n_k: int = 64,
    n_out: int = 24,
    e_start: float = 10.0,
) -> Float[Array, " f"]:
    """Fourier magnitudes of the post-edge oscillation of a normalised spectrum.

    chi(k) = mu - 1 for E > E0 + ``e_start`` (E0 from :func:`edge_position`, so the features do not
    move with a rigid energy shift), resampled on ``n_k`` uniform k points (k = sqrt((E-E0)/KE)),
    weighted by k and a Hann window; the result is |FFT| (zero-padded 4x) of the first ``n_out``
    frequencies, the XANES analogue of the EXAFS Fourier transform: bin j sits at R = pi j / (4 dk_span) Å,
    about 0.2 Å per bin for an 80 eV post-edge window.

    Args:
        energy: ``[e]`` absolute grid (eV), mu: ``[e]`` normalised spectrum.
        n_k, n_out: number of k samples and of returned frequencies (static).
        e_start: start of the post-edge window above E0 (eV).

    Returns:
        ``[n_out]`` Fourier magnitudes.
    """
    e0 = edge_position(energy, mu)
    k_lo = jnp.sqrt(e_start / KE)
    k_hi = jnp.sqrt(jnp.maximum(energy[-1] - e0, e_start + 1.0) / KE)
    k = k_lo + (k_hi - k_lo) * jnp.linspace(0.0, 1.0, n_k)
    chi = interp(e0 + KE * k**2, energy, mu) - 1.0
    win = 0.5 - 0.5 * jnp.cos(2.0 * jnp.pi * jnp.arange(n_k) / (n_k - 1))
    spec = jnp.fft.rfft(chi * k * win, n=4 * n_k)  # 4x zero padding: smooth |FFT| in R
    re, im = jnp.real(spec[:n_out]), jnp.imag(spec[:n_out])
    sq = re**2 + im**2
    ok = sq > 0
    return jnp.where(ok, jnp.sqrt(jnp.where(ok, sq, 1.0)), 0.0) / n_k


def check_spectrum(energy, mu, grid, *, source: str = "spectrum", min_cover: float = 0.8) -> None:
    """Reject spectra the inverse model cannot read, with a message naming the problem (host side).

    Raises:
        ValueError: non-finite values, mismatched shapes, non-increasing energy, fewer than 20 points,
            a constant spectrum, or an energy range covering less than ``min_cover`` of the model grid.
    """
    energy, mu, grid = np.asarray(energy, float), np.asarray(mu, float), np.asarray(grid, float)
    if energy.ndim != 1 or mu.shape != energy.shape:
        raise ValueError(f"{source}: energy and mu must be 1-D of equal length, got {energy.shape} and {mu.shape}")
    if energy.size < 20:
        raise ValueError(f"{source}: only {energy.size} points; an inverse model needs a XANES scan (>= 20 points)")
    if not (np.all(np.isfinite(energy)) and np.all(np.isfinite(mu))):
        raise ValueError(f"{source}: NaN or infinite values in the spectrum")
    if np.any(np.diff(energy) <= 0):
        raise ValueError(f"{source}: energy must be strictly increasing")
    if np.ptp(mu) <= 1e-8 * max(1.0, np.max(np.abs(mu))):
        raise ValueError(f"{source}: the spectrum is constant; no edge to read")
    lo, hi = max(energy[0], grid[0]), min(energy[-1], grid[-1])
    cover = max(0.0, hi - lo) / (grid[-1] - grid[0])
    if cover < min_cover:
        raise ValueError(
            f"{source}: energy range {energy[0]:.1f}-{energy[-1]:.1f} eV covers {100 * cover:.0f}% of the "
            f"model grid {grid[0]:.1f}-{grid[-1]:.1f} eV (need {100 * min_cover:.0f}%): "
            "wrong element or edge, or relative energies?"
        )


def normalise_measured(energy, mu, *, source: str = "spectrum") -> tuple[np.ndarray, np.ndarray, float]:
    """Normalise a measured spectrum to edge step 1 (host side): xraylarch's ``pre_edge`` ``flat``.

    Uses ``jxas.spectrum.pre_edge`` (xraylarch semantics and automatic defaults) when the spectra layer
    provides it; otherwise a fallback with the same recipe: E0 at the maximum of dmu/dE, a line fitted
    to the pre-edge [E0-150, E0-30] eV (or the first 10% of the scan), a quadratic fitted to the
    post-edge [E0+50, end] eV (or the last 30%), edge step = post - pre at E0, flat above E0.

    Returns:
        ``(energy, flat, e0)``.
    """
    energy, mu = np.asarray(energy, float), np.asarray(mu, float)
    try:
        from jxas.spectrum import pre_edge  # the spectra layer's implementation, when present
    except ImportError:
        pre_edge = None
    if pre_edge is not None:
        res = pre_edge(energy, mu)
        flat = np.asarray(res.flat, float)
        e0 = float(res.e0)
    else:
        flat, e0 = _normalise_fallback(energy, mu)
    if not np.all(np.isfinite(flat)):
        raise ValueError(f"{source}: normalisation produced non-finite values (is there an edge in the scan?)")
    return energy, flat, e0


def _normalise_fallback(energy: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, float]:
    sm = np.convolve(mu, np.ones(3) / 3, mode="same")
    d = np.gradient(sm, energy)
    d[:2] = d[-2:] = -np.inf
    e0 = float(energy[np.argmax(d)])
    pre = (energy >= e0 - 150) & (energy <= e0 - 30)
    if pre.sum() < 3:
        pre = energy <= energy[0] + 0.1 * (energy[-1] - energy[0])
        pre &= energy < e0 - 5
    post = energy >= e0 + 50
    if post.sum() < 5:
        post = energy >= energy[-1] - 0.3 * (energy[-1] - e0)
    if pre.sum() >= 2:
        pre_line = np.polyval(np.polyfit(energy[pre], mu[pre], 1), energy)
    else:  # scan starts at the edge (e.g. FEFF output): no pre-edge to remove
        pre_line = np.full_like(mu, mu[0])
    deg = 2 if post.sum() >= 8 else 1
    post_curve = np.polyval(np.polyfit(energy[post], mu[post] - pre_line[post], deg), energy)
    i0 = int(np.argmin(np.abs(energy - e0)))
    step = post_curve[i0]
    if not np.isfinite(step) or step <= 0:
        raise ValueError("edge step is not positive: no absorption edge found in the scan")
    norm = (mu - pre_line) / step
    flat = np.where(energy > e0, norm - (post_curve - step) / step, norm)
    return flat, e0
