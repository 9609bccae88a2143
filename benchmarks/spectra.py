"""Throughput of energy-dependent (arctangent) broadening + pre-edge normalisation, jitted JAX vs NumPy loop.

A batch of ``--batch`` synthetic XANES-like spectra on a uniform ``--points`` grid (0.25 eV) is broadened
with the arctangent model (Rankine et al. 2020 defaults, shared by the batch: the nuisance parameters of one
experiment applied to many predictions) and normalised with fixed larch-style ranges. The JAX path is
``jax.jit(jax.vmap(...))`` of :func:`jxas.spectrum.broaden` + :func:`jxas.spectrum.normalise`; the NumPy
path is the same algorithm one spectrum at a time (the kernel is built once outside the loop, which favours
NumPy). Both results are compared, so the figures describe the same computation.

    python benchmarks/spectra.py [--batch 10000] [--points 500] [--numpy-subset N] [--x64]

``--numpy-subset N`` times the NumPy loop on the first N spectra and reports per-spectrum throughput
(the loop is linear in the batch size).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def synthetic_batch(n: int, energy: np.ndarray, e_edge: float, seed: int = 0) -> np.ndarray:
    """Edge step + 4 Gaussian features with random positions/heights + a sloped pre-edge (seeded)."""
    rng = np.random.default_rng(seed)
    x = energy[None, :] - e_edge
    mu = 0.2 - 1e-3 * x + 1.0 / (1.0 + np.exp(-(x - rng.normal(0, 1, (n, 1))) / 1.5))
    for _ in range(4):
        c = rng.uniform(0.0, 90.0, (n, 1))
        h = rng.uniform(0.05, 0.6, (n, 1))
        w = rng.uniform(1.5, 6.0, (n, 1))
        mu = mu + h * np.exp(-0.5 * ((x - c) / w) ** 2)
    return mu


# ------------------------------------------------------------------------------------------- NumPy loop
def numpy_kernel(energy: np.ndarray, e_edge: float, npad: int, gi=1.25, gf=15.0, ec=30.0, ew=30.0, ef=-5.0):
    """Row-normalised arctangent-Lorentzian kernel on the padded grid (same numerics as jxas.broaden)."""
    d = energy - e_edge - ef
    with np.errstate(divide="ignore", invalid="ignore"):
        arg = np.pi * gf / (3 * ew) * (d / ec - ec**2 / d**2)
    width = gi + np.where(d > 0, gf * (0.5 + np.arctan(arg) / np.pi), 0.0)
    lo = energy[0] - (energy[1] - energy[0]) * np.arange(npad, 0, -1)
    hi = energy[-1] + (energy[-1] - energy[-2]) * np.arange(1, npad + 1)
    grid = np.concatenate([lo, energy, hi])
    dx = np.diff(grid)
    wts = 0.5 * (np.concatenate([dx, [0.0]]) + np.concatenate([[0.0], dx]))
    h = 0.5 * width[:, None]
    k = (h / np.pi) / ((energy[:, None] - grid[None, :]) ** 2 + h**2) * wts[None, :]
    return k / k.sum(axis=1, keepdims=True), grid


def numpy_one(energy, mu, kernel, grid, npad, e_edge, e0, ranges):
    pre1, pre2, norm1, norm2, nnorm = ranges
    padded = np.concatenate([np.full(npad, mu[0]), mu, np.full(npad, mu[-1])])
    padded = np.where(grid - e_edge < -5.0, 0.0, padded)
    b = kernel @ padded
    p1 = max(int(np.sum(energy <= e0 + pre1)) - 1, 0)
    p2 = int(np.argmin(np.abs(energy - (e0 + pre2))))
    pre = np.polyval(np.polyfit(energy[p1:p2] - e0, b[p1:p2], 1), energy - e0)
    q1 = max(int(np.sum(energy <= e0 + norm1)) - 1, 0)
    q2 = int(np.argmin(np.abs(energy - (e0 + norm2))))
    curve = np.polyval(np.polyfit(energy[q1:q2] - e0, (b - pre)[q1:q2], nnorm), energy - e0)
    ie0 = int(np.argmin(np.abs(energy - e0)))
    step = abs(curve[ie0])
    norm = (b - pre) / step
    return np.where(np.arange(energy.size) >= ie0, norm - (curve - curve[ie0]) / step, norm)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=10_000)
    p.add_argument("--points", type=int, default=500)
    p.add_argument("--numpy-subset", type=int, default=None)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--x64", action="store_true", help="run JAX in float64 (default float32)")
    args = p.parse_args(argv)

    import jax

    if args.x64:
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    from jxas.spectrum import broaden, normalise

    e_edge = 7112.0
    energy = e_edge - 25.0 + 0.25 * np.arange(args.points)
    ranges = (-25.0, -10.0, 25.0, float(energy[-1] - e_edge), 1)
    npad = args.points // 2
    mu = synthetic_batch(args.batch, energy, e_edge)
    dtype = jnp.float64 if args.x64 else jnp.float32

    def one(m):
        b = broaden(energy, m, e_edge=e_edge)
        return normalise(energy, b, e0=e_edge, pre1=ranges[0], pre2=ranges[1], norm1=ranges[2],
                         norm2=ranges[3], nnorm=ranges[4]).flat

    fn = jax.jit(jax.vmap(one))
    x = jnp.asarray(mu, dtype)
    t0 = time.perf_counter()
    out = fn(x).block_until_ready()
    t_compile = time.perf_counter() - t0
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        out = fn(x).block_until_ready()
        times.append(time.perf_counter() - t0)
    t_jax = min(times)

    n_np = args.batch if args.numpy_subset is None else min(args.numpy_subset, args.batch)
    t0 = time.perf_counter()
    kernel, grid = numpy_kernel(energy, e_edge, npad)
    ref = np.stack([numpy_one(energy, mu[i], kernel, grid, npad, e_edge, e_edge, ranges) for i in range(n_np)])
    t_np = (time.perf_counter() - t0) * args.batch / n_np
    err = float(np.max(np.abs(np.asarray(out[:n_np], float) - ref)))

    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), dtype {np.dtype(dtype).name}, "
          f"cpus {os.cpu_count()}, load avg {os.getloadavg()[0]:.1f}")
    print(f"batch {args.batch} x {args.points} points; arctan broadening (dense kernel, pad {npad}) + normalise")
    print(f"JAX jit+vmap: {t_jax:.3f} s ({args.batch / t_jax:,.0f} spectra/s; first call incl. compile "
          f"{t_compile:.2f} s)")
    scaled = "" if n_np == args.batch else f" (timed on {n_np}, scaled linearly)"
    print(f"NumPy loop:   {t_np:.3f} s ({args.batch / t_np:,.0f} spectra/s){scaled}")
    print(f"speed-up {t_np / t_jax:.1f}x; max |JAX - NumPy| of flat = {err:.2e}")


if __name__ == "__main__":
    main()
