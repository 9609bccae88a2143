"""The refinement objective ``fn(x, args) -> (loss, aux)`` and the differentiable forward pipeline.

x = {"positions": [n, 3] Å, "nuisance": :class:`Nuisance`}. The fitted spectrum is

    pred(E) = a * shift(broaden(mu_model(R); Gamma_i b, Gamma_f b), dE)(E)

(broadening with the arctangent model of Rankine et al. 2020 eq. 2, widths scaled by b = exp(log_b);
energy shift dE in eV; amplitude a = exp(log_a)), and the objective is

    L = D(pred, target) + lambda (E(R) - E(R0)) / N_atoms + E_restraints(R) / N_atoms

with D any spectral loss of :mod:`jxas.losses`. Energies in eV.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from jxas.losses import LossGrid
from jxas.structure import Structure

__all__ = [
    "Nuisance",
    "Forward",
    "as_forward",
    "make_predict",
    "make_objective",
    "ObjectiveArgs",
    "SHIFT_UNIT",
    "BroadeningConfig",
]

# Nuisance parameters are optimised in scaled units so that one Adam learning rate (Å per step for
# positions) gives sensible steps for all of them: shift in units of 10 eV.
SHIFT_UNIT = 10.0


class Nuisance(NamedTuple):
    """Spectral nuisance parameters fitted jointly with the structure (all scalars).

    Attributes:
        shift: energy shift in units of ``SHIFT_UNIT`` (10 eV); positive moves the model to higher E.
        log_broad: log of the factor on the arctangent widths Gamma_i, Gamma_f.
        log_scale: log of the amplitude factor.
    """

    shift: Float[Array, ""]
    log_broad: Float[Array, ""]
    log_scale: Float[Array, ""]

    @classmethod
    def create(cls, shift_ev: float = 0.0, broad: float = 1.0, scale: float = 1.0, dtype=None) -> Nuisance:
        dtype = dtype or jnp.result_type(float)
        return cls(
            jnp.asarray(shift_ev / SHIFT_UNIT, dtype),
            jnp.asarray(np.log(broad), dtype),
            jnp.asarray(np.log(scale), dtype),
        )

    def physical(self) -> dict[str, float]:
        """``{"shift_ev", "broadening", "scale"}`` as Python floats (host side)."""
        return {
            "shift_ev": float(self.shift) * SHIFT_UNIT,
            "broadening": float(np.exp(float(self.log_broad))),
            "scale": float(np.exp(float(self.log_scale))),
        }


@dataclasses.dataclass(frozen=True)
class BroadeningConfig:
    """Arctangent broadening (Rankine et al. 2020 eq. 2) applied to the model's unconvolved mu; eV."""

    model: str = "arctan"
    gamma_i: float = 1.25
    gamma_f: float = 15.0
    e_c: float = 30.0
    e_w: float = 30.0
    e_f: float = -5.0
    enabled: bool = True


@dataclasses.dataclass(frozen=True, eq=False)
class Forward:
    """A differentiable structure -> spectrum model on a fixed absolute grid.

    Attributes:
        fn: ``fn(structure) -> [e]`` mean unconvolved mu (pure, differentiable w.r.t. positions).
        energy: ``[e]`` absolute grid (eV, NumPy).
        e_edge: tabulated edge energy (eV) the broadening refers to.
        element: absorber element symbol, or None if unknown.
        members_fn: optional ``members_fn(structure) -> [m, e]`` (ensemble members).
        check: optional host-side ``check(structure)`` raising ValueError for unusable input.
        name: a label for reports.
    """

    fn: Callable[[Structure], Float[Array, " e"]]
    energy: np.ndarray
    e_edge: float
    element: str | None = None
    members_fn: Callable[[Structure], Float[Array, "m e"]] | None = None
    check: Callable[[Structure], Any] | None = None
    name: str = "model"

    @property
    def n_members(self) -> int:
        return 0 if self.members_fn is None else -1  # unknown until called


def as_forward(model, *, energy=None, element: str | None = None, e_edge: float | None = None) -> Forward:
    """Wrap a ``jxas.models.Model``, a :class:`Forward`, or a plain ``fn(structure) -> [e]`` (then
    ``energy`` (eV) is required, and ``element`` or ``e_edge``) as a :class:`Forward`."""
    from jxas.spectrum.grids import edge_energy

    if isinstance(model, Forward):
        return model
    if hasattr(model, "apply") and hasattr(model, "params") and hasattr(model, "energy"):
        params = model.params
        el = getattr(model, "element", None)
        edge = getattr(model, "edge", "K") or "K"
        members = (lambda s: model.apply_members(params, s)) if hasattr(model, "apply_members") else None
        return Forward(
            fn=lambda s: model.apply(params, s),
            energy=np.asarray(model.energy, float),
            e_edge=float(e_edge if e_edge is not None else edge_energy(el, edge)),
            element=el,
            members_fn=members,
            check=getattr(model, "check", None),
            name=str(getattr(model, "name", "model")),
        )
    if callable(model):
        if energy is None:
            raise ValueError("a plain spectrum function needs energy= (its absolute grid, eV)")
        if e_edge is None:
            if element is None:
                raise ValueError("a plain spectrum function needs element= or e_edge=")
            e_edge = edge_energy(element)
        return Forward(
            fn=model,
            energy=np.asarray(energy, float),
            e_edge=float(e_edge),
            element=element,
            name=getattr(model, "__name__", "spectrum_fn"),
        )
    raise TypeError(f"cannot use {type(model).__name__} as a forward model")


def make_predict(forward: Forward, broadening: BroadeningConfig | None = None) -> Callable:
    """Return ``predict(structure, nuisance, mu=None) -> [e]``: the fitted spectrum on the model grid.

    ``mu`` (unconvolved, ``[e]``) may be passed to reuse a model evaluation (e.g. one ensemble member).
    """
    from jxas.spectrum.broaden import broaden
    from jxas.spectrum.interp import shift as eshift

    energy = jnp.asarray(forward.energy)
    b = broadening or BroadeningConfig()

    def predict(structure: Structure, nuisance: Nuisance, mu=None) -> Float[Array, " e"]:
        mu = forward.fn(structure) if mu is None else mu
        if b.enabled:
            fb = jnp.exp(nuisance.log_broad)
            mu = broaden(
                energy.astype(mu.dtype),
                mu,
                e_edge=forward.e_edge,
                model=b.model,
                gamma_i=b.gamma_i * fb,
                gamma_f=b.gamma_f * fb,
                e_c=b.e_c,
                e_w=b.e_w,
                e_f=b.e_f,
            )
        mu = eshift(energy.astype(mu.dtype), mu, nuisance.shift * SHIFT_UNIT)
        return jnp.exp(nuisance.log_scale) * mu

    return predict


class ObjectiveArgs(NamedTuple):
    """Everything the objective needs that is not optimised (a pytree).

    Attributes:
        structure: the template structure (its positions are replaced by ``x["positions"]``).
        target: ``[e]`` target normalised mu on the model grid.
        grid: the :class:`~jxas.losses.LossGrid` (weights = fitting window).
        e_ref: reference energy E(R0) (eV) of the energy term.
        lam: weight lambda of the energy term (per eV per atom).
        w_restraint: weight of the restraint term (per eV per atom).
    """

    structure: Structure
    target: Float[Array, " e"]
    grid: LossGrid
    e_ref: Float[Array, ""]
    lam: Float[Array, ""]
    w_restraint: Float[Array, ""]


def make_objective(
    predict: Callable,
    loss: Callable,
    *,
    energy_fn: Callable[[Float[Array, "n 3"]], Float[Array, ""]] | None = None,
    restraint_fn: Callable[[Float[Array, "n 3"]], Float[Array, ""]] | None = None,
) -> Callable:
    """Return the objective ``fn(x, args) -> (loss, aux)``.

    Args:
        predict: from :func:`make_predict`.
        loss: a spectral loss ``loss(pred, target, grid) -> scalar`` (:mod:`jxas.losses`).
        energy_fn: ``energy_fn(positions) -> eV`` (xTB or restraints), or None.
        restraint_fn: ``restraint_fn(positions) -> eV`` added with weight ``args.w_restraint``, or None.

    Returns:
        ``fn(x, args)`` with ``aux = {"spectral", "energy", "restraint", "pred"}``.
    """

    def fn(x: dict, args: ObjectiveArgs):
        s = args.structure.replace(positions=x["positions"])
        pred = predict(s, x["nuisance"])
        d = loss(pred, args.target, args.grid)
        n = jnp.sum(args.structure.mask).astype(d.dtype)
        zero = jnp.zeros((), d.dtype)
        e = energy_fn(x["positions"]) if energy_fn is not None else zero
        r = restraint_fn(x["positions"]) if restraint_fn is not None else zero
        total = d + args.lam * (e - args.e_ref) / n + args.w_restraint * r / n
        return total, {"spectral": d, "energy": e, "restraint": r, "pred": pred}

    return fn
