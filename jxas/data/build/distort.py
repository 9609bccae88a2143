"""Random distortions of a relaxed complex: bond stretches and angle changes, clash-checked.

A refinement walks through geometries away from the minimum, so the training data must cover them.
Each distortion, from an explicit seed:

* stretches every metal-ligand bond by ``U(-stretch, +stretch)`` Å (default 0.2 Å): monodentate
  ligands move rigidly along their metal-donor axis; a polydentate moves rigidly by the mean of its
  donors' stretches along its mean donor direction, and each donor atom (with the hydrogens on it)
  then takes the rest of its own stretch, capped at 0.1 Å so the chelate's own bonds stay sane;
* turns every monodentate ligand rigidly about the metal by up to ``angle_deg`` (default 10°) about a
  random axis perpendicular to its bond, and every polydentate by up to ``angle_deg / 2``, changing
  the ligand-metal-ligand angles;
* adds isotropic Gaussian noise of ``thermal`` Å (default 0.02 Å) to every ligand atom.

Draws that bring atoms of different ligands into a clash are redrawn (up to 20 times).
"""

from __future__ import annotations

import numpy as np

from jxas.data.build.place import CLASH_FACTOR, BuildError, Complex, _axis_rotation, clashes

__all__ = ["distort"]


def _perp_axis(u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    a = rng.normal(size=3)
    a -= (a @ u) * u
    return a / np.linalg.norm(a)


def _attached_h(cx: Complex, atom: int, frag: list[int]) -> list[int]:
    p = cx.positions
    return [j for j in frag if cx.numbers[j] == 1 and np.linalg.norm(p[j] - p[atom]) < 1.25]


def distort(
    cx: Complex,
    *,
    seed: int,
    stretch: float = 0.2,
    angle_deg: float = 10.0,
    thermal: float = 0.02,
    max_tries: int = 20,
) -> tuple[Complex, dict]:
    """A randomly distorted copy of ``cx`` (metal stays at the origin).

    Args:
        cx: relaxed complex.
        seed: seed of the draws (deterministic).
        stretch: Å, largest metal-donor bond change.
        angle_deg: degrees, largest rigid turn of a monodentate ligand about the metal.
        thermal: Å, standard deviation of the per-atom noise.
        max_tries: redraws allowed when a draw clashes.

    Returns:
        ``(distorted complex, {"bond_changes": {donor index: Å}, "tries": int})``.

    Raises:
        BuildError: every draw clashed.
    """
    rng = np.random.default_rng(seed)
    for tries in range(1, max_tries + 1):
        p = cx.positions.copy()
        changes: dict[int, float] = {}
        for frag, donors in zip(cx.fragments, cx.donors, strict=True):
            if not donors:  # outer-sphere water: small rigid shift only
                p[frag] += rng.normal(scale=0.1, size=3)
                continue
            d = rng.uniform(-stretch, stretch, size=len(donors))
            units = [p[k] / np.linalg.norm(p[k]) for k in donors]
            if len(donors) == 1:
                p[frag] += d[0] * units[0]
                axis = _perp_axis(units[0], rng)
                rot = _axis_rotation(axis, np.deg2rad(rng.uniform(-angle_deg, angle_deg)))
            else:
                mean_u = np.mean(units, axis=0)
                shift = float(np.mean(d))
                if np.linalg.norm(mean_u) > 1e-6:
                    p[frag] += shift * mean_u / np.linalg.norm(mean_u)
                else:  # planar macrocycle around the metal: no mean direction, move donors only
                    shift = 0.0
                for k, dk, u in zip(donors, d, units, strict=True):
                    extra = float(np.clip(dk - shift, -0.1, 0.1))
                    p[[k, *_attached_h(cx, k, frag)]] += extra * u
                axis = rng.normal(size=3)
                rot = _axis_rotation(axis, np.deg2rad(rng.uniform(-angle_deg, angle_deg) / 2))
            p[frag] = p[frag] @ rot.T
        p[1:] += rng.normal(scale=thermal, size=p[1:].shape)
        for k in cx.donor_atoms:
            changes[int(k)] = float(np.linalg.norm(p[k]) - np.linalg.norm(cx.positions[k]))
        if not clashes(p, cx.numbers, cx.fragments, CLASH_FACTOR):
            out = cx.copy()
            out.positions = p
            return out, {"bond_changes": changes, "tries": tries}
    raise BuildError(f"every one of {max_tries} distortions (stretch {stretch} Å, {angle_deg}°) clashed")
