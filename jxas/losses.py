"""Pure spectral distances, all with one signature: ``loss(pred, target, grid) -> scalar``.

``pred`` and ``target`` are ``[e]`` normalised mu on the same absolute energy grid; ``grid`` is a
:class:`LossGrid` with the energies (eV), the edge energy E0 (eV) and per-point weights (the fitting
window: 0 outside). Every loss is a pure JAX function, so a new one is a few lines::

    def l1(pred, target, grid):
        return jnp.sum(grid.weight * jnp.abs(pred - target)) / jnp.sum(grid.weight)

and plugs into :func:`jxas.refine` and :mod:`jxas.sweep` through ``loss=l1``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = ["LossGrid", "make_grid", "mse", "pearson", "derivative_weighted", "chi_k2", "LOSSES", "get_loss", "ETOK"]

# k (1/Å) = sqrt(ETOK (E - E0) / eV): ETOK = 2 m_e / hbar^2 = 0.2624682917 eV^-1 Å^-2 (CODATA 2018)
ETOK = 0.2624682917


class LossGrid(NamedTuple):
    """Where a spectral loss is evaluated.

    Attributes:
        energy: ``[e]`` absolute energies (eV).
        e0: scalar edge energy (eV), the k = 0 origin of k-space losses.
        weight: ``[e]`` non-negative point weights (0 outside the fitting window).
    """

    energy: Float[Array, " e"]
    e0: Float[Array, ""]
    weight: Float[Array, " e"]


def make_grid(energy, e0, *, window: tuple[float, float] | None = None) -> LossGrid:
    """A :class:`LossGrid` on ``energy`` (eV) with unit weights inside ``window`` = (lo, hi) relative to E0 (eV)."""
    energy = jnp.asarray(energy)
    w = jnp.ones_like(energy)
    if window is not None:
        lo, hi = window
        w = jnp.where((energy >= e0 + lo) & (energy <= e0 + hi), 1.0, 0.0).astype(energy.dtype)
    return LossGrid(energy=energy, e0=jnp.asarray(e0, energy.dtype), weight=w)


def _wmean(x, w):
    return jnp.sum(w * x) / jnp.maximum(jnp.sum(w), 1e-30)


def mse(pred: Float[Array, " e"], target: Float[Array, " e"], grid: LossGrid) -> Float[Array, ""]:
    """Weighted mean squared error of normalised mu (the default; Rankine et al. 2020 eq. 5)."""
    return _wmean((pred - target) ** 2, grid.weight)


def pearson(pred: Float[Array, " e"], target: Float[Array, " e"], grid: LossGrid) -> Float[Array, ""]:
    """``1 - r`` with r the weighted Pearson correlation: insensitive to amplitude and offset."""
    w = grid.weight
    dp = pred - _wmean(pred, w)
    dt = target - _wmean(target, w)
    cov = _wmean(dp * dt, w)
    var = _wmean(dp**2, w) * _wmean(dt**2, w)
    ok = var > 0
    return 1.0 - jnp.where(ok, cov / jnp.sqrt(jnp.where(ok, var, 1.0)), 0.0)


def derivative_weighted(pred: Float[Array, " e"], target: Float[Array, " e"], grid: LossGrid) -> Float[Array, ""]:
    """MSE with weights ``1 + |d target / dE| / mean |d target / dE|``: emphasises the edge and peaks,
    where the structural information of XANES sits, over flat regions."""
    d = jnp.abs(jnp.gradient(target, grid.energy))
    emph = 1.0 + d / jnp.maximum(_wmean(d, grid.weight), 1e-30)
    return _wmean(emph * (pred - target) ** 2, grid.weight)


def make_chi_k2(k_min: float = 1.5, k_max: float = 8.0, n_k: int = 128, kweight: float = 2.0) -> Callable:
    """Return a k-space loss: MSE of k^w chi(k) on a uniform k grid over [k_min, k_max] (1/Å).

    chi is taken as ``mu_norm - 1`` (the oscillation about the unit post-edge of a normalised
    spectrum), k = sqrt(0.2625 (E - E0)); the window is cut to the k range the grid covers (the
    XANES grid, E0 + 80 eV, reaches k ~ 4.6 1/Å). DeepFit (Martini et al.) fits chi(k) k^2 for
    k = 1.5-8 1/Å.
    """
    import numpy as np

    kq = jnp.asarray(np.linspace(0.0, 1.0, n_k))

    def chi_k2(pred: Float[Array, " e"], target: Float[Array, " e"], grid: LossGrid) -> Float[Array, ""]:
        de = jnp.maximum(grid.energy - grid.e0, 0.0)
        k = jnp.sqrt(ETOK * de + 1e-12)  # monotone in E: interp needs increasing x
        hi = jnp.minimum(k_max, k[-1])
        lo = jnp.minimum(k_min, hi)
        kk = lo + (hi - lo) * kq
        cp = jnp.interp(kk, k, pred - 1.0) * kk**kweight
        ct = jnp.interp(kk, k, target - 1.0) * kk**kweight
        wk = jnp.interp(kk, k, grid.weight)
        return _wmean((cp - ct) ** 2, wk)

    return chi_k2


chi_k2 = make_chi_k2()
chi_k2.__doc__ = "k^2-weighted chi(k) MSE over k = 1.5-8 1/Å (cut to the grid); see :func:`make_chi_k2`."

LOSSES: dict[str, Callable] = {
    "mse": mse,
    "pearson": pearson,
    "derivative": derivative_weighted,
    "chi_k2": chi_k2,
}


def get_loss(name_or_fn: str | Callable) -> Callable:
    """A loss by name (``mse``, ``pearson``, ``derivative``, ``chi_k2``) or the callable itself."""
    if callable(name_or_fn):
        return name_or_fn
    try:
        return LOSSES[name_or_fn]
    except KeyError:
        raise ValueError(f"unknown loss {name_or_fn!r}; choose one of {', '.join(LOSSES)} or pass a function") from None
