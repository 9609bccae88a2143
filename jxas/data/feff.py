"""Real FEFF10 XANES simulations of one absorber-centred cluster.

:func:`simulate_feff` writes a ``feff.inp`` from a :class:`~jxas.structure.Structure` and a
:class:`FeffRecipe`, runs FEFF10 (PyPI ``feff10-rs``, ``import feff10``; every FEFF stage runs in its
own worker process) in a child process of its own, in its own scratch directory, under a wall-clock
timeout, and returns the unconvolved mu(E) resampled onto the element's standard absolute grid
(:func:`jxas.spectrum.standard_grid`: tabulated edge -20 .. +80 eV, 0.25 eV), with FEFF's own grid
and mu kept in ``meta``.

The energy grid of the default recipe is set with FEFF's ``EGRID`` card so that FEFF itself covers
the whole standard grid with a margin for FEFF's edge offset (FEFF10's Fermi level lies a few eV
from the tabulated edge): ``e_grid -35 -10 2.5`` and ``e_grid last 2 0.5`` below and at the edge
(relative to FEFF's Fermi level), then ``k_grid last 5.2 0.07`` (up to ~103 eV above it). Nothing is
extrapolated: if FEFF's grid does not cover the standard grid the run fails with
:class:`FeffRunError`. Between FEFF's points mu is interpolated with a monotone cubic (PCHIP), which
cannot overshoot; the grid steps (0.5 eV at the edge, 0.5-2.7 eV above it) are below the 1.2-1.8 eV
K-shell core-hole widths that FEFF already folds into mu for Ti-Zn.

FEFF normalises mu to the atomic edge step (``xsedge+50``), so mu is ~0 well below the edge and
oscillates around 1 above it; :func:`simulate_feff` checks both, and the absolute edge position
(within ``edge_tolerance`` eV of the tabulated edge), and rejects a spectrum that fails.

References:
    J. J. Kas, F. D. Vila, C. D. Pemmaraju, T. S. Tan, J. J. Rehr, "Advanced calculations of X-ray
    spectroscopies with FEFF10 and Corvus", J. Synchrotron Rad. 28, 1801 (2021).
    J. J. Rehr, J. J. Kas, F. D. Vila, M. P. Prange, K. Jorissen, "Parameter-free calculations of
    X-ray spectra with FEFF9", Phys. Chem. Chem. Phys. 12, 5503 (2010) (cards: FMS, SCF, COREHOLE,
    EXCHANGE, EGRID).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from ase.data import chemical_symbols

from jxas.spectrum.grids import edge_energy, standard_grid
from jxas.spectrum.spectrum import Spectrum
from jxas.structure import Structure

__all__ = ["FeffRecipe", "FeffRunError", "FeffTimeout", "simulate_feff", "feff_input", "DEFAULT_RECIPE"]

_MIN_DISTANCE = 0.6  # Å: closer atom pairs are a broken structure, and FEFF's muffin tins fail on them


class FeffRunError(RuntimeError):
    """FEFF10 failed, or returned a spectrum that fails the sanity checks; carries FEFF's message."""

    def __init__(self, message: str, *, workdir: str | None = None, log_tail: str = ""):
        self.workdir = workdir
        self.log_tail = log_tail
        if log_tail:
            message = f"{message}\n--- FEFF output (last lines) ---\n{log_tail}"
        super().__init__(message)


class FeffTimeout(FeffRunError, TimeoutError):
    """FEFF10 ran past its wall-clock timeout; the run (all its worker processes) was killed."""


@dataclasses.dataclass(frozen=True)
class FeffRecipe:
    """The FEFF10 settings of a XANES simulation (one recipe = one dataset file).

    The default is the project's XANES recipe for 3d/4d K edges of molecular clusters of 20-60 atoms:

    * ``POTENTIALS``: the absorber is potential 0; every element (including the absorber's element
      at other sites) gets one potential, numbered by increasing atomic number.
    * ``cluster_radius`` 10 Å: atoms farther from the absorber are dropped (whole molecular
      environments of the builder fit inside).
    * ``FMS 6.0``: full multiple scattering within 6 Å of the absorber (first and second shells).
    * ``COREHOLE RPA`` (screened core hole) and ``EXCHANGE 0 0 0`` (Hedin-Lundqvist self-energy).
    * no ``SCF`` (``scf_radius=None``): overlapped-atom potentials. Measured here (shared 2-core
      machine, load 6-18) on [Fe(H2O)6]2+ (19 atoms): 7.8 s without SCF, 29 s with ``SCF 4.0``
      (3.7x), FEFF's edge (Fermi level) 7113.9 -> 7122.3 eV and the steepest rise 7115.25 ->
      7125.5 eV (+10.25 eV); on a 35-atom Fe(III) complex (imidazole, hydroxo, glycinato, acac):
      34 s -> 168 s (4.9x), Fermi level 7105.7 -> 7123.1 eV, steepest rise 7115.25 -> 7126.75 eV
      (+11.5 eV). SCF moves the edge up by 10-12 eV, by amounts that differ by ~1 eV between
      complexes; a 4-5x longer campaign was not worth that here, since fits to experiment carry an
      energy-shift nuisance parameter anyway. Set ``scf_radius=4.0`` (and ``edge_tolerance=25``:
      SCF Fermi levels of molecular clusters sat 8-17 eV above the tabulated edge) for better
      relative edge positions.
    * ``EGRID``: see the module docstring; covers tabulated edge -20 .. +80 eV with margin.

    Attributes:
        edge: absorption edge (``"K"``).
        cluster_radius: Å, atoms beyond are not given to FEFF.
        fms_radius: Å, radius of the full-multiple-scattering cluster.
        scf_radius: Å, self-consistent potentials within this radius; ``None`` for no SCF.
        scf_nmix: maximum number of SCF iterations (FEFF's ``nscmt``; the name is kept for file compatibility).
        corehole: ``"RPA"``, ``"FSR"`` or ``"NONE"``.
        exchange: ``EXCHANGE ixc vr0 vi0`` (ixc 0 = Hedin-Lundqvist; vi0 eV of extra broadening).
        s02: amplitude reduction factor.
        e_far: eV, start of the coarse below-edge grid relative to FEFF's Fermi level.
        e_far_step: eV, its step.
        e_near: eV, start of the fine grid through the edge.
        e_near_step: eV, its step.
        e_near_end: eV, end of the fine grid (the k grid continues from there).
        k_max: Å^-1, end of the k grid (E - E_F = 3.81 k^2 eV: 5.2 -> 103 eV).
        k_step: Å^-1, step of the k grid.
        extra_cards: further FEFF cards, verbatim (e.g. ``("LDOS -30 20 0.1",)``).
        edge_tolerance: eV, largest accepted |FEFF edge - tabulated edge|.
        label: optional name; by default the default recipe is ``"feff10-default"`` and any other
            ``"feff10-<hash>"``, so datasets of different recipes never share a file name.
    """

    edge: str = "K"
    cluster_radius: float = 10.0
    fms_radius: float = 6.0
    scf_radius: float | None = None
    scf_nmix: int = 30
    corehole: str = "RPA"
    exchange: tuple[int, float, float] = (0, 0.0, 0.0)
    s02: float = 1.0
    e_far: float = -35.0
    e_far_step: float = 2.5
    e_near: float = -10.0
    e_near_step: float = 0.5
    e_near_end: float = 2.0
    k_max: float = 5.2
    k_step: float = 0.07
    extra_cards: tuple[str, ...] = ()
    edge_tolerance: float = 10.0
    label: str | None = None

    def __post_init__(self):
        if self.corehole.upper() not in {"RPA", "FSR", "NONE"}:
            raise ValueError(f"FeffRecipe.corehole must be RPA, FSR or NONE, got {self.corehole!r}")
        if not self.cluster_radius > 0 or not self.fms_radius > 0:
            raise ValueError("FeffRecipe: cluster_radius and fms_radius must be positive")
        if self.scf_radius is not None and not self.scf_radius > 0:
            raise ValueError(f"FeffRecipe.scf_radius must be positive or None, got {self.scf_radius}")
        if not (self.e_far < self.e_near < self.e_near_end) or min(self.e_far_step, self.e_near_step) <= 0:
            raise ValueError("FeffRecipe: need e_far < e_near < e_near_end and positive steps")
        if self.k_step <= 0 or 3.81 * self.k_max**2 <= self.e_near_end:
            raise ValueError("FeffRecipe: k_max must lie above e_near_end and k_step be positive")
        object.__setattr__(self, "exchange", tuple(self.exchange))
        object.__setattr__(self, "extra_cards", tuple(self.extra_cards))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of every field (plus ``name``); :meth:`from_dict` inverts it."""
        d = dataclasses.asdict(self)
        d["exchange"] = list(self.exchange)
        d["extra_cards"] = list(self.extra_cards)
        d["name"] = self.name
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeffRecipe:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields - {"name"}
        if unknown:
            raise ValueError(f"unknown FeffRecipe fields: {sorted(unknown)}")
        kw = {k: v for k, v in d.items() if k in fields}
        if "exchange" in kw:
            kw["exchange"] = tuple(kw["exchange"])
        if "extra_cards" in kw:
            kw["extra_cards"] = tuple(kw["extra_cards"])
        return cls(**kw)

    @property
    def name(self) -> str:
        """``label`` if set; ``"feff10-default"`` for the default recipe; else ``"feff10-<hash8>"``."""
        if self.label:
            return self.label
        if self == FeffRecipe():
            return "feff10-default"
        d = dataclasses.asdict(self)
        digest = hashlib.sha256(json.dumps(d, sort_keys=True, default=list).encode()).hexdigest()
        return f"feff10-{digest[:8]}"

    def control_cards(self) -> list[str]:
        """The recipe's FEFF cards (everything but TITLE, POTENTIALS and ATOMS)."""
        ixc, vr0, vi0 = self.exchange
        cards = [
            f"EDGE {self.edge}",
            f"S02 {self.s02:g}",
            "CONTROL 1 1 1 1 1 1",
            "PRINT 0 0 0 0 0 0",
            f"XANES {self.k_max:g} {self.k_step:g} {self.e_near_step:g}",
            "EGRID",
            f"e_grid {self.e_far:g} {self.e_near:g} {self.e_far_step:g}",
            f"e_grid last {self.e_near_end:g} {self.e_near_step:g}",
            f"k_grid last {self.k_max:g} {self.k_step:g}",
            f"FMS {self.fms_radius:g}",
            f"COREHOLE {self.corehole.upper()}",
            f"EXCHANGE {int(ixc)} {vr0:g} {vi0:g}",
        ]
        if self.scf_radius is not None:
            cards.append(f"SCF {self.scf_radius:g} 0 {self.scf_nmix:d} 0.2 1")
        cards.extend(self.extra_cards)
        return cards


DEFAULT_RECIPE = FeffRecipe()


def _cluster(structure: Structure, recipe: FeffRecipe) -> tuple[np.ndarray, np.ndarray]:
    """Absorber-centred positions (absorber first) and numbers within the cluster radius; validated."""
    if not isinstance(structure, Structure):
        raise TypeError(f"simulate_feff takes a jxas.Structure, got {type(structure).__name__}")
    if structure.is_batch:
        raise ValueError("simulate_feff takes a single structure, not a batch (loop or use the runner)")
    mask = np.asarray(structure.mask, bool)
    n = mask.shape[0]
    a = int(structure.absorber)
    if not 0 <= a < n or not mask[a]:
        raise ValueError(f"absorber index {a} is not a real atom (the structure has {int(mask.sum())} atoms)")
    pos, num, a = structure.real()
    pos = np.asarray(pos, float)
    num = np.asarray(num, int)
    if not np.all(np.isfinite(pos)):
        raise ValueError("structure has non-finite positions")
    if np.any(num <= 0) or np.any(num >= len(chemical_symbols)):
        raise ValueError(f"structure has invalid atomic numbers: {sorted(set(num.tolist()))}")
    z0 = int(num[a])
    try:
        edge_energy(chemical_symbols[z0], recipe.edge)
    except ValueError as err:
        raise ValueError(
            f"unsupported absorber {chemical_symbols[z0]} (Z={z0}) for a {recipe.edge} edge: {err}"
        ) from None
    pos = pos - pos[a]
    r = np.linalg.norm(pos, axis=1)
    keep = r <= recipe.cluster_radius
    keep[a] = True
    order = [a] + [i for i in np.argsort(r, kind="stable") if keep[i] and i != a]
    pos, num = pos[order], num[order]
    if len(num) < 2:
        raise ValueError(
            f"empty cluster: no atom within {recipe.cluster_radius} Å of the absorber "
            f"{chemical_symbols[z0]} (FEFF needs scatterers)"
        )
    d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    d[np.diag_indices_from(d)] = np.inf
    i, j = np.unravel_index(np.argmin(d), d.shape)
    if d[i, j] < _MIN_DISTANCE:
        raise ValueError(
            f"atoms {chemical_symbols[num[i]]} and {chemical_symbols[num[j]]} are {d[i, j]:.3f} Å apart "
            f"(< {_MIN_DISTANCE} Å): not a physical structure"
        )
    return pos, num


def feff_input(structure: Structure, recipe: FeffRecipe | None = None, *, title: str = "jxas") -> str:
    """The ``feff.inp`` text for ``structure`` under ``recipe`` (validated; nothing runs).

    Raises:
        ValueError: unsupported absorber element, absorber not a real atom, empty cluster, atoms on
            top of each other or non-finite coordinates.
    """
    recipe = DEFAULT_RECIPE if recipe is None else recipe
    pos, num = _cluster(structure, recipe)
    return _format_input(pos, num, recipe, title)


def _format_input(pos: np.ndarray, num: np.ndarray, recipe: FeffRecipe, title: str = "jxas") -> str:
    z0 = int(num[0])
    others = sorted(set(num[1:].tolist()))
    ipot = {z: i + 1 for i, z in enumerate(others)}
    lines = [f"TITLE {title}"] + recipe.control_cards() + ["", "POTENTIALS", "*  ipot  Z  tag"]
    lines.append(f"   0 {z0} {chemical_symbols[z0]}")
    lines += [f"   {ipot[z]} {z} {chemical_symbols[z]}" for z in others]
    lines += ["", "ATOMS", "*  x y z ipot tag distance"]
    r = np.linalg.norm(pos, axis=1)
    for k, (p, z) in enumerate(zip(pos, num, strict=True)):
        ip = 0 if k == 0 else ipot[int(z)]
        sym = chemical_symbols[z]
        lines.append(f"  {p[0]:11.5f} {p[1]:11.5f} {p[2]:11.5f} {ip:3d} {sym:>2s} {r[k]:8.5f}")
    lines.append("END")
    return "\n".join(lines) + "\n"


_CHILD = (
    "import sys, feff10\n"
    "feff10.run(open(sys.argv[1]).read(), sys.argv[2])\n"
)


def _tail(path: Path, n: int = 25) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


_ERROR_HINTS = ("too big", "error", "fatal", "failed", "stop", "unrecognized", "not found", "negative")


def _reason(log: Path) -> str:
    """``": <stage>: <FEFF's first error line>"`` from the log, so failure tables group by cause."""
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    stage = next((ln.split("stage '")[1].split("'")[0] for ln in lines if "stage '" in ln), None)
    hint = next((ln for ln in lines if not ln.startswith(("Traceback", "File ", "_feff10.", ".feff.error"))
                 and any(h in ln.lower() for h in _ERROR_HINTS)), None)
    if hint and "stage '" in hint:
        hint = hint.split(":", 1)[-1].strip() if ":" in hint else hint
    parts = [p for p in (f"stage {stage}" if stage else None, hint) if p]
    return (": " + ": ".join(parts))[:200] if parts else ""


def _run_feff(inp: str, workdir: Path, timeout: float) -> None:
    """Run FEFF10 on ``inp`` in ``workdir`` in a child process group; kill the group on timeout."""
    (workdir / "feff.inp").write_text(inp)
    log = workdir / "feff.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(workdir / "feff.inp"), str(workdir)],
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: FEFF's stage workers die with it
        )
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise FeffTimeout(
                f"FEFF10 ran past its timeout of {timeout:g} s in {workdir}; killed", workdir=str(workdir),
                log_tail=_tail(log),
            ) from None
        except BaseException:  # KeyboardInterrupt, SystemExit from a runner: never leave FEFF running
            _kill_group(proc)
            raise
    if rc != 0:
        raise FeffRunError(
            f"FEFF10 failed{_reason(log)} (exit status {rc}) in {workdir}", workdir=str(workdir),
            log_tail=_tail(log),
        )


def _group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process is still in process group ``pgid`` (Linux /proc)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def _kill_group(proc: subprocess.Popen, wait: float = 10.0) -> None:
    """SIGKILL FEFF's whole process group and wait until its stage workers are gone, not just the leader."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
    deadline = time.monotonic() + wait
    while Path("/proc").is_dir() and _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _read_xmu(path: Path, workdir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """``(omega, e, mu, feff_version)`` from FEFF's xmu.dat (absolute eV, eV from E_F, normalised)."""
    if not path.exists():
        raise FeffRunError(
            f"FEFF10 finished but wrote no xmu.dat in {workdir}", workdir=str(workdir),
            log_tail=_tail(workdir / "feff.log"),
        )
    header = []
    with open(path, errors="replace") as fh:
        for line in fh:
            if not line.startswith("#"):
                break
            header.append(line)
    try:
        data = np.loadtxt(path, comments="#", ndmin=2)
    except ValueError as err:
        raise FeffRunError(f"unreadable xmu.dat in {workdir}: {err}", workdir=str(workdir)) from None
    if data.shape[0] < 10 or data.shape[1] < 4:
        raise FeffRunError(f"xmu.dat in {workdir} has shape {data.shape}", workdir=str(workdir),
                           log_tail=_tail(workdir / "feff.log"))
    version = "FEFF 10"
    if header and "FEFF" in header[0]:
        version = "FEFF " + header[0].split("FEFF", 1)[1].strip()
    return data[:, 0], data[:, 1], data[:, 3], version


def _check_spectrum(element: str, recipe: FeffRecipe, e_fermi: float, energy, mu, workdir) -> None:
    """Reject insane FEFF output: edge far from the tabulated one, mu not ~0 before / ~1 after."""
    e_tab = edge_energy(element, recipe.edge)
    if abs(e_fermi - e_tab) > recipe.edge_tolerance:
        raise FeffRunError(
            f"FEFF edge (Fermi level) at {e_fermi:.1f} eV, {e_fermi - e_tab:+.1f} eV from the tabulated "
            f"{element} {recipe.edge} edge {e_tab:.1f} eV (tolerance {recipe.edge_tolerance} eV)",
            workdir=str(workdir),
        )
    pre = mu[(energy >= e_tab - 20) & (energy <= e_tab - 12)]
    post = mu[energy >= e_tab + 40]
    if not np.all(np.isfinite(mu)):
        raise FeffRunError(f"FEFF returned non-finite mu in {workdir}", workdir=str(workdir))
    if pre.size and np.max(np.abs(pre)) > 0.2:
        raise FeffRunError(
            f"pre-edge mu reaches {np.max(np.abs(pre)):.3f} 12-20 eV below the edge (expected ~0)",
            workdir=str(workdir),
        )
    if post.size and not 0.5 < float(np.mean(post)) < 1.6:
        raise FeffRunError(
            f"mean post-edge mu (edge+40 eV and above) is {np.mean(post):.3f} (expected ~1)",
            workdir=str(workdir),
        )


def simulate_feff(
    structure: Structure,
    recipe: FeffRecipe | None = None,
    *,
    timeout: float = 300.0,
    workdir: str | os.PathLike | None = None,
    grid: np.ndarray | None = None,
    **recipe_overrides,
) -> Spectrum:
    """Simulate the XANES of ``structure``'s absorber with FEFF10.

    Args:
        structure: one absorber-centred ``Structure`` (padding allowed; positions in Å). Atoms
            farther than ``recipe.cluster_radius`` from the absorber are dropped.
        recipe: the FEFF settings (default :data:`DEFAULT_RECIPE`, ``"feff10-default"``).
        timeout: wall-clock seconds for the whole FEFF run; its processes are killed past it.
        workdir: scratch directory to run in (created; kept afterwards). By default a fresh
            temporary directory, removed after the run whatever happens.
        grid: absolute energies (eV) to resample onto; default ``standard_grid(element, edge)``
            (tabulated edge -20 .. +80 eV, 0.25 eV).
        **recipe_overrides: fields of :class:`FeffRecipe` to change, e.g. ``scf_radius=4.0``.

    Returns:
        ``Spectrum(energy=grid, mu)`` with FEFF's unconvolved, edge-step-normalised mu (core-hole
        lifetime included, no experimental broadening), and ``meta`` holding ``raw_energy`` /
        ``raw_mu`` (FEFF's absolute grid, eV, and mu on it), ``e_fermi`` (FEFF's absolute edge, eV),
        ``element``, ``edge``, ``feff_version``, ``recipe`` (dict), ``input_hash`` (sha256 of the
        ``feff.inp``), ``seconds`` (wall time of the FEFF run) and ``n_atoms`` (atoms given to FEFF).

    Raises:
        ValueError: unsupported absorber element, absorber missing, empty cluster, broken geometry
            (checked before anything runs or is written).
        FeffTimeout: FEFF ran past ``timeout`` (its processes are killed).
        FeffRunError: FEFF failed (the message carries the end of FEFF's output), or the spectrum
            fails the sanity checks (edge within ``recipe.edge_tolerance`` eV of the tabulated edge,
            mu ~0 before and ~1 after it), or FEFF's grid does not cover ``grid``.
    """
    recipe = DEFAULT_RECIPE if recipe is None else recipe
    if recipe_overrides:
        recipe = dataclasses.replace(recipe, **recipe_overrides)
    if not timeout > 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    pos, num = _cluster(structure, recipe)  # validates before anything is written
    inp = _format_input(pos, num, recipe)
    element = chemical_symbols[int(num[0])]
    grid = standard_grid(element, recipe.edge) if grid is None else np.asarray(grid, float)
    input_hash = hashlib.sha256(inp.encode()).hexdigest()

    own_dir = workdir is None
    wd = Path(tempfile.mkdtemp(prefix="jxas-feff-")) if own_dir else Path(workdir)
    try:
        wd.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        _run_feff(inp, wd, timeout)
        seconds = time.perf_counter() - t0
        omega, e_rel, raw_mu, version = _read_xmu(wd / "xmu.dat", wd)
        e_fermi = float(np.median(omega - e_rel))
        order = np.argsort(omega)
        omega, raw_mu = omega[order], raw_mu[order]
        if grid[0] < omega[0] - 1e-6 or grid[-1] > omega[-1] + 1e-6:
            raise FeffRunError(
                f"FEFF's grid [{omega[0]:.1f}, {omega[-1]:.1f}] eV does not cover the requested grid "
                f"[{grid[0]:.1f}, {grid[-1]:.1f}] eV (FEFF edge at {e_fermi:.1f} eV); widen the recipe's "
                "e_far / k_max",
                workdir=str(wd),
            )
        from scipy.interpolate import PchipInterpolator

        keep = np.concatenate([[True], np.diff(omega) > 1e-9])
        mu = PchipInterpolator(omega[keep], raw_mu[keep])(grid)
        _check_spectrum(element, recipe, e_fermi, grid, mu, wd)
    finally:
        if own_dir:
            shutil.rmtree(wd, ignore_errors=True)
    meta = {
        "raw_energy": omega,
        "raw_mu": raw_mu,
        "e_fermi": e_fermi,
        "element": element,
        "edge": recipe.edge,
        "feff_version": f"{version} (feff10-rs {_feff10_rs_version()})",
        "recipe": recipe.to_dict(),
        "input_hash": input_hash,
        "seconds": seconds,
        "n_atoms": int(len(num)),
    }
    if not own_dir:
        meta["workdir"] = str(wd)
    return Spectrum(energy=grid, mu=mu, meta=meta)


def _feff10_rs_version() -> str:
    try:
        from importlib.metadata import version

        return version("feff10-rs")
    except Exception:  # noqa: BLE001 - metadata missing in odd installs: the version is informative only
        return "unknown"
