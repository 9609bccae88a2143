"""Refinement: synthetic recovery, masks and fixed nuisance, target checks, and the failure paths."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jxas
from jxas.io.structures import read_structure
from jxas.losses import make_grid, mse
from jxas.physics import XTBError
from jxas.refine import Forward, LoopConfig, Nuisance, as_forward, make_objective, make_predict, prepare_target
from jxas.refine.loop import run_loop
from jxas.refine.objective import ObjectiveArgs
from jxas.refine.report import write_report
from jxas.refine.toy import make_toy_forward
from jxas.spectrum.spectrum import Spectrum

DATA = Path(__file__).parent / "data" / "refine"
SHELL = [1, 4, 7, 10, 13, 16]  # the six O of Fe(H2O)6 in these files


@pytest.fixture(scope="module")
def toy():
    fn, energy = make_toy_forward("Fe")
    return fn, energy


@pytest.fixture(scope="module")
def structures():
    return read_structure(DATA / "fe_h2o6_true.xyz"), read_structure(DATA / "fe_h2o6_start.xyz")


def _target(fn, energy, s, shift=2.0):
    pred = make_predict(as_forward(fn, energy=energy, element="Fe"))
    return Spectrum(energy=energy, mu=np.asarray(pred(s, Nuisance.create(shift))), meta={"element": "Fe"})


def _shell_r(s):
    p = np.asarray(s.positions)
    return np.linalg.norm(p[SHELL] - p[0], axis=1)


def test_synthetic_recovery_with_members_and_report(toy, structures, tmp_path):
    """Target from the same model at a known geometry (Fe-O 2.12 Å, shift +2 eV); start Fe-O 2.00 Å.
    The refinement recovers the distances and the shift; an ensemble (toy members with different
    Debye-Waller factors) gives a finite first-shell uncertainty; the report files are written."""
    fn, energy = toy
    true, start = structures
    members = [make_toy_forward("Fe", sigma2=s2)[0] for s2 in (0.004, 0.005, 0.006)]
    fw = Forward(
        fn=fn, energy=energy, e_edge=7112.0, element="Fe", members_fn=lambda s: jnp.stack([m(s) for m in members])
    )
    res = jxas.refine(start, _target(fn, energy, true), model=fw, energy="restraints", steps=200, uncertainty_steps=30)
    assert res.ok, res.message
    np.testing.assert_allclose(_shell_r(res.structure), 2.12, atol=0.01)
    assert abs(res.nuisance["shift_ev"] - 2.0) < 0.3
    assert res.fit["mse_after"] < 0.01 * res.fit["mse_before"]
    assert all(r["sigma"] is not None and np.isfinite(r["sigma"]) for r in res.bonds)
    assert len(res.bonds) == 6 and all(r["element"] == "O" for r in res.bonds)
    assert {"loss", "spectral", "energy", "shift_ev", "r_first_shell"} <= set(res.history)
    paths = write_report(res, tmp_path)
    for key in ("xyz", "extxyz", "trajectory", "fit_png", "history_png", "summary"):
        assert Path(paths[key]).stat().st_size > 0
    back = read_structure(paths["xyz"])
    np.testing.assert_allclose(np.asarray(back.positions), np.asarray(res.structure.positions), atol=1e-6)
    assert "Fe-O1" in res.bond_table()


def test_fixed_nuisance_and_first_shell_mask(toy, structures):
    fn, energy = toy
    true, start = structures
    res = jxas.refine(
        start,
        _target(fn, energy, true),
        model=fn,
        energy_grid=energy,
        element="Fe",
        energy="none",
        steps=25,
        movable="first_shell",
        fit_shift=False,
        shift=2.0,
        fit_broadening=False,
        uncertainty=False,
    )
    p0, p1 = np.asarray(start.positions), np.asarray(res.structure.positions)
    others = [i for i in range(19) if i not in SHELL + [0]]
    np.testing.assert_array_equal(p1[others], p0[others])  # hydrogens never move
    assert np.abs(p1[SHELL] - p0[SHELL]).max() > 0.01
    assert res.nuisance["shift_ev"] == pytest.approx(2.0, abs=1e-12)
    assert res.nuisance["broadening"] == pytest.approx(1.0, abs=1e-12)
    assert res.nuisance["scale"] != 1.0  # still free


def test_target_checks(toy, structures):
    fn, energy = toy
    fw = as_forward(fn, energy=energy, element="Fe")
    good = _target(fn, energy, structures[0])
    with pytest.raises(ValueError, match="spectrum is of Cu"):
        prepare_target(Spectrum(energy=good.energy, mu=good.mu, meta={"element": "Cu"}), fw)
    with pytest.raises(ValueError, match="misses the Fe edge"):
        prepare_target(Spectrum(energy=energy + 900.0, mu=good.mu), fw)
    with pytest.raises(ValueError, match="NaN"):
        prepare_target(Spectrum(energy=energy, mu=good.mu * np.nan), fw)
    cu = read_structure(DATA / "fe_h2o6_start.xyz")
    cu = cu.replace(numbers=cu.numbers.at[0].set(29))
    with pytest.raises(ValueError, match="absorber is Cu"):
        jxas.refine(cu, good, model=fw)


def test_raw_experimental_target_is_normalised(toy, structures):
    """A raw-looking spectrum (offset, slope, edge step 3) is normalised with pre_edge: pre ~0, post ~1."""
    fn, energy = toy
    fw = as_forward(fn, energy=energy, element="Fe")
    e = np.arange(6900.0, 7400.0, 0.5)
    mu_n = np.interp(e, energy, np.asarray(_target(fn, energy, structures[0]).mu))
    mu_n[e > energy[-1]] = 1.0
    raw = 0.3 + 1e-4 * (e - 6900) + 3.0 * mu_n
    mu, w, e0, info = prepare_target(Spectrum(energy=e, mu=raw, meta={"quantity": "mu_raw"}), fw)
    assert info["normalised"] and info["edge_step"] == pytest.approx(3.0, rel=0.1)
    assert abs(np.mean(mu[energy < 7100])) < 0.05 and abs(np.mean(mu[energy > 7160]) - 1.0) < 0.1
    assert np.all(w == 1.0)


def _loop_setup(fn, energy, true, start, energy_fn=None):
    fw = as_forward(fn, energy=energy, element="Fe")
    predict = make_predict(fw)
    target = np.asarray(predict(true, Nuisance.create(0.0)))
    grid = make_grid(energy, 7112.0)
    obj = make_objective(predict, mse, energy_fn=energy_fn)
    args = ObjectiveArgs(start, jnp.asarray(target), grid, jnp.zeros(()), jnp.asarray(1e-3), jnp.zeros(()))
    x0 = {"positions": start.positions, "nuisance": Nuisance.create(0.0)}
    mask = {"positions": jnp.ones_like(start.positions), "nuisance": Nuisance(*(jnp.ones(()),) * 3)}
    return obj, x0, args, mask


def test_nan_loss_stops_with_last_good(toy, structures):
    fn, energy = toy
    true, start = structures
    obj, x0, args, mask = _loop_setup(fn, energy, true, start)

    def nan_when_close(x, a):  # the loss turns NaN once the fit gets good: stands in for any NaN
        v, aux = obj(x, a)
        return jnp.where(aux["spectral"] < 2e-4, jnp.nan, v), aux

    with jax.debug_nans(False):
        out = run_loop(nan_when_close, x0, args, mask, LoopConfig(steps=200))
    assert out.status == "nan_loss"
    assert np.all(np.isfinite(np.asarray(out.x["positions"])))
    assert np.isfinite(out.loss) and out.n_steps > 1


def test_explosion_and_overlap_stop(toy, structures):
    fn, energy = toy
    true, start = structures
    obj, x0, args, mask = _loop_setup(fn, energy, true, start)
    out = run_loop(obj, x0, args, mask, LoopConfig(steps=200, max_displacement=0.05))
    assert out.status == "exploded" and "moved" in out.message
    disp = np.linalg.norm(np.asarray(out.x["positions"]) - np.asarray(start.positions), axis=1)
    assert disp.max() <= 0.05
    # Fe-O 2.00 -> target 2.12 pushes O outward towards neighbouring H: a min distance just below the
    # start's closest pair (O-H 0.96 Å) is crossed as the fit bends the rigid-less waters
    out = run_loop(obj, x0, args, mask, LoopConfig(steps=200, min_distance=0.955, learning_rate=0.02))
    assert out.status in ("overlap", "converged", "max_steps")
    if out.status == "overlap":
        p = np.asarray(out.x["positions"])
        d = np.linalg.norm(p[:, None] - p[None], axis=-1) + 1e9 * np.eye(19)
        assert d.min() >= 0.955


def test_interrupt_returns_last_good(toy, structures):
    fn, energy = toy
    true, start = structures
    obj, x0, args, mask = _loop_setup(fn, energy, true, start)

    def ctrl_c(i, row):
        if i == 3:
            raise KeyboardInterrupt

    out = run_loop(obj, x0, args, mask, LoopConfig(steps=50), on_step=ctrl_c)
    assert out.status == "interrupted" and out.n_steps == 4
    assert not np.allclose(np.asarray(out.x["positions"]), np.asarray(start.positions))


def test_energy_failure_mid_run_retries_then_falls_back(toy, structures):
    """An energy term that fails (as xTB's SCF does) after a few calls: retries with smaller steps from
    the last good structure, then the fallback energy takes over and the run finishes."""
    fn, energy = toy
    true, start = structures
    calls = {"n": 0}

    def host(p):
        calls["n"] += 1
        if calls["n"] > 4:
            raise XTBError("gfn2 xTB calculation failed: scf: Self consistent charge iterator did not converge")
        return np.asarray(0.0, p.dtype)

    @jax.custom_jvp
    def failing_energy(p):
        return jax.pure_callback(host, jax.ShapeDtypeStruct((), p.dtype), p)

    failing_energy.defjvps(lambda t, ans, p: jnp.zeros((), p.dtype))
    obj, x0, args, mask = _loop_setup(fn, energy, true, start, energy_fn=failing_energy)
    obj_ok, *_ = _loop_setup(fn, energy, true, start)
    obj_ok.label = "no energy"
    out = run_loop(obj, x0, args, mask, LoopConfig(steps=30, xtb_retries=2), fallback=lambda x: (obj_ok, args))
    assert out.status in ("max_steps", "converged"), out.message
    assert sum("retry" in e for e in out.events) == 2
    assert any("fell back to no energy" in e for e in out.events)
    out = run_loop(obj, x0, args, mask, LoopConfig(steps=30, xtb_retries=0))
    assert out.status == "xtb_failed" and "did not converge" in out.message


@pytest.mark.xtb
def test_xtb_start_failure_falls_back_to_gfnff(toy, structures):
    fn, energy = toy
    true, start = structures
    res = jxas.refine(
        start,
        _target(fn, energy, true),
        model=fn,
        energy_grid=energy,
        element="Fe",
        energy="gfn2",
        xtb_options={"max_iterations": 1},
        steps=5,
        uncertainty=False,
    )
    assert res.energy_method == "gfnff" and any("fell back to gfnff" in e for e in res.events)
    with pytest.raises(XTBError, match="no fallback"):
        jxas.refine(
            start,
            _target(fn, energy, true),
            model=fn,
            energy_grid=energy,
            element="Fe",
            energy="gfn2",
            xtb_options={"max_iterations": 1},
            xtb_fallback=None,
            steps=5,
        )


@pytest.mark.xtb
def test_real_xtb_refinement_keeps_bonds():
    """GFN2-xTB refinement of Ni(CO)4 against a spectrum of a stretched geometry: every bond stays
    within 10% of its GFN2-optimised length (the energy term keeps the complex chemical)."""
    from ase.optimize import BFGS
    from xtb.ase.calculator import XTB

    from jxas.structure import Structure

    t = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
    s0 = Structure.from_arrays(np.concatenate([np.zeros((1, 3)), 1.83 * t, 2.98 * t]), [28] + [6] * 4 + [8] * 4)
    atoms = s0.to_ase()
    atoms.calc = XTB(method="GFN2-xTB")
    BFGS(atoms, logfile=None).run(fmax=0.02, steps=100)
    opt = Structure.from_arrays(atoms.positions, atoms.numbers)
    from jxas.physics import detect_topology

    topo = detect_topology(opt, absorber_bonds=True)
    r_opt = np.linalg.norm(atoms.positions[topo.bonds[:, 0]] - atoms.positions[topo.bonds[:, 1]], axis=1)
    fn, energy = make_toy_forward("Ni")
    stretched = opt.replace(positions=opt.positions * 1.15)  # spectrum pulls towards +15% everywhere
    target = Spectrum(
        energy=energy,
        mu=np.asarray(make_predict(as_forward(fn, energy=energy, element="Ni"))(stretched, Nuisance.create(0.0))),
        meta={"element": "Ni"},
    )
    res = jxas.refine(
        opt, target, model=fn, energy_grid=energy, element="Ni", energy="gfn2", lam=0.05, steps=60, uncertainty=False
    )
    assert res.ok and res.energy_method == "gfn2", res.message
    p = np.asarray(res.structure.positions)
    r = np.linalg.norm(p[topo.bonds[:, 0]] - p[topo.bonds[:, 1]], axis=1)
    assert np.all(np.abs(r / r_opt - 1.0) < 0.10), r / r_opt
    assert res.energy["end"] >= res.energy["start"] - 1e-6  # it moved off the minimum, but not far
