"""Shape-aware training losses (jxas.train.losses) and the train_forward options that use them."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jxas.train.losses import SpectrumLoss, make_spectrum_loss

E = np.linspace(7100.0, 7160.0, 121)


def _spectrum(shift=0.0, h2=0.9):
    """Edge step plus two resonances of heights 1 and ``h2`` (unconvolved-spectrum-like)."""
    e = jnp.asarray(E)
    edge = 1.0 / (1.0 + jnp.exp(-(e - 7112.0 - shift) / 0.8))
    return edge + 0.6 * jnp.exp(-((e - 7120.0 - shift) / 2.0) ** 2) + (h2 - 0.4) * jnp.exp(-((e - 7135.0) / 3.0) ** 2)


def test_default_is_plain_mse():
    p, r = _spectrum(0.3), _spectrum()
    assert SpectrumLoss().is_mse
    np.testing.assert_allclose(make_spectrum_loss(E)(p, r), jnp.mean((p - r) ** 2), rtol=1e-6)
    np.testing.assert_allclose(make_spectrum_loss(E, {})(p, r), jnp.mean((p - r) ** 2), rtol=1e-6)


@pytest.mark.parametrize("opts", [{"edge": 4.0}, {"deriv": 0.1}, {"peak": 0.01},
                                  {"edge": 2.0, "deriv": 0.1, "peak": 0.01}])
def test_terms_vanish_at_the_reference_and_grow_with_the_error(opts):
    f = make_spectrum_loss(E, opts)
    r = _spectrum()
    assert float(f(r, r)) == pytest.approx(0.0, abs=1e-7)
    assert 0 < float(f(_spectrum(0.5), r)) < float(f(_spectrum(2.0), r))


def test_peak_term_sees_which_resonance_is_higher():
    """Two predictions with the same MSE: the one that swaps the order of the resonances costs more."""
    r = _spectrum(h2=0.95)  # second resonance just below the first
    right, wrong = _spectrum(h2=0.90), _spectrum(h2=1.00)  # same |dh| = 0.05, wrong one above the first
    mse = make_spectrum_loss(E)
    peak = make_spectrum_loss(E, {"peak": 1.0, "peak_temperature": 0.02})
    np.testing.assert_allclose(mse(right, r), mse(wrong, r), rtol=1e-5)
    assert float(peak(wrong, r)) > 2.0 * float(peak(right, r))


def test_edge_weight_moves_weight_into_the_window():
    r = _spectrum()
    near, far = r.at[50].add(0.1), r.at[115].add(0.1)  # E = 7125 (in the window) and 7157.5 eV (outside)
    f = make_spectrum_loss(E, {"edge": 4.0, "edge_window": 35.0})
    assert float(f(near, r)) > 2.0 * float(f(far, r))


def test_gradients_match_finite_differences():
    f = make_spectrum_loss(E, {"edge": 2.0, "deriv": 0.1, "peak": 0.01})
    r = _spectrum()
    check_grads(lambda p: f(p, r), (_spectrum(0.4),), order=1, modes=("rev",), atol=1e-3, rtol=1e-3)


def test_batched_equals_looped():
    f = make_spectrum_loss(E, {"edge": 1.0, "deriv": 0.1, "peak": 0.01})
    p = jnp.stack([_spectrum(s) for s in (0.1, 0.5, 1.5)])
    r = jnp.stack([_spectrum(), _spectrum(0.2), _spectrum(h2=1.0)])
    np.testing.assert_allclose(jax.vmap(f)(p, r), [f(a, b) for a, b in zip(p, r, strict=True)], rtol=1e-5)


def test_rejects_bad_options():
    with pytest.raises(ValueError):
        SpectrumLoss(deriv=-1.0)
    with pytest.raises(ValueError):
        SpectrumLoss(peak_temperature=0.0)
    with pytest.raises(TypeError):
        make_spectrum_loss(E, {"peek": 1.0})


def _tiny_fe(path):
    """12 Fe complexes (whole groups) of the project's FEFF10 set, every 4th energy point."""
    from pathlib import Path

    from jxas.data import Dataset
    from jxas.structure import unstack

    src_path = Path(__file__).resolve().parents[1] / "datasets" / "fe-k-feff10-default.h5"
    if not src_path.exists():
        pytest.skip("datasets/fe-k-feff10-default.h5 not present")
    src = Dataset(src_path)
    groups = np.asarray(src.groups)
    keep = set(sorted(set(groups.tolist()))[:12])
    idx = np.array([i for i, g in enumerate(groups) if g in keep])
    dst = Dataset.create(path, element="Fe", edge="K", energy=src.energy[::4], recipe=src.recipe, n_max=src.n_max)
    mu = src.spectra(idx)[:, ::4]
    dst.append([{"structure": s, "mu": mu[j], "key": str(src.keys[i]), "group": str(groups[i])}
                for j, (i, s) in enumerate(zip(idx, unstack(src.structures(idx)), strict=True))])
    return dst


def test_train_forward_with_loss_options_and_last_epoch_on_train_plus_val(tmp_path):
    from jxas.train import TrainConfig
    from jxas.train.forward import train_forward

    ds = _tiny_fe(tmp_path / "fe.h5")
    groups = np.asarray(ds.groups)
    g = sorted(set(groups.tolist()))
    test = np.flatnonzero(np.isin(groups, g[:2]))
    pool = np.flatnonzero(~np.isin(groups, g[:2]))
    cfg = {"kind": "mlp", "descriptor": "eradial", "hidden": [32], "dropout": 0.0}
    tc = TrainConfig(epochs=3, batch_size=16, progress=False, patience=None)
    model = train_forward(ds, cfg, tc, key=jax.random.key(0), out_dir=tmp_path / "run", select="last",
                          loss={"deriv": 0.1, "peak": 0.01, "edge": 1.0},
                          split={"train": pool, "val": [], "test": test})
    tr = model.config["training"]
    assert tr["select"] == "last" and tr["n_val"] == 0 and tr["loss"]["deriv"] == 0.1
    assert set(model.config["metrics"]) == {"test"}
    assert "neighbour_nn" in model.config["domain"]
    with pytest.raises(ValueError, match="too few groups"):
        train_forward(ds, cfg, tc, key=jax.random.key(0), out_dir=tmp_path / "run2",
                      split={"train": pool, "val": [], "test": test})
