"""Fourier features of the post-edge oscillation (inputs for the spectrum -> structure models).

The normalised spectrum is resampled on ``n`` uniform points over ``[e0 + e_lo, e0 + e_hi]``, a straight
line through the mean is removed (least squares) so only the oscillation remains, a Hann window tapers the
ends, and the magnitude and phase of the first ``n_out`` components of the real FFT (zero-padded to
``n_fft``) are returned. Pure JAX: differentiable with respect to ``mu`` and ``e0``.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from jxas.spectrum.interp import interp

__all__ = ["fourier_features"]


def fourier_features(
    energy: Float[ArrayLike, " e"],
    mu: Float[ArrayLike, "... e"],
    *,
    e0: Float[ArrayLike, ""],
    e_lo: float = 10.0,
    e_hi: float = 80.0,
    n: int = 256,
    n_fft: int = 512,
    n_out: int = 32,
) -> tuple[Float[Array, "... k"], Float[Array, "... k"]]:
    """Magnitude and phase of the FFT of the post-edge oscillation of ``mu``.

    Args:
        energy: ``[e]`` increasing energies, eV.
        mu: ``[..., e]`` normalised spectra.
        e0: edge energy, eV.
        e_lo, e_hi: post-edge window relative to ``e0``, eV.
        n: resampling points in the window (static).
        n_fft: FFT length (zero padding), ``>= n``.
        n_out: number of components returned (static), ``<= n_fft // 2 + 1``.

    Returns:
        ``(magnitude [..., n_out], phase [..., n_out])``; the frequency of component ``k`` is
        ``k / (n_fft * dE)`` cycles per eV with ``dE = (e_hi - e_lo) / (n - 1)``. The phase of a component
        of zero magnitude is 0.
    """
    if not 0 < n <= n_fft or n_out > n_fft // 2 + 1:
        raise ValueError(f"need 0 < n <= n_fft and n_out <= n_fft//2+1, got n={n}, n_fft={n_fft}, n_out={n_out}")
    t = jnp.linspace(-1.0, 1.0, n)
    x = e0 + e_lo + (t + 1.0) * 0.5 * (e_hi - e_lo)
    y = interp(x, energy, mu)
    ym = jnp.mean(y, axis=-1, keepdims=True)
    slope = jnp.sum((y - ym) * t, axis=-1, keepdims=True) / jnp.sum(t * t)
    osc = (y - ym - slope * t) * jnp.hanning(n)
    z = jnp.fft.rfft(osc, n=n_fft, axis=-1)[..., :n_out]
    re, im = jnp.real(z), jnp.imag(z)
    p2 = re**2 + im**2
    ok = p2 > 1e-30
    mag = jnp.where(ok, jnp.sqrt(jnp.where(ok, p2, 1.0)), 0.0)
    phase = jnp.where(ok, jnp.arctan2(jnp.where(ok, im, 0.0), jnp.where(ok, re, 1.0)), 0.0)
    return mag, phase
