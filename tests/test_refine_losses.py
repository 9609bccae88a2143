"""Spectral losses: values by hand, gradients, invariances, and a custom loss plugged into refine."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jxas.losses import LOSSES, chi_k2, derivative_weighted, get_loss, make_grid, mse, pearson

E = np.linspace(7090.0, 7190.0, 201)


def _spec(shift=0.0, amp=0.1):
    k = np.sqrt(np.maximum(E - 7112.0 - shift, 0) * 0.2625)
    return 0.5 + np.arctan((E - 7112.0 - shift) / 2) / np.pi + amp * np.sin(2 * 2.0 * k) * np.exp(-0.01 * k**2)


def test_values_by_hand():
    a, b = _spec(), _spec(1.0)
    g = make_grid(E, 7112.0)
    assert float(mse(jnp.asarray(a), jnp.asarray(b), g)) == pytest.approx(np.mean((a - b) ** 2), rel=1e-12)
    assert float(pearson(jnp.asarray(a), jnp.asarray(b), g)) == pytest.approx(1 - np.corrcoef(a, b)[0, 1], rel=1e-9)
    gw = make_grid(E, 7112.0, window=(-10.0, 30.0))
    sel = (E >= 7102) & (E <= 7142)
    assert float(mse(jnp.asarray(a), jnp.asarray(b), gw)) == pytest.approx(np.mean((a - b)[sel] ** 2), rel=1e-12)


def test_zero_for_identical_and_pearson_affine_invariant():
    a = jnp.asarray(_spec())
    g = make_grid(E, 7112.0)
    for name, fn in LOSSES.items():
        assert float(fn(a, a, g)) == pytest.approx(0.0, abs=1e-12), name
    assert float(pearson(2.0 * a + 0.3, a, g)) == pytest.approx(0.0, abs=1e-12)


def test_chi_k2_sees_oscillations_more_than_the_edge():
    g = make_grid(E, 7112.0)
    base = jnp.asarray(_spec(amp=0.1))
    osc = jnp.asarray(_spec(amp=0.12))
    assert float(chi_k2(osc, base, g)) > 0
    # a pure edge-region change below E0 is invisible in k-space
    pre = base.at[:20].add(0.05)
    assert float(chi_k2(pre, base, g)) == pytest.approx(0.0, abs=1e-14)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradients(name, tol):
    fn = LOSSES[name]
    g = make_grid(E, 7112.0)
    t = jnp.asarray(_spec())
    check_grads(
        lambda p: fn(p, t, g),
        (jnp.asarray(_spec(0.7, 0.11)),),
        order=1,
        modes=["rev"],
        rtol=tol["grad_rtol"],
        atol=tol["grad_atol"],
    )


def test_get_loss():
    assert get_loss("mse") is mse and get_loss(derivative_weighted) is derivative_weighted
    with pytest.raises(ValueError, match="unknown loss"):
        get_loss("l7")


def test_custom_loss_in_refine():
    """A user-written L1 loss, a few lines, drives a refinement."""
    from pathlib import Path

    import jxas
    from jxas.io.structures import read_structure
    from jxas.refine import Nuisance, as_forward, make_predict
    from jxas.refine.toy import make_toy_forward
    from jxas.spectrum.spectrum import Spectrum

    def l1(pred, target, grid):
        return jnp.sum(grid.weight * jnp.abs(pred - target)) / jnp.sum(grid.weight)

    data = Path(__file__).parent / "data" / "refine"
    fn, energy = make_toy_forward("Fe")
    true, start = read_structure(data / "fe_h2o6_true.xyz"), read_structure(data / "fe_h2o6_start.xyz")
    target = Spectrum(
        energy=energy,
        mu=np.asarray(make_predict(as_forward(fn, energy=energy, element="Fe"))(true, Nuisance.create(0.0))),
    )
    res = jxas.refine(
        start,
        target,
        model=fn,
        energy_grid=energy,
        element="Fe",
        energy="restraints",
        loss=l1,
        steps=40,
        uncertainty=False,
    )
    assert res.config["loss"] == "l1"
    assert res.history["spectral"][-1] < 0.5 * res.history["spectral"][0]
    assert jax.numpy.isfinite(res.fit["mse_after"])
