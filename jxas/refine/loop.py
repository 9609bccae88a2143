"""The optax refinement loop: masked updates, convergence tests, history, and robust stopping.

A short Python loop around one jitted step (xTB enters through a host callback, so ``lax.scan`` would
buy nothing there; :func:`scan_refine` is the pure-JAX, vmappable variant used for multi-start
refinements). Every step is checked on the host: a NaN/inf loss, exploding or overlapping atoms, an
xTB failure or Ctrl-C stop the run with a clear status and the last good iterate is returned.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = ["LoopConfig", "LoopOutput", "make_optimizer", "run_loop", "scan_refine", "STATUSES"]

STATUSES = {
    "converged": "loss stopped improving (relative change below ftol over `patience` steps) or gradient below gtol",
    "max_steps": "reached the step limit",
    "nan_loss": "the loss or its gradient became NaN/inf; returned the last good structure",
    "exploded": "an atom moved farther than max_displacement from its start; returned the last good structure",
    "overlap": "two atoms came closer than min_distance; returned the last good structure",
    "xtb_failed": "xTB failed (SCF) after retries and fallback; returned the last good structure",
    "interrupted": "interrupted (Ctrl-C); returned the last good structure",
}


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """Optimiser and stopping settings.

    Attributes:
        steps: maximum number of optimiser steps.
        optimizer: ``"adam"`` (default) or ``"lbfgs"`` (optax L-BFGS with zoom line search).
        learning_rate: Adam step size (Å per step for positions; nuisance parameters are scaled to
            match, see :data:`jxas.refine.objective.SHIFT_UNIT`).
        ftol: relative loss improvement below which, for ``patience`` steps, the run has converged.
        patience: steps without improvement before stopping.
        gtol: max |gradient| (masked) below which the run has converged.
        max_displacement: Å; an atom farther than this from its start stops the run ("exploded").
        min_distance: Å; two atoms closer than this stop the run ("overlap").
        traj_every: keep every n-th iterate in the trajectory.
        xtb_retries: after an xTB failure, restart from the last good iterate with half the step,
            this many times, before falling back.
    """

    steps: int = 200
    optimizer: str = "adam"
    learning_rate: float = 0.005
    ftol: float = 1e-6
    patience: int = 40
    gtol: float = 1e-7
    max_displacement: float = 1.5
    min_distance: float = 0.6
    traj_every: int = 1
    xtb_retries: int = 2


@dataclasses.dataclass
class LoopOutput:
    """What a loop returns: the best good iterate and how it got there."""

    x: Any
    loss: float
    aux: dict
    history: dict[str, np.ndarray]
    trajectory: np.ndarray
    status: str
    message: str
    n_steps: int
    seconds: float
    events: list[str]


def make_optimizer(cfg: LoopConfig) -> optax.GradientTransformation:
    """Adam with an injectable learning rate (so a retry can halve it without recompiling), or L-BFGS."""
    if cfg.optimizer == "adam":
        return optax.inject_hyperparams(optax.adam)(learning_rate=cfg.learning_rate)
    if cfg.optimizer == "lbfgs":
        return optax.lbfgs()
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; choose 'adam' or 'lbfgs'")


def _mul(tree, mask):
    return jax.tree.map(lambda a, m: a * m, tree, mask)


def make_step(
    fn: Callable, opt: optax.GradientTransformation, mask, *, lbfgs: bool = False, record: Callable | None = None
) -> Callable:
    """Return a pure ``step(x, opt_state, args) -> (x_new, opt_state, loss, aux, gmax, rec)``.

    ``mask`` is a pytree like ``x`` of 0/1 factors (movable atoms, free nuisance parameters):
    gradients and updates are multiplied by it, so frozen entries never move. ``gmax`` is the largest
    masked |gradient|; ``rec = record(x, aux)`` (a dict of scalars, traced) or ``{}``.
    """

    def step(x, opt_state, args):
        (val, aux), g = jax.value_and_grad(fn, has_aux=True)(x, args)
        g = _mul(g, mask)
        if lbfgs:

            def value_fn(p):
                return fn(p, args)[0]

            updates, opt_state = opt.update(g, opt_state, x, value=val, grad=g, value_fn=value_fn)
        else:
            updates, opt_state = opt.update(g, opt_state, x)
        x_new = optax.apply_updates(x, _mul(updates, mask))
        gmax = jnp.max(jnp.stack([jnp.max(jnp.abs(leaf)) for leaf in jax.tree.leaves(g)]))
        rec = record(x, aux) if record is not None else {}
        return x_new, opt_state, val, aux, gmax, rec

    return step


def _geometry_problem(pos: np.ndarray, pos0: np.ndarray, real: np.ndarray, cfg: LoopConfig) -> tuple[str, str] | None:
    p = pos[real]
    if not np.all(np.isfinite(p)):
        return "nan_loss", "non-finite coordinates"
    disp = np.linalg.norm(p - pos0[real], axis=-1)
    if disp.max() > cfg.max_displacement:
        i = int(np.flatnonzero(real)[np.argmax(disp)])
        return "exploded", f"atom {i} moved {disp.max():.2f} Å from its start (limit {cfg.max_displacement} Å)"
    d = np.linalg.norm(p[:, None] - p[None], axis=-1) + np.eye(len(p)) * 1e9
    if d.min() < cfg.min_distance:
        i, j = np.unravel_index(np.argmin(d), d.shape)
        idx = np.flatnonzero(real)
        return "overlap", f"atoms {idx[i]} and {idx[j]} are {d.min():.2f} Å apart (limit {cfg.min_distance} Å)"
    return None


def run_loop(
    fn: Callable,
    x0: Any,
    args: Any,
    mask: Any,
    cfg: LoopConfig = LoopConfig(),
    *,
    real: np.ndarray | None = None,
    fallback: Callable[[Any], tuple[Callable, Any]] | None = None,
    is_energy_failure: Callable[[BaseException], bool] | None = None,
    record: Callable[[Any, dict], dict[str, float]] | None = None,
    on_step: Callable[[int, dict], None] | None = None,
    progress: bool = False,
) -> LoopOutput:
    """Minimise ``fn(x, args)`` from ``x0`` with masked optax updates; robust to failures.

    Args:
        fn: objective ``fn(x, args) -> (loss, aux)``; ``x["positions"]`` are the coordinates (Å).
        x0: starting parameters (pytree with a ``"positions"`` leaf).
        args: objective arguments (pytree).
        mask: 0/1 pytree like ``x0``.
        cfg: :class:`LoopConfig`.
        real: ``[n]`` bool, real (unpadded) atoms for the geometry checks; default all.
        fallback: called with the last good ``x`` after xTB failures persist; returns a new
            ``(fn, args)`` (e.g. GFN-FF instead of GFN2-xTB) to continue with, or raises.
        is_energy_failure: recognises an energy-term failure among exceptions (default: xTB's).
        record: ``record(x, aux) -> {name: scalar}`` extra history columns (traced, inside the step).
        on_step: host hook ``on_step(step, row)`` called after every good step (logging, live plots).
        progress: show a tqdm progress bar.

    Returns:
        :class:`LoopOutput` with the best good iterate (lowest loss among checked ones).
    """
    from jxas.physics.xtb import is_xtb_failure

    is_energy_failure = is_energy_failure or is_xtb_failure
    t_start = time.perf_counter()
    opt = make_optimizer(cfg)
    lbfgs = cfg.optimizer == "lbfgs"
    step = jax.jit(make_step(fn, opt, mask, lbfgs=lbfgs, record=record))
    pos0 = np.asarray(x0["positions"])
    real = np.ones(len(pos0), bool) if real is None else np.asarray(real, bool)
    x = x0
    opt_state = opt.init(x)
    hist: dict[str, list] = {}
    traj: list[np.ndarray] = []
    events: list[str] = []
    good_x, good_loss, good_aux = None, np.inf, None
    best_seen, since_best = np.inf, 0
    status, message = "max_steps", STATUSES["max_steps"]
    retries = 0
    lr = cfg.learning_rate
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.steps, desc="refine", unit="step", leave=False)
    i = 0
    try:
        while i <= cfg.steps:
            try:
                x_new, new_state, val, aux, gmax, rec = step(x, opt_state, args)
                scalars = {k: v for k, v in aux.items() if k in ("spectral", "energy", "restraint")}
                # one transfer per step (each eager conversion would cost a dispatch)
                val, gmax, rec, scalars, pos = jax.device_get((val, gmax, rec, scalars, x["positions"]))
                val, gmax = float(val), float(gmax)
            except Exception as e:  # noqa: BLE001 - energy-term failures arrive wrapped by JAX
                if not is_energy_failure(e):
                    raise
                events.append(f"step {i}: {str(e).splitlines()[-1] if str(e) else type(e).__name__}")
                if good_x is not None and retries < cfg.xtb_retries and not lbfgs:
                    retries += 1
                    lr *= 0.5
                    x = good_x
                    opt_state = opt.init(x)
                    opt_state.hyperparams["learning_rate"] = jnp.asarray(lr)
                    events.append(f"step {i}: retry {retries} from the last good structure with step {lr:g} Å")
                    continue
                if fallback is not None:
                    try:
                        fn, args = fallback(good_x if good_x is not None else x)
                    except Exception as e2:  # noqa: BLE001
                        status, message = "xtb_failed", f"{STATUSES['xtb_failed']} ({e2})"
                        break
                    events.append(f"step {i}: fell back to {getattr(fn, 'label', 'the fallback energy')}")
                    fallback = None
                    step = jax.jit(make_step(fn, opt, mask, lbfgs=lbfgs, record=record))
                    x = good_x if good_x is not None else x
                    opt_state = opt.init(x)
                    good_loss, best_seen, since_best = np.inf, np.inf, 0  # a different objective
                    continue
                status, message = "xtb_failed", f"{STATUSES['xtb_failed']}: {events[-1]}"
                break
            pos = np.asarray(pos)
            if not (np.isfinite(val) and np.isfinite(gmax)):
                status, message = "nan_loss", f"{STATUSES['nan_loss']} (at step {i})"
                break
            problem = _geometry_problem(pos, pos0, real, cfg)
            if problem is not None:
                status = problem[0]
                message = f"{STATUSES[status]} (step {i}: {problem[1]})"
                break
            # x is good: record it
            row = {"step": i, "loss": val, "grad_max": gmax}
            row.update({k: float(v) for k, v in scalars.items()})
            row.update({k: float(v) for k, v in rec.items()})
            for k, v in row.items():
                hist.setdefault(k, []).append(v)
            if i % cfg.traj_every == 0:
                traj.append(pos[real])
            if on_step is not None:
                on_step(i, row)
            if val < good_loss:
                good_x, good_loss, good_aux = x, val, aux
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{val:.3g}")
            if val < best_seen - cfg.ftol * abs(best_seen) or not np.isfinite(best_seen):
                best_seen, since_best = val, 0
            else:
                since_best += 1
            if since_best >= cfg.patience:
                status, message = "converged", f"{STATUSES['converged']} (step {i})"
                break
            if gmax < cfg.gtol:
                status, message = "converged", f"gradient below gtol = {cfg.gtol:g} (step {i})"
                break
            if i == cfg.steps:
                break
            x, opt_state = x_new, new_state
            i += 1
    except KeyboardInterrupt:
        status, message = "interrupted", STATUSES["interrupted"] + f" (step {i})"
    finally:
        if bar is not None:
            bar.close()
    if good_x is None:
        good_x, good_aux = x0, {}
        good_loss = float("nan")
        message += "; no step was good, returning the start"
    history = {k: np.asarray(v) for k, v in hist.items()}
    trajectory = np.stack(traj) if traj else pos0[real][None]
    return LoopOutput(
        x=good_x,
        loss=float(good_loss),
        aux=good_aux,
        history=history,
        trajectory=trajectory,
        status=status,
        message=message,
        n_steps=len(hist.get("loss", [])),
        seconds=time.perf_counter() - t_start,
        events=events,
    )


def scan_refine(fn: Callable, x0: Any, args: Any, mask: Any, *, steps: int = 200, learning_rate: float = 0.005):
    """Pure-JAX Adam refinement with ``lax.scan``: jit- and vmap-able (multi-start, ensemble members).

    No host checks: use it with pure-JAX energies (restraints), whose repulsion keeps atoms apart.

    Returns:
        ``(x_final, losses [steps])``.
    """
    opt = optax.adam(learning_rate)
    step = make_step(fn, opt, mask)

    def body(carry, _):
        x, s = carry
        x, s, val, *_ = step(x, s, args)
        return (x, s), val

    (x, _), losses = jax.lax.scan(body, (x0, opt.init(x0)), None, length=steps)
    return x, losses


def movable_mask(
    n: int, movable: str | Sequence[int], *, absorber: int, first_shell: Sequence[int], real: np.ndarray
) -> np.ndarray:
    """``[n]`` float 0/1 of atoms allowed to move: ``"all"``, ``"first_shell"`` (absorber + donors), or indices."""
    m = np.zeros(n)
    if isinstance(movable, str):
        if movable == "all":
            m[:] = 1.0
        elif movable in ("first_shell", "first-shell", "shell"):
            m[[absorber, *first_shell]] = 1.0
        else:
            raise ValueError(f"movable must be 'all', 'first_shell' or a list of atom indices, got {movable!r}")
    else:
        idx = np.asarray(list(movable), int)
        if idx.size == 0:
            raise ValueError("movable: empty list of atom indices")
        if idx.min() < 0 or idx.max() >= n or not np.all(real[idx]):
            raise ValueError(f"movable: atom indices {idx.tolist()} out of range for {int(real.sum())} atoms")
        m[idx] = 1.0
    return m * real
