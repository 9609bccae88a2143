"""Radial distribution curve (RDC) descriptor.

Absorber-centred form (XANESNET default): RDC(R) = sum_j Z_0 Z_j exp(-alpha (r_0j - R)^2) over atoms
with 0 < r_0j < r_max. All-pairs form of Rankine, Madkhali & Penfold, J. Phys. Chem. A 124, 4263
(2020), eq. 1: RDC(R) = sum_{i<j} Z_i Z_j exp(-alpha (r_ij - R)^2) over pairs with 0 < r_ij < r_max.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from jxas.structure import Structure, neighbour_mask, safe_norm

__all__ = ["rdc", "make_rdc", "rdc_grid"]


def rdc_grid(r_min: float = 0.0, r_max: float = 8.0, dr: float = 0.01) -> np.ndarray:
    """The RDC's R grid (Å): linspace(r_min, r_max, int(|r_max - r_min| / dr) + 1)."""
    if dr <= 0:
        raise ValueError(f"dr must be positive, got {dr}")
    return np.linspace(r_min, r_max, int(abs(r_max - r_min) / dr) + 1)


@functools.lru_cache(maxsize=64)
def make_rdc(
    r_min: float = 0.0, r_max: float = 8.0, dr: float = 0.01, pairs: str = "absorber"
) -> Callable[..., Float[Array, " r"]]:
    """Return a pure ``rdc(structure, alpha)`` for a fixed grid (shape-setting arguments are static)."""
    if r_max <= 0:
        raise ValueError(f"r_max must be positive, got {r_max}")
    if pairs not in ("absorber", "all"):
        raise ValueError(f"pairs must be 'absorber' or 'all', got {pairs!r}")
    grid = rdc_grid(r_min, r_max, dr)  # NumPy constant: baked into each trace

    def rdc_absorber(s: Structure, alpha) -> Float[Array, " r"]:
        r = safe_norm(s.positions - s.positions[s.absorber])
        w = jnp.where(neighbour_mask(s, r_max), s.numbers * s.numbers[s.absorber], 0).astype(r.dtype)
        return jnp.sum(w[:, None] * jnp.exp(-alpha * (r[:, None] - grid) ** 2), axis=0)

    def rdc_all(s: Structure, alpha) -> Float[Array, " r"]:
        rij = safe_norm(s.positions[:, None, :] - s.positions[None, :, :])
        n = s.numbers.shape[0]
        upper = jnp.triu(jnp.ones((n, n), bool), k=1)
        ok = upper & s.mask[:, None] & s.mask[None, :] & (rij > 0) & (rij < r_max)
        zz = jnp.where(ok, s.numbers[:, None] * s.numbers[None, :], 0).astype(rij.dtype)
        g = jnp.exp(-alpha * (rij[..., None] - grid) ** 2)
        return jnp.einsum("ij,ijr->r", zz, g)

    return jax.jit(rdc_absorber if pairs == "absorber" else rdc_all)


def rdc(
    structure: Structure,
    *,
    r_min: float = 0.0,
    r_max: float = 8.0,
    dr: float = 0.01,
    alpha: float | Float[Array, ""] = 10.0,
    pairs: str = "absorber",
) -> Float[Array, " r"]:
    """Radial distribution curve of one structure (vmap over a batch).

    Args:
        structure: a single padded :class:`~jxas.structure.Structure`.
        r_min, r_max, dr: grid in Å (static; sets the output length ``int(|r_max-r_min|/dr) + 1``).
        alpha: Gaussian sharpness in 1/Å² (may be traced, e.g. to differentiate with respect to it).
        pairs: "absorber" (absorber-centred, default) or "all" (Rankine et al. 2020, eq. 1).

    Returns:
        ``[r]`` RDC values on :func:`rdc_grid`.
    """
    return make_rdc(float(r_min), float(r_max), float(dr), pairs)(structure, alpha)
