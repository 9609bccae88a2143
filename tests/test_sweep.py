"""Sweeps: moves do what they say, vmapped grids equal looped evaluation, minima, multi-start."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jxas.sweep as jsweep
from jxas.io.structures import read_structure
from jxas.losses import make_grid, mse
from jxas.refine import Nuisance, as_forward, make_predict, prepare_target
from jxas.refine.toy import make_toy_forward
from jxas.spectrum.spectrum import Spectrum

DATA = Path(__file__).parent / "data" / "refine"
SHELL = [1, 4, 7, 10, 13, 16]


@pytest.fixture(scope="module")
def setup():
    fn, energy = make_toy_forward("Fe")
    true = read_structure(DATA / "fe_h2o6_true.xyz")
    start = read_structure(DATA / "fe_h2o6_start.xyz")
    pred = make_predict(as_forward(fn, energy=energy, element="Fe"))
    target = Spectrum(energy=energy, mu=np.asarray(pred(true, Nuisance.create(0.0))), meta={"element": "Fe"})
    return fn, energy, true, start, target


def _dist(s, i, j=0):
    p = np.asarray(s.positions)
    return float(np.linalg.norm(p[i] - p[j]))


def test_moves_change_what_they_say(setup):
    fn, energy, true, start, target = setup
    shell = jsweep.make_move("shell", start)
    s = shell(start, 0.1)
    np.testing.assert_allclose([_dist(s, j) for j in SHELL], 2.1, atol=1e-12)
    np.testing.assert_allclose(_dist(s, 2, 1), _dist(start, 2, 1), atol=1e-12)  # rigid water: O-H kept
    loose = jsweep.make_move("shell", start, rigid=False)(start, 0.1)
    assert abs(_dist(loose, 2, 1) - _dist(start, 2, 1)) > 1e-3
    bond = jsweep.make_move("bond", start, atom=7)(start, -0.15)
    assert _dist(bond, 7) == pytest.approx(1.85, abs=1e-12)
    assert _dist(bond, 1) == pytest.approx(2.0, abs=1e-12)
    bend = jsweep.make_move("bend", start, atom=7, reference=1)(start, 10.0)
    p = np.asarray(bend.positions)
    cos = p[7] @ p[1] / (np.linalg.norm(p[7]) * np.linalg.norm(p[1]))
    assert np.degrees(np.arccos(cos)) == pytest.approx(100.0, abs=1e-9)
    assert _dist(bend, 7) == pytest.approx(2.0, abs=1e-12)
    assert jsweep.make_move("element", start, element="O").atoms == SHELL
    with pytest.raises(ValueError, match="no first-shell donor of element N"):
        jsweep.make_move("element", start, element="N")
    with pytest.raises(ValueError, match="first-shell donors"):
        jsweep.make_move("bond", start, atom=2)


def test_sweep_equals_loop_and_finds_minimum(setup, tmp_path):
    fn, energy, true, start, target = setup
    values = np.linspace(-0.06, 0.24, 11)  # step 0.03: 0.12 (the truth) is on the grid
    res = jsweep.sweep(
        start,
        target,
        model=fn,
        energy_grid=energy,
        element="Fe",
        moves=[("shell", values)],
        nuisance={"shift_ev": 0.0},
        batch_size=5,
    )
    # looped, one point at a time, through the same pieces
    fw = as_forward(fn, energy=energy, element="Fe")
    pred = make_predict(fw)
    mu_t, w, e0, _ = prepare_target(target, fw)
    grid = make_grid(energy, e0)._replace(weight=jnp.asarray(w))
    move = jsweep.make_move("shell", start)
    loop = [float(mse(pred(move(start, v), Nuisance.create(0.0)), jnp.asarray(mu_t), grid)) for v in values]
    np.testing.assert_allclose(res.loss, loop, rtol=1e-10, atol=1e-14)
    assert res.min_coordinate[0] == pytest.approx(2.12, abs=1e-9)  # the true distance is on the grid
    np.testing.assert_allclose(res.coordinate[0], 2.0 + values, atol=1e-12)
    jsweep.plot_sweep(res, tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 0


def test_2d_sweep_and_module_is_callable(setup, tmp_path):
    fn, energy, true, start, target = setup
    res = jsweep.sweep(
        start,
        target,
        model=fn,
        energy_grid=energy,
        element="Fe",
        restraints=True,
        moves=[
            ("bond", np.linspace(-0.1, 0.1, 5), {"atom": 1}),
            {"kind": "bend", "values": np.linspace(-5, 5, 3), "atom": 7, "reference": 1},
        ],
    )
    assert res.loss.shape == (5, 3) and res.energy.shape == (5, 3)
    np.testing.assert_allclose(res.coordinate[1], [85.0, 90.0, 95.0], atol=1e-9)
    import jxas

    again = jxas.sweep(
        start,
        target,
        model=fn,
        energy_grid=energy,
        element="Fe",
        moves=[("bond", np.linspace(-0.1, 0.1, 5), {"atom": 1})],
    )
    np.testing.assert_allclose(again.loss, res.loss[:, 1], rtol=1e-10)
    jsweep.plot_sweep(res, tmp_path / "s2.png")


def test_multistart_recovers_distances(setup):
    fn, energy, true, start, target = setup
    res = jsweep.multistart(
        start,
        target,
        model=fn,
        energy_grid=energy,
        element="Fe",
        key=jax.random.key(0),
        n_starts=3,
        sigma=0.05,
        steps=150,
    )
    assert res.positions.shape == (3, 19, 3) and res.history.shape == (3, 150)
    # one spectrum fixes the mean first-shell distance well; the split among six equal donors is weakly
    # determined (the toy model's oscillations add up), so test the mean
    assert np.mean(res.first_shell[res.best]) == pytest.approx(2.12, abs=0.01)
    assert np.all(res.history[:, -1] < res.history[:, 0])
