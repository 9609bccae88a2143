"""Crystalline sites as campaign entries: distinct sites, deterministic specs, perturbations, a real
FEFF10 run on a tiny bcc-iron cluster through the generation runner, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DATA

import jxas
from jxas.data.build.crystal import crystal_sites, crystal_specs, perturb_cluster
from jxas.physics import first_shell

S = DATA / "structures"


def test_distinct_sites():
    assert crystal_sites(S / "hematite.cif", "Fe") == [0]  # one Fe site in corundum-type Fe2O3
    assert len(crystal_sites(S / "magnetite.cif", "Fe")) == 2  # tetrahedral A and octahedral B sites
    assert len(crystal_sites(S / "goethite.cif", "Fe")) == 1  # non-standard setting, listed operations


def test_specs_are_deterministic_and_grouped_by_material():
    a = crystal_specs("Fe", [S / "magnetite.cif", S / "hematite.cif"], variants=3, seed=1,
                      oxidation_states={"hematite": 3})
    b = crystal_specs("fe", [S / "magnetite.cif", S / "hematite.cif"], variants=3, seed=1,
                      oxidation_states={"hematite": 3})
    assert a == b and len(a) == 3 * (2 + 1)
    assert len({s["key"] for s in a}) == len(a)
    assert {s["group"] for s in a} == {"magnetite", "hematite"}
    assert {s["oxidation_state"] for s in a if s["group"] == "hematite"} == {3}
    assert {s["oxidation_state"] for s in a if s["group"] == "magnetite"} == {-99}
    c = crystal_specs("Fe", [S / "magnetite.cif", S / "hematite.cif"], variants=3, seed=2)
    assert {s["key"] for s in c}.isdisjoint({s["key"] for s in a})


def test_perturbation_within_bounds():
    s = jxas.read_structure(S / "hematite.cif", cutoff=5.0, element="Fe")
    p0 = np.asarray(s.positions, float) - np.asarray(s.positions, float)[0]
    shell = first_shell(s)
    t, rep = perturb_cluster(s, seed=3, scale_range=(0.97, 1.03), stretch=0.1, thermal=0.0)
    p = np.asarray(t.positions, float)
    assert 0.97 <= rep["scale"] <= 1.03
    r0, r = np.linalg.norm(p0[shell], axis=1), np.linalg.norm(p[shell], axis=1)
    np.testing.assert_allclose(r - rep["scale"] * r0, [rep["bond_changes"][int(j)] for j in shell], atol=1e-4)
    assert np.all(np.abs(r - rep["scale"] * r0) <= 0.1 + 1e-6)
    others = np.setdiff1d(np.arange(1, int(np.sum(s.mask))), shell)
    np.testing.assert_allclose(p[others], rep["scale"] * p0[others], atol=1e-4)  # thermal = 0: pure scale
    t2, _ = perturb_cluster(s, seed=3, scale_range=(0.97, 1.03), stretch=0.1, thermal=0.0)
    np.testing.assert_array_equal(np.asarray(t2.positions), p)


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="no Ni site"):
        crystal_sites(S / "hematite.cif", "Ni")
    with pytest.raises(ValueError, match="no such file"):
        crystal_specs("Fe", [tmp_path / "missing.cif"])
    with pytest.raises(ValueError, match="variants"):
        crystal_specs("Fe", [S / "hematite.cif"], variants=0)
    with pytest.raises(ValueError, match="not a periodic"):
        crystal_sites(S / "fe_co5.xyz", "Fe")


@pytest.mark.feff
def test_generate_crystal_entries_with_real_feff(tmp_path):
    from jxas.data import Dataset, generate
    from jxas.data.build.crystal import make_crystal_entry

    cif = tmp_path / "hematite.cif"
    cif.write_bytes((S / "hematite.cif").read_bytes())
    # the FeO6 octahedron of hematite (7 atoms: seconds of FEFF), undistorted and compressed 3-4 %
    specs = crystal_specs("Fe", [cif], variants=2, cutoff=2.2, scale_range=(0.96, 0.97), stretch=0.05)
    rep = generate(tmp_path / "fe.h5", element="Fe", specs=specs, workers=1, progress=False, card=False)
    assert rep.n_new == 2 and rep.n_failed == 0
    ds = Dataset(tmp_path / "fe.h5")
    assert set(ds.groups.tolist()) == {"hematite"}
    st = ds.structures(np.arange(2))
    r = [np.sort(np.linalg.norm(np.asarray(st.positions[i])[1:7], axis=1)) for i in range(2)]
    scales = [ds.provenance(i)["perturbation"]["scale"] for i in range(2)]
    flat = scales.index(1.0)
    np.testing.assert_allclose(r[flat], [1.945] * 3 + [2.116] * 3, atol=0.01)  # Fe-O in hematite
    assert np.all(np.abs(r[1 - flat] - scales[1 - flat] * r[flat]) <= 0.05 + 1e-4)
    mu = np.asarray(ds.spectra(np.arange(2)))
    e = np.asarray(ds.energy)
    e0 = e[np.argmax(np.gradient(mu[flat], e))]
    assert 7100 < e0 < 7135  # Fe K edge
    assert abs(np.mean(mu[flat][e > e0 + 40]) - 1.0) < 0.3  # edge-step normalised
    assert not np.allclose(mu[0], mu[1], atol=1e-3)  # the compression changes the spectrum
    # the structure file changed after the specs were made: a clear error, not a wrong entry
    cif.write_text(cif.read_text() + "\n")
    with pytest.raises(ValueError, match="changed"):
        make_crystal_entry(specs[0])


def test_cli_crystals_card_and_bad_arguments(tmp_path, capsys):
    from jxas.cli import main
    from jxas.data import Dataset

    out = tmp_path / "fe-crystals.h5"
    code = main(["generate", "--element", "Fe", "--crystals", f"{S / 'hematite.cif'}:3", f"{S / 'magnetite.cif'}",
                 "--variants", "2", "--out", str(out), "--max-tasks", "0", "--no-progress"])
    assert code == 0
    assert len(Dataset(out)) == 0
    card = out.with_suffix(".md").read_text()
    assert "crystal_specs" in card and "--crystals" in card and "hematite.cif:3" in card
    assert main(["generate", "--element", "Fe", "--out", str(out)]) != 0  # neither --n nor --crystals
    assert "either --n" in capsys.readouterr().err
    assert main(["generate", "--element", "Fe", "--crystals", f"{S / 'hematite.cif'}:x", "--out", str(out)]) != 0
    assert "FILE:OX" in capsys.readouterr().err


def test_split_sites_are_refused():
    from jxas.data.build.crystal import _check_distances
    from jxas.data.build.place import BuildError
    from jxas.structure import Structure

    ok = Structure.from_arrays(np.array([[0.0, 0, 0], [2.0, 0, 0], [0, 2.0, 0]]), np.array([26, 8, 8]))
    _check_distances(ok, "ok")
    split = Structure.from_arrays(np.array([[0.0, 0, 0], [2.0, 0, 0], [2.0, 0.3, 0]]), np.array([26, 8, 8]))
    with pytest.raises(BuildError, match="0.30 Å apart"):
        _check_distances(split, "split.cif")
