"""Pre-edge subtraction and edge-step normalisation with xraylarch's ``pre_edge`` semantics.

Two layers:

* :func:`pre_edge` (host side) chooses what larch chooses by default: ``e0`` (:func:`find_e0`), the pre-edge
  range ``[e0+pre1, e0+pre2]`` (``pre1`` from the second energy point rounded to 5 eV, ``pre2 = pre1/2``),
  the post-edge range ``[e0+norm1, e0+norm2]`` (``norm2 = E_max - e0`` rounded to 5 eV, ``norm1 =
  min(25, 5 round(norm2/15))``) and the degree ``nnorm`` (2 above a 300 eV span, 1 above 30 eV, else 0),
  then calls the core. The chosen values are returned so they can be frozen.
* :func:`normalise` (pure JAX) does the fits for *given* ``e0`` and ranges; it is jit/vmap/grad-able with
  respect to ``mu`` (and ``e0``, ``energy``), which is what the refinement differentiates through.

Fits are least squares on index windows chosen exactly as larch's ``preedge`` chooses them (``index_of``
for the lower bound, ``index_nearest`` for the upper bound, the upper index excluded), solved by normal
equations in the centred, scaled variable ``(E - e0)/100 eV``; the polynomial is the same as larch's fit in
``E``. ``flat`` removes the post-edge curvature above ``e0``: ``flat = norm - (post - pre)/step +
(post - pre)[ie0]/step`` for ``E >= E[ie0]`` and ``norm`` below.

Reference: M. Newville, "Larch: an analysis package for XAFS and related spectroscopies", J. Phys.: Conf.
Ser. 430, 012007 (2013); xraylarch documentation, "XAFS: Pre-edge Subtraction, Normalization".
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

__all__ = ["PreEdge", "pre_edge", "normalise", "find_e0", "default_ranges"]

_TINY_ENERGY = 5e-4  # eV: larch's smallest tolerated energy step
_MAX_NNORM = 5
_T_SCALE = 100.0  # eV: polynomial variable (E - e0)/_T_SCALE keeps the normal equations well conditioned
_BUCKET = 256  # host-side pre_edge pads spectra to a multiple of this length (fewer compilations)


class PreEdge(NamedTuple):
    """Result of :func:`pre_edge` / :func:`normalise` (energies in eV, arrays on the input grid)."""

    e0: Array
    edge_step: Array
    pre_edge: Array
    post_edge: Array
    norm: Array
    flat: Array
    pre1: float
    pre2: float
    norm1: float
    norm2: float
    nnorm: int
    nvict: int


# --------------------------------------------------------------------------------------------- host side
def _remove_dups(e: np.ndarray, tiny: float = _TINY_ENERGY) -> np.ndarray:
    """Make successive (near-)equal energies strictly increasing by adding multiples of ``tiny``."""
    e = np.asarray(e, dtype=float).copy()
    if e.size < 2 or np.min(np.diff(e)) > 10 * tiny:
        return e
    add = np.zeros_like(e)
    for i in range(1, e.size):
        if abs(e[i] - e[i - 1]) < tiny:
            add[i] = add[i - 1] + tiny
    return e + add


def _energy_step(e: np.ndarray, frac_ignore: float = 0.01, nave: int = 10) -> float:
    """Typical energy step: the mean of the ``nave`` smallest steps after ignoring the smallest 1 %."""
    nskip = int(frac_ignore * len(e))
    ediff = np.diff(e[:-1][nskip:-nskip]) if nskip > 0 else np.array([])
    if ediff.size == 0:
        return float("nan")  # as larch: the caller then falls back to 1 eV
    return float(np.sort(ediff)[nskip : nskip + nave].mean())


def _smooth_lorentzian(x: np.ndarray, y: np.ndarray, step: float, npad: int = 5) -> np.ndarray:
    """Convolve ``y(x)`` with a Lorentzian of HWHM ``step`` on a uniform grid of spacing ``step`` with
    mirror padding, then interpolate back onto ``x`` (larch's ``smooth`` with its default form)."""
    xmin = step * int((x.min() - npad * step) / step)
    xmax = step * int((x.max() + npad * step) / step)
    npts = min(1 + int(abs(xmax - xmin + 0.1 * step) / step), 50 * len(x))
    x0 = np.linspace(xmin, xmax, npts)
    y0 = np.interp(x0, x, y)
    win = 1.0 / (1.0 + ((np.arange(2 * npts) - npts) / 1.0) ** 2)
    ypad = np.concatenate((y0[npts:0:-1], y0, y0[-1 : -npts - 1 : -1]))
    y2 = np.convolve(win / win.sum(), ypad, mode="valid")[:npts]
    return np.interp(x, x0, y2)


def _max_derivative(energy: np.ndarray, mu: np.ndarray, step: float | None, use_smooth: bool):
    en = _remove_dups(energy)[:-1]  # larch's ordering check drops the last point of a sorted array
    mu = np.asarray(mu, dtype=float)[:-1]
    if step is None:
        step = _energy_step(en)
    nmin = max(3, int(len(en) * 0.02))
    with np.errstate(divide="ignore", invalid="ignore"):
        dmu = np.gradient(mu) / np.gradient(en)
    if use_smooth:
        dmu = _smooth_lorentzian(en, dmu, step)
    dmu[~np.isfinite(dmu)] = -1.0
    inner = dmu[nmin:-nmin]
    dmu = (dmu - inner.min()) / max(1e-10, np.ptp(inner))
    high = 0.60 if len(en) > 20 else 0.30
    pts = np.where(dmu > high)[0]
    for _ in range(2):
        if len(pts) > 3:
            break
        high *= 0.5
        pts = np.where(dmu > high)[0]
    if len(pts) < 3:
        pts = np.arange(len(dmu))
    ptset = set(pts.tolist())
    imax, dmax = 0, 0.0
    for i in pts:
        if nmin <= i <= len(en) - nmin and dmu[i] > dmax and (i + 1) in ptset and (i - 1) in ptset:
            imax, dmax = int(i), dmu[i]
    return float(en[imax]), imax, step


def find_e0(energy: ArrayLike, mu: ArrayLike) -> float:
    """Edge energy E0 (eV): the maximum of the derivative, as larch's ``find_e0`` finds it (host side).

    A first pass on the raw derivative locates the edge (ignoring the outer 2 % of points and isolated
    glitches); a second pass on the Lorentzian-smoothed derivative within 75 points of it refines E0. The
    smoothing width is the mean of the typical energy step and E0/25000, each clipped to [0.01, 1] eV.

    Args:
        energy: ``[e]`` increasing energies, eV.
        mu: ``[e]`` absorption.

    Returns:
        E0 in eV (one of the energy points).
    """
    e = np.asarray(energy, dtype=float)
    m = np.asarray(mu, dtype=float)
    ok = np.isfinite(e) & np.isfinite(m)
    e, m = e[ok], m[ok]
    if e.size < 10:
        raise ValueError(f"find_e0 needs at least 10 finite points, got {e.size}")
    e1, ie0, step1 = _max_derivative(e, m, None, use_smooth=False)
    istart, istop = max(3, ie0 - 75), min(ie0 + 75, len(e) - 3)
    if ie0 < 0.05 * len(e):  # an edge in the first 5 % of the points is most likely a glitch
        e1 = e.mean()
        istart, istop = max(3, ie0 - 20), len(e) - 3
    step = 0.5 * (max(0.01, min(1.0, step1)) + max(0.01, min(1.0, e1 / 25000.0)))
    e0, ix, _ = _max_derivative(e[istart:istop], m[istart:istop], step, use_smooth=True)
    if ix < 1:
        e0 = float(e[istart + 2])
    return e0


def default_ranges(energy: ArrayLike, e0: float, *, pre1=None, pre2=None, norm1=None, norm2=None, nnorm=None):
    """larch's automatic ``pre1, pre2, norm1, norm2, nnorm`` (eV relative to ``e0``) for this grid."""
    e = np.asarray(energy, dtype=float)
    ie0 = int(np.argmin(np.abs(e - e0)))
    if pre1 is None:
        pre1 = 5.0 * round((e[1] - e0) / 5.0) if ie0 > 20 else 2.0 * round((e[1] - e0) / 2.0)
    pre1 = max(pre1, e.min() - e0)
    if pre2 is None:
        pre2 = 0.5 * pre1
    pre1, pre2 = min(pre1, pre2), max(pre1, pre2)
    if norm2 is None:
        norm2 = 5.0 * round((e.max() - e0) / 5.0)
    if norm2 < 0:
        norm2 = e.max() - e0 - norm2
    norm2 = min(norm2, e.max() - e0)
    if norm1 is None:
        norm1 = min(25.0, 5.0 * round(norm2 / 15.0))
    norm1, norm2 = min(norm1, norm2), max(norm1, norm2)
    norm1 = min(norm1, norm2 - 2)
    if nnorm is None:
        nnorm = 2 if norm2 - norm1 >= 300 else (1 if norm2 - norm1 >= 30 else 0)
    nnorm = int(max(min(nnorm, _MAX_NNORM), 0))
    return float(pre1), float(pre2), float(norm1), float(norm2), nnorm


def pre_edge(
    energy: Float[ArrayLike, " e"],
    mu: Float[ArrayLike, " e"],
    *,
    e0: float | None = None,
    pre1: float | None = None,
    pre2: float | None = None,
    norm1: float | None = None,
    norm2: float | None = None,
    nnorm: int | None = None,
    nvict: int = 0,
) -> PreEdge:
    """Pre-edge subtraction and normalisation with xraylarch's semantics and automatic defaults.

    Energies are sorted (with ``mu``) and near-duplicates separated as larch does; the returned arrays are
    on that sorted grid. Arguments left as ``None`` are chosen as described in the module docstring; an
    ``e0`` outside ``[E[1], E[-2]]`` is replaced by :func:`find_e0`, as in larch.

    Args:
        energy: ``[e]`` energies, eV (absolute).
        mu: ``[e]`` raw absorption (transmission ``ln(i0/it)`` or fluorescence ``if/i0``).
        e0: edge energy, eV.
        pre1, pre2: pre-edge fit range relative to ``e0``, eV.
        norm1, norm2: post-edge fit range relative to ``e0``, eV.
        nnorm: degree of the post-edge polynomial.
        nvict: the pre-edge line is fitted to ``mu * E**nvict``.

    Returns:
        :class:`PreEdge` with ``e0, edge_step, pre_edge, post_edge, norm, flat`` and the ranges used.
    """
    e = np.asarray(energy, dtype=float)
    m = np.asarray(mu, dtype=float)
    if e.ndim != 1 or m.shape != e.shape:
        raise ValueError(f"pre_edge needs 1-D energy and mu of the same length, got {e.shape} and {m.shape}")
    if not (np.all(np.isfinite(e)) and np.all(np.isfinite(m))):
        raise ValueError("pre_edge: energy or mu contains NaN/inf")
    if e.size < 10:
        raise ValueError(f"pre_edge needs at least 10 points, got {e.size}")
    order = np.argsort(e, kind="stable")
    e, m = _remove_dups(e[order]), m[order]
    if e0 is None or e0 < e[1] or e0 > e[-2]:
        e0 = find_e0(e, m)
    pre1, pre2, norm1, norm2, nnorm = default_ranges(
        e, e0, pre1=pre1, pre2=pre2, norm1=norm1, norm2=norm2, nnorm=nnorm
    )
    # pad to a bucket length so one compiled kernel serves spectra of similar length; the padded points
    # lie far above the data and carry zero weight in every fit
    n = e.size
    size = _BUCKET * -(-n // _BUCKET)
    e_pad = np.concatenate([e, e[-1] + 1e4 * np.arange(1, size - n + 1)])
    m_pad = np.concatenate([m, np.full(size - n, m[-1])])
    arrays = _normalise_jit(e_pad, m_pad, e0, pre1, pre2, norm1, norm2, nnorm, nvict, n)
    e0_out, step, *rest = (np.asarray(a) for a in arrays)
    rest = [r[:n] for r in rest]
    return PreEdge(jnp.asarray(e0_out), jnp.asarray(step), *(jnp.asarray(r) for r in rest),
                   pre1, pre2, norm1, norm2, nnorm, nvict)


# ------------------------------------------------------------------------------------------- pure JAX core
def _index_of(x: Array, value) -> Array:
    """Index of the last element ``<= value`` (0 if ``value < min(x)``), for increasing ``x``."""
    return jnp.maximum(jnp.sum(x <= value) - 1, 0)


def _index_nearest(x: Array, value) -> Array:
    return jnp.argmin(jnp.abs(x - value))


def _wfit(t: Array, y: Array, w: Array, deg: int) -> Array:
    """Weighted least-squares polynomial coefficients (ascending powers of ``t``) via normal equations.

    A ridge of 1e-12 of the mean diagonal keeps a window with too few points finite (its fit is then
    discarded by the caller) without changing a well-posed fit beyond round-off.
    """
    v = t[:, None] ** jnp.arange(deg + 1)
    a = (v * w[:, None]).T @ v
    b = (v * w[:, None]).T @ y
    ridge = 1e-12 * (jnp.trace(a) / (deg + 1) + 1e-30)
    return jnp.linalg.solve(a + ridge * jnp.eye(deg + 1, dtype=a.dtype), b)


def _polyval(c: Array, t: Array) -> Array:
    return jnp.sum(c * t[:, None] ** jnp.arange(c.shape[0]), axis=-1)


def normalise(
    energy: Float[ArrayLike, " e"],
    mu: Float[ArrayLike, " e"],
    *,
    e0: Float[ArrayLike, ""],
    pre1: float,
    pre2: float,
    norm1: float,
    norm2: float,
    nnorm: int,
    nvict: int = 0,
) -> PreEdge:
    """Pure, differentiable pre-edge/post-edge normalisation for fixed ``e0`` and ranges (see module doc).

    ``nnorm`` and ``nvict`` are static integers; ``energy`` must be increasing. Batches: ``jax.vmap``.

    Returns:
        :class:`PreEdge` (arrays on ``energy``; ``edge_step`` is ``|post - pre|`` at the point nearest e0).
    """
    arrays = _normalise_arrays(energy, mu, e0, pre1, pre2, norm1, norm2, int(nnorm), int(nvict))
    return PreEdge(*arrays, pre1=pre1, pre2=pre2, norm1=norm1, norm2=norm2, nnorm=int(nnorm), nvict=int(nvict))


def _normalise_arrays(energy, mu, e0, pre1, pre2, norm1, norm2, nnorm: int, nvict: int, n_valid=None):
    e = jnp.asarray(energy)
    mu = jnp.asarray(mu, dtype=e.dtype) if jnp.issubdtype(e.dtype, jnp.floating) else jnp.asarray(mu)
    n = e.shape[0] if n_valid is None else n_valid  # points of data (the rest is bucket padding)
    idx = jnp.arange(e.shape[0])
    t = (e - e0) / _T_SCALE
    ie0 = _index_nearest(e, e0)

    # pre-edge line (or the mean when the window holds fewer than 3 points, as larch does)
    p1 = _index_of(e, pre1 + e0)
    p2 = _index_nearest(e, pre2 + e0)
    few = (_index_of(e - e0, pre2) - _index_of(e - e0, pre1)) < 3
    p2_line = jnp.where(p2 - p1 < 2, jnp.minimum(n, p1 + 2), p2)
    p2_mean = jnp.where(p2 == p1, p2 + 1, p2)
    w_line = ((idx >= p1) & (idx < p2_line)).astype(e.dtype)
    w_mean = ((idx >= p1) & (idx < p2_mean)).astype(e.dtype)
    evict = e**nvict if nvict else jnp.ones_like(e)
    line = _polyval(_wfit(t, mu * evict, w_line, 1), t) / evict
    mean = jnp.sum(w_mean * mu) / jnp.maximum(jnp.sum(w_mean), 1.0)
    pre = jnp.where(few, mean, line)

    # post-edge polynomial of mu - pre on [e0+norm1, e0+norm2); degree lowered on short windows as larch
    q1 = jnp.minimum(_index_of(e, norm1 + e0), n - 3)
    q2 = _index_nearest(e, norm2 + e0)
    tiny = q2 - q1 < 2
    q1 = jnp.where(tiny, q1 - 2, q1)
    deg = jnp.where(tiny, 0, jnp.where(q2 - q1 < 5, min(1, nnorm), nnorm))
    w_post = ((idx >= q1) & (idx < q2)).astype(e.dtype)
    resid = mu - pre
    curve = jnp.zeros_like(e)
    for d in range(nnorm + 1):
        curve = jnp.where(deg == d, _polyval(_wfit(t, resid, w_post, d), t), curve)
    post = pre + curve

    step_signed = curve[ie0]
    ok = jnp.abs(step_signed) > 1e-12
    edge_step = jnp.where(ok, jnp.abs(jnp.where(ok, step_signed, 1.0)), 1e-12)
    norm = (mu - pre) / edge_step
    flat = jnp.where(idx >= ie0, norm - curve / edge_step + curve[ie0] / edge_step, norm)
    return jnp.asarray(e0, e.dtype), edge_step, pre, post, norm, flat


_normalise_jit = jax.jit(_normalise_arrays, static_argnums=(7, 8))
