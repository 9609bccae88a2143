"""``jxas evaluate MODEL DATASET``: accuracy metrics of a forward model on a dataset."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

_ROWS = [
    ("eta (training-mean MSE / model MSE)", "eta", "{:.2f}"),
    ("median MSE", "median_mse", "{:.3e}"),
    ("mean MSE", "mean_mse", "{:.3e}"),
    ("median Pearson r", "median_pearson", "{:.4f}"),
    ("median peak-position error (eV)", "median_peak_de", "{:.2f}"),
    ("mean peak-position error (eV)", "mean_peak_de", "{:.2f}"),
    ("median peak-intensity error", "median_peak_dmu", "{:.4f}"),
]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="accuracy of a forward model on a dataset (eta, MSE, Pearson, peak errors)",
        description="Evaluate a structure -> spectrum model on a jxas dataset: median MSE, eta (OmniXAS), "
        "Pearson, peak-position and peak-intensity errors, over the full grid and the 35 eV above the edge.",
    )
    p.add_argument("model", help="shipped model name (cu-k, fe-k, ...) or a saved model directory")
    p.add_argument("dataset", help="jxas dataset (.h5) of the same element and edge")
    p.add_argument("--entries", choices=["test", "all"], default="test",
                   help="'test': the model's held-out groups when DATASET is its training set (default); 'all'")
    p.add_argument("--window", type=float, default=35.0, help="near-edge window width in eV (default 35)")
    p.add_argument("--plots", help="directory for the percentile-spectra and peak-parity plots")
    p.add_argument("--json", help="write the metrics as JSON here")
    p.set_defaults(func=run)


def format_table(m: dict, window: float = 35.0) -> str:
    lines = [f"{'metric':40s} {'full grid':>12s} {f'{window:g} eV edge':>12s}"]
    for label, key, fmt in _ROWS:
        lines.append(f"{label:40s} {fmt.format(m[key]):>12s} {fmt.format(m[key + '_edge']):>12s}")
    lines.append(f"{m['n']} spectra; mean ensemble std {m['mean_ensemble_std']:.3e}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from jxas.data import Dataset
    from jxas.models import load_model
    from jxas.train.forward import evaluate

    model = load_model(args.model)
    ds = Dataset(args.dataset)
    idx = np.arange(len(ds)) if args.entries == "all" else None
    m = evaluate(model, ds, idx, plot_dir=args.plots, window=args.window)
    print(f"{model.name} on {ds.path.name}:")
    print(format_table(m, args.window))
    if args.json:
        Path(args.json).write_text(json.dumps(m, indent=1))
    return 0
