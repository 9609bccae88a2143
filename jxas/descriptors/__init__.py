"""Pure-JAX structural descriptors of the absorber's environment (jit-, vmap- and grad-able)."""

from jxas.descriptors.batch import featurise, neighbour_counts
from jxas.descriptors.radial import cosine_cutoff, gaussian_grid
from jxas.descriptors.rdc import make_rdc, rdc, rdc_grid
from jxas.descriptors.wacsf import make_wacsf, wacsf, wacsf_size

__all__ = [
    "featurise", "neighbour_counts", "rdc", "make_rdc", "rdc_grid", "wacsf", "make_wacsf", "wacsf_size",
    "cosine_cutoff", "gaussian_grid",
]
