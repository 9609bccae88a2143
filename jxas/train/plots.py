"""Plots of a training run and of a model's accuracy (PNG, matplotlib with the Agg backend).

- :func:`plot_learning_curves`: training and validation loss per epoch (log scale), best epoch marked;
- :func:`plot_percentile_spectra`: predicted vs reference spectra at the 10th, 50th and 90th
  percentiles of the per-spectrum MSE (the presentation of Rankine et al., J. Phys. Chem. A 124,
  4263 (2020), fig. 3);
- :func:`plot_peak_parity`: predicted vs reference position of the most intense peak.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

__all__ = ["plot_learning_curves", "plot_percentile_spectra", "plot_peak_parity"]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curves(histories: dict[str, list[float]] | Sequence[dict], path: str | os.PathLike,
                         *, title: str = "") -> None:
    """Training/validation loss vs epoch for one run or several (ensemble members) into ``path``."""
    plt = _plt()
    hs = [histories] if isinstance(histories, dict) else list(histories)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for i, h in enumerate(hs):
        lab = f" {i}" if len(hs) > 1 else ""
        ax.plot(h["epoch"], h["train_loss"], color=f"C{i}", alpha=0.6, lw=1, label=f"train{lab}")
        ax.plot(h["epoch"], h["val_loss"], color=f"C{i}", lw=1.5, ls="--", label=f"validation{lab}")
        best = int(np.argmin(h["val_loss"]))
        ax.plot(h["epoch"][best], h["val_loss"][best], "o", color=f"C{i}", ms=4)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (MSE)")
    ax.set_title(title or "learning curves")
    ax.legend(fontsize=7, ncol=2 if len(hs) > 1 else 1)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_percentile_spectra(energy, pred, ref, path: str | os.PathLike, *, std=None, labels=None,
                            percentiles: Sequence[float] = (10, 50, 90), title: str = "") -> list[int]:
    """Predicted vs reference spectra at MSE percentiles; returns the indices of the spectra shown."""
    plt = _plt()
    energy, pred, ref = np.asarray(energy), np.atleast_2d(pred), np.atleast_2d(ref)
    err = np.mean((pred - ref) ** 2, axis=-1)
    order = np.argsort(err)
    shown = [int(order[min(int(round(p / 100 * (len(err) - 1))), len(err) - 1)]) for p in percentiles]
    fig, axes = plt.subplots(1, len(shown), figsize=(4 * len(shown), 3.4), sharey=True)
    for ax, p, i in zip(np.atleast_1d(axes), percentiles, shown, strict=True):
        ax.plot(energy, ref[i], "k-", lw=1.3, label="reference")
        ax.plot(energy, pred[i], "C3-", lw=1.1, label="predicted")
        if std is not None:
            s = np.atleast_2d(std)[i]
            ax.fill_between(energy, pred[i] - 2 * s, pred[i] + 2 * s, color="C3", alpha=0.25, lw=0, label="±2σ")
        name = f" ({labels[i]})" if labels is not None else ""
        ax.set_title(f"{p:g}th percentile{name}\nMSE = {err[i]:.2e}", fontsize=8)
        ax.set_xlabel("energy (eV)")
    np.atleast_1d(axes)[0].set_ylabel("μ (unconvolved)")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return shown


def plot_peak_parity(energy, pred, ref, path: str | os.PathLike, *, title: str = "") -> None:
    """Parity plot of the most intense peak position (eV), predicted vs reference."""
    from jxas.train.metrics import peak_position

    plt = _plt()
    ep, _ = peak_position(energy, pred)
    er, _ = peak_position(energy, ref)
    fig, ax = plt.subplots(figsize=(4.2, 4))
    ax.plot(er, ep, ".", ms=3, alpha=0.6)
    lo, hi = min(er.min(), ep.min()), max(er.max(), ep.max())
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
    ax.set_xlabel("reference peak position (eV)")
    ax.set_ylabel("predicted peak position (eV)")
    ax.set_title(title or f"peak position: median |ΔE| = {np.median(np.abs(ep - er)):.2f} eV", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
