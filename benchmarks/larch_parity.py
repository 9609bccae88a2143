"""Parity of ``jxas.spectrum.pre_edge`` (default arguments) with xraylarch on the shared K-edge spectra.

Acceptance (issue 3): e0 within 0.5 eV of larch's and ``flat`` within 0.02 (edge-step units) of larch's over
[e0 - 20, e0 + 80] eV for at least 95 % of the K-edge ``mu_raw`` spectra. The larch numbers are the committed
fixture ``tests/data/larch_reference.json`` (see its ``note``); the spectra are read from ../shared/data.

    python benchmarks/larch_parity.py [--shared PATH] [--verbose]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "data" / "larch_reference.json"
E0_TOL, FLAT_TOL, PASS_RATE = 0.5, 0.02, 0.95


def compare(energy: np.ndarray, mu: np.ndarray, ref: dict, grid_rel: np.ndarray) -> dict:
    """jxas vs larch on one spectrum: e0 difference, max |flat difference| on larch's e0 + grid."""
    from jxas.spectrum import pre_edge

    out = pre_edge(energy, mu)
    order = np.argsort(energy, kind="stable")
    flat = np.interp(ref["e0"] + grid_rel, np.asarray(energy)[order], np.asarray(out.flat))
    d_flat = np.abs(flat - np.asarray(ref["flat"]))
    i = int(np.argmax(d_flat))
    return {
        "e0": float(out.e0),
        "de0": float(out.e0) - ref["e0"],
        "dflat": float(d_flat[i]),
        "dflat_at": float(grid_rel[i]),
        "ranges": (out.pre1, out.pre2, out.norm1, out.norm2, out.nnorm),
        "ref_ranges": (ref["pre1"], ref["pre2"], ref["norm1"], ref["norm2"], ref["nnorm"]),
        "ok": abs(float(out.e0) - ref["e0"]) <= E0_TOL and d_flat[i] <= FLAT_TOL,
    }


def reason(r: dict) -> str:
    why = []
    if abs(r["de0"]) > E0_TOL:
        why.append(f"e0 differs by {r['de0']:+.2f} eV")
    if r["ranges"] != r["ref_ranges"]:
        why.append(f"ranges {r['ranges']} vs larch {r['ref_ranges']}")
    if r["dflat"] > FLAT_TOL:
        why.append(f"max |d flat| {r['dflat']:.3f} at e0{r['dflat_at']:+.1f} eV")
    return "; ".join(why)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data" / "experimental")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    doc = json.loads(REFERENCE.read_text())
    grid_rel = np.asarray(doc["grid_rel"])
    results, skipped = {}, []
    for sid, ref in doc["spectra"].items():
        path = args.shared / "spectra" / f"{sid}.txt"
        if "error" in ref or not path.exists():
            skipped.append(sid)
            continue
        data = np.loadtxt(path, comments="#")
        results[sid] = compare(data[:, 0], data[:, 1], ref, grid_rel)
    fails = {k: r for k, r in results.items() if not r["ok"]}
    n = len(results)
    rate = (n - len(fails)) / max(n, 1)
    de0 = np.array([abs(r["de0"]) for r in results.values()])
    dfl = np.array([r["dflat"] for r in results.values()])
    print(f"larch {doc['larch_version']} reference, {n} K-edge mu_raw spectra ({len(skipped)} skipped)")
    print(f"pass rate {rate:.1%} ({n - len(fails)}/{n}); target >= {PASS_RATE:.0%}")
    print(f"|de0| eV: median {np.median(de0):.3f}, max {de0.max():.3f}; "
          f"max|d flat|: median {np.median(dfl):.4f}, 95th pct {np.percentile(dfl, 95):.4f}, max {dfl.max():.3f}")
    for k, r in fails.items():
        print(f"FAIL {k}: {reason(r)}")
    if args.verbose:
        for k, r in results.items():
            print(f"{k}: de0 {r['de0']:+.3f} dflat {r['dflat']:.4f}")
    return 0 if rate >= PASS_RATE else 1


if __name__ == "__main__":
    sys.exit(main())
