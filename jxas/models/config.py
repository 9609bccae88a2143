"""Model configs (plain JSON-able dicts) -> flax modules, parameter initialisation, training statistics.

A config holds everything needed to rebuild a model: ``kind``, the network hyper-parameters, the
element/edge/energy grid, the atomic numbers it was trained on (``elements``), output/descriptor
standardisation and the training domain used by :meth:`jxas.models.Model.check`.
"""

from __future__ import annotations

import copy
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from ase.data import atomic_numbers, chemical_symbols

from jxas.models.e3nn import EquivariantNet
from jxas.models.mlp import DescriptorMLP, descriptor_fn, xanesnet_hidden
from jxas.spectrum.grids import standard_grid
from jxas.structure import Structure, absorber_distances

__all__ = [
    "DEFAULTS", "default_config", "make_module", "init_params", "model_cutoff", "training_domain", "with_statistics",
    "prepare_config",
]

# network hyper-parameters per kind (everything else in a config is data: grid, element, statistics)
DEFAULTS: dict[str, dict[str, Any]] = {
    "mlp": {
        "descriptor": "wacsf",
        "descriptor_args": {"r_min": 1.0, "r_max": 6.0, "n_g2": 16, "n_g4": 32},
        "hidden": [256, 256],
        "activation": "silu",
        "dropout": 0.1,
        "use_charge_spin": False,
    },
    "e3nn": {
        "cutoff": 6.0,
        "l_max": 2,
        "channels": 16,
        "n_layers": 2,
        "n_radial": 8,
        "radial_hidden": 32,
        "n_radial_out": 8,
        "readout": [128, 128],
        "avg_neighbours": 12.0,
        "use_charge_spin": False,
        "activation": "silu",
        "dropout": 0.0,
        "envelope_p": 6,
    },
}
_MLP_FIELDS = ("descriptor", "hidden", "activation", "dropout", "use_charge_spin")
_E3NN_FIELDS = tuple(k for k in DEFAULTS["e3nn"])


def default_config(
    kind: str, element: str, edge: str = "K", *, energy=None, elements=None, **overrides
) -> dict[str, Any]:
    """A complete config for ``kind`` ("mlp" or "e3nn") predicting the ``element`` ``edge`` spectrum.

    Args:
        kind: "mlp" or "e3nn".
        element, edge: absorber element symbol and edge ("Cu", "K").
        energy: absolute grid (eV); default :func:`jxas.spectrum.standard_grid` of the element.
        elements: atomic numbers (or symbols) the model may see; default: the absorber only, which
            :func:`with_statistics` widens to the elements of the training set.
        **overrides: hyper-parameters replacing the defaults of ``DEFAULTS[kind]``; for the MLP,
            ``hidden="xanesnet"`` selects the published 4 x (1150, -10%) size.
    """
    if kind not in DEFAULTS:
        raise ValueError(f"unknown model kind {kind!r}; use one of {sorted(DEFAULTS)}")
    element = element.strip().capitalize()
    if element not in atomic_numbers:
        raise ValueError(f"unknown element {element!r}")
    cfg = copy.deepcopy(DEFAULTS[kind])
    unknown = set(overrides) - set(cfg) - {"name", "descriptor_args"}
    if unknown:
        raise ValueError(f"unknown {kind} settings {sorted(unknown)}; allowed: {sorted(cfg)}")
    cfg.update(copy.deepcopy(overrides))
    if kind == "mlp" and "descriptor_args" not in overrides and cfg["descriptor"] != DEFAULTS["mlp"]["descriptor"]:
        cfg["descriptor_args"] = {}  # the default settings are wACSF's: another descriptor starts from its own
    if kind == "mlp" and cfg["hidden"] == "xanesnet":
        cfg["hidden"] = list(xanesnet_hidden())
    energy = standard_grid(element, edge) if energy is None else np.asarray(energy, np.float64)
    zs = [atomic_numbers[element]] if elements is None else [_z(e) for e in elements]
    cfg.update(
        kind=kind,
        element=element,
        edge=edge.strip().upper(),
        energy=[float(e) for e in energy],
        n_energy=int(len(energy)),
        elements=sorted(set(zs)),
        mu_mean=None,
        mu_std=None,
    )
    if kind == "mlp":
        cfg.update(x_mean=None, x_std=None)
    cfg["cutoff"] = model_cutoff(cfg)
    return cfg


def _z(e) -> int:
    if isinstance(e, str):
        if e.capitalize() not in atomic_numbers:
            raise ValueError(f"unknown element {e!r}")
        return atomic_numbers[e.capitalize()]
    return int(e)


def model_cutoff(config: dict) -> float:
    """Radius (Å) within which the model sees neighbours of the absorber."""
    if config["kind"] == "e3nn":
        return float(config.get("cutoff", DEFAULTS["e3nn"]["cutoff"]))
    args = config.get("descriptor_args", {})
    return float(args.get("r_max", 8.0 if config.get("descriptor", "wacsf") == "rdc" else 6.0))


def _tuple_or_none(x):
    return None if x is None else tuple(float(v) for v in np.ravel(x))


def make_module(config: dict):
    """The flax module of a config: ``module.apply({"params": p}, structure, train=False)`` -> mu ``[E]``."""
    kind = config.get("kind")
    common = dict(
        n_energy=int(config["n_energy"]),
        mu_mean=_tuple_or_none(config.get("mu_mean")),
        mu_std=_tuple_or_none(config.get("mu_std")),
    )
    if kind == "mlp":
        kw = {k: config[k] for k in _MLP_FIELDS if k in config}
        kw["hidden"] = tuple(int(h) for h in kw.get("hidden", DEFAULTS["mlp"]["hidden"]))
        kw["descriptor_args"] = tuple(
            (k, tuple(v) if isinstance(v, list) else v) for k, v in sorted(config.get("descriptor_args", {}).items())
        )
        return DescriptorMLP(
            **common, **kw, x_mean=_tuple_or_none(config.get("x_mean")), x_std=_tuple_or_none(config.get("x_std"))
        )
    if kind == "e3nn":
        kw = {k: config[k] for k in _E3NN_FIELDS if k in config}
        kw["readout"] = tuple(int(h) for h in kw.get("readout", DEFAULTS["e3nn"]["readout"]))
        kw["cutoff"] = float(kw.get("cutoff", 6.0))
        return EquivariantNet(**common, **kw, elements=tuple(int(z) for z in config["elements"]))
    raise ValueError(f"config 'kind' must be 'mlp' or 'e3nn', got {kind!r}")


def _example_structure(config: dict) -> Structure:
    z = atomic_numbers[config["element"]]
    other = next((e for e in config["elements"] if e != z), z)
    return Structure.from_arrays(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 2.0]]), np.array([z, other]))


def init_params(config: dict, *, key: jax.Array, members: int = 1) -> Any:
    """Randomly initialised parameters, stacked on a leading member axis ``[members, ...]`` (float32)."""
    if members < 1:
        raise ValueError(f"members must be >= 1, got {members}")
    module = make_module(config)
    s = _example_structure(config)
    s = s.replace(positions=s.positions.astype(jnp.float32))

    def one(k):
        return module.init({"params": k}, s, train=False)["params"]

    params = jax.jit(jax.vmap(one))(jax.random.split(key, members))
    return jax.tree.map(lambda x: x.astype(jnp.float32), params)


def training_domain(batch: Structure, cutoff: float) -> dict[str, Any]:
    """Summary of a training batch used to flag out-of-distribution inputs (host side, NumPy).

    Returns:
        dict with ``elements`` (atomic numbers present), ``nn_distance`` [min, max] of the absorber's
        nearest-neighbour distance (Å), ``n_neighbours`` [min, max] of real atoms within ``cutoff``,
        ``charge`` and ``spin`` [min, max], and ``neighbour_nn`` (:func:`neighbour_ranges`).
    """
    r = np.asarray(jax.vmap(absorber_distances)(batch))
    mask = np.asarray(batch.mask)
    nb = mask & (r > 0) & (r < cutoff)
    if not np.all(nb.any(axis=1)):
        bad = np.flatnonzero(~nb.any(axis=1))[:5]
        raise ValueError(f"training structures {bad.tolist()} have no neighbour within {cutoff} Å of the absorber")
    rnn = np.where(nb, r, np.inf).min(axis=1)
    cnt = nb.sum(axis=1)
    numbers = np.asarray(batch.numbers)[mask]
    charge, spin = np.asarray(batch.charge), np.asarray(batch.spin)
    return {
        "elements": sorted(int(z) for z in np.unique(numbers)),
        "nn_distance": [float(rnn.min()), float(rnn.max())],
        "n_neighbours": [int(cnt.min()), int(cnt.max())],
        "charge": [int(charge.min()), int(charge.max())],
        "spin": [int(spin.min()), int(spin.max())],
        "neighbour_nn": neighbour_ranges(r, np.asarray(batch.numbers), nb),
    }


def neighbour_ranges(r: np.ndarray, numbers: np.ndarray, nb: np.ndarray) -> dict[str, list[float]]:
    """Per neighbour element (atomic number as a string): [min, max] over the structures that have one
    within the cutoff of the distance from the absorber to the nearest atom of that element.

    A model trained on molecules has no entry for the absorber's own element (no metal-metal contacts),
    which is how a metal or an oxide lattice is recognised as outside its training domain.
    """
    out: dict[str, list[float]] = {}
    for z in np.unique(numbers[nb]):
        d = np.where(nb & (numbers == z), r, np.inf).min(axis=1)
        d = d[np.isfinite(d)]
        out[str(int(z))] = [float(d.min()), float(d.max())]
    return out


def with_statistics(config: dict, structures: Structure, mu: np.ndarray, *, chunk: int = 512) -> dict[str, Any]:
    """A copy of ``config`` with the training-set statistics filled in.

    Sets ``mu_mean``/``mu_std`` (per energy point, over ``mu [B, E]``), for the MLP ``x_mean``/``x_std``
    of the descriptor, ``elements`` (every element in the training structures) and ``domain``
    (:func:`training_domain`). Call it once on the training split before initialising/training.
    """
    mu = np.asarray(mu, np.float64)
    if mu.ndim != 2 or mu.shape[1] != config["n_energy"]:
        raise ValueError(f"mu must be [B, {config['n_energy']}], got {mu.shape}")
    if not np.all(np.isfinite(mu)):
        raise ValueError("training spectra contain NaN/inf")
    cfg = copy.deepcopy(config)
    cfg["mu_mean"] = [float(v) for v in mu.mean(0)]
    cfg["mu_std"] = [float(v) for v in mu.std(0)]
    dom = training_domain(structures, model_cutoff(cfg))
    z = atomic_numbers[cfg["element"]]
    cfg["elements"] = sorted(set(dom["elements"]) | {z})
    cfg["domain"] = dom
    return prepare_config(cfg, structures, chunk=chunk)


def prepare_config(config: dict, structures: Structure, *, chunk: int = 512) -> dict[str, Any]:
    """Fill the input-side statistics a config needs from the training structures (used by jxas.train).

    For the MLP: descriptor mean/std (``x_mean``, ``x_std``); for every kind: ``cutoff`` and, when
    missing, the training ``domain``. Output statistics (``mu_mean``/``mu_std``) are left as given.
    """
    cfg = copy.deepcopy(config)
    cfg["cutoff"] = model_cutoff(cfg)
    if "domain" not in cfg:
        cfg["domain"] = training_domain(structures, cfg["cutoff"])
    if cfg["kind"] == "mlp":
        fn = jax.jit(jax.vmap(descriptor_fn(cfg.get("descriptor", "wacsf"), cfg.get("descriptor_args", {}))))
        n = int(np.shape(structures.numbers)[0])
        parts = [jax.tree.map(lambda a, i=i: jnp.asarray(a[i : i + chunk]), structures) for i in range(0, n, chunk)]
        x = np.concatenate([np.asarray(fn(part)) for part in parts])
        if not np.all(np.isfinite(x)):
            raise ValueError("training descriptors contain NaN/inf")
        cfg["x_mean"] = [float(v) for v in x.mean(0)]
        cfg["x_std"] = [float(v) for v in np.maximum(x.std(0), 1e-6)]
    return cfg


def element_symbols(zs) -> list[str]:
    return [chemical_symbols[int(z)] for z in zs]
