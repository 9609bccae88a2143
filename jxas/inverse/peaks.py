"""From a G2 curve to shell distances.

The G2 terms are a sum over neighbours of Gaussians of fixed width centred on each neighbour distance
(G2_k = sum_j 0.1 Z_j f_c(r_j) exp(-eta (r_j - mu_k)^2), Gastegger et al. 2018, eq. 5). Read as a
curve over the centres mu_k, a shell of atoms at distance R makes a Gaussian peak at R, whose logarithm
is exactly a parabola: fitting a parabola to ln G2 at the grid maximum and its two neighbours recovers R
to a small fraction of the 0.1 Å grid step (exact for an isolated shell). The first and second shell are
the first two local maxima above ``rel_threshold`` of the curve's maximum. Applied to every ensemble
member, the spread of the peak positions is the uncertainty of the shell distances.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from jxas.inverse.targets import g2_grid

__all__ = ["find_shells", "shell_distances"]


def find_shells(
    g: Float[Array, " k"],
    grid: Float[Array, " k"] | None = None,
    *,
    n_shells: int = 2,
    rel_threshold: float = 0.1,
    r_min: float = 1.0,
) -> tuple[Float[Array, " s"], Float[Array, " s"], Array]:
    """Positions of the first ``n_shells`` peaks of one G2 curve (pure JAX; vmap over members).

    Args:
        g: ``[k]`` G2 values on ``grid`` (default: the 50-term shifted grid 0.5..5.5 Å).
        grid: ``[k]`` uniform grid of Gaussian centres (Å).
        n_shells: number of shells returned (static).
        rel_threshold: a peak must exceed this fraction of the curve's maximum.
        r_min: ignore maxima below this distance (Å).

    Returns:
        ``(r [s] Å, height [s], found [s] bool)``; where ``found`` is False the position is 0.
    """
    grid = jnp.asarray(g2_grid() if grid is None else grid, g.dtype)
    d = grid[1] - grid[0]
    gmax = jnp.max(g)
    left = jnp.concatenate([jnp.full((1,), -jnp.inf, g.dtype), g[:-1]])
    right = jnp.concatenate([g[1:], jnp.full((1,), -jnp.inf, g.dtype)])
    is_peak = (g > left) & (g >= right) & (g > rel_threshold * gmax) & (grid >= r_min) & (gmax > 0)
    # indices of the first n_shells peaks in order of distance (k means "none")
    k = g.shape[0]
    idx = jnp.where(is_peak, jnp.arange(k), k)
    first = jnp.sort(idx)[:n_shells]
    found = first < k
    i = jnp.clip(first, 1, k - 2)
    floor = 1e-6 * jnp.maximum(gmax, 1e-30)
    a, b, c = (jnp.log(jnp.maximum(g[j], floor)) for j in (i - 1, i, i + 1))
    curv = a - 2.0 * b + c
    ok = curv < 0
    off = jnp.where(ok, 0.5 * (a - c) / jnp.where(ok, curv, -1.0), 0.0)
    off = jnp.clip(off, -0.5, 0.5)
    r = jnp.where(found, grid[i] + off * d, 0.0)
    h = jnp.where(found, g[i], 0.0)
    return r, h, found


def shell_distances(g_members: Float[Array, "m k"], grid=None, **kw) -> dict[str, np.ndarray]:
    """Shell distances with uncertainty from the G2 curves of all ensemble members.

    Returns:
        dict of host arrays ``r`` [s] (mean over the members that found the shell, Å), ``sigma`` [s]
        (their standard deviation, Å), ``found`` [s] (fraction of members that found it). A shell no
        member found has ``r`` and ``sigma`` NaN and ``found`` 0: callers must check ``found``.
    """
    r, _, found = jax.vmap(lambda g: find_shells(g, grid, **kw))(jnp.asarray(g_members))
    r, found = np.asarray(r, float), np.asarray(found, bool)
    n = found.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, (r * found).sum(0) / np.maximum(n, 1), np.nan)
        var = np.where(n > 0, (((r - mean) ** 2) * found).sum(0) / np.maximum(n, 1), np.nan)
    return {"r": mean, "sigma": np.sqrt(var), "found": n / found.shape[0]}
