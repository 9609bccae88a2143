"""jxas: differentiable X-ray absorption spectroscopy in JAX.

structure -> descriptors -> model -> spectrum -> loss -> grad -> optax update of coordinates.

The public API below is imported lazily, so ``import jxas`` stays fast and a command that needs only
one part of the package does not pay for the rest.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> defining module (the contract in DESIGN.md; implementation modules are not)
_PUBLIC = {
    "Structure": "jxas.structure",
    "stack": "jxas.structure",
    "unstack": "jxas.structure",
    "pad": "jxas.structure",
    "read_structure": "jxas.io.structures",
    "write_xyz": "jxas.io.structures",
    "StructureError": "jxas.io.structures",
    "Spectrum": "jxas.spectrum.spectrum",
    "load_model": "jxas.models.registry",
    "Model": "jxas.models.model",
    "read_spectrum": "jxas.io.spectra",
    "write_spectrum": "jxas.io.spectra",
    "refine": "jxas.refine",
    "RefineResult": "jxas.refine.result",
    "sweep": "jxas.sweep",
    "invert": "jxas.inverse.invmodel",
    "train_forward": "jxas.train.forward",
}
_SUBMODULES = {"descriptors", "structure", "spectrum", "io", "cli", "plot"}

__all__ = sorted(_PUBLIC) + sorted(_SUBMODULES)


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"jxas.{name}")
    raise AttributeError(f"module 'jxas' has no attribute {name!r}")


def __dir__():
    return __all__
