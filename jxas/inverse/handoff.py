"""From the inverse answer to refinement: check a starting structure, and move its first shell.

Before a refinement (:func:`jxas.refine`) a user proposes a starting structure. The inverse model reads
the first shell from the spectrum alone, so the two can be compared: :func:`check_structure` puts the
structure's own first-shell distance, coordination number and composition (the 1.25 r_min rule of
:mod:`jxas.inverse.targets`) next to the predictions and flags every disagreement beyond ``k`` calibrated
sigma. :func:`scale_first_shell` gives a better start: the first shell stretched radially about the
absorber so that its mean distance equals the predicted one, each ligand moving rigidly with its donor.
"""

from __future__ import annotations

import dataclasses
from collections import deque

import numpy as np
from ase.data import chemical_symbols, covalent_radii

from jxas.inverse.targets import first_shell
from jxas.structure import Structure

__all__ = ["CheckRow", "StructureCheck", "check_structure", "scale_first_shell", "ligand_donors"]

BOND_FACTOR = 1.2  # bonded when d <= 1.2 (r_cov,i + r_cov,j): the usual covalent-radius rule (ASE, RDKit)


@dataclasses.dataclass(frozen=True)
class CheckRow:
    """One compared quantity: the structure's value, the prediction, its sigma and the verdict."""

    name: str
    structure: float
    predicted: float
    sigma: float
    k: float

    @property
    def z(self) -> float:
        """Difference in units of the predicted sigma (inf when sigma is 0 and the values differ)."""
        d = self.structure - self.predicted
        if self.sigma > 0:
            return d / self.sigma
        return 0.0 if d == 0 else float(np.sign(d) * np.inf)

    @property
    def agrees(self) -> bool:
        return abs(self.z) <= self.k


@dataclasses.dataclass(frozen=True)
class StructureCheck:
    """Result of :func:`check_structure`: one :class:`CheckRow` per compared quantity."""

    rows: tuple[CheckRow, ...]
    k: float

    @property
    def ok(self) -> bool:
        """True when every quantity agrees within ``k`` sigma."""
        return all(r.agrees for r in self.rows)

    @property
    def disagreements(self) -> list[CheckRow]:
        return [r for r in self.rows if not r.agrees]

    def summary(self) -> str:
        lines = [f"starting structure vs inverse prediction (flag beyond {self.k:g} sigma):",
                 f"  {'quantity':22s} {'structure':>10s} {'predicted':>10s} {'sigma':>8s} {'z':>7s}"]
        for r in self.rows:
            flag = "" if r.agrees else "  <-- disagrees"
            lines.append(f"  {r.name:22s} {r.structure:10.3f} {r.predicted:10.3f} {r.sigma:8.3f} {r.z:7.2f}{flag}")
        lines.append("  verdict: " + ("consistent with the spectrum" if self.ok else
                                      f"{len(self.disagreements)} quantity(ies) disagree beyond {self.k:g} sigma"))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"k": self.k, "ok": self.ok,
                "rows": [dict(dataclasses.asdict(r), z=r.z, agrees=r.agrees) for r in self.rows]}


def _structure_shell(structure: Structure) -> tuple[np.ndarray, float, float]:
    if structure.is_batch:
        raise ValueError("check one structure at a time (got a batch)")
    shell, cn, r1 = first_shell(structure)
    if float(cn) == 0:
        raise ValueError("the structure has no non-hydrogen neighbour of the absorber: no first shell to compare")
    return np.asarray(shell), float(cn), float(r1)


def check_structure(result, structure: Structure, *, k: float = 2.0) -> StructureCheck:
    """Compare a structure's first shell with an :class:`jxas.inverse.InverseResult`.

    Args:
        result: the inverse prediction (means and calibrated 1-sigma).
        structure: the proposed starting structure (absorber-centred, e.g. from :func:`jxas.read_structure`).
        k: flag quantities whose difference exceeds ``k`` sigma.

    Returns:
        A :class:`StructureCheck` with rows for the first-shell distance (Å), the coordination number and
        the count of every donor element of the model ("other" for the rest) that either side puts above 0.25.
    """
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    shell, cn, r1 = _structure_shell(structure)
    rows = [CheckRow("first-shell distance/A", r1, result.r1, result.r1_sigma, k),
            CheckRow("coordination number", cn, result.cn, result.cn_sigma, k)]
    z = np.asarray(structure.numbers)[shell]
    named = set(result.composition) - {"other"}
    for el, (count, sigma) in result.composition.items():
        mine = float(np.sum([chemical_symbols[int(q)] not in named for q in z]) if el == "other"
                     else np.sum([chemical_symbols[int(q)] == el for q in z]))
        if mine > 0.25 or count > 0.25:
            rows.append(CheckRow(f"first-shell {el}", mine, count, sigma, k))
    return StructureCheck(tuple(rows), k)


def ligand_donors(positions: np.ndarray, numbers: np.ndarray, absorber: int, shell: np.ndarray) -> np.ndarray:
    """For every atom, the first-shell donor it is attached to through bonds not passing the absorber.

    Bonds follow the covalent-radius rule (``BOND_FACTOR``); each atom belongs to the donor nearest to
    it in bonds (breadth-first search from all donors at once; ties go to the lower donor index). Donors
    map to themselves; the absorber, and atoms of fragments without a donor (outer-sphere water,
    counter-ions), map to -1.

    Returns:
        ``[n]`` integer array of donor indices (host side).
    """
    n = len(numbers)
    d = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    rc = covalent_radii[numbers]
    bonded = (d <= BOND_FACTOR * (rc[:, None] + rc[None])) & ~np.eye(n, dtype=bool)
    bonded[absorber, :] = bonded[:, absorber] = False
    owner = np.full(n, -1)
    queue = deque()
    for j in np.flatnonzero(shell):
        owner[j] = j
        queue.append(j)
    while queue:
        i = queue.popleft()
        for j in np.flatnonzero(bonded[i]):
            if owner[j] < 0 and j != absorber:
                owner[j] = owner[i]
                queue.append(j)
    return owner


def scale_first_shell(structure: Structure, r_target: float) -> Structure:
    """The structure with its first shell moved radially so that its mean distance is ``r_target`` Å.

    Every donor j moves along the absorber-donor direction by the same factor ``r_target / r1``
    (the shell's spread of distances is kept), and every atom bonded to it through its ligand moves by
    the same vector as its donor (:func:`ligand_donors`), so ligand geometry is unchanged for monodentate
    ligands; in chelate rings the bond between the parts owned by two donors stretches by the small
    difference of their displacements. Atoms not attached to a donor stay where they are.

    Raises:
        ValueError: a target distance that is not positive or not finite, or a structure without a first shell.
    """
    if not np.isfinite(r_target) or r_target <= 0:
        raise ValueError(f"target first-shell distance must be a positive number, got {r_target}")
    shell, _, r1 = _structure_shell(structure)
    mask = np.asarray(structure.mask)
    pos = np.asarray(structure.positions, float).copy()
    a = int(structure.absorber)
    idx = np.flatnonzero(mask)
    sub = pos[idx]
    owner = ligand_donors(sub, np.asarray(structure.numbers)[idx], int(np.searchsorted(idx, a)), shell[idx])
    disp = (r_target / r1 - 1.0) * (sub - pos[a])  # [n_real, 3]: meaningful on donors only
    move = np.where(owner[:, None] >= 0, disp[np.maximum(owner, 0)], 0.0)
    pos[idx] = sub + move
    return structure.replace(positions=pos.astype(np.asarray(structure.positions).dtype))
