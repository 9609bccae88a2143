"""Regenerate tests/data/larch_reference.json: xraylarch's pre_edge (default arguments) on every K-edge
``mu_raw`` spectrum of ../shared/data/experimental. Run with a throw-away venv that has xraylarch:

    python3 -m venv /tmp/larchvenv && /tmp/larchvenv/bin/pip install xraylarch
    cd /tmp && /tmp/larchvenv/bin/python /work/main/tests/data/spectra/make_larch_reference.py

Only larch's *outputs* (numbers) are stored; no larch code is copied into jxas.
"""

import csv
import datetime
import json
import sys
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[3] / "shared" / "data" / "experimental"
OUT = HERE.parent / "larch_reference.json"
GRID = np.arange(-20.0, 80.0 + 0.25, 0.5)  # eV relative to larch's e0


def main():
    import larch
    from larch import Group
    from larch.xafs import pre_edge

    rows = list(csv.DictReader(open(SHARED / "manifest.csv")))
    rows = [r for r in rows if r["edge"] == "K" and r["quantity"] == "mu_raw"]
    out = {}
    for r in rows:
        data = np.loadtxt(SHARED / "spectra" / f"{r['id']}.txt", comments="#")
        e, mu = data[:, 0], data[:, 1]
        g = Group()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                pre_edge(e, mu, group=g)
            except Exception as exc:  # recorded, not hidden
                out[r["id"]] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
        d = g.pre_edge_details
        flat = np.interp(g.e0 + GRID, g.energy if hasattr(g, "energy") else e, g.flat)
        out[r["id"]] = {
            "element": r["element"],
            "e0": float(g.e0),
            "edge_step": float(g.edge_step),
            "pre1": float(d.pre1), "pre2": float(d.pre2), "norm1": float(d.norm1), "norm2": float(d.norm2),
            "nnorm": int(d.nnorm),
            "flat": [round(float(v), 6) for v in flat],
        }
    doc = {
        "note": "xraylarch pre_edge(energy, mu) with default arguments on the raw two-column files; flat sampled "
                "by linear interpolation at e0 + grid_rel (eV). Numbers only (data), produced by "
                "tests/data/spectra/make_larch_reference.py.",
        "larch_version": larch.__version__,
        "numpy_version": np.__version__,
        "python": sys.version.split()[0],
        "date": datetime.date.today().isoformat(),
        "grid_rel": [float(v) for v in GRID],
        "spectra": out,
    }
    OUT.write_text(json.dumps(doc, indent=0, separators=(",", ":")) + "\n")
    print(f"wrote {OUT}: {len(out)} spectra, {sum('error' in v for v in out.values())} errors")


if __name__ == "__main__":
    main()
