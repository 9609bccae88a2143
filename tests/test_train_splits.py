"""Group splits never leak a material/complex across parts, follow the requested sizes and are seeded."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jxas.train import bootstrap_indices, check_disjoint, group_kfold, group_split


def _groups(rng, n_groups=60):
    # uneven group sizes, as in OmniXAS (1-12 Cu sites per material)
    sizes = rng.integers(1, 13, n_groups)
    return np.repeat([f"mp-{i}" for i in range(n_groups)], sizes)


def test_group_split_partitions_without_leaks(rng):
    g = _groups(rng)
    parts = group_split(g, (0.8, 0.1, 0.1), seed=0)
    allidx = np.sort(np.concatenate(parts))
    np.testing.assert_array_equal(allidx, np.arange(len(g)))
    for a in range(3):
        for b in range(a + 1, 3):
            assert not set(g[parts[a]]) & set(g[parts[b]])
    check_disjoint(g, *parts)
    # sizes follow the entry fractions to within the largest group (12 entries)
    for p, f in zip(parts, (0.8, 0.1, 0.1), strict=True):
        assert abs(len(p) - f * len(g)) <= 12
    # seeded: same seed same split, other seed another split
    again = group_split(g, (0.8, 0.1, 0.1), seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    other = group_split(g, (0.8, 0.1, 0.1), seed=1)
    assert not np.array_equal(parts[2], other[2])


def test_group_split_order_independent(rng):
    g = _groups(rng)
    perm = rng.permutation(len(g))
    parts = group_split(g, (0.7, 0.3), seed=3)
    parts_p = group_split(g[perm], (0.7, 0.3), seed=3)
    # the same groups land in the same parts whatever the entry order
    assert set(g[parts[1]]) == set(g[perm][parts_p[1]])


def test_kfold_covers_every_entry_once_and_balances(rng):
    g = _groups(rng)
    folds = group_kfold(g, 5, seed=0)
    tests = np.concatenate([te for _, te in folds])
    np.testing.assert_array_equal(np.sort(tests), np.arange(len(g)))
    for tr, te in folds:
        assert not set(g[tr]) & set(g[te])
        assert len(tr) + len(te) == len(g)
    sizes = [len(te) for _, te in folds]
    assert max(sizes) - min(sizes) <= 12


def test_bootstrap_by_group(rng):
    g = _groups(rng)
    boots = bootstrap_indices(g, 3, key=jax.random.key(0))
    assert len(boots) == 3
    for in_bag, oob in boots:
        # a group is either drawn (all its entries, possibly repeated) or entirely out of bag
        assert not set(g[in_bag]) & set(g[oob])
        for grp in set(g[in_bag]):
            n_grp = np.sum(g == grp)
            assert np.sum(g[in_bag] == grp) % n_grp == 0
        assert len(oob) > 0  # P(every one of 60 groups drawn) is negligible
    assert not np.array_equal(boots[0][0], boots[1][0])
    again = bootstrap_indices(g, 3, key=jax.random.key(0))
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(boots, again, strict=True))


def test_bad_requests_raise():
    g = np.array(["a", "a", "b"])
    with pytest.raises(ValueError, match="cannot split 2 group"):
        group_split(g, (0.5, 0.3, 0.2), seed=0)
    with pytest.raises(ValueError, match="folds"):
        group_kfold(g, 3, seed=0)
    with pytest.raises(ValueError, match="leaks"):
        check_disjoint(g, np.array([0]), np.array([1, 2]))
    with pytest.raises(ValueError, match="empty"):
        group_split(np.array([]), (1.0,), seed=0)
