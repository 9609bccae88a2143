"""Spectral broadening as a dense, row-normalised kernel on a padded grid: pure, differentiable JAX.

Models (``model=``):

* ``"arctan"``: energy-dependent Lorentzian whose FWHM follows the arctangent model used by FDMNES and by
  Rankine, Madkhali & Penfold, J. Phys. Chem. A 124, 4263 (2020), eq. 2::

      Gamma(E) = Gamma_i + Gamma_f * (1/2 + (1/pi) * arctan(
                     (pi Gamma_f / (3 E_w)) * ((E - E_f)/E_c - E_c^2/(E - E_f)^2)))

  with ``E`` relative to the edge. ``mu`` is set to zero below the Fermi level ``E_f`` (occupied states).
* ``"seah_dench"``: energy-dependent Lorentzian ``Gamma(E) = Gamma_i + hbar v / lambda(E)`` where ``lambda``
  is the Seah & Dench universal inelastic mean free path for elements, ``lambda = a (538/E_k^2 + 0.41
  sqrt(a E_k))`` nm, ``E_k = E - E_f`` the photo-electron kinetic energy above the Fermi level (eV) and ``a``
  the monolayer thickness in nm (M. P. Seah and W. A. Dench, Surf. Interface Anal. 1, 2 (1979), eq. 5);
  ``v = sqrt(2 E_k / m_e)``. ``mu`` is set to zero below ``E_f``.
* ``"lorentzian"`` / ``"gaussian"``: constant FWHM ``fwhm`` (eV), no cut.

Numerics: the grid is extended by ``pad`` points at both ends (constant extension of ``mu``, default half
the number of points on each side) so the ends are not distorted, and each kernel row, evaluated with the
width at the *output* energy, is normalised to unit area on the padded grid (trapezoid weights). A constant
spectrum therefore stays constant, the area is preserved up to the Lorentzian tail outside the padded
window, and the operator tends to the identity as the width vanishes. All widths may be traced (``grad``,
``vmap``); ``pad`` and ``model`` are static.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

__all__ = ["broaden", "arctan_width", "seah_dench_width", "broadening_kernel", "MODELS"]

MODELS = ("arctan", "seah_dench", "lorentzian", "gaussian")
_MIN_WIDTH = 1e-6  # eV; keeps the kernel finite as a width goes to zero
_HBAR_C = 197.3269804  # eV nm
_ME_C2 = 510998.95  # eV


def arctan_width(
    e_rel: Float[ArrayLike, "..."],
    *,
    gamma_i: float = 1.25,
    gamma_f: float = 15.0,
    e_c: float = 30.0,
    e_w: float = 30.0,
    e_f: float = -5.0,
) -> Float[Array, "..."]:
    """Arctangent energy-dependent Lorentzian FWHM (eV) of Rankine et al. 2020, eq. 2 (FDMNES's model).

    Args:
        e_rel: energies relative to the edge (eV).
        gamma_i: core-hole (initial-state) width, eV.
        gamma_f: maximum final-state width, eV.
        e_c: centre of the arctangent, eV above ``e_f``.
        e_w: width of the arctangent step, eV.
        e_f: Fermi level relative to the edge, eV.

    Returns:
        ``Gamma(E)`` in eV, same shape as ``e_rel``; equal to ``gamma_i`` at and below ``e_f``.
    """
    d = jnp.asarray(e_rel) - e_f
    ok = d > 0  # at and below E_f the arctangent argument tends to -inf: Gamma = Gamma_i exactly
    ds = jnp.where(ok, d, 1.0)
    arg = (jnp.pi * gamma_f / (3.0 * e_w)) * (ds / e_c - e_c**2 / ds**2)
    return gamma_i + jnp.where(ok, gamma_f * (0.5 + jnp.arctan(arg) / jnp.pi), 0.0)


def seah_dench_width(
    e_rel: Float[ArrayLike, "..."], *, gamma_i: float = 1.25, e_f: float = -5.0, a_nm: float = 0.25
) -> Float[Array, "..."]:
    """Seah-Dench Lorentzian FWHM (eV): ``gamma_i + hbar v / lambda(E_k)`` (see the module docstring).

    Args:
        e_rel: energies relative to the edge (eV).
        gamma_i: core-hole width, eV.
        e_f: Fermi level relative to the edge, eV; ``E_k = e_rel - e_f``.
        a_nm: monolayer thickness in nm (0.25 nm is typical of transition-metal compounds).
    """
    ek = jnp.asarray(e_rel) - e_f
    ok = ek > 0
    eks = jnp.where(ok, ek, 1.0)
    lam = a_nm * (538.0 / eks**2 + 0.41 * jnp.sqrt(a_nm * eks))  # nm
    hbar_v = _HBAR_C * jnp.sqrt(2.0 * eks / _ME_C2)  # eV nm
    return gamma_i + jnp.where(ok, hbar_v / lam, 0.0)


def _padded_grid(energy: Array, npad: int) -> Array:
    lo = energy[0] - (energy[1] - energy[0]) * jnp.arange(npad, 0, -1, dtype=energy.dtype)
    hi = energy[-1] + (energy[-1] - energy[-2]) * jnp.arange(1, npad + 1, dtype=energy.dtype)
    return jnp.concatenate([lo, energy, hi])


def _trapezoid_weights(x: Array) -> Array:
    dx = jnp.diff(x)
    return 0.5 * (jnp.concatenate([dx, dx[-1:] * 0]) + jnp.concatenate([dx[:1] * 0, dx]))


def broadening_kernel(
    e_out: Float[ArrayLike, " m"],
    e_in: Float[ArrayLike, " p"],
    width: Float[ArrayLike, " m"],
    *,
    profile: str = "lorentzian",
) -> Float[Array, "m p"]:
    """Dense kernel ``K[i, j]`` such that ``K @ mu(e_in)`` is ``mu`` broadened at ``e_out``.

    Row ``i`` is the line shape of FWHM ``width[i]`` (eV) centred on ``e_out[i]``, times trapezoid weights
    of ``e_in``, normalised to unit sum (unit area on the grid).
    """
    e_out, e_in = jnp.asarray(e_out), jnp.asarray(e_in)
    w = jnp.maximum(jnp.broadcast_to(jnp.asarray(width, dtype=e_out.dtype), e_out.shape), _MIN_WIDTH)
    x = e_out[:, None] - e_in[None, :]
    if profile == "lorentzian":
        h = 0.5 * w[:, None]
        shape = (h / jnp.pi) / (x**2 + h**2)
    elif profile == "gaussian":
        s = w[:, None] / (2.0 * math.sqrt(2.0 * math.log(2.0)))
        shape = jnp.exp(-0.5 * (x / s) ** 2) / (s * math.sqrt(2.0 * math.pi))
    else:
        raise ValueError(f"unknown line profile {profile!r}; use 'lorentzian' or 'gaussian'")
    k = shape * _trapezoid_weights(e_in)[None, :]
    return k / jnp.sum(k, axis=1, keepdims=True)


def broaden(
    energy: Float[ArrayLike, " e"],
    mu: Float[ArrayLike, "... e"],
    *,
    e_edge: Float[ArrayLike, ""] | None = None,
    model: str = "arctan",
    gamma_i: Float[ArrayLike, ""] = 1.25,
    gamma_f: Float[ArrayLike, ""] = 15.0,
    e_c: Float[ArrayLike, ""] = 30.0,
    e_w: Float[ArrayLike, ""] = 30.0,
    e_f: Float[ArrayLike, ""] = -5.0,
    fwhm: Float[ArrayLike, ""] | None = None,
    a_nm: Float[ArrayLike, ""] = 0.25,
    pad: int | None = None,
) -> Float[Array, "... e"]:
    """Broaden ``mu`` on its own grid (see the module docstring for the models and numerics).

    Args:
        energy: ``[e]`` increasing absolute energies, eV (uniform grids of ~400-500 points are typical).
        mu: ``[..., e]`` spectrum or batch of spectra on ``energy``.
        e_edge: edge energy (eV, absolute) that ``E_f``, ``E_c`` refer to; required for the
            energy-dependent models.
        model: ``"arctan"`` (default), ``"seah_dench"``, ``"lorentzian"`` or ``"gaussian"``.
        gamma_i, gamma_f, e_c, e_w, e_f: arctangent parameters (eV), defaults of Rankine et al. 2020.
        fwhm: FWHM (eV) of the constant-width models.
        a_nm: Seah-Dench monolayer thickness, nm.
        pad: points added at each end (static); default ``e // 2``.

    Returns:
        ``[..., e]`` broadened spectrum on ``energy``.
    """
    energy = jnp.asarray(energy)
    mu = jnp.asarray(mu)
    n = energy.shape[0]
    if model not in MODELS:
        raise ValueError(f"unknown broadening model {model!r}; choose one of {MODELS}")
    if n < 3:
        raise ValueError(f"broaden needs at least 3 energy points, got {n}")
    npad = n // 2 if pad is None else int(pad)
    grid = _padded_grid(energy, npad)
    lead = mu.shape[:-1]
    mu_pad = jnp.concatenate(
        [jnp.broadcast_to(mu[..., :1], lead + (npad,)), mu, jnp.broadcast_to(mu[..., -1:], lead + (npad,))],
        axis=-1,
    )
    if model in ("lorentzian", "gaussian"):
        if fwhm is None:
            raise ValueError(f"model {model!r} needs fwhm= (eV)")
        kernel = broadening_kernel(energy, grid, jnp.full((n,), fwhm, energy.dtype), profile=model)
        return jnp.einsum("ij,...j->...i", kernel, mu_pad)
    if e_edge is None:
        raise ValueError(f"model {model!r} needs e_edge= (absolute edge energy, eV)")
    e_rel = energy - e_edge
    if model == "arctan":
        width = arctan_width(e_rel, gamma_i=gamma_i, gamma_f=gamma_f, e_c=e_c, e_w=e_w, e_f=e_f)
    else:
        width = seah_dench_width(e_rel, gamma_i=gamma_i, e_f=e_f, a_nm=a_nm)
    occupied = (grid - e_edge) < e_f
    mu_pad = jnp.where(occupied, 0.0, mu_pad)
    kernel = broadening_kernel(energy, grid, width, profile="lorentzian")
    return jnp.einsum("ij,...j->...i", kernel, mu_pad)
