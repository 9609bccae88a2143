"""``jxas refine STRUCTURE --spectrum SPECTRUM``: fit the structure to a spectrum with an energy term.

Prints the bond table and fit quality and writes the report (refined xyz/extxyz, trajectory, fit and
history PNGs, spectra CSV, JSON summary). Ctrl-C stops the run and still writes the last good structure.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("refine", help="refine a structure against a measured or simulated XANES spectrum",
                       description=__doc__)
    p.add_argument("structure", help="starting structure: xyz / extxyz / cif / POSCAR")
    p.add_argument("--spectrum", required=True, help="target spectrum file (two-column text, XDI, FEFF xmu.dat)")
    p.add_argument("--model", default=None, help="model name or directory (default: <element>-k of the absorber)")
    p.add_argument("--energy", default="gfn2", choices=["gfn2", "gfn1", "gfnff", "restraints", "none"],
                   help="energy term (default gfn2; restraints = jax-md bonds/angles/repulsion)")
    p.add_argument("--lam", type=float, default=None, help="energy weight per eV per atom (default per method)")
    p.add_argument("--loss", default="mse", choices=["mse", "pearson", "derivative", "chi_k2"])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--optimizer", default="adam", choices=["adam", "lbfgs"])
    p.add_argument("--lr", type=float, default=0.005, help="Adam step (Å per step)")
    p.add_argument("--movable", default="all", help="'all', 'first_shell' or comma-separated atom indices")
    p.add_argument("--fix", default="", help="comma-separated nuisance parameters to fix: shift,broadening,scale")
    p.add_argument("--shift", type=float, default=None, help="start (or fixed) energy shift, eV")
    p.add_argument("--window", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                   help="fitting window relative to the target's E0, eV")
    p.add_argument("--restraint-weight", type=float, default=0.0, help="add restraints on top of --energy")
    p.add_argument("--absorber", type=int, default=None, help="absorber index (molecules) or site (crystals)")
    p.add_argument("--cutoff", type=float, default=None, help="cluster radius, Å (crystals)")
    p.add_argument("--no-uncertainty", action="store_true", help="skip the ensemble-spread uncertainty")
    p.add_argument("-o", "--out", default=None, help="report directory (default: <structure>_refined/)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def _movable(text: str):
    if text in ("all", "first_shell"):
        return text
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"--movable must be 'all', 'first_shell' or comma-separated indices, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    from jxas.cli._common import enable_compilation_cache

    enable_compilation_cache()
    import time

    from ase.data import chemical_symbols

    from jxas.io.spectra import read_spectrum
    from jxas.io.structures import read_structure, write_xyz
    from jxas.models.registry import load_model
    from jxas.refine import refine
    from jxas.refine.report import write_report

    t0 = time.perf_counter()
    s = read_structure(args.structure, absorber=args.absorber, cutoff=args.cutoff)
    el = chemical_symbols[int(s.numbers[int(s.absorber)])]
    model = load_model(args.model or f"{el.lower()}-k")
    target = read_spectrum(args.spectrum)
    fix = {f.strip() for f in args.fix.split(",") if f.strip()}
    unknown = fix - {"shift", "broadening", "scale"}
    if unknown:
        raise ValueError(f"--fix: unknown parameter(s) {sorted(unknown)}; choose from shift, broadening, scale")
    out = Path(args.out) if args.out else Path(args.structure).with_name(Path(args.structure).stem + "_refined")
    print(f"refining {args.structure} ({len(s.real()[1])} atoms, absorber {el}{int(s.absorber)}) against "
          f"{args.spectrum} with model {model.name}, energy term {args.energy}")
    try:
        res = refine(
            s, target, model=model, energy=args.energy, lam=args.lam, loss=args.loss, steps=args.steps,
            optimizer=args.optimizer, learning_rate=args.lr, movable=_movable(args.movable),
            fit_shift="shift" not in fix, fit_broadening="broadening" not in fix, fit_scale="scale" not in fix,
            shift=args.shift, window=tuple(args.window) if args.window else None,
            restraint_weight=args.restraint_weight, uncertainty=not args.no_uncertainty, progress=not args.quiet,
        )
    except KeyboardInterrupt:  # interrupted outside the loop (e.g. while compiling): keep the input
        out.mkdir(parents=True, exist_ok=True)
        write_xyz(out / "refined.xyz", s)
        print(f"interrupted before the first step; wrote the starting structure to {out / 'refined.xyz'}")
        return 130
    print(res)
    paths = write_report(res, out)
    print(f"report: {out}/ (refined.xyz, refined.extxyz, trajectory.extxyz, fit.png, history.png, summary.json)")
    print(f"total time {time.perf_counter() - t0:.1f} s")
    for e in res.events:
        print(f"note: {e}")
    del paths
    return 0 if res.ok else (130 if res.status == "interrupted" else 3)
