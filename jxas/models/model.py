"""The ``Model`` object: a config plus (ensemble) parameters, with prediction, input checks and I/O.

Saved layout (one directory per model)::

    <dir>/config.json     config (kind, hyper-parameters, element, edge, energy grid, elements, domain,
                          statistics, metrics, name)
    <dir>/params.msgpack  flax.serialization msgpack of the stacked member parameters ([M, ...] leaves)
    <dir>/card.md         model card (markdown)
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from pathlib import Path
from typing import Any

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
from ase.data import atomic_numbers, chemical_symbols
from jaxtyping import Array, Float

from jxas.models.config import init_params, make_module, model_cutoff
from jxas.models.ensemble import ensemble_mean_std, n_members
from jxas.spectrum.spectrum import Spectrum
from jxas.structure import Structure, stack

__all__ = ["Model"]

_CONFIG, _PARAMS, _CARD = "config.json", "params.msgpack", "card.md"


@dataclasses.dataclass(frozen=True, eq=False)
class Model:
    """A forward model structure -> unconvolved mu(E) on an absolute energy grid.

    Attributes:
        config: JSON-able config (see :func:`jxas.models.default_config`); holds everything needed to
            rebuild the network, including the standardisation statistics.
        params: parameters with every leaf stacked on a leading member axis ``[M, ...]``.
        element, edge: absorber element symbol and edge ("Cu", "K"); default from the config.
        energy: ``[E]`` absolute energy grid in eV (NumPy); default from the config.
        cutoff: radius (Å) within which the model sees neighbours; default from the config.
        card: model card (markdown).
        name: model name ("cu-k", or the directory name).

    Values passed explicitly are written into the config, so that ``save`` records them.
    """

    config: dict
    params: Any
    element: str | None = None
    edge: str | None = None
    energy: np.ndarray | None = None
    cutoff: float | None = None
    card: str = ""
    name: str = ""

    def __post_init__(self):
        cfg = dict(self.config)
        if self.element is not None:
            cfg["element"] = str(self.element).strip().capitalize()
        if self.edge is not None:
            cfg["edge"] = str(self.edge).strip().upper()
        if self.energy is not None:
            cfg["energy"] = [float(e) for e in np.ravel(self.energy)]
        if self.cutoff is not None:
            cfg["cutoff"] = float(self.cutoff)
        for key in ("kind", "element", "edge", "energy"):
            if key not in cfg:
                raise ValueError(f"model config lacks {key!r}")
        cfg.setdefault("n_energy", len(cfg["energy"]))
        if len(cfg["energy"]) != cfg["n_energy"]:
            raise ValueError(
                f"model config: energy grid has {len(cfg['energy'])} points, n_energy is {cfg['n_energy']}"
            )
        cfg.setdefault("elements", [atomic_numbers[cfg["element"]]])
        object.__setattr__(self, "config", cfg)
        object.__setattr__(self, "element", cfg["element"])
        object.__setattr__(self, "edge", cfg["edge"])
        object.__setattr__(self, "energy", np.asarray(cfg["energy"], np.float64))
        object.__setattr__(self, "cutoff", float(cfg["cutoff"]) if "cutoff" in cfg else model_cutoff(cfg))
        n_members(self.params)  # validates the member axis

    @property
    def members(self) -> int:
        return n_members(self.params)

    @property
    def kind(self) -> str:
        return self.config["kind"]

    @functools.cached_property
    def module(self):
        return make_module(self.config)

    def __repr__(self) -> str:
        return (
            f"Model(name={self.name!r}, kind={self.kind!r}, {self.element} {self.edge}-edge, members={self.members}, "
            f"grid {self.energy[0]:.2f}-{self.energy[-1]:.2f} eV ({len(self.energy)} points), cutoff {self.cutoff} Å)"
        )

    # ---- construction ---------------------------------------------------------------------------
    @classmethod
    def init(cls, config: dict, *, key: jax.Array, members: int = 1, name: str = "", card: str = "") -> Model:
        """A randomly initialised model (e.g. to train, or for tests)."""
        return cls(config=config, params=init_params(config, key=key, members=members), name=name, card=card)

    def replace(self, **changes) -> Model:
        """A copy with some fields replaced (e.g. ``model.replace(params=new)``)."""
        return dataclasses.replace(self, **changes)

    # ---- pure functions (jit/grad/vmap-able) ----------------------------------------------------
    def apply_members(self, params: Any, structure: Structure) -> Float[Array, "m e"]:
        """Every member's mu ``[M, E]`` for ONE padded structure; pure, differentiable w.r.t. positions."""
        module = self.module
        return jax.vmap(lambda p: module.apply({"params": p}, structure, train=False))(params)

    def apply(self, params: Any, structure: Structure) -> Float[Array, " e"]:
        """Ensemble-mean mu ``[E]`` for ONE padded structure (pure; vmap over a batch)."""
        return jnp.mean(self.apply_members(params, structure), axis=0)

    @functools.cached_property
    def _members_jit(self):
        return jax.jit(self.apply_members)

    @functools.cached_property
    def _batch_jit(self):
        def f(params, batch):
            mu = jax.vmap(self.apply_members, in_axes=(None, 0))(params, batch)  # [B, M, E]
            return ensemble_mean_std(mu)

        return jax.jit(f)

    # ---- input checks ---------------------------------------------------------------------------
    def check(self, structure: Structure) -> list[str]:
        """Validate one structure (or a batch) for this model; return warnings, raise on unusable input.

        Raises:
            ValueError: the absorber is not the model's element; an element the model was never
                trained on is present within the cutoff... anywhere in the structure; or the absorber
                has no neighbour within the model's cutoff.

        Returns:
            Human-readable warnings when the structure is partly outside the training domain
            (nearest-neighbour distance, neighbour count, charge, spin), or has atoms closer than 0.5 Å.
            For a batch, each warning is prefixed with the entry index.
        """
        if not isinstance(structure, Structure):
            raise TypeError(f"expected a jxas Structure, got {type(structure).__name__}")
        if structure.is_batch:
            pos, num, mask = (np.asarray(a) for a in (structure.positions, structure.numbers, structure.mask))
            ab, q, sp = (np.asarray(a) for a in (structure.absorber, structure.charge, structure.spin))
            out = []
            for i in range(num.shape[0]):
                try:
                    w = self._check_one(pos[i], num[i], mask[i], int(ab[i]), int(q[i]), int(sp[i]))
                except ValueError as e:
                    raise ValueError(f"structure {i} of the batch: {e}") from None
                out += [f"structure {i}: {m}" for m in w]
            return out
        return self._check_one(
            np.asarray(structure.positions), np.asarray(structure.numbers), np.asarray(structure.mask),
            int(structure.absorber), int(structure.charge), int(structure.spin),
        )

    def _check_one(self, pos, num, mask, absorber, charge, spin) -> list[str]:
        z_model = atomic_numbers[self.element]
        if not (0 <= absorber < len(num)) or not mask[absorber]:
            raise ValueError(f"absorber index {absorber} is not a real atom")
        if num[absorber] != z_model:
            raise ValueError(
                f"absorber {absorber} is {chemical_symbols[int(num[absorber])]}, but model {self.name or '?'} "
                f"predicts the {self.element} {self.edge}-edge (choose another absorber or model)"
            )
        known = set(int(z) for z in self.config["elements"])
        present = set(int(z) for z in num[mask])
        unknown = sorted(present - known)
        if unknown:
            raise ValueError(
                f"elements {[chemical_symbols[z] for z in unknown]} were never seen in training by model "
                f"{self.name or '?'} (trained on {[chemical_symbols[z] for z in sorted(known)]})"
            )
        r = np.linalg.norm(pos - pos[absorber], axis=-1)
        nb = mask & (r > 0) & (r < self.cutoff)
        if not nb.any():
            raise ValueError(f"the absorber has no neighbour within the model's cutoff of {self.cutoff} Å")
        warnings = []
        real = pos[mask]
        if len(real) > 1:
            dij = np.linalg.norm(real[:, None] - real[None], axis=-1) + np.eye(len(real)) * 1e9
            if dij.min() < 0.5:
                warnings.append(f"atoms only {dij.min():.3f} Å apart (unphysical geometry)")
        dom = _domain(self.config)
        if dom:
            rnn = float(r[nb].min())
            lo, hi = dom["nn_distance"]
            if not lo - 0.1 <= rnn <= hi + 0.1:
                warnings.append(
                    f"nearest-neighbour distance {rnn:.3f} Å outside the training range [{lo:.3f}, {hi:.3f}] Å"
                )
            cnt = int(nb.sum())
            lo, hi = dom["n_neighbours"]
            if not lo <= cnt <= hi:
                warnings.append(f"{cnt} atoms within {self.cutoff} Å, outside the training range [{lo}, {hi}]")
            for key, val in (("charge", charge), ("spin", spin)):
                if key in dom and not dom[key][0] <= val <= dom[key][1]:
                    warnings.append(f"{key} {val} outside the training range {dom[key]}")
            seen = dom.get("neighbour_nn")
            if seen is not None:  # per neighbour element: never within the cutoff in training, or closer
                for z in np.unique(num[nb]):
                    el, d = chemical_symbols[int(z)], float(r[nb & (num == z)].min())
                    if str(int(z)) not in seen:
                        warnings.append(f"{el} within {self.cutoff} Å of the absorber ({d:.2f} Å), never seen in "
                                        "training (e.g. metal-metal contacts for a model trained on molecules)")
                    elif d < seen[str(int(z))][0] - 0.1:
                        warnings.append(f"nearest {el} at {d:.2f} Å, closer than in training "
                                        f"({seen[str(int(z))][0]:.2f} Å)")
        return warnings

    # ---- prediction -----------------------------------------------------------------------------
    def _as_structure(self, structure, absorber=None) -> Structure:
        if isinstance(structure, Structure):
            return structure
        from jxas.io.structures import read_structure

        return read_structure(structure, absorber=absorber)

    def predict(self, structure, *, absorber: int | None = None) -> Spectrum:
        """Predict the spectrum of one structure (a ``Structure``, a file path or ``ase.Atoms``).

        Returns:
            ``Spectrum`` with ``mu`` the ensemble mean, ``std`` the member spread (0 for one member),
            ``meta`` with ``model``, ``element``, ``edge``, ``members`` and ``warnings`` (a list; empty
            when the structure is inside the training domain).
        """
        s = self._as_structure(structure, absorber)
        if s.is_batch:
            raise ValueError("predict() takes one structure; use predict_batch() for a batch")
        warnings = self.check(s)
        mu = self._members_jit(self.params, s)
        mean, std = ensemble_mean_std(mu)
        return Spectrum(energy=jnp.asarray(self.energy), mu=mean, std=std, meta=self._meta(warnings))

    def predict_batch(self, batch, *, chunk_size: int = 256, check: bool = True) -> Spectrum:
        """Predict a batch (a batched ``Structure`` or a list of structures) in chunks of ``chunk_size``.

        Chunks are padded to a fixed size so that one compilation serves the whole batch and memory
        stays bounded (10,000 structures fit). 256 is faster per spectrum on a CPU than 1024-4096
        (measured with benchmarks/forward.py: the n² intermediates of larger chunks leave the caches).
        Returns a ``Spectrum`` with ``mu``/``std`` ``[B, E]``; ``meta["warnings"]`` lists problems
        prefixed by the entry index.
        """
        if isinstance(batch, list | tuple):
            batch = stack([self._as_structure(s) for s in batch])
        if not batch.is_batch:
            batch = jax.tree.map(lambda x: x[None], batch)
        warnings = self.check(batch) if check else []
        b = int(batch.numbers.shape[0])
        size = min(chunk_size, b)
        means, stds = [], []
        for i in range(0, b, size):
            part = jax.tree.map(lambda x, i=i: x[i : i + size], batch)
            k = int(part.numbers.shape[0])
            if k < size:  # pad the last chunk with copies of its last entry (no recompilation)
                part = jax.tree.map(lambda x, k=k: jnp.concatenate([x, jnp.repeat(x[-1:], size - k, axis=0)]), part)
            m, s = self._batch_jit(self.params, part)
            means.append(np.asarray(m[:k]))
            stds.append(np.asarray(s[:k]))
        return Spectrum(
            energy=jnp.asarray(self.energy), mu=np.concatenate(means), std=np.concatenate(stds),
            meta=self._meta(warnings),
        )

    def _meta(self, warnings) -> dict:
        return {
            "model": self.name, "element": self.element, "edge": self.edge, "members": self.members,
            "kind": self.kind, "warnings": list(warnings), "quantity": "mu (unconvolved, model prediction)",
        }

    # ---- I/O ------------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json``, ``params.msgpack`` and ``card.md`` into ``directory`` (created)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        cfg = dict(self.config)
        cfg["name"] = self.name or cfg.get("name", d.name)
        cfg["members"] = self.members
        (d / _CONFIG).write_text(json.dumps(_jsonable(cfg), indent=1) + "\n")
        # "param_dtype": "float16" stores the parameters at half precision (they load as float32)
        store = np.float16 if cfg.get("param_dtype") == "float16" else None
        state = jax.tree.map(lambda x: np.asarray(x, store) if store and np.issubdtype(np.asarray(x).dtype, np.floating)
                             else np.asarray(x), flax.serialization.to_state_dict(self.params))
        (d / _PARAMS).write_bytes(flax.serialization.msgpack_serialize(state))
        (d / _CARD).write_text(self.card or _default_card(cfg))
        return d

    @classmethod
    def load(cls, directory: str | os.PathLike, *, name: str | None = None) -> Model:
        """Load a directory written by :meth:`save`; errors name the missing or broken file."""
        d = Path(directory)
        for f in (_CONFIG, _PARAMS):
            if not (d / f).is_file():
                raise FileNotFoundError(f"{d}: not a saved jxas model ({f} missing)")
        try:
            cfg = json.loads((d / _CONFIG).read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{d / _CONFIG}: invalid JSON ({e})") from None
        try:
            state = flax.serialization.msgpack_restore((d / _PARAMS).read_bytes())
        except Exception as e:  # msgpack raises several types
            raise ValueError(f"{d / _PARAMS}: cannot read parameters ({e})") from None
        # half-precision storage is widened on load: the network always runs in float32
        params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32) if np.asarray(x).dtype == np.float16
                              else jnp.asarray(x), state)
        card = (d / _CARD).read_text() if (d / _CARD).is_file() else ""
        return cls(config=cfg, params=params, name=name or cfg.get("name") or d.name, card=card)


def _domain(cfg: dict) -> dict | None:
    """Training domain in the ``training_domain`` format (also reads ``train_ranges`` of jxas.train)."""
    if cfg.get("domain"):
        return cfg["domain"]
    tr = cfg.get("train_ranges")
    if tr and "nearest_neighbour_A" in tr and "neighbours_within_cutoff" in tr:
        return {"nn_distance": tr["nearest_neighbour_A"], "n_neighbours": tr["neighbours_within_cutoff"]}
    return None


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray | jax.Array):
        return _jsonable(np.asarray(x).tolist())
    if isinstance(x, np.generic):
        return x.item()
    return x


def _default_card(cfg: dict) -> str:
    return (
        f"# {cfg.get('name', 'model')}\n\n{cfg['kind']} forward model, {cfg['element']} {cfg['edge']}-edge, "
        f"{cfg.get('members', 1)} member(s), grid {cfg['energy'][0]:.2f}-{cfg['energy'][-1]:.2f} eV "
        f"({cfg['n_energy']} points).\n\nNo model card was provided.\n"
    )
