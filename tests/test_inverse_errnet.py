"""Learned error model (jxas.inverse.errnet): features, the MLP regressor, fit/save/load, and a tiny attached run."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import jxas
from jxas.inverse.errnet import ErrorNet, apply_mlp, error_features, fit_mlp

OUTPUTS = [["g2", 50], ["r1", 1], ["cn", 1], ["comp", 3], ["ox", 1]]
CFG = {"outputs": OUTPUTS, "heteroscedastic": False}
N_OUT = 56


def _toy(rng, n=240, m=6, e=30):
    """Spectra whose first point sets how wrong (and how spread) the members are on the G2 block."""
    spec = rng.uniform(0.0, 1.5, (n, e))
    hard = spec[:, 0]  # 0 .. 1.5
    y = rng.normal(0.0, 1.0, (n, N_OUT))
    scale = 0.05 + hard  # per-spectrum error scale
    members = y[:, None, :] + scale[:, None, None] * rng.normal(size=(n, m, N_OUT))
    groups = np.array([f"g{i // 3}" for i in range(n)])
    weights = (rng.uniform(size=(n, m)) < 0.6).astype(float)
    weights[:, 0] = 0.0  # every entry out of bag for members 0 and (below) 1
    weights[:, 1] = 0.0
    return spec, members, y, weights, groups, scale


def test_features_use_only_the_given_members_and_skip_excluded_neighbours(rng):
    spec, members, y, w, groups, _ = _toy(rng, n=30)
    lib, lib_mse = spec[:20], rng.uniform(0.1, 1.0, 20)
    pm, pb = spec.mean(0), np.eye(spec.shape[1])[:4]
    x = error_features(members, spec, CFG, lib, lib_mse, pm, pb, k=3)
    assert x.shape == (30, 5 + 2 + 3 + 3 + 1 + 3 + 4) and np.all(np.isfinite(x))
    # the first feature is the log mean (ddof 1) member variance of the G2 block over the members used
    use = np.zeros((30, members.shape[1]), bool)
    use[:, :3] = True
    x_use = error_features(members, spec, CFG, lib, lib_mse, pm, pb, k=3, use=use)
    expect = np.log(members[:, :3, :50].var(1, ddof=1).mean(1) + 1e-8)
    np.testing.assert_allclose(x_use[:, 0], expect, rtol=1e-6)
    # a library spectrum's own row is its nearest neighbour (distance 0) unless excluded
    own = error_features(members[:20], spec[:20], CFG, lib, lib_mse, pm, pb, k=1)
    excl = error_features(members[:20], spec[:20], CFG, lib, lib_mse, pm, pb, k=1, exclude=np.eye(20, dtype=bool))
    assert np.all(own[:, 5] < np.log(1e-3)) and np.all(excl[:, 5] > np.log(1e-2))
    with pytest.raises(ValueError, match="2 members"):
        error_features(members, spec, CFG, lib, lib_mse, pm, pb, k=3, use=np.eye(30, members.shape[1], dtype=bool))
    with pytest.raises(ValueError, match="points"):
        error_features(members, spec[:, :10], CFG, lib, lib_mse, pm, pb, k=3)


def test_fit_mlp_learns_a_nonlinear_function_and_rejects_bad_input(rng):
    x = rng.normal(size=(400, 3)).astype(np.float32)
    y = np.abs(x[:, 0]) + 0.5 * x[:, 1]
    groups = np.array([f"g{i // 4}" for i in range(400)])
    p = fit_mlp(x[:300], y[:300], groups[:300], key=jax.random.key(0), n_nets=2, steps=1500)
    assert p["w1"].shape == (2, 3, 64)
    pred = apply_mlp(p, x[300:])
    assert np.corrcoef(pred, y[300:])[0, 1] > 0.9
    assert np.corrcoef(np.abs(x[300:, 0]), y[300:])[0, 1] < 0.9  # one input alone does not explain it
    with pytest.raises(ValueError, match="NaN"):
        fit_mlp(np.full((20, 2), np.nan), np.zeros(20), groups[:20], key=jax.random.key(0))
    with pytest.raises(ValueError, match="5 groups"):
        fit_mlp(x[:8], y[:8], groups[:8], key=jax.random.key(0))
    with pytest.raises(ValueError, match="groups"):
        fit_mlp(x[:8], y[:7], groups[:8], key=jax.random.key(0))


def test_error_net_follows_the_error_and_roundtrips(tmp_path, rng):
    spec, members, y, w, groups, scale = _toy(rng)
    net = ErrorNet.fit(CFG, spec, members, y, w, groups, key=jax.random.key(1), k=5, steps=1500, n_nets=2)
    assert net.profile[50:].sum() == 0 and net.profile[:50].mean() == pytest.approx(1.0)
    q_spec, q_members, q_y, _, _, q_scale = _toy(np.random.default_rng(7), n=60)
    v = net(q_spec, q_members)
    assert v.shape == (60, N_OUT) and np.all(v[:, 50:] == 0) and np.all(v[:, :50] > 0)
    # the predicted G2 MSE follows the true error scale of new spectra
    assert np.corrcoef(np.log(v[:, :50].mean(1)), np.log(q_scale))[0, 1] > 0.8
    np.testing.assert_allclose(net(q_spec[3], q_members[3]), v[3], rtol=1e-5)
    net.save(tmp_path)
    net2 = ErrorNet.load(tmp_path)
    np.testing.assert_allclose(net2(q_spec, q_members), v, rtol=1e-5)
    assert ErrorNet.load(tmp_path / "nothing") is None
    np.savez(tmp_path / "errnet.npz", library=np.zeros((3, 4)))
    with pytest.raises(ValueError, match="not a valid learned error model"):
        ErrorNet.load(tmp_path)
    with pytest.raises(ValueError, match="out-of-bag"):
        ErrorNet.fit(CFG, spec, members, y, np.ones_like(w), groups, key=jax.random.key(1))


def test_attach_error_net_tiny_run(tmp_path):
    from test_inverse_train import train_toy

    from jxas.inverse.model import combine
    from jxas.inverse.train import attach_error_net, ensemble_predict

    model, _, ds, data, grid, (tr, va, te), _, w = train_toy(150, seed=3, epochs=3)
    with_net = attach_error_net(model, data, tr, va, w, key=jax.random.key(2), k=3, steps=300, n_nets=2)
    assert with_net.errmodel is None and with_net.errnet is not None  # the k-NN model is replaced
    assert with_net.config["error_model"]["kind"] == "oob_mlp"
    on_grid = np.stack([np.interp(grid, data.store_energy, s) for s in data.spec]).astype(np.float32)
    p = ensemble_predict(with_net.config, with_net.params, on_grid[te])
    ev = with_net.error_variance(on_grid[te], p)
    np.testing.assert_allclose(with_net.error_variance(on_grid[te]), ev, rtol=1e-4)  # members computed inside
    _, s0 = combine(p, with_net.config)
    _, s1 = combine(p, with_net.config, ev)
    assert np.all(s1[:, :50] > s0[:, :50]) and np.all(s1[:, 50:] == s0[:, 50:])
    d = with_net.save(tmp_path / "toy")
    assert (d / "errnet.npz").is_file() and not (d / "errmodel.npz").exists()
    m2 = jxas.inverse.load_inverse_model(d)
    spec = jxas.Spectrum(energy=ds.energy, mu=ds.mu[0])
    np.testing.assert_allclose(with_net.predict(spec, normalise=False).g2_sigma,
                               m2.predict(spec, normalise=False).g2_sigma, rtol=1e-4)
    (d / "errnet.npz").unlink()
    with pytest.raises(ValueError, match="errnet.npz"):
        jxas.inverse.load_inverse_model(d)
