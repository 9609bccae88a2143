"""Spectra: container, grids, and differentiable processing (pure JAX)."""

from jxas.spectrum.grids import edge_energy, standard_grid
from jxas.spectrum.spectrum import Spectrum

__all__ = ["Spectrum", "edge_energy", "standard_grid"]
