"""Pure-JAX chemical restraints (jax-md): bonds, angles and soft-sphere repulsion from the start geometry.

The cheap alternative to xTB for large sweeps, multi-start refinements and GPU batches: everything
jits and vmaps. The connectivity is detected once, on the host, from the starting structure with
covalent radii (a bond when r_ij < ``bond_scale`` (r_i + r_j); Cordero et al., Dalton Trans. 2008,
2832, as tabulated by ASE), then frozen.

Terms (energies in eV, distances in Å):
- harmonic bonds ``k_bond / 2 (r - r0)^2`` (jax-md ``energy.simple_spring_bond``), r0 the start length;
  bonds to the absorber are left out by default so that the spectrum, not the restraint, sets the
  metal-ligand distances that a refinement is about;
- angles ``k_angle / 2 (cos theta - cos theta0)^2`` for every pair of bonds sharing an atom (a cosine
  harmonic, smooth at linear angles where a theta harmonic is not);
- soft-sphere repulsion ``eps / 2 (1 - r / sigma)^2`` for r < sigma (jax-md ``energy.soft_sphere``;
  O'Hern et al., Phys. Rev. E 68, 011306 (2003)) between atoms that are neither bonded nor, when angle
  terms are on, 1-3 neighbours; ``sigma = min(r0, rep_scale (r_i + r_j))`` so the start is strain-free;
  absorber-donor pairs get a wall at ``wall_scale (r_i + r_j)`` instead of a spring.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np
from jax_md import energy as jmd_energy
from jax_md import space
from jaxtyping import Array, Float

from jxas.structure import Structure, safe_norm

__all__ = ["Topology", "detect_topology", "make_restraints", "bond_lengths", "first_shell"]


@dataclasses.dataclass(frozen=True)
class Topology:
    """Connectivity detected from a starting structure (host-side NumPy arrays, indices into slots).

    Attributes:
        bonds: ``[b, 2]`` all covalent bonds (absorber bonds included).
        lengths: ``[b]`` start bond lengths (Å).
        spring: ``[b]`` bool, bonds that carry a harmonic spring.
        angles: ``[a, 3]`` (i, centre, k) triples.
        cos0: ``[a]`` start cosines.
        sigma: ``[n, n]`` repulsion diameters (Å); 0 where a pair has no repulsion.
    """

    bonds: np.ndarray
    lengths: np.ndarray
    spring: np.ndarray
    angles: np.ndarray
    cos0: np.ndarray
    sigma: np.ndarray

    def absorber_bonds(self, absorber: int) -> np.ndarray:
        """Indices of the ligand atoms bonded to ``absorber``."""
        b = self.bonds
        return np.sort(np.concatenate([b[b[:, 0] == absorber, 1], b[b[:, 1] == absorber, 0]]))


def first_shell(structure: Structure, *, topology: Topology | None = None, ratio: float = 1.25) -> np.ndarray:
    """Indices of the first coordination shell: atoms bonded to the absorber (covalent radii) and
    closer than ``ratio`` times the nearest one, so that cation-cation contacts of oxides (Fe-Fe 2.9 Å
    in hematite, within the covalent Fe-Fe criterion) do not count as donors while mixed shells
    (Fe-N 1.95 and Fe-P 2.3 Å) do."""
    topo = topology or detect_topology(structure)
    ab = int(structure.absorber)
    bonded = topo.absorber_bonds(ab)
    if len(bonded) == 0:
        return bonded
    p = np.asarray(structure.positions, np.float64)
    r = np.linalg.norm(p[bonded] - p[ab], axis=1)
    return bonded[r <= ratio * r.min()]


def detect_topology(
    structure: Structure,
    *,
    bond_scale: float = 1.2,
    rep_scale: float = 1.6,
    wall_scale: float = 0.8,
    absorber_bonds: bool = False,
    angles: bool = True,
) -> Topology:
    """Detect bonds, angles and repulsive pairs of a single structure (host side, not traceable).

    Args:
        structure: the starting structure.
        bond_scale: bond when r_ij < bond_scale (r_cov,i + r_cov,j).
        rep_scale: non-bonded repulsion diameter factor (capped by the start distance).
        wall_scale: absorber-donor wall diameter factor, when absorber bonds carry no spring.
        absorber_bonds: put springs on bonds to the absorber too.
        angles: detect angle terms (and exclude 1-3 pairs from the repulsion).

    Returns:
        The :class:`Topology`.
    """
    from ase.data import covalent_radii

    if structure.is_batch:
        raise ValueError("detect_topology() takes a single structure")
    pos = np.asarray(structure.positions, np.float64)
    num = np.asarray(structure.numbers)
    mask = np.asarray(structure.mask, bool)
    ab = int(structure.absorber)
    n = len(num)
    rc = np.where(mask, covalent_radii[num], 0.0)
    d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    real = mask[:, None] & mask[None, :] & ~np.eye(n, dtype=bool)
    bonded = real & (d < bond_scale * (rc[:, None] + rc[None, :]))
    iu = np.argwhere(np.triu(bonded, 1))
    lengths = d[iu[:, 0], iu[:, 1]] if len(iu) else np.zeros(0)
    spring = np.ones(len(iu), bool) if absorber_bonds else ~np.any(iu == ab, axis=1)
    tri = []
    if angles:
        for j in range(n):
            nb = np.flatnonzero(bonded[j])
            for a in range(len(nb)):
                for b in range(a + 1, len(nb)):
                    tri.append((nb[a], j, nb[b]))
    tri = np.asarray(tri, np.int32).reshape(-1, 3)
    if len(tri):
        u = pos[tri[:, 0]] - pos[tri[:, 1]]
        v = pos[tri[:, 2]] - pos[tri[:, 1]]
        cos0 = np.sum(u * v, -1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
    else:
        cos0 = np.zeros(0)
    excluded = bonded.copy()
    if angles and len(tri):
        excluded[tri[:, 0], tri[:, 2]] = excluded[tri[:, 2], tri[:, 0]] = True
    rsum = rc[:, None] + rc[None, :]
    sigma = np.where(real & ~excluded, np.minimum(d, rep_scale * rsum), 0.0)
    if not absorber_bonds:
        wall = bonded & (np.arange(n)[:, None] == ab) | bonded & (np.arange(n)[None, :] == ab)
        sigma = np.where(wall, np.minimum(d, wall_scale * rsum), sigma)
    return Topology(
        bonds=iu.astype(np.int32).reshape(-1, 2),
        lengths=lengths,
        spring=spring,
        angles=tri,
        cos0=np.clip(cos0, -1.0, 1.0),
        sigma=sigma,
    )


def make_restraints(
    structure: Structure,
    *,
    k_bond: float = 20.0,
    k_angle: float = 2.0,
    eps_rep: float = 10.0,
    bond_scale: float = 1.2,
    rep_scale: float = 1.6,
    wall_scale: float = 0.8,
    absorber_bonds: bool = False,
    angles: bool = True,
    topology: Topology | None = None,
) -> Callable[[Float[Array, "n 3"]], Float[Array, ""]]:
    """Return a pure ``energy(positions) -> eV`` of restraints built from ``structure``'s geometry.

    The returned function jits, vmaps (over positions of the same molecule, e.g. multi-start
    refinements) and differentiates; it is zero at the starting positions. ``energy.topology`` and
    ``energy.terms(positions) -> dict`` expose the connectivity and the separate terms.

    Args:
        structure: starting structure (sets connectivity, reference lengths and angles).
        k_bond: bond force constant (eV/Å^2); 20 eV/Å^2 is a typical C-C/C-O stretch.
        k_angle: angle force constant on cos(theta) (eV).
        eps_rep: soft-sphere energy scale (eV).
        bond_scale, rep_scale, wall_scale, absorber_bonds, angles: see :func:`detect_topology`.
        topology: reuse a detected topology instead of detecting one.
    """
    topo = topology or detect_topology(
        structure,
        bond_scale=bond_scale,
        rep_scale=rep_scale,
        wall_scale=wall_scale,
        absorber_bonds=absorber_bonds,
        angles=angles,
    )
    _, shift = space.free()
    sb = topo.bonds[topo.spring]
    spring_fn = (
        jmd_energy.simple_spring_bond(
            space.metric(space.free()[0]),
            jnp.asarray(sb),
            length=jnp.asarray(topo.lengths[topo.spring]),
            epsilon=jnp.asarray(float(k_bond)),
            alpha=jnp.asarray(2.0),
        )
        if len(sb)
        else None
    )
    tri = jnp.asarray(topo.angles)
    cos0 = jnp.asarray(topo.cos0)
    sigma = jnp.asarray(topo.sigma)
    has_rep = sigma > 0
    sigma_safe = jnp.where(has_rep, sigma, 1.0)

    def terms(positions: Float[Array, "n 3"]) -> dict[str, Float[Array, ""]]:
        zero = jnp.zeros((), positions.dtype)
        with warnings.catch_warnings():  # jax-md sums in float64 ("high precision"); harmless without x64
            warnings.filterwarnings("ignore", message="Explicitly requested dtype float64")
            e_bond = spring_fn(positions) if spring_fn is not None else zero
        if tri.shape[0]:
            u = positions[tri[:, 0]] - positions[tri[:, 1]]
            v = positions[tri[:, 2]] - positions[tri[:, 1]]
            nu, nv = safe_norm(u), safe_norm(v)
            ok = (nu > 0) & (nv > 0)
            cos = jnp.where(ok, jnp.sum(u * v, -1) / jnp.where(ok, nu * nv, 1.0), cos0)
            e_angle = 0.5 * k_angle * jnp.sum((cos - cos0) ** 2)
        else:
            e_angle = zero
        r = safe_norm(positions[:, None, :] - positions[None, :, :])
        # masked pairs get r = sigma, where the soft sphere is exactly zero with zero gradient
        r_eff = jnp.where(has_rep, r, sigma_safe)
        e_rep = 0.5 * jnp.sum(
            jnp.where(
                has_rep,
                jmd_energy.soft_sphere(
                    r_eff, sigma=sigma_safe, epsilon=jnp.asarray(float(eps_rep)), alpha=jnp.asarray(2.0)
                ),
                0.0,
            )
        )
        return {"bond": e_bond, "angle": e_angle, "repulsion": e_rep}

    def energy(positions: Float[Array, "n 3"]) -> Float[Array, ""]:
        t = terms(positions)
        return t["bond"] + t["angle"] + t["repulsion"]

    energy.topology = topo
    energy.terms = terms
    return energy


def bond_lengths(positions: Float[Array, "n 3"], bonds) -> Float[Array, " b"]:
    """Lengths (Å) of the given ``[b, 2]`` bonds."""
    bonds = jnp.asarray(bonds)
    return safe_norm(positions[bonds[:, 0]] - positions[bonds[:, 1]])
