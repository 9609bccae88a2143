"""Inverse models: XANES spectrum -> neighbour distribution (G2) and first-shell descriptors, with uncertainty.

The XANES analogue of the EXAFS Fourier transform: a bootstrap ensemble of 1D CNNs (David et al.,
Digital Discovery 2, 1461 (2023), improved with Fourier features, augmentation and multi-task heads)
reads a normalised spectrum and predicts the absorber's 50-term G2 wACSF curve, the mean first-shell
distance, the coordination number, the first-shell composition and the oxidation state, each with a
calibrated sigma (ensemble spread, optionally plus an out-of-bag nearest-neighbour error model,
:mod:`jxas.inverse.errmodel`, or a learned one, :mod:`jxas.inverse.errnet`). :func:`invert` is the entry
point; :func:`check_structure` and :func:`scale_first_shell` hand the answer to refinement.
"""

from jxas.inverse.calibrate import (
    calibration_report,
    coverage,
    error_correlation,
    fit_scale,
    gaussian_correlation_ceiling,
    sigma_error_correlation,
)
from jxas.inverse.errmodel import ErrorModel, oob_squared_errors
from jxas.inverse.errnet import ErrorNet
from jxas.inverse.features import AugmentConfig, augment, fourier_features, gaussian_broaden, normalise_measured
from jxas.inverse.handoff import StructureCheck, check_structure, scale_first_shell
from jxas.inverse.invmodel import InverseModel, InverseResult, invert, load_inverse_model
from jxas.inverse.model import InverseCNN, apply_members, init_members, make_module
from jxas.inverse.peaks import find_shells, shell_distances
from jxas.inverse.targets import FIRST_SHELL_FACTOR, composition, first_shell, g2, g2_grid, structure_targets

__all__ = [
    "invert", "InverseModel", "InverseResult", "load_inverse_model",
    "InverseCNN", "make_module", "init_members", "apply_members",
    "AugmentConfig", "augment", "fourier_features", "gaussian_broaden", "normalise_measured",
    "g2", "g2_grid", "first_shell", "composition", "structure_targets", "FIRST_SHELL_FACTOR",
    "find_shells", "shell_distances",
    "coverage", "sigma_error_correlation", "fit_scale", "calibration_report", "gaussian_correlation_ceiling",
    "error_correlation", "ErrorModel", "ErrorNet", "oob_squared_errors",
    "check_structure", "scale_first_shell", "StructureCheck",
]
