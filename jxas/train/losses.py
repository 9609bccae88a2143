"""Per-spectrum training losses of forward models: MSE plus optional shape-aware terms.

:func:`make_spectrum_loss` returns a pure ``(pred [E], ref [E]) -> scalar`` (batch it with ``vmap``).
With every option at its default it is the plain mean squared error that :func:`jxas.train.train_forward`
has always used. The options target what the MSE barely sees but the peak-position metric
(Rankine, Madkhali & Penfold, J. Phys. Chem. A 124, 4263 (2020)) punishes:

- ``edge``: extra weight on the ``edge_window`` eV above the edge onset of the *reference* (the energy of
  its largest dmu/dE), the region of the white line and the first resonances. The point weights are
  ``1 + edge`` inside the window and 1 outside, normalised to mean 1 per spectrum.
- ``deriv``: a Sobolev (H1) term, ``deriv * mean((dpred/dE - dref/dE)^2)`` with first differences in
  units of mu per eV: it fits the slopes, hence the positions of the extrema, not just the values.
- ``peak``: a peak-location term, ``peak * KL(softmax(ref / T) || softmax(pred / T))`` over the grid,
  with ``T = peak_temperature`` (mu units). The softmax of a spectrum at low temperature is a
  distribution over where its maximum lies; when two resonances have nearly the same height, the
  MSE does not care which one is higher, this term does (it is zero iff pred - ref is constant on
  the grid, and its gradient is that of a cross-entropy: bounded, no division).

Every term is smooth in ``pred``; nothing is traced through the reference's onset (a constant).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

__all__ = ["SpectrumLoss", "make_spectrum_loss"]


@dataclasses.dataclass(frozen=True)
class SpectrumLoss:
    """Weights of the optional loss terms (all 0: plain MSE).

    Attributes:
        edge: extra relative weight of the near-edge window (0: none).
        edge_window: width (eV) of that window above the reference's edge onset.
        deriv: weight of the derivative (H1) term, (mu/eV)^2 units.
        peak: weight of the softmax peak-location KL term.
        peak_temperature: softmax temperature (mu units) of the peak term.
    """

    edge: float = 0.0
    edge_window: float = 35.0
    deriv: float = 0.0
    peak: float = 0.0
    peak_temperature: float = 0.02

    def __post_init__(self):
        for name in ("edge", "deriv", "peak"):
            if getattr(self, name) < 0:
                raise ValueError(f"loss weight {name} must be >= 0, got {getattr(self, name)}")
        if self.edge_window <= 0 or self.peak_temperature <= 0:
            raise ValueError("edge_window and peak_temperature must be positive")

    @property
    def is_mse(self) -> bool:
        return self.edge == 0 and self.deriv == 0 and self.peak == 0


def make_spectrum_loss(energy, opts: SpectrumLoss | dict | None = None) -> Callable[[Array, Array], Array]:
    """Per-spectrum loss ``(pred [E], ref [E]) -> scalar`` on the grid ``energy`` (eV).

    Args:
        energy: ``[E]`` energy grid (eV), increasing.
        opts: :class:`SpectrumLoss` or a dict of its fields; None = plain MSE.

    Returns:
        A pure function; with all weights 0 it is exactly ``mean((pred - ref) ** 2)``.
    """
    o = opts if isinstance(opts, SpectrumLoss) else SpectrumLoss(**(opts or {}))
    e = jnp.asarray(np.asarray(energy, np.float64), jnp.float32)
    de = jnp.diff(e)
    mid = 0.5 * (e[1:] + e[:-1])

    def loss(pred: Float[Array, " e"], ref: Float[Array, " e"]) -> Float[Array, ""]:
        sq = (pred - ref) ** 2
        if o.edge:
            onset = jax.lax.stop_gradient(mid[jnp.argmax(jnp.diff(ref) / de)])
            w = 1.0 + o.edge * ((e >= onset) & (e <= onset + o.edge_window))
            total = jnp.sum(w * sq) / jnp.sum(w)
        else:
            total = jnp.mean(sq)
        if o.deriv:
            total = total + o.deriv * jnp.mean(((jnp.diff(pred) - jnp.diff(ref)) / de) ** 2)
        if o.peak:
            t = o.peak_temperature
            log_q = jax.nn.log_softmax(pred / t)
            log_p = jax.nn.log_softmax(ref / t)
            total = total + o.peak * jnp.sum(jnp.exp(log_p) * (log_p - log_q))
        return total

    return loss
