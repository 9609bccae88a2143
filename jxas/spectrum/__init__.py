"""Spectra: container, grids, and differentiable processing (pure JAX).

Processing functions act on the last axis of ``mu`` (absolute energies in eV) and are jit/vmap/grad-able;
``pre_edge``, ``find_e0`` and ``align`` choose things on the host (xraylarch semantics) and return numbers.
"""

from jxas.spectrum import metrics
from jxas.spectrum.align import align, align_curves
from jxas.spectrum.broaden import arctan_width, broaden, broadening_kernel, seah_dench_width
from jxas.spectrum.fourier import fourier_features
from jxas.spectrum.grids import edge_energy, standard_grid
from jxas.spectrum.interp import derivative, interp, scale, shift
from jxas.spectrum.metrics import find_peaks, mse, peak_errors, pearson, spearman
from jxas.spectrum.normalise import PreEdge, default_ranges, find_e0, normalise, pre_edge
from jxas.spectrum.spectrum import Spectrum

__all__ = [
    "PreEdge",
    "align",
    "align_curves",
    "find_peaks",
    "fourier_features",
    "metrics",
    "mse",
    "peak_errors",
    "pearson",
    "spearman",
    "Spectrum",
    "arctan_width",
    "broaden",
    "broadening_kernel",
    "default_ranges",
    "derivative",
    "edge_energy",
    "find_e0",
    "interp",
    "normalise",
    "pre_edge",
    "scale",
    "seah_dench_width",
    "shift",
    "standard_grid",
]
