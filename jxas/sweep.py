"""Sweeps over internal coordinates, evaluated with ``vmap``; multi-start refinement.

Moves (factories returning pure ``move(structure, value) -> structure``):

- ``"shell"``: symmetric stretch of the first coordination shell (or of given donor atoms) by
  ``value`` Å; each ligand moves rigidly along its absorber -> donor direction (``rigid=True``) or
  only the donor atoms move (``rigid=False``);
- ``"element"``: the same for all first-shell donors of one element;
- ``"bond"``: stretch of one absorber-donor bond by ``value`` Å moving that ligand rigidly;
- ``"bend"``: rotation of one ligand about the absorber by ``value`` degrees in the plane of
  (donor, absorber, reference donor), changing that L-M-L angle;
- ``"scale"``: isotropic expansion of the whole cluster about the absorber by the fraction ``value``
  (a lattice-parameter change for clusters cut from crystals).

:func:`sweep` evaluates the spectral loss (and optionally the restraint energy) on 1D/2D grids of
these moves, as Fig. 6 of Rankine, Madkhali & Penfold, J. Phys. Chem. A 124, 4263 (2020) (MSE against
the Fe-N distance of [Fe(bpy)3]2+). ``jxas.sweep`` (the module) is callable as :func:`sweep`.
"""

from __future__ import annotations

import dataclasses
import sys
import types
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from jxas.losses import get_loss, make_grid
from jxas.physics.restraints import Topology, detect_topology, first_shell, make_restraints
from jxas.structure import Structure, safe_norm, trim

__all__ = ["make_move", "fragments", "sweep", "SweepResult", "multistart", "MultiStartResult", "plot_sweep"]


def fragments(structure: Structure, topology: Topology | None = None) -> list[np.ndarray]:
    """Ligand fragments: connected components of the bond graph with the absorber removed (host side)."""
    topo = topology or detect_topology(structure)
    n = structure.n_max
    ab = int(structure.absorber)
    real = np.asarray(structure.mask, bool)
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in topo.bonds:
        if ab in (i, j):
            continue
        parent[find(i)] = find(j)
    comps: dict[int, list[int]] = {}
    for i in np.flatnonzero(real):
        if i != ab:
            comps.setdefault(find(i), []).append(int(i))
    return [np.asarray(c) for c in comps.values()]


def _fragment_of(frags: list[np.ndarray], atom: int) -> np.ndarray:
    for f in frags:
        if atom in f:
            return f
    raise ValueError(f"atom {atom} is not in any ligand fragment")


def make_move(
    kind: str,
    structure: Structure,
    *,
    atoms: Sequence[int] | None = None,
    element: str | None = None,
    atom: int | None = None,
    reference: int | None = None,
    rigid: bool = True,
) -> Callable[[Structure, Float[Array, ""]], Structure]:
    """Build an internal-coordinate move on ``structure``'s connectivity (see the module docstring).

    Args:
        kind: ``"shell"``, ``"element"``, ``"bond"``, ``"bend"`` or ``"scale"``.
        structure: reference structure (connectivity and donor set are detected on it).
        atoms: donor indices for ``"shell"`` (default: the whole first shell).
        element: donor element for ``"element"`` (e.g. ``"N"``).
        atom: the donor for ``"bond"`` and ``"bend"``.
        reference: the other donor that defines the bending plane for ``"bend"``.
        rigid: move whole ligand fragments (True) or only the donor atoms (False).

    Returns:
        Pure ``move(structure, value) -> structure`` (value in Å, or degrees for ``"bend"``); it
        jits and vmaps over ``value``. ``move.atoms`` lists the donors whose distances it changes.
    """
    from ase.data import atomic_numbers

    topo = detect_topology(structure)
    ab = int(structure.absorber)
    shell = first_shell(structure, topology=topo)
    frags = fragments(structure, topo)
    n = structure.n_max
    if kind in ("shell", "element"):
        if kind == "element":
            z = atomic_numbers.get(str(element).capitalize()) if element else None
            if z is None:
                raise ValueError(f"move 'element' needs a valid element=, got {element!r}")
            donors = [int(j) for j in shell if int(structure.numbers[j]) == z]
            if not donors:
                raise ValueError(f"no first-shell donor of element {element} (first shell: {shell.tolist()})")
        else:
            donors = [int(j) for j in (shell if atoms is None else atoms)]
            if not donors:
                raise ValueError("the structure has no first-shell donors (no atom bonded to the absorber)")
        # per-atom weight of each donor's radial unit vector: rigid -> whole fragment follows (mean
        # direction of its moved donors); otherwise only the donors move
        groups = []
        if rigid:
            for f in frags:
                d = [j for j in donors if j in f]
                if d:
                    groups.append((f, d))
        else:
            groups = [(np.asarray([j]), [j]) for j in donors]
        w = np.zeros((n, len(groups)))
        dsel = np.zeros((n, len(groups)))
        for g, (f, d) in enumerate(groups):
            w[f, g] = 1.0
            dsel[d, g] = 1.0 / len(d)
        w, dsel = jnp.asarray(w), jnp.asarray(dsel)

        def move(s: Structure, value):
            p = s.positions
            u = p - p[ab]
            dirs = dsel.T @ u  # [g, 3] mean donor vector of each group
            dirs = dirs / safe_norm(dirs)[:, None]
            return s.replace(positions=p + value * (w @ dirs))

        move.atoms = donors
        return move
    if kind == "scale":

        def move(s: Structure, value):
            p = s.positions
            return s.replace(positions=p[ab] + (1.0 + value) * (p - p[ab]))

        move.atoms = [int(j) for j in shell]
        return move
    if kind in ("bond", "bend"):
        if atom is None or int(atom) not in shell:
            raise ValueError(f"move {kind!r} needs atom= one of the first-shell donors {shell.tolist()}, got {atom}")
        atom = int(atom)
        f = _fragment_of(frags, atom) if rigid else np.asarray([atom])
        sel = np.zeros(n)
        sel[f] = 1.0
        sel = jnp.asarray(sel)[:, None]
        if kind == "bond":

            def move(s: Structure, value):
                p = s.positions
                u = p[atom] - p[ab]
                return s.replace(positions=p + value * sel * (u / safe_norm(u)))

            move.atoms = [atom]
            return move
        if reference is None or int(reference) not in shell or int(reference) == atom:
            raise ValueError(f"move 'bend' needs reference= another first-shell donor {shell.tolist()}")
        ref = int(reference)

        def move(s: Structure, value):
            p = s.positions
            a, b = p[atom] - p[ab], p[ref] - p[ab]
            axis = jnp.cross(b, a)
            axis = axis / safe_norm(axis)
            t = jnp.deg2rad(value)
            # Rodrigues' rotation about the absorber; positive value opens the angle atom-M-ref
            x = p - p[ab]
            c, sn = jnp.cos(t), jnp.sin(t)
            rot = x * c + jnp.cross(axis, x) * sn + axis * (x @ axis)[:, None] * (1 - c)
            return s.replace(positions=jnp.where(sel > 0, p[ab] + rot, p))

        move.atoms = [atom, ref]
        return move
    raise ValueError(f"unknown move {kind!r}; choose 'shell', 'element', 'bond', 'bend' or 'scale'")


@dataclasses.dataclass
class SweepResult:
    """A sweep over a 1D or 2D grid.

    Attributes:
        values: one ``[k_i]`` array per move (Å or degrees).
        loss: spectral loss on the grid, shape ``[k_1]`` or ``[k_1, k_2]``.
        energy: restraint energy (eV) on the grid, or None.
        coordinate: per move, the mean absorber-donor distance (Å; angle in degrees for a bend) of
            the atoms it moves, on that move's axis (the other move at its zero).
        argmin: grid index of the minimum loss; ``min_values``: the move values there.
        min_coordinate: the coordinates at the minimum.
    """

    values: list[np.ndarray]
    loss: np.ndarray
    energy: np.ndarray | None
    coordinate: list[np.ndarray]
    argmin: tuple[int, ...]
    min_values: list[float]
    min_coordinate: list[float]
    labels: list[str]
    seconds: float


def _coordinate(structure: Structure, move, values, kind: str) -> np.ndarray:
    ab = int(structure.absorber)
    atoms = move.atoms

    def coord(v):
        p = move(structure, v).positions
        if kind == "bend":
            a, b = p[atoms[0]] - p[ab], p[atoms[1]] - p[ab]
            return jnp.rad2deg(jnp.arccos(jnp.clip(a @ b / (safe_norm(a) * safe_norm(b)), -1, 1)))
        return jnp.mean(safe_norm(p[jnp.asarray(atoms)] - p[ab]))

    return np.asarray(jax.vmap(coord)(jnp.asarray(values, structure.positions.dtype)))


def sweep(
    structure: Structure,
    target,
    *,
    model,
    moves: Sequence[dict | tuple],
    loss: str | Callable = "mse",
    restraints: bool | dict = False,
    nuisance: dict | None = None,
    window: tuple[float, float] | None = None,
    normalise: str | bool = "auto",
    batch_size: int = 256,
    energy_grid=None,
    element: str | None = None,
) -> SweepResult:
    """Spectral loss (and optionally restraint energy) over a 1D/2D grid of internal-coordinate moves.

    Args:
        structure: the reference structure (value 0 of every move).
        target: target :class:`~jxas.Spectrum` (normalised/put on the model grid as in :func:`jxas.refine`).
        model: a forward model (as for :func:`jxas.refine`).
        moves: one or two ``(kind, values, options)`` tuples or dicts ``{"kind", "values", **options}``
            with the options of :func:`make_move`; ``values`` 1-D (Å, degrees for ``"bend"``).
        loss: spectral loss name or function.
        restraints: also evaluate the restraint energy (eV); a dict passes options to ``make_restraints``.
        nuisance: fixed ``{"shift_ev", "broadening", "scale"}``; default aligns edges at value 0.
        window, normalise: as in :func:`jxas.refine`.
        batch_size: grid points per vmapped batch (``lax.map``), bounds memory for 10^4-point sweeps.
        energy_grid, element: for a plain spectrum function.

    Returns:
        :class:`SweepResult`.
    """
    import time

    from jxas.refine.api import prepare_target
    from jxas.refine.objective import BroadeningConfig, Nuisance, as_forward, make_predict

    t0 = time.perf_counter()
    structure = trim(structure)  # trailing padding costs model time at every grid point
    if not 1 <= len(moves) <= 2:
        raise ValueError(f"sweep takes one or two moves, got {len(moves)}")
    specs = []
    for m in moves:
        if isinstance(m, dict):
            m = dict(m)
            kind, values = m.pop("kind"), m.pop("values")
            opts = m
        else:
            kind, values, *rest = m
            opts = rest[0] if rest else {}
        values = np.asarray(values, float)
        if values.ndim != 1 or values.size < 1:
            raise ValueError(f"move {kind!r}: values must be a non-empty 1-D array")
        specs.append((kind, values, make_move(kind, structure, **opts)))
    forward = as_forward(model, energy=energy_grid, element=element)
    dtype = structure.positions.dtype
    mu_t, weight, e0, _ = prepare_target(target, forward, normalise=normalise)
    grid = make_grid(forward.energy, e0, window=window)
    grid = grid._replace(weight=grid.weight * jnp.asarray(weight, dtype))
    target_mu = jnp.asarray(mu_t, dtype)
    predict = make_predict(forward, BroadeningConfig())
    if nuisance is None:
        from jxas.spectrum.normalise import find_e0

        p0 = np.asarray(jax.jit(predict)(structure, Nuisance.create(0.0, dtype=dtype)))
        nu = Nuisance.create(float(e0 - find_e0(forward.energy, p0)), dtype=dtype)
    else:
        nu = Nuisance.create(
            nuisance.get("shift_ev", 0.0), nuisance.get("broadening", 1.0), nuisance.get("scale", 1.0), dtype=dtype
        )
    loss_fn = get_loss(loss)
    restr = None
    if restraints:
        restr = make_restraints(structure, **(restraints if isinstance(restraints, dict) else {}))

    def point(v):
        s = structure
        for k, (_, _, mv) in enumerate(specs):
            s = mv(s, v[k])
        val = loss_fn(predict(s, nu), target_mu, grid)
        e = restr(s.positions) if restr is not None else jnp.zeros((), val.dtype)
        return val, e

    axes = [sp[1] for sp in specs]
    mesh = np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")], axis=-1)
    fn = jax.jit(lambda vs: jax.lax.map(point, vs, batch_size=batch_size))
    lv, ev = fn(jnp.asarray(mesh, dtype))
    shape = tuple(len(a) for a in axes)
    lv = np.asarray(lv).reshape(shape)
    ev = np.asarray(ev).reshape(shape) if restr is not None else None
    if not np.all(np.isfinite(lv)):
        raise ValueError("the sweep produced NaN/inf losses; check the move ranges (atoms overlapping?)")
    idx = tuple(int(i) for i in np.unravel_index(np.argmin(lv), shape))
    coords = [_coordinate(structure, sp[2], sp[1], sp[0]) for sp in specs]
    labels = [
        ("angle (deg)" if sp[0] == "bend" else "mean M-L distance (Å)") + f" [{sp[0]} {sp[2].atoms}]" for sp in specs
    ]
    return SweepResult(
        values=axes,
        loss=lv,
        energy=ev,
        coordinate=coords,
        argmin=idx,
        min_values=[float(axes[k][idx[k]]) for k in range(len(axes))],
        min_coordinate=[float(coords[k][idx[k]]) for k in range(len(axes))],
        labels=labels,
        seconds=time.perf_counter() - t0,
    )


def plot_sweep(result: SweepResult, path) -> None:
    """PNG of a sweep: loss against the coordinate (1D, minimum marked) or a contour map (2D)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if result.loss.ndim == 1:
        fig, ax = plt.subplots(figsize=(5.5, 4))
        x = result.coordinate[0]
        ax.plot(x, result.loss, "k.-")
        ax.axvline(result.min_coordinate[0], color="C3", ls="--", label=f"minimum {result.min_coordinate[0]:.3f}")
        ax.set_xlabel(result.labels[0])
        ax.set_ylabel("spectral loss")
        if result.energy is not None:
            ax2 = ax.twinx()
            ax2.plot(x, result.energy, "C0-", alpha=0.7)
            ax2.set_ylabel("restraint energy (eV)", color="C0")
        ax.legend(frameon=False)
    else:
        fig, ax = plt.subplots(figsize=(5.5, 4.5))
        cs = ax.contourf(result.coordinate[1], result.coordinate[0], result.loss, levels=30, cmap="viridis")
        fig.colorbar(cs, ax=ax, label="spectral loss")
        ax.plot(result.min_coordinate[1], result.min_coordinate[0], "r*", ms=12)
        ax.set_xlabel(result.labels[1])
        ax.set_ylabel(result.labels[0])
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@dataclasses.dataclass
class MultiStartResult:
    """Multi-start refinement: every start's final positions and loss; the best one."""

    positions: np.ndarray  # [s, n, 3] Å
    loss: np.ndarray  # [s]
    history: np.ndarray  # [s, steps]
    best: int
    structure: Structure
    first_shell: np.ndarray  # [s, k] Å


def multistart(
    structure: Structure,
    target,
    *,
    model,
    key,
    n_starts: int = 8,
    sigma: float = 0.1,
    steps: int = 200,
    learning_rate: float = 0.005,
    lam: float = 1.0,
    loss: str | Callable = "mse",
    restraints: dict | None = None,
    normalise: str | bool = "auto",
    energy_grid=None,
    element: str | None = None,
) -> MultiStartResult:
    """Refine from ``n_starts`` randomly perturbed starts at once (``vmap`` over ``lax.scan`` Adam runs).

    The energy term is the pure-JAX restraints (xTB cannot be vmapped in parallel). Starts are the
    structure with the first-shell donors' ligands moved radially by N(0, sigma^2) Å each.

    Args:
        key: a ``jax.random`` key (explicit randomness).
        n_starts, sigma: number of starts and the radial perturbation (Å).
        steps, learning_rate, lam, loss, restraints, normalise: refinement settings.

    Returns:
        :class:`MultiStartResult`.
    """
    from jxas.refine.api import prepare_target
    from jxas.refine.loop import scan_refine
    from jxas.refine.objective import (
        BroadeningConfig,
        Nuisance,
        ObjectiveArgs,
        as_forward,
        make_objective,
        make_predict,
    )
    from jxas.spectrum.normalise import find_e0

    forward = as_forward(model, energy=energy_grid, element=element)
    dtype = structure.positions.dtype
    mu_t, weight, e0, _ = prepare_target(target, forward, normalise=normalise)
    grid = make_grid(forward.energy, e0)
    grid = grid._replace(weight=grid.weight * jnp.asarray(weight, dtype))
    predict = make_predict(forward, BroadeningConfig())
    p0 = np.asarray(jax.jit(predict)(structure, Nuisance.create(0.0, dtype=dtype)))
    nu0 = Nuisance.create(float(e0 - find_e0(forward.energy, p0)), dtype=dtype)
    restr = make_restraints(structure, **(restraints or {}))
    fn = make_objective(predict, get_loss(loss), energy_fn=restr)
    args = ObjectiveArgs(
        structure, jnp.asarray(mu_t, dtype), grid, jnp.zeros((), dtype), jnp.asarray(lam, dtype), jnp.zeros((), dtype)
    )
    topo = restr.topology
    ab = int(structure.absorber)
    shell = first_shell(structure, topology=topo)
    frags = fragments(structure, topo)
    # each ligand fragment bonded to the absorber moves radially by its own random amount
    moving = [(f, [j for j in shell if j in f]) for f in frags]
    moving = [(f, d) for f, d in moving if d]
    n = structure.n_max
    w = np.zeros((n, len(moving)))
    dsel = np.zeros((n, len(moving)))
    for g, (f, d) in enumerate(moving):
        w[f, g] = 1.0
        dsel[d, g] = 1.0 / len(d)
    w, dsel = jnp.asarray(w), jnp.asarray(dsel)
    p = structure.positions
    dirs = dsel.T @ (p - p[ab])
    dirs = dirs / safe_norm(dirs)[:, None]
    deltas = sigma * jax.random.normal(key, (n_starts, len(moving)), dtype)
    starts = p[None] + jnp.einsum("ng,sg,gc->snc", w, deltas, dirs)
    real = jnp.asarray(structure.mask, dtype)[:, None] * jnp.ones((1, 3), dtype)
    mask = {"positions": real, "nuisance": Nuisance(*(jnp.ones((), dtype) for _ in range(3)))}

    def one(start):
        x0 = {"positions": start, "nuisance": nu0}
        x, losses = scan_refine(fn, x0, args, mask, steps=steps, learning_rate=learning_rate)
        final = fn(x, args)[0]
        return x["positions"], final, losses

    pos, final, hist = jax.jit(jax.vmap(one))(starts)
    final = np.asarray(final)
    best = int(np.nanargmin(final))
    pos = np.asarray(pos)
    fs = np.linalg.norm(pos[:, shell] - pos[:, ab : ab + 1], axis=-1) if len(shell) else np.zeros((n_starts, 0))
    return MultiStartResult(
        positions=pos,
        loss=final,
        history=np.asarray(hist),
        best=best,
        structure=structure.replace(positions=jnp.asarray(pos[best])),
        first_shell=fs,
    )


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
