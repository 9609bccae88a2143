"""``jxas invert``: prints the first-shell answer, writes the G2 PNG, rejects bad input clearly."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from jxas.cli import main
from jxas.inverse.invmodel import PRETRAINED, InverseModel, load_inverse_model
from jxas.inverse.model import init_members, make_module

DATA = Path(__file__).parent / "data" / "spectra"
CU_FOIL = DATA / "larch_cu_metal_rt.txt"  # MIT (xraylarch), licence in the file header


@pytest.fixture(scope="module")
def tiny_cu_model(tmp_path_factory):
    grid = np.arange(8992.0, 9118.5, 1.0)
    cfg = {"arch": "cnn_fft", "channels": (4, 8, 8), "dense": (16, 8), "n_fft": 8, "energy": grid.tolist(),
           "outputs": [["g2", 50], ["r1", 1], ["cn", 1], ["comp", 2], ["ox", 1]], "donors": [8],
           "y_mean": [0.5] * 50 + [2.0, 6.0, 6.0, 0.0, 2.0], "y_std": [0.1] * 55, "n_members": 3,
           "kind": "inverse", "prototypes": [np.clip((grid - 8990.0) / 10.0, 0, 1).tolist()]}
    params = init_members(make_module(cfg), 3, len(grid), 8, key=jax.random.key(0))
    m = InverseModel(config=cfg, params=params, name="tiny-cu", element="Cu", edge="K")
    return m.save(tmp_path_factory.mktemp("m") / "tiny-cu")


def test_cli_invert_prints_and_plots(tiny_cu_model, tmp_path, capsys):
    png, js = tmp_path / "g2.png", tmp_path / "r.json"
    rc = main(["invert", str(CU_FOIL), "--model", str(tiny_cu_model), "--plot", str(png), "--json", str(js)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "first-shell distance" in out and "coordination number" in out and "composition" in out
    assert "aligned to the training spectra" in out
    assert png.is_file() and png.stat().st_size > 5000
    res = json.loads(js.read_text())
    assert len(res["g2"]) == 50 and np.isfinite(res["r1"]) and res["r1_sigma"] >= 0


def test_cli_invert_rejects_bad_input(tiny_cu_model, tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("# energy mu\n1 2\n2 3\n3 nan\n")
    rc = main(["invert", str(bad), "--model", str(tiny_cu_model), "--no-plot"])
    err = capsys.readouterr().err
    assert rc == 1 and "error" in err
    rc = main(["invert", str(CU_FOIL), "--model", str(tmp_path), "--no-plot"])
    err = capsys.readouterr().err
    assert rc == 1 and "not an inverse model directory" in err
    rc = main(["invert", str(CU_FOIL), "--model", "no-such-model", "--no-plot"])
    assert rc == 1 and "no inverse model" in capsys.readouterr().err


@pytest.mark.skipif(not (PRETRAINED / "inverse-cu-k" / "config.json").is_file(), reason="no shipped Cu model")
def test_shipped_cu_model_reads_cu_foil():
    import jxas

    model = load_inverse_model("cu-k")
    assert model.element == "Cu" and model.n_members >= 10
    res = jxas.invert(jxas.read_spectrum(CU_FOIL), model="cu-k")
    assert np.isfinite(res.r1) and res.r1_sigma > 0 and np.all(res.g2_sigma >= 0)
    # Cu metal (fcc, a = 3.615 Å at RT): 12 Cu at 2.556 Å; benchmarks/inverse.py measured 2.536 Å here
    assert abs(res.r1 - 2.556) < 0.1
    assert res.composition["Cu"][0] > 4 and res.composition["Cu"][0] > res.composition["O"][0]


def test_cli_invert_check_and_refine_start(tiny_cu_model, tmp_path, capsys):
    import jxas
    from jxas.inverse.targets import first_shell

    # square-planar Cu(H2O)4 at 1.97 Å, absorber first (xyz convention)
    pos, sym = [[0.0, 0.0, 0.0]], ["Cu"]
    for v in ([1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]):
        o = 1.97 * np.array(v, float)
        perp = np.roll(v, 1)
        pos += [o, o + 0.97 * (0.6 * np.array(v) + 0.8 * perp), o + 0.97 * (0.6 * np.array(v) - 0.8 * perp)]
        sym += ["O", "H", "H"]
    xyz = tmp_path / "cu_aqua.xyz"
    xyz.write_text(f"{len(sym)}\nq = 2 | S = 1\n" + "".join(f"{s} {x:.6f} {y:.6f} {z:.6f}\n"
                                                         for s, (x, y, z) in zip(sym, pos, strict=True)))
    start, js = tmp_path / "start.xyz", tmp_path / "r.json"
    rc = main(["invert", str(CU_FOIL), "--model", str(tiny_cu_model), "--no-plot", "--check", str(xyz),
               "--refine-start", str(start), "--json", str(js)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "starting structure vs inverse prediction" in out and "verdict" in out and "jxas refine" in out
    res = json.loads(js.read_text())
    rows = {r["name"]: r for r in res["check"]["rows"]}
    assert rows["first-shell distance/A"]["structure"] == pytest.approx(1.97, abs=1e-6)
    assert rows["coordination number"]["structure"] == 4
    # the untrained tiny model's answer is far from 1.97 Å in units of its sigma: flagged
    z = (1.97 - res["r1"]) / res["r1_sigma"]
    assert rows["first-shell distance/A"]["agrees"] == (abs(z) <= 2)
    assert ("disagrees" in out) == (not res["check"]["ok"])
    s = jxas.read_structure(start)
    _, cn, r1 = first_shell(s)
    assert float(cn) == 4 and float(r1) == pytest.approx(res["r1"], abs=1e-5)
    rc = main(["invert", str(CU_FOIL), "--model", str(tiny_cu_model), "--no-plot", "--refine-start", str(start)])
    assert rc == 1 and "--refine-start needs --check" in capsys.readouterr().err


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.skipif(not (PRETRAINED / "inverse-fe-k" / "config.json").is_file(), reason="no shipped Fe model")
def test_shipped_fe_model_reads_example_and_checks_structure():
    import jxas
    from jxas.inverse import check_structure, scale_first_shell
    from jxas.inverse.targets import first_shell

    model = load_inverse_model("fe-k")
    assert model.element == "Fe" and model.n_members >= 10 and model.config["has_ox"]
    # FEFF10 spectrum of [Fe(H2O)6]2+ with Fe-O 2.12 Å, normalised, in the training energy frame
    res = jxas.invert(jxas.read_spectrum(EXAMPLES / "fe_h2o6_feff10.txt"), model=model, normalise=False)
    assert np.isfinite(res.r1) and res.r1_sigma > 0 and 4 <= res.cn <= 8
    assert abs(res.r1 - 2.12) < 0.25  # measured 2.007 +- 0.050 Å when shipped
    true = jxas.read_structure(EXAMPLES / "fe_h2o6_true.xyz")
    assert check_structure(res, true).rows[0].structure == pytest.approx(2.12, abs=0.01)
    start = scale_first_shell(jxas.read_structure(EXAMPLES / "fe_h2o6_start.xyz"), res.r1)
    assert float(first_shell(start)[2]) == pytest.approx(res.r1, abs=1e-6)
