"""``jxas featurise``: real descriptors written to text and PNG; clear error on a bad file."""

from __future__ import annotations

import numpy as np
from conftest import DATA

from jxas.cli import main
from jxas.descriptors import wacsf
from jxas.io.structures import read_structure


def test_featurise_writes_descriptors_and_plot(tmp_path, capsys):
    src = DATA / "structures" / "fe_co5.xyz"
    out, png = tmp_path / "w.txt", tmp_path / "w.png"
    assert main(["featurise", str(src), "-o", str(out), "--plot", str(png)]) == 0
    np.testing.assert_allclose(np.loadtxt(out), np.asarray(wacsf(read_structure(src))), rtol=1e-7)
    assert png.stat().st_size > 1000
    assert "absorber Fe" in capsys.readouterr().out


def test_featurise_bad_file_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.xyz"
    bad.write_text("2\n\nFe 0 0 0\n")
    assert main(["featurise", str(bad)]) == 1
    assert "count line says 2 atoms" in capsys.readouterr().err
