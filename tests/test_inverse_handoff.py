"""Hand-off from the inverse model to refinement: structure check and first-shell rescaling."""

from __future__ import annotations

import numpy as np
import pytest

from jxas.inverse.handoff import check_structure, ligand_donors, scale_first_shell
from jxas.inverse.invmodel import InverseResult
from jxas.inverse.targets import first_shell
from jxas.structure import Structure, pad

OCT = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)


def aqua(r_mo=2.10, r_oh=0.97, outer=True):
    """Fe(H2O)6 with an outer-sphere water (not bonded to any donor) at 4.5 Å."""
    pos, num = [np.zeros(3)], [26]
    for v in OCT:
        o = r_mo * v
        perp = np.roll(v, 1)
        pos += [o, o + r_oh * (0.6 * v + 0.8 * perp), o + r_oh * (0.6 * v - 0.8 * perp)]
        num += [8, 1, 1]
    if outer:
        w = np.array([2.6, 2.6, 2.6])
        pos += [w, w + [0.97, 0, 0], w + [0, 0.97, 0]]
        num += [8, 1, 1]
    return Structure.from_arrays(np.array(pos), num, charge=2, spin=4)


def result(r1, r1_sigma, cn, cn_sigma, comp):
    return InverseResult(r1=r1, r1_sigma=r1_sigma, cn=cn, cn_sigma=cn_sigma, composition=comp, ox=None,
                         ox_sigma=None, g2=np.zeros(50), g2_sigma=np.zeros(50), g2_r=np.zeros(50),
                         shells={}, members=np.zeros((1, 1)), warnings=[], model="test")


def test_check_flags_only_disagreements_beyond_k_sigma():
    s = aqua(2.10)
    good = check_structure(result(2.12, 0.02, 6.2, 0.3, {"O": (5.9, 0.3), "N": (0.1, 0.2), "other": (0.0, 0.1)}), s)
    assert good.ok and [r.name for r in good.rows] == ["first-shell distance/A", "coordination number",
                                                       "first-shell O"]
    assert abs(good.rows[0].z - (2.10 - 2.12) / 0.02) < 1e-9
    bad = check_structure(result(2.00, 0.02, 4.1, 0.4, {"O": (2.0, 0.4), "N": (2.0, 0.4), "other": (0, 0.1)}), s)
    assert not bad.ok
    names = {r.name for r in bad.disagreements}
    assert names == {"first-shell distance/A", "coordination number", "first-shell O", "first-shell N"}
    assert "disagrees" in bad.summary() and bad.to_dict()["ok"] is False
    # the threshold decides: the distance is 5 sigma off
    assert check_structure(result(2.00, 0.02, 6.0, 0.3, {"O": (6.0, 0.3)}), s, k=5.1).ok
    assert not check_structure(result(2.00, 0.02, 6.0, 0.3, {"O": (6.0, 0.3)}), s, k=4.9).ok
    with pytest.raises(ValueError, match="k must be positive"):
        check_structure(result(2.0, 0.1, 6, 1, {}), s, k=0)


def test_check_counts_unlisted_donors_as_other():
    s = aqua(2.10, outer=False)
    num = np.asarray(s.numbers).copy()
    num[1] = 17  # one O -> Cl: not among the model's donors
    s = s.replace(numbers=num)
    chk = check_structure(result(2.1, 0.05, 6, 0.3, {"O": (6.0, 0.3), "other": (0.0, 0.1)}), s)
    rows = {r.name: r for r in chk.rows}
    assert rows["first-shell O"].structure == 5 and rows["first-shell other"].structure == 1
    assert not rows["first-shell other"].agrees


def test_scale_first_shell_moves_ligands_rigidly():
    s = pad(aqua(2.10), 40)  # padding must be ignored
    new = scale_first_shell(s, 2.00)
    _, cn, r1 = first_shell(new)
    assert float(cn) == 6 and abs(float(r1) - 2.00) < 1e-12
    p0, p1 = np.asarray(s.positions), np.asarray(new.positions)
    # every water keeps its shape: O-H vectors unchanged
    for k in range(6):
        o, h1, h2 = 1 + 3 * k, 2 + 3 * k, 3 + 3 * k
        np.testing.assert_allclose(p1[h1] - p1[o], p0[h1] - p0[o], atol=1e-12)
        np.testing.assert_allclose(p1[h2] - p1[o], p0[h2] - p0[o], atol=1e-12)
    # absorber, outer-sphere water and padding stay where they were
    np.testing.assert_array_equal(p1[0], p0[0])
    np.testing.assert_array_equal(p1[19:], p0[19:])
    # a shell with a spread keeps its relative spread
    pos = p0.copy()
    pos[1] *= 2.2 / 2.1
    s2 = s.replace(positions=pos)
    r_before = np.linalg.norm(pos[[1, 4]], axis=1)
    new2 = scale_first_shell(s2, 2.0)
    r_after = np.linalg.norm(np.asarray(new2.positions)[[1, 4]], axis=1)
    np.testing.assert_allclose(r_after / r_before, r_after[0] / r_before[0], rtol=1e-12)
    for bad in (0.0, -1.0, np.nan):
        with pytest.raises(ValueError, match="positive"):
            scale_first_shell(s, bad)


def test_ligand_donors_chelate_and_fragments():
    # ethylenediamine-like chelate: N1-C-C-N2, each C owned by the donor it is nearer to in bonds
    pos = np.array([[0, 0, 0], [2.0, 1.2, 0], [2.0, -1.2, 0], [3.0, 0.75, 0], [3.0, -0.75, 0], [6.0, 6.0, 6.0]])
    num = np.array([26, 7, 7, 6, 6, 8])
    shell = np.array([False, True, True, False, False, False])
    owner = ligand_donors(pos, num, 0, shell)
    np.testing.assert_array_equal(owner, [-1, 1, 2, 1, 2, -1])
