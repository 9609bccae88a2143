"""``jxas featurise STRUCTURE``: wACSF and RDC descriptors of the absorber, as text and a plot."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("featurise", help="compute the wACSF and RDC descriptors of a structure's absorber",
                       description=__doc__)
    p.add_argument("structure", help="xyz / extxyz / cif / POSCAR file")
    p.add_argument("--absorber", type=int, default=None, help="absorber index (molecules) or site (crystals)")
    p.add_argument("--cutoff", type=float, default=None, help="cluster radius in Å")
    p.add_argument("--r-max", type=float, default=6.0, help="wACSF cutoff radius (Å)")
    p.add_argument("--n-g2", type=int, default=16)
    p.add_argument("--n-g4", type=int, default=32)
    p.add_argument("-o", "--output", default=None, help="output text file (default: <structure>.wacsf.txt)")
    p.add_argument("--plot", default=None, help="PNG with the RDC and the wACSF vector")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ase.data import chemical_symbols

    from jxas.descriptors import rdc, rdc_grid, wacsf
    from jxas.io.structures import read_structure

    s = read_structure(args.structure, absorber=args.absorber, cutoff=args.cutoff)
    w = np.asarray(wacsf(s, r_max=args.r_max, n_g2=args.n_g2, n_g4=args.n_g4))
    curve = np.asarray(rdc(s))
    grid = rdc_grid()
    pos, num, a = s.real()
    r = np.linalg.norm(pos - pos[a], axis=1)
    near = np.argsort(r)[1:7]
    print(f"{args.structure}: {len(num)} atoms, absorber {chemical_symbols[num[a]]} (index {a}), "
          f"charge {int(s.charge)}, unpaired electrons {int(s.spin)}")
    print("nearest neighbours: " + ", ".join(f"{chemical_symbols[num[j]]}{j} {r[j]:.3f} Å" for j in near))
    print(f"wACSF ({len(w)} values): G1 = {w[0]:.4f}, max G2 = {w[1:1 + args.n_g2].max():.4f}")
    peak = grid[np.argmax(curve)]
    print(f"RDC: strongest peak at {peak:.2f} Å")
    out = Path(args.output) if args.output else Path(args.structure).with_suffix(".wacsf.txt")
    header = (f"wACSF of {args.structure} (absorber {a}; r_max {args.r_max} Å; "
              f"n_g2 {args.n_g2}; n_g4 {args.n_g4}): G1, G2..., G4...")
    np.savetxt(out, w, header=header)
    print(f"wrote {out}")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
        ax1.plot(grid, curve, lw=1.2)
        ax1.set(xlabel="R (Å)", ylabel="RDC", title="radial distribution curve")
        ax2.bar(np.arange(len(w)), w, width=0.8)
        ax2.axvline(0.5, color="0.6", lw=0.8)
        ax2.axvline(args.n_g2 + 0.5, color="0.6", lw=0.8)
        ax2.set(xlabel="index (G1 | G2 | G4)", ylabel="value", title="wACSF")
        fig.suptitle(Path(args.structure).name)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        plt.close(fig)
        print(f"wrote {args.plot}")
    return 0
