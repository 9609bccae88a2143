"""Energy terms for chemically informed refinement.

- :func:`xtb_energy`: GFN2-xTB, GFN1-xTB, GFN-FF through xtb-python as a differentiable JAX function
  (one host callback per call returns energy and gradient; ``custom_vjp``).
- :func:`make_restraints`: pure-JAX (jax-md) bonds, angles and soft-sphere repulsion that jit and vmap.
"""

from jxas.physics.restraints import Topology, bond_lengths, detect_topology, first_shell, make_restraints
from jxas.physics.xtb import XTB_METHODS, XTBError, is_xtb_failure, xtb_energy, xtb_energy_and_gradient

__all__ = [
    "XTBError",
    "XTB_METHODS",
    "xtb_energy",
    "xtb_energy_and_gradient",
    "is_xtb_failure",
    "first_shell",
    "Topology",
    "detect_topology",
    "make_restraints",
    "bond_lengths",
]
