"""Training: a generic resumable loop, group splits, metrics, and forward-model training/evaluation.

- :func:`fit` / :class:`TrainConfig` / :class:`FitResult`: AdamW + warm-up/cosine or plateau, clipping,
  early stopping, exact resume from checkpoints, CSV/JSON logs, data parallelism (``n_devices``).
- :func:`group_split`, :func:`group_kfold`, :func:`bootstrap_indices`: splits by material/complex.
- :func:`train_forward`, :func:`evaluate`: structure -> spectrum models on a ``jxas.data.Dataset``.
"""

from __future__ import annotations

import importlib

from jxas.train.loop import FitResult, TrainConfig, fit
from jxas.train.splits import bootstrap_indices, check_disjoint, group_kfold, group_split

__all__ = [
    "TrainConfig",
    "FitResult",
    "fit",
    "group_split",
    "group_kfold",
    "bootstrap_indices",
    "check_disjoint",
    "train_forward",
    "evaluate",
    "spectrum_metrics",
]

_LAZY = {"train_forward": "jxas.train.forward", "evaluate": "jxas.train.forward",
         "spectrum_metrics": "jxas.train.metrics"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'jxas.train' has no attribute {name!r}")
