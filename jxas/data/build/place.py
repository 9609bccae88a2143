"""Clash-free placement of ligands on the sites of a coordination polyhedron.

A complex is assembled around the metal at the origin. Each donor goes to ``d * v_site`` with ``d``
the sum of the Cordero covalent radii of metal and donor (Dalton Trans. 2008, 2832; stretched
along one axis for Jahn-Teller ions when asked). Monodentate ligands are turned so that their donor's
lone-pair direction (donor minus the centroid of its bonded neighbours) points at the metal, then
spun about the metal-donor axis to the angle farthest from everything placed so far. Polydentate
ligands are embedded by RDKit with their donors held at the target sites (``coordMap``) and laid
onto them with the Kabsch rotation; among several embeddings (and, for two donors, rotations about
the donor-donor axis) the one whose body stays farthest from the metal and the other ligands wins.
Outer-sphere waters (the second shell of small complexes) go at 3.8-4.6 Å from the metal.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from ase.data import covalent_radii, vdw_radii

from jxas.data.build.ligands import embed_ligand, ligand, ligand_numbers
from jxas.data.build.polyhedra import polyhedron, site_sets

__all__ = [
    "BuildError",
    "Complex",
    "assemble",
    "clashes",
    "metal_donor_distance",
    "bonds",
    "CLASH_FACTOR",
]

CLASH_FACTOR = 0.6  # atoms of different ligands closer than 0.6 x (sum of vdW radii) clash
PLACE_CLASH_FACTOR = 0.5  # before relaxation: looser (GFN-FF pushes apart), still no spurious bonds


class BuildError(RuntimeError):
    """The builder could not make a sane complex (clash, failed embedding, broken relaxation)."""


@dataclasses.dataclass
class Complex:
    """An assembled complex: metal first, then the ligands' atoms, then outer-sphere waters.

    Attributes:
        positions: ``[n, 3]`` Å, metal at index 0.
        numbers: ``[n]`` atomic numbers.
        fragments: for each ligand (and each outer water), the atom indices it owns.
        donors: for each ligand, the indices of its donor atoms (empty for outer waters).
        names: ligand name per fragment (``"outer_water"`` for second-sphere waters).
        charge: total charge (e).
        spin: unpaired electrons.
    """

    positions: np.ndarray
    numbers: np.ndarray
    fragments: list[list[int]]
    donors: list[list[int]]
    names: list[str]
    charge: int
    spin: int

    def copy(self) -> Complex:
        return dataclasses.replace(self, positions=self.positions.copy(), numbers=self.numbers.copy())

    @property
    def donor_atoms(self) -> list[int]:
        return [d for ds in self.donors for d in ds]


def _vdw(z: int) -> float:
    r = vdw_radii[z]
    return float(r) if np.isfinite(r) else 2.0


def metal_donor_distance(zm: int, zd: int) -> float:
    """Initial metal-donor distance (Å): sum of Cordero covalent radii."""
    return float(covalent_radii[zm] + covalent_radii[zd])


def bonds(positions: np.ndarray, numbers: np.ndarray, factor: float = 1.2) -> set[tuple[int, int]]:
    """Covalent bonds: pairs closer than ``factor`` x the sum of covalent radii."""
    r = covalent_radii[numbers]
    d = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    i, j = np.nonzero(np.triu(d < factor * (r[:, None] + r[None]), 1))
    return set(zip(i.tolist(), j.tolist(), strict=True))


def clashes(
    positions: np.ndarray, numbers: np.ndarray, fragments: list[list[int]], factor: float = CLASH_FACTOR
) -> list[tuple[int, int, float]]:
    """Atom pairs of different fragments (the metal is its own) closer than ``factor`` x vdW sum."""
    frag = np.full(len(numbers), -1)
    for k, f in enumerate(fragments):
        frag[f] = k
    vdw = np.array([_vdw(int(z)) for z in numbers])
    d = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    bad = (d < factor * (vdw[:, None] + vdw[None])) & (frag[:, None] != frag[None])
    bad[0, :] = bad[:, 0] = False  # metal contacts are checked against the donors separately
    i, j = np.nonzero(np.triu(bad, 1))
    return [(int(a), int(b), float(d[a, b])) for a, b in zip(i, j, strict=True)]


def _rotation_to(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation matrix turning unit vector ``a`` onto unit vector ``b``."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    v, c = np.cross(a, b), float(a @ b)
    if c < -1 + 1e-9:  # antiparallel: rotate by pi about any axis perpendicular to a
        p = np.cross(a, [1.0, 0, 0]) if abs(a[0]) < 0.9 else np.cross(a, [0, 1.0, 0])
        p /= np.linalg.norm(p)
        return 2 * np.outer(p, p) - np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)


def _axis_rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues rotation matrix about ``axis`` by ``angle`` (rad)."""
    k = axis / np.linalg.norm(axis)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * kx @ kx


def _kabsch(p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation r and translation t minimising |p @ r.T + t - q| (Kabsch, Acta Cryst A32, 922, 1976)."""
    pc, qc = p.mean(0), q.mean(0)
    h = (p - pc).T @ (q - qc)
    u, _, vt = np.linalg.svd(h)
    dd = np.sign(np.linalg.det(vt.T @ u.T))
    r = vt.T @ np.diag([1.0, 1.0, dd]) @ u.T
    return r, qc - pc @ r.T


def _min_dist(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) == 0 or len(b) == 0:
        return np.inf
    return float(np.min(np.linalg.norm(a[:, None] - b[None], axis=-1)))


def _score(body: np.ndarray, placed: np.ndarray) -> float:
    """Placement score: distance of the ligand body from the metal and from placed atoms (higher is better)."""
    to_metal = _min_dist(body, np.zeros((1, 3))) if len(body) else 9.0
    to_placed = _min_dist(body, placed) if len(placed) else 9.0
    return min(to_metal - 1.0, to_placed)


def assemble(
    metal: int,
    polyhedron_name: str,
    ligands: list[tuple[str, tuple[int, ...]]],
    *,
    charge: int,
    spin: int,
    seed: int,
    n_outer_waters: int = 0,
    axial_stretch: float = 0.0,
) -> Complex:
    """Place ``ligands`` on ``polyhedron_name`` around metal ``metal`` (atomic number) at the origin.

    Args:
        metal: atomic number of the metal.
        polyhedron_name: a name from :data:`jxas.data.build.polyhedra.POLYHEDRA`.
        ligands: ``(ligand name, site indices)`` pairs covering every site exactly once; the site
            tuple of a polydentate follows its donors' map order.
        charge: total charge (e). spin: unpaired electrons.
        seed: seed of the RDKit embeddings and of the spin angles (deterministic).
        n_outer_waters: second-sphere water molecules to add (3.8-4.6 Å from the metal).
        axial_stretch: Å added to the bonds along ±z (Jahn-Teller elongation of d9 / high-spin d4).

    Raises:
        BuildError: sites not covered exactly once, an embedding failed, or atoms clash.
    """
    v = polyhedron(polyhedron_name)
    used = sorted(s for _, sites in ligands for s in sites)
    if used != list(range(len(v))):
        raise BuildError(f"ligand sites {used} do not cover the {len(v)} sites of {polyhedron_name} once")
    rng = np.random.default_rng(seed)
    pos = [np.zeros((1, 3))]
    num = [np.array([metal])]
    fragments: list[list[int]] = []
    donors: list[list[int]] = []
    names: list[str] = []
    n = 1
    # polydentates first: they are the least flexible
    order = sorted(range(len(ligands)), key=lambda k: -len(ligands[k][1]))
    for k in order:
        name, sites = ligands[k]
        lig = ligand(name)
        if tuple(sites) not in site_sets(polyhedron_name, lig.shape):
            raise BuildError(f"ligand {name} ({lig.shape}, {lig.denticity} donors) cannot take sites {tuple(sites)} "
                             f"of {polyhedron_name}")
        # the other sites count as occupied, so a ligand body never blocks a later donor's site
        others = [j for j in range(len(v)) if j not in sites]
        placed = np.concatenate([*pos, 2.0 * v[others]])
        if lig.denticity == 1:
            p, z = _place_mono(metal, name, v[sites[0]], placed, axial_stretch, seed=int(rng.integers(2**31)))
        else:
            p, z = _place_poly(metal, name, v[list(sites)], placed, axial_stretch, seed=int(rng.integers(2**31)))
        pos.append(p)
        num.append(z)
        fragments.append(list(range(n, n + len(z))))
        donors.append([n + d for d in lig.donors])
        names.append(name)
        n += len(z)
    for _ in range(n_outer_waters):
        placed = np.concatenate(pos)
        p, z = _place_outer_water(placed, rng)
        pos.append(p)
        num.append(z)
        fragments.append(list(range(n, n + 3)))
        donors.append([])
        names.append("outer_water")
        n += 3
    cx = Complex(np.concatenate(pos), np.concatenate(num).astype(int), fragments, donors, names, charge, spin)
    bad = clashes(cx.positions, cx.numbers, cx.fragments, PLACE_CLASH_FACTOR)
    if bad:
        i, j, d = bad[0]
        raise BuildError(f"placement clash: atoms {i} and {j} are {d:.2f} Å apart ({len(bad)} clashing pairs)")
    return cx


def _site_distance(metal: int, zd: int, site: np.ndarray, axial_stretch: float) -> float:
    return metal_donor_distance(metal, zd) + axial_stretch * abs(float(site[2]))


def _place_mono(metal, name, site, placed, axial_stretch, *, seed):
    lig = ligand(name)
    p, z = embed_ligand(name, seed=seed)
    d0 = lig.donors[0]
    target = site * _site_distance(metal, int(z[d0]), site, axial_stretch)
    p = p - p[d0]
    if len(z) == 1:
        return p + target, z
    bonded = 1.25 * (covalent_radii[z] + covalent_radii[z[d0]])
    nb = [j for j in range(len(z)) if j != d0 and np.linalg.norm(p[j]) < bonded[j]]
    lone = -p[nb].mean(0) if nb else -p[[j for j in range(len(z)) if j != d0]].mean(0)
    if np.linalg.norm(lone) < 1e-6:  # symmetric donor: any direction off the body
        lone = -p.mean(0) + 1e-3
    p = p @ _rotation_to(lone, -site).T  # lone pair towards the metal, body outwards
    best, best_score = None, -np.inf
    phase = np.random.default_rng(seed).uniform(0, 2 * np.pi)
    for ang in phase + np.linspace(0, 2 * np.pi, 12, endpoint=False):
        q = p @ _axis_rotation(site, ang).T + target
        body = np.delete(q, d0, axis=0)
        s = _score(body, placed)
        if s > best_score:
            best, best_score = q, s
    return best, z


def _place_poly(metal, name, sites, placed, axial_stretch, *, seed):
    lig = ligand(name)
    best, best_score, z = None, -np.inf, None
    for attempt in range(8):
        zz = ligand_numbers(name)
        targets = np.array([s * _site_distance(metal, int(zz[d]), s, axial_stretch) for s, d in
                            zip(sites, lig.donors, strict=True)])
        try:
            p, zz = embed_ligand(name, seed=seed + attempt, donor_targets=targets, metal=metal)
        except ValueError:
            continue
        # align donors and metal (origin in both frames): fixes the chelate plane through the metal
        r, t = _kabsch(np.vstack([p[list(lig.donors)], np.zeros(3)]), np.vstack([targets, np.zeros(3)]))
        q = p @ r.T + t
        body = np.delete(q, list(lig.donors), axis=0)
        s = _score(body, placed)
        if s > best_score:
            best, best_score, z = q, s, zz
        if best_score > 1.4:  # body >= 2.4 Å from the metal: good enough
            break
    if best is None:
        raise BuildError(f"RDKit could not embed {name} onto its sites")
    return best, z


def _place_outer_water(placed: np.ndarray, rng: np.random.Generator):
    """A water molecule 3.8-4.6 Å from the metal, at the direction farthest from the placed atoms."""
    oh, ang = 0.96, np.deg2rad(104.5)
    local = np.array([[0, 0, 0], [oh, 0, 0], [oh * np.cos(ang), oh * np.sin(ang), 0]])
    best, best_score = None, -np.inf
    for _ in range(64):
        u = rng.normal(size=3)
        u /= np.linalg.norm(u)
        r = rng.uniform(3.8, 4.6)
        rot = _rotation_to(np.array([1.0, 0, 0]), rng.normal(size=3))
        w = local @ rot.T + u * r
        s = _min_dist(w, placed[1:]) if len(placed) > 1 else 9.0
        if s > best_score:
            best, best_score = w, s
    return best, np.array([8, 1, 1])
