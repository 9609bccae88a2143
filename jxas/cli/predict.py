"""``jxas predict STRUCTURE``: the spectrum of a structure from a pretrained (or saved) forward model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "predict",
        help="predict the XANES spectrum of a structure with a forward model",
        description="Predict the unconvolved K-edge mu(E) of STRUCTURE (xyz, extxyz, CIF, POSCAR) with a shipped "
        "model (cu-k, fe-k, ...) or a saved model directory. Writes energy, mu and the ensemble spread.",
    )
    p.add_argument("structure", help="structure file (xyz: absorber is atom 0 unless --absorber)")
    p.add_argument("--model", default=None,
                   help="shipped model name or saved model directory (default: <element>-k of the absorber)")
    p.add_argument("--absorber", type=int, default=None,
                   help="absorber atom index (0-based; a site index for periodic files)")
    p.add_argument("-o", "--output", default=None, help="write 'energy mu std' columns here (default: stdout)")
    p.add_argument("--plot", default=None, help="write a PNG plot of the spectrum with its ±1σ ensemble band")
    p.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    p.set_defaults(func=run)


def predict_file(structure: str, model: str | None = None, absorber: int | None = None):
    """Read ``structure`` and predict its spectrum; returns ``(Spectrum, Model)``."""
    from ase.data import chemical_symbols

    from jxas.io.structures import read_structure
    from jxas.models import load_model

    s = read_structure(structure, absorber=absorber)
    if model is None:
        model = f"{chemical_symbols[int(s.numbers[int(s.absorber)])]}-k".lower()
    m = load_model(model)
    return m.predict(s), m


def _write(path, spectrum, header) -> None:
    try:
        from jxas.io.spectra import write_spectrum
    except ImportError:  # the spectra I/O module is optional here: plain columns
        write_spectrum = None
    if write_spectrum is not None and path is not None:
        write_spectrum(path, spectrum, header=header)
        return
    import numpy as np

    lines = [f"# {k}: {v}" for k, v in header.items()] + ["# columns: energy_eV  mu  std"]
    rows = np.column_stack([np.asarray(spectrum.energy), np.asarray(spectrum.mu), np.asarray(spectrum.std)])
    text = "\n".join(lines) + "\n" + "\n".join(" ".join(f"{v:.10g}" for v in r) for r in rows) + "\n"
    if path is None:
        sys.stdout.write(text)
    else:
        Path(path).write_text(text)


def _plot(path, spectrum, title) -> None:
    try:
        from jxas.plot import spectra as plot_spectra
    except ImportError:
        plot_spectra = None
    if plot_spectra is not None:
        plot_spectra({spectrum.meta.get("model", "model"): spectrum}, path, title=title, ylabel="μ(E) (unconvolved)")
        return
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    e, mu, sd = (np.asarray(a, float) for a in (spectrum.energy, spectrum.mu, spectrum.std))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(e, mu, lw=1.4, label=spectrum.meta.get("model", "model"))
    ax.fill_between(e, mu - sd, mu + sd, alpha=0.25, lw=0, label="±1σ")
    ax.set_xlabel("Energy (eV)")
    ax.set_ylabel("μ(E) (unconvolved)")
    ax.set_title(title)
    ax.legend(frameon=False)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    spectrum, model = predict_file(args.structure, args.model, args.absorber)
    warnings = spectrum.meta.get("warnings", [])
    for w in warnings:
        print(f"jxas predict: warning: {w}", file=sys.stderr)
    header = {
        "structure": str(args.structure),
        "model": model.name,
        "element/edge": f"{model.element} {model.edge}",
        "members": model.members,
        "quantity": "unconvolved mu (model prediction); std = ensemble spread",
        "warnings": "; ".join(warnings) if warnings else "none",
    }
    _write(args.output, spectrum.replace(meta={}), header)
    if args.plot:
        _plot(args.plot, spectrum, f"{Path(args.structure).name}: {model.name} ({model.members} member(s))")
    if args.output:
        print(f"wrote {args.output}" + (f" and {args.plot}" if args.plot else ""), file=sys.stderr)
    return 0
