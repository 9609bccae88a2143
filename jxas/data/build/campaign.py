"""Campaign specs and entries: which complexes to build for an element, and one dataset entry per spec.

:func:`campaign_specs` draws, deterministically from a seed, a list of JSON-able build specs for an
element: a formal oxidation state and a polyhedron that are common for it, a ligand set that fills
the polyhedron (at most one macrocycle/tridentate, up to three chelates, then one or two kinds of
monodentate ligands), the spin state, and for every relaxed complex (a *group*) the relaxed minimum
plus ``n_distortions`` random distortions of it. :func:`make_entry` turns one spec into a dataset
entry: assemble (:mod:`~jxas.data.build.place`), relax with GFN-FF (:mod:`~jxas.data.build.relax`),
check, distort (:mod:`~jxas.data.build.distort`), and run FEFF10 (:func:`jxas.data.feff.simulate_feff`).

Chemistry rules (deliberately simple, documented so they can be argued with):

* oxidation states and polyhedra per element: :data:`GEOMETRIES` (common states of molecular
  complexes; e.g. Cu(I) linear/trigonal/tetrahedral, Cu(II) square planar/pyramidal/octahedral).
* spin (``Structure.spin`` = unpaired electrons) from the d-electron count ``d = group - ox``:
  tetrahedral, trigonal and linear complexes high-spin; square-planar d7/d8/d9: 1/0/1; other
  polyhedra low-spin when at least half of the donors come from strong-field ligands (CN-, CO, NO+,
  phosphines, bipy/phen/terpy, porphyrinato, oxo), for Co(III) always, and for every 4d metal;
  high-spin otherwise (ligand-field theory, e.g. Figgis & Hitchman, *Ligand Field Theory and its
  Applications*, 2000).
* tetrahedral and trigonal complexes take no chelate but acac (the polyhedra are ideal, so a 5-ring
  chelate would have to span 109-120°).
* oxo only on d0-d2 metals in oxidation state >= 4 (at most one); CO only at oxidation state <= 2;
  NO+ at most one, on Cr-Co and Ru; the total charge stays within -4..+3.
* Jahn-Teller ions (Cu(II), high-spin d4) in octahedra start with the axial bonds 0.25 Å longer.
* relaxation in implicit water (xtb GBSA): in the gas phase GFN-FF lets anionic ligands of 3-
  complexes fly off (measured: [Co(OH)5]3-, [Zn(Cl)(edt)(ox)]3- lost a ligand in vacuum, not in water).
* complexes with fewer than 20 atoms get outer-sphere (second-shell) waters up to 20-25 atoms; the
  total stays within 20-60 atoms (hydrogens included).
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from typing import Any

import numpy as np
from ase.data import atomic_numbers, chemical_symbols, covalent_radii

from jxas.data.build.distort import distort
from jxas.data.build.ligands import LIGANDS, ligand, ligand_atom_count
from jxas.data.build.place import CLASH_FACTOR, BuildError, Complex, assemble, bonds, clashes
from jxas.data.build.polyhedra import CN_OF, site_sets
from jxas.data.build.relax import relax

__all__ = [
    "campaign_specs",
    "make_entry",
    "build_complex",
    "check_complex",
    "spin_state",
    "GEOMETRIES",
    "BUILDER_VERSION",
    "MIN_ATOMS",
    "MAX_ATOMS",
]

BUILDER_VERSION = "jxas.data.build/2"
MIN_ATOMS, MAX_ATOMS = 20, 60

# element -> [(oxidation state, weight, [(polyhedron, weight), ...]), ...]
# fmt: off
GEOMETRIES: dict[str, list[tuple[int, float, list[tuple[str, float]]]]] = {
    "Ti": [(4, 0.6, [("octahedral", 0.5), ("tetrahedral", 0.25), ("trigonal_bipyramidal", 0.1),
                     ("square_pyramidal", 0.1), ("pentagonal_bipyramidal", 0.05)]),
           (3, 0.4, [("octahedral", 0.85), ("trigonal_bipyramidal", 0.15)])],
    "V": [(3, 0.35, [("octahedral", 0.85), ("trigonal_bipyramidal", 0.15)]),
          (4, 0.4, [("square_pyramidal", 0.5), ("octahedral", 0.5)]),
          (5, 0.25, [("tetrahedral", 0.4), ("square_pyramidal", 0.3), ("octahedral", 0.3)])],
    "Cr": [(3, 0.7, [("octahedral", 1.0)]),
           (2, 0.3, [("octahedral", 0.6), ("square_planar", 0.2), ("square_pyramidal", 0.2)])],
    "Mn": [(2, 0.6, [("octahedral", 0.55), ("tetrahedral", 0.15), ("trigonal_bipyramidal", 0.1),
                     ("square_pyramidal", 0.05), ("pentagonal_bipyramidal", 0.1), ("trigonal_prismatic", 0.05)]),
           (3, 0.3, [("octahedral", 0.7), ("square_pyramidal", 0.3)]),
           (4, 0.1, [("octahedral", 1.0)])],
    "Fe": [(2, 0.5, [("octahedral", 0.6), ("tetrahedral", 0.1), ("square_pyramidal", 0.08),
                     ("trigonal_bipyramidal", 0.08), ("trigonal_prismatic", 0.04), ("pentagonal_bipyramidal", 0.05),
                     ("square_planar", 0.05)]),
           (3, 0.5, [("octahedral", 0.65), ("tetrahedral", 0.1), ("trigonal_bipyramidal", 0.1),
                     ("square_pyramidal", 0.1), ("pentagonal_bipyramidal", 0.05)])],
    "Co": [(2, 0.55, [("octahedral", 0.5), ("tetrahedral", 0.25), ("trigonal_bipyramidal", 0.1),
                      ("square_pyramidal", 0.1), ("square_planar", 0.05)]),
           (3, 0.45, [("octahedral", 1.0)])],
    "Ni": [(2, 1.0, [("octahedral", 0.45), ("square_planar", 0.3), ("tetrahedral", 0.1),
                     ("square_pyramidal", 0.08), ("trigonal_bipyramidal", 0.07)])],
    "Cu": [(2, 0.7, [("square_planar", 0.3), ("square_pyramidal", 0.25), ("octahedral", 0.3),
                     ("trigonal_bipyramidal", 0.15)]),
           (1, 0.3, [("tetrahedral", 0.5), ("trigonal_planar", 0.3), ("linear", 0.2)])],
    "Zn": [(2, 1.0, [("tetrahedral", 0.45), ("octahedral", 0.3), ("trigonal_bipyramidal", 0.15),
                     ("square_pyramidal", 0.1)])],
    # 4d metals: the builder does not exclude them
    "Zr": [(4, 1.0, [("octahedral", 0.4), ("pentagonal_bipyramidal", 0.3), ("square_antiprismatic", 0.3)])],
    "Mo": [(3, 0.3, [("octahedral", 1.0)]), (4, 0.3, [("octahedral", 0.6), ("square_antiprismatic", 0.4)]),
           (6, 0.4, [("tetrahedral", 0.5), ("octahedral", 0.5)])],
    "Ru": [(2, 0.6, [("octahedral", 1.0)]), (3, 0.4, [("octahedral", 1.0)])],
    "Rh": [(3, 0.7, [("octahedral", 1.0)]), (1, 0.3, [("square_planar", 1.0)])],
    "Pd": [(2, 1.0, [("square_planar", 1.0)])],
    "Ag": [(1, 1.0, [("linear", 0.4), ("trigonal_planar", 0.3), ("tetrahedral", 0.3)])],
    "Cd": [(2, 1.0, [("tetrahedral", 0.5), ("octahedral", 0.5)])],
}
# fmt: on

_GROUP = {**{s: g for g, s in enumerate(["Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn"], start=3)},
          **{s: g for g, s in enumerate(["Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd"], start=3)}}
_4D = {"Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd"}

# monodentate ligand -> weight in the draw
_MONO_WEIGHTS = {
    "aqua": 3.0, "hydroxo": 1.0, "oxo": 1.0, "methanol": 0.6, "methoxo": 0.4, "acetato": 0.8, "formato": 0.4,
    "nitrato": 0.4, "dmso": 0.5, "thf": 0.4, "ammine": 2.0, "methylamine": 0.5, "pyridine": 1.5,
    "imidazole": 1.2, "acetonitrile": 0.8, "isothiocyanato": 0.5, "azido": 0.3, "nitrosyl": 0.3, "cyano": 1.2,
    "carbonyl": 0.8, "trimethylphosphine": 0.5, "phosphine": 0.3, "methanethiolato": 0.6,
    "dimethylsulfide": 0.3, "fluoro": 0.5, "chloro": 2.0, "bromo": 0.8, "iodo": 0.3,
}
# (kappa2-acetate is in the library but not drawn: its carbon sits 2.4 Å from the metal, which the
# sanity check cannot tell from a carbon bound to the metal)
_POLY_WEIGHTS = {
    "en": 1.5, "bipy": 1.2, "phen": 1.0, "acac": 1.2, "oxalato": 0.8, "glycinato": 0.8,
    "catecholato": 0.5, "dmpe": 0.4, "edt": 0.3, "picolinato": 0.6, "terpy": 0.6, "dien": 0.5, "tacn": 0.5,
    "porphyrinato_n4": 0.6, "salen": 0.6, "cyclam": 0.4,
}


# Chelates allowed on the ideal (undistorted) tetrahedron / trigonal plane: 5-ring chelates (en, bipy,
# catecholato, ...) put a ring atom within 2.3 Å of the metal there (measured: 5 of 6 group failures).
_WIDE_BITE = {"acac"}


def _hash(obj: Any, n: int = 16) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:n]


def d_count(element: str, ox: int) -> int:
    """Formal d-electron count of ``element`` in oxidation state ``ox``."""
    d = _GROUP[element] - ox
    if not 0 <= d <= 10:
        raise ValueError(f"{element}({ox:+d}) has no d^0..d^10 configuration")
    return d


def spin_state(element: str, ox: int, polyhedron_name: str, ligand_names: list[str]) -> int:
    """Unpaired electrons by the rules in the module docstring."""
    d = d_count(element, ox)
    high = [0, 1, 2, 3, 4, 5, 4, 3, 2, 1, 0][d]
    low = [0, 1, 2, 3, 2, 1, 0, 1, 2, 1, 0][d]
    if polyhedron_name in ("tetrahedral", "trigonal_planar", "linear"):
        return high
    if polyhedron_name == "square_planar" and d in (7, 8, 9):
        return {7: 1, 8: 0, 9: 1}[d]
    donors = [(ligand(n).field, ligand(n).denticity) for n in ligand_names]
    n_strong = sum(k for f, k in donors if f == "strong")
    n_all = sum(k for _, k in donors)
    if element in _4D or (element == "Co" and ox == 3) or 2 * n_strong >= n_all:
        return low
    return high


def _mono_pool(element: str, ox: int) -> dict[str, float]:
    pool = dict(_MONO_WEIGHTS)
    if not (ox >= 4 and d_count(element, ox) <= 2):
        pool.pop("oxo")
    if ox > 2 or element in ("Zn", "Cd", "Ti", "Zr"):
        pool.pop("carbonyl")
    if element not in ("Cr", "Mn", "Fe", "Co", "Ru") or ox > 3:
        pool.pop("nitrosyl")
    if ox >= 4:  # high-valent: no soft neutral donors
        for name in ("trimethylphosphine", "phosphine", "dimethylsulfide", "carbonyl", "iodo"):
            pool.pop(name, None)
    return pool


def _draw(rng: np.random.Generator, pool: dict[str, float]) -> str:
    names = sorted(pool)
    w = np.array([pool[n] for n in names], float)
    return names[int(rng.choice(len(names), p=w / w.sum()))]


def _draw_complex(element: str, rng: np.random.Generator) -> dict | None:
    """One candidate complex (without seeds), or None when the draw breaks a rule."""
    states = GEOMETRIES[element]
    w = np.array([s[1] for s in states])
    ox, _, polys = states[int(rng.choice(len(states), p=w / w.sum()))]
    pw = np.array([p[1] for p in polys])
    poly = polys[int(rng.choice(len(polys), p=pw / pw.sum()))][0]
    cn = CN_OF[poly]
    free = set(range(cn))
    chosen: list[tuple[str, tuple[int, ...]]] = []
    # at most one tri-/tetradentate, then up to three bidentate chelates
    big = {n: w for n, w in _POLY_WEIGHTS.items() if ligand(n).denticity >= 3 and site_sets(poly, ligand(n).shape)}
    if poly in ("tetrahedral", "trigonal_planar"):
        big = {}
    if big and rng.random() < 0.3:
        name = _draw(rng, big)
        sets = site_sets(poly, ligand(name).shape)
        chosen.append((name, sets[int(rng.integers(len(sets)))]))
        free -= set(chosen[-1][1])
    bi = {n: w for n, w in _POLY_WEIGHTS.items() if ligand(n).denticity == 2}
    if poly in ("tetrahedral", "trigonal_planar"):  # ideal 109-120° sites: only acac's 6-ring spans them
        bi = {n: w for n, w in bi.items() if n in _WIDE_BITE}
    n_bi = int(rng.choice([0, 1, 2, 3], p=[0.4, 0.3, 0.2, 0.1]))
    for _ in range(n_bi):
        options = [s for s in site_sets(poly, "cis") if set(s) <= free]
        if not options:
            break
        name = _draw(rng, bi)
        s = options[int(rng.integers(len(options)))]
        chosen.append((name, s))
        free -= set(s)
    pool = _mono_pool(element, ox)
    primary, secondary = _draw(rng, pool), _draw(rng, pool)
    for site in sorted(free):
        name = primary if rng.random() < 0.7 else secondary
        if name in ("oxo", "nitrosyl") and any(n == name for n, _ in chosen):
            name = "aqua"  # at most one oxo and one nitrosyl
        chosen.append((name, (site,)))
    names = [n for n, _ in chosen]
    charge = ox + sum(ligand(n).charge for n in names)
    if not -4 <= charge <= 3:
        return None
    n_atoms = 1 + sum(ligand_atom_count(n) for n in names)
    if n_atoms > MAX_ATOMS:
        return None
    n_waters = 0
    if n_atoms < MIN_ATOMS:
        n_waters = int(np.ceil((MIN_ATOMS - n_atoms) / 3)) + int(rng.integers(0, 2))
    spin = spin_state(element, ox, poly, names)
    z_total = atomic_numbers[element] + sum(
        sum(int(z) for z in _ligand_numbers(n)) for n in names) + 10 * n_waters
    if (z_total - charge - spin) % 2:
        raise AssertionError(f"electron count parity broken for {element}({ox}) {names}")  # a bug, not a draw
    jt = poly == "octahedral" and (
        (element in ("Cu", "Ag") and ox == 2) or (d_count(element, ox) == 4 and spin == 4))
    return {
        "element": element,
        "oxidation_state": int(ox),
        "polyhedron": poly,
        "ligands": [[n, list(map(int, s))] for n, s in sorted(chosen, key=lambda t: t[1])],
        "charge": int(charge),
        "spin": int(spin),
        "n_outer_waters": n_waters,
        "axial_stretch": 0.25 if jt else 0.0,
    }


@functools.cache
def _ligand_numbers(name: str) -> tuple[int, ...]:
    from jxas.data.build.ligands import ligand_numbers

    return tuple(int(z) for z in ligand_numbers(name))


def campaign_specs(
    element: str,
    n: int,
    *,
    seed: int,
    n_distortions: int = 4,
    relax_method: str = "gfnff",
    solvent: str | None = "water",
    stretch: float = 0.2,
    angle_deg: float = 10.0,
) -> list[dict]:
    """``n`` deterministic build specs for ``element`` (the same arguments give the same list).

    Every relaxed complex makes one group of ``1 + n_distortions`` specs: distortion 0 is the relaxed
    minimum itself, 1..n_distortions are random distortions of it. Complexes are drawn until ``n``
    specs exist (the last group may be cut short); the first ``m < n`` specs of a call are the specs
    of a call with ``n = m``, so a campaign can grow without changing its earlier entries.

    Args:
        element: absorber element symbol (a key of :data:`GEOMETRIES`: Ti-Zn, Zr, Mo, Ru, Rh, Pd, Ag, Cd).
        n: number of specs.
        seed: campaign seed.
        n_distortions: distortions per relaxed complex.
        relax_method: ``"gfnff"`` (default) or ``"gfn2"``.
        solvent: implicit solvent of the relaxation (xtb's GBSA, default water: in the gas phase
            GFN-FF lets anionic ligands of 3- complexes fly off); None for the gas phase.
        stretch: Å, largest bond stretch of a distortion. angle_deg: largest ligand turn (degrees).

    Returns:
        JSON-able dicts with a unique ``"key"`` (hash of the spec) and a ``"group"`` (the relaxed
        complex's id; all distortions of one complex share it, so splits by group never leak).
    """
    element = element.strip().capitalize()
    if element not in GEOMETRIES:
        raise ValueError(f"no builder rules for {element!r}; known: {', '.join(GEOMETRIES)}")
    if n < 0 or n_distortions < 0:
        raise ValueError("n and n_distortions must be >= 0")
    rng = np.random.default_rng([int(seed), atomic_numbers[element]])
    specs: list[dict] = []
    seen: set[str] = set()
    draws = 0
    while len(specs) < n:
        draws += 1
        if draws > 100 * n + 1000:
            raise RuntimeError(f"could not draw {n} valid {element} complexes")
        cx = _draw_complex(element, rng)
        embed_seed = int(rng.integers(2**31))
        dist_seeds = [int(x) for x in rng.integers(2**31, size=n_distortions)]
        if cx is None:
            continue
        base = {**cx, "embed_seed": embed_seed, "relax": relax_method, "solvent": solvent,
                "builder": BUILDER_VERSION}
        group = f"{element.lower()}-{_hash(base, 12)}"
        if group in seen:
            continue
        seen.add(group)
        for k in range(n_distortions + 1):
            spec = {**base, "group": group, "distortion": k,
                    "distortion_seed": dist_seeds[k - 1] if k else 0,
                    "stretch": stretch if k else 0.0, "angle_deg": angle_deg if k else 0.0}
            spec["key"] = f"{element.lower()}-{_hash(spec, 20)}"
            specs.append(spec)
            if len(specs) == n:
                break
    return specs


_COMPLEX_FIELDS = ("element", "oxidation_state", "polyhedron", "ligands", "charge", "spin", "n_outer_waters",
                   "axial_stretch", "embed_seed", "relax", "solvent")


def check_complex(cx: Complex, *, reference: Complex | None = None) -> None:
    """Raise :class:`BuildError` unless ``cx`` is chemically sane.

    Checks: 20-60 atoms; no clashes between ligands (``CLASH_FACTOR`` x vdW sum); every donor within
    0.75-1.3 x the metal-donor covalent-radius sum; no other ligand atom closer to the metal than 1.15 x
    its covalent-radius sum; outer waters not bound to the metal; and, with ``reference``, the same
    covalent bonds among the ligand atoms as in ``reference`` (no bond broken or made).
    """
    n = len(cx.numbers)
    if not MIN_ATOMS <= n <= MAX_ATOMS:
        raise BuildError(f"{n} atoms, outside {MIN_ATOMS}-{MAX_ATOMS}")
    bad = clashes(cx.positions, cx.numbers, cx.fragments, CLASH_FACTOR)
    if bad:
        i, j, d = bad[0]
        raise BuildError(f"clash: {chemical_symbols[cx.numbers[i]]}{i} and {chemical_symbols[cx.numbers[j]]}{j} "
                         f"{d:.2f} Å apart")
    zm = int(cx.numbers[0])
    r = np.linalg.norm(cx.positions - cx.positions[0], axis=1)
    donors = set(cx.donor_atoms)
    for k in donors:
        ref = covalent_radii[zm] + covalent_radii[cx.numbers[k]]
        if not 0.75 * ref <= r[k] <= 1.3 * ref:
            raise BuildError(f"donor {chemical_symbols[cx.numbers[k]]}{k} at {r[k]:.2f} Å from the metal "
                             f"(covalent sum {ref:.2f} Å)")
    for k in range(1, n):
        if k in donors:
            continue
        if r[k] < 1.15 * (covalent_radii[zm] + covalent_radii[cx.numbers[k]]):
            raise BuildError(f"non-donor {chemical_symbols[cx.numbers[k]]}{k} bound to the metal ({r[k]:.2f} Å)")
    if reference is not None:
        lig = np.arange(1, n)
        b0 = {b for b in bonds(reference.positions[lig], reference.numbers[lig])}
        b1 = {b for b in bonds(cx.positions[lig], cx.numbers[lig])}
        if b0 != b1:
            lost, made = sorted(b0 - b1)[:3], sorted(b1 - b0)[:3]
            raise BuildError(f"ligand bonds changed in relaxation: lost {lost}, made {made} (ligand atom indices)")


@functools.lru_cache(maxsize=8)
def _build_cached(base_json: str) -> tuple[Complex, dict]:
    spec = json.loads(base_json)
    t0 = time.perf_counter()
    z = atomic_numbers[spec["element"]]
    ligs = [(n, tuple(s)) for n, s in spec["ligands"]]
    err: Exception | None = None
    for attempt in range(5):  # deterministic retries with derived seeds
        try:
            cx = assemble(z, spec["polyhedron"], ligs, charge=spec["charge"], spin=spec["spin"],
                          seed=spec["embed_seed"] + 7919 * attempt, n_outer_waters=spec["n_outer_waters"],
                          axial_stretch=spec["axial_stretch"])
            t1 = time.perf_counter()
            relaxed, report = relax(cx, method=spec["relax"], solvent=spec.get("solvent"))
            check_complex(relaxed, reference=cx)
            report.update(place_seconds=t1 - t0, relax_seconds=time.perf_counter() - t1, attempt=attempt)
            return relaxed, report
        except BuildError as e:
            err = e
            t0 = time.perf_counter()
    raise BuildError(f"could not build {spec['element']}({spec['oxidation_state']:+d}) {spec['polyhedron']} "
                     f"{[n for n, _ in spec['ligands']]}: {err}")


def build_complex(spec: dict) -> tuple[Complex, dict]:
    """The relaxed complex of ``spec``'s group (cached per process: distortions share one relaxation).

    Returns a copy of the relaxed complex and the relaxation report. Raises :class:`BuildError`.
    """
    base = json.dumps({k: spec[k] for k in _COMPLEX_FIELDS}, sort_keys=True)
    if base in _FAILED:  # the group's other specs fail the same way: do not rebuild five times
        raise BuildError(_FAILED[base])
    try:
        cx, report = _build_cached(base)
    except BuildError as err:
        if len(_FAILED) > 64:
            _FAILED.clear()
        _FAILED[base] = str(err)
        raise
    return cx.copy(), dict(report)


_FAILED: dict[str, str] = {}


def make_entry(spec: dict, recipe=None, *, timeout: float = 600.0) -> dict:
    """Build, relax, distort and simulate one spec; returns a dataset entry.

    Args:
        spec: one dict from :func:`campaign_specs` (or from :func:`jxas.data.build.crystal.crystal_specs`,
            ``"source": "crystal"``, handed to :func:`~jxas.data.build.crystal.make_crystal_entry`).
        recipe: a :class:`~jxas.data.feff.FeffRecipe`, its ``to_dict()``, or None (default recipe).
        timeout: seconds allowed for the FEFF run.

    Returns:
        ``{"structure", "mu", "raw_energy", "raw_mu", "key", "group", "split": "", "oxidation_state",
        "provenance"}`` (the :class:`jxas.data.Dataset` entry schema); the structure has the metal at
        index 0 (the absorber), its total charge and unpaired electrons; ``mu`` is on the element's
        standard grid; ``provenance`` holds the spec, ligand names, formula, relaxation and
        distortion reports, the recipe, FEFF version, input hash and timings.

    Raises:
        BuildError: the complex could not be built sanely (the message says why).
        ValueError, FeffRunError, FeffTimeout: from :func:`jxas.data.feff.simulate_feff`.
    """
    from jxas.data.feff import FeffRecipe, simulate_feff
    from jxas.structure import Structure

    if spec.get("source") == "crystal":
        from jxas.data.build.crystal import make_crystal_entry

        return make_crystal_entry(spec, recipe, timeout=timeout)
    if isinstance(recipe, dict):
        recipe = FeffRecipe.from_dict(recipe)
    t0 = time.perf_counter()
    cx, relax_report = build_complex(spec)
    dist_report: dict = {}
    if spec.get("distortion", 0):
        cx, dist_report = distort(cx, seed=int(spec["distortion_seed"]), stretch=float(spec["stretch"]),
                                  angle_deg=float(spec["angle_deg"]))
        check_complex(cx)
    t_build = time.perf_counter() - t0
    structure = Structure.from_arrays(cx.positions, cx.numbers, absorber=0, charge=cx.charge, spin=cx.spin)
    sp = simulate_feff(structure, recipe, timeout=timeout)
    counts: dict[str, int] = {}
    for z in cx.numbers:
        counts[chemical_symbols[z]] = counts.get(chemical_symbols[z], 0) + 1
    formula = "".join(f"{s}{c if c > 1 else ''}" for s, c in sorted(counts.items(), key=lambda t: (t[0] != "C", t[0])))
    provenance = {
        "source": "jxas.data.build",
        "spec": spec,
        "formula": formula,
        "n_atoms": int(len(cx.numbers)),
        "ligand_names": [n for n in cx.names],
        "relaxation": relax_report,
        "distortion": dist_report,
    }
    return feff_entry(structure, sp, spec, provenance, t_build)


def feff_entry(structure, sp, spec: dict, provenance: dict, t_build: float) -> dict:
    """The dataset entry of a FEFF10 result ``sp`` for ``structure`` made from ``spec``: the spectrum on the
    standard and raw grids, key/group/oxidation state from the spec, and ``provenance`` completed with the
    recipe, FEFF version, input hash, Fermi level and timings."""
    m = sp.meta
    provenance = {**provenance, "recipe": m["recipe"], "feff_version": m["feff_version"],
                  "input_hash": m["input_hash"], "e_fermi": m["e_fermi"],
                  "seconds": {"build": t_build, "feff": m["seconds"]}}
    return {
        "structure": structure,
        "mu": np.asarray(sp.mu, np.float64),
        "raw_energy": np.asarray(m["raw_energy"], np.float64),
        "raw_mu": np.asarray(m["raw_mu"], np.float64),
        "key": spec["key"],
        "group": spec["group"],
        "split": "",
        "oxidation_state": int(spec["oxidation_state"]),
        "provenance": provenance,
    }


def library_summary() -> dict[str, int]:
    """Number of ligands per denticity (for data cards)."""
    out: dict[str, int] = {}
    for lig in LIGANDS.values():
        out[str(lig.denticity)] = out.get(str(lig.denticity), 0) + 1
    return out


def card_sections(element: str) -> dict[str, str]:
    """Data-card sections describing how the builder makes the environments of a campaign."""
    lib = library_summary()
    geo = "; ".join(f"{element}({ox:+d}): " + ", ".join(p for p, _ in polys) for ox, _, polys in GEOMETRIES[element])
    return {
        "Local environments": (
            f"Molecular first- and second-shell environments of {element}, {MIN_ATOMS}-{MAX_ATOMS} atoms with "
            "hydrogens, built by `jxas.data.build` (" + BUILDER_VERSION + "): ligands from SMILES with RDKit "
            f"({len(LIGANDS)} ligands; by denticity {lib}), placed on ideal polyhedra ({geo}), relaxed with "
            "GFN-FF in implicit water (GBSA) through xtb-python (total charge and unpaired electrons from the "
            "formal oxidation state and the ligand-field spin rules of `jxas.data.build.campaign`), checked "
            "(no clashes, donors bonded, nothing else bonded to the metal, ligand bonds unchanged), then "
            "each relaxed complex (a *group*) gives its minimum plus 4 random distortions (metal-ligand "
            "bonds +-0.2 Å, ligand turns up to 10°, 0.02 Å noise). Small complexes get outer-sphere "
            "waters. Split by `group`."
        ),
        "Licence": "Generated by the jxas project with FEFF10 (feff10-rs); BSD-3-Clause like jxas.",
    }


def write_campaign_card(path, *, command: str, started: str | None = None) -> None:
    """Write the data card of a campaign file (builder sections + status) with the public card writer.

    Args:
        path: the dataset ``.h5``.
        command: the exact command that generates / resumes it.
        started: ISO time the campaign started (for the duration line).
    """
    import datetime as _dt

    from jxas.data.dataset import Dataset, write_data_card

    ds = Dataset(path)
    info = ds.info()
    done = info["n_entries"] + info["n_failures"]
    status = [f"- entries: {info['n_entries']}, failures: {info['n_failures']} "
              f"(failure rate {info['n_failures'] / max(1, done):.1%})"]
    if started:
        t0 = _dt.datetime.fromisoformat(started)
        now = _dt.datetime.now(_dt.UTC)
        hours = (now - t0).total_seconds() / 3600
        status.append(f"- campaign started {started}; status written {now.isoformat(timespec='minutes')} "
                      f"({hours:.2f} h of wall time, {done / max(hours, 1e-9):.0f} specs/h with 2 workers; the "
                      "machine's 2 cores were shared with the other element's run and other jobs)")
    sections = {
        **card_sections(ds.element),
        "How to regenerate": f"```bash\n{command}\n```\nRunning the same command again resumes the campaign "
        "(finished keys and recorded failures are skipped); the spec list is deterministic for the seed.",
        "Campaign status": "\n".join(status),
    }
    write_data_card(ds, sections=sections)
