"""Crystalline sites as campaign entries: absorber-centred clusters cut from CIF/POSCAR files.

Molecular complexes (:mod:`.campaign`) do not cover the oxides, sulfides and metals that catalysts and
battery materials are made of. :func:`crystal_specs` turns a list of crystal structures into
deterministic specs: for every crystallographically distinct site of the absorbing element (sites with
the same neighbour-distance fingerprint count once), the undistorted cluster plus ``variants - 1``
perturbed copies. :func:`make_crystal_entry` (called by :func:`jxas.data.build.make_entry` for specs
with ``"source": "crystal"``) cuts the cluster with :func:`jxas.io.read_structure`, applies the
perturbation and runs FEFF10.

A perturbation is what a refinement walks through: an isotropic scale of the whole cluster about the
absorber (lattice expansion/compression, uniform in ``scale_range``), a radial move of every
first-shell neighbour by up to ``stretch`` Å (bond-length disorder), and Gaussian noise of ``thermal``
Å on every other atom. The group of an entry is the material (file stem), so group splits never put
one material on both sides.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
from ase.data import atomic_numbers, chemical_symbols

from jxas.data.build.place import BuildError

__all__ = ["crystal_specs", "crystal_sites", "make_crystal_entry", "perturb_cluster"]

UNKNOWN_OXIDATION_STATE = -99


def crystal_sites(path: str | Path, element: str, *, radius: float = 4.0, tol: float = 0.02) -> list[int]:
    """Indices (in the unit cell read from ``path``) of the distinct sites of ``element``.

    Two sites are equivalent when their sorted (element, distance) lists within ``radius`` Å agree to
    ``tol`` Å; the first of each class is returned.

    Raises:
        ValueError: unreadable file, not periodic, or no site of ``element``.
    """
    from jxas.io.structures import StructureError, cluster_from_periodic, read_atoms

    path = Path(path)
    try:
        atoms = read_atoms(path)
    except StructureError:
        raise
    except Exception as e:  # ase raises many types for bad files
        raise ValueError(f"{path}: cannot read a crystal structure ({type(e).__name__}: {e})") from None
    if not atoms.pbc.any():
        raise ValueError(f"{path}: not a periodic structure (use the molecular builder for molecules)")
    z = atomic_numbers.get(element.capitalize())
    idx = np.flatnonzero(atoms.numbers == z) if z else np.array([], int)
    if len(idx) == 0:
        raise ValueError(f"{path}: no {element} site (formula {atoms.get_chemical_formula()})")
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    out = []
    for i in idx:
        cl = cluster_from_periodic(atoms, int(i), radius, source=str(path))
        d = np.linalg.norm(cl.positions[1:], axis=1)
        order = np.lexsort((d, cl.numbers[1:]))
        fp = (cl.numbers[1:][order], d[order])
        if not any(len(f[0]) == len(fp[0]) and np.array_equal(f[0], fp[0]) and np.allclose(f[1], fp[1], atol=tol)
                   for f in seen):
            seen.append(fp)
            out.append(int(i))
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def crystal_specs(
    element: str,
    paths,
    *,
    variants: int = 12,
    seed: int = 0,
    cutoff: float = 7.0,
    scale_range: tuple[float, float] = (0.95, 1.05),
    stretch: float = 0.1,
    thermal: float = 0.02,
    oxidation_states: dict[str, int] | None = None,
) -> list[dict]:
    """Deterministic specs for the distinct ``element`` sites of the crystal structures in ``paths``.

    Args:
        element: absorbing element.
        paths: CIF or POSCAR files.
        variants: entries per site: the undistorted cluster plus ``variants - 1`` perturbed ones.
        seed: seed of the perturbations.
        cutoff: cluster radius, Å (FEFF's full multiple scattering covers 6 Å by default).
        scale_range: range of the isotropic scale factor of the perturbed clusters.
        stretch: Å, largest radial move of a first-shell neighbour.
        thermal: Å, standard deviation of the noise on the other atoms.
        oxidation_states: formal oxidation state of the absorber per file stem (else -99, unknown).

    Returns:
        JSON-able specs with ``key``, ``group`` (the file stem), ``source: "crystal"``, the file path and
        its sha256, the site and the perturbation parameters; ordered variant by variant (all
        undistorted clusters first), so an interrupted campaign still covers every site.
    """
    if variants < 1:
        raise ValueError(f"variants must be >= 1, got {variants}")
    lo, hi = scale_range
    if not 0.5 < lo <= hi < 1.5:
        raise ValueError(f"scale_range must lie within (0.5, 1.5) and be ordered, got {scale_range}")
    ox = {k.lower(): int(v) for k, v in (oxidation_states or {}).items()}
    element = element.capitalize()
    sites = []
    for p in paths:
        p = Path(p)
        if not p.is_file():
            raise ValueError(f"{p}: no such file")
        sites += [(p, _sha256(p), site) for site in crystal_sites(p, element)]
    specs = []
    for v in range(variants):  # variant-major: any prefix of the campaign covers every site
        for p, sha, site in sites:
            base = {"source": "crystal", "element": element, "file": str(p), "file_sha256": sha,
                    "site": site, "variant": v, "seed": int(seed), "cutoff": float(cutoff)}
            if v:
                base.update(scale_range=[float(lo), float(hi)], stretch=float(stretch), thermal=float(thermal))
            tag = hashlib.sha1(json.dumps({**base, "file": p.name}, sort_keys=True).encode()).hexdigest()[:20]
            specs.append({**base, "key": f"{element.lower()}-x-{tag}", "group": p.stem,
                          "oxidation_state": ox.get(p.stem.lower(), UNKNOWN_OXIDATION_STATE)})
    return specs


def _check_distances(structure, source, min_distance: float = 0.9) -> None:
    """Refuse clusters with atoms closer than ``min_distance`` Å: the usual cause is a CIF with partially
    occupied or split sites, whose every position ASE places (e.g. ferrosilite: O 0.30 Å apart)."""
    p = np.asarray(structure.positions, np.float64)[np.asarray(structure.mask)]
    d = np.linalg.norm(p[:, None] - p[None], axis=-1) + np.eye(len(p)) * 1e9
    if d.min() < min_distance:
        i, j = np.unravel_index(np.argmin(d), d.shape)
        raise BuildError(f"{source}: atoms {i} and {j} of the cluster are {d.min():.2f} Å apart (partially occupied "
                         "or split sites in the structure file?); give an ordered structure")


def perturb_cluster(structure, *, seed: int, scale_range=(0.95, 1.05), stretch: float = 0.1,
                    thermal: float = 0.02, min_distance: float = 0.9):
    """A perturbed copy of an absorber-centred cluster (see the module docstring) and a report.

    Raises:
        BuildError: two atoms closer than ``min_distance`` Å after the perturbation.
    """
    from jxas.physics import first_shell

    rng = np.random.default_rng(seed)
    p = np.asarray(structure.positions, np.float64).copy()
    ab = int(structure.absorber)
    p -= p[ab]
    scale = float(rng.uniform(*scale_range))
    p *= scale
    shell = first_shell(structure)
    moves = rng.uniform(-stretch, stretch, size=len(shell))
    u = p[shell] / np.linalg.norm(p[shell], axis=1, keepdims=True)
    p[shell] += moves[:, None] * u
    others = np.setdiff1d(np.flatnonzero(np.asarray(structure.mask)), np.r_[shell, ab])
    p[others] += rng.normal(scale=thermal, size=(len(others), 3))
    real = np.flatnonzero(np.asarray(structure.mask))
    d = np.linalg.norm(p[real, None] - p[None, real], axis=-1) + np.eye(len(real)) * 1e9
    if d.min() < min_distance:
        raise BuildError(f"perturbed cluster has atoms {d.min():.2f} Å apart (< {min_distance} Å)")
    report = {"scale": scale, "first_shell": shell.tolist(),
              "bond_changes": {int(j): float(m) for j, m in zip(shell, moves, strict=True)}}
    return structure.replace(positions=p.astype(np.asarray(structure.positions).dtype)), report


def make_crystal_entry(spec: dict, recipe=None, *, timeout: float = 600.0) -> dict:
    """One dataset entry from a crystal spec of :func:`crystal_specs` (cluster, perturbation, FEFF10).

    Raises:
        ValueError: the file changed since the spec was made (sha256), or FEFF failed
            (:class:`~jxas.data.feff.FeffRunError`, :class:`~jxas.data.feff.FeffTimeout`).
        BuildError: the cluster has atoms closer than 0.9 Å (split sites), or the perturbation produced one.
    """
    import jxas
    from jxas.data.build.campaign import feff_entry
    from jxas.data.feff import FeffRecipe, simulate_feff

    if isinstance(recipe, dict):
        recipe = FeffRecipe.from_dict(recipe)
    t0 = time.perf_counter()
    path = Path(spec["file"])
    if _sha256(path) != spec["file_sha256"]:
        raise ValueError(f"{path} changed since the campaign specs were made (sha256 differs)")
    s = jxas.read_structure(path, absorber=int(spec["site"]), cutoff=float(spec["cutoff"]), element=spec["element"])
    _check_distances(s, path)
    report: dict = {"scale": 1.0, "bond_changes": {}}
    if int(spec["variant"]):
        seed = int(hashlib.sha1(spec["key"].encode()).hexdigest()[:8], 16) ^ int(spec["seed"])
        s, report = perturb_cluster(s, seed=seed, scale_range=tuple(spec["scale_range"]),
                                    stretch=float(spec["stretch"]), thermal=float(spec["thermal"]))
    t_build = time.perf_counter() - t0
    sp = simulate_feff(s, recipe, timeout=timeout)
    nums = np.asarray(s.numbers)[np.asarray(s.mask)]
    counts = {chemical_symbols[z]: int(np.sum(nums == z)) for z in np.unique(nums)}
    provenance = {
        "source": "jxas.data.build.crystal",
        "spec": spec,
        "formula": "".join(f"{k}{v if v > 1 else ''}" for k, v in sorted(counts.items())),
        "n_atoms": int(len(nums)),
        "perturbation": report,
    }
    return feff_entry(s, sp, spec, provenance, t_build)
