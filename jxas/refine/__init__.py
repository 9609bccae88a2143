"""Chemically informed structure refinement against XANES (``jxas.refine(...)`` is the entry point).

- :mod:`~jxas.refine.objective`: the differentiable forward pipeline and ``fn(x, args) -> (loss, aux)``;
- :mod:`~jxas.refine.loop`: the optax loop (Adam / L-BFGS), masks, convergence, robustness;
- :mod:`~jxas.refine.result`: :class:`RefineResult`;
- :mod:`~jxas.refine.report`: xyz/extxyz, PNG plots, JSON summary.

The package itself is callable (``jxas.refine(structure, target, model=...)``), so the public name
``jxas.refine`` is the function whether or not its submodules have been imported.
"""

from __future__ import annotations

import sys
import types

from jxas.refine.api import DEFAULT_LAMBDA, ENERGIES, prepare_target, refine
from jxas.refine.loop import LoopConfig, scan_refine
from jxas.refine.objective import BroadeningConfig, Forward, Nuisance, as_forward, make_objective, make_predict
from jxas.refine.result import RefineResult

__all__ = [
    "refine",
    "RefineResult",
    "LoopConfig",
    "Forward",
    "Nuisance",
    "BroadeningConfig",
    "as_forward",
    "make_objective",
    "make_predict",
    "prepare_target",
    "scan_refine",
    "ENERGIES",
    "DEFAULT_LAMBDA",
]


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return refine(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
