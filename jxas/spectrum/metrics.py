"""Spectral comparison metrics on the last axis (so they vectorise over any leading batch axes).

``mse`` and ``pearson`` are differentiable; ``spearman`` and ``peak_errors`` involve ranks and argmax and are
evaluation metrics (piecewise constant in the peak positions). Peak-position and peak-intensity errors
follow the evaluation of Rankine, Madkhali & Penfold, J. Phys. Chem. A 124, 4263 (2020): the positions
(Delta E) and intensities (Delta mu) of the prominent peaks of the reference, matched to the highest point of
the prediction within a search window.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int

__all__ = ["mse", "pearson", "spearman", "find_peaks", "peak_errors"]


def mse(a: Float[ArrayLike, "... e"], b: Float[ArrayLike, "... e"]) -> Float[Array, "..."]:
    """Mean squared error over the last axis."""
    return jnp.mean((jnp.asarray(a) - jnp.asarray(b)) ** 2, axis=-1)


def pearson(a: Float[ArrayLike, "... e"], b: Float[ArrayLike, "... e"]) -> Float[Array, "..."]:
    """Pearson correlation coefficient over the last axis (0 if either input is constant)."""
    a, b = jnp.asarray(a), jnp.asarray(b)
    da = a - jnp.mean(a, axis=-1, keepdims=True)
    db = b - jnp.mean(b, axis=-1, keepdims=True)
    den2 = jnp.sum(da**2, axis=-1) * jnp.sum(db**2, axis=-1)
    ok = den2 > 0
    return jnp.where(ok, jnp.sum(da * db, axis=-1) / jnp.sqrt(jnp.where(ok, den2, 1.0)), 0.0)


def _average_rank(x: Array) -> Array:
    """Ranks 1..e with ties given their average rank (as ``scipy.stats.rankdata``); O(e^2) memory."""
    less = jnp.sum(x[..., None, :] < x[..., :, None], axis=-1)
    leq = jnp.sum(x[..., None, :] <= x[..., :, None], axis=-1)
    return 0.5 * (less + leq + 1).astype(x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32)


def spearman(a: Float[ArrayLike, "... e"], b: Float[ArrayLike, "... e"]) -> Float[Array, "..."]:
    """Spearman rank correlation over the last axis (Pearson correlation of average ranks)."""
    return pearson(_average_rank(jnp.asarray(a)), _average_rank(jnp.asarray(b)))


def _is_local_max(energy: Array, mu: Array, window: float, max_points: int) -> Array:
    """True where ``mu`` is the largest value within ``window`` eV (at most ``max_points`` points) on each
    side; the two end points are never maxima. Works with a traced ``energy``."""
    n = mu.shape[-1]
    ok = (jnp.arange(n) > 0) & (jnp.arange(n) < n - 1)
    for s in range(1, min(max_points, n - 1) + 1):
        for sign in (1, -1):
            j = jnp.clip(jnp.arange(n) + sign * s, 0, n - 1)
            inside = (jnp.abs(energy[j] - energy) <= window) & (j != jnp.arange(n))
            ok = ok & ~(inside & (mu[j] > mu))
    return ok


@functools.partial(jax.jit, static_argnames=("n_peaks", "window", "max_points"))
def find_peaks(
    energy: Float[ArrayLike, " e"],
    mu: Float[ArrayLike, " e"],
    *,
    n_peaks: int = 3,
    window: float = 2.0,
    max_points: int = 32,
) -> tuple[Int[Array, " k"], Array]:
    """The ``n_peaks`` highest local maxima of one spectrum, in increasing energy.

    A point is a local maximum if no point within ``window`` eV (and ``max_points`` grid points) on either
    side is higher, and it is not at an end of the grid.

    Returns:
        ``(index [k], valid [k])``; ``valid`` is False for slots beyond the number of maxima found (their
        index is 0).
    """
    energy, mu = jnp.asarray(energy), jnp.asarray(mu)
    n = mu.shape[-1]
    height = jnp.where(_is_local_max(energy, mu, window, max_points), mu, -jnp.inf)
    _, idx = jax.lax.top_k(height, n_peaks)
    valid = jnp.isfinite(height[idx])
    key = jnp.where(valid, idx, n + jnp.arange(n_peaks))  # invalid slots last
    order = jnp.argsort(key)
    idx, valid = idx[order], valid[order]
    return jnp.where(valid, idx, 0), valid


@functools.partial(jax.jit, static_argnames=("n_peaks", "window", "search"))
def peak_errors(
    energy: Float[ArrayLike, " e"],
    pred: Float[ArrayLike, "... e"],
    ref: Float[ArrayLike, "... e"],
    *,
    n_peaks: int = 3,
    window: float = 2.0,
    search: float = 5.0,
) -> tuple[Float[Array, "... k"], Float[Array, "... k"]]:
    """Peak-position and peak-intensity errors ``(Delta E, Delta mu)`` of the prominent peaks of ``ref``.

    For each of the ``n_peaks`` highest local maxima of ``ref`` (:func:`find_peaks`, in increasing energy),
    the highest point of ``pred`` within ``search`` eV of it is taken as the matching peak; ``Delta E =
    E_pred - E_ref`` (eV) and ``Delta mu = mu_pred - mu_ref``. Slots for which ``ref`` has no peak hold 0
    (use :func:`find_peaks` for the mask).

    Args:
        energy: ``[e]`` uniform grid, eV.
        pred, ref: ``[..., e]`` spectra (normalised, typically).
        n_peaks: number of peaks compared.
        window: half-width (eV) within which a reference peak must be the maximum.
        search: half-width (eV) of the window searched in ``pred``.

    Returns:
        ``(dE [..., k], dmu [..., k])``.
    """
    energy = jnp.asarray(energy)

    def one(p, r):
        idx, valid = find_peaks(energy, r, n_peaks=n_peaks, window=window)
        e_ref = energy[idx]
        near = jnp.abs(energy[None, :] - e_ref[:, None]) <= search
        j = jnp.argmax(jnp.where(near, p[None, :], -jnp.inf), axis=-1)
        de = jnp.where(valid, energy[j] - e_ref, 0.0)
        dmu = jnp.where(valid, p[j] - r[idx], 0.0)
        return de, dmu

    pred, ref = jnp.broadcast_arrays(jnp.asarray(pred), jnp.asarray(ref))
    lead = pred.shape[:-1]
    p2, r2 = pred.reshape((-1, pred.shape[-1])), ref.reshape((-1, ref.shape[-1]))
    de, dmu = jax.vmap(one)(p2, r2)
    return de.reshape(lead + (n_peaks,)), dmu.reshape(lead + (n_peaks,))
