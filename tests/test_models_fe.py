"""Element-resolved radial descriptor (``descriptor="eradial"``) of the descriptor MLP, and the shipped
Fe K-edge model built on it: formula vs NumPy, invariance, gradients, cutoff, bad input, config
compatibility of the older wACSF models (STYLE.md section 10)."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_absorber_invariant, random_cluster
from jax.test_util import check_grads

from jxas.models import Model, default_config, load_model, make_module
from jxas.models.mlp import descriptor_fn, descriptor_size, make_element_radial
from jxas.structure import Structure, pad

ROOT = Path(__file__).resolve().parents[1]
PRETRAINED = ROOT / "jxas" / "pretrained"


def _cluster(rng, n=10):
    # 34 (Se) is not among the descriptor's listed elements: it goes to the last block
    return random_cluster(rng, n, absorber_z=26, neighbours=[1, 6, 7, 8, 17, 34], r_max=5.0)


def _reference(pos, num, elements, r_min, r_max, n, width):
    """The defining formula, evaluated directly with NumPy (independent of the JAX implementation)."""
    mu = np.linspace(r_min, r_max, n)
    eta = 1.0 / (2.0 * (width * (mu[1] - mu[0])) ** 2)
    out = np.zeros((len(elements) + 1, n))
    for j in range(1, len(pos)):
        r = np.linalg.norm(pos[j] - pos[0])
        if not 0 < r < r_max:
            continue
        k = elements.index(num[j]) if num[j] in elements else len(elements)
        out[k] += np.exp(-eta * (r - mu) ** 2) * 0.5 * (np.cos(np.pi * r / r_max) + 1.0)
    return out.reshape(-1)


def test_eradial_matches_numpy_formula(rng, tol):
    s = _cluster(rng)
    args = dict(elements=(1, 6, 7, 8, 17), r_min=1.0, r_max=4.5, n=12, width=1.5)
    got = np.asarray(make_element_radial(**args)(s))
    ref = _reference(np.asarray(s.positions), np.asarray(s.numbers).tolist(), [1, 6, 7, 8, 17], 1.0, 4.5, 12, 1.5)
    assert got.shape == (descriptor_size("eradial", args),) == (72,)
    np.testing.assert_allclose(got, ref, rtol=tol["formula_rtol"], atol=tol["formula_atol"])
    # the Se atoms (not listed) land in the last block, nowhere else
    se_only = Structure.from_arrays(np.array([[0.0, 0, 0], [2.3, 0, 0]]), np.array([26, 34]))
    blocks = np.asarray(make_element_radial(**args)(se_only)).reshape(6, 12)
    assert np.all(blocks[:5] == 0) and blocks[5].max() > 0.1


def test_eradial_invariance_and_padding(rng, tol):
    s = _cluster(rng)
    assert_absorber_invariant(jax.jit(make_element_radial()), s, rng, pad_to=16, rtol=tol["invariance_rtol"])


def test_eradial_gradients(rng, tol):
    s = _cluster(rng, n=6)
    f = make_element_radial(elements=(1, 6, 7, 8), r_max=5.0, n=8)
    w = jnp.asarray(rng.normal(size=5 * 8))

    def scalar(x):
        return jnp.dot(w, f(s.replace(positions=x)))

    check_grads(scalar, (s.positions,), order=1, modes=["rev"], atol=tol["grad_atol"], rtol=tol["grad_rtol"])
    # finite at coincident atoms (two neighbours on top of each other, one on the absorber) and padding
    pos = np.asarray(s.positions).copy()
    pos[2] = pos[1]
    pos[3] = pos[0]
    g = jax.grad(scalar)(jnp.asarray(pos))
    assert np.all(np.isfinite(np.asarray(g)))
    gp = jax.grad(lambda x: jnp.sum(f(pad(s, 9).replace(positions=x))))(pad(s, 9).positions)
    assert np.all(np.isfinite(np.asarray(gp))) and np.all(np.asarray(gp)[6:] == 0)


def test_eradial_smooth_at_cutoff():
    f = make_element_radial(r_max=6.0)

    def at(r):
        return f(Structure.from_arrays(jnp.array([[0.0, 0, 0], [1.9, 0, 0], [r, 0, 0]]), np.array([26, 8, 8])))

    inside, outside, edge = at(6.0 - 1e-6), at(6.0 + 1e-6), at(6.0)
    np.testing.assert_allclose(np.asarray(inside), np.asarray(outside), atol=1e-9)
    np.testing.assert_allclose(np.asarray(edge), np.asarray(outside), atol=1e-12)
    g = jax.grad(lambda r: jnp.sum(at(r)))(6.0)
    assert np.isfinite(float(g)) and abs(float(g)) < 1e-6


@pytest.mark.parametrize("bad, match", [
    ({"n": 1}, "n >= 2"),
    ({"r_min": 5.0, "r_max": 4.0}, "r_min < r_max"),
    ({"width": 0.0}, "width"),
    ({"elements": (8, 8)}, "distinct"),
])
def test_eradial_bad_settings(bad, match):
    with pytest.raises(ValueError, match=match):
        make_element_radial(**bad)


def test_unknown_descriptor_and_setting():
    with pytest.raises(ValueError, match="unknown descriptor"):
        descriptor_fn("soap", {})
    with pytest.raises(ValueError, match="unknown eradial settings"):
        descriptor_fn("eradial", {"alpha": 10.0})


def test_eradial_model_predicts_and_round_trips(rng, tmp_path):
    cfg = default_config("mlp", "Fe", energy=np.linspace(7100.0, 7180.0, 21),
                         elements=["Fe", "O", "C", "N", "H", "Cl", "Se"], descriptor="eradial",
                         descriptor_args={"n": 8, "r_max": 5.0}, hidden=[16])
    assert cfg["cutoff"] == 5.0
    plain = default_config("mlp", "Fe", descriptor="eradial")  # no wACSF settings carried over
    assert plain["cutoff"] == 6.0 and plain["descriptor_args"] == {}
    assert make_module(plain).descriptor == "eradial"
    model = Model.init(cfg, key=jax.random.PRNGKey(0), members=2, name="fe-k-eradial-test")
    s = _cluster(rng)
    sp = model.predict(s)
    assert sp.mu.shape == (21,) and np.all(np.asarray(sp.mu) > 0)
    loaded = Model.load(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(np.asarray(loaded.predict(s).mu), np.asarray(sp.mu))
    # differentiable w.r.t. positions through the model
    g = jax.grad(lambda x: jnp.sum(model.apply(model.params, s.replace(positions=x))))(s.positions)
    assert np.all(np.isfinite(np.asarray(g))) and np.any(np.asarray(g) != 0)


def test_wacsf_configs_without_new_keys_still_build():
    """Config compatibility: a wACSF MLP config in the format written before "eradial" existed (the
    earlier shipped cu-k) still builds, with the wACSF cutoff as the model cutoff."""
    cfg = {"kind": "mlp", "element": "Cu", "edge": "K", "energy": list(np.linspace(8990.0, 9120.0, 521)),
           "n_energy": 521, "elements": [8, 29], "descriptor": "wacsf",
           "descriptor_args": {"r_min": 1.0, "r_max": 5.5, "n_g2": 32, "n_g4": 64},
           "hidden": [16], "dropout": 0.0, "activation": "silu", "mu_mean": None, "mu_std": None}
    module = make_module(cfg)
    assert module.descriptor == "wacsf"
    m = Model.init(cfg, key=jax.random.key(0), members=1)
    assert m.cutoff == 5.5
    s = Structure.from_arrays([[0.0, 0.0, 0.0], [1.9, 0.0, 0.0], [0.0, 1.9, 0.0]], [29, 8, 8])
    assert np.all(np.isfinite(np.asarray(m.predict(s).mu)))
    if (PRETRAINED / "cu-k" / "config.json").exists():  # and whatever cu-k ships loads
        assert load_model("cu-k").element == "Cu"


def test_shipped_fe_model_is_eradial_and_small():
    path = PRETRAINED / "fe-k"
    if not (path / "config.json").exists():
        pytest.skip("fe-k not shipped")
    assert (path / "params.msgpack").stat().st_size < 8_000_000
    model = load_model("fe-k")
    assert model.config["descriptor"] == "eradial" and model.members >= 1
    # a real Fe(H2O)6 cluster: the main peak is a white line above 1 (normalised-edge scale)
    import jxas

    sp = model.predict(jxas.read_structure(ROOT / "examples" / "fe_h2o6_start.xyz"))
    assert not sp.meta.get("warnings")
    assert np.all(np.isfinite(np.asarray(sp.mu))) and 1.0 < float(np.max(sp.mu)) < 4.0


def test_neighbour_element_ranges_by_hand():
    from jxas.models.config import neighbour_ranges

    # two structures: Fe with O at 2.0 and H at 3.0 / Fe with O at 1.9 and N at 2.2 (and an O at 7 Å, beyond 6)
    r = np.array([[0.0, 2.0, 3.0, 0.0], [0.0, 1.9, 2.2, 7.0]])
    z = np.array([[26, 8, 1, 0], [26, 8, 7, 8]])
    nb = (r > 0) & (r < 6.0)
    got = neighbour_ranges(r, z, nb)
    assert got == {"1": [3.0, 3.0], "7": [2.2, 2.2], "8": [1.9, 2.0]}


def test_shipped_fe_model_flags_metal_contacts_not_molecules():
    import jxas

    root = Path(__file__).resolve().parents[1]
    model = load_model("fe-k")
    foil = jxas.read_structure(root / "tests" / "data" / "structures" / "iron.cif", cutoff=6.0)
    warnings = model.check(foil)
    assert any("Fe within 6.0 Å" in w and "never seen in training" in w for w in warnings), warnings
    mol = jxas.read_structure(root / "examples" / "fe_h2o6_start.xyz")
    assert not any("never seen" in w or "closer than in training" in w for w in model.check(mol))
    assert any("never seen" in w for w in model.predict(foil).meta["warnings"])
