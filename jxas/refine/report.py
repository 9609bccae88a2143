"""Refinement report: refined structure and trajectory (xyz/extxyz), PNG plots and a JSON summary."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from jxas.refine.result import RefineResult

__all__ = ["write_report", "plot_fit", "plot_history"]


def _json_default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, tuple):
        return list(o)
    return str(o)


def plot_fit(result: RefineResult, path: str | os.PathLike) -> None:
    """Target, start and fitted spectra (top) and residuals (bottom), over the fitting window."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = np.asarray(result.target.energy)
    w = np.asarray(result.target.meta.get("weight", np.ones_like(e))) > 0
    t = np.asarray(result.target.mu)
    a = np.asarray(result.initial.mu)
    b = np.asarray(result.spectrum.mu)
    fig, (ax, axr) = plt.subplots(2, 1, figsize=(6.5, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot(e[w], t[w], "k-", lw=1.5, label="target")
    ax.plot(e[w], a[w], "C0--", lw=1.0, label=f"start (MSE {result.fit['mse_before']:.2e})")
    ax.plot(e[w], b[w], "C3-", lw=1.2, label=f"refined (MSE {result.fit['mse_after']:.2e})")
    ax.set_ylabel("normalised μ(E)")
    ax.legend(frameon=False)
    ax.set_title(f"refinement: {result.status}, energy term {result.energy_method}")
    axr.axhline(0, color="0.6", lw=0.8)
    axr.plot(e[w], (a - t)[w], "C0--", lw=1.0)
    axr.plot(e[w], (b - t)[w], "C3-", lw=1.0)
    axr.set_xlabel("energy (eV)")
    axr.set_ylabel("residual")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_history(result: RefineResult, path: str | os.PathLike) -> None:
    """Loss terms and mean first-shell distance against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = result.history
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    if "loss" in h:
        step = h.get("step", np.arange(len(h["loss"])))
        ax.semilogy(step, np.abs(h["loss"]) + 1e-16, "k-", label="total")
        if "spectral" in h:
            ax.semilogy(step, np.abs(h["spectral"]) + 1e-16, "C0-", label="spectral")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.legend(frameon=False)
        if "r_first_shell" in h:
            ax2.plot(step, h["r_first_shell"], "C3-")
            ax2.set_xlabel("step")
            ax2.set_ylabel("mean first-shell distance (Å)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(result: RefineResult, out_dir: str | os.PathLike, *, name: str = "refined") -> dict[str, str]:
    """Write ``<name>.xyz``, ``<name>.extxyz``, ``trajectory.extxyz``, ``fit.png``, ``history.png``,
    ``spectra.csv`` and ``summary.json`` into ``out_dir`` (created). Returns the paths written."""
    import ase.io

    from jxas.io.structures import write_xyz

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    pos, num, ab = result.structure.real()
    write_xyz(
        out / f"{name}.xyz",
        result.structure,
        comment=f"q = {int(result.structure.charge)} | S = {int(result.structure.spin)} | absorber = {ab} | "
        f"jxas refine status = {result.status}",
    )
    paths["xyz"] = str(out / f"{name}.xyz")
    atoms = result.structure.to_ase()
    atoms.info.update(
        status=result.status,
        loss=result.fit["loss_after"],
        mse=result.fit["mse_after"],
        energy_method=result.energy_method,
    )
    ase.io.write(out / f"{name}.extxyz", atoms, format="extxyz")
    paths["extxyz"] = str(out / f"{name}.extxyz")
    frames = []
    steps = result.history.get("step", np.arange(len(result.trajectory)))
    losses = result.history.get("loss", np.full(len(result.trajectory), np.nan))
    for k, p in enumerate(result.trajectory):
        a = atoms.copy()
        a.positions = p
        a.info = {
            "step": int(steps[k]) if k < len(steps) else k,
            "loss": float(losses[k]) if k < len(losses) else np.nan,
        }
        frames.append(a)
    ase.io.write(out / "trajectory.extxyz", frames, format="extxyz")
    paths["trajectory"] = str(out / "trajectory.extxyz")
    plot_fit(result, out / "fit.png")
    paths["fit_png"] = str(out / "fit.png")
    plot_history(result, out / "history.png")
    paths["history_png"] = str(out / "history.png")
    e = np.asarray(result.target.energy)
    np.savetxt(
        out / "spectra.csv",
        np.column_stack(
            [
                e,
                result.target.mu,
                result.initial.mu,
                result.spectrum.mu,
                result.target.meta.get("weight", np.ones_like(e)),
            ]
        ),
        delimiter=",",
        header="energy_eV,target_norm,start_fit,refined_fit,weight",
        comments="",
    )
    paths["spectra_csv"] = str(out / "spectra.csv")
    summary = result.summary()
    summary["files"] = paths
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_default))
    paths["summary"] = str(out / "summary.json")
    return paths
