"""Forward networks: invariance/equivariance, gradients vs finite differences, padding, batching,
ensembles, smoothness at the cutoff and bad-input errors (STYLE.md section 10)."""

from __future__ import annotations

import functools

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jxas.models import Model, default_config, ensemble_apply, stack_members, unstack_members, with_statistics
from jxas.models.common import positive_output
from jxas.models.e3nn import bessel_envelope
from jxas.models.mlp import xanesnet_hidden
from jxas.structure import Structure, pad, stack

ELEMENTS = ["Fe", "O", "C", "N", "H"]
SMALL = {
    "mlp": {"hidden": [32, 32], "descriptor_args": {"r_min": 1.0, "r_max": 6.0, "n_g2": 8, "n_g4": 8}},
    "e3nn": {"channels": 4, "readout": [16], "radial_hidden": 8, "n_radial": 6, "n_radial_out": 4},
}


def _cluster(rng, n=9, absorber=0):
    """A random Fe-centred cluster: ligands 1.8-2.2 Å from the absorber, others further out."""
    pos = np.zeros((n, 3))
    for i in range(n):
        if i == absorber:
            continue
        v = rng.normal(size=3)
        pos[i] = v / np.linalg.norm(v) * rng.uniform(1.8, 4.5)
    pos[absorber] = 0.0
    pos += rng.normal(size=3)  # off the origin: translation matters for the test
    num = rng.choice([8, 6, 7, 1], size=n)
    num[absorber] = 26
    return Structure.from_arrays(pos, num, absorber=absorber)


@functools.cache  # models are immutable: share them (and their compiled functions)
def _model(kind, members=1, seed=0, **over):
    cfg = default_config(
        kind, "Fe", energy=np.linspace(7100.0, 7180.0, 33), elements=ELEMENTS, **{**SMALL[kind], **over}
    )
    return Model.init(cfg, key=jax.random.PRNGKey(seed), members=members, name=f"test-{kind}")


@functools.cache
def _apply(model):
    return jax.jit(lambda s: model.apply(model.params, s))


@pytest.fixture(params=["mlp", "e3nn"])
def kind(request):
    return request.param


def _rotation(seed):
    return np.asarray(e3nn.rand_matrix(jax.random.PRNGKey(seed), (), jnp.float64))


def test_invariance_rotation_translation_permutation(kind, rng, tol):
    model = _model(kind)
    f = _apply(model)
    s = _cluster(rng, n=10, absorber=3)
    mu = np.asarray(f(s))
    assert mu.shape == (33,) and np.all(mu > 0)
    for seed in range(3):
        r = _rotation(seed)
        shift = rng.normal(size=3) * 5
        rot = s.replace(positions=s.positions @ r.T + shift)
        np.testing.assert_allclose(f(rot), mu, rtol=1e-6, atol=1e-9)
    perm = rng.permutation(10)
    inv = np.argsort(perm)
    permuted = s.replace(
        positions=s.positions[perm], numbers=s.numbers[perm], absorber=jnp.asarray(inv[3], jnp.int32)
    )
    np.testing.assert_allclose(f(permuted), mu, rtol=1e-6, atol=1e-9)
    # a genuinely different structure gives a different spectrum (the test can fail)
    moved = s.replace(positions=s.positions.at[0].add(0.3))
    assert np.max(np.abs(np.asarray(f(moved)) - mu)) > 1e-6


def test_e3nn_internal_features_equivariant(rng):
    model = _model("e3nn", n_layers=3)
    module, p = model.module, unstack_members(model.params)[0]
    s = _cluster(rng, n=8, absorber=2)
    feat_fn = jax.jit(lambda x: module.apply({"params": p}, x, return_features=True)[1])
    feats = feat_fn(s)
    assert feats["absorber"].irreps.lmax == 2 and "nodes_1" in feats
    for seed in range(3):
        r = _rotation(seed + 10)
        feats_r = feat_fn(s.replace(positions=s.positions @ r.T))
        for name, x in feats.items():
            expected = x.transform_by_matrix(r)
            np.testing.assert_allclose(feats_r[name].array, expected.array, rtol=1e-6, atol=1e-8, err_msg=name)
        # the l > 0 parts do change under rotation (equivariant, not trivially invariant)
        v = feats["absorber"].filter(keep="1o").array
        assert np.max(np.abs(feats_r["absorber"].filter(keep="1o").array - v)) > 1e-6 * (1 + np.abs(v).max())


def test_gradients_match_finite_differences(kind, rng, tol):
    model = _model(kind)
    s = _cluster(rng, n=6, absorber=0)
    w = jnp.asarray(rng.normal(size=33))

    @jax.jit
    def loss(x):
        return jnp.sum(w * model.apply(model.params, s.replace(positions=x)))

    check_grads(loss, (s.positions,), order=1, modes=["rev"], atol=tol["grad_atol"], rtol=tol["grad_rtol"], eps=1e-5)
    g = jax.grad(loss)(s.positions)
    assert np.all(np.isfinite(g)) and np.abs(g).max() > 0


def test_finite_gradients_at_edge_cases(kind, rng):
    model = _model(kind)
    cutoff = model.cutoff
    pos = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, cutoff, 0.0], [0.0, 0.0, 1.9]])
    s = pad(Structure.from_arrays(pos, [26, 8, 8, 6, 7]), 8)  # coincident pair, atom at the cutoff, padding

    def loss(x):
        return jnp.sum(model.apply(model.params, s.replace(positions=x)))

    g = jax.jit(jax.grad(loss))(s.positions)
    assert np.all(np.isfinite(g))
    np.testing.assert_array_equal(g[5:], 0.0)  # padding slots get no gradient


def test_smooth_at_cutoff(kind):
    """Output is continuous as an atom crosses the cutoff (envelope / cosine cutoff)."""
    model = _model(kind)
    c = model.cutoff
    f = _apply(model)

    def at(r):
        pos = np.array([[0.0, 0, 0], [1.95, 0, 0], [0, 1.95, 0], [0, 0, r]])
        return np.asarray(f(Structure.from_arrays(pos, [26, 8, 8, 6])))

    inside, outside, far = at(c - 1e-4), at(c + 1e-4), at(c + 2.0)
    np.testing.assert_allclose(inside, outside, atol=1e-6)
    np.testing.assert_allclose(outside, far, atol=1e-12)  # beyond the cutoff the atom is invisible
    assert np.max(np.abs(at(c - 1.0) - far)) > 1e-7  # but inside it matters


def test_padding_invariance(kind, rng, tol):
    model = _model(kind)
    f = _apply(model)
    s = _cluster(rng, n=7)
    np.testing.assert_allclose(f(pad(s, 12)), f(s), rtol=1e-9, atol=1e-12)


def test_batched_equals_looped(kind, rng):
    model = _model(kind, members=2)
    ss = [pad(_cluster(rng, n=int(n), absorber=int(a)), 10) for n, a in [(6, 0), (9, 4), (8, 1), (5, 2), (7, 6)]]
    batch = stack(ss)
    members = jax.jit(model.apply_members)
    loop = np.stack([np.asarray(members(model.params, s)) for s in ss])  # [B, M, E]
    vm = jax.jit(jax.vmap(model.apply, in_axes=(None, 0)))(model.params, batch)
    np.testing.assert_allclose(vm, loop.mean(1), rtol=1e-9, atol=1e-12)
    sp = model.predict_batch(batch, chunk_size=2)  # chunked, last chunk padded to the fixed size
    assert sp.mu.shape == (5, 33) and sp.std.shape == (5, 33)
    np.testing.assert_allclose(sp.mu, loop.mean(1), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sp.std, loop.std(1), rtol=1e-6, atol=1e-12)
    assert np.all(sp.std > 0)  # members differ


def test_ensemble_vmap_equals_loop(kind, rng):
    model = _model(kind, members=3)
    members = unstack_members(model.params)
    assert len(members) == 3
    restacked = stack_members(members)
    jax.tree.map(np.testing.assert_array_equal, restacked, model.params)
    one = jax.jit(lambda p, x: model.module.apply({"params": p}, x))
    s = _cluster(rng)
    loop = np.stack([np.asarray(one(p, s)) for p in members])
    np.testing.assert_allclose(jax.jit(lambda p, x: ensemble_apply(one, p, x))(model.params, s), loop, rtol=1e-9)
    sp = model.predict(s)
    np.testing.assert_allclose(sp.mu, loop.mean(0), rtol=1e-6)
    np.testing.assert_allclose(sp.std, loop.std(0), rtol=1e-5, atol=1e-9)
    assert np.all(np.asarray(sp.std) > 0)  # different seeds really differ


def test_dropout_only_in_training(rng):
    model = _model("mlp", dropout=0.5)
    module, p = model.module, unstack_members(model.params)[0]
    s = _cluster(rng)
    a = module.apply({"params": p}, s, train=True, rngs={"dropout": jax.random.PRNGKey(1)})
    b = module.apply({"params": p}, s, train=True, rngs={"dropout": jax.random.PRNGKey(2)})
    assert np.max(np.abs(a - b)) > 0
    np.testing.assert_array_equal(module.apply({"params": p}, s), module.apply({"params": p}, s, train=False))


def test_charge_spin_inputs(kind, rng):
    model = _model(kind, use_charge_spin=True)
    f = _apply(model)
    s = _cluster(rng)
    a = f(s)
    b = f(s.replace(charge=jnp.asarray(2, jnp.int32), spin=jnp.asarray(4, jnp.int32)))
    assert np.max(np.abs(a - b)) > 1e-8
    if kind == "mlp":  # without the option, charge and spin are ignored
        no = _apply(_model(kind))
        np.testing.assert_array_equal(no(s), no(s.replace(charge=jnp.asarray(2, jnp.int32))))


def test_positive_output_standardisation():
    mean, std = np.linspace(0.1, 1.5, 7), np.linspace(0.01, 0.3, 7)
    np.testing.assert_allclose(positive_output(jnp.zeros(7), mean, std), mean, rtol=1e-10)
    # slope at y = 0 is std (first-order Taylor check)
    h = 1e-6
    slope = (positive_output(jnp.full(7, h), mean, std) - positive_output(jnp.full(7, -h), mean, std)) / (2 * h)
    np.testing.assert_allclose(slope, std, rtol=1e-5)
    assert np.all(np.asarray(positive_output(jnp.full(7, -50.0), mean, std)) > 0)


def test_bessel_envelope_zero_beyond_cutoff_and_finite_at_zero():
    r = jnp.asarray([0.0, 1.0, 5.999, 6.0, 7.0])
    b = bessel_envelope(r, 4, 6.0)
    assert np.all(np.isfinite(b)) and np.all(np.asarray(b[3:]) == 0) and np.abs(b[1]).max() > 0
    g = jax.grad(lambda x: jnp.sum(bessel_envelope(x, 4, 6.0)))(6.0 - 1e-7)
    assert abs(float(g)) < 1e-6  # envelope derivative vanishes at the cutoff


def test_xanesnet_size_option():
    assert xanesnet_hidden() == (1150, 1035, 932, 838)
    cfg = default_config("mlp", "Cu", hidden="xanesnet")
    assert cfg["hidden"] == [1150, 1035, 932, 838]


def test_bad_input_errors(kind, rng):
    model = _model(kind)
    s = _cluster(rng, n=6)
    assert model.check(s) == []
    wrong_absorber = s.replace(absorber=jnp.asarray(1, jnp.int32))
    with pytest.raises(ValueError, match="absorber 1 is .* Fe K-edge"):
        model.predict(wrong_absorber)
    unknown = s.replace(numbers=s.numbers.at[2].set(17))  # Cl never seen
    with pytest.raises(ValueError, match=r"\['Cl'\] were never seen"):
        model.predict(unknown)
    far = s.replace(positions=s.positions.at[1:].multiply(10.0))
    with pytest.raises(ValueError, match="no neighbour within the model's cutoff"):
        model.predict(far)
    with pytest.raises(ValueError, match="structure 1 of the batch"):
        model.predict_batch(stack([s, unknown]))


def test_out_of_domain_warning_flag(kind, rng):
    base = _model(kind)
    ss = [_cluster(np.random.default_rng(i), n=8) for i in range(6)]
    batch = stack(ss)
    cfg = with_statistics(base.config, batch, np.random.default_rng(0).uniform(0.2, 1.5, (6, 33)))
    model = Model(config=cfg, params=base.params, name="domain")
    ok = model.predict(ss[0])
    assert ok.meta["warnings"] == []
    squeezed = ss[0].replace(positions=ss[0].positions[0] + 0.6 * (ss[0].positions - ss[0].positions[0]))
    sp = model.predict(squeezed)
    assert any("nearest-neighbour distance" in w for w in sp.meta["warnings"])
    assert np.all(np.isfinite(sp.mu))


def test_shipped_cu_model_knows_its_neighbour_elements():
    from pathlib import Path

    import jxas
    from jxas.models import load_model

    model = load_model("cu-k")
    assert "29" in model.config["domain"]["neighbour_nn"]  # Cu-Cu contacts are in OmniXAS's crystals
    foil = jxas.read_structure(Path(__file__).parent / "data" / "structures" / "copper.cif", cutoff=6.0)
    assert not any("never seen" in w or "closer than" in w for w in model.check(foil))
