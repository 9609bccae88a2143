"""Throughput and peak memory of the jitted, batched wACSF and RDC against a NumPy per-structure loop.

    python benchmarks/descriptors.py              # 10,000 structures of ~50 atoms (the issue's setting)
    python benchmarks/descriptors.py --n 2000     # quicker

The baseline is a plain NumPy implementation of the same formulas, vectorised within one structure
and looped over structures (a fair baseline: no Python pair loops); it runs on a subset and its
rate is reported per structure (best of --repeats passes, like the JAX figures).

Two JAX figures: "plain vmap" is one jitted ``lax.map`` over the batch on one device;
"featurise" is :func:`jxas.descriptors.featurise`, the batch driver users call (entries bucketed
by neighbour count so the wACSF pair sum skips padding, chunks spread over one XLA host device per
core). Each JAX measurement runs in a fresh subprocess so its peak resident memory (ru_maxrss) is
its own. Values are checked against the NumPy baseline on 50 entries spread over the batch.
"""

from __future__ import annotations

import argparse
import json
import os
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


def numpy_rate(fn, pos, num, n_sub, repeats=3):
    """Best of ``repeats`` passes over ``n_sub`` structures (the JAX figure is a best-of too)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(n_sub):
            fn(pos[i], num[i])
        best = min(best, time.perf_counter() - t0)
    return n_sub / best


# ---- JAX measurement (run in a child process for a clean peak-memory figure) ---------------------
def jax_child(which: str, n: int, atoms: int, chunk: int, repeats: int, devices: int) -> dict:
    import os

    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices} " + os.environ.get("XLA_FLAGS", "")
    import jax
    import jax.numpy as jnp

    from jxas.descriptors import featurise, make_rdc, make_wacsf
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
    # (1) plain: one jitted lax.map over the whole batch on the default device
    fn = jax.jit(lambda b: jax.lax.map(f1, b, batch_size=chunk))
    fn(batch).block_until_ready()
    plain = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(batch).block_until_ready()
        plain.append(time.perf_counter() - t0)
    # (2) jxas.descriptors.featurise: neighbour-count buckets, chunks spread over the devices
    kw = WACSF_KW if which == "wacsf" else RDC_KW
    t0 = time.perf_counter()
    out = featurise(batch, which, chunk=chunk, **kw)
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = featurise(batch, which, chunk=chunk, **kw)
        times.append(time.perf_counter() - t0)
    ref = (wacsf_np if which == "wacsf" else rdc_np)
    check = [np.max(np.abs(np.asarray(out[i]) - ref(pos[i], num[i])) / (np.max(np.abs(ref(pos[i], num[i]))) + 1e-30))
             for i in np.linspace(0, n - 1, 50).astype(int)]  # 50 entries across all buckets
    return {
        "rate": n / min(times), "best_s": min(times), "plain_rate": n / min(plain),
        "devices": len(jax.devices()), "compile_plus_first_s": compile_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "max_rel_err_vs_numpy": max(check),
        "device": str(jax.devices()[0]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="structures in the batch")
    ap.add_argument("--atoms", type=int, default=50, help="atoms per structure")
    ap.add_argument("--chunk", type=int, default=250, help="structures per vectorised chunk (memory bound)")
    ap.add_argument("--devices", type=int, default=os.cpu_count(), help="XLA host devices (default: one per core)")
    ap.add_argument("--numpy-subset", type=int, default=300, help="structures timed for the NumPy baseline")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", choices=["wacsf", "rdc"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(jax_child(args.child, args.n, args.atoms, args.chunk, args.repeats, args.devices)))
        return

    pos, num = make_structures(args.numpy_subset, args.atoms)
    print(f"# {args.n} structures x {args.atoms} atoms; wACSF {WACSF_KW}; RDC {RDC_KW}")
    print(f"{'descriptor':<8} {'NumPy loop /s':>14} {'plain vmap /s':>14} {'featurise /s':>13} {'speed-up':>9} "
          f"{'peak RSS MB':>12} {'compile s':>10} {'max rel err':>12}")
    for which, ref in (("wacsf", wacsf_np), ("rdc", rdc_np)):
        base = numpy_rate(ref, pos, num, args.numpy_subset, args.repeats)
        cmd = [sys.executable, __file__, "--child", which, "--n", str(args.n), "--atoms", str(args.atoms),
               "--chunk", str(args.chunk), "--repeats", str(args.repeats),
               "--devices", str(args.devices)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        res = json.loads(out.strip().splitlines()[-1])
        print(f"{which:<8} {base:14.1f} {res['plain_rate']:14.1f} {res['rate']:13.1f} {res['rate'] / base:8.1f}x "
              f"{res['peak_rss_mb']:12.0f} {res['compile_plus_first_s']:10.2f} {res['max_rel_err_vs_numpy']:12.2e}")
    print(f"# {res['devices']} x {res['device'].split(':')[0]} device(s); speed-up = featurise / NumPy loop; "
          "targets: >= 20x the NumPy loop, < 2048 MB peak")


if __name__ == "__main__":
    main()
