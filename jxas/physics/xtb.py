"""Semi-empirical (GFN2-xTB, GFN1-xTB) and force-field (GFN-FF) energies as differentiable JAX functions.

xTB enters traced code in exactly one place: a host callback (:func:`jax.pure_callback`) that runs
xtb-python once and returns the energy *and* its gradient, wrapped in :func:`jax.custom_vjp` so that
``jax.grad`` reuses that gradient instead of differentiating through the callback. Under ``vmap`` the
callback runs sequentially, one xTB calculation per structure.

References:
    Bannwarth, Ehlert & Grimme, J. Chem. Theory Comput. 15, 1652 (2019) (GFN2-xTB);
    Grimme, Bannwarth & Shushkov, J. Chem. Theory Comput. 13, 1989 (2017) (GFN1-xTB);
    Spicher & Grimme, Angew. Chem. Int. Ed. 59, 15665 (2020) (GFN-FF).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import sys
import threading

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

__all__ = ["XTBError", "xtb_energy", "xtb_energy_and_gradient", "XTB_METHODS", "HARTREE_EV", "BOHR_ANGSTROM"]

# CODATA 2018 conversion factors
HARTREE_EV = 27.211386245988
BOHR_ANGSTROM = 0.529177210903

XTB_METHODS = ("gfn2", "gfn1", "gfnff")

# xTB's Fortran runtime buffers unit 6 and would flush GFN-FF's setup printout at exit, past the fd
# redirection in _silenced(); unbuffered, the printout goes to /dev/null as it is written. Must be set
# before libxtb (imported lazily below) loads.
os.environ.setdefault("GFORTRAN_UNBUFFERED_PRECONNECTED", "y")


class XTBError(RuntimeError):
    """An xTB calculation that failed (SCF not converged, atoms fused, unsupported input)."""


_lock = threading.Lock()
_cache: collections.OrderedDict = collections.OrderedDict()
_CACHE_SIZE = 8


_scratch: str | None = None


@contextlib.contextmanager
def _in_scratch():
    """Run in this process's private scratch directory.

    GFN-FF writes its topology files (``gfnff_topo``, ``gfnff_adjacency``, 1-2 MB for a 50-atom
    complex) to the working directory: a refinement or sweep would leave them in the user's folder
    (xtb-python did not pick up a stale file from another molecule in a check here, but nothing needs
    them there). The directory is created on first use and removed at exit; the change of working
    directory is process-wide, hence only under ``_lock``.
    """
    global _scratch
    if _scratch is None or not os.path.isdir(_scratch):
        import atexit
        import shutil
        import tempfile

        _scratch = tempfile.mkdtemp(prefix="jxas-xtb-")
        atexit.register(shutil.rmtree, _scratch, True)
    cwd = os.getcwd()
    os.chdir(_scratch)
    try:
        yield
    finally:
        os.chdir(cwd)


@contextlib.contextmanager
def _silenced():
    """Send the process's stdout to /dev/null for the duration (GFN-FF's Fortran setup prints even when muted)."""
    try:
        fd = sys.__stdout__.fileno() if sys.__stdout__ is not None else 1
    except (AttributeError, OSError, ValueError):
        fd = 1
    sys.stdout.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def _param(method: str):
    from xtb.interface import Param

    try:
        return {"gfn2": Param.GFN2xTB, "gfn1": Param.GFN1xTB, "gfnff": Param.GFNFF}[method]
    except KeyError:
        raise ValueError(f"unknown xTB method {method!r}; choose one of {', '.join(XTB_METHODS)}") from None


def _calculator(
    method: str,
    numbers: np.ndarray,
    positions_bohr: np.ndarray,
    charge: int,
    spin: int,
    accuracy: float,
    max_iterations: int,
):
    """A cached xtb-python calculator for this molecule, its coordinates updated.

    Reusing the calculator keeps the GFN-FF topology of the first call (the starting structure, as a
    refinement wants) and restarts the SCF from the previous wavefunction, which makes the many small
    steps of a refinement several times cheaper than fresh calculations.
    """
    from xtb.interface import Calculator
    from xtb.libxtb import VERBOSITY_MUTED

    key = (method, numbers.tobytes(), int(charge), int(spin), float(accuracy), int(max_iterations))
    calc = _cache.get(key)
    if calc is None:
        calc = Calculator(_param(method), numbers, positions_bohr, charge=float(charge), uhf=int(spin))
        calc.set_verbosity(VERBOSITY_MUTED)
        if method != "gfnff":
            calc.set_accuracy(accuracy)
            calc.set_max_iterations(max_iterations)
        _cache[key] = calc
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    else:
        _cache.move_to_end(key)
        calc.update(positions_bohr)
    return calc, key


def xtb_energy_and_gradient(
    positions: np.ndarray,
    numbers: np.ndarray,
    *,
    charge: int = 0,
    spin: int = 0,
    method: str = "gfn2",
    accuracy: float = 1.0,
    max_iterations: int = 250,
) -> tuple[float, np.ndarray]:
    """Host-side xTB single point: energy (eV) and gradient (eV/Å) from one run (NumPy in, NumPy out).

    Args:
        positions: ``[n, 3]`` Cartesian coordinates in Å (real atoms only, no padding).
        numbers: ``[n]`` atomic numbers.
        charge: total charge (e).
        spin: number of unpaired electrons (xTB's ``uhf``; multiplicity - 1).
        method: ``"gfn2"``, ``"gfn1"`` or ``"gfnff"``.
        accuracy: xTB accuracy multiplier (smaller is tighter); ignored by GFN-FF.
        max_iterations: SCF iteration limit; ignored by GFN-FF.

    Returns:
        ``(energy, gradient)``: total energy in eV (float) and ``dE/dR`` in eV/Å, ``[n, 3]`` float64.

    Raises:
        ValueError: unknown method, bad shapes, non-finite coordinates.
        XTBError: the calculation failed (e.g. SCF not converged, atoms too close).
    """
    from xtb.interface import XTBException

    pos = np.asarray(positions, dtype=np.float64)
    num = np.asarray(numbers, dtype=np.int32)
    if pos.ndim != 2 or pos.shape[1] != 3 or num.shape != pos.shape[:1]:
        raise ValueError(f"xTB needs positions [n, 3] and numbers [n]; got {pos.shape} and {num.shape}")
    if not np.all(np.isfinite(pos)):
        raise ValueError("xTB got non-finite coordinates (NaN or inf)")
    _param(method)
    bohr = np.ascontiguousarray(pos / BOHR_ANGSTROM)
    with _lock, _silenced(), _in_scratch():
        key = None
        try:
            calc, key = _calculator(method, num, bohr, charge, spin, accuracy, max_iterations)
            res = calc.singlepoint()
            energy = float(res.get_energy()) * HARTREE_EV
            grad = np.array(res.get_gradient(), dtype=np.float64) * (HARTREE_EV / BOHR_ANGSTROM)
        except XTBException as e:
            if key is not None:
                _cache.pop(key, None)  # its state (wavefunction) is not trustworthy any more
            raise XTBError(
                f"{method} xTB calculation failed for {len(num)} atoms (charge {charge}, {spin} unpaired): {e}"
            ) from None
    if not (np.isfinite(energy) and np.all(np.isfinite(grad))):
        raise XTBError(f"{method} xTB returned a non-finite energy or gradient for {len(num)} atoms")
    return energy, grad


def _host(positions, numbers, mask, charge, spin, *, method, accuracy, max_iterations):
    """Callback body: padded arrays in, (energy, gradient) out with padding slots zero."""
    pos = np.asarray(positions, np.float64)
    m = np.asarray(mask, bool)
    energy, g = xtb_energy_and_gradient(
        pos[m],
        np.asarray(numbers)[m],
        charge=int(charge),
        spin=int(spin),
        method=method,
        accuracy=accuracy,
        max_iterations=max_iterations,
    )
    grad = np.zeros_like(pos)
    grad[m] = g
    dtype = np.asarray(positions).dtype
    return np.asarray(energy, dtype), grad.astype(dtype)


@functools.lru_cache(maxsize=32)
def _make(method: str, accuracy: float, max_iterations: int):
    host = functools.partial(_host, method=method, accuracy=accuracy, max_iterations=max_iterations)

    def callback(positions, numbers, mask, charge, spin):
        shapes = (
            jax.ShapeDtypeStruct((), positions.dtype),
            jax.ShapeDtypeStruct(positions.shape, positions.dtype),
        )
        return jax.pure_callback(host, shapes, positions, numbers, mask, charge, spin, vmap_method="sequential")

    @jax.custom_vjp
    def energy(positions, numbers, mask, charge, spin):
        return callback(positions, numbers, mask, charge, spin)[0]

    def fwd(positions, numbers, mask, charge, spin):
        e, g = callback(positions, numbers, mask, charge, spin)
        return e, (g, numbers, mask, charge, spin)

    def bwd(res, ct):
        g, numbers, mask, charge, spin = res
        zero = lambda x: np.zeros(x.shape, jax.dtypes.float0)  # integer inputs have no cotangent
        return (ct * g, zero(numbers), zero(mask), zero(charge), zero(spin))

    energy.defvjp(fwd, bwd)
    return energy


def xtb_energy(
    positions: Float[Array, "n 3"],
    numbers: Int[Array, " n"],
    *,
    charge: int | Int[Array, ""] = 0,
    spin: int | Int[Array, ""] = 0,
    method: str = "gfn2",
    mask=None,
    accuracy: float = 1.0,
    max_iterations: int = 250,
) -> Float[Array, ""]:
    """xTB total energy (eV) as a differentiable JAX function of the positions.

    One xtb-python run per call returns the energy and gradient together; ``jax.grad`` uses that
    gradient through a ``custom_vjp`` (no second run). Works under ``jit``, and under ``vmap`` (the
    structures are computed one after another). xTB's own printout is muted. For float64 results,
    enable ``jax_enable_x64``; otherwise the host float64 values are rounded to the positions' dtype.

    Args:
        positions: ``[n, 3]`` coordinates in Å.
        numbers: ``[n]`` atomic numbers.
        charge: total charge (e).
        spin: number of unpaired electrons (multiplicity - 1).
        method: ``"gfn2"`` (GFN2-xTB), ``"gfn1"`` (GFN1-xTB) or ``"gfnff"`` (GFN-FF).
        mask: optional ``[n]`` bool, False for padding slots (excluded from the calculation, zero gradient).
        accuracy: xTB accuracy multiplier; ignored by GFN-FF.
        max_iterations: SCF iteration limit; ignored by GFN-FF.

    Returns:
        Scalar total energy in eV.

    Raises:
        XTBError: the calculation failed (SCF not converged, fused atoms). Under ``jit`` it surfaces
            wrapped in JAX's runtime error; :func:`is_xtb_failure` recognises it.
    """
    if method not in XTB_METHODS:
        raise ValueError(f"unknown xTB method {method!r}; choose one of {', '.join(XTB_METHODS)}")
    positions = jnp.asarray(positions)
    numbers = jnp.asarray(numbers, jnp.int32)
    mask = jnp.ones(numbers.shape, bool) if mask is None else jnp.asarray(mask, bool)
    fn = _make(method, float(accuracy), int(max_iterations))
    return fn(positions, numbers, mask, jnp.asarray(charge, jnp.int32), jnp.asarray(spin, jnp.int32))


def is_xtb_failure(exc: BaseException) -> bool:
    """True if ``exc`` is (or wraps, as JAX does for callback errors) an :class:`XTBError`."""
    while exc is not None:
        if isinstance(exc, XTBError) or "xTB calculation failed" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
