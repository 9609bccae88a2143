"""The padded ``Structure`` pytree shared by every jxas function.

A structure is an absorber-centred set of atoms with static shapes: positions (Å), atomic numbers, a
mask that marks real atoms (padding atoms have ``mask == False`` and contribute nothing anywhere), the
absorber index, and the total charge and spin used by xTB. Batches are the same pytree with a
leading axis on every leaf, made by :func:`stack`, so ``jax.vmap(f)(batch)`` runs any single-structure
function over many structures with one compilation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

__all__ = ["Structure", "pad", "stack", "unstack", "trim", "safe_norm", "absorber_distances", "n_atoms"]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Structure:
    """Padded atomic structure centred on one absorbing atom.

    Attributes:
        positions: ``[n, 3]`` Cartesian coordinates in Å.
        numbers: ``[n]`` atomic numbers (0 for padding).
        mask: ``[n]`` True for real atoms, False for padding.
        absorber: scalar integer index of the absorbing atom.
        charge: scalar total charge (e), used by xTB.
        spin: scalar number of unpaired electrons (multiplicity - 1), used by xTB.

    All leaves are arrays, so a batch of structures is a ``Structure`` whose leaves carry a leading
    batch axis (see :func:`stack`).
    """

    positions: Float[Array, "n 3"]
    numbers: Int[Array, " n"]
    mask: Bool[Array, " n"]
    absorber: Int[Array, ""]
    charge: Int[Array, ""]
    spin: Int[Array, ""]

    @classmethod
    def from_arrays(
        cls,
        positions,
        numbers,
        *,
        absorber: int = 0,
        charge: int = 0,
        spin: int = 0,
        mask=None,
    ) -> Structure:
        """Build a structure from array-likes; ``mask`` defaults to all atoms real."""
        positions = jnp.asarray(positions, dtype=jnp.result_type(float))
        numbers = jnp.asarray(numbers, dtype=jnp.int32)
        if positions.ndim != 2 or positions.shape[-1] != 3:
            raise ValueError(f"positions must have shape [n, 3], got {positions.shape}")
        if numbers.shape != positions.shape[:1]:
            raise ValueError(f"numbers has shape {numbers.shape}, expected {positions.shape[:1]}")
        mask = jnp.ones(numbers.shape, bool) if mask is None else jnp.asarray(mask, bool)
        if not 0 <= int(absorber) < numbers.shape[0]:
            raise ValueError(f"absorber index {absorber} out of range for {numbers.shape[0]} atoms")
        return cls(
            positions=positions,
            numbers=numbers,
            mask=mask,
            absorber=jnp.asarray(absorber, jnp.int32),
            charge=jnp.asarray(charge, jnp.int32),
            spin=jnp.asarray(spin, jnp.int32),
        )

    @property
    def n_max(self) -> int:
        """Padded size (the static number of atom slots)."""
        return self.numbers.shape[-1]

    @property
    def is_batch(self) -> bool:
        return self.numbers.ndim == 2

    def replace(self, **changes) -> Structure:
        """A copy with some fields replaced (e.g. ``s.replace(positions=new)``)."""
        return dataclasses.replace(self, **changes)

    def real(self) -> tuple[np.ndarray, np.ndarray, int]:
        """Unpadded ``(positions, numbers, absorber)`` as NumPy arrays (host side, not traceable)."""
        if self.is_batch:
            raise ValueError("real() takes a single structure; use unstack() on a batch first")
        m = np.asarray(self.mask)
        idx = np.flatnonzero(m)
        absorber = int(np.searchsorted(idx, int(self.absorber)))
        return np.asarray(self.positions)[m], np.asarray(self.numbers)[m], absorber

    def to_ase(self):
        """Convert to ``ase.Atoms`` (padding dropped); absorber index, charge and spin go to ``info``."""
        import ase

        pos, num, absorber = self.real()
        atoms = ase.Atoms(numbers=num, positions=pos)
        atoms.info.update(absorber=absorber, charge=int(self.charge), spin=int(self.spin))
        return atoms


def n_atoms(s: Structure) -> Int[Array, ""]:
    """Number of real (unpadded) atoms."""
    return jnp.sum(s.mask, axis=-1)


def pad(s: Structure, n: int) -> Structure:
    """Pad a single structure to ``n`` atom slots (padding: position 0, number 0, mask False)."""
    if s.is_batch:
        raise ValueError("pad() takes a single structure; stack() pads a list")
    k = s.n_max
    if n < k:
        raise ValueError(f"cannot pad a structure of {k} atom slots down to {n}")
    extra = n - k
    return s.replace(
        positions=jnp.concatenate([s.positions, jnp.zeros((extra, 3), s.positions.dtype)]),
        numbers=jnp.concatenate([s.numbers, jnp.zeros((extra,), s.numbers.dtype)]),
        mask=jnp.concatenate([s.mask, jnp.zeros((extra,), bool)]),
    )


def stack(structures: Sequence[Structure], n: int | None = None) -> Structure:
    """Pad a list of single structures to a common size and stack them into a batch.

    Args:
        structures: single (unbatched) structures.
        n: atom slots per structure; default the largest size in the list.

    Returns:
        A ``Structure`` whose leaves have a leading batch axis of ``len(structures)``.
    """
    if len(structures) == 0:
        raise ValueError("stack() needs at least one structure")
    n = max(s.n_max for s in structures) if n is None else n
    padded = [pad(s, n) for s in structures]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *padded)


def trim(s: Structure) -> Structure:
    """Drop trailing padding slots of one structure (host side): the cost of pair-based models grows with
    the square of the slot count, so single-structure work (sweeps) runs on the real atoms only.

    Indices are unchanged: only slots after the last real atom are dropped.
    """
    if s.is_batch:
        raise ValueError("trim() takes a single structure; use unstack() on a batch first")
    real = np.flatnonzero(np.asarray(s.mask))
    k = int(real[-1]) + 1 if real.size else 1
    return s if k == s.n_max else s.replace(positions=s.positions[:k], numbers=s.numbers[:k], mask=s.mask[:k])


def unstack(batch: Structure) -> list[Structure]:
    """Split a batch back into single structures (still padded)."""
    if not batch.is_batch:
        return [batch]
    b = batch.numbers.shape[0]
    return [jax.tree.map(lambda x, i=i: x[i], batch) for i in range(b)]


def safe_norm(x: Float[Array, "... 3"], axis: int = -1) -> Float[Array, "..."]:
    """Euclidean norm whose gradient is finite (zero) at the origin (double-where trick)."""
    sq = jnp.sum(x**2, axis=axis)
    ok = sq > 0
    return jnp.where(ok, jnp.sqrt(jnp.where(ok, sq, 1.0)), 0.0)


def absorber_distances(s: Structure) -> Float[Array, " n"]:
    """Distances (Å) from the absorber to every atom slot (0 for the absorber itself)."""
    return safe_norm(s.positions - s.positions[s.absorber])


def neighbour_mask(s: Structure, r_max: float | Array) -> Bool[Array, " n"]:
    """Real atoms j with 0 < r_0j < r_max: the neighbour set of every absorber-centred descriptor."""
    r = absorber_distances(s)
    return s.mask & (r > 0) & (r < r_max)
