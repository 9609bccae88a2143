"""Coordination polyhedra (CN 2-8) as unit vectors from the metal, and the site sets chelates need.

Ideal shapes (Alvarez, "Polyhedra in (inorganic) chemistry", Dalton Trans. 2005, 2209): linear,
trigonal planar, tetrahedral, square planar, trigonal bipyramidal, square pyramidal (apex on z, the
metal 0.3 Å above the basal plane for a 2 Å bond: apex-M-base angle 100°), octahedral, trigonal
prismatic (equal edges: polar angle atan(2/sqrt 3) = 49.1°), pentagonal bipyramidal and square
antiprismatic (CN 8, polar angle 57.3°, Hoard & Silverton, Inorg. Chem. 2, 235 (1963)).
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

__all__ = ["POLYHEDRA", "polyhedron", "site_sets", "CN_OF"]


def _unit(v) -> np.ndarray:
    v = np.asarray(v, float)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _ring(n: int, polar_deg: float, phase_deg: float = 0.0) -> list[np.ndarray]:
    t, p0 = np.deg2rad(polar_deg), np.deg2rad(phase_deg)
    return [np.array([np.sin(t) * np.cos(p0 + 2 * np.pi * k / n), np.sin(t) * np.sin(p0 + 2 * np.pi * k / n),
                      np.cos(t)]) for k in range(n)]


_Z = np.array([0.0, 0.0, 1.0])

POLYHEDRA: dict[str, np.ndarray] = {
    "linear": _unit([_Z, -_Z]),
    "trigonal_planar": _unit(_ring(3, 90.0)),
    "tetrahedral": _unit([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]),
    "square_planar": _unit(_ring(4, 90.0)),
    "trigonal_bipyramidal": _unit([_Z, -_Z, *_ring(3, 90.0)]),
    "square_pyramidal": _unit([_Z, *_ring(4, 100.0)]),
    "octahedral": _unit([_Z, -_Z, *_ring(4, 90.0)]),
    "trigonal_prismatic": _unit([*_ring(3, np.degrees(np.arctan(2 / np.sqrt(3)))),
                                 *_ring(3, 180.0 - np.degrees(np.arctan(2 / np.sqrt(3))))]),
    "pentagonal_bipyramidal": _unit([_Z, -_Z, *_ring(5, 90.0)]),
    "square_antiprismatic": _unit([*_ring(4, 57.3), *_ring(4, 180.0 - 57.3, 45.0)]),
}
CN_OF = {name: len(v) for name, v in POLYHEDRA.items()}


def polyhedron(name: str) -> np.ndarray:
    """``[cn, 3]`` unit vectors from the metal to the sites of polyhedron ``name``."""
    try:
        return POLYHEDRA[name].copy()
    except KeyError:
        raise ValueError(f"unknown polyhedron {name!r}; known: {', '.join(POLYHEDRA)}") from None


def _angles(v: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip(v @ v.T, -1.0, 1.0)))


@functools.cache
def site_sets(name: str, shape: str) -> tuple[tuple[int, ...], ...]:
    """Ordered site tuples of polyhedron ``name`` that a ligand of donor arrangement ``shape`` can take.

    ``"mono"``: single sites. ``"cis"``: two sites 60-125° apart (a chelate's bite). ``"fac"``: three
    mutually cis sites. ``"mer"``: (outer, central, outer) with the outer pair ~trans (> 150°) and
    both cis to the central site. ``"plane"``: four sites coplanar with the metal in cyclic order,
    neighbours cis (the equatorial plane of an octahedron, the base of a square pyramid).
    """
    v = POLYHEDRA[name]
    a = _angles(v)
    n = len(v)

    def cis(i, j):
        return 60.0 <= a[i, j] <= 125.0

    out: list[tuple[int, ...]] = []
    if shape == "mono":
        out = [(i,) for i in range(n)]
    elif shape == "cis":
        out = [(i, j) for i, j in itertools.permutations(range(n), 2) if cis(i, j)]
    elif shape == "fac":
        out = [t for t in itertools.permutations(range(n), 3)
               if cis(t[0], t[1]) and cis(t[1], t[2]) and cis(t[0], t[2])]
    elif shape == "mer":
        out = [t for t in itertools.permutations(range(n), 3)
               if a[t[0], t[2]] > 150.0 and cis(t[0], t[1]) and cis(t[1], t[2])]
    elif shape == "plane":
        for t in itertools.permutations(range(n), 4):
            ring_ok = all(cis(t[k], t[(k + 1) % 4]) for k in range(4))
            trans_ok = a[t[0], t[2]] > 150.0 and a[t[1], t[3]] > 150.0
            if ring_ok and trans_ok:
                out.append(t)
    else:
        raise ValueError(f"unknown donor arrangement {shape!r}")
    return tuple(out)
