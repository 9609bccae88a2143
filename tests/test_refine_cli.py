"""``jxas refine`` and ``jxas sweep`` end to end with a small randomly initialised saved model."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from jxas.cli import main

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples"


@pytest.fixture(autouse=True)
def _no_persistent_cache(monkeypatch):
    monkeypatch.setenv("JXAS_NO_COMPILATION_CACHE", "1")  # keep the test process's JAX config untouched


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from jxas.models.config import default_config
    from jxas.models.model import Model

    cfg = default_config("mlp", "Fe", elements=[1, 8, 26], hidden=[16])
    d = tmp_path_factory.mktemp("model") / "fe-tiny"
    Model.init(cfg, key=jax.random.key(0), members=2, name="fe-tiny").save(d)
    return d


def test_refine_command_writes_report(model_dir, tmp_path, capsys):
    out = tmp_path / "rep"
    rc = main(
        [
            "refine",
            str(EX / "fe_h2o6_start.xyz"),
            "--spectrum",
            str(EX / "fe_h2o6_feff10.txt"),
            "--model",
            str(model_dir),
            "--energy",
            "restraints",
            "--steps",
            "8",
            "-o",
            str(out),
            "--quiet",
        ]
    )
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "Fe-O1" in text and "fit MSE" in text and "mean" in text
    for name in ("refined.xyz", "refined.extxyz", "trajectory.extxyz", "fit.png", "history.png", "summary.json"):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_steps"] == 9 and len(summary["bonds"]) == 6
    assert summary["energy_method"] == "restraints" and summary["status"] in ("max_steps", "converged")


def test_refine_command_rejects_wrong_element(model_dir, tmp_path, capsys):
    spec = tmp_path / "cu.txt"
    e = np.arange(8950.0, 9100.0, 0.5)
    np.savetxt(
        spec, np.column_stack([e, 0.5 + np.arctan((e - 8979) / 2) / np.pi]), header="element/edge: Cu K\nquantity: norm"
    )
    rc = main(
        [
            "refine",
            str(EX / "fe_h2o6_start.xyz"),
            "--spectrum",
            str(spec),
            "--model",
            str(model_dir),
            "--energy",
            "none",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 1 and "spectrum is of Cu" in err


def test_sweep_command(model_dir, tmp_path, capsys):
    prefix = tmp_path / "sw"
    rc = main(
        [
            "sweep",
            str(EX / "fe_h2o6_start.xyz"),
            "--spectrum",
            str(EX / "fe_h2o6_feff10.txt"),
            "--model",
            str(model_dir),
            "--move",
            "shell",
            "-0.1",
            "0.2",
            "7",
            "-o",
            str(prefix),
        ]
    )
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "minimum:" in text
    data = np.loadtxt(f"{prefix}.csv", delimiter=",", skiprows=1)
    assert data.shape == (7, 2)
    np.testing.assert_allclose(data[:, 0], 2.0 + np.linspace(-0.1, 0.2, 7), atol=1e-5)
    assert Path(f"{prefix}.png").stat().st_size > 0
