"""Data splits by group (material or complex), never by entry.

Several entries of a dataset can come from one material (its symmetry-distinct absorber sites) or one
complex (conformers, distortions). Splitting those entries between training and test would let a
model score on structures it has effectively seen, so every helper here assigns whole groups.
All helpers are deterministic given ``seed``/``key``.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np

__all__ = ["group_split", "group_kfold", "bootstrap_indices", "check_disjoint"]


def _group_codes(groups: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """``(unique_groups, code_per_entry)`` with unique groups sorted (so results do not depend on order)."""
    groups = np.asarray(groups)
    if groups.ndim != 1:
        raise ValueError(f"groups must be 1-D (one label per entry), got shape {groups.shape}")
    if groups.size == 0:
        raise ValueError("groups is empty: nothing to split")
    uniq, codes = np.unique(groups, return_inverse=True)
    return uniq, codes


def group_split(groups: Sequence, fractions: Sequence[float], *, seed: int) -> list[np.ndarray]:
    """Split entries into parts of whole groups with roughly the given fractions of *entries*.

    Groups are shuffled with ``seed`` and assigned in that order to consecutive parts until each part
    holds its share of the entries (cumulative-count boundaries), so part sizes follow ``fractions``
    to within one group.

    Args:
        groups: ``[N]`` group label of every entry (material id, complex name).
        fractions: part fractions, e.g. ``(0.8, 0.1, 0.1)``; normalised to sum to 1.
        seed: integer seed of the group shuffle.

    Returns:
        One sorted index array per part; their union is ``arange(N)`` and no group is in two parts.

    Raises:
        ValueError: fewer groups than non-zero fractions, or negative fractions.
    """
    uniq, codes = _group_codes(groups)
    f = np.asarray(fractions, float)
    if f.ndim != 1 or f.size == 0 or np.any(f < 0) or f.sum() <= 0:
        raise ValueError(f"fractions must be non-negative and not all zero, got {fractions}")
    if np.count_nonzero(f) > len(uniq):
        raise ValueError(f"cannot split {len(uniq)} group(s) into {np.count_nonzero(f)} non-empty parts")
    f = f / f.sum()
    order = np.random.default_rng(seed).permutation(len(uniq))
    sizes = np.bincount(codes, minlength=len(uniq))[order]
    # boundary of part k: the group at which the cumulative entry count passes sum(f[:k+1]) * N
    mid = np.cumsum(sizes) - sizes / 2.0  # group "centre" in entry units
    part_of_rank = np.searchsorted(np.cumsum(f) * sizes.sum(), mid, side="right")
    part_of_rank = np.minimum(part_of_rank, len(f) - 1)
    # every non-empty fraction gets at least one group (tiny datasets)
    for k in np.flatnonzero(f > 0):
        if not np.any(part_of_rank == k):
            donor = np.bincount(part_of_rank, minlength=len(f)).argmax()
            part_of_rank[np.flatnonzero(part_of_rank == donor)[-1 if k > donor else 0]] = k
    part_of_group = np.empty(len(uniq), int)
    part_of_group[order] = part_of_rank
    part = part_of_group[codes]
    return [np.flatnonzero(part == k) for k in range(len(f))]


def group_kfold(groups: Sequence, k: int, *, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """K-fold cross-validation folds of whole groups, balanced in entry count.

    Groups are shuffled with ``seed`` then, largest first (stable), put into the fold that currently
    holds the fewest entries.

    Returns:
        ``k`` pairs ``(train_idx, test_idx)``; the test sets partition ``arange(N)``.
    """
    uniq, codes = _group_codes(groups)
    if k < 2:
        raise ValueError(f"k-fold needs k >= 2, got {k}")
    if k > len(uniq):
        raise ValueError(f"cannot make {k} folds from {len(uniq)} group(s)")
    sizes = np.bincount(codes, minlength=len(uniq))
    order = np.random.default_rng(seed).permutation(len(uniq))
    order = order[np.argsort(-sizes[order], kind="stable")]
    load = np.zeros(k, int)
    fold_of_group = np.empty(len(uniq), int)
    for g in order:
        f = int(np.argmin(load))
        fold_of_group[g] = f
        load[f] += sizes[g]
    fold = fold_of_group[codes]
    return [(np.flatnonzero(fold != i), np.flatnonzero(fold == i)) for i in range(k)]


def bootstrap_indices(groups: Sequence, n: int, *, key: jax.Array) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` group bootstrap resamples: groups drawn with replacement, all entries of a drawn group kept.

    Args:
        groups: ``[N]`` group labels.
        n: number of resamples (e.g. ensemble members).
        key: JAX PRNG key.

    Returns:
        ``n`` pairs ``(in_bag, out_of_bag)``: ``in_bag`` lists entry indices with multiplicity (a group
        drawn twice appears twice), ``out_of_bag`` the sorted entries of groups never drawn (a natural
        validation set for that member).
    """
    uniq, codes = _group_codes(groups)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    members_of = [np.flatnonzero(codes == g) for g in range(len(uniq))]
    out = []
    for i in range(n):
        seed = int(jax.random.randint(jax.random.fold_in(key, i), (), 0, np.iinfo(np.int32).max))
        draw = np.random.default_rng(seed).integers(0, len(uniq), len(uniq))
        in_bag = np.concatenate([members_of[g] for g in draw])
        oob = np.setdiff1d(np.arange(len(codes)), in_bag)
        out.append((in_bag, oob))
    return out


def check_disjoint(groups: Sequence, *parts: np.ndarray) -> None:
    """Raise ``ValueError`` if any group has entries in two of ``parts`` (index arrays)."""
    groups = np.asarray(groups)
    seen: dict = {}
    for k, idx in enumerate(parts):
        for g in np.unique(groups[np.asarray(idx, int)]):
            if g in seen and seen[g] != k:
                raise ValueError(f"group {g!r} appears in parts {seen[g]} and {k}: split leaks")
            seen[g] = k
