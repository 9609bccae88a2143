"""``jxas train DATASET``: train a structure -> spectrum model (ensemble) and save it with its model card."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a forward (structure -> spectrum) model on a dataset",
        description="Train a structure -> XANES model (an ensemble of networks) on a jxas HDF5 dataset, "
        "split by material/complex; writes the model directory, logs, learning curves and held-out metrics.",
    )
    p.add_argument("dataset", help="jxas dataset (.h5)")
    p.add_argument("--kind", choices=["mlp", "e3nn"], default="mlp", help="network type (default mlp)")
    p.add_argument("--config", help="JSON file with the model configuration (overrides --kind)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="model-config overrides, values parsed as JSON (e.g. --set cutoff=6.0 hidden='[512,256]')")
    p.add_argument("--members", type=int, default=1, help="ensemble members (default 1)")
    p.add_argument("--bootstrap", action="store_true", help="train each member on a group-bootstrap resample")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--warmup", type=float, default=2.0, help="warm-up epochs")
    p.add_argument("--schedule", choices=["cosine", "plateau", "constant"], default="cosine")
    p.add_argument("--patience", type=int, default=30, help="early-stopping patience (epochs); 0 = none")
    p.add_argument("--devices", type=int, default=1, help="data-parallel devices")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the group split")
    p.add_argument("--max-train", type=int, help="use at most this many training entries (quick runs)")
    p.add_argument("--group-weight", type=float, default=0.0, metavar="P",
                   help="weight each entry's error by n_g**-P, n_g its group's (material's) entry count: "
                        "0 = every entry alike (default), 1 = every group alike")
    p.add_argument("--loss", nargs="*", default=[], metavar="KEY=VALUE",
                   help="extra loss terms on top of the MSE (jxas.train.losses.SpectrumLoss): edge=W, "
                        "edge_window=EV, deriv=W, peak=W, peak_temperature=T (default: plain MSE)")
    p.add_argument("--select", choices=["best", "last"], default="best",
                   help="keep the best-validation epoch (default) or the last one (a fixed schedule; the "
                        "validation split is still evaluated)")
    p.add_argument("--param-dtype", choices=["float32", "float16"], default="float32",
                   help="stored precision of the saved parameters (float16 halves the file; default float32)")
    p.add_argument("--seed", type=int, default=0, help="PRNG seed (initialisation, shuffling, dropout)")
    p.add_argument("--name", help="model name (default <element>-<edge>)")
    p.add_argument("-o", "--out", required=True, help="run directory (rerunning resumes from its checkpoints)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import jax

    from jxas.train import TrainConfig
    from jxas.train.forward import train_forward

    cfg = json.loads(Path(args.config).read_text()) if args.config else {"kind": args.kind}
    for item in args.set:
        if "=" not in item:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        cfg[k] = _value(v)
    tc = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr, weight_decay=args.weight_decay,
        warmup_epochs=args.warmup, schedule=args.schedule, patience=args.patience or None,
        n_devices=args.devices, progress=not args.no_progress,
    )
    command = "jxas " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["train"] else None
    model = train_forward(args.dataset, cfg, tc, members=args.members, key=jax.random.key(args.seed),
                          out_dir=args.out, bootstrap=args.bootstrap, split_seed=args.split_seed,
                          name=args.name, max_train=args.max_train, command=command,
                          group_weight=args.group_weight, param_dtype=args.param_dtype,
                          loss=_loss(args.loss), select=args.select)
    m = model.config.get("metrics", {})
    held = m.get("test") or m.get("val")
    print(f"model saved to {Path(args.out) / 'model'}")
    if held:
        print(f"held-out: eta {held['eta']:.2f} (edge {held['eta_edge']:.2f}), median MSE {held['median_mse']:.3e}, "
              f"median Pearson {held['median_pearson']:.4f}, median peak dE {held['median_peak_de']:.2f} eV "
              f"({held['n']} spectra)")
    return 0


def _loss(items: list[str]):
    if not items:
        return None
    from jxas.train.losses import SpectrumLoss

    fields = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep:
            raise ValueError(f"--loss expects KEY=VALUE, got {item!r}")
        fields[k] = float(v)
    try:
        return SpectrumLoss(**fields)
    except TypeError:
        raise ValueError(f"unknown --loss term(s) {sorted(fields)}; use edge, edge_window, deriv, peak, "
                         "peak_temperature") from None
