"""Inverse models as objects: load/save, and spectrum -> structural descriptors with uncertainty.

Saved layout (like the forward models): ``<dir>/config.json`` (architecture, model grid, output layout,
standardisation, per-output sigma scale, donors, element/edge, metrics), ``<dir>/params.msgpack``
(flax serialisation of the member-stacked parameters) and ``<dir>/card.md`` (model card). Shipped
models live in ``jxas/pretrained/inverse-<element>-<edge>/``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from ase.data import chemical_symbols
from flax import serialization

from jxas.inverse import features as F
from jxas.inverse.errmodel import FILE as ERRMODEL_FILE
from jxas.inverse.errmodel import ErrorModel
from jxas.inverse.errnet import FILE as ERRNET_FILE
from jxas.inverse.errnet import ErrorNet
from jxas.inverse.model import combine, init_members, make_module, output_slices
from jxas.inverse.peaks import shell_distances
from jxas.inverse.targets import g2_grid

__all__ = ["InverseModel", "InverseResult", "load_inverse_model", "invert", "PRETRAINED"]

PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"


@dataclasses.dataclass
class InverseResult:
    """What an inverse model reads from one spectrum (means and calibrated 1-sigma uncertainties).

    Attributes:
        r1, r1_sigma: mean first-shell distance (Å), direct prediction.
        cn, cn_sigma: first-shell coordination number (1.25 r_min rule, :mod:`jxas.inverse.targets`).
        composition: donor element -> (count, sigma) in the first shell ("other" for the rest).
        ox, ox_sigma: formal oxidation state of the absorber (None if the model never saw labels).
        g2, g2_sigma: ``[50]`` predicted G2 curve and its sigma on ``g2_r`` (Å).
        shells: first/second shell distances from the G2 peaks: dict ``r``, ``sigma``, ``found``.
        members: ``[M, O]`` raw member outputs.
        warnings: problems noticed with the input (out of the training range, extrapolated grid, ...).
        model: model name.
    """

    r1: float
    r1_sigma: float
    cn: float
    cn_sigma: float
    composition: dict[str, tuple[float, float]]
    ox: float | None
    ox_sigma: float | None
    g2: np.ndarray
    g2_sigma: np.ndarray
    g2_r: np.ndarray
    shells: dict[str, np.ndarray]
    members: np.ndarray
    warnings: list[str]
    model: str

    def summary(self) -> str:
        """Human-readable lines (what ``jxas invert`` prints)."""
        lines = [f"model: {self.model}",
                 f"first-shell distance: {self.r1:.3f} +- {self.r1_sigma:.3f} A",
                 f"coordination number:  {self.cn:.2f} +- {self.cn_sigma:.2f}"]
        comp = ", ".join(f"{el} {c:.2f} +- {s:.2f}" for el, (c, s) in self.composition.items() if c >= 0.25)
        lines.append(f"first-shell composition: {comp or '(none above 0.25)'}")
        if self.ox is not None:
            lines.append(f"oxidation state: {self.ox:+.2f} +- {self.ox_sigma:.2f}")
        for i, label in enumerate(("first", "second")):
            if self.shells["found"][i] > 0:
                lines.append(f"G2 {label}-shell peak: {self.shells['r'][i]:.3f} +- {self.shells['sigma'][i]:.3f} A "
                             f"(found by {100 * self.shells['found'][i]:.0f}% of members)")
            else:
                lines.append(f"G2 {label}-shell peak: not found")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("members")
        return json.loads(json.dumps(d, default=lambda o: np.asarray(o).tolist()))


@dataclasses.dataclass
class InverseModel:
    """A trained bootstrap-ensemble inverse model (member-stacked ``params``, leading axis M).

    ``errmodel``: optional out-of-bag error model (:class:`jxas.inverse.errmodel.ErrorModel`) whose
    expected squared error is added to the ensemble variance before the per-output calibration scale;
    ``errnet``: the same for the learned error model (:class:`jxas.inverse.errnet.ErrorNet`).
    """

    config: dict
    params: Any
    name: str = "inverse"
    element: str = ""
    edge: str = "K"
    card: str = ""
    errmodel: ErrorModel | None = None
    errnet: ErrorNet | None = None

    @property
    def energy(self) -> np.ndarray:
        """The model grid (absolute eV)."""
        return np.asarray(self.config["energy"], float)

    @property
    def n_members(self) -> int:
        return int(jax.tree.leaves(self.params)[0].shape[0])

    def __post_init__(self):
        module = make_module(self.config)
        sl = output_slices(self.config["outputs"])
        self._module, self._sl = module, sl
        n_fft = int(self.config.get("n_fft", 24))
        grid = jnp.asarray(self.config["energy"], jnp.float32)
        use_fft = module.use_fft

        def members(params, spec):
            fft = F.fourier_features(grid, spec, n_out=n_fft) if use_fft else None
            return jax.vmap(lambda p: module.apply({"params": p}, spec, fft))(params)

        self._members = jax.jit(members)

    def error_variance(self, spec_grid: np.ndarray, members: np.ndarray | None = None) -> np.ndarray | None:
        """Error-model variance ``[N, O]`` (or ``[O]``) of spectra on the model grid; None without one.

        ``members``: the raw member outputs ``[N, M, O(2O)]`` (``[M, O(2O)]``) of these spectra, which the
        learned error model reads; computed here when not given.
        """
        v = None if self.errmodel is None else self.errmodel(spec_grid)
        if self.errnet is not None:
            spec = np.asarray(spec_grid, np.float32)
            if members is None:
                members = (np.asarray(self.apply_members(self.params, spec)) if spec.ndim == 1 else
                           np.stack([np.asarray(self.apply_members(self.params, x)) for x in spec]))
            v2 = self.errnet(spec, members)
            v = v2 if v is None else v + v2
        return v

    # -- pure functions --------------------------------------------------------------------------
    def apply_members(self, params, spec) -> jax.Array:
        """``[M, O]`` outputs of every member for one spectrum on the model grid (jit-compiled)."""
        return self._members(params, jnp.asarray(spec, jnp.float32))

    # -- host side --------------------------------------------------------------------------------
    def alignment_shift(self, energy: np.ndarray, flat: np.ndarray) -> float:
        """Energy shift (eV) that best aligns a normalised spectrum with the model's training spectra.

        Measured spectra and the simulations a model learnt from do not share an energy reference
        (FEFF's Fermi-level estimate, monochromator calibration: several eV). The shift ``de`` in
        ``config["align_range"]`` (0.1 eV steps) minimising the mean squared difference between the
        shifted spectrum and its nearest of the ``config["prototypes"]`` (k-means centres of the
        training spectra on the model grid) is returned; add it to the energy axis.
        """
        protos = np.asarray(self.config.get("prototypes", []), float)
        if protos.size == 0:
            raise ValueError(f"model {self.name} stores no prototype spectra: cannot align; use align=False")
        lo, hi = self.config.get("align_range", [-10.0, 10.0])
        shifts = np.arange(lo, hi + 1e-9, 0.1)
        grid = self.energy
        y = np.stack([np.interp(grid - de, energy, flat) for de in shifts])  # [S, E]
        d = ((y[:, None, :] - protos[None]) ** 2).mean(-1)  # [S, P]
        return float(shifts[np.argmin(d.min(1))])

    def spectrum_on_grid(
        self, spectrum, *, normalise: bool = True, align: bool = False, source: str = "spectrum"
    ) -> tuple[np.ndarray, list]:
        """Normalise a :class:`jxas.Spectrum` (unless ``normalise=False``) and resample it on the model grid.

        With ``align=True`` the spectrum is first shifted in energy onto the training spectra
        (:meth:`alignment_shift`), which measured spectra need when the model learnt from simulations.

        Raises:
            ValueError: a spectrum the model cannot read (see :func:`jxas.inverse.features.check_spectrum`).
        """
        energy = np.asarray(spectrum.energy, float)
        mu = np.asarray(spectrum.mu, float)
        if mu.ndim != 1:
            raise ValueError(f"{source}: invert takes one spectrum, got mu of shape {mu.shape}")
        F.check_spectrum(energy, mu, self.energy, source=source)
        warn = []
        if normalise:
            energy, mu, e0 = F.normalise_measured(energy, mu, source=source)
            lo, hi = self.energy[0], self.energy[-1]
            if not lo - 30 <= e0 <= hi:
                raise ValueError(f"{source}: edge at {e0:.1f} eV lies outside the model grid {lo:.1f}-{hi:.1f} eV "
                                 f"({self.element} {self.edge} edge); wrong element or edge?")
        if align:
            de = self.alignment_shift(energy, mu)
            energy = energy + de
            warn.append(f"aligned to the training spectra: energy shifted by {de:+.2f} eV")
        if energy[0] > self.energy[0] + 1 or energy[-1] < self.energy[-1] - 1:
            warn.append(f"spectrum covers {energy[0]:.1f}-{energy[-1]:.1f} eV, model grid "
                        f"{self.energy[0]:.1f}-{self.energy[-1]:.1f} eV: ends extrapolated as constants")
        return np.interp(self.energy, energy, mu), warn

    def predict(self, spectrum, *, normalise: bool = True, align: bool = False,
                source: str = "spectrum") -> InverseResult:
        """Structural descriptors of one spectrum with calibrated ensemble uncertainties."""
        spec, warn = self.spectrum_on_grid(spectrum, normalise=normalise, align=align, source=source)
        return self.predict_grid(spec, warnings_=warn)

    def predict_grid(self, spec: np.ndarray, *, warnings_: list | None = None) -> InverseResult:
        """Like :meth:`predict` for a normalised spectrum already on the model grid."""
        members = np.asarray(self.apply_members(self.params, spec), float)
        if not np.all(np.isfinite(members)):
            raise ValueError("the inverse model produced non-finite outputs for this spectrum")
        mean, sigma = combine(members, self.config, self.error_variance(np.asarray(spec, np.float32), members))
        sigma = sigma * np.asarray(self.config.get("sigma_scale", np.ones(mean.shape[0])), float)
        members = members[:, : mean.shape[0]]
        sl = self._sl
        donors = [chemical_symbols[z] for z in self.config["donors"]] + ["other"]
        comp = {el: (float(mean[sl["comp"]][i]), float(sigma[sl["comp"]][i])) for i, el in enumerate(donors)}
        ox = ox_s = None
        if self.config.get("has_ox", False):
            ox, ox_s = float(mean[sl["ox"]][0]), float(sigma[sl["ox"]][0])
        g = members[:, sl["g2"]]
        shells = shell_distances(g)
        # the peak spread over members is one part; the calibrated G2 scale around the peak is folded in
        shells["sigma"] = shells["sigma"] * float(self.config.get("shell_sigma_scale", 1.0))
        warn = list(warnings_ or [])
        r1 = float(mean[sl["r1"]][0])
        lo, hi = self.config.get("r1_range", [0.0, np.inf])
        if not lo <= r1 <= hi:
            warn.append(f"first-shell distance {r1:.2f} A outside the training range {lo:.2f}-{hi:.2f} A")
        return InverseResult(
            r1=r1, r1_sigma=float(sigma[sl["r1"]][0]), cn=float(mean[sl["cn"]][0]),
            cn_sigma=float(sigma[sl["cn"]][0]), composition=comp, ox=ox, ox_sigma=ox_s,
            g2=mean[sl["g2"]], g2_sigma=sigma[sl["g2"]], g2_r=g2_grid(), shells=shells,
            members=members, warnings=warn, model=self.name)

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json``, ``params.msgpack`` and ``card.md`` into ``directory``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        cfg = dict(self.config, name=self.name, element=self.element, edge=self.edge)
        (d / "config.json").write_text(json.dumps(cfg, indent=1, default=_jsonable))
        (d / "params.msgpack").write_bytes(serialization.to_bytes(jax.device_get(self.params)))
        (d / "card.md").write_text(self.card or f"# {self.name}\n\n(no model card)\n")
        for em, file in ((self.errmodel, ERRMODEL_FILE), (self.errnet, ERRNET_FILE)):
            if em is not None:
                em.save(d)
            elif (d / file).is_file():  # a stale error model of an earlier save
                (d / file).unlink()
        return d

    @classmethod
    def load(cls, directory: str | os.PathLike) -> InverseModel:
        """Load a saved inverse model (ValueError naming the file if something is missing or broken)."""
        d = Path(directory)
        for f in ("config.json", "params.msgpack"):
            if not (d / f).is_file():
                raise ValueError(f"{d}: not an inverse model directory (missing {f})")
        try:
            config = json.loads((d / "config.json").read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{d / 'config.json'}: invalid JSON ({e})") from None
        if config.get("kind") not in (None, "inverse"):
            raise ValueError(f"{d}: config kind is {config.get('kind')!r}, not an inverse model")
        module = make_module(config)
        template = init_members(module, int(config["n_members"]), len(config["energy"]),
                                int(config.get("n_fft", 24)), key=jax.random.key(0))
        try:
            params = serialization.from_bytes(template, (d / "params.msgpack").read_bytes())
        except Exception as e:  # flax raises several types for mismatched trees
            raise ValueError(f"{d / 'params.msgpack'}: does not match config.json ({type(e).__name__}: {e})") from None
        card = (d / "card.md").read_text() if (d / "card.md").is_file() else ""
        errmodel, errnet = ErrorModel.load(d), ErrorNet.load(d)
        kind = (config.get("error_model") or {}).get("kind")
        if kind == "oob_knn" and errmodel is None:
            raise ValueError(f"{d}: config.json names an error model but the directory has no {ERRMODEL_FILE}")
        if kind == "oob_mlp" and errnet is None:
            raise ValueError(f"{d}: config.json names a learned error model but the directory has no {ERRNET_FILE}")
        return cls(config=config, params=params, name=config.get("name", d.name), element=config.get("element", ""),
                   edge=config.get("edge", "K"), card=card, errmodel=errmodel, errnet=errnet)


def _jsonable(o):
    if isinstance(o, np.ndarray | jnp.ndarray):
        return np.asarray(o).tolist()
    if isinstance(o, np.integer | np.floating):
        return o.item()
    raise TypeError(f"not JSON-serialisable: {type(o)}")


def load_inverse_model(name_or_path: str | os.PathLike) -> InverseModel:
    """A shipped inverse model by name ("cu-k", "inverse-cu-k") or a saved directory."""
    p = Path(name_or_path)
    if p.is_dir():
        return InverseModel.load(p)
    name = str(name_or_path).lower()
    # "cu-k" is the forward model's folder: inverse models always live under "inverse-<name>"
    for cand in (name,) if name.startswith("inverse-") else (f"inverse-{name}",):
        if (PRETRAINED / cand / "config.json").is_file():
            return InverseModel.load(PRETRAINED / cand)
    shipped = sorted(q.name for q in PRETRAINED.glob("inverse-*") if (q / "config.json").is_file())
    raise ValueError(f"no inverse model {name_or_path!r} (neither a directory nor a shipped name); "
                     f"shipped: {', '.join(shipped) or 'none'}")


def _model_for(spectrum, model) -> InverseModel:
    if isinstance(model, InverseModel):
        return model
    if model is not None:
        return load_inverse_model(model)
    element = (getattr(spectrum, "meta", None) or {}).get("element")
    edge = (getattr(spectrum, "meta", None) or {}).get("edge", "K")
    if not element:
        # guess from the energy range: the shipped model whose grid the spectrum covers
        energy = np.asarray(spectrum.energy, float)
        for q in sorted(PRETRAINED.glob("inverse-*")):
            if (q / "config.json").is_file():
                grid = json.loads((q / "config.json").read_text())["energy"]
                if energy[0] <= grid[0] + 50 and energy[-1] >= grid[-1] - 50 and energy[0] >= grid[0] - 400:
                    return InverseModel.load(q)
        raise ValueError(f"no shipped inverse model covers {energy[0]:.0f}-{energy[-1]:.0f} eV; pass model=")
    return load_inverse_model(f"inverse-{element}-{edge}".lower())


def invert(spectrum, *, model=None, normalise: bool = True, align: bool | None = None) -> InverseResult:
    """What is around the absorber? Structural descriptors with uncertainty from one XANES spectrum.

    Args:
        spectrum: a :class:`jxas.Spectrum` (absolute energy, eV; raw or normalised mu).
        model: an :class:`InverseModel`, a shipped name ("cu-k") or a saved directory; default the
            shipped model of ``spectrum.meta["element"]``, or the one whose grid the energy range fits.
        normalise: apply xraylarch-style pre-edge/post-edge normalisation first (set False for spectra
            that are already normalised to edge step 1 on an absolute grid).
        align: shift the spectrum in energy onto the model's training spectra first (default: True when
            ``normalise`` is True, i.e. for measured spectra, whose energy reference differs from the
            simulations'; False for simulated spectra in the training frame).

    Returns:
        An :class:`InverseResult` (first-shell distance, CN, composition, oxidation state, G2 curve,
        shell distances from the G2 peaks, each with a calibrated 1-sigma).
    """
    m = _model_for(spectrum, model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return m.predict(spectrum, normalise=normalise, align=normalise if align is None else align,
                         source=str((spectrum.meta or {}).get("source", "spectrum")))
