"""The ligand library: common mono- and polydentate ligands from SMILES, with donor atoms and charge.

Each :class:`Ligand` is built with RDKit (hydrogens added, ETKDG embedding with a fixed seed, MMFF
clean-up) in its deprotonated, coordinating form. ``donors`` index the heavy atoms of the SMILES
(RDKit atom order, hydrogens come after) that bind the metal; ``charge`` is the ligand's formal
charge, so a complex's total charge is the metal's oxidation state plus the ligands' charges.
``field`` marks the ligand-field strength of its donors ("strong": CN-, CO, NO+, phosphines,
bipy/phen/terpy, porphyrinato ...), used by the campaign for the spin state.

Polydentate ligands are embedded with their donor atoms held at the vertices of the polyhedron
they occupy (:func:`embed_ligand` with ``donor_targets``), so chelates come out in the chelating
conformation (cis-bipyridine, gauche ethylenediamine) before the complex is relaxed.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

__all__ = ["Ligand", "LIGANDS", "ligand", "embed_ligand", "ligand_atom_count", "ligand_numbers"]


@dataclasses.dataclass(frozen=True)
class Ligand:
    """A ligand in its coordinating form.

    Attributes:
        name: short identifier (``"aqua"``, ``"bipy"``, ...).
        smiles: SMILES of the coordinating form (deprotonated where it binds as an anion).
        donors: RDKit indices (SMILES heavy-atom order) of the atoms that bind the metal, taken from
            the atom-map numbers in ``smiles`` (``[N:1]``, ``[N:2]``, ...).
        charge: formal charge of the ligand (e).
        field: ``"weak"``, ``"medium"`` or ``"strong"`` ligand-field donor set.
        shape: for polydentates, the arrangement of the donor sites it needs on the polyhedron:
            ``"cis"`` (two adjacent sites), ``"fac"``/``"mer"`` (three), ``"plane"`` (four in a
            plane); ``"mono"`` for monodentate ligands.
    """

    name: str
    smiles: str
    donors: tuple[int, ...]
    charge: int
    field: str = "medium"
    shape: str = "mono"

    @property
    def denticity(self) -> int:
        return len(self.donors)


# Donor atoms carry atom-map numbers in the SMILES (``[N:1]``); the map order is the order in which
# a polydentate's donors go round its sites (terpy: outer, central, outer; N4 planes: cyclic).
_L = Ligand
# fmt: off
_TABLE = [
    # monodentate, O donors
    ("aqua", "[OH2:1]", 0, "weak", "mono"),
    ("hydroxo", "[OH-:1]", -1, "weak", "mono"),
    ("oxo", "[O-2:1]", -2, "strong", "mono"),
    ("methanol", "C[OH:1]", 0, "weak", "mono"),
    ("methoxo", "C[O-:1]", -1, "weak", "mono"),
    ("acetato", "CC(=O)[O-:1]", -1, "weak", "mono"),
    ("formato", "[O-:1]C=O", -1, "weak", "mono"),
    ("nitrato", "[O-:1][N+](=O)[O-]", -1, "weak", "mono"),
    ("dmso", "CS(C)=[O:1]", 0, "weak", "mono"),
    ("thf", "C1CC[O:1]C1", 0, "weak", "mono"),
    # monodentate, N donors
    ("ammine", "[NH3:1]", 0, "medium", "mono"),
    ("methylamine", "C[NH2:1]", 0, "medium", "mono"),
    ("pyridine", "c1cc[n:1]cc1", 0, "medium", "mono"),
    ("imidazole", "c1c[n:1]c[nH]1", 0, "medium", "mono"),
    ("acetonitrile", "CC#[N:1]", 0, "medium", "mono"),
    ("isothiocyanato", "[N-:1]=C=S", -1, "medium", "mono"),
    ("azido", "[N-:1]=[N+]=[N-]", -1, "weak", "mono"),
    ("nitrosyl", "[N:1]#[O+]", 1, "strong", "mono"),
    # monodentate, C, P, S and halide donors
    ("cyano", "[C-:1]#N", -1, "strong", "mono"),
    ("carbonyl", "[C-:1]#[O+]", 0, "strong", "mono"),
    ("trimethylphosphine", "C[P:1](C)C", 0, "strong", "mono"),
    ("phosphine", "[PH3:1]", 0, "strong", "mono"),
    ("methanethiolato", "C[S-:1]", -1, "medium", "mono"),
    ("dimethylsulfide", "C[S:1]C", 0, "medium", "mono"),
    ("fluoro", "[F-:1]", -1, "weak", "mono"),
    ("chloro", "[Cl-:1]", -1, "weak", "mono"),
    ("bromo", "[Br-:1]", -1, "weak", "mono"),
    ("iodo", "[I-:1]", -1, "weak", "mono"),
    # bidentate
    ("en", "[NH2:1]CC[NH2:2]", 0, "medium", "cis"),
    ("bipy", "c1cc[n:1]c(-c2cccc[n:2]2)c1", 0, "strong", "cis"),
    ("phen", "c1c[n:1]c2c(c1)ccc1ccc[n:2]c12", 0, "strong", "cis"),
    ("acac", "CC(=[O:1])C=C([O-:2])C", -1, "weak", "cis"),
    ("oxalato", "O=C([O-:1])C([O-:2])=O", -2, "weak", "cis"),
    ("glycinato", "[NH2:1]CC(=O)[O-:2]", -1, "medium", "cis"),
    ("acetato_k2", "CC(=[O:1])[O-:2]", -1, "weak", "cis"),
    ("catecholato", "[O-:1]c1ccccc1[O-:2]", -2, "weak", "cis"),
    ("dmpe", "C[P:1](C)CC[P:2](C)C", 0, "strong", "cis"),
    ("edt", "[S-:1]CC[S-:2]", -2, "medium", "cis"),
    ("picolinato", "[O-:1]C(=O)c1cccc[n:2]1", -1, "medium", "cis"),
    # tridentate
    ("terpy", "c1cc[n:1]c(-c2cccc(-c3cccc[n:3]3)[n:2]2)c1", 0, "strong", "mer"),
    ("dien", "[NH2:1]CC[NH:2]CC[NH2:3]", 0, "medium", "fac"),
    ("tacn", "C1C[NH:1]CC[NH:2]CC[NH:3]1", 0, "medium", "fac"),
    # tetradentate, planar (porphine dianion; salen; cyclam)
    ("porphyrinato_n4",
     "C1=CC2=[N:1]C1=CC1=CC=C([N-:2]1)C=C1C=CC(=[N:3]1)C=C1C=CC(=C2)[N-:4]1", -2, "strong", "plane"),
    ("salen", "[O-:1]c1ccccc1C=[N:2]CC[N:3]=Cc1ccccc1[O-:4]", -2, "medium", "plane"),
    ("cyclam", "C1C[NH:1]CC[NH:2]CCC[NH:3]CC[NH:4]C1", 0, "medium", "plane"),
]
# fmt: on


def _donors(smiles: str) -> tuple[int, ...]:
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"RDKit cannot parse SMILES {smiles}")
    mapped = sorted((a.GetAtomMapNum(), a.GetIdx()) for a in mol.GetAtoms() if a.GetAtomMapNum())
    return tuple(i for _, i in mapped)


LIGANDS: dict[str, Ligand] = {
    name: _L(name, smi, _donors(smi), q, field, shape) for name, smi, q, field, shape in _TABLE
}


def ligand(name: str) -> Ligand:
    """The library ligand called ``name``."""
    try:
        return LIGANDS[name]
    except KeyError:
        raise ValueError(f"unknown ligand {name!r}; known: {', '.join(sorted(LIGANDS))}") from None


@functools.cache
def _mol(name: str):
    from rdkit import Chem

    lig = ligand(name)
    mol = Chem.MolFromSmiles(lig.smiles)
    if mol is None:
        raise ValueError(f"RDKit cannot parse the SMILES of ligand {name!r}: {lig.smiles}")
    for atom in mol.GetAtoms():
        atom.SetAtomMapNum(0)
    if Chem.GetFormalCharge(mol) != lig.charge:
        raise ValueError(f"ligand {name!r}: SMILES charge {Chem.GetFormalCharge(mol)} != declared {lig.charge}")
    return Chem.AddHs(mol)


def ligand_atom_count(name: str) -> int:
    """Number of atoms of the ligand, hydrogens included."""
    return _mol(name).GetNumAtoms()


def ligand_numbers(name: str) -> np.ndarray:
    """Atomic numbers of the ligand's atoms (SMILES heavy atoms, then hydrogens)."""
    return np.array([a.GetAtomicNum() for a in _mol(name).GetAtoms()])


def embed_ligand(
    name: str, *, seed: int, donor_targets: np.ndarray | None = None, metal: int = 26
) -> tuple[np.ndarray, np.ndarray]:
    """3D coordinates of a library ligand.

    Args:
        name: ligand name.
        seed: RDKit random seed (the result is deterministic for a seed).
        donor_targets: optional ``[denticity, 3]`` positions (Å) the donor atoms should take, in the
            frame of a metal at the origin; the embedding holds metal and donors there so chelates take
            the chelating conformation (shrunk by up to 25% about their centroid when the ligand
            cannot span them). Only the donor-donor distances matter: the caller aligns the result
            onto the targets afterwards.
        metal: atomic number of the metal used in the chelate embedding.

    Returns:
        ``(positions [n, 3] Å, numbers [n])`` with the SMILES heavy atoms first, then hydrogens.

    Raises:
        ValueError: the ligand cannot be embedded (e.g. donor targets its geometry cannot reach).
    """
    from rdkit import Chem, RDLogger
    from rdkit.Chem import AllChem, rdDistGeom
    from rdkit.Geometry import Point3D

    RDLogger.DisableLog("rdApp.*")

    lig = ligand(name)
    mol = Chem.Mol(_mol(name))
    numbers = np.array([a.GetAtomicNum() for a in mol.GetAtoms()])
    if mol.GetNumAtoms() == 1:
        return np.zeros((1, 3)), numbers
    params = AllChem.ETKDGv3()
    params.randomSeed = int(seed)
    cid = -1
    if donor_targets is not None and lig.denticity > 1:
        # Embed together with the metal (dative bonds, metal held at the origin, donors at their
        # targets), so that the ligand body keeps clear of the metal: without it RDKit puts the
        # tacn ring or the acac backbone through the metal. A rigid chelate (bipy: N...N 2.6-2.7 Å)
        # cannot always span the ideal sites, so the targets are shrunk about their centroid
        # (up to 25%) until RDKit can embed them.
        targets = np.asarray(donor_targets, float)
        centre = targets.mean(0)
        rw = Chem.RWMol(mol)
        mi = rw.AddAtom(Chem.Atom(int(metal)))
        for d in lig.donors:
            rw.AddBond(int(d), mi, Chem.BondType.DATIVE)
        cmol = rw.GetMol()
        cmol.UpdatePropertyCache(strict=False)
        for scale in (1.0, 0.95, 0.9, 0.85, 0.8, 0.75):
            cmap = {int(d): Point3D(*map(float, centre + scale * (p - centre)))
                    for d, p in zip(lig.donors, targets, strict=True)}
            cmap[mi] = Point3D(0.0, 0.0, 0.0)
            # plain distance geometry: ETKDG's torsion terms turn carboxylate C=O onto the metal
            dg = rdDistGeom.EmbedParameters()
            dg.randomSeed = int(seed)
            dg.useRandomCoords = True
            dg.SetCoordMap(cmap)
            cid = AllChem.EmbedMolecule(cmol, dg)
            if cid >= 0:
                pos = np.asarray(cmol.GetConformer(cid).GetPositions(), float)
                return pos[:mi] - pos[mi], numbers  # frame of the embedded metal at the origin
    if cid < 0:
        cid = AllChem.EmbedMolecule(mol, params)
    if cid < 0:
        raise ValueError(f"RDKit could not embed ligand {name!r}")
    if donor_targets is None or lig.denticity == 1:
        try:
            if AllChem.MMFFHasAllMoleculeParams(mol):
                AllChem.MMFFOptimizeMolecule(mol, maxIters=500)
            else:
                AllChem.UFFOptimizeMolecule(mol, maxIters=500)
        except (RuntimeError, ValueError):  # force-field set-up fails for a few anions: keep ETKDG
            pass
    pos = np.asarray(mol.GetConformer(cid).GetPositions(), float)
    return pos, numbers
