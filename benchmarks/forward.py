"""Forward models: held-out accuracy of every shipped model and CPU speed of the MLP and e3nn networks.

    python benchmarks/forward.py                     # accuracy + speed + one FEFF10 run
    python benchmarks/forward.py --no-accuracy --atoms 20 50 60
    python benchmarks/forward.py --json out.json

Accuracy: :func:`jxas.train.evaluate` of each shipped model on its recorded held-out (test) split of
the dataset it was trained on (``datasets/<config.training.dataset>``): eta, median MSE, Pearson,
peak-position/intensity errors over the full grid and the 35 eV above the edge onset.

Speed (this machine's CPU, float32, after compilation): batched throughput (spectra/s, a jitted
``vmap`` over a batch of random absorber-centred clusters, best of ``--repeats``) and single-structure
latency (median and minimum of jitted calls on one structure) for the shipped models when present, else for
randomly initialised networks of the default size (speed does not depend on the weight values).
FEFF10 cost: one real ``jxas.data.simulate_feff`` run (default recipe) on a shipped Fe complex.
The load average is printed: other processes on the machine slow every wall-clock figure down;
"per CPU-s" (spectra per second of this process's CPU time) is less sensitive to that.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def clusters(n: int, atoms: int, element: str, seed: int = 0):
    """Random absorber-centred clusters (absorber at the origin, others in a 6.5 Å ball, >= 1.6 Å from it)."""
    from ase.data import atomic_numbers

    from jxas.structure import Structure

    rng = np.random.default_rng(seed)
    r = 1.6 + 4.9 * rng.random((n, atoms - 1, 1)) ** (1 / 3)
    v = rng.normal(size=(n, atoms - 1, 3))
    pos = np.zeros((n, atoms, 3), np.float32)
    pos[:, 1:] = r * v / np.linalg.norm(v, axis=-1, keepdims=True)
    num = rng.choice([1, 6, 7, 8], size=(n, atoms)).astype(np.int32)
    num[:, 0] = atomic_numbers[element]
    return Structure(
        positions=jnp.asarray(pos), numbers=jnp.asarray(num), mask=jnp.ones((n, atoms), bool),
        absorber=jnp.zeros(n, jnp.int32), charge=jnp.zeros(n, jnp.int32), spin=jnp.zeros(n, jnp.int32),
    )


def speed(model, atoms: int, batch: int, repeats: int, latency_calls: int) -> dict:
    """Throughput of a jitted vmap over ``batch`` structures and single-structure latency."""
    b = clusters(batch, atoms, model.element)
    f_batch = jax.jit(jax.vmap(lambda s: model.apply(model.params, s)))
    jax.block_until_ready(f_batch(b))  # compile
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        jax.block_until_ready(f_batch(b))
        best = min(best, time.perf_counter() - t)
        best_cpu = min(best_cpu, time.process_time() - c)
    one = jax.tree.map(lambda x: x[0], b)
    f_one = jax.jit(lambda s: model.apply(model.params, s))
    jax.block_until_ready(f_one(one))
    times = []
    for _ in range(latency_calls):
        t = time.perf_counter()
        jax.block_until_ready(f_one(one))
        times.append(time.perf_counter() - t)
    return {"atoms": atoms, "batch": batch, "spectra_per_s": batch / best, "spectra_per_cpu_s": batch / best_cpu,
            "latency_ms": 1e3 * statistics.median(times), "latency_min_ms": 1e3 * min(times)}


def speed_models(element: str, extra_e3nn: dict | None = None) -> dict:
    """Shipped models of ``element`` by kind, else default-size random networks (+ an e3nn variant)."""
    from jxas.models import Model, available_models, default_config, load_model

    out = {}
    for name in available_models():
        m = load_model(name)
        if m.element == element and m.kind not in out:
            out[m.kind] = m
    for kind in ("mlp", "e3nn"):
        if kind not in out:
            cfg = default_config(kind, element, elements=[element, "H", "C", "N", "O"])
            out[kind] = Model.init(cfg, key=jax.random.PRNGKey(0), members=1, name=f"random-{kind}")
    if extra_e3nn:
        cfg = default_config("e3nn", element, elements=[element, "H", "C", "N", "O"], **extra_e3nn)
        label = ",".join(f"{k}={v}" for k, v in extra_e3nn.items())
        out["e3nn-variant"] = Model.init(cfg, key=jax.random.PRNGKey(0), members=1, name=f"random-e3nn[{label}]")
    return out


def feff_cost() -> dict:
    import jxas
    from jxas.data import simulate_feff

    path = ROOT / "tests" / "data" / "structures" / "fe_co5.xyz"
    s = jxas.read_structure(path)
    t = time.perf_counter()
    sp = simulate_feff(s)
    wall = time.perf_counter() - t
    return {"structure": path.name, "atoms": int(np.sum(s.mask)), "wall_s": wall,
            "feff_s": float(sp.meta.get("seconds", wall))}


def accuracy() -> list[dict]:
    from jxas.data import Dataset
    from jxas.models import available_models, load_model
    from jxas.train import evaluate

    rows = []
    for name in available_models():
        m = load_model(name)
        ds_name = m.config.get("training", {}).get("dataset")
        path = ROOT / "datasets" / str(ds_name)
        if not ds_name or not path.is_file():
            rows.append({"model": name, "error": f"training dataset {ds_name!r} not found under datasets/"})
            continue
        ds = Dataset(path)
        t = time.perf_counter()
        met = evaluate(m, ds)
        rows.append({"model": name, "kind": m.kind, "members": m.members, "dataset": ds_name,
                     "eval_s": time.perf_counter() - t, **met})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--atoms", type=int, nargs="+", default=[20, 50, 60], help="cluster sizes for the speed test")
    p.add_argument("--element", default="Fe")
    p.add_argument("--mlp-batch", type=int, default=4096)
    p.add_argument("--e3nn-batch", type=int, default=512)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--latency-calls", type=int, default=200)
    p.add_argument("--no-accuracy", action="store_true")
    p.add_argument("--no-speed", action="store_true")
    p.add_argument("--no-feff", action="store_true")
    p.add_argument("--e3nn-set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="also time a random e3nn network with these settings (e.g. channels=8 radial_hidden=16)")
    p.add_argument("--json", help="write all figures here")
    args = p.parse_args(argv)

    report: dict = {"machine": f"{os.cpu_count()} cpu, jax {jax.__version__} {jax.devices()[0].platform}",
                    "load_average_start": os.getloadavg()}
    print(f"# {report['machine']}; load average {report['load_average_start']}")
    if not args.no_accuracy:
        report["accuracy"] = accuracy()
        print("\n## held-out accuracy (test split)")
        print(f"{'model':14s} {'kind':5s} {'n':>5s} {'eta':>6s} {'eta35':>6s} {'medMSE':>9s} {'Pearson':>8s} "
              f"{'dE_pk':>6s} {'dE_pk35':>7s}")
        for r in report["accuracy"]:
            if "error" in r:
                print(f"{r['model']:14s} {r['error']}")
                continue
            print(f"{r['model']:14s} {r['kind']:5s} {r['n']:5d} {r['eta']:6.2f} {r['eta_edge']:6.2f} "
                  f"{r['median_mse']:9.2e} {r['median_pearson']:8.4f} {r['median_peak_de']:6.2f} "
                  f"{r['median_peak_de_edge']:7.2f}")
    if not args.no_speed:
        extra = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in args.e3nn_set)}
        models = speed_models(args.element, extra)
        report["speed"] = []
        print("\n## speed (float32, after compilation)")
        print(f"{'model':22s} {'kind':5s} {'atoms':>5s} {'batch':>6s} {'spectra/s':>10s} {'per CPU-s':>10s} "
              f"{'latency ms (median/min)':>24s}")
        for kind, m in models.items():
            for atoms in args.atoms:
                batch = args.mlp_batch if kind == "mlp" else args.e3nn_batch
                r = {"model": m.name, "kind": m.kind, "members": m.members,
                     **speed(m, atoms, batch, args.repeats, args.latency_calls)}
                report["speed"].append(r)
                print(f"{m.name:22s} {kind:5s} {atoms:5d} {batch:6d} {r['spectra_per_s']:10.0f} "
                      f"{r['spectra_per_cpu_s']:10.0f} {r['latency_ms']:12.2f} / {r['latency_min_ms']:.2f}")
    if not args.no_feff:
        report["feff"] = feff_cost()
        f = report["feff"]
        print(f"\n## FEFF10: one run on {f['structure']} ({f['atoms']} atoms): {f['wall_s']:.2f} s wall")
        for r in report.get("speed", []):
            per = 1.0 / r["spectra_per_s"]
            print(f"{r['kind']:5s} {r['atoms']:3d} atoms: {f['wall_s'] / per:,.0f}x faster than FEFF10 per spectrum "
                  f"(batched), {f['wall_s'] / (r['latency_ms'] / 1e3):,.0f}x (single structure)")
    report["load_average_end"] = os.getloadavg()
    print(f"\n# load average at the end {report['load_average_end']}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
