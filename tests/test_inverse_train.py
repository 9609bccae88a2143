"""A tiny inverse-model training run really learns (synthetic spectra with a known distance dependence)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import jxas
from jxas.inverse import features as F
from jxas.inverse.train import model_grid, prepare, train_inverse
from jxas.structure import Structure, stack

OCT = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)
E0 = 7120.0


class ToyDataset:
    """Octahedral MO6 (+ MO4 for CN variety) clusters and spectra whose post-edge oscillation encodes r.

    mu(E) = arctan edge + A sin(2 k r + phi) exp(-2 k^2 s^2) (the EXAFS form, Sayers, Stern & Lytle
    1971), with k from E - E0; the edge moves +2 eV per oxidation state. A network that learns r from
    it must read the oscillation period.
    """

    element, edge = "Fe", "K"

    def __init__(self, n: int, seed: int):
        rng = np.random.default_rng(seed)
        self.r = rng.uniform(1.85, 2.35, n)
        self.cn = rng.choice([4, 6], n)
        self.ox = rng.choice([2, 3], n).astype(np.int16)
        self.energy = np.arange(E0 - 20.0, E0 + 100.0, 0.5)
        k = np.sqrt(np.clip(self.energy - E0, 0, None) / F.KE)
        mus, ss = [], []
        for r, cn, ox in zip(self.r, self.cn, self.ox, strict=True):
            e0 = E0 + 2.0 * (ox - 2)
            edge = 0.5 + np.arctan((self.energy - e0) / 1.5) / np.pi
            osc = (0.04 * cn) * np.sin(2 * k * r + 0.5) * np.exp(-2 * k**2 * 0.005) * (self.energy > e0)
            mus.append(edge + osc)
            pos = np.vstack([[0, 0, 0], r * OCT[:cn]])
            ss.append(Structure.from_arrays(pos, [26] + [8] * cn))
        self.mu = np.stack(mus).astype(np.float32)
        self._s = stack(ss, n=7)
        self.groups = np.array([f"c{i}" for i in range(n)])
        self.oxidation_states = self.ox

    def __len__(self):
        return len(self.r)

    def spectra(self, idx=None):
        return self.mu if idx is None else self.mu[np.asarray(idx)]

    def structures(self, idx=None):
        if idx is None:
            return self._s
        return jax.tree.map(lambda x: x[np.asarray(idx)], self._s)


def train_toy(n: int, seed: int, epochs: int):
    """A 4-member toy inverse ensemble with an out-of-bag k-NN error model (k = 3), for the error-model tests:
    ``(model, report, dataset, prepared data, grid, (train, val, test) indices, key, bootstrap weights)``."""
    from jxas.inverse.train import bootstrap_weights
    from jxas.train import TrainConfig, group_split

    ds = ToyDataset(n, seed=seed)
    grid = model_grid(E0 - 10.0, E0 + 90.0, 1.0)
    data = prepare(ds, grid)
    tr, va, te = group_split(data.groups, (0.70, 0.15, 0.15), seed=0)
    cfg = {"arch": "cnn", "energy": grid, "channels": (4, 8, 8), "dense": (16,)}
    tc = TrainConfig(epochs=epochs, batch_size=32, learning_rate=3e-3, weight_decay=0.0, warmup_epochs=0.5,
                     clip_norm=None, patience=None, progress=False)
    key = jax.random.key(0)
    model, rep = train_inverse(data, cfg, key=key, members=4, split=(tr, va, te), train_config=tc,
                               augment=F.AugmentConfig(max_shift=0.5, max_fwhm=1.0, max_noise=0.002), name="toy",
                               element="Fe", error_model_k=3)
    w = bootstrap_weights(data.groups[tr], 4, key=jax.random.split(key, 3)[0])
    return model, rep, ds, data, grid, (tr, va, te), key, w


def test_tiny_training_learns_distance_and_saves(tmp_path):
    from jxas.train import TrainConfig

    ds = ToyDataset(200, seed=0)
    grid = model_grid(E0 - 10.0, E0 + 90.0, 1.0)
    data = prepare(ds, grid)
    assert data.donors == [8] and data.y.shape == (200, 50 + 1 + 1 + 2 + 1)
    cfg = {"arch": "cnn_fft", "energy": grid, "channels": (4, 8, 8), "dense": (32, 16), "n_fft": 12}
    tc = TrainConfig(epochs=25, batch_size=32, learning_rate=3e-3, weight_decay=0.0, warmup_epochs=0.5,
                     clip_norm=None, patience=None, progress=False)
    aug = F.AugmentConfig(max_shift=0.5, max_fwhm=1.0, max_noise=0.002)
    model, rep = train_inverse(data, cfg, key=jax.random.key(0), members=3, train_config=tc, augment=aug,
                               name="toy", element="Fe")
    baseline = np.median(np.abs(ds.r - np.median(ds.r)))  # predicting the median distance
    test = rep["test"]
    assert test["r1_median_abs_err"] < 0.35 * baseline, (test, baseline)
    # the oxidation state moves the edge by 2 eV: read from the edge position (2 or 3 at random)
    assert test["ox_exact_fraction"] > 0.9
    assert rep["history"]["train_loss"][-1] < 0.5 * rep["history"]["train_loss"][0]
    # the groups seen in training/validation are stored (held-out evaluation on a grown dataset)
    sg = model.config["split_groups"]
    assert len(sg["train"]) == rep["n_train"] and len(sg["val"]) == rep["n_val"]  # one entry per toy group
    assert not set(sg["train"]) & set(sg["val"])
    # calibrated sigma scale is stored per output and the model round-trips through disk
    assert len(model.config["sigma_scale"]) == data.y.shape[1]
    d = model.save(tmp_path / "toy")
    m2 = jxas.inverse.load_inverse_model(d)
    spec = jxas.Spectrum(energy=ds.energy, mu=ds.mu[0])
    res = m2.predict(spec, normalise=False)
    np.testing.assert_allclose(res.members, model.predict(spec, normalise=False).members, rtol=1e-6)
    assert abs(res.r1 - ds.r[0]) < 4 * baseline
    # alignment recovers a known energy offset of a training-like spectrum
    de = m2.alignment_shift(ds.energy + 3.0, ds.mu[5])
    assert abs(de + 3.0) <= 0.5


@pytest.mark.parametrize("bad", ["nan", "short"])
def test_prepare_rejects_bad_data(bad):
    ds = ToyDataset(8, seed=1)
    if bad == "nan":
        ds.mu[3, 10] = np.nan
        with pytest.raises(ValueError, match=r"entries \[3\].*non-finite"):
            prepare(ds, model_grid(E0 - 10.0, E0 + 90.0, 1.0))
    else:
        ds._s = ds._s.replace(mask=ds._s.mask.at[2, 1:].set(False))
        with pytest.raises(ValueError, match="no non-hydrogen neighbour"):
            prepare(ds, model_grid(E0 - 10.0, E0 + 90.0, 1.0))


class NoisyLabelToy(ToyDataset):
    """ToyDataset whose structures differ from what the spectrum encodes by a known, ox-dependent noise.

    The spectrum encodes r; the structure (the label) sits at r + level * N(0, 1) with level 0.015 Å for
    oxidation state 2 and 0.10 Å for 3 (read from the 2 eV edge shift): a heteroscedastic regression whose
    irreducible error a mean-variance ensemble must report.
    """

    LEVEL = {2: 0.015, 3: 0.10}

    def __init__(self, n: int, seed: int):
        super().__init__(n, seed)
        rng = np.random.default_rng(seed + 100)
        self.level = np.array([self.LEVEL[int(o)] for o in self.ox])
        self.r_label = self.r + self.level * rng.standard_normal(n)
        ss = [Structure.from_arrays(np.vstack([[0, 0, 0], r * OCT[:cn]]), [26] + [8] * cn)
              for r, cn in zip(self.r_label, self.cn, strict=True)]
        self._s = stack(ss, n=7)


def test_heteroscedastic_sigma_tracks_known_noise():
    from jxas.inverse.model import combine, output_slices
    from jxas.inverse.train import ensemble_predict
    from jxas.train import TrainConfig

    ds = NoisyLabelToy(240, seed=3)
    grid = model_grid(E0 - 10.0, E0 + 90.0, 1.0)
    data = prepare(ds, grid)
    cfg = {"arch": "cnn_fft", "energy": grid, "channels": (4, 8, 8), "dense": (32, 16), "n_fft": 12,
           "heteroscedastic": True}
    tc = TrainConfig(epochs=80, batch_size=32, learning_rate=3e-3, weight_decay=0.0, warmup_epochs=0.5,
                     clip_norm=None, patience=None, progress=False)
    model, rep = train_inverse(data, cfg, key=jax.random.key(1), members=3, train_config=tc, augment=None,
                               mse_warmup_epochs=20, name="het-toy", element="Fe")
    assert model.config["heteroscedastic"] and model.config["mse_warmup_epochs"] == 20
    assert rep["history"]["stage"] == [0.0] * 20 + [1.0] * 60
    # total sigma (mean member variance + spread of member means) of r1, split by the labels' noise level
    on_grid = np.stack([np.interp(grid, data.store_energy, s) for s in data.spec])
    p = ensemble_predict(model.config, model.params, on_grid)
    mean, sigma = combine(p, model.config)
    r1 = output_slices(model.config["outputs"])["r1"]
    s_lo = np.median(sigma[ds.ox == 2, r1])
    s_hi = np.median(sigma[ds.ox == 3, r1])
    # measured when written: 0.049 and 0.081 Å (noise 0.015 and 0.10 Å; ensemble-mean error 0.013 and 0.071 Å)
    assert s_hi > 1.4 * s_lo, (s_lo, s_hi)
    assert 0.5 * 0.10 < s_hi < 2.0 * 0.10, s_hi
    # the aleatoric part carries it: without the variance head the member spread alone is far below 0.10 Å
    o = mean.shape[1]
    aleatoric = np.sqrt((p[..., o:] ** 2).mean(1))[:, r1][:, 0]
    assert np.median(aleatoric[ds.ox == 3]) > 2.0 * np.median(p[ds.ox == 3][..., :o].std(1)[:, r1])
    # the per-entry sigma orders the per-entry errors (0.62 measured)
    err = np.abs(mean[:, r1] - data.y[:, r1])[:, 0]
    assert np.corrcoef(sigma[:, r1][:, 0], err)[0, 1] > 0.4
