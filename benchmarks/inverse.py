"""Benchmark of the inverse models (issue 7): held-out FEFF metrics, robustness, measured references.

Usage::

    python benchmarks/inverse.py --model cu-k --dataset datasets/cu-k-omnixas-feff9.h5 [--out bench.json]

1. Held-out FEFF spectra: every entry of a group (material/complex) the model never saw in training or
   calibration (its stored ``split_groups``; for older models the test part of its 70/15/15 group split,
   seed from the model config). Median first-shell distance
   error (direct head, and from the G2 first peak), median +-2 sigma coverage of the 50 G2 terms,
   Pearson correlation between each spectrum's mean sigma and its G2 MSE (David et al. 2023 definitions;
   ``g2_pearson_sigma_mse``), printed next to the same correlation with the spectrum's sigmas summarised by
   their root mean square (``g2_pearson_rms_sigma_mse``), the Spearman rank correlation, and the Pearson
   correlation that sigma would reach if the errors were drawn from the predicted Gaussians
   (``g2_pearson_gaussian_ceiling``; ``g2_pearson_gaussian_ceiling_correlated`` with the G2 errors'
   observed correlation between outputs, whose participation ratio is ``g2_error_participation_ratio``).
   Models with an error model (jxas.inverse.errmodel, jxas.inverse.errnet) include its variance.
   ``--holdout-groups`` restricts the held-out set to listed groups.
2. Robustness (David et al. 2023, Figs. 5-6): the held-out spectra shifted by +-1, +-2 eV, broadened
   by an extra Gaussian of 0.5-3 eV FWHM, and with Gaussian noise; median |change| of the predicted
   first-shell distance with respect to the clean prediction, and the median error.
3. Measured spectra of crystalline references in ../shared/data/experimental whose structure is known
   from a CIF in ../shared/data/structures/cifs: the reference first-shell distance is the mean over
   the absorber-element sites of the CIF (jxas.read_structure, 1.25 r_min rule; a CIF it cannot read is
   listed as rejected); the spectrum is
   normalised (pre_edge flat) and aligned in energy onto the training spectra (InverseModel.alignment_shift).
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

# experimental compound (manifest 'formula') -> CIF of the same phase (AMCSD, ../shared/data/structures/cifs)
REFERENCE_CIFS = {
    "Cu": {"Cu": "Copper_amcsd13088.cif", "Cu2O": "Cuprite_amcsd17890.cif", "CuO": "Tenorite_amcsd18816.cif"},
    "Fe": {
        "Fe": "Iron_amcsd12931.cif", "Fe2O3": "Hematite_amcsd17731.cif", "FeO": "Wustite_amcsd18048.cif",
        "Fe3O4": "Magnetite_amcsd9994.cif", "FeOOH": "Goethite_amcsd16643.cif", "FeS2": "Pyrite_amcsd17728.cif",
        "FeS": "Troilite_amcsd18055.cif", "FeCO3": "Siderite_amcsd17561.cif", "Fe2SiO4": "Fayalite_amcsd480.cif",
        "FeAl2O4": "Hercynite_amcsd2048.cif", "FeCr2O4": "Chromite_amcsd8918.cif", "FeTiO3": "Ilmenite_amcsd8580.cif",
        "Ca3Fe2Si3O12": "Andradite_amcsd1252.cif", "Fe3Al2Si3O12": "Almandine_amcsd7901.cif",
        "NaFeSi2O6": "Aegirine_amcsd4448.cif", "CaFeSi2O6": "Hedenbergite_amcsd6816.cif",
        "FeSiO3": "Ferrosilite_amcsd19860.cif", "Fe3C": "Cohenite_amcsd10504.cif",
    },
}
# lepidocrocite is also FeOOH: the manifest compound name decides
COMPOUND_OVERRIDES = {"lepidocrocite": "Lepidocrocite_amcsd17984.cif", "maghemite": "Maghemite_amcsd13508.cif",
                      "akaganeite": "Akaganeite_amcsd1349.cif"}


@functools.cache
def reference_r1(cif: Path, element: str) -> tuple[float, float]:
    """Mean first-shell distance (Å) and CN over all ``element`` sites of a CIF (1.25 r_min rule).

    The CIF is read by the package's reader (``jxas.read_structure``, one absorber-centred cluster per
    site); a CIF it cannot read raises, and the caller reports that reference as unreadable.
    """
    import warnings

    from jxas.inverse.targets import first_shell
    from jxas.io.structures import StructureError, read_structure

    r1, cn = [], []
    site = 0
    while True:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                s = read_structure(cif, absorber=site, cutoff=6.0)
        except StructureError as e:
            if "out of range" in str(e):
                break
            raise
        if int(s.numbers[int(s.absorber)]) == {"Cu": 29, "Fe": 26, "Mn": 25, "Ni": 28, "Zn": 30, "Co": 27}[element]:
            _check_no_split_sites(s, cif)
            _, c, r = first_shell(s)
            r1.append(float(r))
            cn.append(float(c))
        site += 1
    if not r1:
        raise ValueError(f"{cif}: no {element} site")
    return float(np.mean(r1)), float(np.mean(cn))


def _check_no_split_sites(s, cif: Path, radius: float = 3.0, min_sep: float = 1.0) -> None:
    """Raise if two neighbours within ``radius`` Å of the absorber sit closer than ``min_sep`` Å to each other.

    Split or mixed sites (partial occupancies, e.g. the two half-occupied O2 positions of the ferrosilite
    CIF) all become atoms of the cluster, and the first-shell distance of such a cluster is not the
    crystal's. Mixed occupants of the absorber's own site (distance 0) do not enter the first shell and
    are left alone.
    """
    pos = np.asarray(s.positions)[np.asarray(s.mask) > 0]
    r = np.linalg.norm(pos - np.asarray(s.positions)[int(s.absorber)], axis=1)
    near = pos[(r > 0.5) & (r <= radius)]
    d = np.linalg.norm(near[:, None] - near[None], axis=-1)[np.triu_indices(len(near), 1)]
    if d.size and d.min() < min_sep:
        raise ValueError(f"{cif.name}: neighbours {d.min():.2f} A apart within {radius} A of the absorber "
                         "(split or partially occupied sites): no single reference distance")


def measured_references(element: str) -> list[dict]:
    """Rows of the experimental manifest for ``element`` (K edge) that have a reference CIF."""
    rows = []
    with open(SHARED / "experimental" / "manifest.csv") as fh:
        for r in csv.DictReader(fh):
            if r["element"] != element or r["edge"] != "K" or r["edge_in_range"] != "True":
                continue
            if "herfd" in r["quantity"].lower():
                continue
            cif = None
            for word, f in COMPOUND_OVERRIDES.items():
                if word in r["compound"].lower():
                    cif = f
            cif = cif or REFERENCE_CIFS.get(element, {}).get(r["formula"])
            if cif and (SHARED / "structures" / "cifs" / cif).is_file():
                rows.append({**r, "cif": cif})
    return rows


def heldout_indices(groups, cfg: dict, only=None) -> np.ndarray:
    """Entries of groups the model never saw (neither training nor validation).

    Models that store their ``split_groups`` are evaluated on every other group, which stays correct
    when the dataset has grown since training (new complexes are held out too); older models re-draw
    the 70/15/15 group split with their ``split_seed``, valid only on the dataset they were trained on.
    ``only``: a collection of group names; the held-out entries are restricted to those groups (a
    test part of the unseen groups that was kept apart from any model or method choice).
    """
    from jxas.train import group_split

    sg = cfg.get("split_groups")
    if sg:
        seen = set(sg["train"]) | set(sg["val"])
        idx = np.flatnonzero([str(g) not in seen for g in groups])
    else:
        idx = group_split(groups, (0.70, 0.15, 0.15), seed=int(cfg.get("split_seed", 0)))[2]
    if only is not None:
        only = set(map(str, only))
        seen_only = only & (set(sg["train"]) | set(sg["val"])) if sg else set()
        if seen_only:
            raise ValueError(f"--holdout-groups names {len(seen_only)} groups the model trained or validated on, "
                             f"e.g. {sorted(seen_only)[0]}")
        idx = idx[np.isin(np.asarray(groups).astype(str)[idx], sorted(only))]
    return idx


def read_groups(path) -> list[str]:
    """Group names from a JSON file: a list, or an object whose ``"test"`` entry is the list."""
    d = json.loads(Path(path).read_text())
    if isinstance(d, dict):
        if "test" not in d:
            raise ValueError(f"{path}: a JSON object needs a 'test' list of groups")
        d = d["test"]
    if not isinstance(d, list) or not d or not all(isinstance(g, str) for g in d):
        raise ValueError(f"{path}: expected a non-empty list of group names")
    return d


def heldout(model, dataset_path: str, only=None) -> tuple[dict, dict]:
    """Held-out test metrics and robustness of ``model`` on its test split of ``dataset_path``.

    ``only``: restrict the held-out groups to these (:func:`heldout_indices`).
    """
    from jxas.data import Dataset
    from jxas.inverse import features as F
    from jxas.inverse.model import output_slices
    from jxas.inverse.peaks import shell_distances
    from jxas.inverse.train import ensemble_predict, evaluate_predictions, prepare

    ds = Dataset(dataset_path)
    cfg = model.config
    te = heldout_indices(ds.groups, cfg, only)
    if len(te) == 0:
        raise ValueError(f"{dataset_path}: every entry belongs to a group the model saw in training or validation")
    grid = model.energy
    data = prepare(ds, grid, donors=cfg["donors"], idx=te)
    clean = np.stack([np.interp(grid, data.store_energy, s) for s in data.spec]).astype(np.float32)
    sl = output_slices(cfg["outputs"])
    pred = ensemble_predict(cfg, model.params, clean)
    metrics = evaluate_predictions(pred, data.y, data.ymask, cfg, model.error_variance(clean, pred))
    # first-shell distance from the first G2 peak (per member, then mean)
    r_peak = np.array([shell_distances(p[:, sl["g2"]])["r"][0] for p in pred])
    ok = np.isfinite(r_peak)
    metrics["r1_from_g2_peak_median_abs_err"] = float(np.median(np.abs(r_peak[ok] - data.y[ok, sl["r1"]][:, 0])))
    metrics["r1_from_g2_peak_found_fraction"] = float(ok.mean())
    metrics["n_test"] = int(len(te))
    metrics["n_test_groups"] = int(len(np.unique(ds.groups[te])))

    r1_clean = pred.mean(1)[:, sl["r1"]][:, 0]
    y_r1 = data.y[:, sl["r1"]][:, 0]
    store = data.store_energy
    rob = {}
    perturbations = [("shift", d) for d in (-2.0, -1.0, 1.0, 2.0)] + [("broaden", w) for w in (0.5, 1.0, 2.0, 3.0)]
    perturbations += [("noise", s) for s in (0.005, 0.01, 0.02)]
    key = jax.random.key(123)
    for kind, amount in perturbations:
        if kind == "shift":
            x = np.stack([np.interp(grid - amount, store, s) for s in data.spec])
        elif kind == "broaden":
            b = jax.vmap(lambda s, a=amount: F.gaussian_broaden(store, s, a))(data.spec)
            x = np.stack([np.interp(grid, store, s) for s in np.asarray(b)])
        else:
            x = clean + amount * np.asarray(jax.random.normal(jax.random.fold_in(key, int(amount * 1e4)), clean.shape))
        p = ensemble_predict(cfg, model.params, x.astype(np.float32))
        r1 = p.mean(1)[:, sl["r1"]][:, 0]
        rob[f"{kind} {amount:g}"] = {"median_abs_change_r1": float(np.median(np.abs(r1 - r1_clean))),
                                     "median_abs_err_r1": float(np.median(np.abs(r1 - y_r1)))}
    return metrics, rob


def measured(model) -> list[dict]:
    """Predictions on the measured crystalline references of the model's element."""
    import jxas
    from jxas.inverse import invert

    out = []
    for row in measured_references(model.element):
        path = SHARED / "experimental" / "spectra" / f"{row['id']}.txt"
        spec = jxas.read_spectrum(path)
        try:
            r_ref, cn_ref = reference_r1(SHARED / "structures" / "cifs" / row["cif"], model.element)
        except Exception as e:  # an unreadable reference is reported, not fatal
            out.append({"id": row["id"], "compound": row["compound"], "error": f"reference CIF {row['cif']}: {e}"})
            continue
        try:
            if row["quantity"] == "norm":
                res = invert(spec, model=model, normalise=False, align=True)
            else:
                res = invert(spec, model=model)
        except ValueError as e:
            out.append({"id": row["id"], "compound": row["compound"], "error": str(e)})
            continue
        out.append({"id": row["id"], "compound": row["compound"], "cif": row["cif"], "r1_ref": r_ref,
                    "cn_ref": cn_ref, "r1": res.r1, "r1_sigma": res.r1_sigma, "cn": res.cn, "cn_sigma": res.cn_sigma,
                    "abs_err": abs(res.r1 - r_ref), "inside_2sigma": bool(abs(res.r1 - r_ref) <= 2 * res.r1_sigma),
                    "g2_peak": float(res.shells["r"][0]), "warnings": res.warnings})
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="shipped name or model directory")
    p.add_argument("--dataset", required=True, help="the dataset the model was trained on (held-out split)")
    p.add_argument("--out", default=None, help="write all figures as JSON here")
    p.add_argument("--no-measured", action="store_true")
    p.add_argument("--holdout-groups", default=None, metavar="JSON",
                   help="only these unseen groups count as held-out (a JSON list, or an object with a 'test' list)")
    a = p.parse_args(argv)
    from jxas.inverse import load_inverse_model

    t0 = time.perf_counter()
    model = load_inverse_model(a.model)
    only = read_groups(a.holdout_groups) if a.holdout_groups else None
    metrics, rob = heldout(model, a.dataset, only)
    meas = [] if a.no_measured else measured(model)
    res = {"model": model.name, "arch": model.config.get("arch"), "dataset": a.dataset,
           "holdout_groups": a.holdout_groups, "heldout": metrics,
           "robustness": rob, "measured": meas, "wall_s": round(time.perf_counter() - t0, 1)}
    ok = [m for m in meas if "abs_err" in m]
    if ok:
        res["measured_median_abs_err_r1"] = float(np.median([m["abs_err"] for m in ok]))
        res["measured_fraction_inside_2sigma"] = float(np.mean([m["inside_2sigma"] for m in ok]))
    print(f"## {model.name} ({model.config.get('arch')}) on {a.dataset}")
    print(f"held-out test: {metrics['n_test']} spectra, {metrics['n_test_groups']} groups")
    for k in ("r1_median_abs_err", "r1_from_g2_peak_median_abs_err", "r1_coverage_2sigma", "r1_pearson_sigma_sqerr",
              "g2_median_coverage", "g2_median_coverage_uncalibrated", "g2_pearson_sigma_mse",
              "g2_pearson_rms_sigma_mse", "g2_spearman_sigma_mse", "g2_pearson_gaussian_ceiling",
              "g2_pearson_gaussian_ceiling_correlated", "g2_error_participation_ratio", "g2_median_mse",
              "cn_median_abs_err", "cn_exact_fraction", "comp_exact_fraction", "ox_exact_fraction"):
        if k in metrics:
            print(f"  {k}: {metrics[k]:.4f}")
    print("robustness (median |change of r1| vs clean, median |error|), Å:")
    for k, v in rob.items():
        print(f"  {k:12s} {v['median_abs_change_r1']:.4f}  {v['median_abs_err_r1']:.4f}")
    if meas:
        print("measured references:")
        for m in meas:
            if "abs_err" in m:
                print(f"  {m['id']:40s} r1 {m['r1']:.3f} +- {m['r1_sigma']:.3f} (ref {m['r1_ref']:.3f}) "
                      f"CN {m['cn']:.1f} (ref {m['cn_ref']:.1f})")
            else:
                print(f"  {m['id']:40s} rejected: {m['error']}")
        if ok:
            print(f"  median |r1 error| over {len(ok)} spectra: {res['measured_median_abs_err_r1']:.4f} A")
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
