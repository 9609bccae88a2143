"""Radial building blocks shared by the descriptors: cutoff function and Gaussian grids."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

__all__ = ["cosine_cutoff", "gaussian_grid", "make_gaussian_smear"]


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


def make_gaussian_smear(grid: np.ndarray, alpha: float, r_hi: float, max_exponent: float = 8.0):
    """Return ``smear(r, w) = sum_j w_j exp(-alpha (r_j - grid)^2)`` computed with few exponentials.

    Exact rewrite of the direct sum (no truncation, no approximation): the uniform grid is cut into
    blocks of B points with centres c_b and offsets m h (m centred on 0); with a reference R,

        exp(-alpha (c_b + m h - r)^2) = exp(-alpha (c_b - r)^2) * exp(2 alpha m h (r - R))
                                        * exp(-2 alpha m h (c_b - R) - alpha m^2 h^2),

    so the sum over atoms is one ``[blocks, atoms] @ [atoms, B]`` matrix product, with
    ``atoms * (blocks + B)`` exponentials instead of ``atoms * len(grid)``. The split factors are
    bounded by ``exp(max_exponent)`` for distances in ``[0, r_hi]`` (float32-safe); B is the largest
    block size that keeps that bound. Returns ``None`` when no block size of at least 4 qualifies
    (a very sharp Gaussian on a long grid) or the grid is too short to gain: use the direct sum then.
    """
    grid = np.asarray(grid, float)
    n = len(grid)
    if n < 16 or not np.isfinite(alpha) or alpha <= 0:
        return None
    h = (grid[-1] - grid[0]) / (n - 1)
    if not np.allclose(np.diff(grid), h, rtol=1e-9, atol=1e-12):
        return None
    for b in (32, 16, 8, 4):
        nb = -(-n // b)
        m = np.arange(b) - (b - 1) / 2.0
        centres = grid[0] + (np.arange(nb) * b + (b - 1) / 2.0) * h
        ref = 0.5 * (centres[0] + centres[-1])
        span = max(np.max(np.abs(centres - ref)), abs(ref), abs(r_hi - ref))
        if 2.0 * alpha * abs(h) * np.max(np.abs(m)) * span <= max_exponent:
            break
    else:
        return None
    # constants are NumPy arrays: baked into the trace
    outer = np.exp(-2.0 * alpha * h * m[None, :] * (centres[:, None] - ref) - alpha * (m * h)[None, :] ** 2)

    def smear(r: Float[Array, " n"], w: Float[Array, " n"]) -> Float[Array, " g"]:
        x = w[:, None] * jnp.exp(-alpha * (r[:, None] - centres[None, :]) ** 2)  # [n, blocks]
        u = jnp.exp((2.0 * alpha * h) * m[None, :] * (r[:, None] - ref))  # [n, B]
        return ((x.T @ u) * outer).reshape(-1)[:n]

    return smear
