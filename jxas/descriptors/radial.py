"""Radial building blocks shared by the descriptors: cutoff function and Gaussian grids."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

__all__ = ["cosine_cutoff", "gaussian_grid"]


def cosine_cutoff(r: Float[Array, "..."], r_max: float) -> Float[Array, "..."]:
    """Behler's cosine cutoff f_c(r) = (cos(pi r / r_max) + 1) / 2 (Behler, JCP 134, 074106 (2011), eq. 4).

    Applied as written, without truncation beyond ``r_max``; callers mask the neighbour set.
    """
    return 0.5 * (jnp.cos(jnp.pi * r / r_max) + 1.0)


def gaussian_grid(r_min: float, r_max: float, n: int, parameterisation: str) -> tuple[np.ndarray, np.ndarray]:
    """Centres ``mu`` and widths ``eta`` (1/Å²) of ``n`` radial Gaussians, as in XANESNET's wACSF.

    "shifted": mu_k = linspace(r_min + 0.5, r_max - 0.5, n), eta_k = 1 / (2 d²) with d the spacing.
    "centred": s_k = linspace(r_min + 1.0, r_max - 0.5, n), mu_k = 0, eta_k = 1 / (2 s_k²).
    """
    if n < 1:
        raise ValueError(f"need at least one radial function, got n={n}")
    if parameterisation == "shifted":
        if n < 2:
            raise ValueError("the 'shifted' parameterisation needs n >= 2 (its width is the grid spacing)")
        mu = np.linspace(r_min + 0.5, r_max - 0.5, n)
        d = mu[1] - mu[0]
        if d <= 0:
            raise ValueError(f"empty 'shifted' grid: r_max - r_min must exceed 1 Å (got {r_min}, {r_max})")
        eta = np.full(n, 1.0 / (2.0 * d**2))
    elif parameterisation == "centred":
        s = np.linspace(r_min + 1.0, r_max - 0.5, n)
        if np.any(s <= 0):
            raise ValueError(f"'centred' widths must be positive (got r_min={r_min}, r_max={r_max})")
        mu = np.zeros(n)
        eta = 1.0 / (2.0 * s**2)
    else:
        raise ValueError(f"unknown parameterisation {parameterisation!r}; use 'shifted' or 'centred'")
    return mu, eta
