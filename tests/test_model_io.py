"""Model save/load, load_model resolution, and every shipped pretrained model on a shipped example."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest

import jxas
from jxas.models import Model, available_models, default_config, load_model, pretrained_dir, registry, with_statistics
from jxas.structure import Structure, stack

DATA = Path(__file__).parent / "data" / "structures"
SMALL = {
    "mlp": {"hidden": [16], "descriptor_args": {"r_min": 1.0, "r_max": 6.0, "n_g2": 8, "n_g4": 8}},
    "e3nn": {"channels": 4, "readout": [16], "radial_hidden": 8, "n_radial": 6, "n_radial_out": 4},
}


def _fe_cluster(scale=1.0):
    pos = np.array([[0, 0, 0], [2.0, 0, 0], [-2.0, 0, 0], [0, 2.0, 0], [0, -2.0, 0], [0, 0, 1.9], [0, 0, -1.9]]) * scale
    return Structure.from_arrays(pos, [26, 8, 8, 8, 8, 7, 7])


@pytest.fixture(params=["mlp", "e3nn"])
def model(request):
    cfg = default_config(request.param, "Fe", elements=["Fe", "O", "N", "C", "H"], **SMALL[request.param])
    batch = stack([_fe_cluster(s) for s in (0.95, 1.0, 1.05)])
    cfg = with_statistics(cfg, batch, np.random.default_rng(0).uniform(0.3, 1.4, (3, cfg["n_energy"])))
    cfg["metrics"] = {"test": {"eta": 1.0}}
    return Model.init(cfg, key=jax.random.PRNGKey(3), members=2, name="fe-k-test", card="# card\n")


def test_save_load_round_trip(model, tmp_path):
    d = model.save(tmp_path / "m")
    assert sorted(p.name for p in d.iterdir()) == ["card.md", "config.json", "params.msgpack"]
    cfg = json.loads((d / "config.json").read_text())
    for key in ("kind", "element", "edge", "energy", "elements", "metrics", "members", "domain", "mu_mean"):
        assert key in cfg, key
    assert cfg["members"] == 2 and cfg["element"] == "Fe" and len(cfg["energy"]) == 401
    loaded = Model.load(d)
    assert loaded.name == "fe-k-test" and loaded.card == "# card\n" and loaded.members == 2
    assert loaded.kind == model.kind and loaded.cutoff == model.cutoff
    np.testing.assert_array_equal(loaded.energy, model.energy)
    s = _fe_cluster()
    a, b = model.predict(s), loaded.predict(s)
    np.testing.assert_array_equal(a.mu, b.mu)
    np.testing.assert_array_equal(a.std, b.std)
    np.testing.assert_array_equal(np.asarray(a.energy), jxas.spectrum.standard_grid("Fe"))
    # load_model accepts the path too, and the public name is the same function
    assert jxas.load_model is load_model
    np.testing.assert_array_equal(load_model(str(d)).predict(s).mu, a.mu)
    # params keep their float32 dtype and member axis
    leaves = jax.tree.leaves(loaded.params)
    assert all(x.dtype == np.float32 and x.shape[0] == 2 for x in leaves)


def test_load_errors_name_the_problem(model, tmp_path):
    with pytest.raises(FileNotFoundError, match="params.msgpack missing"):
        d = tmp_path / "half"
        d.mkdir()
        (d / "config.json").write_text("{}")
        Model.load(d)
    d = model.save(tmp_path / "bad")
    (d / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json: invalid JSON"):
        Model.load(d)
    d = model.save(tmp_path / "bad2")
    (d / "params.msgpack").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="params.msgpack: cannot read"):
        Model.load(d)
    with pytest.raises(ValueError, match="no shipped model 'xx-k'"):
        load_model("xx-k")


def test_name_resolution_with_suffixes(model, tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "pretrained_dir", lambda: tmp_path)
    model.save(tmp_path / "fe-k-mlp")
    assert available_models() == ["fe-k-mlp"]
    assert load_model("fe-k").name == "fe-k-mlp"  # the only candidate
    assert load_model("FE-K-MLP").name == "fe-k-mlp"
    other = model.replace(config={**model.config, "default": True})
    other.save(tmp_path / "fe-k-e3nn")
    assert load_model("fe-k").name == "fe-k-e3nn"  # the one marked default
    cfg = json.loads((tmp_path / "fe-k-e3nn" / "config.json").read_text())
    cfg["default"] = False
    (tmp_path / "fe-k-e3nn" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="ambiguous"):
        load_model("fe-k")


def _shipped_example(model: Model) -> Structure:
    """A structure file shipped with the tests whose absorber element matches the model."""
    z = {"Fe": "ferrocene.xyz", "Cu": "POSCAR_mp_14549", "Co": "co_nh3_6.xyz", "Ni": "bunsenite.cif"}
    name = z.get(model.element)
    if name is None or not (DATA / name).exists():
        pytest.skip(f"no shipped example structure for {model.element}")
    return jxas.read_structure(DATA / name)


@pytest.mark.parametrize("name", available_models())
def test_every_shipped_model_loads_and_predicts(name):
    m = load_model(name)
    assert m.name == name and (pretrained_dir() / name / "card.md").is_file() and len(m.card) > 100
    size = sum(p.stat().st_size for p in (pretrained_dir() / name).iterdir())
    assert size < 12e6, f"{name} is {size / 1e6:.1f} MB"
    s = _shipped_example(m)
    sp = m.predict(s)
    mu = np.asarray(sp.mu)
    assert mu.shape == m.energy.shape and np.all(np.isfinite(mu)) and np.all(mu > 0)
    assert sp.std is not None and np.all(np.isfinite(sp.std))
    assert 0.05 < float(mu[-40:].mean()) < 5.0  # the post-edge of a K-edge mu is O(1)
