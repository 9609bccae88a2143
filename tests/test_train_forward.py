"""Forward-model training end to end on a small slice of the real OmniXAS Cu dataset.

The slice (60 sites of whole materials, copied at test time from datasets/cu-k-omnixas-feff9.h5,
BSD-3-Clause, OmniXAS / Brookhaven Science Associates; structures from the Materials Project,
CC BY 4.0) keeps the OmniXAS train/val labels, so the split rule, the training, the saved model and
the evaluation are exercised on real FEFF9 spectra in well under a minute.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from jxas.train import TrainConfig, check_disjoint
from jxas.train.forward import evaluate, select_split, train_forward

CU = Path(__file__).resolve().parents[1] / "datasets" / "cu-k-omnixas-feff9.h5"
pytestmark = pytest.mark.skipif(not CU.exists(), reason="datasets/cu-k-omnixas-feff9.h5 not present")


def _slice(path: Path, n_materials=(14, 5), every: int = 4):
    """Copy whole materials (train-labelled and val-labelled) into a small dataset with a coarser grid."""
    from jxas.data import Dataset
    from jxas.structure import Structure

    src = Dataset(CU)
    groups, splits = np.asarray(src.groups), np.asarray(src.splits)
    pick = []
    for label, k in zip(("train", "val"), n_materials, strict=True):
        g = sorted(set(groups[splits == label].tolist()))[:k]
        pick += [i for i in range(len(src)) if groups[i] in set(g)]
    pick = np.asarray(pick)
    s, mu = src.structures(pick), src.spectra(pick)[:, ::every]
    # 7 Å clusters are up to 183 atoms; keep the 40 nearest atoms so the test stays fast
    n = 40
    dst = Dataset.create(path, element="Cu", edge="K", energy=src.energy[::every], recipe=src.recipe, n_max=n)
    entries = []
    for j, i in enumerate(pick):
        st = Structure.from_arrays(np.asarray(s.positions[j][:n]), np.asarray(s.numbers[j][:n]),
                                   mask=np.asarray(s.mask[j][:n]), absorber=int(s.absorber[j]))
        entries.append({"structure": st, "mu": mu[j], "key": str(src.keys[i]), "group": str(groups[i]),
                        "split": str(splits[i])})
    dst.append(entries)
    return dst


@pytest.fixture(scope="module")
def small_cu(tmp_path_factory):
    return _slice(tmp_path_factory.mktemp("cu") / "cu-small.h5")


def test_split_uses_source_labels_and_never_leaks(small_cu):
    sp = select_split(small_cu, seed=0)
    groups, splits = np.asarray(small_cu.groups), np.asarray(small_cu.splits)
    # every val-labelled site is in test, plus the other sites of those materials (OmniXAS labels
    # sites, and a few materials have sites with different labels: they must not straddle the split)
    val = np.flatnonzero(splits == "val")
    assert set(val) <= set(sp["test"])
    assert set(groups[sp["test"]]) == set(groups[val])
    check_disjoint(groups, sp["train"], sp["val"], sp["test"])
    assert len(sp["train"]) + len(sp["val"]) + len(sp["test"]) == len(small_cu)


@pytest.fixture(scope="module")
def trained(small_cu, tmp_path_factory):
    """One 2-member ensemble trained on the slice, shared by the tests below (training is the slow part)."""
    tmp_path = tmp_path_factory.mktemp("fwd")
    cfg = {"kind": "mlp", "descriptor": "wacsf", "hidden": [64, 64], "dropout": 0.0}
    tc = TrainConfig(epochs=15, batch_size=16, learning_rate=5e-3, warmup_epochs=1, patience=None, progress=False)
    model = train_forward(small_cu, cfg, tc, members=2, key=jax.random.key(0), out_dir=tmp_path / "run",
                          command="pytest")
    return model, tmp_path


def test_train_forward_ensemble_learns_saves_and_evaluates(small_cu, trained):
    from jxas.models import Model

    model, tmp_path = trained
    assert model.element == "Cu" and model.edge == "K"
    leaves = jax.tree.leaves(model.params)
    assert all(np.shape(x)[0] == 2 for x in leaves)  # two members stacked
    for m in range(2):
        h = json.loads((tmp_path / "run" / f"member_{m}" / "summary.json").read_text())
        csv = (tmp_path / "run" / f"member_{m}" / "history.csv").read_text().splitlines()
        train = [float(r.split(",")[1]) for r in csv[1:]]
        vals = [float(r.split(",")[2]) for r in csv[1:]]
        # 14 training materials: the network fits them (training MSE falls fourfold) and generalises
        # partly (validation MSE on unseen materials falls too)
        assert train[-1] < 0.25 * train[0], train
        assert min(vals) < 0.85 * vals[0], vals
        assert h["n_train"] > 0
    met = model.config["metrics"]["test"]
    assert met["n"] == len(select_split(small_cu, seed=0)["test"])
    assert np.isfinite(met["median_mse"]) and met["eta"] > 1.0  # better than the training mean
    for f in ("learning_curves.png", "spectra_percentiles.png", "peak_parity.png", "split.json"):
        assert (tmp_path / "run" / f).stat().st_size > 0
    # the saved directory loads back to the same predictions and metrics
    loaded = Model.load(tmp_path / "run" / "model")
    again = evaluate(loaded, small_cu)
    assert again["n"] == met["n"]
    np.testing.assert_allclose(again["median_mse"], met["median_mse"], rtol=1e-5)
    card = (tmp_path / "run" / "model" / "card.md").read_text()
    assert "eta" in card and "pytest" in card


def test_evaluate_rejects_other_element(small_cu, trained, tmp_path):
    from jxas.data import Dataset

    model, _ = trained
    fe = Dataset.create(tmp_path / "fe.h5", element="Fe", energy=np.asarray(small_cu.energy), recipe={"name": "x"})
    with pytest.raises(ValueError, match="Fe K"):
        evaluate(model, fe)


def test_cli_train_then_evaluate(small_cu, tmp_path, capsys):
    from jxas.cli import main

    out = tmp_path / "cli"
    rc = main(["train", str(small_cu.path), "--kind", "mlp", "--set", "hidden=[16]", "dropout=0.0",
               "--epochs", "3", "--batch-size", "16", "--members", "1", "--no-progress", "-o", str(out),
               "--group-weight", "1", "--param-dtype", "float16", "--loss", "edge=2", "deriv=0.5",
               "--select", "last"])
    assert rc == 0
    assert "held-out: eta" in capsys.readouterr().out
    from jxas.models import load_model

    stored = load_model(out / "model")
    assert stored.config["param_dtype"] == "float16"
    assert stored.config["training"]["group_weight"] == 1.0
    assert stored.config["training"]["loss"]["edge"] == 2.0 and stored.config["training"]["loss"]["deriv"] == 0.5
    assert stored.config["training"]["select"] == "last"
    # an unknown loss term is a clear error
    assert main(["train", str(small_cu.path), "--loss", "colour=1", "-o", str(tmp_path / "bad")]) == 1
    assert "unknown --loss term" in capsys.readouterr().err
    rc = main(["evaluate", str(out / "model"), str(small_cu.path), "--json", str(tmp_path / "m.json"),
               "--plots", str(tmp_path / "plots")])
    text = capsys.readouterr().out
    assert rc == 0 and "eta" in text and "median Pearson" in text
    m = json.loads((tmp_path / "m.json").read_text())
    # evaluate defaults to the model's held-out materials: the val-labelled ones of this slice
    assert m["n"] == len(select_split(small_cu, seed=0)["test"])
    assert (tmp_path / "plots" / "peak_parity.png").exists()
    # a bad dataset path is a clear error, not a traceback
    assert main(["evaluate", str(out / "model"), str(tmp_path / "missing.h5")]) == 1
    assert "no such dataset file" in capsys.readouterr().err


def test_group_weights_give_every_group_equal_weight():
    from jxas.train.forward import group_weights

    g = np.array(["a", "a", "a", "b", "c", "c"])
    w = group_weights(g, 1.0)
    np.testing.assert_allclose(w.mean(), 1.0, rtol=1e-6)
    totals = {k: w[g == k].sum() for k in "abc"}
    np.testing.assert_allclose(list(totals.values()), totals["a"], rtol=1e-6)
    np.testing.assert_array_equal(group_weights(g, 0.0), np.ones(6, np.float32))


def test_explicit_split_group_weight_and_float16_storage(small_cu, tmp_path):
    """A cross-validation fold (explicit split, no test part), material-weighted loss, half-precision storage."""
    from jxas.models import Model
    from jxas.train.forward import predict_dataset

    groups = np.asarray(small_cu.groups)
    uniq = sorted(set(groups.tolist()))
    val_groups = set(uniq[::4])
    va = np.flatnonzero([g in val_groups for g in groups])
    tr = np.flatnonzero([g not in val_groups for g in groups])
    cfg = {"kind": "mlp", "descriptor": "eradial", "hidden": [32], "dropout": 0.0,
           "descriptor_args": {"elements": [8, 29], "n": 8, "n_angle": 6, "angle_cutoff": 4.0}}
    tc = TrainConfig(epochs=4, batch_size=16, learning_rate=5e-3, warmup_epochs=1, patience=None, progress=False)
    model = train_forward(small_cu, cfg, tc, members=2, key=jax.random.key(1), out_dir=tmp_path / "fold",
                          split={"train": tr, "val": va, "test": []}, group_weight=1.0, param_dtype="float16")
    assert "test" not in model.config["metrics"] and model.config["metrics"]["val"]["n"] == len(va)
    assert model.config["training"]["n_train"] == len(tr) and model.config["training"]["group_weight"] == 1.0
    split = json.loads((tmp_path / "fold" / "split.json").read_text())
    assert split["val"]["groups"] == sorted(val_groups)
    saved = tmp_path / "fold" / "model"
    loaded = Model.load(saved)
    # the metrics were computed with the rounded parameters, so they are those of the saved model
    again = evaluate(loaded, small_cu, va, train_mean=np.asarray(loaded.config["mu_mean"]))
    np.testing.assert_allclose(again["median_mse"], model.config["metrics"]["val"]["median_mse"], rtol=1e-5)
    np.testing.assert_allclose(predict_dataset(loaded, small_cu, va)[0], predict_dataset(model, small_cu, va)[0],
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="split leaks"):
        train_forward(small_cu, cfg, tc, key=jax.random.key(1), out_dir=tmp_path / "bad",
                      split={"train": tr, "val": np.concatenate([va, tr[:1]]), "test": []})
    with pytest.raises(ValueError, match="param_dtype"):
        train_forward(small_cu, cfg, tc, key=jax.random.key(1), out_dir=tmp_path / "bad2", param_dtype="bf16")
