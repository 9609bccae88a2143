"""OmniXAS Cu K-edge import: clusters equal read_structure's, spectra resampled faithfully, labels kept.

Fixture: tests/data/omnixas_cu, a 9-site subset of the OmniXAS export (BSD-3, see its LICENSE/SOURCE.txt).
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from ase.io import read

import jxas
from jxas.data.dataset import Dataset
from jxas.data.omnixas import import_omnixas, periodic_cluster

SRC = Path(__file__).parent / "data" / "omnixas_cu"
COMMITTED = Path(__file__).resolve().parents[1] / "datasets" / "cu-k-omnixas-feff9.h5"


@pytest.fixture(scope="module")
def source():
    with np.load(SRC / "cu_k_feff_xanes.npz") as z:
        data = {k: z[k] for k in z.files}
    return data, json.loads((SRC / "poscars.json").read_text())


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    out = tmp_path_factory.mktemp("omx") / "cu.h5"
    return import_omnixas(SRC, out, cutoff=6.0, progress=False)


def _atoms(poscars, mp_id):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read(io.StringIO(poscars[mp_id]), format="vasp")


def _canonical(pos, num):
    """Cluster as a sorted list of (Z, x, y, z) rows, to compare as sets."""
    rows = np.column_stack([num, np.round(pos, 5)])
    return rows[np.lexsort(rows.T[::-1])]


def test_cluster_equals_read_structure(source):
    """The fast per-site cut is the same cluster as jxas.read_structure's neighbour-list cut."""
    data, poscars = source
    for mp_id, site in zip(data["material_id"], data["site_index"], strict=True):
        atoms = _atoms(poscars, str(mp_id))
        for cutoff in (4.0, 7.0):
            ours = periodic_cluster(atoms, int(site), cutoff)
            ref = jxas.read_structure(atoms, absorber=int(site), cutoff=cutoff)
            pos_r, num_r, a_r = ref.real()
            pos_o, num_o, a_o = ours.real()
            assert a_o == 0 and int(num_o[0]) == 29
            pos_r = pos_r - pos_r[a_r]
            np.testing.assert_allclose(_canonical(pos_o, num_o), _canonical(pos_r, num_r), atol=2e-5)
            d = np.linalg.norm(pos_o, axis=1)
            assert np.all(np.diff(d) >= -1e-5) and d.max() < cutoff  # by distance (shells to 1e-6 Å), inside


def test_import_contents(imported, source):
    data, _ = source
    ds = imported
    n = len(data["site_index"])
    assert len(ds) == n and ds.element == "Cu" and ds.edge == "K"
    assert ds.recipe["version"] == "9.9.1" and ds.recipe["corehole"] == "RPA"
    np.testing.assert_allclose(ds.energy, 8990.0 + 0.25 * np.arange(521))
    np.testing.assert_array_equal(ds.groups, data["material_id"].astype(str))
    np.testing.assert_array_equal(ds.splits, data["split"].astype(str))
    assert len(set(ds.keys)) == n
    mu = ds.spectra()
    s = ds.structures()
    for i in range(n):
        npts = int(data["npts"][i])
        e_raw, mu_raw = data["energy"][i][:npts].astype(float), data["mu"][i][:npts].astype(float)
        raw_e, raw_mu = ds.raw(i)
        np.testing.assert_array_equal(raw_e, e_raw)
        np.testing.assert_array_equal(raw_mu, mu_raw)
        # resampled by linear interpolation of the source grid (float32 storage)
        np.testing.assert_allclose(mu[i], np.interp(ds.energy, e_raw, mu_raw), rtol=1e-6)
        # sanity of the physics: FEFF-normalised mu is small before the edge and ~1 far above it
        assert raw_mu[0] < 0.3  # the raw grid starts below the edge (the common grid starts near it)
        assert 0.7 < mu[i][ds.energy > 9080].mean() < 1.3
        m = np.asarray(s.mask[i])
        r = np.linalg.norm(np.asarray(s.positions[i])[m], axis=1)
        assert int(s.numbers[i, 0]) == 29 and int(s.absorber[i]) == 0
        assert r.max() < 6.0 and np.sort(r)[1] > 1.7  # no Cu-X bond shorter than 1.7 Å in these oxides/salts
        prov = ds.provenance(i)
        assert prov["material_id"] == str(data["material_id"][i]) and prov["site_index"] == int(data["site_index"][i])
        assert prov["input_hash"].startswith("sha256:")
    assert imported.path.with_suffix(".md").exists()


def test_bad_source_leaves_nothing(tmp_path, source):
    with pytest.raises(FileNotFoundError, match="cu_k_feff_xanes.npz"):
        import_omnixas(tmp_path, tmp_path / "x.h5", progress=False)
    with pytest.raises(ValueError, match="outside the site's range"):
        import_omnixas(SRC, tmp_path / "y.h5", grid=(8970.0, 9120.0, 0.5), progress=False)
    assert not list(tmp_path.glob("*.h5*"))
    _, poscars = source
    with pytest.raises(ValueError, match="out of range"):
        periodic_cluster(_atoms(poscars, next(iter(poscars))), 999, 6.0)


@pytest.mark.skipif(not COMMITTED.exists(), reason="committed OmniXAS dataset not present")
def test_committed_dataset_loads():
    ds = Dataset(COMMITTED)
    info = ds.info()
    assert info["n_entries"] == 4831 and info["n_failures"] == 0
    assert info["splits"] == {"train": 3340, "val": 416, "unassigned": 1075}
    assert info["n_groups"] == 2195
    mu = ds.spectra([0, 100, 4830])
    assert mu.shape == (3, 521) and np.all(np.isfinite(mu))
