"""Generation throughput: FEFF10 spectra per hour with 1 and 2 workers, and the share of time outside FEFF.

    python benchmarks/generation.py                    # 10 entries per setting (a few minutes)
    python benchmarks/generation.py --long             # 40 entries per setting
    python benchmarks/generation.py --n 20 --workers 1 2 --element Co --json out.json

Each setting runs :func:`jxas.data.generate` on the first ``n`` specs of
``jxas.data.build.campaign_specs(element, ..., seed)`` (molecular environments of 20-60 atoms,
built, relaxed with GFN-FF, distorted, then FEFF10 with the default recipe) into a fresh file, with
fresh worker processes, exactly as a campaign runs. From the run's wall time ``T``, ``w`` workers and
the per-entry provenance (``seconds.feff`` measured by ``simulate_feff``, ``runner.worker_s`` by the
runner) it reports:

* spectra per hour: new entries / T (worker start-up included);
* outside-FEFF share: 1 - sum(FEFF seconds) / (w * T): every worker-second not spent in FEFF itself
  (environment building and relaxation, worker start-up, idle workers at the end, the parent's
  journal/merge work, and tasks that failed), split into build (successful entries, in the worker,
  outside FEFF) and runner/idle/failed (w * T - sum of successful task seconds).

The machine's load average is printed with the result: on a shared machine, other jobs slow FEFF.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def run_setting(element: str, specs: list[dict], workers: int, folder: Path, timeout: float) -> dict:
    from jxas.data import Dataset, generate

    out = folder / f"{element.lower()}-w{workers}.h5"
    load0 = os.getloadavg()[0]
    rep = generate(out, element=element, specs=specs, workers=workers, timeout=timeout, progress=False, card=False)
    ds = Dataset(out)
    provs = [ds.provenance(i) for i in range(len(ds))]
    feff = np.array([p["seconds"]["feff"] for p in provs])
    build = np.array([p["seconds"]["build"] for p in provs])
    task = np.array([p["runner"]["worker_s"] for p in provs])
    atoms = np.array([p["n_atoms"] for p in provs])
    capacity = workers * rep.wall_s
    return {
        "workers": workers,
        "entries": len(ds),
        "failures": len(ds.failures),
        "failure_reasons": sorted({f["reason"].splitlines()[0][:100] for f in ds.failures}),
        "wall_s": rep.wall_s,
        "spectra_per_hour": 3600.0 * len(ds) / rep.wall_s,
        "atoms": {"min": int(atoms.min()), "median": float(np.median(atoms)), "max": int(atoms.max())}
        if len(atoms)
        else None,
        "feff_s_median": float(np.median(feff)) if len(feff) else None,
        "task_s_median": float(np.median(task)) if len(task) else None,
        "outside_feff_share": 1.0 - feff.sum() / capacity,
        "build_share": build.sum() / capacity,
        "runner_overhead_share": 1.0 - task.sum() / capacity,
        "loadavg_1min_start_end": [load0, os.getloadavg()[0]],
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--element", default="Fe")
    p.add_argument("--n", type=int, default=10, help="entries per setting")
    p.add_argument("--long", action="store_true", help="40 entries per setting")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--seed", type=int, default=12345, help="spec seed (not the campaign's, so no entry is shared)")
    p.add_argument("--timeout", type=float, default=900.0)
    p.add_argument("--json", default=None, help="write the results here as JSON")
    args = p.parse_args(argv)
    n = 40 if args.long else args.n

    from jxas.data.build import campaign_specs

    specs = campaign_specs(args.element, n, seed=args.seed)
    results = []
    with tempfile.TemporaryDirectory(prefix="jxas-bench-gen-") as tmp:
        for w in args.workers:
            t0 = time.strftime("%H:%M:%S")
            r = run_setting(args.element, specs, w, Path(tmp), args.timeout)
            results.append(r)
            f = {k: ("n/a" if v is None else f"{v:.1f}") for k, v in r.items() if k.endswith("_median")}
            print(
                f"[{t0}] {args.element} workers={w}: {r['entries']} spectra ({r['failures']} failed) in "
                f"{r['wall_s']:.0f} s -> {r['spectra_per_hour']:.0f} spectra/h; atoms {r['atoms']}; "
                f"median FEFF {f['feff_s_median']} s, median successful task {f['task_s_median']} s; "
                f"outside FEFF {r['outside_feff_share']:.1%} (build {r['build_share']:.1%}, runner/idle/failed "
                f"{r['runner_overhead_share']:.1%}); load avg {r['loadavg_1min_start_end']}",
                flush=True,
            )
            for reason in r["failure_reasons"]:
                print(f"    failure: {reason}")
    if args.json:
        Path(args.json).write_text(json.dumps({"element": args.element, "n": n, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
