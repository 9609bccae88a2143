"""Descriptors of many structures at once: chunked, bucketed by neighbour count, spread over devices.

``featurise(batch, "wacsf")`` is what dataset featurisation, batched prediction and the benchmark
use. For wACSF the G4 pair sum dominates and grows with the square of the number of atom slots, most
of which (in padded batches) are padding or lie beyond ``r_max``. So entries are sorted by their
neighbour count, cut into fixed-size chunks, and each chunk runs with ``max_neighbours`` rounded up
from its largest count (a handful of compiled shapes). Results come back in the input order and are
exact: a chunk that would overflow its bucket (possible only through float rounding of a distance at
``r_max``) is recomputed without compaction. Chunks go round-robin to ``jax.local_devices()``; JAX's
asynchronous dispatch runs them concurrently, so on CPU set
``XLA_FLAGS=--xla_force_host_platform_device_count=<cores>`` before importing JAX to use every core.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence

import jax
import numpy as np

from jxas.descriptors.rdc import make_rdc, rdc
from jxas.descriptors.wacsf import make_wacsf, wacsf
from jxas.structure import Structure, stack

__all__ = ["featurise", "neighbour_counts"]

_BUCKET = 8  # max_neighbours is rounded up to a multiple of this: few shapes, little waste


def neighbour_counts(batch: Structure, r_max: float) -> np.ndarray:
    """Number of atoms with 0 < r_0j < r_max around each entry's absorber (NumPy, on the host)."""
    pos = np.asarray(batch.positions, np.float64)
    absorber = np.asarray(batch.absorber)
    r = np.linalg.norm(pos - pos[np.arange(len(pos)), absorber][:, None, :], axis=-1)
    return np.sum(np.asarray(batch.mask) & (r > 0) & (r < r_max), axis=1)


@functools.lru_cache(maxsize=64)
def _batched(descriptor: str, params: tuple, max_neighbours: int | None):
    kw = dict(params)
    if descriptor == "wacsf":
        fn = make_wacsf(**kw, max_neighbours=max_neighbours)
    else:
        alpha = kw.pop("alpha", 10.0)
        one = make_rdc(**kw)
        fn = lambda s: one(s, alpha)  # noqa: E731 - alpha a Python float: the fast path
    return jax.jit(jax.vmap(fn))


def _defaults(fn) -> dict:
    """Keyword-only defaults of a descriptor function (its signature is the single source of them)."""
    return {k: p.default for k, p in inspect.signature(fn).parameters.items() if p.kind is p.KEYWORD_ONLY}


def _normalise(descriptor: str, params: dict) -> tuple:
    """Hashable, type-normalised keyword arguments (so equal settings share a compiled function)."""
    if descriptor not in ("wacsf", "rdc"):
        raise ValueError(f"unknown descriptor {descriptor!r}; use 'wacsf' or 'rdc'")
    defaults = _defaults(wacsf if descriptor == "wacsf" else rdc)
    unknown = set(params) - set(defaults)
    if unknown:
        raise TypeError(f"{descriptor} has no parameter(s) {sorted(unknown)}; known: {sorted(defaults)}")
    out = {**defaults, **params}
    for k, v in out.items():
        if k in ("l", "z"):
            out[k] = tuple(float(x) for x in v)
        elif k in ("n_g2", "n_g4"):
            out[k] = int(v)
        elif isinstance(v, (int, float, np.number)) and not isinstance(v, bool):
            out[k] = float(v)
    return tuple(sorted(out.items()))


def featurise(
    structures: Structure | Sequence[Structure],
    descriptor: str = "wacsf",
    *,
    chunk: int = 256,
    progress: bool = False,
    **params,
) -> np.ndarray:
    """Descriptor vectors of many structures, ``[n_entries, d]`` float array in the input order.

    Args:
        structures: a batched :class:`~jxas.structure.Structure` (leading axis = entries) or a
            sequence of single structures (padded to a common size with :func:`~jxas.structure.stack`).
        descriptor: "wacsf" or "rdc".
        chunk: entries per compiled call (bounds memory: ~chunk x atoms^2 x radial terms floats).
        progress: show a tqdm progress bar over chunks.
        **params: the descriptor's keyword arguments (as for :func:`~jxas.descriptors.wacsf` or
            :func:`~jxas.descriptors.rdc`; a traced ``alpha`` is not accepted here).

    Returns:
        NumPy array of the descriptors, identical (to rounding) to applying the single-structure
        function to each entry.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    batch = structures if isinstance(structures, Structure) else stack(list(structures))
    if np.ndim(batch.numbers) != 2:
        raise ValueError("featurise needs a batch (leading entry axis); use wacsf()/rdc() for one structure")
    key = _normalise(descriptor, params)
    n, n_atoms = np.shape(batch.numbers)
    if n == 0:
        raise ValueError("featurise got an empty batch")
    host = jax.tree.map(np.asarray, batch)
    bad = ~np.all(np.isfinite(host.positions) | ~host.mask[..., None], axis=(1, 2))
    if bad.any():
        first = int(np.argmax(bad))
        raise ValueError(f"featurise: NaN/inf coordinates in {int(bad.sum())} entries (first: entry {first})")
    if descriptor == "wacsf" and dict(key)["n_g4"]:
        counts = neighbour_counts(host, dict(key)["r_max"])
        order = np.argsort(counts, kind="stable")
    else:
        counts, order = None, np.arange(n)
    devices = jax.local_devices()
    pending = []
    starts = range(0, n, chunk)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"{descriptor}", unit="chunk", leave=False)
    for i, start in enumerate(starts):
        idx = order[start:start + chunk]
        padded = np.concatenate([idx, np.full(chunk - len(idx), idx[-1])])  # static shape per bucket
        k = None
        if counts is not None:
            k = int(min(n_atoms, max(2, -(-(counts[idx].max() + 1) // _BUCKET) * _BUCKET)))
            k = None if k >= n_atoms else k
        part = jax.device_put(jax.tree.map(lambda x, p=padded: x[p], host), devices[i % len(devices)])
        pending.append((idx, k, part, _batched(descriptor, key, k)(part)))  # dispatched asynchronously
    out = None
    for idx, k, part, res in pending:
        res = np.asarray(res)[: len(idx)]
        if k is not None and np.isnan(res).any():  # a bucket overflowed at r_max rounding: no compaction
            res = np.asarray(_batched(descriptor, key, None)(part))[: len(idx)]
        if out is None:
            out = np.empty((n, res.shape[1]), res.dtype)
        out[idx] = res
    return out
