"""Plain NumPy reference implementations of the descriptors, written directly from the formulas.

Used as the independent check in the tests and as the baseline in ``benchmarks/descriptors.py``.
They loop over one structure at a time and are deliberately written differently from the JAX code
(explicit neighbour lists and pair loops), so agreement means the formulas, not the code, agree.
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["rdc_numpy", "wacsf_numpy"]


def _neighbours(positions, numbers, absorber, r_max):
    d = np.asarray(positions, float) - np.asarray(positions, float)[absorber]
    r = np.sqrt(np.sum(d * d, axis=1))
    idx = [j for j in range(len(numbers)) if 0.0 < r[j] < r_max]
    return d, r, idx


def rdc_numpy(positions, numbers, absorber=0, *, r_min=0.0, r_max=8.0, dr=0.01, alpha=10.0, pairs="absorber"):
    """RDC(R) = sum_j Z_0 Z_j exp(-alpha (r_0j - R)^2); or over all pairs i < j (Rankine 2020, eq. 1)."""
    grid = np.linspace(r_min, r_max, int(abs(r_max - r_min) / dr) + 1)
    out = np.zeros_like(grid)
    numbers = np.asarray(numbers)
    if pairs == "absorber":
        _, r, idx = _neighbours(positions, numbers, absorber, r_max)
        for j in idx:
            out += numbers[absorber] * numbers[j] * np.exp(-alpha * (r[j] - grid) ** 2)
    else:
        pos = np.asarray(positions, float)
        for i, j in itertools.combinations(range(len(numbers)), 2):
            rij = np.linalg.norm(pos[i] - pos[j])
            if 0.0 < rij < r_max:
                out += numbers[i] * numbers[j] * np.exp(-alpha * (rij - grid) ** 2)
    return out


def _grid(r_min, r_max, n, kind):
    if kind == "shifted":
        mu = np.linspace(r_min + 0.5, r_max - 0.5, n)
        return mu, np.full(n, 1.0 / (2.0 * (mu[1] - mu[0]) ** 2))
    s = np.linspace(r_min + 1.0, r_max - 0.5, n)
    return np.zeros(n), 1.0 / (2.0 * s**2)


def wacsf_numpy(
    positions,
    numbers,
    absorber=0,
    *,
    r_min=1.0,
    r_max=6.0,
    n_g2=16,
    n_g4=32,
    l=(1.0, -1.0),  # noqa: E741
    z=(1.0,),
    g2_parameterisation="shifted",
    g4_parameterisation="centred",
):
    """[G1, G2..., G4...] of the absorber (Gastegger et al. 2018 with XANESNET's weights and grids)."""
    numbers = np.asarray(numbers)
    d, r, idx = _neighbours(positions, numbers, absorber, r_max)

    def fc(x):
        return 0.5 * (np.cos(np.pi * x / r_max) + 1.0)

    w = {j: 0.1 * numbers[j] for j in idx}
    g1 = sum(fc(r[j]) for j in idx)
    g2 = []
    if n_g2:
        mu2, eta2 = _grid(r_min, r_max, n_g2, g2_parameterisation)
        for mu, eta in zip(mu2, eta2, strict=True):
            g2.append(sum(w[j] * np.exp(-eta * (r[j] - mu) ** 2) * fc(r[j]) for j in idx))
    g4 = []
    if n_g4:
        keep = n_g4 // (len(l) * len(z))
        mu4, eta4 = _grid(r_min, r_max, n_g4, g4_parameterisation)
        for mu, eta in zip(mu4[:keep], eta4[:keep], strict=True):
            for lam in l:
                for zeta in z:
                    total = 0.0
                    for j, k in itertools.combinations(idx, 2):
                        rjk = np.linalg.norm(d[j] - d[k])
                        cos = np.dot(d[j], d[k]) / (r[j] * r[k])
                        radial = 1.0
                        for x in (r[j], r[k], rjk):
                            radial *= np.exp(-eta * (x - mu) ** 2) * fc(x)
                        total += w[j] * w[k] * (1.0 + lam * cos) ** zeta * radial
                    g4.append(2.0 ** (1.0 - zeta) * total)
    return np.array([g1, *g2, *g4], float)
