"""``jxas invert SPECTRUM``: what is around the absorber, read from a XANES spectrum."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

__all__ = ["register", "run", "read_spectrum_file", "plot_g2"]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "invert",
        help="spectrum -> first-shell distance, CN, composition, oxidation state, G2 curve (with uncertainty)",
        description="Read the absorber's environment from a K-edge XANES spectrum with a bootstrap-ensemble "
        "inverse model. Prints mean +- calibrated 1-sigma and writes the G2 curve with its +-2 sigma band.",
    )
    p.add_argument("spectrum", help="spectrum file (two columns: absolute energy in eV, mu; '#' comments)")
    p.add_argument("--model", default=None,
                   help="shipped model name (cu-k, fe-k) or a saved model directory (default: by energy range)")
    p.add_argument("--plot", default=None, help="PNG of the G2 curve with its +-2 sigma band (default SPECTRUM.g2.png)")
    p.add_argument("--no-plot", action="store_true", help="do not write the PNG")
    p.add_argument("--normalised", action="store_true",
                   help="the spectrum is already normalised (edge step 1): skip pre/post-edge normalisation")
    p.add_argument("--json", default=None, help="also write the result as JSON to this path")
    p.add_argument("--check", default=None, metavar="STRUCTURE",
                   help="compare this starting structure (xyz, cif, POSCAR; absorber atom 0 for xyz unless "
                   "--absorber) with the prediction: first-shell distance, CN and composition, flagged beyond "
                   "--check-k sigma")
    p.add_argument("--absorber", type=int, default=None, help="absorber index in the --check structure")
    p.add_argument("--check-k", type=float, default=2.0, help="disagreement threshold in sigma (default 2)")
    p.add_argument("--refine-start", default=None, metavar="OUT.xyz",
                   help="with --check: write the structure with its first shell moved to the predicted distance "
                   "(ligands follow their donors), a start for `jxas refine`")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def read_spectrum_file(path: str):
    """A :class:`jxas.Spectrum` from a file: ``jxas.read_spectrum`` when the I/O layer has it, else two columns."""
    import jxas

    try:
        reader = jxas.read_spectrum
    except (AttributeError, ImportError):  # the spectrum I/O layer is not there yet
        reader = None
    if reader is not None:
        return reader(path)
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        data = np.loadtxt(p, comments="#", ndmin=2)
    except ValueError as e:
        raise ValueError(f"{path}: cannot read two numeric columns ({e})") from None
    if data.shape[1] < 2:
        raise ValueError(f"{path}: need two columns (energy eV, mu), found {data.shape[1]}")
    return jxas.Spectrum(energy=data[:, 0], mu=data[:, 1], meta={"source": str(p)})


def plot_g2(result, path: str | Path, title: str = "") -> Path:
    """PNG of the predicted G2 curve with its +-2 sigma band and the shell peaks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=120)
    r, g, s = result.g2_r, result.g2, result.g2_sigma
    ax.fill_between(r, g - 2 * s, g + 2 * s, color="C0", alpha=0.25, label="±2σ (calibrated)")
    ax.plot(r, g, "C0-o", ms=3, label="predicted G2")
    for i, found in enumerate(result.shells["found"]):
        if found > 0:
            ax.axvline(result.shells["r"][i], color="C3", ls="--", lw=1)
            ax.text(result.shells["r"][i], ax.get_ylim()[1] * 0.92,
                    f" {result.shells['r'][i]:.2f}±{result.shells['sigma'][i]:.2f} Å", color="C3", fontsize=8)
    ax.set_xlabel("r (Å)")
    ax.set_ylabel("G2 (weighted radial wACSF)")
    ax.set_title(title or f"{result.model}: r1 = {result.r1:.3f} ± {result.r1_sigma:.3f} Å, CN = {result.cn:.1f}",
                 fontsize=9)
    ax.legend(fontsize=8)
    path = Path(path)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def run(args: argparse.Namespace) -> int:
    from jxas.inverse import invert

    if args.refine_start and not args.check:
        raise ValueError("--refine-start needs --check STRUCTURE (the structure whose first shell is moved)")
    structure = None
    if args.check:
        import jxas

        structure = jxas.read_structure(args.check, absorber=args.absorber)
    spectrum = read_spectrum_file(args.spectrum)
    if not spectrum.meta.get("source"):
        spectrum = spectrum.replace(meta={**spectrum.meta, "source": args.spectrum})
    result = invert(spectrum, model=args.model, normalise=not args.normalised)
    print(result.summary())
    if not args.no_plot:
        out = plot_g2(result, args.plot or f"{args.spectrum}.g2.png")
        print(f"G2 plot: {out}")
    out = result.to_dict()
    if structure is not None:
        out["check"] = handoff(result, structure, args)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
        print(f"result: {args.json}")
    return 0


def handoff(result, structure, args: argparse.Namespace) -> dict:
    """``--check`` / ``--refine-start``: print the comparison, write the rescaled start; the check as a dict."""
    from jxas.inverse.handoff import check_structure, scale_first_shell
    from jxas.io.structures import write_xyz

    check = check_structure(result, structure, k=args.check_k)
    print(check.summary())
    if args.refine_start:
        start = scale_first_shell(structure, result.r1)
        write_xyz(args.refine_start, start,
                  comment=f"q = {int(structure.charge)} | S = {int(structure.spin)} | first shell scaled to "
                  f"{result.r1:.3f} A by {result.model} from {Path(args.check).name}")
        print(f"refinement start (first shell at {result.r1:.3f} A): {args.refine_start}\n"
              f"  next: jxas refine {args.refine_start} --spectrum {args.spectrum}")
    return check.to_dict()
