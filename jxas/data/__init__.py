"""Data engine: HDF5 datasets, parallel/distributed generation runs, imports, FEFF10 simulation.

``Dataset`` (HDF5 files of padded structures + spectra), ``generate`` (resumable process-pool / Dask
generation runs), ``merge_datasets`` (one training file from several) and ``import_omnixas`` live here;
``simulate_feff`` and ``FeffRecipe`` come from :mod:`jxas.data.feff` and are imported lazily, so
``import jxas.data`` does not pay for FEFF.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "Dataset": "jxas.data.dataset",
    "write_data_card": "jxas.data.dataset",
    "generate": "jxas.data.runner",
    "GenerationReport": "jxas.data.runner",
    "import_omnixas": "jxas.data.omnixas",
    "merge_datasets": "jxas.data.merge",
    "simulate_feff": "jxas.data.feff",
    "FeffRecipe": "jxas.data.feff",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'jxas.data' has no attribute {name!r}")


def __dir__():
    return sorted(set(__all__) | set(globals()))
