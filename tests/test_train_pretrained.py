"""Every shipped pretrained model loads, carries a card with its measured metrics, and reproduces them.

The fast test predicts one held-out structure of each model's own dataset; the slow one
(JXAS_SLOW=1) re-evaluates the whole held-out split and compares with the metrics in the card.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jxas.models import available_models, load_model
from jxas.structure import unstack

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = [  # forward models only (the inverse models ship in the same folder)
    n for n in available_models()
    if json.loads((ROOT / "jxas" / "pretrained" / n / "config.json").read_text()).get("kind") in ("mlp", "e3nn")
]


def _dataset(model):
    from jxas.data import Dataset

    path = ROOT / "datasets" / model.config["training"]["dataset"]
    if not path.exists():
        pytest.skip(f"{path} not present")
    ds = Dataset(path)
    if not set(model.config["test_groups"]) <= set(np.asarray(ds.groups).tolist()):
        pytest.skip(f"{path} no longer holds the model's held-out groups (the dataset changed since training)")
    return ds


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_card_and_one_prediction(name):
    from jxas.train.forward import _default_eval_idx

    model = load_model(name)
    card = (ROOT / "jxas" / "pretrained" / name / "card.md").read_text()
    m = model.config["metrics"]["test"]
    assert f"{m['eta']:.2f}" in card and f"{m['median_pearson']:.4f}" in card
    assert "Retrain" in card and model.config["training"]["command"] in card
    ds = _dataset(model)
    idx = _default_eval_idx(model, ds)
    assert 0 < len(idx) < len(ds)  # the held-out groups, not the whole set
    sp = model.predict(unstack(ds.structures(idx[:1]))[0])
    ref = ds.spectra(idx[:1])[0]
    assert sp.mu.shape == ref.shape and np.all(np.isfinite(sp.mu)) and np.all(np.asarray(sp.mu) > 0)
    # one held-out spectrum is predicted far better than by a flat line at its mean
    mse = float(np.mean((np.asarray(sp.mu) - ref) ** 2))
    assert mse < np.var(ref)


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_reproduces_card_metrics(name):
    from jxas.train.forward import evaluate

    model = load_model(name)
    m = evaluate(model, _dataset(model))
    rec = model.config["metrics"]["test"]
    assert m["n"] == rec["n"]
    for k in ("eta", "eta_edge", "median_mse", "median_pearson", "median_peak_de"):
        np.testing.assert_allclose(m[k], rec[k], rtol=1e-3, err_msg=k)
