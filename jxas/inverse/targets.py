"""Structural targets of the inverse models, computed from absorber-centred structures.

What the inverse models learn to read from a spectrum:

- **G2**: the 50 radial wACSF terms of the absorber, ``wacsf(s, r_min=0, r_max=6, n_g2=50, n_g4=0)[1:]``
  (Gastegger et al., J. Chem. Phys. 148, 241709 (2018), eq. 5; shifted grid mu_k = 0.5..5.5 Å as in
  XANESNET; the target of David et al., Digital Discovery 2, 1461 (2023)).
- **first shell** (radius rule, documented once here and used everywhere): the first shell is every
  non-hydrogen atom j with ``r_0j <= FIRST_SHELL_FACTOR * r_min`` where ``r_min`` is the shortest
  absorber-to-non-hydrogen distance and ``FIRST_SHELL_FACTOR = 1.25``. Hydrogen is left out because
  in complexes the H atoms of aqua/ammine ligands sit at 2.5-3 Å, within 1.25 r_min of a 2.1 Å M-O
  bond, and are not donors. The coordination number (CN) is the size of that set, the first-shell
  distance its mean distance (Å), the composition its count per donor element.
- **oxidation state**: the formal oxidation state label of the dataset (-99 = unknown).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from jxas.descriptors import make_wacsf
from jxas.structure import Structure, absorber_distances

__all__ = [
    "FIRST_SHELL_FACTOR",
    "G2_CONFIG",
    "g2",
    "g2_grid",
    "first_shell",
    "composition",
    "structure_targets",
    "donor_elements",
]

FIRST_SHELL_FACTOR = 1.25
# r_min, r_max (Å), number of G2 terms: the target of issue 7 / David et al. 2023
G2_CONFIG = {"r_min": 0.0, "r_max": 6.0, "n_g2": 50}
_g2_fn = make_wacsf(G2_CONFIG["r_min"], G2_CONFIG["r_max"], G2_CONFIG["n_g2"], 0)


def g2_grid() -> np.ndarray:
    """Centres (Å) of the 50 G2 Gaussians: ``linspace(0.5, 5.5, 50)`` (shifted grid)."""
    return np.linspace(G2_CONFIG["r_min"] + 0.5, G2_CONFIG["r_max"] - 0.5, G2_CONFIG["n_g2"])


def g2(s: Structure) -> Float[Array, " 50"]:
    """The 50 G2 wACSF terms of the absorber of one structure (vmap over a batch)."""
    return _g2_fn(s)[1:]


def first_shell(s: Structure, factor: float = FIRST_SHELL_FACTOR) -> tuple[Array, Array, Array]:
    """First shell of one structure by the 1.25 r_min rule (module docstring).

    Args:
        s: a single padded structure.
        factor: shell radius as a multiple of the shortest absorber-to-non-H distance.

    Returns:
        ``(in_shell [n] bool, cn scalar, r1 scalar Å)``: membership mask, coordination number and
        mean first-shell distance. A structure with no non-H neighbour gives cn 0 and r1 0.
    """
    r = absorber_distances(s)
    heavy = s.mask & (r > 0) & (s.numbers > 1)
    r_min = jnp.min(jnp.where(heavy, r, jnp.inf))
    shell = heavy & (r <= factor * r_min)
    cn = jnp.sum(shell)
    r1 = jnp.sum(jnp.where(shell, r, 0.0)) / jnp.maximum(cn, 1)
    return shell, cn.astype(r.dtype), r1


def composition(s: Structure, donors: Sequence[int], factor: float = FIRST_SHELL_FACTOR) -> Array:
    """Counts of first-shell atoms per donor element ``donors`` (atomic numbers), plus "other" last."""
    shell, _, _ = first_shell(s, factor)
    z = jnp.asarray(donors, jnp.int32)
    counts = jnp.sum(shell[None, :] & (s.numbers[None, :] == z[:, None]), axis=1)
    other = jnp.sum(shell) - jnp.sum(counts)
    return jnp.concatenate([counts, other[None]]).astype(s.positions.dtype)


def donor_elements(structures: Structure, max_elements: int = 8, min_fraction: float = 0.01) -> list[int]:
    """The donor elements worth their own composition output: the most frequent first-shell elements.

    Args:
        structures: a batch of structures (the training set).
        max_elements: at most this many elements (the rest count as "other").
        min_fraction: drop elements that make up less than this fraction of all first-shell atoms.

    Returns:
        Atomic numbers sorted by decreasing frequency.
    """
    shell = np.asarray(jax.vmap(lambda s: first_shell(s)[0])(structures))
    z = np.asarray(structures.numbers)[shell]
    if z.size == 0:
        return []
    vals, counts = np.unique(z, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    keep = [int(vals[i]) for i in order if counts[i] >= min_fraction * z.size]
    return keep[:max_elements]


def structure_targets(structures: Structure, donors: Sequence[int]) -> dict[str, np.ndarray]:
    """All structural targets of a batch of structures (host arrays, float32).

    Returns:
        dict with ``g2`` [B, 50], ``cn`` [B], ``r1`` [B] (Å), ``comp`` [B, len(donors) + 1].
    """
    donors = tuple(int(d) for d in donors)

    @jax.jit
    def one(s):
        _, cn, r1 = first_shell(s)
        return g2(s), cn, r1, composition(s, donors)

    out = jax.lax.map(one, structures, batch_size=256)
    names = ("g2", "cn", "r1", "comp")
    res = {k: np.asarray(v, np.float32) for k, v in zip(names, out, strict=True)}
    if np.any(res["cn"] == 0):
        bad = np.flatnonzero(res["cn"] == 0)[:5].tolist()
        raise ValueError(f"structures {bad} have no non-hydrogen neighbour: no first shell to learn")
    return res
