"""Bond-angle block of the element-resolved radial descriptor (``eradial`` with ``n_angle > 0``) and
half-precision parameter storage: formula vs NumPy, invariance, gradients, cutoff, the radial part
unchanged, float16 round trip (STYLE.md section 10)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_absorber_invariant, random_cluster
from jax.test_util import check_grads

from jxas.models import Model, default_config
from jxas.models.mlp import descriptor_size, make_element_radial
from jxas.structure import Structure, pad

ANG = dict(elements=(1, 8, 17), r_min=1.0, r_max=5.0, n=8, n_angle=9, angle_cutoff=3.2, angle_width=1.2)


def _cluster(rng, n=9):
    return random_cluster(rng, n, absorber_z=29, neighbours=[1, 8, 17, 34], r_max=4.5)


def _angles_reference(pos, n_angle, rc, width):
    """The defining formula of the angle block, evaluated directly with NumPy."""
    c = np.linspace(-1.0, 1.0, n_angle)
    eta = 1.0 / (2.0 * (width * (c[1] - c[0])) ** 2)
    d = pos[1:] - pos[0]
    r = np.linalg.norm(d, axis=1)
    fc = np.where(r < rc, 0.5 * (np.cos(np.pi * r / rc) + 1.0), 0.0)
    out = np.zeros(n_angle)
    for j in range(len(d)):
        for k in range(j + 1, len(d)):
            cos = d[j] @ d[k] / (r[j] * r[k])
            out += np.exp(-eta * (cos - c) ** 2) * fc[j] * fc[k]
    return out


def test_angle_block_matches_numpy_formula_and_radial_part_unchanged(rng, tol):
    s = _cluster(rng)
    got = np.asarray(make_element_radial(**ANG)(s))
    assert got.shape == (descriptor_size("eradial", ANG),) == (4 * 8 + 9,)
    ref = _angles_reference(np.asarray(s.positions), 9, 3.2, 1.2)
    np.testing.assert_allclose(got[-9:], ref, rtol=tol["formula_rtol"], atol=tol["formula_atol"])
    radial = {k: v for k, v in ANG.items() if not k.startswith(("n_angle", "angle"))}
    np.testing.assert_array_equal(got[:-9], np.asarray(make_element_radial(**radial)(s)))


def test_angle_block_sees_geometry():
    """Linear and square-planar first shells at the same distances differ only in the angle block."""
    lin = Structure.from_arrays(np.array([[0.0, 0, 0], [1.9, 0, 0], [-1.9, 0, 0]]), np.array([29, 8, 8]))
    bent = Structure.from_arrays(np.array([[0.0, 0, 0], [1.9, 0, 0], [0, 1.9, 0]]), np.array([29, 8, 8]))
    f = make_element_radial(**ANG)
    a, b = np.asarray(f(lin)), np.asarray(f(bent))
    np.testing.assert_allclose(a[:-9], b[:-9], atol=1e-12)
    assert np.argmax(a[-9:]) == 0 and np.argmax(b[-9:]) == 4  # cos = -1 and cos = 0


def test_angle_block_invariance_and_padding(rng, tol):
    s = _cluster(rng)
    assert_absorber_invariant(jax.jit(make_element_radial(**ANG)), s, rng, pad_to=14, rtol=tol["invariance_rtol"])


def test_angle_block_gradients(rng, tol):
    s = _cluster(rng, n=6)
    s = s.replace(positions=s.positions - s.positions[0])
    s = s.replace(positions=s.positions * (2.5 / np.linalg.norm(np.asarray(s.positions), axis=1).max()))
    f = make_element_radial(**ANG)
    w = jnp.asarray(rng.normal(size=descriptor_size("eradial", ANG)))

    def scalar(x):
        return jnp.dot(w, f(s.replace(positions=x)))

    check_grads(scalar, (s.positions,), order=1, modes=["rev"], atol=tol["grad_atol"], rtol=tol["grad_rtol"])
    pos = np.asarray(s.positions).copy()
    pos[2] = pos[1]  # coincident neighbours (cos = 1 exactly)
    pos[3] = pos[0]  # a neighbour on the absorber
    assert np.all(np.isfinite(np.asarray(jax.grad(scalar)(jnp.asarray(pos)))))
    gp = jax.grad(lambda x: jnp.sum(f(pad(s, 9).replace(positions=x))))(pad(s, 9).positions)
    assert np.all(np.isfinite(np.asarray(gp))) and np.all(np.asarray(gp)[6:] == 0)


def test_angle_block_smooth_at_its_cutoff():
    f = make_element_radial(**ANG)

    def at(r):
        return f(Structure.from_arrays(jnp.array([[0.0, 0, 0], [1.9, 0, 0], [0, r, 0]]), np.array([29, 8, 8])))

    np.testing.assert_allclose(np.asarray(at(3.2 - 1e-6))[-9:], np.asarray(at(3.2 + 1e-6))[-9:], atol=1e-9)
    g = jax.grad(lambda r: jnp.sum(at(r)[-9:]))(3.2)
    assert np.isfinite(float(g)) and abs(float(g)) < 1e-6


def test_angle_k_nearest_matches_all_pairs_while_enough(rng, tol):
    """angle_k = k restricts the angle block to the k nearest atoms inside the angle cutoff: the same
    values and gradients as all pairs while at most k atoms sit inside it, different once more do."""
    s = _cluster(rng, n=30)
    pos = np.asarray(s.positions)
    inside = int(np.sum(np.linalg.norm(pos[1:] - pos[0], axis=1) < ANG["angle_cutoff"]))
    assert 3 <= inside < 29  # the random cluster has atoms on both sides of the cutoff
    full = make_element_radial(**ANG)
    near = make_element_radial(**ANG, angle_k=inside)
    np.testing.assert_allclose(np.asarray(near(s)), np.asarray(full(s)), rtol=1e-12, atol=1e-12)
    g_full = jax.grad(lambda x: jnp.sum(full(s.replace(positions=x))))(s.positions)
    g_near = jax.grad(lambda x: jnp.sum(near(s.replace(positions=x))))(s.positions)
    np.testing.assert_allclose(np.asarray(g_near), np.asarray(g_full), rtol=1e-10, atol=1e-12)
    fewer = make_element_radial(**ANG, angle_k=inside - 2)
    assert not np.allclose(np.asarray(fewer(s))[-9:], np.asarray(full(s))[-9:])
    np.testing.assert_array_equal(np.asarray(fewer(s))[:-9], np.asarray(full(s))[:-9])  # radial part untouched
    assert_absorber_invariant(jax.jit(near), s, rng, pad_to=34, rtol=tol["invariance_rtol"])


@pytest.mark.parametrize("bad, match", [
    ({"n_angle": 1}, "n_angle"),
    ({"n_angle": 8, "angle_cutoff": 7.0}, "angle_cutoff"),
    ({"n_angle": 8, "angle_width": 0.0}, "angle_width"),
    ({"n_angle": 8, "angle_k": 1}, "angle_k"),
    ({"n_angle": 8, "angle_k": -3}, "angle_k"),
])
def test_angle_block_bad_settings(bad, match):
    with pytest.raises(ValueError, match=match):
        make_element_radial(**bad)


def test_float16_storage_round_trip(rng, tmp_path):
    cfg = default_config("mlp", "Cu", energy=np.linspace(8990.0, 9050.0, 11), elements=["Cu", "O", "H", "Cl"],
                         descriptor="eradial", descriptor_args=ANG, hidden=[16])
    model = Model.init(cfg, key=jax.random.key(0), members=2)
    half = model.replace(config={**model.config, "param_dtype": "float16"})
    a, b = half.save(tmp_path / "half"), model.save(tmp_path / "full")
    size = {d: (d / "params.msgpack").stat().st_size for d in (a, b)}
    assert size[a] < 0.6 * size[b]
    loaded = Model.load(a)
    assert all(np.asarray(x).dtype == np.float32 for x in jax.tree.leaves(loaded.params))
    want = jax.tree.map(lambda x: np.asarray(x, np.float16).astype(np.float32), model.params)
    for x, y in zip(jax.tree.leaves(loaded.params), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(np.asarray(x), y)
    s = _cluster(rng).replace(numbers=jnp.asarray([29, 8, 8, 1, 1, 17, 8, 8, 1]))
    np.testing.assert_allclose(np.asarray(loaded.predict(s).mu), np.asarray(model.predict(s).mu), rtol=2e-2)
    # float32 storage is untouched
    full = Model.load(b)
    for x, y in zip(jax.tree.leaves(full.params), jax.tree.leaves(model.params), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
