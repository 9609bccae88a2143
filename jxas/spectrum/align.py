"""E0 alignment of one spectrum to another, on the derivative of the normalised spectra.

As xraylarch's ``energy_align``: both spectra are normalised (:func:`jxas.spectrum.pre_edge`), their
derivatives ``d norm / dE`` are compared over ``[e0_ref + emin, e0_ref + emax]`` on the reference grid, and
the energy shift (plus a free amplitude scale, solved in closed form) minimising the squared difference is
returned. The shift is found by a vectorised scan (``jax.vmap``) followed by a parabolic refinement of the
minimum, which avoids the local minima that a gradient fit started at zero can fall into.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Float

from jxas.spectrum.interp import derivative, interp
from jxas.spectrum.normalise import pre_edge

__all__ = ["align", "align_curves"]


def align_curves(
    x: Float[ArrayLike, " e"],
    y: Float[ArrayLike, " e"],
    x_ref: Float[ArrayLike, " r"],
    y_ref: Float[ArrayLike, " r"],
    *,
    window: Float[ArrayLike, " r"] | None = None,
    max_shift: float = 20.0,
    step: float = 0.05,
) -> float:
    """Shift ``de`` (eV) such that ``s * y(x_ref - de)`` best matches ``y_ref`` in least squares (``s`` free).

    Args:
        x, y: curve to move (``x`` increasing, eV).
        x_ref, y_ref: reference curve.
        window: ``[r]`` weights on ``x_ref`` (e.g. a 0/1 mask); default all ones.
        max_shift: the scan covers ``[-max_shift, max_shift]`` eV.
        step: scan step, eV (the result is refined below it by a parabola through the best three).

    Returns:
        ``de`` in eV: ``jxas.spectrum.shift(x, y, de)`` moves the curve onto the reference.
    """
    x, y, x_ref, y_ref = (jnp.asarray(v) for v in (x, y, x_ref, y_ref))
    w = jnp.ones_like(y_ref) if window is None else jnp.asarray(window, y_ref.dtype)

    def cost(de):
        ys = interp(x_ref - de, x, y)
        syy = jnp.sum(w * ys * ys)
        s = jnp.where(syy > 0, jnp.sum(w * ys * y_ref) / jnp.where(syy > 0, syy, 1.0), 0.0)
        return jnp.sum(w * (s * ys - y_ref) ** 2)

    grid = np.arange(-max_shift, max_shift + step / 2, step)
    costs = np.asarray(jax.jit(jax.vmap(cost))(jnp.asarray(grid, x.dtype)))
    i = int(np.argmin(costs))
    if 0 < i < len(grid) - 1:
        c0, c1, c2 = costs[i - 1], costs[i], costs[i + 1]
        den = c0 - 2 * c1 + c2
        if den > 0:
            return float(grid[i] + 0.5 * step * (c0 - c2) / den)
    return float(grid[i])


def align(
    energy: Float[ArrayLike, " e"],
    mu: Float[ArrayLike, " e"],
    ref_energy: Float[ArrayLike, " r"],
    ref_mu: Float[ArrayLike, " r"],
    *,
    emin: float = -15.0,
    emax: float = 35.0,
    max_shift: float = 20.0,
    normalised: bool = False,
) -> float:
    """Energy shift (eV) that aligns spectrum ``(energy, mu)`` to ``(ref_energy, ref_mu)`` on the derivative.

    Args:
        energy, mu: spectrum to align (raw absorption unless ``normalised``).
        ref_energy, ref_mu: reference spectrum.
        emin, emax: comparison window relative to the reference E0, eV.
        max_shift: largest shift considered, eV.
        normalised: skip the pre-edge normalisation (inputs already normalised).

    Returns:
        ``eshift`` to *add* to ``energy`` (as larch's ``energy_align``); ``shift(energy, mu, eshift)`` is the
        aligned spectrum on the original grid.
    """
    e, r = np.asarray(energy, float), np.asarray(ref_energy, float)
    if normalised:
        from jxas.spectrum.normalise import find_e0

        y, y_ref, e0_ref = np.asarray(mu, float), np.asarray(ref_mu, float), find_e0(r, ref_mu)
    else:
        p, q = pre_edge(e, mu), pre_edge(r, ref_mu)
        y, y_ref, e0_ref = np.asarray(p.norm), np.asarray(q.norm), float(q.e0)
        e, r = np.sort(e), np.sort(r)
    d, d_ref = derivative(e, y), derivative(r, y_ref)
    window = ((r >= e0_ref + emin) & (r <= e0_ref + emax)).astype(float)
    if window.sum() < 3:
        raise ValueError(f"alignment window [{emin}, {emax}] eV around E0 = {e0_ref:.2f} eV holds < 3 points")
    return align_curves(e, d, r, d_ref, window=window, max_shift=max_shift)
