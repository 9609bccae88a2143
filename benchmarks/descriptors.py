"""Throughput and peak memory of the jitted, batched wACSF and RDC against a NumPy per-structure loop.

    python benchmarks/descriptors.py              # 10,000 structures of ~50 atoms (the issue's setting)
    python benchmarks/descriptors.py --n 2000     # quicker

The baseline is a plain NumPy implementation of the same formulas, vectorised within one structure
and looped over structures (a fair baseline: no Python pair loops); it runs on a subset and its
rate is reported per structure. Each JAX measurement runs in a fresh subprocess so its peak resident
memory (ru_maxrss) is its own. Values are checked against the NumPy baseline before timing.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

WACSF_KW = dict(r_min=1.0, r_max=6.0, n_g2=16, n_g4=32, l=(1.0, -1.0), z=(1.0,))
RDC_KW = dict(r_min=0.0, r_max=8.0, dr=0.01, alpha=10.0)


def make_structures(n: int, atoms: int, seed: int = 0):
    """Random absorber-centred clusters: absorber at the origin, others uniform in a 7 Å ball, >= 1.2 Å apart."""
    rng = np.random.default_rng(seed)
    pos = np.zeros((n, atoms, 3))
    r = 7.0 * rng.random((n, atoms - 1, 1)) ** (1 / 3) + 1.2 * (1 - rng.random((n, atoms - 1, 1)) ** 3)
    v = rng.normal(size=(n, atoms - 1, 3))
    pos[:, 1:] = r * v / np.linalg.norm(v, axis=-1, keepdims=True)
    numbers = rng.choice([1, 6, 7, 8, 16, 17], size=(n, atoms))
    numbers[:, 0] = 26
    return pos, numbers


# ---- NumPy baseline: same formulas, vectorised per structure ------------------------------------
def _grid(r_min, r_max, n, kind):
    if kind == "shifted":
        mu = np.linspace(r_min + 0.5, r_max - 0.5, n)
        return mu, np.full(n, 1 / (2 * (mu[1] - mu[0]) ** 2))
    s = np.linspace(r_min + 1.0, r_max - 0.5, n)
    return np.zeros(n), 1 / (2 * s**2)


def wacsf_np(pos, num, r_min=1.0, r_max=6.0, n_g2=16, n_g4=32, l=(1.0, -1.0), z=(1.0,)):  # noqa: E741
    d = pos - pos[0]
    r = np.linalg.norm(d, axis=1)
    nb = (r > 0) & (r < r_max)
    d, r, w = d[nb], r[nb], 0.1 * num[nb]
    fc = 0.5 * (np.cos(np.pi * r / r_max) + 1)
    mu2, eta2 = _grid(r_min, r_max, n_g2, "shifted")
    g2 = np.sum(w * fc * np.exp(-eta2[:, None] * (r - mu2[:, None]) ** 2), axis=1)
    keep = n_g4 // (len(l) * len(z))
    mu4, eta4 = _grid(r_min, r_max, n_g4, "centred")
    cos = np.clip((d @ d.T) / np.outer(r, r), -1, 1)
    rjk = np.linalg.norm(d[:, None] - d[None], axis=-1)
    fcjk = 0.5 * (np.cos(np.pi * rjk / r_max) + 1)
    iu = np.triu_indices(len(r), 1)
    a = w * fc
    base = (a[:, None] * a[None] * fcjk)[iu]
    g4 = []
    for mu, eta in zip(mu4[:keep], eta4[:keep], strict=True):
        rad = np.exp(-eta * ((r[:, None] - mu) ** 2 + (r[None] - mu) ** 2 + (rjk - mu) ** 2))[iu] * base
        for lam in l:
            for zeta in z:
                g4.append(2 ** (1 - zeta) * np.sum(rad * (1 + lam * cos[iu]) ** zeta))
    return np.concatenate([[fc.sum()], g2, g4])


def rdc_np(pos, num, r_min=0.0, r_max=8.0, dr=0.01, alpha=10.0):
    grid = np.linspace(r_min, r_max, int(abs(r_max - r_min) / dr) + 1)
    r = np.linalg.norm(pos - pos[0], axis=1)
    nb = (r > 0) & (r < r_max)
    return np.sum((num[0] * num[nb])[:, None] * np.exp(-alpha * (r[nb, None] - grid) ** 2), axis=0)


def numpy_rate(fn, pos, num, n_sub):
    t0 = time.perf_counter()
    for i in range(n_sub):
        fn(pos[i], num[i])
    return n_sub / (time.perf_counter() - t0)


# ---- JAX measurement (run in a child process for a clean peak-memory figure) ---------------------
def jax_child(which: str, n: int, atoms: int, chunk: int, repeats: int) -> dict:
    import jax
    import jax.numpy as jnp

    from jxas.descriptors import make_rdc, make_wacsf
    from jxas.structure import Structure

    pos, num = make_structures(n, atoms)
    batch = Structure(
        positions=jnp.asarray(pos, jnp.float32), numbers=jnp.asarray(num, jnp.int32),
        mask=jnp.ones(num.shape, bool), absorber=jnp.zeros(n, jnp.int32),
        charge=jnp.zeros(n, jnp.int32), spin=jnp.zeros(n, jnp.int32),
    )
    if which == "wacsf":
        f1 = make_wacsf(**{k: (tuple(v) if isinstance(v, tuple) else v) for k, v in WACSF_KW.items()})
    else:
        g = make_rdc(RDC_KW["r_min"], RDC_KW["r_max"], RDC_KW["dr"])
        f1 = lambda s: g(s, RDC_KW["alpha"])  # noqa: E731
    fn = jax.jit(lambda b: jax.lax.map(f1, b, batch_size=chunk))
    t0 = time.perf_counter()
    out = fn(batch).block_until_ready()
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(batch).block_until_ready()
        times.append(time.perf_counter() - t0)
    ref = (wacsf_np if which == "wacsf" else rdc_np)
    check = [np.max(np.abs(np.asarray(out[i]) - ref(pos[i], num[i])) / (np.max(np.abs(ref(pos[i], num[i]))) + 1e-30))
             for i in range(5)]
    return {
        "rate": n / min(times), "best_s": min(times), "compile_plus_first_s": compile_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "max_rel_err_vs_numpy": max(check),
        "device": str(jax.devices()[0]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="structures in the batch")
    ap.add_argument("--atoms", type=int, default=50, help="atoms per structure")
    ap.add_argument("--chunk", type=int, default=100, help="structures per vectorised chunk (memory bound)")
    ap.add_argument("--numpy-subset", type=int, default=300, help="structures timed for the NumPy baseline")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", choices=["wacsf", "rdc"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(jax_child(args.child, args.n, args.atoms, args.chunk, args.repeats)))
        return

    pos, num = make_structures(args.numpy_subset, args.atoms)
    print(f"# {args.n} structures x {args.atoms} atoms; wACSF {WACSF_KW}; RDC {RDC_KW}")
    print(f"{'descriptor':<8} {'NumPy loop /s':>14} {'JAX batched /s':>15} {'speed-up':>9} {'peak RSS MB':>12} "
          f"{'compile s':>10} {'max rel err':>12}")
    for which, ref in (("wacsf", wacsf_np), ("rdc", rdc_np)):
        base = numpy_rate(ref, pos, num, args.numpy_subset)
        cmd = [sys.executable, __file__, "--child", which, "--n", str(args.n), "--atoms", str(args.atoms),
               "--chunk", str(args.chunk), "--repeats", str(args.repeats)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        res = json.loads(out.strip().splitlines()[-1])
        print(f"{which:<8} {base:14.1f} {res['rate']:15.1f} {res['rate'] / base:8.1f}x {res['peak_rss_mb']:12.0f} "
              f"{res['compile_plus_first_s']:10.2f} {res['max_rel_err_vs_numpy']:12.2e}")
    print(f"# device: {res['device']}; targets: >= 20x the NumPy loop, < 2048 MB peak")


if __name__ == "__main__":
    main()
