"""Out-of-bag error model and sigma-error correlation summaries of the inverse models."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import jxas
from jxas.inverse import calibrate as C
from jxas.inverse.errmodel import ErrorModel, oob_squared_errors


def test_oob_squared_errors_known_answer():
    # 3 entries, 3 members, 2 outputs; entry 2 was drawn by every member (no OOB estimate)
    means = np.array([[[1.0, 0.0], [3.0, 0.0], [5.0, 2.0]],
                      [[0.0, 0.0], [0.0, 4.0], [9.0, 9.0]],
                      [[7.0, 7.0], [7.0, 7.0], [7.0, 7.0]]])
    y = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    w = np.array([[0, 0, 2], [1, 0, 1], [1, 1, 1]])
    err2, ok = oob_squared_errors(means, y, w)
    np.testing.assert_array_equal(ok, [True, True, False])
    np.testing.assert_allclose(err2[0], [(2.0 - 0.0) ** 2, 0.0])  # members 0, 1 left it out: mean (2, 0)
    np.testing.assert_allclose(err2[1], [(0.0 - 1.0) ** 2, (4.0 - 1.0) ** 2])  # member 1 only
    assert np.all(np.isnan(err2[2]))
    with pytest.raises(ValueError, match="shapes"):
        oob_squared_errors(means, y[:2], w)


def test_error_model_returns_neighbour_mean_and_roundtrips(tmp_path, rng):
    # two clusters of spectra: the ensemble is 10x worse (in squared error) on cluster B
    a = rng.normal(0.0, 0.01, (40, 6))
    b = rng.normal(1.0, 0.01, (40, 6))
    lib = np.vstack([a, b])
    err2 = np.vstack([np.full((40, 3), 0.1), np.full((40, 3), 1.0)]) * rng.uniform(0.9, 1.1, (80, 3))
    em = ErrorModel(lib, err2, k=5)
    q = np.vstack([rng.normal(0.0, 0.01, (3, 6)), rng.normal(1.0, 0.01, (3, 6))])
    v = em(q)
    assert v.shape == (6, 3)
    assert np.all(np.abs(v[:3] - 0.1) < 0.02) and np.all(np.abs(v[3:] - 1.0) < 0.2)
    # exact: the mean of the k nearest library rows
    d = ((lib - q[4]) ** 2).sum(1)
    np.testing.assert_allclose(em(q[4]), err2[np.argsort(d)[:5]].mean(0), rtol=1e-5)
    em.save(tmp_path)
    em2 = ErrorModel.load(tmp_path)
    assert em2.k == 5
    np.testing.assert_allclose(em2(q), v, rtol=1e-6)
    assert ErrorModel.load(tmp_path / "nothing") is None


def test_error_model_rejects_bad_input():
    with pytest.raises(ValueError, match="k must"):
        ErrorModel(np.zeros((3, 4)), np.zeros((3, 2)), k=4)
    with pytest.raises(ValueError, match="NaN"):
        ErrorModel(np.full((3, 4), np.nan), np.zeros((3, 2)), k=1)
    with pytest.raises(ValueError, match="points"):
        ErrorModel(np.zeros((3, 4)), np.zeros((3, 2)), k=1)(np.zeros((2, 5)))


def test_rms_summary_and_gaussian_ceiling(rng):
    # sample 0 has sigma (1, 3), sample 1 (2, 2): equal mean sigma, different RMS sigma
    y = np.zeros((3, 2))
    mean = np.array([[1.0, 3.0], [2.0, 2.0], [0.5, 0.5]])
    sigma = np.array([[1.0, 3.0], [2.0, 2.0], [0.5, 0.5]])
    mse = (mean**2).mean(1)
    rms = np.sqrt((sigma**2).mean(1))
    assert C.sigma_error_correlation(y, mean, sigma, summary="rms") == pytest.approx(np.corrcoef(rms, mse)[0, 1])
    assert C.sigma_error_correlation(y, mean, sigma) == pytest.approx(np.corrcoef(sigma.mean(1), mse)[0, 1])
    with pytest.raises(ValueError, match="summary"):
        C.sigma_error_correlation(y, mean, sigma, summary="median")
    # the reachable correlation grows with the spread of sigma between samples; known answer for equal
    # sigmas over 50 independent outputs: MSE = s^2 chi2_50 / 50, so Cov(s, MSE) = Cov(s, s^2) and
    # Var(MSE) = Var(s^2) + E[s^4] 2 / 50
    for lo, hi in ((0.95, 1.05), (0.2, 3.0)):
        s = rng.uniform(lo, hi, 400)
        expect = np.cov(s, s**2)[0, 1] / np.sqrt(s.var() * (np.var(s**2) + np.mean(s**4) * 2 / 50))
        got = C.gaussian_correlation_ceiling(s[:, None] * np.ones((1, 50)), n_draws=100)
        assert got == pytest.approx(expect, abs=0.05), (lo, hi, got, expect)
    wide = rng.uniform(0.2, 3.0, (400, 1)) * np.ones((1, 50))
    rep = C.calibration_report(np.zeros_like(wide), rng.normal(size=wide.shape) * wide, wide)
    assert set(rep) >= {"pearson_sigma_mse", "pearson_rms_sigma_mse", "spearman_sigma_mse", "pearson_gaussian_ceiling",
                        "pearson_gaussian_ceiling_correlated", "error_participation_ratio"}
    # independent errors: the correlated ceiling is the independent one, ~all 50 outputs participate
    assert rep["error_participation_ratio"] > 40
    assert rep["pearson_gaussian_ceiling_correlated"] == pytest.approx(rep["pearson_gaussian_ceiling"], abs=0.03)


def test_error_correlation_and_correlated_ceiling(rng):
    n, d = 400, 50
    s = rng.uniform(0.2, 3.0, n)
    sigma = s[:, None] * np.ones((1, d))
    # one error shared by every output of a sample: a single independent component
    shared = rng.normal(size=(n, 1)) * sigma
    corr, pr = C.error_correlation(shared, np.zeros_like(sigma), sigma)
    assert pr == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(corr, 1.0, atol=1e-9)
    _, pr_ind = C.error_correlation(rng.normal(size=(n, d)) * sigma, np.zeros_like(sigma), sigma)
    assert 40 < pr_ind <= d
    # fully correlated outputs: MSE = s^2 chi2_1, so Var(MSE) = 3 E[s^4] - E[s^2]^2
    expect = np.cov(s, s**2)[0, 1] / np.sqrt(s.var() * (3 * np.mean(s**4) - np.mean(s**2) ** 2))
    got = C.gaussian_correlation_ceiling(sigma, corr=np.ones((d, d)), n_draws=100)
    assert got == pytest.approx(expect, abs=0.05)
    assert got < C.gaussian_correlation_ceiling(sigma, n_draws=100) - 0.1
    # a constant column of errors (sigma ~ 0 there) gets an independent unit row, not NaN
    y = rng.normal(size=(n, d)) * sigma
    y[:, 0] = 0.0
    corr, _ = C.error_correlation(y, np.zeros_like(y), sigma)
    assert np.all(np.isfinite(corr)) and corr[0, 0] == 1.0 and np.all(corr[0, 1:] == 0.0)
    with pytest.raises(ValueError, match="correlation matrix"):
        C.gaussian_correlation_ceiling(sigma, corr=np.ones((d, d + 1)))
    with pytest.raises(ValueError, match="correlation matrix"):
        C.gaussian_correlation_ceiling(sigma, corr=np.triu(np.ones((d, d))))
    bad = np.full((3, 3), -0.9) + 1.9 * np.eye(3)  # unit diagonal, eigenvalue 1 - 1.8 < 0
    with pytest.raises(ValueError, match="semi-definite"):
        C.gaussian_correlation_ceiling(np.ones((5, 3)), corr=bad)
    with pytest.raises(ValueError, match="N >= 3"):
        C.error_correlation(np.zeros((2, 4)), np.zeros((2, 4)), np.ones((2, 4)))


def test_attach_error_model_tiny_run(tmp_path):
    """A tiny ensemble gets an error model from its real bootstrap; sigma grows where OOB errors are large."""
    from test_inverse_train import train_toy

    from jxas.inverse.train import attach_error_model, bootstrap_weights, ensemble_predict

    model, rep, ds, data, grid, (tr, va, te), key, _ = train_toy(120, seed=5, epochs=4)
    assert model.config["error_model"] == {"kind": "oob_knn", "k": 3, "n_library": model.errmodel.library.shape[0],
                                           "blocks": None}
    # the same draw rebuilt outside training gives the same library
    w = bootstrap_weights(data.groups[tr], 4, key=jax.random.split(key, 3)[0])
    assert model.errmodel.library.shape[0] == int(((w == 0).sum(1) > 0).sum())
    again = attach_error_model(dataclasses_replace_errfree(model), data, tr, va, w, k=3)
    np.testing.assert_allclose(again.errmodel.err2, model.errmodel.err2, rtol=1e-5)
    np.testing.assert_allclose(again.config["sigma_scale"], model.config["sigma_scale"], rtol=1e-5)
    # the error model's variance is added before calibration: raw sigma with it >= without
    on_grid = np.stack([np.interp(grid, data.store_energy, s) for s in data.spec]).astype(np.float32)
    from jxas.inverse.model import combine

    p = ensemble_predict(model.config, model.params, on_grid[te])
    _, s0 = combine(p, model.config)
    _, s1 = combine(p, model.config, model.error_variance(on_grid[te]))
    assert np.all(s1 >= s0) and np.any(s1 > s0)
    assert "g2_pearson_rms_sigma_mse" in rep["test"]
    # restricted to the G2 block, the other outputs keep the ensemble variance alone
    g2_only = attach_error_model(dataclasses_replace_errfree(model), data, tr, va, w, k=3, blocks=("g2",))
    ev = g2_only.error_variance(on_grid[te])
    assert np.all(ev[:, 50:] == 0) and np.all(ev[:, :50] == model.error_variance(on_grid[te])[:, :50])
    assert g2_only.config["error_model"]["blocks"] == ["g2"]
    with pytest.raises(ValueError, match="unknown output blocks"):
        attach_error_model(dataclasses_replace_errfree(model), data, tr, va, w, k=3, blocks=("g3",))
    # round trip through disk keeps the error model; a config naming a missing one is refused
    d = model.save(tmp_path / "toy")
    m2 = jxas.inverse.load_inverse_model(d)
    spec = jxas.Spectrum(energy=ds.energy, mu=ds.mu[0])
    r_a, r_b = model.predict(spec, normalise=False), m2.predict(spec, normalise=False)
    np.testing.assert_allclose(r_a.g2_sigma, r_b.g2_sigma, rtol=1e-5)
    (d / "errmodel.npz").unlink()
    with pytest.raises(ValueError, match="errmodel.npz"):
        jxas.inverse.load_inverse_model(d)
    # saving a model without one removes a stale file
    plain = dataclasses_replace_errfree(model)
    plain.config.pop("error_model")
    model.save(tmp_path / "toy2")
    plain.save(tmp_path / "toy2")
    assert not (tmp_path / "toy2" / "errmodel.npz").exists()


def dataclasses_replace_errfree(model):
    import dataclasses

    return dataclasses.replace(model, config=dict(model.config), errmodel=None)
