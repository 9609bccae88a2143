"""Relaxation of an assembled complex with GFN-FF (default) or GFN2-xTB through xtb-python.

GFN-FF (Spicher & Grimme, Angew. Chem. Int. Ed. 59, 15665 (2020)) builds its topology from the
starting geometry, so the placed coordination stays intact and the ligands relax into realistic
bond lengths and angles in a fraction of a second. GFN2-xTB (Bannwarth, Ehlert & Grimme, JCTC 15,
1652 (2019)) is available for a finer (and ~100x slower) relaxation. Charge and unpaired electrons
go to xTB as the total charge and ``uhf`` (GFN-FF ignores the spin; GFN2-xTB uses it).

xTB prints from Fortran and GFN-FF reads and writes topology files (``gfnff_topo``) in the working
directory, where a stale file from another molecule would be silently reused. Every relaxation
therefore runs in a fresh temporary directory with the process's stdout silenced at the descriptor
level; both are process-wide, so relax from one thread per process (the runner uses processes).
"""

from __future__ import annotations

import contextlib
import os
import tempfile

import numpy as np

from jxas.data.build.place import BuildError, Complex

__all__ = ["relax", "METHODS"]

# One thread per worker: several builders run side by side, and xTB's OpenMP threads contending for
# two cores made a 30-atom GFN-FF relaxation 100x slower (50 s instead of 0.5 s) in a measurement
# here. Only effective if xTB is first loaded after this module (it is loaded lazily in relax()).
os.environ.setdefault("OMP_NUM_THREADS", "1")
# xTB writes through gfortran's buffered unit 6: unbuffered, its output lands inside the silenced window
os.environ.setdefault("GFORTRAN_UNBUFFERED_PRECONNECTED", "y")

METHODS = {"gfnff": "GFN-FF", "gfn2": "GFN2-xTB", "gfn1": "GFN1-xTB"}


@contextlib.contextmanager
def _quiet_scratch():
    """Run in a fresh temporary directory with file descriptors 1 and 2 sent to /dev/null."""
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="jxas-xtb-") as tmp:
        saved = [os.dup(1), os.dup(2)]
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.chdir(tmp)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            yield tmp
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in (*saved, devnull):
                os.close(fd)
            os.chdir(cwd)


_HARTREE_EV = 27.211386245988
_BOHR_A = 0.529177210903


def _xtb_calculator(method: str, numbers, positions, charge: int, spin: int, solvent: str | None = None):
    """An ASE calculator over one persistent ``xtb.interface.Calculator`` (positions updated in place,
    so GFN-FF's topology is set up once; xtb's own ASE calculator rebuilds it on every step)."""
    from ase.calculators.calculator import Calculator, all_changes
    from xtb.interface import Calculator as XtbCalculator
    from xtb.interface import Param
    from xtb.libxtb import VERBOSITY_MUTED

    param = {"gfnff": Param.GFNFF, "gfn2": Param.GFN2xTB, "gfn1": Param.GFN1xTB}[method]
    xc = XtbCalculator(param, np.asarray(numbers), np.asarray(positions) / _BOHR_A, charge=float(charge),
                       uhf=int(spin))
    xc.set_verbosity(VERBOSITY_MUTED)
    if solvent:
        from xtb.utils import get_solvent

        solv = get_solvent(solvent)
        if solv is None:
            raise ValueError(f"xtb knows no solvent {solvent!r}")
        xc.set_solvent(solv)

    class _Xtb(Calculator):
        implemented_properties = ["energy", "forces"]

        def __init__(self):
            super().__init__()
            self._res = None

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            xc.update(self.atoms.get_positions() / _BOHR_A)
            self._res = xc.singlepoint(self._res)
            self.results["energy"] = float(self._res.get_energy()) * _HARTREE_EV
            self.results["forces"] = -np.asarray(self._res.get_gradient()) * _HARTREE_EV / _BOHR_A

    return _Xtb()


def relax(
    cx: Complex, *, method: str = "gfnff", fmax: float = 0.05, steps: int = 400, solvent: str | None = None
) -> tuple[Complex, dict]:
    """Relax ``cx`` with xTB; returns the relaxed copy and a report.

    Args:
        cx: the assembled complex (positions Å).
        method: ``"gfnff"`` (default), ``"gfn2"`` or ``"gfn1"``.
        fmax: convergence threshold on the largest force (eV/Å).
        steps: maximum optimiser steps (FIRE then L-BFGS, ASE).
        solvent: implicit solvent of xTB (GBSA/ALPB, e.g. ``"water"``), or None for the gas phase.
            Highly charged complexes ([Fe(OH)4(acac)]3-) lose ligands in the gas phase.

    Returns:
        ``(relaxed complex, {"method", "energy_eV", "fmax_eV_A", "steps", "converged"})``.

    Raises:
        BuildError: xTB failed, or the optimisation produced non-finite coordinates.
    """
    if method not in METHODS:
        raise ValueError(f"unknown relaxation method {method!r}; use one of {sorted(METHODS)}")
    if solvent is not None:
        from xtb.utils import get_solvent

        if get_solvent(solvent) is None:
            raise ValueError(f"xtb knows no solvent {solvent!r}")
    from ase import Atoms
    from ase.optimize import FIRE, LBFGS

    atoms = Atoms(numbers=cx.numbers, positions=cx.positions)
    try:
        with _quiet_scratch():
            atoms.calc = _xtb_calculator(method, cx.numbers, cx.positions, cx.charge, cx.spin, solvent)
            opt = FIRE(atoms, logfile=None)
            opt.run(fmax=max(fmax, 0.3), steps=steps // 2)  # FIRE is robust far from the minimum
            n1 = opt.nsteps
            opt = LBFGS(atoms, logfile=None)  # no dense eigensolver: nothing to oversubscribe
            converged = bool(opt.run(fmax=fmax, steps=steps - n1))
            energy = float(atoms.get_potential_energy())
            f = float(np.max(np.linalg.norm(atoms.get_forces(), axis=1)))
            nsteps = n1 + opt.nsteps
    except Exception as err:  # noqa: BLE001 - xtb raises bare exceptions; report them as a build failure
        raise BuildError(f"{METHODS[method]} relaxation failed: {type(err).__name__}: {err}") from None
    pos = atoms.get_positions()
    if not np.all(np.isfinite(pos)):
        raise BuildError(f"{METHODS[method]} relaxation produced non-finite coordinates")
    out = cx.copy()
    out.positions = pos - pos[0]
    return out, {"method": METHODS[method], "solvent": solvent, "energy_eV": energy, "fmax_eV_A": f, "steps": nsteps,
                 "converged": converged}
