"""Plots of spectra saved as PNG (matplotlib, Agg backend): overlays, uncertainty bands, residual panel.

    jxas.plot.spectra({"FEFF": sim, "model": pred}, "fit.png", target=experiment)

draws the curves (a ``std`` becomes a shaded +-1 sigma band), the target as black points-and-line, and below
it a residual panel ``curve - target`` (target interpolated onto each curve's grid).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from jxas.spectrum.spectrum import Spectrum

__all__ = ["spectra"]


def _as_spectrum(obj) -> Spectrum:
    if isinstance(obj, Spectrum):
        return obj
    if isinstance(obj, tuple | list) and len(obj) in (2, 3):
        std = obj[2] if len(obj) == 3 else None
        return Spectrum(energy=np.asarray(obj[0]), mu=np.asarray(obj[1]), std=std)
    raise TypeError(f"cannot plot {type(obj).__name__}: give a Spectrum or an (energy, mu[, std]) tuple")


def _curves(curves, labels) -> list[tuple[str, Spectrum]]:
    if curves is None:
        return []
    if isinstance(curves, Mapping):
        return [(str(k), _as_spectrum(v)) for k, v in curves.items()]
    single_tuple = isinstance(curves, tuple) and len(curves) in (2, 3) and np.ndim(curves[0]) == 1
    if isinstance(curves, Spectrum) or single_tuple:
        curves = [curves]
    items = [_as_spectrum(c) for c in curves]
    names = list(labels) if labels is not None else [s.meta.get("label", f"curve {i + 1}") for i, s in enumerate(items)]
    if len(names) != len(items):
        raise ValueError(f"{len(names)} labels for {len(items)} curves")
    return list(zip(names, items, strict=True))


def spectra(
    curves: Spectrum | Sequence | Mapping | None,
    path: str | os.PathLike | None = None,
    *,
    target: Spectrum | tuple | None = None,
    labels: Sequence[str] | None = None,
    target_label: str = "experiment",
    residual: bool | None = None,
    title: str | None = None,
    xlim: tuple[float, float] | None = None,
    xlabel: str = "Energy (eV)",
    ylabel: str = "μ(E) (normalised)",
    dpi: int = 150,
):
    """Overlay spectra (optionally with a target and a residual panel) and save a PNG.

    Args:
        curves: one spectrum, a sequence, or a mapping ``label -> spectrum``; each item a
            :class:`~jxas.spectrum.Spectrum` or an ``(energy, mu[, std])`` tuple. A ``[m, e]`` ``mu`` is drawn
            as ``m`` thin lines; a ``std`` as a shaded band.
        path: PNG to write; if ``None`` the figure is returned instead.
        target: reference spectrum (e.g. the measurement), drawn in black.
        labels: labels for a sequence of curves.
        target_label: legend label of the target.
        residual: draw the ``curve - target`` panel; default: when a target is given.
        title, xlim, xlabel, ylabel, dpi: figure options.

    Returns:
        The written ``Path`` (the figure is closed), or the matplotlib ``Figure`` when ``path`` is None.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    items = _curves(curves, labels)
    tgt = _as_spectrum(target) if target is not None else None
    if not items and tgt is None:
        raise ValueError("nothing to plot: give curves and/or a target")
    residual = (tgt is not None and bool(items)) if residual is None else residual
    if residual and tgt is None:
        raise ValueError("residual=True needs a target")
    if residual:
        fig, (ax, axr) = plt.subplots(
            2, 1, figsize=(7, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05}
        )
    else:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        axr = None
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    if tgt is not None:
        te, tm = np.asarray(tgt.energy, float), np.asarray(tgt.mu, float)
        ax.plot(te, tm, "k.-", ms=2.5, lw=0.8, label=target_label, zorder=5)
    for i, (name, s) in enumerate(items):
        c = colors[i % len(colors)]
        e, mu = np.asarray(s.energy, float), np.asarray(s.mu, float)
        for j, row in enumerate(np.atleast_2d(mu)):
            ax.plot(e, row, color=c, lw=1.4 if mu.ndim == 1 else 0.6, label=name if j == 0 else None)
        if s.std is not None and mu.ndim == 1:
            sd = np.asarray(s.std, float)
            ax.fill_between(e, mu - sd, mu + sd, color=c, alpha=0.25, lw=0, label=f"{name} ±1σ")
        if axr is not None and mu.ndim == 1:
            axr.plot(e, mu - np.interp(e, te, tm), color=c, lw=1.0)
    if axr is not None:
        axr.axhline(0.0, color="k", lw=0.6)
        axr.set_ylabel("residual")
        axr.set_xlabel(xlabel)
    else:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if xlim is not None:
        ax.set_xlim(*xlim)
    if title:
        ax.set_title(title)
    ax.legend(frameon=False, fontsize=8)
    if path is None:
        return fig
    path = Path(path)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path
