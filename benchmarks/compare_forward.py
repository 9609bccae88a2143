"""Two forward models on the same held-out entries, and how broadening changes the peak-position error.

    python benchmarks/compare_forward.py --old fe-k-previous-dir --old-keys OLD/snapshot_keys.txt \
        --new fe-k --dataset datasets/fe-k-feff10-default.h5 [--json out.json]

Entries: the NEW model's recorded test complexes, minus every complex the OLD model trained or validated
on (the complexes of the entries listed in ``--old-keys``, its data snapshot, except its own recorded test
complexes). eta of both models is taken against the NEW model's training mean. Then, for the new model,
the median peak-position error after broadening prediction and reference alike (Gaussian 1 and 2 eV
FWHM, and the arctangent model of ``jxas.spectrum.broaden``), to see whether the figure depends on the
sharpness of the unconvolved spectra.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", required=True, help="previous model (name or directory)")
    p.add_argument("--old-keys", required=True, help="entry keys of the previous model's data snapshot")
    p.add_argument("--new", required=True, help="new model (name or directory)")
    p.add_argument("--dataset", required=True)
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)

    from jxas.data import Dataset
    from jxas.models import load_model
    from jxas.spectrum.broaden import broaden
    from jxas.train import evaluate
    from jxas.train.metrics import edge_onset, peak_errors

    ds = Dataset(args.dataset)
    old, new = load_model(args.old), load_model(args.new)
    old_keys = set(Path(args.old_keys).read_text().split())
    groups = np.asarray(ds.groups)
    seen = {g for k, g in zip(ds.keys, groups, strict=True) if k in old_keys} - set(old.config.get("test_groups", []))
    test = set(new.config["test_groups"])
    idx = np.array([i for i, g in enumerate(groups) if g in test and g not in seen], int)
    n_test = int(np.isin(groups, list(test)).sum())
    print(f"new model's test entries: {n_test}; of them unseen by the old model: {len(idx)}")
    mean = np.asarray(new.config["mu_mean"], float)
    res = {"n_test_new": n_test, "n_common": len(idx),
           "old": evaluate(old, ds, idx, train_mean=mean), "new": evaluate(new, ds, idx, train_mean=mean)}
    for k in ("eta", "eta_edge", "median_pearson", "median_peak_de", "median_mse"):
        print(f"  {k:16s} old {res['old'][k]:.4f}   new {res['new'][k]:.4f}")

    t_idx = np.flatnonzero(np.isin(groups, list(test)))
    e = np.asarray(ds.energy)
    ref = np.asarray(ds.spectra(t_idx))
    pred = np.asarray(new.predict_batch(ds.structures(t_idx)).mu)
    e0 = edge_onset(e, ref)
    de, _ = peak_errors(e, pred, ref)
    res["peak_de_new_test"] = {"raw": float(np.median(de)), "fraction_above_2eV": float(np.mean(de > 2.0))}
    for name, kw in (("gaussian 1 eV", {"model": "gaussian", "fwhm": 1.0}),
                     ("gaussian 2 eV", {"model": "gaussian", "fwhm": 2.0}), ("arctan", {"model": "arctan"})):
        bp = np.stack([np.asarray(broaden(e, pred[i], e_edge=e0[i], **kw)) for i in range(len(t_idx))])
        br = np.stack([np.asarray(broaden(e, ref[i], e_edge=e0[i], **kw)) for i in range(len(t_idx))])
        res["peak_de_new_test"][name] = float(np.median(peak_errors(e, bp, br)[0]))
    print(f"new model, {len(t_idx)} test spectra, median peak error (eV): "
          + ", ".join(f"{k} {v:.2f}" for k, v in res["peak_de_new_test"].items()))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
