"""Edge energies and the standard energy grids on which jxas stores and predicts spectra.

Spectra keep absolute photon energy. The standard grid of an element is uniform and absolute:
``E_edge + [-20, +80] eV`` in 0.25 eV steps (401 points), wide enough for the pre-edge, the edge
(whose FEFF position differs from the tabulated value by a few eV) and the XANES region used by the
models. Tabulated K-edge energies (eV) from Bearden & Burr, Rev. Mod. Phys. 39, 125 (1967), as
collected in X-ray Data Booklet table 1-1.
"""

from __future__ import annotations

import numpy as np

__all__ = ["EDGE_ENERGIES", "edge_energy", "standard_grid", "GRID_LO", "GRID_HI", "GRID_STEP"]

GRID_LO, GRID_HI, GRID_STEP = -20.0, 80.0, 0.25

# (element, edge) -> edge energy in eV
EDGE_ENERGIES: dict[tuple[str, str], float] = {
    ("Sc", "K"): 4492.0, ("Ti", "K"): 4966.0, ("V", "K"): 5465.0, ("Cr", "K"): 5989.0,
    ("Mn", "K"): 6539.0, ("Fe", "K"): 7112.0, ("Co", "K"): 7709.0, ("Ni", "K"): 8333.0,
    ("Cu", "K"): 8979.0, ("Zn", "K"): 9659.0,
    ("Y", "K"): 17038.0, ("Zr", "K"): 17998.0, ("Nb", "K"): 18986.0, ("Mo", "K"): 20000.0,
    ("Tc", "K"): 21044.0, ("Ru", "K"): 22117.0, ("Rh", "K"): 23220.0, ("Pd", "K"): 24350.0,
    ("Ag", "K"): 25514.0, ("Cd", "K"): 26711.0,
}


def edge_energy(element: str, edge: str = "K") -> float:
    """Tabulated absorption-edge energy (eV) of ``element`` (symbol, any case)."""
    key = (element.strip().capitalize(), edge.strip().upper())
    if key not in EDGE_ENERGIES:
        known = sorted({e for e, _ in EDGE_ENERGIES})
        raise ValueError(f"no tabulated {key[1]}-edge energy for {key[0]!r}; known elements: {', '.join(known)}")
    return EDGE_ENERGIES[key]


def standard_grid(
    element: str, edge: str = "K", *, lo: float = GRID_LO, hi: float = GRID_HI, step: float = GRID_STEP
) -> np.ndarray:
    """The element's standard absolute energy grid (eV): ``edge_energy + arange(lo, hi + step/2, step)``."""
    if step <= 0 or hi <= lo:
        raise ValueError(f"bad grid: lo={lo}, hi={hi}, step={step}")
    return edge_energy(element, edge) + np.arange(lo, hi + step / 2, step)
