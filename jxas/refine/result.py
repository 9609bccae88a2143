"""``RefineResult``: the refined structure, spectra, nuisance parameters, history and bond table."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from jxas.spectrum.spectrum import Spectrum
from jxas.structure import Structure

__all__ = ["RefineResult", "bond_rows", "format_bond_table"]


def bond_rows(
    pos_before: np.ndarray,
    pos_after: np.ndarray,
    numbers: np.ndarray,
    absorber: int,
    shell: np.ndarray,
    sigma: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Absorber-ligand distances (Å) before and after, one dict per first-shell atom."""
    from ase.data import chemical_symbols

    rows = []
    for k, j in enumerate(shell):
        r0 = float(np.linalg.norm(pos_before[j] - pos_before[absorber]))
        r1 = float(np.linalg.norm(pos_after[j] - pos_after[absorber]))
        rows.append(
            {
                "index": int(j),
                "element": chemical_symbols[int(numbers[j])],
                "r_before": r0,
                "r_after": r1,
                "change": r1 - r0,
                "sigma": None if sigma is None or not np.isfinite(sigma[k]) else float(sigma[k]),
            }
        )
    return rows


def format_bond_table(rows: list[dict[str, Any]], absorber_symbol: str = "M") -> str:
    """Plain-text bond table."""
    lines = [f"{'bond':<12s} {'before/Å':>9s} {'after/Å':>9s} {'change/Å':>9s} {'sigma/Å':>8s}"]
    for r in rows:
        sig = "-" if r["sigma"] is None else f"{r['sigma']:.3f}"
        name = f"{absorber_symbol}-{r['element']}{r['index']}"
        lines.append(f"{name:<12s} {r['r_before']:9.3f} {r['r_after']:9.3f} {r['change']:+9.3f} {sig:>8s}")
    if rows:
        b = np.mean([r["r_before"] for r in rows])
        a = np.mean([r["r_after"] for r in rows])
        lines.append(f"{'mean':<12s} {b:9.3f} {a:9.3f} {a - b:+9.3f}")
    return "\n".join(lines)


@dataclasses.dataclass
class RefineResult:
    """Outcome of :func:`jxas.refine`.

    Attributes:
        structure: refined :class:`~jxas.structure.Structure` (atoms in the input order).
        start: the starting structure.
        spectrum: fitted model spectrum (broadened, shifted, scaled) on the model grid.
        initial: the model spectrum at the start (same nuisance start values) on the model grid.
        target: the target, normalised, on the model grid (``weight`` in ``meta`` marks the window).
        nuisance: ``{"shift_ev", "broadening", "scale"}`` fitted (or fixed) values.
        history: per-step arrays (``loss``, ``spectral``, ``energy``, ``restraint``, ``grad_max``,
            ``shift_ev``, ``broadening``, ``scale``, ``r_first_shell`` mean first-shell distance, Å).
        trajectory: ``[t, n_real, 3]`` positions (Å) of the good iterates.
        bonds: first-shell table, list of dicts (index, element, r_before, r_after, change, sigma).
        fit: fit-quality numbers before/after (MSE, Pearson r on the fitting window).
        status: one of :data:`jxas.refine.loop.STATUSES`; ``message`` says more.
        energy_method: the energy term used at the end (after any fallback).
        energy: ``{"start": eV, "end": eV}`` of the energy term (absent for ``"none"``).
        events: retries, fallbacks and other notable happenings.
        seconds: wall time of the optimisation.
    """

    structure: Structure
    start: Structure
    spectrum: Spectrum
    initial: Spectrum
    target: Spectrum
    nuisance: dict[str, float]
    history: dict[str, np.ndarray]
    trajectory: np.ndarray
    bonds: list[dict[str, Any]]
    fit: dict[str, float]
    status: str
    message: str
    energy_method: str
    energy: dict[str, float]
    events: list[str]
    seconds: float
    n_steps: int
    config: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the run ended normally (converged or step limit)."""
        return self.status in ("converged", "max_steps")

    def bond_table(self) -> str:
        from ase.data import chemical_symbols

        return format_bond_table(
            self.bonds, chemical_symbols[int(self.structure.numbers[int(self.structure.absorber)])]
        )

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable summary."""
        return {
            "status": self.status,
            "message": self.message,
            "n_steps": self.n_steps,
            "seconds": self.seconds,
            "energy_method": self.energy_method,
            "energy_ev": self.energy,
            "nuisance": self.nuisance,
            "fit": self.fit,
            "bonds": self.bonds,
            "events": self.events,
            "config": self.config,
        }

    def __str__(self) -> str:
        f = self.fit
        return (
            f"refinement {self.status} after {self.n_steps} steps ({self.seconds:.1f} s): {self.message}\n"
            f"fit MSE {f['mse_before']:.3g} -> {f['mse_after']:.3g}, "
            f"Pearson r {f['r_before']:.4f} -> {f['r_after']:.4f}\n"
            f"nuisance: shift {self.nuisance['shift_ev']:+.2f} eV, broadening x{self.nuisance['broadening']:.3f}, "
            f"scale x{self.nuisance['scale']:.3f}\n" + self.bond_table()
        )
