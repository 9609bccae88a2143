"""``jxas sweep STRUCTURE --spectrum SPECTRUM --move shell -0.2 0.2 41``: spectral loss over bond-length grids.

Moves: ``shell`` (symmetric stretch of the first shell), ``element:N`` (all first-shell donors of one
element), ``bond:J`` (absorber-donor J, ligand moved rigidly), ``bend:J:K`` (angle J-absorber-K, degrees),
``scale`` (isotropic expansion of a crystal cluster about the absorber, fraction).
Give ``--move`` once (1D) or twice (2D). Writes a PNG and a CSV; prints the minimum.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="spectral loss over a 1D/2D grid of internal coordinates", description=__doc__)
    p.add_argument("structure", help="reference structure (value 0 of every move)")
    p.add_argument("--spectrum", required=True, help="target spectrum file")
    p.add_argument("--model", default=None, help="model name or directory (default: <element>-k)")
    p.add_argument("--move", nargs=4, action="append", required=True, metavar=("KIND", "FROM", "TO", "N"),
                   help="KIND shell | element:EL | bond:J | bend:J:K | scale; range in Å (degrees for bend, "
                   "fraction for scale); N points")
    p.add_argument("--loss", default="mse", choices=["mse", "pearson", "derivative", "chi_k2"])
    p.add_argument("--restraints", action="store_true", help="also evaluate the restraint energy")
    p.add_argument("--absorber", type=int, default=None)
    p.add_argument("-o", "--out", default=None, help="output prefix (default: <structure>_sweep)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def parse_move(kind: str, lo: str, hi: str, n: str) -> dict:
    values = np.linspace(float(lo), float(hi), int(n))
    parts = kind.split(":")
    if parts[0] == "scale" and len(parts) == 1:
        return {"kind": "scale", "values": values}
    if parts[0] == "shell" and len(parts) == 1:
        return {"kind": "shell", "values": values}
    if parts[0] == "element" and len(parts) == 2:
        return {"kind": "element", "values": values, "element": parts[1]}
    if parts[0] == "bond" and len(parts) == 2:
        return {"kind": "bond", "values": values, "atom": int(parts[1])}
    if parts[0] == "bend" and len(parts) == 3:
        return {"kind": "bend", "values": values, "atom": int(parts[1]), "reference": int(parts[2])}
    raise ValueError(f"--move: cannot parse {kind!r}; use shell, element:EL, bond:J or bend:J:K")


def run(args: argparse.Namespace) -> int:
    from jxas.cli._common import enable_compilation_cache

    enable_compilation_cache()
    from ase.data import chemical_symbols

    from jxas.io.spectra import read_spectrum
    from jxas.io.structures import read_structure
    from jxas.models.registry import load_model
    from jxas.sweep import plot_sweep, sweep

    s = read_structure(args.structure, absorber=args.absorber)
    el = chemical_symbols[int(s.numbers[int(s.absorber)])]
    model = load_model(args.model or f"{el.lower()}-k")
    moves = [parse_move(*m) for m in args.move]
    if len(moves) > 2:
        raise ValueError("--move: at most two moves (a 2D grid)")
    res = sweep(s, read_spectrum(args.spectrum), model=model, moves=moves, loss=args.loss, restraints=args.restraints)
    prefix = Path(args.out) if args.out else Path(args.structure).with_name(Path(args.structure).stem + "_sweep")
    prefix.parent.mkdir(parents=True, exist_ok=True)
    plot_sweep(res, f"{prefix}.png")
    grids = np.meshgrid(*res.coordinate, indexing="ij")
    cols = [g.ravel() for g in grids] + [res.loss.ravel()]
    header = ",".join([f"coordinate{k + 1}" for k in range(len(grids))] + ["loss"])
    if res.energy is not None:
        cols.append(res.energy.ravel())
        header += ",restraint_energy_eV"
    np.savetxt(f"{prefix}.csv", np.column_stack(cols), delimiter=",", header=header, comments="")
    n = res.loss.size
    print(f"{n} grid points in {res.seconds:.1f} s with model {model.name}")
    for k, lab in enumerate(res.labels):
        print(f"minimum: {lab} = {res.min_coordinate[k]:.3f} (move value {res.min_values[k]:+.3f})")
    print(f"minimum loss {res.loss.min():.4g}; wrote {prefix}.png and {prefix}.csv")
    return 0
