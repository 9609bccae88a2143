"""FEFF10 simulation: a real run on a tiny cluster, the recipe, timeouts and bad input.

The real runs use [Fe(H2O)6]2+ built by hand (19 atoms, Fe-O 2.12 Å), a few seconds of FEFF10.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from jxas.data.feff import FeffRecipe, FeffRunError, FeffTimeout, feff_input, simulate_feff
from jxas.spectrum.grids import edge_energy, standard_grid
from jxas.structure import Structure, pad


def fe_hexaaqua(d_feo: float = 2.12) -> Structure:
    """[Fe(H2O)6]2+: octahedral Fe-O, water H atoms tilted away from the metal (O-H 0.97 Å)."""
    pos, num = [[0.0, 0.0, 0.0]], [26]
    for v in np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float):
        o = v * d_feo
        perp = np.cross(v, [0.3, 0.5, 0.8])
        perp /= np.linalg.norm(perp)
        pos.append(o)
        num.append(8)
        for s in (1, -1):
            pos.append(o + 0.97 * (v * np.cos(np.deg2rad(52)) + s * perp * np.sin(np.deg2rad(52))))
            num.append(1)
    return Structure.from_arrays(np.array(pos), num, absorber=0, charge=2, spin=4)


@pytest.fixture(scope="module")
def fe_spectrum():
    return simulate_feff(fe_hexaaqua())


def _running_in(workdir: Path) -> list[int]:
    """PIDs of processes whose command line or cwd mentions ``workdir``."""
    pids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(p / "cwd")
        except OSError:
            continue
        if str(workdir) in cmd or cwd.startswith(str(workdir)):
            pids.append(int(p.name))
    return pids


@pytest.mark.feff
def test_real_feff_edge_position_and_shape(fe_spectrum):
    sp = fe_spectrum
    e, mu = np.asarray(sp.energy), np.asarray(sp.mu)
    np.testing.assert_array_equal(e, standard_grid("Fe"))
    assert np.all(np.isfinite(mu))
    e_tab = edge_energy("Fe")
    # FEFF's own edge (Fermi level) and the steepest rise both within 10 eV of the tabulated edge
    assert abs(sp.meta["e_fermi"] - e_tab) < 10.0
    assert abs(e[np.argmax(np.gradient(mu, e))] - e_tab) < 10.0
    # FEFF normalises to the edge step: ~0 well below the edge, ~1 on average far above it
    assert np.max(np.abs(mu[e < e_tab - 12])) < 0.1
    assert 0.8 < np.mean(mu[e > e_tab + 40]) < 1.25
    # an octahedral O6 first shell gives a white line above the step
    assert mu.max() > 1.2


@pytest.mark.feff
def test_real_feff_meta_and_raw_grid(fe_spectrum):
    m = fe_spectrum.meta
    for k in ("raw_energy", "raw_mu", "feff_version", "recipe", "input_hash", "seconds", "e_fermi"):
        assert k in m
    raw_e = np.asarray(m["raw_energy"])
    assert np.all(np.diff(raw_e) > 0)
    grid = standard_grid("Fe")
    assert raw_e[0] <= grid[0] and raw_e[-1] >= grid[-1]  # FEFF covers the grid: nothing extrapolated
    # the resampled spectrum passes through FEFF's own points
    inside = (raw_e > grid[0]) & (raw_e < grid[-1])
    np.testing.assert_allclose(np.interp(raw_e[inside], grid, fe_spectrum.mu), np.asarray(m["raw_mu"])[inside],
                               atol=0.05)
    assert m["feff_version"].startswith("FEFF 10")
    assert m["recipe"]["name"] == "feff10-default"
    assert m["n_atoms"] == 19
    assert m["seconds"] > 0


def test_feff_input_potentials_and_cluster():
    s = fe_hexaaqua()
    text = feff_input(s)
    pots = text.split("POTENTIALS")[1].split("ATOMS")[0]
    rows = [r.split() for r in pots.splitlines() if r.strip() and not r.strip().startswith("*")]
    assert rows == [["0", "26", "Fe"], ["1", "1", "H"], ["2", "8", "O"]]  # absorber 0, one per element
    for card in ("EDGE K", "FMS 6", "COREHOLE RPA", "EXCHANGE 0 0 0", "EGRID"):
        assert card in text
    assert "SCF" not in text
    assert "SCF 4" in feff_input(s, FeffRecipe(scf_radius=4.0))
    # atoms beyond the cluster radius are not given to FEFF; the absorber is the first atom at 0,0,0
    far = Structure.from_arrays(np.vstack([np.asarray(s.positions), [[20.0, 0, 0]]]),
                                np.append(np.asarray(s.numbers), 17))
    assert feff_input(far) == feff_input(s)
    atoms = text.split("ATOMS")[1].splitlines()[2]
    assert atoms.split()[:4] == ["0.00000", "0.00000", "0.00000", "0"]
    # deterministic: same structure, same text (the input hash)
    assert feff_input(fe_hexaaqua()) == text


def test_recipe_round_trip_and_name():
    r = FeffRecipe()
    assert r.name == "feff10-default"
    assert FeffRecipe.from_dict(r.to_dict()) == r
    scf = dataclasses.replace(r, scf_radius=4.0)
    assert scf.name.startswith("feff10-") and scf.name != r.name
    assert FeffRecipe(label="mine").name == "mine"
    with pytest.raises(ValueError, match="corehole"):
        FeffRecipe(corehole="XYZ")
    with pytest.raises(ValueError, match="unknown FeffRecipe fields"):
        FeffRecipe.from_dict({"fms": 6})


@pytest.mark.feff
def test_timeout_kills_feff(tmp_path):
    wd = tmp_path / "run"
    with pytest.raises(FeffTimeout, match="timeout"):
        simulate_feff(fe_hexaaqua(), timeout=0.5, workdir=wd)
    assert _running_in(wd) == []  # the whole process group is gone


@pytest.mark.feff
def test_feff_failure_carries_feff_message(tmp_path):
    with pytest.raises(FeffRunError, match="NOTACARD"):
        simulate_feff(fe_hexaaqua(), extra_cards=("NOTACARD 1",), workdir=tmp_path / "bad")


def test_bad_input_raises_before_anything_runs(tmp_path):
    s = fe_hexaaqua()
    wd = tmp_path / "never"
    pos, num = np.asarray(s.positions), np.asarray(s.numbers)
    ca = Structure.from_arrays(pos, np.where(num == 26, 20, num))  # Ca: no tabulated edge in jxas
    with pytest.raises(ValueError, match="unsupported absorber Ca"):
        simulate_feff(ca, workdir=wd)
    padded = pad(s, 24).replace(absorber=np.int32(22))  # absorber on a padding slot
    with pytest.raises(ValueError, match="absorber"):
        simulate_feff(padded, workdir=wd)
    lone = Structure.from_arrays(np.zeros((1, 3)), [26])
    with pytest.raises(ValueError, match="empty cluster"):
        simulate_feff(lone, workdir=wd)
    isolated = Structure.from_arrays(np.array([[0, 0, 0], [25.0, 0, 0]]), [26, 8])
    with pytest.raises(ValueError, match="empty cluster"):
        simulate_feff(isolated, workdir=wd)
    clash = Structure.from_arrays(np.array([[0, 0, 0], [2.0, 0, 0], [2.1, 0, 0]]), [26, 8, 8])
    with pytest.raises(ValueError, match="apart"):
        simulate_feff(clash, workdir=wd)
    nan = Structure.from_arrays(np.array([[0, 0, 0], [np.nan, 0, 0]]), [26, 8])
    with pytest.raises(ValueError, match="non-finite"):
        simulate_feff(nan, workdir=wd)
    with pytest.raises(ValueError, match="timeout"):
        simulate_feff(s, timeout=0, workdir=wd)
    assert not wd.exists()  # nothing written half-way
