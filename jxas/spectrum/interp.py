"""Interpolation, energy shift, amplitude scale and first derivative: pure, differentiable JAX.

All functions act on the last axis of ``mu`` so a batch ``[b, e]`` on a shared grid works as is; per-example
parameters are batched with ``jax.vmap`` at the call site (STYLE.md section 3).
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

__all__ = ["interp", "shift", "scale", "derivative"]


def interp(
    x_new: Float[ArrayLike, " m"], x: Float[ArrayLike, " e"], y: Float[ArrayLike, "... e"]
) -> Float[Array, "... m"]:
    """Piecewise-linear interpolation ``y(x_new)`` with constant extrapolation at both ends.

    Unlike ``jnp.interp`` it accepts ``y`` with leading batch axes, and it is differentiable with respect
    to ``x_new`` (an energy shift), ``x`` and ``y``. Outside ``[x[0], x[-1]]`` the end value is returned
    and the gradient with respect to ``x_new`` is zero.

    Args:
        x_new: ``[m]`` points at which to evaluate (e.g. eV).
        x: ``[e]`` strictly increasing abscissae, ``e >= 2``.
        y: ``[..., e]`` ordinates on ``x``.

    Returns:
        ``[..., m]`` interpolated values.
    """
    x_new, x, y = jnp.asarray(x_new), jnp.asarray(x), jnp.asarray(y)
    n = x.shape[-1]
    i = jnp.clip(jnp.searchsorted(x, x_new, side="right") - 1, 0, n - 2)
    x0, x1 = x[i], x[i + 1]
    dx = x1 - x0
    ok = dx > 0  # double-where: a repeated abscissa must not give 0/0 in the backward pass
    t = jnp.where(ok, (x_new - x0) / jnp.where(ok, dx, 1.0), 0.0)
    t = jnp.clip(t, 0.0, 1.0)
    y0, y1 = jnp.take(y, i, axis=-1), jnp.take(y, i + 1, axis=-1)
    return y0 + t * (y1 - y0)


def shift(
    energy: Float[ArrayLike, " e"], mu: Float[ArrayLike, "... e"], de: Float[ArrayLike, ""]
) -> Float[Array, "... e"]:
    """Shift a spectrum by ``de`` eV along the energy axis, keeping the grid: returns ``mu(E - de)``.

    A positive ``de`` moves features to higher energy. Differentiable with respect to ``de`` and ``mu``.
    """
    energy = jnp.asarray(energy)
    return interp(energy - de, energy, mu)


def scale(mu: Float[ArrayLike, "... e"], a: Float[ArrayLike, ""]) -> Float[Array, "... e"]:
    """Amplitude scale ``a * mu`` (a separate step so it can be fitted as a nuisance parameter)."""
    return jnp.asarray(a) * jnp.asarray(mu)


def derivative(energy: Float[ArrayLike, " e"], mu: Float[ArrayLike, "... e"]) -> Float[Array, "... e"]:
    """First derivative ``d mu / d E`` (per eV) by second-order finite differences on a possibly
    non-uniform grid (the same stencil as ``numpy.gradient``: one-sided at the ends)."""
    return jnp.gradient(jnp.asarray(mu), jnp.asarray(energy), axis=-1)
