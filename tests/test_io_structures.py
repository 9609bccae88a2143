"""Structure readers on real files, the XANESNET xyz convention, periodic clusters and bad input."""

from __future__ import annotations

import warnings

import ase
import ase.io
import numpy as np
import pytest
from conftest import DATA

import jxas
from jxas.io.structures import StructureError, parse_comment, read_structure, write_xyz

S = DATA / "structures"


def test_xyz_real_complex_charge_and_spin():
    s = read_structure(S / "co_nh3_6.xyz")
    assert int(s.absorber) == 0
    assert int(s.numbers[0]) == 27
    assert s.numbers.shape == (25,)
    assert int(s.charge) == 3 and int(s.spin) == 0  # "charge 3 multiplicity 1"
    r = np.linalg.norm(np.asarray(s.positions - s.positions[0]), axis=1)
    n_n = np.sum((np.asarray(s.numbers) == 7) & (r < 2.2))
    assert n_n == 6  # six Co-N bonds


def test_xanesnet_comment_and_atomic_numbers(tmp_path):
    p = tmp_path / "mol.xyz"
    p.write_text("3\nq = -1 | S = 2\n26 0 0 0\n8 1.9 0 0\nO 0 2.0 0\n")
    s = read_structure(p)
    np.testing.assert_array_equal(np.asarray(s.numbers), [26, 8, 8])
    assert int(s.charge) == -1 and int(s.spin) == 2


def test_absorber_argument_and_cutoff(tmp_path):
    p = tmp_path / "mol.xyz"
    p.write_text("4\n\nO 0 0 0\nFe 2 0 0\nO 4 0 0\nO 12 0 0\n")
    s = read_structure(p, absorber=1, cutoff=5.0, element="Fe")
    assert s.numbers.shape == (3,)  # the far O is dropped
    assert int(s.numbers[int(s.absorber)]) == 26
    with pytest.raises(StructureError, match="expected Zn"):
        read_structure(p, absorber=1, element="Zn")


def test_parse_comment_forms():
    assert parse_comment("q = 1 | S = 0") == {"q": "1", "S": "0"}
    got = parse_comment('molecule "Fe(CO)5" dataset "x" charge -2 multiplicity 3')
    assert got["charge"] == "-2" and got["multiplicity"] == "3"


def test_extxyz_and_ase_atoms(tmp_path):
    atoms = ase.Atoms("FeO2", positions=[[0, 0, 0], [2.0, 0, 0], [0, 2.0, 0]])
    atoms.info["charge"] = 2
    p = tmp_path / "ext.xyz"
    ase.io.write(p, atoms, format="extxyz")
    s1 = read_structure(p)
    s2 = read_structure(atoms)
    np.testing.assert_allclose(np.asarray(s1.positions), np.asarray(s2.positions))
    assert int(s1.charge) == 2 and int(s2.charge) == 2


def test_cif_cluster_hematite():
    s = read_structure(S / "hematite.cif", cutoff=4.0)
    assert int(s.numbers[int(s.absorber)]) == 26
    pos, num, a = s.real()
    r = np.linalg.norm(pos - pos[a], axis=1)
    order = np.argsort(r)
    # hematite: Fe in a distorted octahedron of O at ~1.95 and ~2.12 Å (Finger & Hazen 1980)
    first = order[1:7]
    assert np.all(num[first] == 8)
    assert 1.9 < r[first].min() < 2.0 and 2.05 < r[first].max() < 2.15
    assert r.max() <= 4.0 + 1e-9


def test_poscar_cluster_periodic_images():
    p = next(S.glob("POSCAR_*"))
    s = read_structure(p, absorber=0, cutoff=3.5)
    pos, num, a = s.real()
    r = np.linalg.norm(pos - pos[a], axis=1)
    # rock-salt CuO with a = 4.233 Å: 6 O at a/2, 12 Cu at a/sqrt(2) = 2.993 Å
    assert np.sum(np.isclose(r, 2.11656, atol=1e-4) & (num == 8)) == 6
    assert np.sum(np.isclose(r, 2.11656 * np.sqrt(2), atol=1e-4) & (num == 29)) == 12


def test_write_read_round_trip(tmp_path):
    s = read_structure(S / "ferrocene.xyz")
    s = s.replace(absorber=np.int32(0), charge=np.int32(1), spin=np.int32(1))
    write_xyz(tmp_path / "out.xyz", s)
    t = read_structure(tmp_path / "out.xyz")
    np.testing.assert_allclose(np.asarray(t.positions), np.asarray(s.positions), atol=1e-7)
    assert int(t.charge) == 1 and int(t.spin) == 1


def test_public_api_reexports():
    assert jxas.read_structure is read_structure
    assert jxas.Structure is jxas.structure.Structure


@pytest.mark.parametrize(
    "content, match",
    [
        ("3\n\nFe 0 0 0\nO 1 0 0\n", "count line says 3 atoms but 2"),
        ("x\n\nFe 0 0 0\n", "malformed xyz count line"),
        ("2\n\nFe 0 0 0\nQq 1 0 0\n", "unknown element 'Qq'"),
        ("2\n\nFe 0 0 0\nO 1 nan 0\n", "NaN or infinite"),
        ("2\n\nFe 0 0 0\nO 1 abc 0\n", "non-numeric"),
        ("2\n\nFe 0 0 0\nO 1 0\n", "expected 'element x y z'"),
        ("1\n\nFe 0 0 0\n", "no neighbour"),
        ("2\n\nFe 0 0 0\n140 1 0 0\n", "not an element"),
        ("", "fewer than two lines"),
    ],
)
def test_bad_xyz(tmp_path, content, match):
    p = tmp_path / "bad.xyz"
    p.write_text(content)
    with pytest.raises(StructureError, match=match) as err:
        read_structure(p)
    assert str(p) in str(err.value)


def test_bad_inputs_other(tmp_path):
    with pytest.raises(StructureError, match="no such file"):
        read_structure(tmp_path / "missing.xyz")
    with pytest.raises(StructureError, match="not a regular file"):
        read_structure(tmp_path)
    p = tmp_path / "m.xyz"
    p.write_text("2\n\nFe 0 0 0\nO 1.9 0 0\n")
    with pytest.raises(StructureError, match="out of range"):
        read_structure(p, absorber=5)
    with pytest.raises(StructureError, match="no neighbour within the cutoff"):
        read_structure(p, cutoff=1.0)
    cif = tmp_path / "broken.cif"
    cif.write_text("data_x\n_cell_length_a abc\n")
    with pytest.raises(StructureError, match="cannot parse"):
        read_structure(cif)
    with pytest.raises(StructureError, match="out of range"):
        read_structure(S / "hematite.cif", absorber=10_000)
    with pytest.raises(StructureError, match="NaN"):
        read_structure(ase.Atoms("FeO", positions=[[0, 0, 0], [np.inf, 0, 0]]))


def test_cif_cubic_symbol_without_bar():
    # AMCSD writes Fm-3m as 'F m 3 m'; fcc Cu has 12 neighbours at a/sqrt(2)
    s = read_structure(S / "copper.cif", cutoff=2.8)
    pos, num, a = s.real()
    r = np.linalg.norm(pos - pos[a], axis=1)
    assert len(num) == 13 and np.all(num == 29)
    np.testing.assert_allclose(np.sort(r)[1:], np.sort(r)[1], rtol=1e-6)
    assert 2.5 < np.sort(r)[1] < 2.6


def test_cif_nonstandard_setting_uses_the_listed_operations():
    # goethite in Pbnm (a non-standard setting of Pnma that ASE's table lacks); the AMCSD file lists
    # its 8 operations. alpha-FeOOH: Z = 4 (H not in the file), FeO6 octahedra with Fe-O 1.95-2.10 Å
    s = read_structure(S / "goethite.cif", cutoff=2.3, element="Fe")
    pos, num, a = s.real()
    r = np.sort(np.linalg.norm(pos - pos[a], axis=1))[1:]
    assert list(num[1:]) == [8] * 6
    assert 1.9 < r.min() and r.max() < 2.15
    from jxas.io.structures import _read_cif

    with pytest.warns(UserWarning, match="symmetry operations"):
        cell = _read_cif(S / "goethite.cif")
    assert cell.get_chemical_formula() == "Fe4O8"


_PARTIAL_CIF = """data_test
_cell_length_a 4.0
_cell_length_b 4.0
_cell_length_c 4.0
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Fe1 Fe 0.0 0.0 0.0 1.0
O1 O 0.5 0.0 0.0 {occ_o}
Cl1 Cl 0.5 0.5 0.5 {occ_cl}
"""


@pytest.mark.parametrize(("occ_o", "occ_cl", "warns"), [(1.0, 0.5, True), (1.0, 1.0, False)])
def test_cif_partial_occupancy_is_flagged(tmp_path, occ_o, occ_cl, warns):
    path = tmp_path / "partial.cif"
    path.write_text(_PARTIAL_CIF.format(occ_o=occ_o, occ_cl=occ_cl))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = read_structure(path, cutoff=4.0, element="Fe")
    msgs = [str(w.message) for w in caught if "partially occupied" in str(w.message)]
    assert bool(msgs) == warns
    if warns:
        assert "Cl 0.5" in msgs[0] and "1 partially" in msgs[0]
    assert 17 in s.real()[1].tolist()  # the site is still read, as a full atom


def test_split_sites_are_flagged(tmp_path):
    # two half-occupied O positions 0.3 Å apart (a split site) read as two atoms too close together
    atoms = ase.Atoms("FeOO", positions=[[0, 0, 0], [2.0, 0, 0], [2.0, 0.3, 0]])
    with pytest.warns(UserWarning, match="1 pair"):
        read_structure(atoms)
