"""Weighted atom-centred symmetry functions (wACSF) of the absorber.

Gastegger, Schwiedrzik, Bittermann, Berzsenyi & Marquetand, J. Chem. Phys. 148, 241709 (2018),
eqs. 4-6, with the element weights, grids and G4 ordering of XANESNET (Rankine et al. 2020), so that
published settings carry over. Output: ``[G1, G2_1..G2_n_g2, G4_1..G4_n_g4]``.

- neighbours j: 0 < r_0j < r_max; weight w_j = 0.1 Z_j; f_c(r) = (cos(pi r / r_max) + 1) / 2;
- G1 = sum_j f_c(r_0j);
- G2_k = sum_j w_j exp(-eta_k (r_0j - mu_k)^2) f_c(r_0j);
- G4 (for each kept (eta, mu), then lambda, then zeta) =
  2^(1-zeta) sum_{j<k} w_j w_k (1 + lambda cos theta_j0k)^zeta prod_{r in r_0j, r_0k, r_jk} exp(-eta (r-mu)^2) f_c(r).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from jxas.descriptors.radial import cosine_cutoff, gaussian_grid
from jxas.structure import Structure, neighbour_mask, safe_norm

__all__ = ["wacsf", "make_wacsf", "wacsf_size"]


def wacsf_size(n_g2: int = 16, n_g4: int = 32) -> int:
    """Length of the wACSF vector: 1 + n_g2 + n_g4."""
    return 1 + n_g2 + n_g4


def _safe_pow(x, p):
    """x**p for x >= 0 with a finite gradient at x = 0 (any real p)."""
    ok = x > 0
    return jnp.where(ok, jnp.where(ok, x, 1.0) ** p, jnp.where(p == 0, 1.0, 0.0))


@functools.lru_cache(maxsize=64)
def make_wacsf(
    r_min: float = 1.0,
    r_max: float = 6.0,
    n_g2: int = 16,
    n_g4: int = 32,
    l: tuple[float, ...] = (1.0, -1.0),  # noqa: E741  (XANESNET's name)
    z: tuple[float, ...] = (1.0,),
    g2_parameterisation: str = "shifted",
    g4_parameterisation: str = "centred",
    truncate_jk: bool = False,
    max_neighbours: int | None = None,
) -> Callable[[Structure], Float[Array, " d"]]:
    """Return a pure ``wacsf(structure)`` for a fixed configuration (all arguments are static).

    ``truncate_jk=True`` also zeroes f_c(r_jk) for r_jk >= r_max (the reference applies the cosine
    cutoff to r_jk as written, which rises again beyond r_max; the default keeps the reference).

    ``max_neighbours=K`` runs the G4 pair sum over the first K neighbours only (moved to the front
    with a stable sort), K(K-1)/2 pairs instead of n(n-1)/2: exact when no structure has more than K
    neighbours within r_max, and NaN (never a silently wrong value) for one that has.
    :func:`jxas.descriptors.featurise` picks K per chunk of a batch from the neighbour counts.
    """
    if r_max <= 0:
        raise ValueError(f"r_max must be positive, got {r_max}")
    if max_neighbours is not None and max_neighbours < 2:
        raise ValueError(f"max_neighbours must be >= 2 (one pair), got {max_neighbours}")
    if n_g2 < 0 or n_g4 < 0:
        raise ValueError(f"n_g2 and n_g4 must be >= 0, got {n_g2}, {n_g4}")
    l_arr, z_arr = np.asarray(l, float), np.asarray(z, float)
    if n_g4 and (len(l_arr) == 0 or len(z_arr) == 0):
        raise ValueError("G4 needs at least one lambda in l and one zeta in z")
    n_lz = len(l_arr) * len(z_arr)
    if n_g4 % max(n_lz, 1) != 0:
        raise ValueError(
            f"n_g4 = {n_g4} must be divisible by len(l) * len(z) = {n_lz} (one G4 per radial term, lambda, zeta)"
        )
    mu2, eta2 = gaussian_grid(r_min, r_max, n_g2, g2_parameterisation) if n_g2 else (np.zeros(0), np.zeros(0))
    if n_g4:
        mu4, eta4 = gaussian_grid(r_min, r_max, n_g4, g4_parameterisation)
        keep = n_g4 // n_lz
        mu4, eta4 = mu4[:keep], eta4[:keep]
    else:
        mu4 = eta4 = np.zeros(0)
    centred4 = bool(np.all(mu4 == 0.0))
    # angular parameter combinations, lambda outer and zeta inner (the reference's order)
    lam_list = [float(v) for v in np.repeat(l_arr, len(z_arr))]
    zeta_list = [float(v) for v in np.tile(z_arr, len(l_arr))]
    # constants stay NumPy arrays: baked into each trace, never captured as tracers
    # integer zeta: plain powers have exact derivatives at base 0 (collinear pairs with lambda = -1)
    integer_zeta = bool(np.all(z_arr == np.round(z_arr)) and np.all(z_arr >= 1))

    def wacsf(s: Structure) -> Float[Array, " d"]:
        d0 = s.positions - s.positions[s.absorber]  # [n, 3]
        r = safe_norm(d0)
        nb = neighbour_mask(s, r_max)
        fc = jnp.where(nb, cosine_cutoff(r, r_max), 0.0)
        w = 0.1 * s.numbers.astype(r.dtype)
        g1 = jnp.sum(fc)[None]
        g2 = jnp.sum(w * fc * jnp.exp(-eta2[:, None] * (r - mu2[:, None]) ** 2), axis=1)
        if not n_g4:
            return jnp.concatenate([g1, g2])
        overflow = False
        if max_neighbours is not None and max_neighbours < r.shape[0]:
            # compact: neighbours first (stable, so the pair order is the original one), keep K slots
            keep_idx = jnp.argsort(jnp.where(nb, 0, 1), stable=True)[:max_neighbours]
            overflow = jnp.sum(nb) > max_neighbours
            d0, r, nb, w, fc = d0[keep_idx], r[keep_idx], nb[keep_idx], w[keep_idx], fc[keep_idx]
        # Unique neighbour pairs j < k. Pair quantities come from the Gram matrix d0 d0^T as [n, n]
        # matrices (no per-pair gathers of vectors); only the upper triangle is kept, so the [P, radial]
        # exponential, the dominant cost, runs over P = n(n-1)/2 pairs. The three Gaussians share one
        # exponential (their exponents add), and each G4 is a plain reduction over pairs.
        n = r.shape[0]
        flat = np.flatnonzero(np.triu(np.ones((n, n), bool), k=1))  # static indices of j < k
        gram = d0 @ d0.T
        r2 = jnp.sum(d0 * d0, axis=-1)
        rjk2 = jnp.maximum(r2[:, None] + r2[None, :] - 2.0 * gram, 0.0)  # law of cosines
        pos = rjk2 > 0
        rjk = jnp.where(pos, jnp.sqrt(jnp.where(pos, rjk2, 1.0)), 0.0)  # finite gradient at r_jk = 0
        r_safe = jnp.where(nb, r, 1.0)  # r > 0 for every neighbour; guards masked slots only
        cos = jnp.clip(gram / (r_safe[:, None] * r_safe[None, :]), -1.0, 1.0).reshape(-1)[flat]
        fc_jk = cosine_cutoff(rjk, r_max)
        if truncate_jk:
            fc_jk = jnp.where(rjk < r_max, fc_jk, 0.0)
        a = w * fc  # [n], zero outside the neighbour set
        a_pair = (a[:, None] * a[None, :] * fc_jk).reshape(-1)[flat]  # [P]
        if centred4:  # mu = 0: the summed exponent is r_0j^2 + r_0k^2 + r_jk^2
            arg = (r2[:, None] + r2[None, :] + rjk2).reshape(-1)[flat][:, None]  # [P, 1]
        else:
            rj = jnp.broadcast_to(r[:, None], (n, n)).reshape(-1)[flat]
            rk = jnp.broadcast_to(r[None, :], (n, n)).reshape(-1)[flat]
            rjk_p = rjk.reshape(-1)[flat]
            arg = (rj[:, None] - mu4) ** 2 + (rk[:, None] - mu4) ** 2 + (rjk_p[:, None] - mu4) ** 2  # [P, K]
        radial = jnp.exp(-arg * eta4) * a_pair[:, None]  # [P, K]
        # Angular factors; base >= 0 since |cos| <= 1 and |lambda| <= 1. Integer zeta (the usual 1, 2,
        # 4) uses integer powers: cheaper than pow and exact derivatives at base 0 (collinear pairs).
        g4 = jnp.stack([
            jnp.sum(radial * ((1.0 + lm * cos) ** int(zt) if integer_zeta else _safe_pow(1.0 + lm * cos, zt))[:, None],
                    axis=0) * 2.0 ** (1.0 - zt)
            for lm, zt in zip(lam_list, zeta_list, strict=True)
        ], axis=1)  # [K, L]
        g4 = g4.reshape(-1)  # radial term outermost, then lambda, then zeta
        g4 = jnp.where(overflow, jnp.nan, g4)
        return jnp.concatenate([g1, g2, g4])

    return jax.jit(wacsf)


def wacsf(
    structure: Structure,
    *,
    r_min: float = 1.0,
    r_max: float = 6.0,
    n_g2: int = 16,
    n_g4: int = 32,
    l: tuple[float, ...] = (1.0, -1.0),  # noqa: E741
    z: tuple[float, ...] = (1.0,),
    g2_parameterisation: str = "shifted",
    g4_parameterisation: str = "centred",
    truncate_jk: bool = False,
) -> Float[Array, " d"]:
    """wACSF vector of the absorber of one structure (vmap over a batch).

    Args:
        structure: a single padded :class:`~jxas.structure.Structure`.
        r_min, r_max: radial range in Å; r_max is also the cutoff radius.
        n_g2, n_g4: numbers of G2 and G4 functions; ``n_g4`` must be divisible by ``len(l) * len(z)``.
        l, z: G4 angular parameters lambda and zeta.
        g2_parameterisation, g4_parameterisation: "shifted" or "centred" radial grids.
        truncate_jk: zero f_c(r_jk) beyond r_max (off by default, as in the reference).

    Returns:
        ``[1 + n_g2 + n_g4]`` vector ``[G1, G2..., G4...]``.
    """
    fn = make_wacsf(
        float(r_min), float(r_max), int(n_g2), int(n_g4), tuple(map(float, l)), tuple(map(float, z)),
        g2_parameterisation, g4_parameterisation, bool(truncate_jk),
    )
    return fn(structure)
