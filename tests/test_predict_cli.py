"""``jxas predict``: writes energy/mu/std columns and a plot; bad input gives a clear error, no output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from jxas.cli import main
from jxas.models import Model, available_models, default_config

DATA = Path(__file__).parent / "data" / "structures"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    cfg = default_config("mlp", "Fe", elements=["Fe", "C", "H", "O", "N"], hidden=[16],
                         descriptor_args={"r_min": 1.0, "r_max": 6.0, "n_g2": 8, "n_g4": 8})
    m = Model.init(cfg, key=jax.random.PRNGKey(0), members=3, name="fe-k-tiny")
    return m.save(tmp_path_factory.mktemp("models") / "fe-k-tiny")


def _read_columns(path):
    rows = [ln.split() for ln in Path(path).read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    return np.array(rows, float)


def test_predict_writes_spectrum_and_plot(model_dir, tmp_path, capsys):
    out, png = tmp_path / "fc.txt", tmp_path / "fc.png"
    rc = main(["predict", str(DATA / "ferrocene.xyz"), "--model", str(model_dir), "-o", str(out), "--plot", str(png)])
    assert rc == 0
    cols = _read_columns(out)
    assert cols.shape == (401, 3)
    from jxas.spectrum import standard_grid

    np.testing.assert_allclose(cols[:, 0], standard_grid("Fe"), atol=1e-6)
    assert np.all(cols[:, 1] > 0) and np.all(cols[:, 2] >= 0) and cols[:, 2].max() > 0  # 3 members differ
    header = Path(out).read_text()
    assert "fe-k-tiny" in header and "std" in header
    assert png.stat().st_size > 10_000
    # same numbers as the library call
    m = Model.load(model_dir)
    import jxas

    sp = m.predict(jxas.read_structure(DATA / "ferrocene.xyz"))
    np.testing.assert_allclose(cols[:, 1], np.asarray(sp.mu), rtol=1e-8)


def test_predict_stdout_and_absorber(model_dir, capsys):
    assert main(["predict", str(DATA / "fe_co5.xyz"), "--model", str(model_dir), "--absorber", "0"]) == 0
    text = capsys.readouterr().out
    assert len([ln for ln in text.splitlines() if not ln.startswith("#")]) == 401


def test_predict_bad_absorber_is_a_clear_error(model_dir, tmp_path, capsys):
    out = tmp_path / "x.txt"
    rc = main(["predict", str(DATA / "fe_co5.xyz"), "--model", str(model_dir), "--absorber", "1", "-o", str(out)])
    assert rc == 1
    err = capsys.readouterr().err
    assert "absorber 1 is C" in err and "Fe K-edge" in err
    assert not out.exists()


def test_predict_unknown_model_lists_choices(tmp_path, capsys):
    rc = main(["predict", str(DATA / "fe_co5.xyz"), "--model", "zz-k"])
    assert rc == 1
    assert "no shipped model 'zz-k'" in capsys.readouterr().err


def test_predict_entry_point_subprocess(model_dir, tmp_path):
    out = tmp_path / "co5.txt"
    r = subprocess.run(
        [sys.executable, "-m", "jxas", "predict", str(DATA / "fe_co5.xyz"), "--model", str(model_dir), "-o", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert _read_columns(out).shape == (401, 3)


@pytest.mark.skipif(not any(m == "fe-k" or m.startswith("fe-k-") for m in available_models()),
                    reason="no shipped Fe K-edge model yet")
def test_predict_with_shipped_default_model(tmp_path):
    out = tmp_path / "fc.txt"
    assert main(["predict", str(DATA / "ferrocene.xyz"), "-o", str(out)]) == 0  # model chosen from the absorber
    cols = _read_columns(out)
    assert np.all(np.isfinite(cols)) and np.all(cols[:, 1] > 0)
