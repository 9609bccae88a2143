"""Inverse models: targets, features, peaks, calibration, ensemble evaluation, save/load, bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TOL

import jxas
from jxas.inverse import calibrate as C
from jxas.inverse import features as F
from jxas.inverse.model import apply_members, init_members, make_module
from jxas.inverse.peaks import find_shells, shell_distances
from jxas.inverse.targets import composition, first_shell, g2, g2_grid, structure_targets
from jxas.structure import Structure, stack

OCT = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)


def aqua_complex(r_mo=2.10, r_oh=0.97, rng=None):
    """Fe(H2O)6-like cluster: O octahedron at r_mo, two H per O pointing outwards (H at ~2.7 Å)."""
    pos, num = [np.zeros(3)], [26]
    for v in OCT:
        o = r_mo * v
        pos.append(o)
        num.append(8)
        perp = np.roll(v, 1)
        for sgn in (1, -1):
            pos.append(o + r_oh * (0.6 * v + sgn * 0.8 * perp))
            num.append(1)
    pos = np.array(pos)
    if rng is not None:
        pos[1:] += 0.02 * rng.standard_normal(pos[1:].shape)
    return Structure.from_arrays(pos, num)


def random_rotation(rng):
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    return q * np.sign(np.diag(r))


# --- targets -------------------------------------------------------------------------------------------

def test_first_shell_excludes_hydrogen_and_counts_donors():
    s = aqua_complex(2.10)
    shell, cn, r1 = first_shell(s)
    assert float(cn) == 6
    assert abs(float(r1) - 2.10) < 1e-12
    # the H atoms at ~2.7 Å are within 1.25 * 2.10 = 2.625 Å? they must not count either way
    assert not np.any(np.asarray(shell)[np.asarray(s.numbers) == 1])
    comp = np.asarray(composition(s, [8, 7]))
    np.testing.assert_array_equal(comp, [6, 0, 0])


def test_first_shell_radius_rule_mixed_shell():
    # 4 O at 1.95 Å and 2 Cl at 2.40 Å (<= 1.25 * 1.95 = 2.4375): CN 6; a Cl at 2.50 Å is outside
    pos = np.vstack([[0, 0, 0], 1.95 * OCT[:4], 2.40 * OCT[4:], [[2.5, 2.5, 0.0]]])
    pos[-1] = 2.50 * np.array([1, 1, 0]) / np.sqrt(2)
    s = Structure.from_arrays(pos, [29, 8, 8, 8, 8, 17, 17, 17])
    _, cn, r1 = first_shell(s)
    assert float(cn) == 6
    assert abs(float(r1) - (4 * 1.95 + 2 * 2.40) / 6) < 1e-12
    np.testing.assert_array_equal(np.asarray(composition(s, [8, 17])), [4, 2, 0])


def test_g2_matches_formula_and_is_invariant(rng):
    s = aqua_complex(2.05, rng=rng)
    got = np.asarray(g2(s))
    pos, num, _ = s.real()
    r = np.linalg.norm(pos - pos[0], axis=1)[1:]
    mu = g2_grid()
    eta = 1.0 / (2.0 * (mu[1] - mu[0]) ** 2)
    fc = 0.5 * (np.cos(np.pi * r / 6.0) + 1.0)
    want = np.sum(0.1 * num[1:, None] * fc[:, None] * np.exp(-eta * (r[:, None] - mu) ** 2), axis=0)
    np.testing.assert_allclose(got, want, rtol=TOL["formula_rtol"], atol=TOL["formula_atol"])
    rot = random_rotation(rng)
    perm = np.concatenate([[0], 1 + rng.permutation(len(num) - 1)])
    s2 = Structure.from_arrays(pos[perm] @ rot.T + 1.3, num[perm])
    np.testing.assert_allclose(np.asarray(g2(s2)), got, rtol=TOL["invariance_rtol"], atol=1e-12)


def test_structure_targets_batched_equals_looped(rng):
    ss = [aqua_complex(r, rng=rng) for r in (1.9, 2.0, 2.2)]
    batch = stack(ss, n=25)
    t = structure_targets(batch, [8])
    for i, s in enumerate(ss):
        np.testing.assert_allclose(t["g2"][i], np.asarray(g2(s)), rtol=1e-5, atol=1e-7)
        assert t["cn"][i] == 6
        assert abs(t["r1"][i] - float(first_shell(s)[2])) < 1e-6


def test_structure_targets_rejects_isolated_absorber():
    s = Structure.from_arrays([[0, 0, 0], [1.0, 0, 0]], [26, 1])
    with pytest.raises(ValueError, match="no non-hydrogen neighbour"):
        structure_targets(stack([s]), [8])


# --- peaks ----------------------------------------------------------------------------------------------

def test_peaks_recover_shell_distances():
    # two shells: 6 O at 2.03 Å, 8 Fe at 3.07 Å: G2 peaks must sit at the shell distances
    pos = np.vstack([[0, 0, 0], 2.03 * OCT, 3.07 * np.array([[1, 1, 1], [1, 1, -1], [1, -1, 1], [-1, 1, 1],
                                                               [1, -1, -1], [-1, 1, -1], [-1, -1, 1],
                                                               [-1, -1, -1]]) / np.sqrt(3)])
    s = Structure.from_arrays(pos, [26] + [8] * 6 + [26] * 8)
    r, h, found = find_shells(g2(s))
    assert bool(np.all(found))
    np.testing.assert_allclose(np.asarray(r), [2.03, 3.07], atol=0.005)
    # an isolated shell is recovered exactly by the log-parabola
    single = Structure.from_arrays(np.vstack([[0, 0, 0], 2.2137 * OCT]), [26] + [8] * 6)
    r1, _, _ = find_shells(g2(single))
    assert abs(float(r1[0]) - 2.2137) < 1e-6


def test_shell_distances_members_spread():
    g = np.stack([np.asarray(g2(Structure.from_arrays(np.vstack([[0, 0, 0], d * OCT]), [26] + [8] * 6)))
                  for d in (2.00, 2.02, 2.04)])
    out = shell_distances(g)
    assert abs(out["r"][0] - 2.02) < 1e-5
    assert abs(out["sigma"][0] - np.std([2.00, 2.02, 2.04])) < 1e-5
    assert out["found"][0] == 1.0 and out["found"][1] == 0.0 and np.isnan(out["r"][1])


def test_peaks_flat_curve_finds_nothing():
    r, _, found = find_shells(jnp.zeros(50))
    assert not bool(np.any(found))
    assert np.all(np.isfinite(np.asarray(r)))


# --- calibration ----------------------------------------------------------------------------------------

def test_calibration_known_answer(rng):
    n, d, true_scale = 4000, 5, 2.5
    sigma = rng.uniform(0.05, 1.0, (n, d))
    mean = rng.standard_normal((n, d))
    y = mean + true_scale * sigma * rng.standard_normal((n, d))
    # as predicted, the spread is 2.5x too small: coverage of +-2 sigma = P(|z| < 0.8) = 0.576
    assert abs(C.coverage(y, mean, sigma, axis=None) - 0.5763) < 0.02
    for method in ("coverage", "nll"):
        s = C.fit_scale(y, mean, sigma, method=method)
        np.testing.assert_allclose(s, true_scale, rtol=0.06)
    s = C.fit_scale(y, mean, sigma, method="coverage", axis=None)
    assert abs(C.coverage(y, mean, s * sigma, axis=None) - C.NOMINAL_2SIGMA) < 0.002
    # errors that follow a per-sample sigma correlate with it (50 outputs average the chi^2 noise:
    # MSE ~ sigma^2 chi2_50 / 50); a shuffled sigma does not
    sig = np.repeat(rng.uniform(0.05, 1.0, (n, 1)), 50, axis=1)
    mu = np.zeros_like(sig)
    yy = sig * rng.standard_normal(sig.shape)
    corr = C.sigma_error_correlation(yy, mu, sig)
    shuffled = C.sigma_error_correlation(yy, mu, sig[rng.permutation(n)])
    assert corr > 0.85 and abs(shuffled) < 0.1


def test_calibration_rejects_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        C.coverage(np.zeros(3), np.zeros(4), np.ones(3))
    with pytest.raises(ValueError, match="NaN"):
        C.fit_scale(np.array([np.nan, 1.0]), np.zeros(2), np.ones(2))
    with pytest.raises(ValueError, match="non-negative"):
        C.coverage(np.zeros(3), np.zeros(3), -np.ones(3))


# --- features -------------------------------------------------------------------------------------------

def edge_spectrum(e, e0=7120.0, r=2.0):
    k = np.sqrt(np.clip(e - e0, 0, None) / F.KE)
    return 0.5 + np.arctan((e - e0) / 1.5) / np.pi + 0.15 * np.sin(2 * k * r) * np.exp(-0.02 * k**2) * (e > e0)


def test_broaden_shift_and_edge_position():
    e = np.arange(7080.0, 7220.0, 0.25)
    mu = edge_spectrum(e)
    # a constant stays constant, and broadening by 0 changes nothing
    np.testing.assert_allclose(np.asarray(F.gaussian_broaden(e, np.ones_like(e), 2.0)), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(F.gaussian_broaden(e, mu, 0.0)), mu, atol=1e-12)
    # a Gaussian line broadened by a Gaussian: widths add in quadrature
    line = np.exp(-0.5 * ((e - 7150) / 1.0) ** 2)
    b = np.asarray(F.gaussian_broaden(e, line, 2.0 * np.sqrt(2 * np.log(2)) * 2.0))
    width = np.sqrt(np.sum(b * (e - 7150) ** 2) / np.sum(b))
    assert abs(width - np.sqrt(1.0 + 4.0)) < 1e-3
    e0 = float(F.edge_position(e, mu))
    e0s = float(F.edge_position(e, np.asarray(F.shift(e, mu, 1.5))))
    assert abs(e0 - 7120.0) < 0.5 and abs(e0s - e0 - 1.5) < 0.3


def test_fourier_features_shift_invariant_and_distance_sensitive():
    e = np.arange(7080.0, 7220.0, 0.5)
    f = np.asarray(F.fourier_features(e, edge_spectrum(e)))
    fs = np.asarray(F.fourier_features(e, edge_spectrum(e, e0=7121.5)))
    fr = np.asarray(F.fourier_features(e, edge_spectrum(e, r=2.4)))
    assert np.all(np.isfinite(f))
    assert np.linalg.norm(fs - f) < 0.15 * np.linalg.norm(fr - f)
    # the weight of the transform moves out with the distance
    j = np.arange(f.size)
    assert np.sum(j * fr) / np.sum(fr) > np.sum(j * f) / np.sum(f) + 1.0


def test_augment_is_keyed_and_bounded():
    e = np.arange(7070.0, 7230.0, 0.5)
    grid = np.arange(7080.0, 7220.0, 0.5)
    mu = edge_spectrum(e)
    cfg = F.AugmentConfig(max_shift=2.0, max_fwhm=3.0, max_noise=0.0, p_clean=0.0)
    a = np.asarray(F.augment(e, mu, grid, cfg, key=jax.random.key(1)))
    b = np.asarray(F.augment(e, mu, grid, cfg, key=jax.random.key(1)))
    np.testing.assert_array_equal(a, b)
    e0 = float(F.edge_position(grid, a))
    assert abs(e0 - 7120.0) <= 2.0 + 0.5


def test_normalise_measured_edge_step_one():
    e = np.arange(7000.0, 7400.0, 0.5)
    raw = 0.3 + 1e-4 * (e - 7000) + 2.0 * edge_spectrum(e)
    en, flat, e0 = F.normalise_measured(e, raw)
    assert abs(e0 - 7120.0) < 2.0
    post = (en > 7250)
    assert abs(np.mean(flat[post]) - 1.0) < 0.05
    assert abs(np.mean(flat[en < 7080])) < 0.05


@pytest.mark.parametrize(
    "energy, mu, match",
    [
        (np.arange(7000.0, 7300.0), np.full(300, np.nan), "NaN"),
        (np.arange(7000.0, 7300.0), np.ones(300), "constant"),
        (np.arange(7000.0, 7010.0), np.arange(10.0), "points"),
        (np.arange(0.0, 100.0), np.linspace(0, 1, 100), "covers"),
        (np.arange(7300.0, 7000.0, -1.0), np.linspace(0, 1, 300), "increasing"),
    ],
)
def test_bad_spectra_rejected(energy, mu, match):
    with pytest.raises(ValueError, match=match):
        F.check_spectrum(energy, mu, np.arange(7100.0, 7200.0))


# --- network and ensemble -------------------------------------------------------------------------------

def tiny_config(arch="cnn_fft", n_energy=121, het=False):
    return {"arch": arch, "channels": (4, 8, 8), "dense": (16, 8), "outputs": [["g2", 50], ["r1", 1],
            ["cn", 1], ["comp", 2], ["ox", 1]], "n_fft": 8, "heteroscedastic": het,
            "energy": np.linspace(7100.0, 7160.0, n_energy).tolist()}


@pytest.mark.parametrize("arch, het", [("cnn", False), ("cnn_fft", False), ("cnn_fft", True)])
def test_ensemble_vmap_equals_loop(arch, het):
    cfg = tiny_config(arch, het=het)
    module = make_module(cfg)
    params = init_members(module, 4, 121, 8, key=jax.random.key(0))
    spec = jnp.asarray(edge_spectrum(np.asarray(cfg["energy"])))
    fft = F.fourier_features(jnp.asarray(cfg["energy"]), spec, n_out=8) if arch == "cnn_fft" else None
    out = apply_members(module, params, spec, fft)
    assert out.shape == (4, 110 if het else 55)
    if het:
        assert bool(jnp.all(out[:, 55:] > 0))
    for m in range(4):
        pm = jax.tree.map(lambda x, m=m: x[m], params)
        np.testing.assert_allclose(out[m], module.apply({"params": pm}, spec, fft), rtol=1e-6, atol=1e-6)
    # members are different networks
    assert float(jnp.std(out[:, 0])) > 0


def test_model_save_load_roundtrip_and_predict(tmp_path):
    from jxas.inverse.invmodel import InverseModel, load_inverse_model

    cfg = tiny_config()
    cfg.update(n_members=3, donors=[8], y_mean=[0.0] * 55, y_std=[1.0] * 55, kind="inverse")
    module = make_module(cfg)
    params = init_members(module, 3, 121, 8, key=jax.random.key(2))
    m = InverseModel(config=cfg, params=params, name="tiny", element="Fe", edge="K", card="# tiny\n")
    d = m.save(tmp_path / "tiny")
    m2 = load_inverse_model(d)
    e = np.arange(7000.0, 7300.0, 0.5)
    spec = jxas.Spectrum(energy=e, mu=2.0 * edge_spectrum(e, e0=7125.0) + 0.1)
    r_a, r_b = m.predict(spec), m2.predict(spec)
    np.testing.assert_allclose(r_a.members, r_b.members, rtol=1e-6)
    assert r_b.members.shape == (3, 55) and r_b.g2.shape == (50,)
    assert set(r_b.composition) == {"O", "other"}
    assert "first-shell distance" in r_b.summary()
    # the wrong edge is refused, naming the problem
    cu = jxas.Spectrum(energy=e + 1860.0, mu=edge_spectrum(e + 1860.0, e0=8980.0))
    with pytest.raises(ValueError, match="covers"):
        m2.predict(cu)
    with pytest.raises(ValueError, match="not an inverse model directory"):
        load_inverse_model(tmp_path)


def test_combine_mixture_variance():
    from jxas.inverse.model import combine

    cfg = {"outputs": [["r1", 1]], "heteroscedastic": True}
    pred = np.array([[[2.0, 0.1], [2.2, 0.3]]])  # one example, two members: (mean, sigma)
    mean, sigma = combine(pred, cfg)
    np.testing.assert_allclose(mean, [[2.1]])
    np.testing.assert_allclose(sigma, [[np.sqrt(0.01 + (0.01 + 0.09) / 2)]])
    mean, sigma = combine(pred[..., :1], {"outputs": [["r1", 1]]})
    np.testing.assert_allclose(sigma, [[0.1]])


# --- mean-variance members: Gaussian NLL, MSE warm-up stage -------------------------------------------

def test_gaussian_nll_value_gradient_and_minimiser(rng):
    from jax.test_util import check_grads

    from jxas.inverse.train import gaussian_nll

    y, m, s = rng.standard_normal(6), rng.standard_normal(6), rng.uniform(0.2, 2.0, 6)
    got = np.asarray(gaussian_nll(y, m, s))
    np.testing.assert_allclose(got, 0.5 * ((y - m) / s) ** 2 + np.log(s), rtol=TOL["formula_rtol"])
    assert gaussian_nll(y[:, None], m[:, None], s[None, :]).shape == (6, 6)
    check_grads(lambda mm, ss: jnp.sum(gaussian_nll(jnp.asarray(y), mm, ss)), (jnp.asarray(m), jnp.asarray(s)),
                order=2, modes=["rev"], rtol=TOL["grad_rtol"], atol=TOL["grad_atol"])
    # d NLL / d sigma = (1 - z^2) / sigma vanishes at sigma = |y - mean|
    gs = jax.grad(lambda ss: jnp.sum(gaussian_nll(jnp.asarray(y), jnp.asarray(m), ss)))(jnp.abs(jnp.asarray(y - m)))
    np.testing.assert_allclose(np.asarray(gs), 0.0, atol=1e-9)
    # over many draws with standard deviation 0.7 the mean NLL is smallest at sigma = 0.7
    draws = 0.7 * rng.standard_normal(20000)
    grid = np.linspace(0.4, 1.0, 61)
    nll = [float(jnp.mean(gaussian_nll(draws, 0.0, g))) for g in grid]
    assert abs(grid[int(np.argmin(nll))] - 0.7) <= 0.02


def test_beta_nll_weights_without_gradient_through_weight():
    from jxas.inverse.train import gaussian_nll

    y, m, s = jnp.array([1.0, -0.5]), jnp.array([0.2, 0.1]), jnp.array([0.5, 2.0])
    plain = gaussian_nll(y, m, s)
    beta = gaussian_nll(y, m, s, beta=0.5)
    np.testing.assert_allclose(np.asarray(beta), np.asarray(s * plain), rtol=1e-12)
    g_plain = jax.grad(lambda ss: jnp.sum(gaussian_nll(y, m, ss)), argnums=0)(s)
    g_beta = jax.grad(lambda ss: jnp.sum(gaussian_nll(y, m, ss, beta=0.5)), argnums=0)(s)
    np.testing.assert_allclose(np.asarray(g_beta), np.asarray(s * g_plain), rtol=1e-12)


def test_mse_stage_trains_only_means_nll_stage_both():
    from jxas.inverse.train import make_loss

    cfg = tiny_config(het=True)
    cfg.update(y_std=[1.0] * 55, y_mean=[0.0] * 55)
    module = make_module(cfg)
    params = init_members(module, 2, 121, 8, key=jax.random.key(0))
    grid = np.asarray(cfg["energy"])
    batch = {"spec": np.stack([edge_spectrum(grid, r=r) for r in (1.9, 2.1, 2.3)]),
             "y": np.random.default_rng(1).standard_normal((3, 55)), "ymask": np.ones((3, 55)),
             "w": np.ones((3, 2))}
    last = sorted(k for k in params if k.startswith("Dense"))[-1]
    for stage in ("mse", "nll"):
        fn = make_loss(cfg, grid, None, stage=stage)
        loss, aux = jax.jit(fn)(params, batch, None)
        assert np.isfinite(float(loss)) and set(aux) == {"r1_mae", "cn_mae"}
        g = jax.jit(jax.grad(lambda p, f=fn: f(p, batch, None)[0]))(params)
        k = np.asarray(g[last]["kernel"])  # [M, hidden, 2 O]: columns O.. feed the sigma head
        assert np.abs(k[..., :55]).max() > 0
        if stage == "mse":
            assert np.abs(k[..., 55:]).max() == 0
        else:
            assert np.abs(k[..., 55:]).max() > 0
    with pytest.raises(ValueError, match="stage"):
        make_loss(cfg, grid, None, stage="warmup")


def test_out_of_bag_variance_learns_from_undrawn_entries_only():
    from jxas.inverse.train import make_loss

    cfg = tiny_config(het=True)
    cfg.update(y_std=[1.0] * 55, y_mean=[0.0] * 55, variance_data="out_of_bag")
    params = init_members(make_module(cfg), 2, 121, 8, key=jax.random.key(0))
    grid = np.asarray(cfg["energy"])
    base = {"spec": np.stack([edge_spectrum(grid, r=r) for r in (1.9, 2.1, 2.3)]),
            "y": np.random.default_rng(1).standard_normal((3, 55)), "ymask": np.ones((3, 55))}
    last = sorted(k for k in params if k.startswith("Dense"))[-1]
    loss = make_loss(cfg, grid, None, stage="nll")

    def last_grad(w, oob):
        g = jax.jit(jax.grad(lambda p: loss(p, {**base, "w": w, "oob": oob}, None)[0]))(params)
        k = np.asarray(g[last]["kernel"])
        return np.abs(k[..., :55]).max(), np.abs(k[..., 55:]).max()

    ones, zeros = np.ones((3, 2)), np.zeros((3, 2))
    g_mean, g_sig = last_grad(ones, zeros)  # everything drawn: the variance head learns nothing
    assert g_mean > 0 and g_sig == 0
    g_mean, g_sig = last_grad(zeros, ones)  # nothing drawn: the means learn nothing (errors held fixed)
    assert g_mean == 0 and g_sig > 0
    with pytest.raises(ValueError, match="variance_data"):
        make_loss({**cfg, "variance_data": "all"}, grid, None)
