"""A closed-form, differentiable toy forward model: for tests and demonstrations of the optimiser only.

Not a XANES model. It is the single-scattering EXAFS equation (Sayers, Stern & Lytle, Phys. Rev. Lett.
27, 1204 (1971)) on top of an arctangent edge step, so it has the right kind of dependence on the
absorber-neighbour distances (oscillation phase 2kR, amplitude 1/R^2, Debye-Waller damping) for
refinements and sweeps to be tested against a known answer:

    mu(E) = 1/2 + arctan((E - E0) / w) / pi + sum_j A_j f_c(R_j) exp(-2 s^2 k^2) sin(2 k R_j) / (k R_j^2),

k = sqrt(0.2625 (E - E0)) (1/Å) above E0 and 0 below; A_j = 0.5 Z_j / 8; f_c a cosine cutoff at 5 Å.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jxas.losses import ETOK
from jxas.spectrum.grids import edge_energy, standard_grid
from jxas.structure import Structure, absorber_distances

__all__ = ["make_toy_forward"]


def make_toy_forward(element: str = "Fe", *, sigma2: float = 0.005, r_cut: float = 5.0, width: float = 1.5):
    """Return ``(fn(structure) -> [e], energy [e])`` on the element's standard grid (eV)."""
    energy = standard_grid(element)
    e0 = edge_energy(element)
    e = jnp.asarray(energy)

    def fn(s: Structure):
        de = e.astype(s.positions.dtype) - e0
        k = jnp.sqrt(ETOK * jnp.where(de > 0, de, 0.0) + 1e-12)
        r = absorber_distances(s)
        nb = s.mask & (r > 0.1) & (r < r_cut)
        rs = jnp.where(nb, r, 1.0)
        fc = jnp.where(nb, 0.5 * (jnp.cos(jnp.pi * rs / r_cut) + 1.0), 0.0)
        amp = 0.5 * s.numbers.astype(rs.dtype) / 8.0 * fc / rs**2
        # sin(2kR)/k = 2R sinc(2kR/pi): finite at k = 0
        osc = 2.0 * rs[:, None] * jnp.sinc(2.0 * k[None, :] * rs[:, None] / jnp.pi)
        chi = jnp.sum(amp[:, None] * osc, axis=0) * jnp.exp(-2.0 * sigma2 * k**2) * (de > 0)
        return 0.5 + jnp.arctan(de / width) / jnp.pi + chi

    return fn, np.asarray(energy)
