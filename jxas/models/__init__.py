"""Forward models structure -> unconvolved XANES mu(E): descriptor MLP, e3nn equivariant net, ensembles.

- :func:`make_module` builds the flax module of a JSON-able config dict (``config["kind"]`` in
  {"mlp", "e3nn"}); ``module.apply({"params": p}, structure)`` maps ONE padded ``Structure`` to mu
  ``[n_energy]`` on the model's grid (vmap over a batch at the call site).
- :func:`default_config` gives a complete config for an element/edge, :func:`with_statistics` adds the
  training-set statistics (output standardisation, descriptor standardisation, training domain)
  that live in the config so that ``apply`` alone gives physical mu.
- :class:`Model` bundles config + ensemble params (leaves stacked on a member axis) with
  ``predict``/``predict_batch``/``check``/``save``/``load``; :func:`load_model` loads a shipped model
  by name (``"cu-k"``) or a saved directory.
"""

from __future__ import annotations

from jxas.models.config import (
    DEFAULTS,
    default_config,
    init_params,
    make_module,
    model_cutoff,
    prepare_config,
    training_domain,
    with_statistics,
)
from jxas.models.ensemble import ensemble_apply, ensemble_mean_std, stack_members, unstack_members
from jxas.models.model import Model
from jxas.models.registry import available_models, load_model, pretrained_dir

__all__ = [
    "DEFAULTS",
    "Model",
    "available_models",
    "default_config",
    "ensemble_apply",
    "ensemble_mean_std",
    "init_params",
    "load_model",
    "make_module",
    "model_cutoff",
    "prepare_config",
    "pretrained_dir",
    "stack_members",
    "training_domain",
    "unstack_members",
    "with_statistics",
]
