"""jxas.data.Dataset: HDF5 round trip, batching, validation, crash consistency, data card."""

from __future__ import annotations

import json

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jxas.data.dataset import UNKNOWN_OXIDATION_STATE, Dataset, write_data_card
from jxas.structure import Structure, absorber_distances

GRID = np.linspace(7100.0, 7200.0, 41)


def _entry(rng, i, n_atoms, *, element_z=26, absorber=0):
    pos = rng.normal(scale=2.0, size=(n_atoms, 3))
    num = rng.choice([1, 6, 7, 8, 17], size=n_atoms)
    num[absorber] = element_z
    s = Structure.from_arrays(pos, num, absorber=absorber, charge=int(i % 3) - 1, spin=int(i % 5))
    raw_e = np.sort(rng.uniform(7090, 7210, size=10 + i))
    return dict(
        structure=s,
        mu=rng.uniform(0, 2, size=GRID.size),
        raw_energy=raw_e,
        raw_mu=rng.uniform(0, 2, size=raw_e.size),
        key=f"k{i:03d}",
        group=f"g{i // 2}",
        split=["train", "val", ""][i % 3],
        oxidation_state=[2, 3, UNKNOWN_OXIDATION_STATE][i % 3],
        provenance={"builder": {"i": i, "cn": np.int64(6)}, "feff_version": "10.0", "t": np.float32(1.5)},
    )


@pytest.fixture
def entries(rng):
    return [_entry(rng, i, n, absorber=i % 2) for i, n in enumerate([3, 7, 5, 12, 4, 9])]


def _create(tmp_path, n_max=8):
    return Dataset.create(tmp_path / "fe.h5", element="Fe", edge="K", energy=GRID, recipe={"name": "test"}, n_max=n_max)


def test_round_trip(tmp_path, entries):
    ds = _create(tmp_path)
    assert len(ds) == 0
    assert ds.append(entries[:2]) == 2
    assert ds.append(entries[2:]) == 4
    ds = Dataset(tmp_path / "fe.h5")  # fresh reader
    assert len(ds) == 6 and ds.element == "Fe" and ds.edge == "K" and ds.recipe == {"name": "test"}
    assert ds.n_max == 12  # grew from 8 when the 12-atom entry arrived
    np.testing.assert_array_equal(ds.energy, GRID)
    np.testing.assert_array_equal(ds.keys, [e["key"] for e in entries])
    np.testing.assert_array_equal(ds.groups, [e["group"] for e in entries])
    np.testing.assert_array_equal(ds.splits, [e["split"] for e in entries])
    np.testing.assert_array_equal(ds.oxidation_states, [e["oxidation_state"] for e in entries])
    mu = ds.spectra()
    assert mu.shape == (6, GRID.size) and mu.dtype == np.float32
    np.testing.assert_allclose(mu, np.stack([e["mu"] for e in entries]), rtol=1e-6)
    batch = ds.structures()
    assert batch.positions.shape == (6, 12, 3) and batch.numbers.shape == (6, 12)
    for i, e in enumerate(entries):
        pos, num, absorber = e["structure"].real()
        n = num.size
        np.testing.assert_allclose(np.asarray(batch.positions[i, :n]), pos, atol=1e-6)
        np.testing.assert_array_equal(np.asarray(batch.numbers[i, :n]), num)
        assert bool(batch.mask[i, :n].all()) and not bool(batch.mask[i, n:].any())
        assert int(batch.absorber[i]) == absorber
        assert int(batch.charge[i]) == int(e["structure"].charge) and int(batch.spin[i]) == int(e["structure"].spin)
        raw_e, raw_mu = ds.raw(i)
        np.testing.assert_array_equal(raw_e, e["raw_energy"])
        np.testing.assert_array_equal(raw_mu, e["raw_mu"])
        assert ds.provenance(i) == {"builder": {"i": i, "cn": 6}, "feff_version": "10.0", "t": 1.5}
    # indexing: order, repeats and negative indices are honoured
    sel = ds.structures([5, 0, 5, -1])
    np.testing.assert_array_equal(np.asarray(sel.numbers), np.asarray(batch.numbers)[[5, 0, 5, 5]])
    np.testing.assert_array_equal(ds.spectra([3, 1]), mu[[3, 1]])


def test_padded_batch_works_under_vmap(tmp_path, entries):
    """Batched equals looped: a single-structure function vmapped over the stored batch."""
    ds = _create(tmp_path)
    ds.append(entries)
    batch = ds.structures()

    def mean_neighbour_distance(s):
        r = absorber_distances(s)
        w = s.mask & (r > 0)
        return jnp.sum(jnp.where(w, r, 0.0)) / jnp.sum(w)

    batched = jax.vmap(mean_neighbour_distance)(batch)
    for i, e in enumerate(entries):
        pos, _, a = e["structure"].real()
        r = np.linalg.norm(pos - pos[a], axis=1)
        np.testing.assert_allclose(float(batched[i]), r[r > 0].mean(), rtol=1e-6)


def test_batches_cover_everything_once_and_shuffle_is_keyed(tmp_path, entries):
    ds = _create(tmp_path)
    ds.append(entries)
    key = jax.random.key(0)
    seen = [np.asarray(mu) for _, mu in ds.batches(4, key=key)]
    assert [m.shape[0] for m in seen] == [4, 2]
    order = np.concatenate(seen)
    ref = ds.spectra()
    # each entry appears exactly once
    match = [int(np.flatnonzero((ref == row).all(axis=1))[0]) for row in order]
    assert sorted(match) == list(range(6))
    again = np.concatenate([np.asarray(mu) for _, mu in ds.batches(4, key=key)])
    np.testing.assert_array_equal(order, again)  # same key, same order
    other = np.concatenate([np.asarray(mu) for _, mu in ds.batches(4, key=jax.random.key(1))])
    assert not np.array_equal(order, other)
    assert [mu.shape[0] for _, mu in ds.batches(4, key=key, drop_remainder=True)] == [4]
    # restricted to a split, unshuffled, in index order
    train = np.flatnonzero(ds.splits == "train")
    ((s, mu),) = list(ds.batches(10, idx=train, shuffle=False))
    np.testing.assert_array_equal(mu, ref[train])
    with pytest.raises(ValueError, match="PRNG key"):
        next(ds.batches(2))


def test_failures_and_info(tmp_path, entries):
    ds = _create(tmp_path)
    ds.append(entries[:3])
    ds.append_failure("bad1", "FEFF error: potentials did not converge\nmore text", {"spec": {"cn": 4}})
    ds.append_failure("bad2", "timeout after 60 s", None)
    assert [f["key"] for f in ds.failures] == ["bad1", "bad2"]
    assert ds.failures[0]["provenance"] == {"spec": {"cn": 4}}
    info = ds.info()
    assert info["n_entries"] == 3 and info["n_failures"] == 2
    assert info["failure_reasons"] == {"FEFF error: potentials did not converge": 1, "timeout after 60 s": 1}
    assert info["counts"] == {"Fe-K": 3} and info["splits"] == {"train": 1, "val": 1, "": 1}
    assert info["atoms_per_entry"] == {"min": 3, "median": 5.0, "max": 7}
    card = write_data_card(ds, sections={"How it was built": "by a test"})
    text = card.read_text()
    assert card == tmp_path / "fe.md"
    assert "entries: 3" in text and "failures recorded: 2" in text and "by a test" in text


def _assert_unchanged(path, n):
    ds = Dataset(path)
    assert len(ds) == n
    ds.spectra()  # still readable


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda e: e.update(mu=np.full(GRID.size, np.nan)), "NaN"),
        (lambda e: e.update(mu=np.ones(5)), "shape"),
        (lambda e: e.update(key=""), "key"),
        (
            lambda e: e.update(structure=Structure.from_arrays([[0.0, 0, 0], [2, 0, 0]], [29, 8])),
            "absorber is Cu",
        ),
        (
            lambda e: e.update(
                structure=e["structure"].replace(positions=e["structure"].positions.at[1, 0].set(jnp.inf))
            ),
            "infinite",
        ),
        (
            lambda e: e.update(structure=Structure.from_arrays([[0.0, 0, 0]], [26], mask=[False])),
            "padding|empty",
        ),
        (lambda e: e.update(provenance={"f": object()}), "JSON"),
        (lambda e: e.update(raw_mu=np.ones(3)), "differ"),
        (lambda e: e.pop("mu"), "missing"),
        (lambda e: e.update(colour="red"), "unknown field"),
    ],
)
def test_bad_entries_raise_and_write_nothing(tmp_path, entries, mutate, match):
    ds = _create(tmp_path)
    ds.append(entries[:1])
    bad = dict(entries[3])
    mutate(bad)
    with pytest.raises((ValueError, TypeError), match=match):
        ds.append([entries[1], bad])  # the good entry before it must not be written either
    _assert_unchanged(ds.path, 1)


def test_duplicates(tmp_path, entries):
    ds = _create(tmp_path)
    ds.append(entries[:2])
    with pytest.raises(ValueError, match="duplicate key 'k001'"):
        ds.append([entries[2], entries[1]])
    _assert_unchanged(ds.path, 2)
    with pytest.raises(ValueError, match="duplicate key 'k002'"):
        ds.append([entries[2], entries[2]])
    assert ds.append(entries[1:4], on_duplicate="skip") == 2
    assert list(ds.keys) == ["k000", "k001", "k002", "k003"]


def test_interrupted_append_is_invisible_and_repaired(tmp_path, entries):
    """A writer killed mid-append leaves data columns longer than `key` (written last): ignored, repaired."""
    ds = _create(tmp_path)
    ds.append(entries[:2])
    with h5py.File(ds.path, "a") as f:  # simulate a kill after the data columns grew but before `key`
        for name in ("positions", "numbers", "mask", "mu", "group", "split", "oxidation_state"):
            f[name].resize(5, axis=0)
        f["mu"][2:5] = 99.0
    ds = Dataset(ds.path)
    assert len(ds) == 2 and ds.spectra().shape == (2, GRID.size) and len(ds.groups) == 2
    ds.append(entries[2:4])
    ds = Dataset(ds.path)
    assert len(ds) == 4
    np.testing.assert_allclose(ds.spectra()[2:], np.stack([entries[2]["mu"], entries[3]["mu"]]), rtol=1e-6)


def test_bad_files_and_create_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        Dataset(tmp_path / "nope.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(ValueError, match="not a jxas dataset"):
        Dataset(tmp_path / "other.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(OSError, match="text.h5"):
        Dataset(tmp_path / "text.h5")
    _create(tmp_path)
    with pytest.raises(FileExistsError, match="already exists"):
        _create(tmp_path)
    with pytest.raises(ValueError, match="unknown element"):
        Dataset.create(tmp_path / "a.h5", element="Xx", energy=GRID, recipe={})
    with pytest.raises(ValueError, match="strictly increasing"):
        Dataset.create(tmp_path / "b.h5", element="Fe", energy=GRID[::-1], recipe={})
    assert not (tmp_path / "a.h5").exists() and not (tmp_path / "b.h5").exists()


def test_cli_dataset_info(tmp_path, entries, capsys):
    from jxas.cli import main

    ds = _create(tmp_path)
    ds.append(entries[:4])
    ds.append_failure("bad1", "timeout: task ran 901 s > 900 s", None)
    assert main(["dataset", "info", str(ds.path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_entries"] == 4 and info["n_failures"] == 1 and info["counts"] == {"Fe-K": 4}
    assert main(["dataset", "info", str(ds.path), str(ds.path)]) == 0
    text = capsys.readouterr().out
    assert "entries      : 4 in 2 groups" in text and "1 x timeout" in text
    assert "Fe-K test" in text and "8 entries" in text  # totals over the two paths
    assert main(["dataset", "info", str(tmp_path / "missing.h5")]) == 1
    assert "missing.h5: no such dataset file" in capsys.readouterr().err


def test_scattered_reads_equal_cached_reads(tmp_path, rng):
    ds = _create(tmp_path)
    ds.append([_entry(rng, i, 4 + i % 5) for i in range(12)])
    fresh = Dataset(ds.path)  # nothing cached: h5py point selection
    idx = [9, 2, 9]
    s_fresh, mu_fresh = fresh.structures(idx), fresh.spectra(idx)
    assert not fresh._cache
    cached = Dataset(ds.path).load()
    s_cached, mu_cached = cached.structures(idx), cached.spectra(idx)
    np.testing.assert_array_equal(mu_fresh, mu_cached)
    for a, b in zip(jax.tree.leaves(s_fresh), jax.tree.leaves(s_cached), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    ds.append([_entry(rng, 12, 3)])
    cached.refresh()  # an append elsewhere: the cache is dropped, the new entry visible
    assert len(cached) == 13 and cached.spectra().shape[0] == 13


def test_merge_datasets(tmp_path, entries, rng, capsys):
    from jxas.cli import main
    from jxas.data import merge_datasets

    a = Dataset.create(tmp_path / "a.h5", element="Fe", energy=GRID, recipe={"name": "test"}, n_max=8)
    a.append(entries[:4])
    a.append_failure("bad-a", "FeffRunError: boom", {"spec": 1})
    big = _entry(rng, 40, 20)  # more atoms than a's n_max: the merged file pads to the largest
    b = Dataset.create(tmp_path / "b.h5", element="Fe", energy=GRID, recipe={"name": "test"}, n_max=20)
    b.append(entries[4:] + [big])
    m = merge_datasets([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "m.h5")
    assert len(m) == 7 and m.n_max >= 20
    assert m.keys.tolist() == [e["key"] for e in entries] + [big["key"]]
    assert m.failure_keys.tolist() == ["bad-a"]
    want = entries + [big]
    np.testing.assert_allclose(m.spectra(), np.stack([e["mu"] for e in want]), rtol=1e-6)
    for i, e in enumerate(want):
        n = int(np.sum(np.asarray(e["structure"].mask)))
        st = m.structures([i])
        np.testing.assert_allclose(np.asarray(st.positions)[0, :n], np.asarray(e["structure"].positions), atol=1e-5)
        assert int(st.absorber[0]) == int(e["structure"].absorber)
        np.testing.assert_allclose(m.raw(i)[1], e["raw_mu"])
        assert m.groups[i] == e["group"] and m.splits[i] == e["split"]
        assert m.oxidation_states[i] == e["oxidation_state"]
        assert m.provenance(i)["merged_from"] == ("a.h5" if i < 4 else "b.h5")
    assert "a.h5" in (tmp_path / "m.md").read_text()
    # refusals: existing output, duplicate keys, another recipe or element, too few inputs
    with pytest.raises(FileExistsError):
        merge_datasets([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "m.h5")
    with pytest.raises(ValueError, match="more than one input"):
        merge_datasets([tmp_path / "a.h5", tmp_path / "m.h5"], tmp_path / "m2.h5")
    c = Dataset.create(tmp_path / "c.h5", element="Fe", energy=GRID, recipe={"name": "other"}, n_max=8)
    c.append([_entry(rng, 50, 4)])
    with pytest.raises(ValueError, match="recipes"):
        merge_datasets([tmp_path / "a.h5", tmp_path / "c.h5"], tmp_path / "m3.h5")
    with pytest.raises(ValueError, match="at least two"):
        merge_datasets([tmp_path / "a.h5"], tmp_path / "m4.h5")
    assert not (tmp_path / "m3.h5").exists() and not list(tmp_path.glob("*.creating"))
    # the CLI
    args = ["dataset", "merge", str(tmp_path / "a.h5"), str(tmp_path / "b.h5"), "-o", str(tmp_path / "m5.h5")]
    assert main(args) == 0
    assert "7 entries" in capsys.readouterr().out
