"""Spectrum readers and writer on real files (tests/data/spectra, see LICENSE.md there) and crafted bad files."""

from __future__ import annotations

import csv
import warnings

import numpy as np
import pytest
from conftest import DATA, SHARED

import jxas
from jxas.io.spectra import SpectrumError, read_spectrum, write_spectrum
from jxas.spectrum import Spectrum

SPECTRA = DATA / "spectra"


def _body(path):
    return [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def test_public_names():
    assert jxas.read_spectrum is read_spectrum and jxas.write_spectrum is write_spectrum


def test_two_column_text_with_header_metadata():
    s = read_spectrum(SPECTRA / "araucaria_Fe_Foil.txt")
    ref = np.loadtxt(SPECTRA / "araucaria_Fe_Foil.txt")
    np.testing.assert_array_equal(s.energy, ref[:, 0])
    np.testing.assert_array_equal(s.mu, ref[:, 1])
    assert s.meta["format"] == "text" and s.meta["element"] == "Fe" and s.meta["edge"] == "K"
    assert s.meta["quantity"] == "mu_raw" and s.meta["source"].endswith("araucaria_Fe_Foil.txt")


def test_xdi_transmission_is_ln_i0_over_itrans():
    s = read_spectrum(SPECTRA / "ixas_Mn3O4_rt_01.xdi")
    assert s.meta["format"] == "xdi" and (s.meta["element"], s.meta["edge"]) == ("Mn", "K")
    assert s.meta["column"] == "ln(i0/itrans)" and s.meta["quantity"] == "mu_raw"
    two_col = read_spectrum(SPECTRA / "ixas_Mn_Mn3O4_rt_01.txt")  # the same record as published two-column
    np.testing.assert_allclose(s.energy, two_col.energy)
    np.testing.assert_allclose(s.mu, two_col.mu, atol=1e-8)
    raw = np.loadtxt(SPECTRA / "ixas_Mn3O4_rt_01.xdi")
    np.testing.assert_allclose(read_spectrum(SPECTRA / "ixas_Mn3O4_rt_01.xdi", column="irefer").mu, raw[:, 3])


def test_xdi_fluorescence_mono_angle_and_kev(tmp_path):
    raw = np.loadtxt(SPECTRA / "ixas_Mn3O4_rt_01.xdi")
    d = 1.92009
    theta = np.degrees(np.arcsin(12398.419843 / (2 * d * raw[:, 0])))
    lines = ["# XDI/1.0", "# Column.1: angle degrees", "# Column.2: i0", "# Column.3: ifluor",
             "# Element.symbol: Mn", "# Element.edge: K", f"# Mono.d_spacing: {d}", "#----"]
    lines += [f"{t:.10f} {a:.6f} {b:.6f}" for t, a, b in zip(theta, raw[:, 1], raw[:, 2], strict=True)]
    (tmp_path / "fluo.xdi").write_text("\n".join(lines) + "\n")
    s = read_spectrum(tmp_path / "fluo.xdi")
    np.testing.assert_allclose(s.energy, raw[:, 0], atol=1e-5)
    np.testing.assert_allclose(s.mu, raw[:, 2] / raw[:, 1], rtol=1e-6)
    lines[1] = "# Column.1: energy keV"
    lines[8:] = [f"{e / 1000:.7f} {a:.6f} {b:.6f}" for e, a, b in raw[:, :3]]
    (tmp_path / "kev.xdi").write_text("\n".join(lines) + "\n")
    np.testing.assert_allclose(read_spectrum(tmp_path / "kev.xdi").energy, raw[:, 0], atol=1e-3)


def test_feff_xmu_dat():
    s = read_spectrum(SPECTRA / "feff10_FeO6_xmu.dat")
    raw = np.loadtxt(SPECTRA / "feff10_FeO6_xmu.dat")
    assert s.meta["format"] == "feff" and (s.meta["element"], s.meta["edge"]) == ("Fe", "K")
    np.testing.assert_array_equal(s.energy, raw[:, 0])
    np.testing.assert_array_equal(s.mu, raw[:, 3])


def test_fdmnes_output_and_conv_files(tmp_path):
    # FDMNES layout (first line: E_edge, Z, ... = E_edge, Z, ...; then 'Energy <xanes>'), energies relative
    e_rel = np.arange(-10.0, 40.0, 0.5)
    mu = 1e-3 * (1 + np.tanh(e_rel / 3))
    first = "  6539.000   25  1  1  9.5E-03 -5.0E+00  0.0E+00  1  1  6.5E+03 = E_edge, Z, n_edge, j_edge, ..."
    body = [f"{a:10.5f} {b:15.7E}" for a, b in zip(e_rel, mu, strict=True)]
    (tmp_path / "out.txt").write_text("\n".join([first, "    Energy    <xanes>", *body]) + "\n")
    s = read_spectrum(tmp_path / "out.txt")
    assert s.meta["format"] == "fdmnes" and s.meta["element"] == "Mn" and s.meta["e_edge"] == 6539.0
    np.testing.assert_allclose(s.energy, 6539.0 + e_rel)
    np.testing.assert_allclose(s.mu, mu)
    (tmp_path / "out_conv.txt").write_text("\n".join(["   Energy    <xanes>", *body]) + "\n")
    with pytest.warns(UserWarning, match="relative to the edge"):
        rel = read_spectrum(tmp_path / "out_conv.txt")
    np.testing.assert_allclose(rel.energy, e_rel)
    np.testing.assert_allclose(read_spectrum(tmp_path / "out_conv.txt", e_edge=6539.0).energy, 6539.0 + e_rel)


def test_decimal_commas_semicolons_and_chosen_column(tmp_path):
    ref = read_spectrum(SPECTRA / "larch_cu_metal_rt.txt")
    rows = [f"{e:.4f}\t{m:.7f}\t{2 * m:.7f}".replace(".", ",") for e, m in zip(ref.energy, ref.mu, strict=True)]
    (tmp_path / "comma.txt").write_text("energy\tmu\tdouble\n" + "\n".join(rows) + "\n")
    s = read_spectrum(tmp_path / "comma.txt")
    np.testing.assert_allclose(s.energy, ref.energy, atol=1e-4)
    np.testing.assert_allclose(s.mu, ref.mu, atol=1e-7)
    np.testing.assert_allclose(read_spectrum(tmp_path / "comma.txt", column="double").mu, 2 * ref.mu, atol=1e-6)
    np.testing.assert_allclose(read_spectrum(tmp_path / "comma.txt", column=2).mu, 2 * ref.mu, atol=1e-6)
    (tmp_path / "semi.csv").write_text("\n".join(r.replace("\t", ";") for r in rows) + "\n")
    np.testing.assert_allclose(read_spectrum(tmp_path / "semi.csv").mu, ref.mu, atol=1e-7)
    csv_rows = [f"{e:.4f},{m:.7f}" for e, m in zip(ref.energy, ref.mu, strict=True)]
    (tmp_path / "plain.csv").write_text("\n".join(csv_rows) + "\n")
    np.testing.assert_allclose(read_spectrum(tmp_path / "plain.csv").mu, ref.mu, atol=1e-7)
    with pytest.raises(SpectrumError, match="no column named 'nope'"):
        read_spectrum(tmp_path / "comma.txt", column="nope")
    with pytest.raises(SpectrumError, match="out of range"):
        read_spectrum(tmp_path / "comma.txt", column=5)


def test_unsorted_and_duplicate_energies_are_sorted_and_merged(tmp_path):
    ref = read_spectrum(SPECTRA / "xdi_zn_znse_rt.txt")
    e, m = list(ref.energy), list(ref.mu)
    rows = [f"{a} {b}" for a, b in zip(e, m, strict=True)]
    rows = rows[10:] + rows[:10] + [rows[20]]  # out of order, and one exact duplicate row
    (tmp_path / "messy.txt").write_text("\n".join(rows) + "\n")
    with pytest.warns(UserWarning) as rec:
        s = read_spectrum(tmp_path / "messy.txt")
    msgs = " ".join(str(w.message) for w in rec)
    assert "sorted" in msgs and "duplicated energies merged" in msgs
    np.testing.assert_array_equal(s.energy, ref.energy)
    np.testing.assert_allclose(s.mu, ref.mu)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("nan_row.txt", "\n".join(f"{7100 + i} {0.1 * i}" for i in range(12)).replace("7105 0.5", "7105 nan"),
         r"nan_row.txt, line 6: NaN"),
        ("text_row.txt", "# header\n" + "\n".join(f"{7100 + i} {0.1 * i}" for i in range(12)).replace(
            "7103 0.30000000000000004", "7103 abc"), r"text_row.txt, line 5: non-numeric value 'abc'"),
        ("short.txt", "\n".join(f"{7100 + i} {0.1 * i}" for i in range(9)), r"short.txt: only 9 data points"),
        ("ragged.txt", "\n".join(f"{7100 + i} {0.1 * i}" for i in range(12)) + "\n7200 1 2", r"line 13: 3 columns"),
        ("empty.txt", "# nothing here\n", "no numeric data rows"),
        ("one_col.txt", "\n".join(str(7100 + i) for i in range(12)), "at least 2 columns"),
        ("dups.txt", "\n".join(f"{7100 + i // 2} {0.1 * i}" for i in range(12)), "only 6 distinct energies"),
        ("bad.xdi", "# XDI/1.0\n# Column.1: energy eV\n# Column.2: foo\n" + "\n".join(
            f"{7100 + i} {i}" for i in range(12)), "hold no mu"),
        ("neg.xdi", "# XDI/1.0\n# Column.1: energy eV\n# Column.2: i0\n# Column.3: itrans\n" + "\n".join(
            f"{7100 + i} {1 - i} 1" for i in range(12)), "non-finite value"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, name, content, match):
    (tmp_path / name).write_text(content + "\n")
    with pytest.raises(SpectrumError, match=match), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dups.txt also warns that it merged rows before failing
        read_spectrum(tmp_path / name)


def test_committed_bad_files():
    with pytest.raises(SpectrumError, match=r"bad_nan.txt, line 14: NaN"):
        read_spectrum(SPECTRA / "bad_nan.txt")
    with pytest.raises(SpectrumError, match=r"bad_text.txt, line 9: non-numeric value 'n/a'"):
        read_spectrum(SPECTRA / "bad_text.txt")
    with pytest.raises(SpectrumError, match="no such file"):
        read_spectrum(SPECTRA / "missing.txt")


def test_write_read_round_trip_with_std(tmp_path):
    e = np.linspace(7100.0, 7200.0, 51)
    s = Spectrum(energy=e, mu=np.sin(e / 10.0), std=0.01 + 0 * e, meta={"element": "Fe", "edge": "K", "label": "x"})
    path = write_spectrum(tmp_path / "out.txt", s)
    back = read_spectrum(path)
    np.testing.assert_allclose(back.energy, e, rtol=1e-12)
    np.testing.assert_allclose(back.mu, s.mu, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(read_spectrum(path, column="std").mu, 0.01)
    assert (back.meta["element"], back.meta["edge"]) == ("Fe", "K")
    with pytest.raises(SpectrumError, match="one spectrum"):
        write_spectrum(tmp_path / "b.txt", Spectrum(energy=e, mu=np.zeros((2, e.size))))


@pytest.mark.skipif(not (SHARED / "experimental" / "manifest.csv").exists(), reason="shared data not present")
def test_every_shared_experimental_file_reads():
    rows = list(csv.DictReader(open(SHARED / "experimental" / "manifest.csv")))
    for r in rows:
        s = read_spectrum(SHARED / "experimental" / "spectra" / f"{r['id']}.txt")
        assert s.energy.size == int(r["n_points"]), r["id"]
        assert s.meta["element"] == r["element"] and np.all(np.diff(s.energy) > 0)


def test_plot_spectra_writes_png(tmp_path):
    import jxas.plot

    ref = read_spectrum(SPECTRA / "xdi_zn_znse_rt.txt")
    pred = Spectrum(energy=ref.energy, mu=ref.mu * 1.02, std=0.02 + 0 * ref.mu)
    out = jxas.plot.spectra({"model": pred, "shifted": (ref.energy + 1.0, ref.mu)}, tmp_path / "fit.png",
                            target=ref, title="ZnSe")
    assert out.stat().st_size > 10_000 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig = jxas.plot.spectra([pred], labels=["only"])  # no target: no residual panel, figure returned
    assert len(fig.axes) == 1
    with pytest.raises(ValueError, match="needs a target"):
        jxas.plot.spectra([pred], tmp_path / "x.png", residual=True)
