"""``jxas.refine``: fit a 3D structure to a measured or simulated spectrum, with an energy term.

R* = argmin_R [ D(spectrum(R), target) + lambda (E(R) - E(R0)) / N + w E_restraint(R) / N ], with the
spectral nuisance parameters (energy shift, broadening, amplitude) fitted jointly (DeepFit's idea:
Martini et al., Comput. Phys. Commun. 250, 107064 (2020); here open and differentiable end to end).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jxas.losses import get_loss, make_grid, mse, pearson
from jxas.physics.restraints import detect_topology, first_shell, make_restraints
from jxas.physics.xtb import XTB_METHODS, XTBError, is_xtb_failure, xtb_energy
from jxas.refine.loop import LoopConfig, movable_mask, run_loop, scan_refine
from jxas.refine.objective import (
    SHIFT_UNIT,
    BroadeningConfig,
    Forward,
    Nuisance,
    ObjectiveArgs,
    as_forward,
    make_objective,
    make_predict,
)
from jxas.refine.result import RefineResult, bond_rows
from jxas.spectrum.spectrum import Spectrum
from jxas.structure import Structure

__all__ = ["refine", "prepare_target", "energy_term", "ENERGIES", "DEFAULT_LAMBDA"]

ENERGIES = (*XTB_METHODS, "restraints", "none")
# Weight of the energy term, per eV per atom, against an MSE of normalised mu (~1e-4..1e-2 for fits).
DEFAULT_LAMBDA = {"gfn2": 0.05, "gfn1": 0.05, "gfnff": 0.05, "restraints": 1.0, "none": 0.0}


def _edge_covered(energy: np.ndarray, e_edge: float) -> bool:
    return energy.min() < e_edge - 5.0 and energy.max() > e_edge + 20.0


def prepare_target(
    target: Spectrum, forward: Forward, *, normalise: str | bool = "auto"
) -> tuple[np.ndarray, np.ndarray, float, dict]:
    """Check a target spectrum and put it, normalised, on the model grid.

    Experimental targets (``meta["quantity"]`` not ``"norm"``, or a spectrum whose pre-edge is not
    ~0 and post-edge not ~1) are normalised with :func:`jxas.spectrum.normalise.pre_edge` (xraylarch
    semantics, ``flat``). Points of the model grid outside the target's energy range get weight 0.

    Returns:
        ``(mu [e], weight [e], e0, info)`` on ``forward.energy``; ``e0`` is the target's edge (eV).

    Raises:
        ValueError: wrong element (``meta["element"]`` differs from the model's), an energy range that
            misses the edge, too few points, NaN/inf.
    """
    from jxas.spectrum.normalise import find_e0, pre_edge

    e = np.asarray(target.energy, float)
    mu = np.asarray(target.mu, float)
    src = target.meta.get("source", target.meta.get("path", "target spectrum"))
    if mu.ndim != 1:
        raise ValueError(f"{src}: refine needs one spectrum, got mu of shape {mu.shape}")
    if e.size < 10 or not (np.all(np.isfinite(e)) and np.all(np.isfinite(mu))):
        raise ValueError(
            f"{src}: the target needs >= 10 finite points (got {e.size}, NaN/inf present: "
            f"{not (np.all(np.isfinite(e)) and np.all(np.isfinite(mu)))})"
        )
    el = target.meta.get("element")
    if el and forward.element and str(el).capitalize() != str(forward.element).capitalize():
        raise ValueError(f"{src}: the spectrum is of {el}, the model is for {forward.element}")
    if not _edge_covered(e, forward.e_edge):
        raise ValueError(
            f"{src}: energy range {e.min():.1f}-{e.max():.1f} eV misses the {forward.element or ''} edge at "
            f"{forward.e_edge:.0f} eV (need data from below E_edge - 5 eV to above E_edge + 20 eV); is this "
            "the right element, and are energies absolute eV?"
        )
    order = np.argsort(e)
    e, mu = e[order], mu[order]
    info = {"normalised": False}
    if normalise == "auto":
        quantity = str(target.meta.get("quantity", ""))
        lo = mu[e < forward.e_edge - 15.0]
        hi = mu[e > forward.e_edge + 50.0]
        looks_norm = (lo.size == 0 or abs(np.mean(lo)) < 0.1) and (hi.size == 0 or abs(np.mean(hi) - 1.0) < 0.25)
        normalise = quantity != "norm" and (quantity.startswith("mu") or not looks_norm)
    if normalise:
        pe = pre_edge(e, mu)
        mu = np.asarray(pe.flat)
        e = np.asarray(pe.energy) if hasattr(pe, "energy") and np.shape(pe.energy) == mu.shape else e
        info.update(normalised=True, e0=float(pe.e0), edge_step=float(pe.edge_step))
        e0 = float(pe.e0)
    else:
        e0 = float(find_e0(e, mu))
    grid = np.asarray(forward.energy, float)
    inside = (grid >= e[0]) & (grid <= e[-1])
    if inside.sum() < 20:
        raise ValueError(f"{src}: only {inside.sum()} model grid points lie in the target's energy range")
    mu_grid = np.interp(grid, e, mu)
    info["e0"] = e0
    return mu_grid, inside.astype(float), e0, info


def energy_term(
    method: str, structure: Structure, *, xtb_options: dict | None = None, **restraint_kw
) -> tuple[Callable | None, str]:
    """``(energy_fn(positions) -> eV, label)`` for ``method`` in :data:`ENERGIES`."""
    if method in XTB_METHODS:
        num, mask, q, sp = structure.numbers, structure.mask, int(structure.charge), int(structure.spin)
        opts = dict(xtb_options or {})

        def fn(positions):
            return xtb_energy(positions, num, charge=q, spin=sp, method=method, mask=mask, **opts)

        return fn, method
    if method == "restraints":
        return make_restraints(structure, **restraint_kw), "restraints"
    if method in ("none", None):
        return None, "none"
    raise ValueError(f"unknown energy term {method!r}; choose one of {', '.join(ENERGIES)}")


def refine(
    structure: Structure,
    target: Spectrum,
    *,
    model,
    energy: str = "gfn2",
    lam: float | None = None,
    loss: str | Callable = "mse",
    steps: int = 200,
    optimizer: str = "adam",
    learning_rate: float = 0.005,
    movable: str | Sequence[int] = "all",
    fit_shift: bool = True,
    fit_broadening: bool = True,
    fit_scale: bool = True,
    shift: float | None = None,
    broadening: float = 1.0,
    scale: float = 1.0,
    window: tuple[float, float] | None = None,
    normalise: str | bool = "auto",
    broadening_model: BroadeningConfig | None = None,
    restraint_weight: float = 0.0,
    restraints: dict | None = None,
    xtb_fallback: str | None = "gfnff",
    xtb_options: dict | None = None,
    uncertainty: bool = True,
    uncertainty_steps: int = 60,
    loop: LoopConfig | None = None,
    energy_grid=None,
    element: str | None = None,
    progress: bool = False,
    on_step: Callable[[int, dict], None] | None = None,
) -> RefineResult:
    """Refine ``structure`` against ``target``.

    Args:
        structure: the starting structure (its absorber must be the model's element).
        target: a :class:`~jxas.Spectrum` (experimental or simulated; absolute eV).
        model: a ``jxas.models.Model`` (e.g. ``jxas.load_model("fe-k")``), a
            :class:`~jxas.refine.objective.Forward`, or any differentiable ``fn(structure) -> [e]``
            (then ``energy_grid`` and ``element`` are needed).
        energy: energy term: ``"gfn2"``, ``"gfn1"``, ``"gfnff"`` (xTB), ``"restraints"`` (jax-md,
            pure JAX), or ``"none"``.
        lam: weight of (E(R) - E(R0)) / N_atoms (per eV); default :data:`DEFAULT_LAMBDA`.
        loss: spectral distance, a name in :data:`jxas.losses.LOSSES` or a function.
        steps, optimizer, learning_rate: optax settings (Adam by default; ``"lbfgs"``).
        movable: ``"all"``, ``"first_shell"`` (absorber + bonded donors) or atom indices.
        fit_shift, fit_broadening, fit_scale: fit the nuisance parameters (else fixed at their start).
        shift: start energy shift (eV); default aligns the model's edge (max derivative) to the target's.
        broadening, scale: start broadening-width factor and amplitude factor.
        window: fitting window ``(lo, hi)`` eV relative to the target's E0; default the whole overlap.
        normalise: ``"auto"``, True or False (see :func:`prepare_target`).
        broadening_model: the arctangent broadening of the model's unconvolved mu.
        restraint_weight: add restraints (jax-md) with this weight per eV per atom on top of ``energy``.
        restraints: keyword arguments of :func:`jxas.physics.make_restraints`.
        xtb_fallback: energy to fall back to after xTB failures persist (``"gfnff"``) or None to stop.
        xtb_options: ``accuracy`` / ``max_iterations`` for :func:`jxas.physics.xtb_energy`.
        uncertainty: estimate first-shell distance uncertainties from the ensemble spread (refine
            briefly against each member, restraints as energy, vmapped) when the model has members.
        uncertainty_steps: steps of those member refinements.
        loop: full :class:`~jxas.refine.loop.LoopConfig` (overrides steps/optimizer/learning_rate).
        energy_grid, element: for a plain spectrum function.
        progress: tqdm progress bar.
        on_step: host hook ``on_step(step, row)`` after every good step (timing, logging, live plots).

    Returns:
        :class:`~jxas.refine.result.RefineResult`.

    Raises:
        ValueError: wrong element, energy range missing the edge, unknown options, bad structure.
    """
    if structure.is_batch:
        raise ValueError("refine() takes one structure; use jxas.sweep.multistart for batches")
    if energy not in ENERGIES:
        raise ValueError(f"unknown energy term {energy!r}; choose one of {', '.join(ENERGIES)}")
    from ase.data import chemical_symbols

    forward = as_forward(model, energy=energy_grid, element=element)
    ab = int(structure.absorber)
    ab_el = chemical_symbols[int(structure.numbers[ab])]
    if forward.element and ab_el.lower() != str(forward.element).lower():
        raise ValueError(f"the structure's absorber is {ab_el}, the model is for {forward.element}")
    if forward.check is not None:
        forward.check(structure)
    pos_in = np.asarray(structure.positions, float)
    real = np.asarray(structure.mask, bool)
    if not np.all(np.isfinite(pos_in[real])):
        raise ValueError("the starting structure has NaN/inf coordinates")
    dtype = jnp.result_type(float)
    structure = structure.replace(positions=jnp.asarray(pos_in, dtype))
    loss_fn = get_loss(loss)
    cfg = loop or LoopConfig(steps=steps, optimizer=optimizer, learning_rate=learning_rate)

    mu_t, weight, e0, tinfo = prepare_target(target, forward, normalise=normalise)
    grid = make_grid(forward.energy, e0, window=window)
    grid = grid._replace(weight=grid.weight * jnp.asarray(weight, dtype))
    predict = make_predict(forward, broadening_model or BroadeningConfig())
    predict_jit = jax.jit(predict)  # host-side evaluations: one compilation instead of op-by-op dispatch

    # start values of the nuisance parameters; the shift aligns edges (max derivative), as users do by hand
    if shift is None:
        from jxas.spectrum.normalise import find_e0

        p0 = np.asarray(predict_jit(structure, Nuisance.create(0.0, broadening, scale, dtype)))
        shift = float(e0 - find_e0(forward.energy, p0))
    nu0 = Nuisance.create(shift, broadening, scale, dtype)

    topo = detect_topology(structure)
    shell = first_shell(structure, topology=topo)
    mask_pos = movable_mask(len(real), movable, absorber=ab, first_shell=shell, real=real)
    mask = {
        "positions": jnp.asarray(np.repeat(mask_pos[:, None], 3, 1), dtype),
        "nuisance": Nuisance(*(jnp.asarray(float(f), dtype) for f in (fit_shift, fit_broadening, fit_scale))),
    }
    rkw = dict(restraints or {})
    restraint_fn = make_restraints(structure, **rkw) if restraint_weight > 0 else None

    def build(method: str, x_ref):
        efn, label = energy_term(method, structure, xtb_options=xtb_options, **rkw)
        fn = make_objective(predict, loss_fn, energy_fn=efn, restraint_fn=restraint_fn)
        fn.label = label
        e_ref = float(jax.jit(efn)(x_ref["positions"])) if efn is not None else 0.0
        lam_ = DEFAULT_LAMBDA[method] if lam is None else lam
        args = ObjectiveArgs(
            structure,
            jnp.asarray(mu_t, dtype),
            grid,
            jnp.asarray(e_ref, dtype),
            jnp.asarray(lam_ if efn is not None else 0.0, dtype),
            jnp.asarray(restraint_weight, dtype),
        )
        return fn, args

    x0 = {"positions": structure.positions, "nuisance": nu0}
    state = {"method": energy}
    start_events = []
    try:
        fn, args = build(energy, x0)
    except Exception as e:  # noqa: BLE001 - xTB failures arrive wrapped by JAX
        if not (energy in XTB_METHODS and is_xtb_failure(e)):
            raise
        msg = str(e).strip().splitlines()[-1]
        if xtb_fallback in (None, energy):
            raise XTBError(f"{energy} failed on the starting structure and no fallback is configured: {msg}") from None
        start_events.append(f"start: {energy} failed ({msg}); fell back to {xtb_fallback}")
        state["method"] = xtb_fallback
        fn, args = build(xtb_fallback, x0)
    e_start = float(args.e_ref)

    def fallback(x_good):
        if state["method"] not in XTB_METHODS or xtb_fallback in (None, state["method"]):
            raise RuntimeError(f"no fallback configured after {energy} failures")
        state["method"] = xtb_fallback
        return build(xtb_fallback, x0)  # reference energy of the fallback at the start geometry

    def record(x, aux):
        pos = x["positions"]
        r = jnp.linalg.norm(pos[jnp.asarray(shell)] - pos[ab], axis=-1) if len(shell) else jnp.zeros(1)
        nu = x["nuisance"]
        return {
            "shift_ev": nu.shift * SHIFT_UNIT,
            "broadening": jnp.exp(nu.log_broad),
            "scale": jnp.exp(nu.log_scale),
            "r_first_shell": jnp.mean(r),
        }

    out = run_loop(
        fn, x0, args, mask, cfg, real=real, fallback=fallback, record=record, progress=progress, on_step=on_step
    )
    x = out.x
    s_final = structure.replace(positions=x["positions"])
    nu = Nuisance(*x["nuisance"])
    pred_after = np.asarray(predict_jit(s_final, nu))
    pred_before = np.asarray(predict_jit(structure, nu0))
    w = grid.weight
    quality = jax.jit(lambda p, t, g: (mse(p, t, g), 1.0 - pearson(p, t, g)))
    mse_b, r_b = (float(v) for v in quality(jnp.asarray(pred_before), args.target, grid))
    mse_a, r_a = (float(v) for v in quality(jnp.asarray(pred_after), args.target, grid))
    fit = {
        "mse_before": mse_b,
        "mse_after": mse_a,
        "r_before": r_b,
        "r_after": r_a,
        "loss_before": float(out.history["loss"][0]) if out.n_steps else float("nan"),
        "loss_after": out.loss,
    }
    energies = {}
    if state["method"] != "none":
        efn, _ = energy_term(state["method"], structure, xtb_options=xtb_options, **rkw)
        try:
            efn = jax.jit(efn)
            energies = {"start": float(efn(structure.positions)), "end": float(efn(x["positions"]))}
        except Exception:  # noqa: BLE001 - reporting only; the run status already says what failed
            energies = {"start": e_start}

    sigma = None
    if uncertainty and forward.members_fn is not None and len(shell) and out.n_steps:
        sigma = _member_spread(
            forward, predict, loss_fn, structure, x, args, mask, shell, uncertainty_steps, cfg.learning_rate, rkw
        )
    bonds = bond_rows(pos_in, np.asarray(x["positions"]), np.asarray(structure.numbers), ab, shell, sigma)
    energy_np = np.asarray(forward.energy)
    meta = {"model": forward.name, "element": forward.element}
    return RefineResult(
        structure=s_final,
        start=structure,
        spectrum=Spectrum(energy=energy_np, mu=pred_after, meta={**meta, "kind": "fit"}),
        initial=Spectrum(energy=energy_np, mu=pred_before, meta={**meta, "kind": "start"}),
        target=Spectrum(energy=energy_np, mu=np.asarray(mu_t), meta={**tinfo, "weight": np.asarray(w).tolist()}),
        nuisance=nu.physical(),
        history=out.history,
        trajectory=out.trajectory,
        bonds=bonds,
        fit=fit,
        status=out.status,
        message=out.message,
        energy_method=state["method"],
        energy=energies,
        events=start_events + out.events,
        seconds=out.seconds,
        n_steps=out.n_steps,
        config={
            "energy": energy,
            "lam": DEFAULT_LAMBDA.get(energy) if lam is None else lam,
            "loss": loss if isinstance(loss, str) else getattr(loss, "__name__", "custom"),
            "movable": movable if isinstance(movable, str) else list(map(int, movable)),
            "fit_shift": fit_shift,
            "fit_broadening": fit_broadening,
            "fit_scale": fit_scale,
            "restraint_weight": restraint_weight,
            "window": window,
            **dataclasses.asdict(cfg),
        },
    )


def _member_spread(forward, predict, loss_fn, structure, x, args, mask, shell, steps, lr, rkw):
    """Std over ensemble members of first-shell distances after refining briefly against each member.

    Each member run starts at the refined structure, uses the restraints (pure JAX) as energy term so
    all members run in one vmapped ``lax.scan``, and keeps the nuisance parameters free as in the fit.
    """
    members = forward.members_fn(structure)
    m = int(members.shape[0])
    if m < 2:
        return None
    restr = make_restraints(structure.replace(positions=x["positions"]), **rkw)
    ab = int(structure.absorber)
    idx = jnp.asarray(shell)

    def run_member(k):
        def fn(xx, a):
            s = a.structure.replace(positions=xx["positions"])
            pred = predict(s, xx["nuisance"], mu=forward.members_fn(s)[k])
            d = loss_fn(pred, a.target, a.grid)
            n = jnp.sum(a.structure.mask).astype(d.dtype)
            return d + DEFAULT_LAMBDA["restraints"] * restr(xx["positions"]) / n, None

        xf, _ = scan_refine(fn, x, args, mask, steps=steps, learning_rate=lr)
        return jnp.linalg.norm(xf["positions"][idx] - xf["positions"][ab], axis=-1)

    r = jax.vmap(run_member)(jnp.arange(m))
    return np.asarray(jnp.std(r, axis=0, ddof=1))
